// A connect-node client for GreetService, used as a real peer by the .NET interop tests.
//
//   node client.mjs --url <base url> [--protocol connect|grpc|grpcweb] [--http2] [--json] [--gzip]
//                   [--fail <code name>] [--kinds unary,server,client,bidi] [--any]
//
// Makes one call of each kind asked for (default: all four) and prints one JSON document to stdout:
//   { "unary": Result, "server": Result, "client": Result, "bidi": Result }   (the kinds run)
//   Result = { "messages": [greeting, ...], "headers": { name: [value] }, "trailers": { name: [value] },
//              "error": null | { "code": "permission_denied", "message": rawMessage, "metadata": { name: [value] } } }
// Every call sends `acme-tenant-id: 1234`, `x-echo: a` and `x-echo: b`, `x-echo-bin` with the bytes
// 0 1 2 254 255, and `x-fail: <code>` with --fail; it has a timeout of 10 s. Failed calls are data:
// the exit code is 0 unless the arguments were wrong (2) or the run crashed or took over 30 s (1).

import { toJson } from "@bufbuild/protobuf";
import { ConnectError, createClient, encodeBinaryHeader } from "@connectrpc/connect";
import {
  compressionGzip,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { AnyService, BagSchema, clientBag, registry } from "./anyjson.mjs";
import { codeName } from "./codes.mjs";
import { GreetService } from "./gen/connectrpc/greet/v1/greet_pb.js";

const allKinds = ["unary", "server", "client", "bidi"];
const usageText =
  "usage: node client.mjs --url <base url> [--protocol connect|grpc|grpcweb] [--http2] [--json] [--gzip]\n" +
  "                       [--fail <code name>] [--kinds unary,server,client,bidi] [--any]\n";

function usage(message) {
  process.stderr.write(`client.mjs: ${message}\n${usageText}`);
  process.exit(2);
}

function parseArgs(argv) {
  const options = { url: undefined, protocol: "connect", http2: false, json: false, gzip: false, fail: undefined, kinds: allKinds, any: false };
  const value = (i, flag) => {
    if (i >= argv.length) {
      usage(`${flag} needs a value`);
    }
    return argv[i];
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    switch (arg) {
      case "--url":
        options.url = value(++i, arg);
        break;
      case "--protocol":
        options.protocol = value(++i, arg);
        if (!["connect", "grpc", "grpcweb"].includes(options.protocol)) {
          usage(`unknown protocol ${options.protocol}`);
        }
        break;
      case "--http2":
        options.http2 = true;
        break;
      case "--json":
        options.json = true;
        break;
      case "--gzip":
        options.gzip = true;
        break;
      case "--any":
        options.any = true;
        break;
      case "--fail":
        options.fail = value(++i, arg);
        break;
      case "--kinds":
        options.kinds = value(++i, arg).split(",").filter((k) => k !== "");
        for (const kind of options.kinds) {
          if (!allKinds.includes(kind)) {
            usage(`unknown kind ${kind}`);
          }
        }
        if (options.kinds.length === 0) {
          usage("--kinds names no kind");
        }
        break;
      default:
        usage(`unknown argument ${arg}`);
    }
  }
  if (options.url === undefined) {
    usage("--url is required");
  }
  if (options.protocol === "grpc" && !options.http2) {
    // connect-node's gRPC transport always speaks HTTP/2: say so instead of quietly switching.
    usage("--protocol grpc needs --http2 (connect-node's gRPC transport only speaks HTTP/2)");
  }
  return options;
}

function createTransport(options) {
  const transportOptions = {
    baseUrl: options.url,
    httpVersion: options.http2 ? "2" : "1.1",
    useBinaryFormat: !options.json,
    // Without --gzip, neither send nor accept any compression; with it, compress every message.
    sendCompression: options.gzip ? compressionGzip : undefined,
    acceptCompression: options.gzip ? [compressionGzip] : [],
    compressMinBytes: 0,
    // google.protobuf.Any in JSON needs the types it may hold.
    jsonOptions: { registry },
  };
  switch (options.protocol) {
    case "grpc":
      return createGrpcTransport(transportOptions);
    case "grpcweb":
      return createGrpcWebTransport(transportOptions);
    default:
      return createConnectTransport(transportOptions);
  }
}

// Headers as { name: [value] }. The fetch Headers API gives lowercase names and joins
// repeated fields into one value with ", "; the values are printed as it gives them.
function headersToJson(headers) {
  const o = {};
  if (headers) {
    headers.forEach((value, name) => {
      (o[name] ??= []).push(value);
    });
  }
  return o;
}

const names = ["Ada", "Grace", "Linus"];

// One call; `run(callOptions, messages)` makes it and pushes each greeting into `messages`.
async function call(options, run) {
  const result = { messages: [], headers: {}, trailers: {}, error: null };
  const headers = [
    ["acme-tenant-id", "1234"],
    ["x-echo", "a"],
    ["x-echo", "b"],
    ["x-echo-bin", encodeBinaryHeader(new Uint8Array([0, 1, 2, 254, 255]))],
  ];
  if (options.fail !== undefined) {
    headers.push(["x-fail", options.fail]);
  }
  const callOptions = {
    headers,
    timeoutMs: 10_000,
    onHeader(h) {
      result.headers = headersToJson(h);
    },
    onTrailer(t) {
      result.trailers = headersToJson(t);
    },
  };
  try {
    await run(callOptions, result.messages);
  } catch (e) {
    const err = ConnectError.from(e);
    result.error = { code: codeName(err.code), message: err.rawMessage, metadata: headersToJson(err.metadata) };
  }
  return result;
}

// The requests of a bidi call, strictly ping-pong: request n+1 is only produced after
// `answered()` was called for response n.
function pingPong(requestNames) {
  let answers = 0;
  let wake = () => {};
  return {
    answered() {
      answers++;
      wake();
    },
    async *requests() {
      for (let i = 0; i < requestNames.length; i++) {
        while (answers < i) {
          await new Promise((resolve) => {
            wake = resolve;
          });
        }
        yield { name: requestNames[i] };
      }
    },
  };
}

const calls = {
  async unary(client, callOptions, messages) {
    const response = await client.greet({ name: "Ada" }, callOptions);
    messages.push(response.greeting);
  },
  async server(client, callOptions, messages) {
    for await (const response of client.greetMany({ name: "Ada" }, callOptions)) {
      messages.push(response.greeting);
    }
  },
  async client(client, callOptions, messages) {
    async function* requests() {
      for (const name of names) {
        yield { name };
      }
    }
    const response = await client.greetEveryone(requests(), callOptions);
    messages.push(response.greeting);
  },
  async bidi(client, callOptions, messages) {
    const conversation = pingPong(names);
    for await (const response of client.chat(conversation.requests(), callOptions)) {
      messages.push(response.greeting);
      conversation.answered();
    }
  },
};

// AnyService (--any): each response message printed as its protojson.
const anyCalls = {
  async unary(client, callOptions, messages) {
    messages.push(toJson(BagSchema, await client.echo(clientBag("node"), callOptions), { registry }));
  },
  async server(client, callOptions, messages) {
    for await (const response of client.echoMany(clientBag("node"), callOptions)) {
      messages.push(toJson(BagSchema, response, { registry }));
    }
  },
  async client(client, callOptions, messages) {
    async function* requests() {
      yield clientBag("first");
      yield clientBag("second");
    }
    messages.push(toJson(BagSchema, await client.echoAll(requests(), callOptions), { registry }));
  },
  async bidi(client, callOptions, messages) {
    async function* requests() {
      yield clientBag("first");
      yield clientBag("second");
    }
    for await (const response of client.echoChat(requests(), callOptions)) {
      messages.push(toJson(BagSchema, response, { registry }));
    }
  },
};

async function main() {
  const options = parseArgs(process.argv.slice(2));
  if (options.any) {
    const client = createClient(AnyService, createTransport(options));
    const output = {};
    for (const kind of options.kinds) {
      output[kind] = await call(options, (callOptions, messages) => anyCalls[kind](client, callOptions, messages));
    }
    return output;
  }
  const client = createClient(GreetService, createTransport(options));
  const output = {};
  for (const kind of options.kinds) {
    output[kind] = await call(options, (callOptions, messages) => calls[kind](client, callOptions, messages));
  }
  return output;
}

const globalTimer = setTimeout(() => {
  process.stderr.write("client.mjs: gave up after 30 s\n");
  process.exit(1);
}, 30_000);

main().then(
  (output) => {
    clearTimeout(globalTimer);
    // HTTP/2 sessions would keep the process alive for a while: exit once stdout is written.
    process.stdout.write(JSON.stringify(output, null, 2) + "\n", () => process.exit(0));
  },
  (err) => {
    process.stderr.write(`client.mjs: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
