# Every entry point of the repository. Needs only dotnet, node/npm and make: NuGet and npm
# packages are restored on first use (protoc comes from the Google.Protobuf.Tools package,
# buf from the @bufbuild/buf npm package pinned by package-lock.json).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CONFIGURATION ?= Release
PLUGIN := bin/protoc-gen-connect-csharp
PROTOC := bin/protoc
BUF := node_modules/.bin/buf
GREET_OUT := examples/greet/gen

.PHONY: help plugin protoc tools generate demo test golden clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  make %-10s %s\n", $$1, $$2 }'

plugin: protoc ## Build bin/protoc-gen-connect-csharp (single file) and bin/protoc
	dotnet publish plugin/ProtocGenConnectCSharp -c $(CONFIGURATION) --use-current-runtime --self-contained false \
		-p:PublishSingleFile=true -p:DebugType=none -p:GenerateDocumentationFile=false -o bin --nologo -v:q

protoc: ## Copy protoc and the well-known .proto files from NuGet to bin/
	dotnet msbuild plugin/ProtocGenConnectCSharp -restore -t:InstallProtoc -p:ProtocDir=$(CURDIR)/bin -nologo -v:q

$(BUF): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(BUF)

tools: $(BUF) ## Install buf from the committed npm lockfile

generate: plugin tools ## Generate the Greet demo's C# with buf (messages + RPC layer)
	$(BUF) generate

demo: generate ## The main job: build the plugin and generate C# for examples/greet/v1/greet.proto
	@echo
	@echo "Generated from examples/greet/v1/greet.proto by buf generate (buf.gen.yaml):"
	@for f in $(GREET_OUT)/*.cs; do printf '  %-40s %6s lines\n' "$$f" "$$(wc -l < $$f)"; done
	@echo
	@echo "Types in $(GREET_OUT)/GreetConnect.cs:"
	@grep -E '^    (public|internal) .*(class|interface) ' $(GREET_OUT)/GreetConnect.cs | sed -E 's/^ +/  /'
	@echo
	@echo "The same with protoc: $(PROTOC) -I examples -I bin/include --plugin=protoc-gen-connect-csharp=$(PLUGIN) \\"
	@echo "    --csharp_out=DIR --connect-csharp_out=DIR greet/v1/greet.proto"

test: generate ## Run every test (the plugin tests run the published bin/ plugin through protoc and buf)
	$(BUF) lint
	@status=0; CONNECT_PLUGIN=$(CURDIR)/$(PLUGIN) dotnet test ConnectPlugin.sln --nologo 2>&1 | tee bin/test.log || status=$$?; \
	awk '/^(Passed|Failed)! / { for (i = 1; i <= NF; i++) { if ($$i == "Failed:") f += $$(i+1); if ($$i == "Passed:") p += $$(i+1) } } \
		END { printf "%d passed, %d failed\n", p, f }' bin/test.log; \
	exit $$status

golden: plugin tools ## Regenerate testdata/*/golden from the current plugin (review the diff!)
	UPDATE_GOLDEN=1 CONNECT_PLUGIN=$(CURDIR)/$(PLUGIN) dotnet test plugin/ProtocGenConnectCSharp.Tests --nologo \
		--filter "FullyQualifiedName~GoldenTests.Protoc"

clean: ## Remove build output, bin/ and node_modules/
	rm -rf bin node_modules $(GREET_OUT)
	dotnet clean ConnectPlugin.sln --nologo -v:q
