// A connect-node server for GreetService (and AnyService, anyjson.mjs), used as a real peer by the .NET interop tests.
//
//   node server.mjs [--port N] [--h2c] [--ignore-stdin]
//
// Listens on 127.0.0.1 (port 0 = any free port) with HTTP/1.1, or HTTP/2 without TLS with --h2c,
// and serves the Connect, gRPC and gRPC-Web protocols (connect-node's defaults). Once listening it
// prints exactly one line to stdout, `listening http://127.0.0.1:<port>`. It exits with 0 on
// SIGTERM or SIGINT, and when its stdin closes, so a test harness that dies cannot leave it
// running (--ignore-stdin turns that off for runs by hand with stdin at /dev/null).
//
// Behaviour that the tests assert on (every method):
//   - request header `acme-tenant-id` is copied into the response header of that name;
//   - response header and response trailer `greet-version: v1`;
//   - each value of request header `x-echo` is appended to response header `x-echo`;
//   - request header `x-echo-bin` (binary) is returned as response trailer `x-echo-bin`;
//   - request header `x-fail: <code name>` makes the call fail with that code, the message
//     "failed as asked" and error metadata `x-error-meta: yes`, after the headers and trailers
//     above were set (GreetMany sends its first response first, Chat answers its first request).

import * as http from "node:http";
import * as http2 from "node:http2";
import { Code, ConnectError, decodeBinaryHeader, encodeBinaryHeader } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { anyService, AnyService, registry } from "./anyjson.mjs";
import { codeFromName } from "./codes.mjs";
import { GreetService } from "./gen/connectrpc/greet/v1/greet_pb.js";

function usage(message) {
  process.stderr.write(`server.mjs: ${message}\nusage: node server.mjs [--port N] [--h2c] [--ignore-stdin]\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const options = { port: 0, h2c: false, ignoreStdin: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--port") {
      const value = argv[++i];
      if (value === undefined || !/^\d+$/.test(value) || Number(value) > 65535) {
        usage(`--port needs a number from 0 to 65535, got ${value ?? "nothing"}`);
      }
      options.port = Number(value);
    } else if (arg === "--h2c") {
      options.h2c = true;
    } else if (arg === "--ignore-stdin") {
      options.ignoreStdin = true;
    } else {
      usage(`unknown argument ${arg}`);
    }
  }
  return options;
}

// Sets the response headers and trailers every method sends, from the request headers.
function applyMetadata(ctx) {
  const tenant = ctx.requestHeader.get("acme-tenant-id");
  if (tenant !== null) {
    ctx.responseHeader.set("acme-tenant-id", tenant);
  }
  ctx.responseHeader.set("greet-version", "v1");
  ctx.responseTrailer.set("greet-version", "v1");
  // The fetch Headers API joins repeated fields with ", ", so split to get the values back.
  const echo = ctx.requestHeader.get("x-echo");
  if (echo !== null) {
    for (const value of echo.split(",")) {
      ctx.responseHeader.append("x-echo", value.trim());
    }
  }
  const echoBin = ctx.requestHeader.get("x-echo-bin");
  if (echoBin !== null) {
    // Decoding checks that the value is valid base64 (a DataLoss error if not);
    // encoding writes it back unpadded, as the Connect and gRPC specs ask.
    ctx.responseTrailer.set("x-echo-bin", encodeBinaryHeader(decodeBinaryHeader(echoBin)));
  }
}

// The error that `x-fail` asks for, or undefined when the request did not ask to fail.
function requestedFailure(ctx) {
  const name = ctx.requestHeader.get("x-fail");
  if (name === null) {
    return undefined;
  }
  const code = codeFromName(name.trim()) ?? Code.Unknown;
  return new ConnectError("failed as asked", code, { "x-error-meta": "yes" });
}

function greeting(name) {
  return `Hello, ${name}!`;
}

const service = {
  async greet(request, ctx) {
    applyMetadata(ctx);
    const failure = requestedFailure(ctx);
    if (failure) {
      throw failure;
    }
    return { greeting: greeting(request.name) };
  },

  async *greetMany(request, ctx) {
    applyMetadata(ctx);
    const failure = requestedFailure(ctx);
    for (let i = 1; i <= 3; i++) {
      yield { greeting: `${greeting(request.name)} (${i})` };
      if (failure) {
        throw failure;
      }
    }
  },

  async greetEveryone(requests, ctx) {
    applyMetadata(ctx);
    const names = [];
    for await (const request of requests) {
      names.push(request.name);
    }
    const failure = requestedFailure(ctx);
    if (failure) {
      throw failure;
    }
    return { greeting: greeting(names.join(", ")) };
  },

  async *chat(requests, ctx) {
    applyMetadata(ctx);
    const failure = requestedFailure(ctx);
    // The generator is suspended at each yield until the response was taken, so every
    // request is answered before the next one is read.
    for await (const request of requests) {
      yield { greeting: greeting(request.name) };
      if (failure) {
        throw failure;
      }
    }
  },
};

const options = parseArgs(process.argv.slice(2));
const handler = connectNodeAdapter({
  routes(router) {
    router.service(GreetService, service);
    router.service(AnyService, anyService);
  },
  // google.protobuf.Any in JSON needs the types it may hold.
  jsonOptions: { registry },
  // Compress every message when the peer asks for it, not only those over 1 KiB,
  // so that the tests' small messages exercise compression too.
  compressMinBytes: 0,
});
const server = options.h2c ? http2.createServer(handler) : http.createServer(handler);

let stopping = false;
function stop() {
  if (stopping) {
    return;
  }
  stopping = true;
  server.close();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
if (!options.ignoreStdin) {
  process.stdin.on("end", stop);
  process.stdin.on("close", stop);
  process.stdin.on("error", stop);
  process.stdin.resume();
}

server.on("error", (err) => {
  process.stderr.write(`server.mjs: ${err.stack ?? err}\n`);
  process.exit(1);
});
server.listen(options.port, "127.0.0.1", () => {
  const { port } = server.address();
  // On Linux, writes to a pipe or file are synchronous, so the line is out when this returns.
  process.stdout.write(`listening http://127.0.0.1:${port}\n`);
});
