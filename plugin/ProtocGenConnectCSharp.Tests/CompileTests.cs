using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace ConnectRpc.Plugin.Tests;

/// <summary>
/// Every golden file, together with protoc's message code for its case, compiles against
/// ConnectRpc with nullable enabled, every warning wave on, XML docs checked, and no
/// warning at all; and the user-facing API (docs/architecture.md#the-user-facing-api)
/// compiles against it as written.
/// </summary>
public sealed class CompileTests
{
    private const string Consumer = """
        #nullable enable
        #pragma warning disable CS1591 // this snippet is not documentation
        namespace CompileCheck
        {
            using System;
            using System.Collections.Generic;
            using System.Threading.Tasks;
            using ConnectRpc;
            using Connectrpc.Greet.V1;

            // The seed's handler, in the four RPC shapes.
            public sealed class GreetService : IGreetService
            {
                public Task<GreetResponse> GreetAsync(GreetRequest request, RequestContext ctx)
                {
                    Console.WriteLine(ctx.RequestHeaders.Get("acme-tenant-id"));
                    ctx.ResponseHeaders["greet-version"] = "v1";
                    ctx.ResponseTrailers["greet-version"] = "v1";
                    return Task.FromResult(new GreetResponse());
                }

                public async IAsyncEnumerable<GreetResponse> GreetManyAsync(GreetRequest request, RequestContext ctx)
                {
                    await Task.Yield();
                    yield return new GreetResponse { Greeting = request.Name };
                }

                public async Task<GreetResponse> GreetEveryoneAsync(IAsyncEnumerable<GreetRequest> requests, RequestContext ctx)
                {
                    var names = new List<string>();
                    await foreach (GreetRequest request in requests.WithCancellation(ctx.CancellationToken))
                    {
                        names.Add(request.Name);
                    }

                    return new GreetResponse { Greeting = string.Join(", ", names) };
                }

                public async IAsyncEnumerable<GreetResponse> ChatAsync(IAsyncEnumerable<GreetRequest> requests, RequestContext ctx)
                {
                    await foreach (GreetRequest request in requests)
                    {
                        yield return new GreetResponse { Greeting = request.Name };
                    }
                }
            }

            // Deriving from the generated base: override what is served, the rest answers unimplemented.
            public sealed class GreetOnlyService : GreetServiceBase
            {
                public override Task<GreetResponse> GreetAsync(GreetRequest request, RequestContext context) =>
                    Task.FromResult(new GreetResponse { Greeting = request.Name });
            }

            // One class may implement several generated interfaces, from one file or several.
            public sealed class MultiService : Multi.V1.IAlphaService, Multi.V1.IGammaService
            {
                public Task<Multi.V1.Empty> AlphaAsync(Multi.V1.Empty request, RequestContext context) => Task.FromResult(request);

                public Task<Multi.V1.Empty> GammaAsync(Multi.V1.Empty request, RequestContext context) => Task.FromResult(request);
            }

            public static class Usage
            {
                // The shape a server's mapping call takes: a binder method group, inferred.
                private static ServiceBinder<T> Map<T>(Action<ServiceBinder<T>> bind) where T : class
                {
                    var binder = new ServiceBinder<T>();
                    bind(binder);
                    return binder;
                }

                public static async Task RunAsync()
                {
                    Map<GreetService>(IGreetService.BindService);
                    Map<GreetOnlyService>(IGreetService.BindService);
                    Map<MultiService>(Multi.V1.IAlphaService.BindService);
                    Map<MultiService>(Multi.V1.IGammaService.BindService);

                    IGreetServiceClient client = new GreetServiceClient("https://api.acme.com");
                    using var meta = new ResponseMetadata();
                    GreetResponse res = await client.GreetAsync(new GreetRequest(),
                        headers: new() { ["acme-tenant-id"] = "1234" });
                    Console.WriteLine(res.Greeting);
                    Console.WriteLine(meta.Headers.Get("greet-version"));
                    Console.WriteLine(meta.Trailers.Get("greet-version"));

                    _ = await client.GreetAsync(new GreetRequest(),
                        headers: new Dictionary<string, string> { ["acme-tenant-id"] = "1234" },
                        timeout: TimeSpan.FromSeconds(1));
                    await foreach (GreetResponse message in client.GreetManyAsync(new GreetRequest()))
                    {
                        Console.WriteLine(message.Greeting);
                    }

                    _ = await client.GreetEveryoneAsync(Requests());
                    await foreach (GreetResponse message in client.ChatAsync(Requests()))
                    {
                        Console.WriteLine(message.Greeting);
                    }

                    string path = GreetServiceConnect.Procedures.Greet;
                    Console.WriteLine(path + GreetServiceConnect.Descriptor.FullName);
                    Console.WriteLine(Collide.V1.ColliderConnect.Procedures.Procedures_);
                    Collide.V1.IColliderClient collider = new Collide.V1.ColliderClient_("http://127.0.0.1:1");
                    _ = collider.ToStringAsync(new Collide.V1.Task());
                }

                private static async IAsyncEnumerable<GreetRequest> Requests()
                {
                    await Task.Yield();
                    yield return new GreetRequest { Name = "Ada" };
                }
            }
        }
        """;

