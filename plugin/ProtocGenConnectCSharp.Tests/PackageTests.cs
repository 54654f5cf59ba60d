using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using CliWrap;
using CliWrap.Buffered;

namespace ConnectRpc.Plugin.Tests;

/// <summary>
/// The packages as a user gets them: the README's quick start followed in a fresh folder against the local feed
/// (server and client built with ConnectRpc.Tools, run on 127.0.0.1, called over Connect and gRPC), incremental
/// generation, protoc errors as MSBuild errors, the dotnet tool under protoc and buf, and what each package holds.
/// </summary>
[Collection(PackageTestGroup.Name)]
public sealed partial class PackageTests(PackageFixture packages)
{
    private static readonly TimeSpan ServerTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task QuickStart_BuildsRunsAndRegeneratesOnlyWhatChanged()
    {
        string app = Path.Combine(packages.Root, "quickstart");
        Directory.CreateDirectory(app);
        await FollowQuickStartAsync(app);

        // Added by name; the version the feed offers is the one version.
        foreach (string project in new[] { "Greet.Server/Greet.Server.csproj", "Greet.Client/Greet.Client.csproj" })
        {
            string text = File.ReadAllText(Path.Combine(app, project));
            Assert.Contains($"Include=\"ConnectRpc.Tools\" Version=\"{PackageFixture.Version}\"", text, StringComparison.Ordinal);
        }

        // An import from another folder, a well-known type (greet.proto's Timestamp) and streaming (GreetMany, Tail).
        string common = Path.Combine(app, "common", "acme", "audit", "v1");
        Directory.CreateDirectory(common);
        File.WriteAllText(Path.Combine(common, "audit.proto"), """
            syntax = "proto3";
            package acme.audit.v1;
            import "google/protobuf/duration.proto";
            message AuditEvent { string what = 1; google.protobuf.Duration took = 2; }
            """);
        string admin = Path.Combine(app, "Greet.Server", "admin", "greet", "v1");
        Directory.CreateDirectory(admin);
        File.WriteAllText(Path.Combine(admin, "audit_log.proto"), """
            syntax = "proto3";
            package greet.v1;
            import "acme/audit/v1/audit.proto";
            option csharp_namespace = "Greet.V1";
            message TailRequest { int32 count = 1; }
            service AuditLogService {
              rpc Tail(TailRequest) returns (stream acme.audit.v1.AuditEvent);
            }
            """);
        string serverProject = Path.Combine(app, "Greet.Server", "Greet.Server.csproj");
        InsertIntoProject(serverProject, """
            <ItemGroup>
              <Protobuf Include="admin/**/*.proto" ProtoRoot="admin" AdditionalImportDirs="../common" Access="Internal" />
              <Protobuf Include="../common/**/*.proto" ProtoRoot="../common" GrpcServices="None" Access="Internal" />
            </ItemGroup>
            """);

        await packages.DotnetCheckedAsync(["build", "Greet.Server", "--disable-build-servers"], app);
        await packages.DotnetCheckedAsync(["build", "Greet.Client", "--disable-build-servers"], app);
        string serverObj = Path.Combine(app, "Greet.Server", "obj");
        Dictionary<string, DateTime> generated = GeneratedFiles(serverObj);
        Assert.Contains(generated.Keys, f => f.EndsWith("/GreetConnect.cs", StringComparison.Ordinal));
        Assert.Contains(generated.Keys, f => f.EndsWith("/AuditLogConnect.cs", StringComparison.Ordinal));
        Assert.Contains(generated.Keys, f => f.EndsWith("/Audit.cs", StringComparison.Ordinal));
        Assert.DoesNotContain(generated.Keys, f => f.EndsWith("/AuditConnect.cs", StringComparison.Ordinal)); // GrpcServices None
        Assert.Contains("internal sealed partial class AuditEvent", File.ReadAllText(generated.Keys.Single(f => f.EndsWith("/Audit.cs", StringComparison.Ordinal))), StringComparison.Ordinal);
        Assert.Contains("internal static partial class AuditLogServiceConnect", File.ReadAllText(generated.Keys.Single(f => f.EndsWith("/AuditLogConnect.cs", StringComparison.Ordinal))), StringComparison.Ordinal);
        // Generated code only ever under obj/.
        HashSet<string> generatedNames = [.. generated.Keys.Select(Path.GetFileName).OfType<string>()];
        Assert.DoesNotContain(
            Directory.EnumerateFiles(app, "*.cs", SearchOption.AllDirectories),
            f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal) && generatedNames.Contains(Path.GetFileName(f)));

