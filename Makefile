# Every entry point of the repository. Needs only dotnet, node/npm and make: NuGet and npm
# packages are restored on first use (protoc comes from the Google.Protobuf.Tools package,
# buf from the @bufbuild/buf npm package pinned by package-lock.json).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CONFIGURATION ?= Release
PLUGIN := bin/protoc-gen-connect-csharp
BUF := node_modules/.bin/buf
GREET_OUT := bin/gen
GREET_SERVER := bin/greet-server/Greet.Server
GREET_CLIENT := bin/greet-client/Greet.Client
# make serve HTTP1_PORT=9080 HTTP2_PORT=9081; make demo uses free ports unless given DEMO_HTTP1_PORT/DEMO_HTTP2_PORT
# (0 = any free port). The bearer token is demo-token, or $GREET_TOKEN for both server and client.
HTTP1_PORT ?= 8080
HTTP2_PORT ?= 8081
DEMO_HTTP1_PORT ?= 0
DEMO_HTTP2_PORT ?= 0
# make fuzz FUZZ_SECONDS=600: seconds per property (make test runs each for a short fixed count);
# a failure prints a seed: CsCheck_Seed=<seed> make fuzz replays it.
FUZZ_SECONDS ?= 60
# make load LOAD_SCALE=8: multiplies the load test's stream count (1,500 at scale 1) and its time windows.
LOAD_SCALE ?= 4
# make scale PROXY_SCALE=8: multiplies the rolling restart's load workers (7 at scale 1, in make test); above 1, two rounds.
PROXY_SCALE ?= 4

.PHONY: help plugin protoc tools interop test-tools generate examples demo serve test fuzz load scale golden bench bench-quick bench-tools clean pack

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  make %-10s %s\n", $$1, $$2 }'

# The plugin starts once per protoc or buf run, so start-up is most of its time: NativeAOT (about 10 ms)
# where a C toolchain can link it, else (no compiler, or the native link fails) a ReadyToRun single
# file (about 100 ms, the .NET host's start). Both write the same code.
PLUGIN_CC := $(shell command -v clang || command -v gcc)
PLUGIN_PUBLISH := dotnet publish plugin/ProtocGenConnectCSharp -c $(CONFIGURATION) --use-current-runtime \
	-p:DebugType=none -p:GenerateDocumentationFile=false -o bin --nologo -v:q
PLUGIN_AOT := -p:PublishAot=true -p:StripSymbols=true $(if $(findstring gcc,$(notdir $(PLUGIN_CC))),-p:CppCompilerAndLinker=gcc)
PLUGIN_SINGLE_FILE := --self-contained false -p:PublishSingleFile=true -p:PublishReadyToRun=true

plugin: protoc ## Build bin/protoc-gen-connect-csharp (NativeAOT, or a single file) and bin/protoc
	@if [ -n "$(PLUGIN_CC)" ]; then \
		echo "$(PLUGIN_PUBLISH) $(PLUGIN_AOT)"; \
		$(PLUGIN_PUBLISH) $(PLUGIN_AOT) && exit 0; \
		echo "make plugin: the NativeAOT build failed (above); building a ReadyToRun single file instead" >&2; \
	fi; \
	echo "$(PLUGIN_PUBLISH) $(PLUGIN_SINGLE_FILE)"; \
	$(PLUGIN_PUBLISH) $(PLUGIN_SINGLE_FILE)

protoc: ## Copy protoc and the well-known .proto files from NuGet to bin/
	dotnet msbuild plugin/ProtocGenConnectCSharp -restore -t:InstallProtoc -p:ProtocDir=$(CURDIR)/bin -nologo -v:q

# make pack: the four NuGet packages (and the symbol packages) into bin/packages, or PACKAGES=DIR. Deterministic: the
# same commit gives the same bytes (file times from the commit's time; Release builds map paths, Directory.Build.props).
PACKAGES ?= bin/packages
PACKED := runtime/ConnectRpc runtime/ConnectRpc.AspNetCore plugin/ConnectRpc.Tools plugin/ProtocGenConnectCSharp

pack: ## Write the NuGet packages ConnectRpc, ConnectRpc.AspNetCore, ConnectRpc.Tools and protoc-gen-connect-csharp to bin/packages
	@mkdir -p $(PACKAGES)
	@# Written afresh: pack skips a package that is newer than its inputs, even when HEAD (in its metadata) moved.
	rm -f $(PACKAGES)/ConnectRpc.*nupkg $(PACKAGES)/protoc-gen-connect-csharp.*nupkg
	@epoch=$$(git log -1 --format=%ct 2> /dev/null || true); \
	for project in $(PACKED); do \
		echo "dotnet pack $$project -c Release -o $(PACKAGES)"; \
		SOURCE_DATE_EPOCH=$$epoch dotnet pack $$project -c Release -o $(PACKAGES) --nologo -v:q; \
	done

$(BUF): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(BUF)

tools: $(BUF) ## Install buf from the committed npm lockfile