    [Fact]
    public async Task GoldenOutput_WithProtocMessages_CompilesWithoutWarnings()
    {
        CSharpParseOptions parse = new CSharpParseOptions(LanguageVersion.Latest, DocumentationMode.Diagnose);
        var trees = new List<SyntaxTree>();
        var goldenPaths = new HashSet<string>(StringComparer.Ordinal);
        foreach (string name in GoldenCase.Names())
        {
            GoldenCase testCase = GoldenCase.Load(name);
            foreach ((string path, string content) in GoldenCase.ReadTree(testCase.GoldenRoot))
            {
                string id = $"testdata/{name}/golden/{path}";
                goldenPaths.Add(id);
                trees.Add(CSharpSyntaxTree.ParseText(content, parse, id, cancellationToken: TestContext.Current.CancellationToken));
            }

            string messages = TestEnvironment.CreateTempDirectory();
            await TestEnvironment.RunCheckedAsync(
                TestEnvironment.Protoc,
                ["-I", testCase.ProtoRoot, "-I", TestEnvironment.ProtocInclude, $"--csharp_out={messages}", .. testCase.ProtoFiles],
                testCase.ProtoRoot);
            foreach ((string path, string content) in GoldenCase.ReadTree(messages))
            {
                trees.Add(CSharpSyntaxTree.ParseText(content, parse, $"protoc:{name}/{path}", cancellationToken: TestContext.Current.CancellationToken));
            }
        }

        trees.Add(CSharpSyntaxTree.ParseText(Consumer, parse, "Consumer.cs", cancellationToken: TestContext.Current.CancellationToken));

        ImmutableArray<Diagnostic> problems = Compile("GoldenCompileCheck", trees);
        Assert.True(
            problems.IsEmpty,
            "Generated code does not compile cleanly:\n" + string.Join('\n', problems.Take(40).Select(d => d.ToString())));
    }