        await RunServerAndClientAsync(app);

        // Nothing changed: nothing is generated again.
        await packages.DotnetCheckedAsync(["build", "Greet.Server", "--disable-build-servers"], app);
        Assert.Equal(generated, GeneratedFiles(serverObj));

        // An imported file changed: what imports it is generated again, and nothing else.
        File.SetLastWriteTimeUtc(Path.Combine(common, "audit.proto"), DateTime.UtcNow.AddSeconds(1));
        await packages.DotnetCheckedAsync(["build", "Greet.Server", "--disable-build-servers"], app);
        Dictionary<string, DateTime> after = GeneratedFiles(serverObj);
        Assert.Equal(generated.Keys.Order(), after.Keys.Order());
        foreach ((string file, DateTime time) in after)
        {
            bool dependsOnAudit = file.Contains("/audit_log.proto/", StringComparison.Ordinal) || file.Contains("/audit.proto/", StringComparison.Ordinal);
            Assert.True(dependsOnAudit == (time != generated[file]), $"{file}: regenerated {time != generated[file]}");
        }

        // A machine the package ships no plugin executable for (Windows arm64, musl Linux): the same managed
        // plugin behind an app host made from the running SDK's own template writes the same code. Forced here,
        // where linux-x64 is shipped.
        string clientObj = Path.Combine(app, "Greet.Client", "obj");
        Dictionary<string, DateTime> shippedTimes = GeneratedFiles(clientObj);
        Dictionary<string, string> shipped = shippedTimes.Keys.ToDictionary(f => f, File.ReadAllText);
        await packages.DotnetCheckedAsync(["build", "Greet.Client", "--disable-build-servers", "-p:ConnectRpcPluginFromSdkAppHost=true"], app);
        Assert.Single(Directory.EnumerateFiles(clientObj, "protoc-gen-connect-csharp", SearchOption.AllDirectories),
            f => f.Replace('\\', '/').Contains("/connectrpc/plugin/", StringComparison.Ordinal));
        Dictionary<string, DateTime> sdkHostTimes = GeneratedFiles(clientObj);
        Assert.All(sdkHostTimes, entry => Assert.NotEqual(shippedTimes[entry.Key], entry.Value)); // generated again, by that host
        Assert.Equal(shipped, sdkHostTimes.Keys.ToDictionary(f => f, File.ReadAllText));

        // The quick start's test: the service in memory through WebApplicationFactory, unary and streaming
        // (and the template's own empty test).
        BufferedCommandResult tests = await packages.DotnetCheckedAsync(["test", "Greet.Tests", "--disable-build-servers"], app);
        Assert.Contains("Failed:     0, Passed:     3,", tests.StandardOutput, StringComparison.Ordinal);