INTEROP_GEN := interop/gen/connectrpc/greet/v1/greet_pb.js

interop/node_modules/.package-lock.json: interop/package.json interop/package-lock.json
	cd interop && npm ci --no-audit --no-fund

$(INTEROP_GEN): $(BUF) interop/node_modules/.package-lock.json interop/buf.gen.yaml testdata/greet/proto/connectrpc/greet/v1/greet.proto \
		$(shell find testdata/json_any/proto -name "*.proto")
	cd interop && ../$(BUF) generate --template buf.gen.yaml

# The browser test's page: connect-web bundled by esbuild (both pinned by interop/package-lock.json).
BROWSER_BUNDLE := interop/browser/dist/page.js

$(BROWSER_BUNDLE): $(INTEROP_GEN) interop/browser/build.mjs interop/browser/page.mjs interop/browser/index.html interop/codes.mjs
	node interop/browser/build.mjs

interop: $(INTEROP_GEN) $(BROWSER_BUNDLE) ## Install the interop peers (interop/: connect-node, the browser page) from their lockfile and generate their code

# Debian packages the tests run, each named as its command: chromium (the browser test, headless), haproxy
# and nginx (the proxy tests), zstd (the reference decoder of ZstdWireTests). Installed in one apt-get run.
TEST_PACKAGES := chromium haproxy nginx zstd

test-tools: ## Install the Debian packages the tests run (chromium, haproxy, nginx, zstd) with apt-get when missing (as root)
	@missing=; for package in $(TEST_PACKAGES); do \
		command -v $$package > /dev/null || [ -x /usr/sbin/$$package ] || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "apt-get install$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing > /dev/null; \
	fi

generate: plugin tools ## Generate the Greet demo's C# with buf into bin/gen (the path without MSBuild; the examples use ConnectRpc.Tools)
	$(BUF) generate

# The examples generate their C# at build time through ConnectRpc.Tools (plugin/ConnectRpc.Tools), as users' projects do.
examples: ## Build the Greet demo's server and client into bin/greet-server and bin/greet-client
	dotnet publish examples/greet/server -c $(CONFIGURATION) -o bin/greet-server --nologo -v:q
	dotnet publish examples/greet/client -c $(CONFIGURATION) -o bin/greet-client --nologo -v:q

demo: examples tools ## Run the Greet demo: start the server on free ports, call it with the client (every protocol) and buf curl (gRPC, health, reflection), stop it
	@log=bin/greet-server.log; \
	$(GREET_SERVER) --http1-port $(DEMO_HTTP1_PORT) --http2-port $(DEMO_HTTP2_PORT) > $$log 2>&1 & server=$$!; \
	trap 'kill $$server 2> /dev/null || true' EXIT; \
	for _ in $$(seq 300); do \
		grep -q ' listening on ' $$log && break; \
		kill -0 $$server 2> /dev/null || break; \
		sleep 0.1; \
	done; \
	ready=$$(grep -m1 ' listening on ' $$log) || { \
		cat $$log >&2; \
		if kill -0 $$server 2> /dev/null; then echo "make demo: the server was not ready within 30 s" >&2; \
		else echo "make demo: the server exited; its log is above" >&2; fi; \
		exit 1; }; \
	echo "$$ready"; \
	http1=$$(sed -E 's/.* on ([^ ]+) \(HTTP\/1\.1\).*/\1/' <<< "$$ready"); \
	http2=$$(sed -E 's/.* and ([^ ]+) \(HTTP\/2\).*/\1/' <<< "$$ready"); \
	status=0; $(GREET_CLIENT) --url $$http1 --http2-url $$http2 || status=$$?; \
	echo; echo "== buf curl --protocol grpc --http2-prior-knowledge $$http2/greet.v1.GreetService/Greet"; \
	$(BUF) curl --protocol grpc --http2-prior-knowledge -v --schema examples -H 'authorization: Bearer demo-token' \
		--data '{"name":"Ada"}' $$http2/greet.v1.GreetService/Greet > bin/buf-curl.log 2>&1 || status=1; \
	grep -E '^buf: < \(#1\)|^[{}]|"greeting"' bin/buf-curl.log | sed 's/^buf: //'; \
	[ "$$(grep -ci '^buf: < (#1) greet-version: v1' bin/buf-curl.log)" = 2 ] \
		|| { echo "make demo: expected greet-version: v1 as a gRPC header and trailer" >&2; status=1; }; \
	echo; echo "== buf curl --http2-prior-knowledge --protocol grpc $$http2/grpc.health.v1.Health/Check (no schema, no token)"; \
	$(BUF) curl --http2-prior-knowledge --protocol grpc $$http2/grpc.health.v1.Health/Check 2>&1 | tee bin/buf-health.log; \
	grep -q '"SERVING"' bin/buf-health.log || { echo "make demo: expected health to answer SERVING" >&2; status=1; }; \
	echo; echo "== buf curl --list-methods --http2-prior-knowledge $$http2 (reflection, no schema)"; \
	$(BUF) curl --list-methods --http2-prior-knowledge $$http2 2>&1 | tee bin/buf-reflection.log; \
	grep -q '^greet.v1.GreetService/Greet$$' bin/buf-reflection.log || { echo "make demo: expected reflection to list greet.v1.GreetService/Greet" >&2; status=1; }; \
	kill -TERM $$server 2> /dev/null || true; wait $$server || true; \
	echo; echo "Server log ($$log):"; grep -v ' listening on ' $$log | sed 's/^/  /'; \
	exit $$status

