// The JSON/Any service of testdata/json_any (connectrpc.jsonany.v1.AnyService) as server.mjs serves it
// and client.mjs calls it: the type registry both need for google.protobuf.Any in JSON, the bags the
// client sends, and the server's answers (the same as the .NET tests' TestAnyService).

import { create, createRegistry, fromJson } from "@bufbuild/protobuf";
import {
  AnySchema,
  anyPack,
  file_google_protobuf_any,
  file_google_protobuf_duration,
  file_google_protobuf_empty,
  file_google_protobuf_field_mask,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  file_google_protobuf_wrappers,
} from "@bufbuild/protobuf/wkt";
import { file_connectrpc_greet_v1_greet, GreetRequestSchema } from "./gen/connectrpc/greet/v1/greet_pb.js";
import { file_connectrpc_jsonany_payload_v1_payload } from "./gen/connectrpc/jsonany/payload/v1/payload_pb.js";
import { file_connectrpc_jsonany_payload_v1_stamp } from "./gen/connectrpc/jsonany/payload/v1/stamp_pb.js";
import { AnyService, BagSchema, file_connectrpc_jsonany_v1_json_any } from "./gen/connectrpc/jsonany/v1/json_any_pb.js";

export { AnyService, BagSchema };

// Every type either side packs in Any; GreetRequest only for the `x-pack: greet` answer.
export const registry = createRegistry(
  file_connectrpc_jsonany_v1_json_any,
  file_connectrpc_jsonany_payload_v1_payload,
  file_connectrpc_jsonany_payload_v1_stamp,
  file_connectrpc_greet_v1_greet,
  file_google_protobuf_any,
  file_google_protobuf_duration,
  file_google_protobuf_empty,
  file_google_protobuf_field_mask,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  file_google_protobuf_wrappers,
);

const type = (name) => `type.googleapis.com/${name}`;

// The bag the client sends, as protojson: items of every origin (this file, the import, the import's
// import, well-known types), and scalars whose JSON has rules of its own.
export function clientBag(text) {
  return fromJson(
    BagSchema,
    {
      items: [
        { "@type": type("connectrpc.jsonany.v1.Note"), text },
        { "@type": type("connectrpc.jsonany.payload.v1.Receipt"), id: "c-1", amount: "-42", stamp: { by: "client" } },
        { "@type": type("connectrpc.jsonany.payload.v1.Stamp"), by: "client" },
        { "@type": type("google.protobuf.Timestamp"), value: "2026-12-03T15:00:00Z" },
        { "@type": type("google.protobuf.Struct"), value: { n: 1.5, s: "a b" } },
        { "@type": type("google.protobuf.StringValue"), value: "wrapped" },
        { "@type": type("google.protobuf.FieldMask"), value: "items,scalars" },
        // An ordinary message's JSON, beside the type (no "value"), as protojson writes it.
        { "@type": type("google.protobuf.Empty") },
      ],
      scalars: { int64Value: "-9223372036854775808", color: "COLOR_GREEN", doubleValue: "Infinity", renamed: "json_name" },
      receipt: { id: "field", amount: "1" },
    },
    { registry },
  );
}

// What the server adds to every answer.
const serverItems = fromJson(
  BagSchema,
  {
    items: [
      { "@type": type("connectrpc.jsonany.v1.Note"), text: "from the server" },
      { "@type": type("connectrpc.jsonany.payload.v1.Receipt"), id: "r-1", amount: "9223372036854775807", stamp: { by: "server" } },
      { "@type": type("connectrpc.jsonany.payload.v1.Stamp"), by: "server" },
      { "@type": type("google.protobuf.Duration"), value: "1.500s" },
    ],
  },
  { registry },
).items;

// The answer to a bag (its items replaced by `items`): those items, the server's, and with
// `x-pack: greet` a GreetRequest, with `x-pack: unknown` an Any of a type no registry knows.
export function answer(items, request, requestHeader) {
  const bag = create(BagSchema, { items: [...items, ...serverItems], scalars: request.scalars, receipt: request.receipt });
  const pack = requestHeader.get("x-pack");
  if (pack === "greet") {
    bag.items.push(anyPack(GreetRequestSchema, create(GreetRequestSchema, { name: "known through JsonTypes" })));
  } else if (pack === "unknown") {
    bag.items.push(create(AnySchema, { typeUrl: type("connectrpc.jsonany.v1.NotDeclared"), value: new Uint8Array([10, 1, 120]) }));
  }
  return bag;
}

// AnyService for connect-node's router.
export const anyService = {
  async echo(request, ctx) {
    return answer(request.items, request, ctx.requestHeader);
  },
  async *echoMany(request, ctx) {
    yield answer(request.items, request, ctx.requestHeader);
    yield answer(request.items, request, ctx.requestHeader);
  },
  async echoAll(requests, ctx) {
    const items = [];
    let last = create(BagSchema);
    for await (const request of requests) {
      items.push(...request.items);
      last = request;
    }
    return answer(items, last, ctx.requestHeader);
  },
  async *echoChat(requests, ctx) {
    for await (const request of requests) {
      yield answer(request.items, request, ctx.requestHeader);
    }
  },
};
