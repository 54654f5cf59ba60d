// The browser side of BrowserInteropTests: bundled by build.mjs into dist/page.js, loaded by
// dist/index.html. It calls the greet server named by ?server= (another origin) with
// connect-web's two transports, Connect and gRPC-Web, and publishes what each case saw as
// window.browserResults (a promise of an array of case results, which driver.mjs reads), and
// shows it in the page (what a screenshot shows).
//
// ?cases=main (default): unary (POST; and GET with the Connect transport), server streaming,
// an error with details, a stream that fails after a message, a deadline that expires, and
// the client-streaming and bidi calls connect-web refuses, on both transports.
// ?cases=refused: one unary call on each transport, for a page on an origin the server's CORS
// policy does not allow.
import { ConnectError, createClient, decodeBinaryHeader, encodeBinaryHeader } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { GreetService } from "../gen/connectrpc/greet/v1/greet_pb.js";
import { codeName } from "../codes.mjs";

const query = new URLSearchParams(location.search);
const server = query.get("server");
const which = query.get("cases") ?? "main";

// A transport whose every fetch is recorded: the method, and the error when fetch itself
// failed (a refused CORS check fails fetch with a TypeError before any response).
function transport(kind, requests) {
  const fetchRecorded = async (input, init) => {
    const request = { method: init?.method ?? "GET", url: String(input), fetchError: null };
    requests.push(request);
    try {
      return await globalThis.fetch(input, init);
    } catch (e) {
      request.fetchError = `${e.name}: ${e.message}`;
      throw e;
    }
  };
  const options = { baseUrl: server, fetch: fetchRecorded };
  switch (kind) {
    case "connect":
      return createConnectTransport(options);
    case "connect-get":
      return createConnectTransport({ ...options, useHttpGet: true });
    case "grpc-web":
      return createGrpcWebTransport(options);
    default:
      throw new Error(`no transport ${kind}`);
  }
}

// Headers as { name: [value] }, as fetch's Headers gives them (lowercase names, repeated fields joined by ", ").
function headersToJson(headers) {
  const o = {};
  headers?.forEach((value, name) => {
    (o[name] ??= []).push(value);
  });
  return o;
}

// One case: `run(client, callOptions, messages)` makes the call and pushes each greeting into `messages`.
async function runCase(name, kind, extraHeaders, timeoutMs, run) {
  const requests = [];
  const result = { name, messages: [], headers: {}, trailers: {}, echoBin: null, error: null, requests, elapsedMs: 0 };
  const client = createClient(GreetService, transport(kind, requests));
  const started = performance.now();
  const callOptions = {
    headers: [
      ["acme-tenant-id", "1234"],
      ["x-echo", "a"],
      ["x-echo-bin", encodeBinaryHeader(new Uint8Array([0, 1, 2, 254, 255]))],
      ...extraHeaders,
    ],
    timeoutMs,
    onHeader(h) {
      result.headers = headersToJson(h);
    },
    onTrailer(t) {
      result.trailers = headersToJson(t);
      const bin = t.get("x-echo-bin");
      result.echoBin = bin === null ? null : Array.from(decodeBinaryHeader(bin));
    },
  };
  try {
    await run(client, callOptions, result.messages);
  } catch (e) {
    const err = ConnectError.from(e);
    result.error = {
      code: codeName(err.code),
      message: err.rawMessage,
      metadata: headersToJson(err.metadata),
      details: err.findDetails(StringValueSchema).map((d) => d.value),
    };
  }
  result.elapsedMs = Math.round(performance.now() - started);
  return result;
}

const unary = async (client, options, messages) => {
  const response = await client.greet({ name: "Ada" }, options);
  messages.push(response.greeting);
};

const serverStream = async (client, options, messages) => {
  for await (const response of client.greetMany({ name: "Ada" }, options)) {
    messages.push(response.greeting);
  }
};

async function* names() {
  yield { name: "Ada" };
  yield { name: "Grace" };
}

// Client streaming and bidi: connect-web refuses them (fetch cannot stream a request body).
const clientStream = async (client, options, messages) => {
  const response = await client.greetEveryone(names(), options);
  messages.push(response.greeting);
};

const bidi = async (client, options, messages) => {
  for await (const response of client.chat(names(), options)) {
    messages.push(response.greeting);
  }
};

function mainCases() {
  const cases = [];
  for (const kind of ["connect", "grpc-web"]) {
    cases.push(() => runCase(`${kind}/unary`, kind, [], 10_000, unary));
    cases.push(() => runCase(`${kind}/server-stream`, kind, [], 10_000, serverStream));
    cases.push(() => runCase(`${kind}/error-details`, kind, [["x-fail", "not_found"], ["x-detail", "the reason"]], 10_000, unary));
    cases.push(() => runCase(`${kind}/stream-error`, kind, [["x-fail", "resource_exhausted"]], 10_000, serverStream));
    cases.push(() => runCase(`${kind}/deadline`, kind, [["x-sleep-ms", "5000"]], 500, unary));
    cases.push(() => runCase(`${kind}/client-stream`, kind, [], 10_000, clientStream));
    cases.push(() => runCase(`${kind}/bidi`, kind, [], 10_000, bidi));
  }
  cases.push(() => runCase("connect-get/unary", "connect-get", [], 10_000, unary));
  return cases;
}

function refusedCases() {
  return ["connect", "grpc-web"].map((kind) => () => runCase(`${kind}/refused`, kind, [], 10_000, unary));
}

function show(results) {
  const table = document.getElementById("results");
  for (const r of results) {
    const row = table.insertRow();
    row.insertCell().textContent = r.name;
    row.insertCell().textContent = r.error ? `${r.error.code}: ${r.error.message}` : r.messages.join(" | ");
    row.insertCell().textContent = JSON.stringify({ headers: r.headers, trailers: r.trailers, requests: r.requests.map((q) => q.method) });
    row.className = r.error ? "error" : "ok";
  }
  document.getElementById("status").textContent = `done: ${results.length} cases from ${location.origin} to ${server}`;
}

async function runAll() {
  if (!server) {
    throw new Error("no ?server= given");
  }
  const results = [];
  // One after another, so that a case's timing (the deadline) is its own.
  for (const run of which === "refused" ? refusedCases() : mainCases()) {
    results.push(await run());
  }
  show(results);
  return results;
}

window.browserResults = runAll().catch((e) => {
  document.getElementById("status").textContent = `crashed: ${e}`;
  throw e;
});