serve: examples ## Run the Greet server (with health and reflection): http://127.0.0.1:8080 (HTTP/1.1), :8081 (HTTP/2); HTTP1_PORT=, HTTP2_PORT=
	$(GREET_SERVER) --http1-port $(HTTP1_PORT) --http2-port $(HTTP2_PORT)

# pack first: the package tests pack again into a temporary feed, which then only repacks what make pack built.
test: generate interop pack test-tools ## Run every test (the plugin tests run the published bin/ plugin through protoc and buf), then the demo
	$(BUF) lint
	@status=0; CONNECT_PLUGIN=$(CURDIR)/$(PLUGIN) dotnet test ConnectPlugin.sln --nologo 2>&1 | tee bin/test.log || status=$$?; \
	awk '/^(Passed|Failed)! / { for (i = 1; i <= NF; i++) { if ($$i == "Failed:") f += $$(i+1); if ($$i == "Passed:") p += $$(i+1) } } \
		END { printf "%d passed, %d failed\n", p, f }' bin/test.log; \
	echo "make demo (the examples end to end, and buf curl --protocol grpc against the demo server):"; \
	if $(MAKE) --no-print-directory demo > bin/demo.log 2>&1; then echo "  demo passed (bin/demo.log)"; \
	else tail -40 bin/demo.log; echo "  demo FAILED (bin/demo.log)"; status=1; fi; \
	exit $$status

fuzz: ## Run the property-based fuzz tests (*FuzzTests) of the runtime and the plugin for FUZZ_SECONDS (60) per property
	CONNECT_FUZZ_SECONDS=$(FUZZ_SECONDS) dotnet test runtime/ConnectRpc.Tests --nologo --filter "FullyQualifiedName~FuzzTests"
	CONNECT_FUZZ_SECONDS=$(FUZZ_SECONDS) dotnet test plugin/ProtocGenConnectCSharp.Tests --nologo --filter "FullyQualifiedName~FuzzTests"

load: ## Run only the load and fault tests (LoadAndFaultTests) at LOAD_SCALE (4: 6,000 streams)
	CONNECT_LOAD_SCALE=$(LOAD_SCALE) dotnet test runtime/ConnectRpc.AspNetCore.Tests --nologo \
		--filter "FullyQualifiedName~LoadAndFaultTests" --logger "console;verbosity=detailed"

# The proxy tests (runtime/ConnectRpc.AspNetCore.Tests/Proxies) run Debian's HAProxy and nginx (in /usr/sbin).
scale: test-tools ## Run the proxy tests and the rolling restart behind HAProxy at PROXY_SCALE (4: 28 load workers, 6 restarts)
	CONNECT_PROXY_SCALE=$(PROXY_SCALE) dotnet test runtime/ConnectRpc.AspNetCore.Tests --nologo \
		--filter "FullyQualifiedName~ProxyTests|FullyQualifiedName~RollingRestartTests" --logger "console;verbosity=detailed"

golden: plugin tools ## Regenerate testdata/*/golden and runtime/ConnectRpc.AspNetCore/Generated from the current plugin (review the diff!)
	UPDATE_GOLDEN=1 CONNECT_PLUGIN=$(CURDIR)/$(PLUGIN) dotnet test plugin/ProtocGenConnectCSharp.Tests --nologo \
		--filter "FullyQualifiedName~GoldenTests.Protoc"

BENCH := bin/bench/ConnectRpc.Benchmarks
BENCH_OUT ?= BENCHMARKS.md

bench-tools:
	@command -v h2load > /dev/null || { apt-get update -qq && apt-get install -y -qq nghttp2-client > /dev/null; }
	dotnet publish bench/ConnectRpc.Benchmarks -c Release -o bin/bench --nologo -v:q

bench: plugin bench-tools ## Benchmarks side by side with grpc-dotnet and bare Kestrel (full run), written to BENCHMARKS.md
	$(BENCH) run --out $(BENCH_OUT) --plugin $(PLUGIN)

bench-quick: plugin bench-tools ## The same benchmarks, one short round (under two minutes), written to BENCHMARKS.md
	$(BENCH) run --quick --out $(BENCH_OUT) --plugin $(PLUGIN)

clean: ## Remove build output, bin/ and node_modules/
	rm -rf bin node_modules
	dotnet clean ConnectPlugin.sln --nologo -v:q