        // A mistake in a .proto is an MSBuild error at its file, line and column.
        string broken = Path.Combine(app, "Greet.Server", "protos", "greet", "v1", "broken.proto");
        File.WriteAllText(broken, "syntax = \"proto3\";\npackage greet.v1;\n\nmessage Broken { strin name = 1; }\n");
        BufferedCommandResult failed = await packages.DotnetAsync(["build", "Greet.Server", "--disable-build-servers"], app);
        File.Delete(broken);
        Assert.NotEqual(0, failed.ExitCode);
        Assert.Matches(Regex.Escape(broken) + @"\(4,\d+\): error PROTOC: ""strin"" is not defined\.", failed.StandardOutput);
    }

    [Fact]
    public async Task BesideGrpcTools_OneProjectBuildsGrpcDotnetAndConnectServices()
    {
        string app = Path.Combine(packages.Root, "grpc");
        Directory.CreateDirectory(app);
        await packages.DotnetCheckedAsync(["new", "web", "-o", "Both"], app);
        foreach (string package in new[] { "ConnectRpc.AspNetCore", "ConnectRpc.Tools" })
        {
            await packages.DotnetCheckedAsync(["add", "Both", "package", package, "--version", PackageFixture.Version], app);
        }

        foreach (string package in PackageFixture.GrpcPackages)
        {
            await packages.DotnetCheckedAsync(["add", "Both", "package", package, "--version", PackageFixture.CentralVersion(package)], app);
        }

        Directory.CreateDirectory(Path.Combine(app, "Both", "protos"));
        File.WriteAllText(Path.Combine(app, "Both", "protos", "greet.proto"), """
            syntax = "proto3";
            package greet.v1;
            option csharp_namespace = "Greet.V1";
            message GreetRequest { string name = 1; }
            message GreetResponse { string greeting = 1; }
            service GreetService {
              rpc Greet(GreetRequest) returns (GreetResponse);
              rpc GreetMany(GreetRequest) returns (stream GreetResponse);
            }
            """);
        InsertIntoProject(Path.Combine(app, "Both", "Both.csproj"), """
            <ItemGroup>
              <Protobuf Include="protos/greet.proto" ProtoRoot="protos" GrpcServices="Server" ConnectServices="Both" />
            </ItemGroup>
            """);
        // grpc-dotnet's service base and Connect's interface and client, over one set of messages.
        File.WriteAllText(Path.Combine(app, "Both", "Program.cs"), """
            using ConnectRpc;
            using Greet.V1;
            using Grpc.Core;

            var builder = WebApplication.CreateBuilder(args);
            builder.Services.AddGrpc();
            builder.Services.AddConnect();
            var app = builder.Build();
            app.MapGrpcService<GrpcGreeter>().RequireHost("*:5001");
            app.MapConnectService<ConnectGreeter>(IGreetService.BindService).RequireHost("*:5000");
            IGreetServiceClient client = new GreetServiceClient("http://localhost:5000");
            app.Run();

            sealed class GrpcGreeter : GreetService.GreetServiceBase
            {
                public override Task<GreetResponse> Greet(GreetRequest request, ServerCallContext context) =>
                    Task.FromResult(new GreetResponse { Greeting = request.Name });
            }

            sealed class ConnectGreeter : IGreetService
            {
                public Task<GreetResponse> GreetAsync(GreetRequest request, RequestContext context) =>
                    Task.FromResult(new GreetResponse { Greeting = request.Name });

                public async IAsyncEnumerable<GreetResponse> GreetManyAsync(GreetRequest request, RequestContext context)
                {
                    await Task.Yield();
                    yield return new GreetResponse { Greeting = request.Name };
                }
            }
            """);

        await packages.DotnetCheckedAsync(["build", "Both", "--disable-build-servers"], app);

        string[] generated = [.. Directory.EnumerateFiles(Path.Combine(app, "Both", "obj"), "*.cs", SearchOption.AllDirectories)
            .Select(Path.GetFileName).OfType<string>().Where(f => f.StartsWith("Greet", StringComparison.Ordinal)).Order(StringComparer.Ordinal)];
        Assert.Equal(["Greet.cs", "GreetConnect.cs", "GreetGrpc.cs"], generated); // the messages once, from Grpc.Tools
    }

    [Fact]
    public async Task Tool_UnderProtocAndBuf_WritesWhatTheBuiltPluginWrites()
    {
        string work = Path.Combine(packages.Root, "tool");
        string toolPath = Path.Combine(work, "bin");
        Directory.CreateDirectory(work);
        await packages.DotnetCheckedAsync(
            ["tool", "install", "protoc-gen-connect-csharp", "--version", PackageFixture.Version, "--tool-path", toolPath, "--configfile", packages.NuGetConfig],
            work);
        string tool = Path.Combine(toolPath, OperatingSystem.IsWindows() ? "protoc-gen-connect-csharp.exe" : "protoc-gen-connect-csharp");
        var environment = new Dictionary<string, string?>
        {
            ["PATH"] = toolPath + Path.PathSeparator + Environment.GetEnvironmentVariable("PATH"),
            ["DOTNET_ROOT"] = DotnetRoot,
        };

        BufferedCommandResult version = await TestEnvironment.RunCheckedAsync(tool, ["--version"], work, environment: environment);
        Assert.Equal(PackageFixture.Version, version.StandardOutput.Trim());

        foreach (string name in new[] { "greet", "well_known_types", "internal_access" })
        {
            GoldenCase testCase = GoldenCase.Load(name);
            SortedDictionary<string, string> expected = GoldenCase.ReadTree(await testCase.GenerateWithProtocAsync());

            // protoc finds protoc-gen-connect-csharp on the PATH: no --plugin.
            string protocOut = Path.Combine(work, name, "protoc");
            Directory.CreateDirectory(protocOut);
            string opt = testCase.Options.Length == 0 ? "" : testCase.Options + ":";
            await TestEnvironment.RunCheckedAsync(
                TestEnvironment.Protoc,
                ["-I", testCase.ProtoRoot, "-I", TestEnvironment.ProtocInclude, $"--connect-csharp_out={opt}{protocOut}", .. testCase.ProtoFiles],
                testCase.ProtoRoot,
                environment: environment);
            AssertSameTree(expected, GoldenCase.ReadTree(protocOut), $"{name}: protoc with the tool on the PATH");

            // buf's `local: protoc-gen-connect-csharp`, found on the PATH too.
            string bufWork = Path.Combine(work, name, "buf");
            string input = Path.Combine(bufWork, "proto");
            foreach (string file in testCase.ProtoFiles)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(input, file))!);
                File.Copy(Path.Combine(testCase.ProtoRoot, file), Path.Combine(input, file));
            }

            File.WriteAllText(Path.Combine(input, "buf.yaml"), "version: v2\n");
            string bufOpt = testCase.Options.Length == 0 ? "" : $"\n    opt: {testCase.Options}";
            File.WriteAllText(
                Path.Combine(bufWork, "buf.gen.yaml"),
                $"version: v2\nplugins:\n  - local: protoc-gen-connect-csharp\n    out: out\n    strategy: all{bufOpt}\n");
            await TestEnvironment.RunCheckedAsync(TestEnvironment.Buf, ["generate", input, "--template", "buf.gen.yaml"], bufWork, environment: environment);
            AssertSameTree(expected, GoldenCase.ReadTree(Path.Combine(bufWork, "out")), $"{name}: buf with local: protoc-gen-connect-csharp");
        }
    }

    [Fact]
    public async Task Packages_HoldTheirFilesLicenceReadmeSymbolsAndOneVersion()
    {
        string commit = (await TestEnvironment.RunCheckedAsync("git", ["rev-parse", "HEAD"])).StandardOutput.Trim();
        foreach (string id in PackageFixture.PackageIds)
        {
            string[] entries = Entries(packages.PackagePath(id));
            Assert.Contains("LICENSE", entries);
            Assert.Contains("README.md", entries);
            Assert.DoesNotContain(entries, e => e.Contains(".Tests", StringComparison.OrdinalIgnoreCase)
                || e.Contains("Benchmark", StringComparison.OrdinalIgnoreCase)
                || e.Contains("xunit", StringComparison.OrdinalIgnoreCase)
                || e.Contains("CsCheck", StringComparison.OrdinalIgnoreCase));

            XElement metadata = packages.Nuspec(id).Elements().Single(e => e.Name.LocalName == "metadata");
            string Meta(string name) => (string?)metadata.Elements().SingleOrDefault(e => e.Name.LocalName == name) ?? "";
            Assert.Equal(PackageFixture.Version, Meta("version"));
            Assert.Matches(@"^\d+\.\d+\.\d+-[0-9A-Za-z.]+$", Meta("version")); // SemVer with a prerelease tag
            Assert.Equal("Apache-2.0", Meta("license"));
            Assert.Equal("README.md", Meta("readme"));
            Assert.NotEmpty(Meta("description"));
            XElement repository = metadata.Elements().Single(e => e.Name.LocalName == "repository");
            Assert.Equal(commit, (string?)repository.Attribute("commit"));
            Assert.Equal("git", (string?)repository.Attribute("type"));
            Assert.Equal(
                File.ReadAllText(Path.Combine(TestEnvironment.RepoRoot, "LICENSE")).ReplaceLineEndings("\n"),
                ReadEntry(packages.PackagePath(id), "LICENSE").ReplaceLineEndings("\n"));
        }

        // The libraries: the assembly with its XML docs; symbols in the .snupkg.
        foreach (string id in new[] { "ConnectRpc", "ConnectRpc.AspNetCore" })
        {
            Assert.Equal([$"lib/net10.0/{id}.dll", $"lib/net10.0/{id}.xml"], Entries(packages.PackagePath(id)).Where(e => e.StartsWith("lib/", StringComparison.Ordinal)));
            Assert.Contains($"lib/net10.0/{id}.pdb", Entries(Path.ChangeExtension(packages.PackagePath(id), ".snupkg")));
        }

        Assert.Equal(
            PackageFixture.ProjectPackageReferences("runtime/ConnectRpc/ConnectRpc.csproj").Order(),
            packages.Dependencies("ConnectRpc").Order());
        Assert.Contains(("Google.Protobuf", PackageFixture.CentralVersion("Google.Protobuf")), packages.Dependencies("ConnectRpc"));
        Assert.Contains(("ZstdSharp.Port", PackageFixture.CentralVersion("ZstdSharp.Port")), packages.Dependencies("ConnectRpc")); // Compressor.Zstd
        Assert.Equal([("ConnectRpc", PackageFixture.Version)], packages.Dependencies("ConnectRpc.AspNetCore"));
        Assert.Contains(packages.Nuspec("ConnectRpc.AspNetCore").Descendants(), e => e.Name.LocalName == "frameworkReference" && (string?)e.Attribute("name") == "Microsoft.AspNetCore.App");

        // ConnectRpc.Tools: a development dependency with no assembly; MSBuild files, protoc by dependency, and the
        // plugin for each platform, each executable in its platform's format for its processor.
        string tools = packages.PackagePath("ConnectRpc.Tools");
        string[] toolEntries = Entries(tools);
        Assert.Equal("true", (string?)packages.Nuspec("ConnectRpc.Tools").Descendants().Single(e => e.Name.LocalName == "developmentDependency"));
        Assert.DoesNotContain(toolEntries, e => e.StartsWith("lib/", StringComparison.Ordinal) || e.StartsWith("ref/", StringComparison.Ordinal));
        Assert.Contains("build/ConnectRpc.Tools.props", toolEntries);
        Assert.Contains("build/ConnectRpc.Tools.targets", toolEntries);
        Assert.Equal([("Google.Protobuf.Tools", PackageFixture.CentralVersion("Google.Protobuf.Tools"))], packages.Dependencies("ConnectRpc.Tools"));
        var expectedHosts = new (string Rid, string File, Func<byte[], string?> Check)[]
        {
            ("win-x64", "protoc-gen-connect-csharp.exe", b => Pe(b, 0x8664)),
            ("linux-x64", "protoc-gen-connect-csharp", b => Elf(b, 0x3E)),
            ("linux-arm64", "protoc-gen-connect-csharp", b => Elf(b, 0xB7)),
            ("osx-x64", "protoc-gen-connect-csharp", b => MachO(b, 0x01000007)),
            ("osx-arm64", "protoc-gen-connect-csharp", b => MachO(b, 0x0100000C)),
        };
        Assert.Equal(
            expectedHosts.Select(h => h.Rid).Order(StringComparer.Ordinal),
            toolEntries.Where(e => e.StartsWith("tools/", StringComparison.Ordinal)).Select(e => e.Split('/')[1]).Distinct().Order(StringComparer.Ordinal));
        foreach ((string rid, string file, Func<byte[], string?> check) in expectedHosts)
        {
            foreach (string companion in new[] { file, "protoc-gen-connect-csharp.dll", "protoc-gen-connect-csharp.runtimeconfig.json", "protoc-gen-connect-csharp.deps.json", "Google.Protobuf.dll" })
            {
                Assert.Contains($"tools/{rid}/{companion}", toolEntries);
            }

            string? problem = check(ReadEntryBytes(tools, $"tools/{rid}/{file}"));
            Assert.True(problem is null, $"tools/{rid}/{file}: {problem}");
        }

        // The dotnet tool: the plugin, framework-dependent, for any platform.
        XElement toolNuspec = packages.Nuspec("protoc-gen-connect-csharp");
        Assert.Contains(toolNuspec.Descendants(), e => e.Name.LocalName == "packageType" && (string?)e.Attribute("name") == "DotnetTool");
        string[] dotnetToolEntries = Entries(packages.PackagePath("protoc-gen-connect-csharp"));
        Assert.Contains("tools/net10.0/any/protoc-gen-connect-csharp.dll", dotnetToolEntries);
        Assert.Contains("tools/net10.0/any/DotnetToolSettings.xml", dotnetToolEntries);
        Assert.Empty(packages.Dependencies("protoc-gen-connect-csharp"));
    }

    /// <summary>Runs the README's quick start: its commands, its files, its project items, in order.</summary>
    private async Task FollowQuickStartAsync(string app)
    {
        string readme = File.ReadAllText(Path.Combine(TestEnvironment.RepoRoot, "README.md")).ReplaceLineEndings("\n");
        MatchCollection steps = QuickStartStep().Matches(readme);
        Assert.True(steps.Count >= 9, $"README.md has {steps.Count} quick start steps");
        foreach (Match step in steps)
        {
            string kind = step.Groups["kind"].Value;
            string path = step.Groups["path"].Value;
            string body = step.Groups["body"].Value;
            switch (kind)
            {
                case "run":
                    foreach (string line in body.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    {
                        int comment = line.IndexOf(" #", StringComparison.Ordinal);
                        string[] words = (comment < 0 ? line : line[..comment]).Split(' ', StringSplitOptions.RemoveEmptyEntries);
                        Assert.Equal("dotnet", words[0]);
                        await packages.DotnetCheckedAsync(words[1..], app);
                    }

                    break;
                case "file":
                    string file = Path.Combine(app, path);
                    Directory.CreateDirectory(Path.GetDirectoryName(file)!);
                    File.WriteAllText(file, body);
                    break;
                case "project":
                    InsertIntoProject(Path.Combine(app, path), body);
                    break;
                default:
                    Assert.Fail($"unknown quick start step {kind}");
                    break;
            }
        }
    }

    private static void InsertIntoProject(string project, string xml)
    {
        string text = File.ReadAllText(project);
        int end = text.LastIndexOf("</Project>", StringComparison.Ordinal);
        File.WriteAllText(project, text[..end] + xml.TrimEnd() + "\n" + text[end..]);
    }

    /// <summary>Starts the server on free ports of 127.0.0.1, runs the client against it, stops the server.</summary>
    private async Task RunServerAndClientAsync(string app)
    {
        string serverDll = Path.Combine(app, "Greet.Server", "bin", "Debug", "net10.0", "Greet.Server.dll");
        string clientDll = Path.Combine(app, "Greet.Client", "bin", "Debug", "net10.0", "Greet.Client.dll");
        var urls = new List<string>();
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var log = new StringBuilder();
        void OnLine(string line)
        {
            lock (log)
            {
                log.AppendLine(line);
                Match m = ListeningOn().Match(line);
                if (m.Success)
                {
                    urls.Add(m.Groups[1].Value);
                    if (urls.Count == 2)
                    {
                        ready.TrySetResult();
                    }
                }
            }
        }

        using var forceful = new CancellationTokenSource(ServerTimeout);
        using var graceful = new CancellationTokenSource();
        CommandTask<CommandResult> server = Cli.Wrap(PackageFixture.Dotnet)
            .WithArguments([serverDll, "--Http1Port", "0", "--Http2Port", "0"])
            .WithWorkingDirectory(Path.Combine(app, "Greet.Server"))
            .WithEnvironmentVariables(packages.DotnetEnvironment)
            .WithStandardOutputPipe(PipeTarget.ToDelegate(OnLine))
            .WithStandardErrorPipe(PipeTarget.ToDelegate(OnLine))
            .WithValidation(CommandResultValidation.None)
            .ExecuteAsync(forceful.Token, graceful.Token);
        try
        {
            Task first = await Task.WhenAny(ready.Task, server.Task, Task.Delay(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
            Assert.True(first == ready.Task, $"the server did not report two endpoints within 30 s:\n{log}");

            // Kestrel reports its endpoints in the order they were configured: HTTP/1.1, then HTTP/2.
            BufferedCommandResult client = await TestEnvironment.RunAsync(PackageFixture.Dotnet, [clientDll, urls[0], urls[1]], app, environment: packages.DotnetEnvironment);
            Assert.True(client.ExitCode == 0, $"client exited {client.ExitCode}:\n{client.StandardError}{client.StandardOutput}\nserver:\n{log}");
            Assert.Equal(
                ["Connect: Hello, Ada!", "Connect stream: Hello, Ada!", "Connect stream: Bonjour, Ada!", "Connect stream: Hallo, Ada!", "gRPC: Hello, Grace!"],
                client.StandardOutput.ReplaceLineEndings("\n").Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.All(urls, u => Assert.StartsWith("http://127.0.0.1:", u, StringComparison.Ordinal));
        }
        finally
        {
            await graceful.CancelAsync();
            try
            {
                await server.Task.WaitAsync(TimeSpan.FromSeconds(15), CancellationToken.None);
            }
            catch (Exception ex) when (ex is OperationCanceledException or TimeoutException)
            {
                await forceful.CancelAsync();
                try
                {
                    await server.Task.WaitAsync(TimeSpan.FromSeconds(15), CancellationToken.None);
                }
                catch (OperationCanceledException)
                {
                    // Killed.
                }
            }
        }
    }

    /// <summary>Every generated file under a project's obj/, by path (with /), and when it was written.</summary>
    private static Dictionary<string, DateTime> GeneratedFiles(string obj) =>
        Directory.EnumerateFiles(obj, "*.cs", SearchOption.AllDirectories)
            .Select(f => f.Replace('\\', '/'))
            .Where(f => f.Contains("/connectrpc/gen/", StringComparison.Ordinal))
            .ToDictionary(f => f, File.GetLastWriteTimeUtc);

    private static void AssertSameTree(SortedDictionary<string, string> expected, SortedDictionary<string, string> actual, string what)
    {
        Assert.True(expected.Count > 0, $"{what}: the reference output is empty");
        Assert.Equal(expected.Keys, actual.Keys);
        foreach ((string file, string content) in expected)
        {
            Assert.True(content == actual[file], $"{what}: {file} differs");
        }
    }

    private static string[] Entries(string package)
    {
        using ZipArchive zip = ZipFile.OpenRead(package);
        return [.. zip.Entries.Select(e => e.FullName)];
    }

    private static byte[] ReadEntryBytes(string package, string name)
    {
        using ZipArchive zip = ZipFile.OpenRead(package);
        using Stream stream = zip.GetEntry(name)!.Open();
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray();
    }

    private static string ReadEntry(string package, string name) => Encoding.UTF8.GetString(ReadEntryBytes(package, name));

    /// <summary>A PE image (MZ, then PE\0\0) for the machine; null when it is one.</summary>
    private static string? Pe(byte[] b, ushort machine)
    {
        if (b.Length < 0x40 || b[0] != 'M' || b[1] != 'Z')
        {
            return "no MZ header";
        }

        int pe = BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(0x3C));
        if (pe + 6 > b.Length || !b.AsSpan(pe, 4).SequenceEqual("PE\0\0"u8))
        {
            return "no PE signature";
        }

        ushort actual = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(pe + 4));
        return actual == machine ? null : $"PE machine 0x{actual:X}, expected 0x{machine:X}";
    }

    /// <summary>A 64-bit little-endian ELF executable for the machine (e_machine); null when it is one.</summary>
    private static string? Elf(byte[] b, ushort machine)
    {
        if (b.Length < 20 || b[0] != 0x7F || b[1] != 'E' || b[2] != 'L' || b[3] != 'F')
        {
            return "no ELF magic";
        }

        if (b[4] != 2 || b[5] != 1)
        {
            return "not 64-bit little-endian";
        }

        ushort actual = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(18));
        return actual == machine ? null : $"ELF machine 0x{actual:X}, expected 0x{machine:X}";
    }

    /// <summary>A 64-bit Mach-O image (0xFEEDFACF) for the CPU type; null when it is one.</summary>
    private static string? MachO(byte[] b, uint cpuType)
    {
        if (b.Length < 8 || BinaryPrimitives.ReadUInt32LittleEndian(b) != 0xFEEDFACF)
        {
            return "no 64-bit Mach-O magic";
        }

        uint actual = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(4));
        return actual == cpuType ? null : $"Mach-O CPU type 0x{actual:X}, expected 0x{cpuType:X}";
    }

    /// <summary>The DOTNET_ROOT of the running .NET (…/shared/Microsoft.NETCore.App/&lt;version&gt;/ is three levels down).</summary>
    private static string DotnetRoot { get; } =
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(typeof(object).Assembly.Location)!, "..", "..", ".."));

    [GeneratedRegex(@"<!-- quickstart:(?<kind>run|file|project) ?(?<path>\S*) -->\n```[a-z]*\n(?<body>.*?)```", RegexOptions.Singleline)]
    private static partial Regex QuickStartStep();

    [GeneratedRegex(@"Now listening on: (http://\S+)")]
    private static partial Regex ListeningOn();
}