    /// <summary>
    /// The point of the base class: a service gains a method, the code is regenerated, and an
    /// implementation written against the old service still compiles (by default); with
    /// <c>no_service_base</c> an implementation of the interface gets the compile error instead.
    /// </summary>
    [Fact]
    public async Task ServiceGainsMethod_BaseClassImplementationCompiles_InterfaceImplementationDoesNot()
    {
        const string Proto = """
            syntax = "proto3";
            package evolve.v1;
            message Req {}
            message Res {}
            service EvolveService {
              rpc Get(Req) returns (Res);
              rpc Added(Req) returns (stream Res);
            }
            """;
        string protoRoot = TestEnvironment.CreateTempDirectory();
        File.WriteAllText(Path.Combine(protoRoot, "evolve.proto"), Proto);

        ImmutableArray<Diagnostic> withBase = await CompileGeneratedAsync(protoRoot, "", OldImplementation("EvolveServiceBase", "override "));
        Assert.True(withBase.IsEmpty, "With the base class:\n" + string.Join('\n', withBase.Select(d => d.ToString())));

        ImmutableArray<Diagnostic> strict = await CompileGeneratedAsync(protoRoot, "no_service_base", OldImplementation("IEvolveService", ""));
        Diagnostic missing = Assert.Single(strict);
        Assert.Equal("CS0535", missing.Id); // 'Old' does not implement interface member 'IEvolveService.AddedAsync(...)'
        Assert.Contains("AddedAsync", missing.GetMessage(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
    }

    /// <summary>An implementation written when the service had only <c>Get</c>.</summary>
    private static string OldImplementation(string baseType, string modifier) => $$"""
        #nullable enable
        namespace Consumer
        {
            /// <summary>Serves Get.</summary>
            public sealed class Old : Evolve.V1.{{baseType}}
            {
                /// <inheritdoc/>
                public {{modifier}}System.Threading.Tasks.Task<Evolve.V1.Res> GetAsync(Evolve.V1.Req request, ConnectRpc.RequestContext context) =>
                    System.Threading.Tasks.Task.FromResult(new Evolve.V1.Res());
            }
        }
        """;

    private static async Task<ImmutableArray<Diagnostic>> CompileGeneratedAsync(string protoRoot, string options, string consumer)
    {
        string output = TestEnvironment.CreateTempDirectory();
        string connectOut = options.Length == 0 ? $"--connect-csharp_out={output}" : $"--connect-csharp_out={options}:{output}";
        await TestEnvironment.RunCheckedAsync(
            TestEnvironment.Protoc,
            ["-I", protoRoot, $"--plugin=protoc-gen-connect-csharp={TestEnvironment.Plugin}", $"--csharp_out={output}", connectOut, "evolve.proto"],
            protoRoot);
        CSharpParseOptions parse = new CSharpParseOptions(LanguageVersion.Latest, DocumentationMode.Diagnose);
        var trees = GoldenCase.ReadTree(output)
            .Select(file => CSharpSyntaxTree.ParseText(file.Value, parse, file.Key, cancellationToken: TestContext.Current.CancellationToken))
            .Append(CSharpSyntaxTree.ParseText(consumer, parse, "Consumer.cs", cancellationToken: TestContext.Current.CancellationToken))
            .ToList();
        Assert.Equal(3, trees.Count); // messages, RPC layer, consumer
        return Compile("EvolveCompileCheck", trees);
    }

    /// <summary>
    /// Compiles as a project with nullable, every warning wave and warnings as errors would;
    /// returns every warning and error.
    /// </summary>
    private static ImmutableArray<Diagnostic> Compile(string assemblyName, IEnumerable<SyntaxTree> trees)
    {
        CSharpCompilation compilation = CSharpCompilation.Create(
            assemblyName,
            trees,
            References(),
            new CSharpCompilationOptions(
                OutputKind.DynamicallyLinkedLibrary,
                nullableContextOptions: NullableContextOptions.Enable,
                warningLevel: 9999,
                generalDiagnosticOption: ReportDiagnostic.Error));

        using var assembly = new MemoryStream();
        Microsoft.CodeAnalysis.Emit.EmitResult result = compilation.Emit(assembly, cancellationToken: TestContext.Current.CancellationToken);
        ImmutableArray<Diagnostic> problems = result.Diagnostics
            .Where(d => d.Severity >= DiagnosticSeverity.Warning || d.IsWarningAsError)
            .ToImmutableArray();
        Assert.True(result.Success || !problems.IsEmpty);
        return problems;
    }

    private static IEnumerable<MetadataReference> References()
    {
        // The framework and every package this test references (Google.Protobuf, ConnectRpc).
        string tpa = (string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!;
        return tpa.Split(Path.PathSeparator)
            .Where(p => p.EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
            .Select(p => MetadataReference.CreateFromFile(p));
    }
}
