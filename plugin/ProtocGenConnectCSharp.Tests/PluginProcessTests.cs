using System.Text;
using CliWrap.Buffered;
using Google.Protobuf;
using Google.Protobuf.Compiler;
using Google.Protobuf.Reflection;

namespace ConnectRpc.Plugin.Tests;

/// <summary>The plugin executable as protoc, buf and people run it.</summary>
public sealed class PluginProcessTests
{
    public static TheoryData<string, byte[]> GarbageInputs() => new()
    {
        { "empty", [] },
        { "text", Encoding.UTF8.GetBytes("this is not a protobuf message\n") },
        { "invalid wire type", [0xFF, 0xFF, 0xFF, 0xFF, 0xFF] },
        { "truncated request", TruncatedRequest() },
        { "length past the end", [0x0A, 0x7F, 0x61] },
    };

    [Theory]
    [MemberData(nameof(GarbageInputs))]
    public async Task Stdin_Garbage_ExitsNonZeroWithOneLineAndNoStackTrace(string description, byte[] input)
    {
        BufferedCommandResult result = await TestEnvironment.RunAsync(TestEnvironment.Plugin, [], stdin: input);

        Assert.NotEqual(0, result.ExitCode);
        string[] lines = result.StandardError.TrimEnd('\n').Split('\n');
        Assert.True(lines.Length == 1, $"{description}: expected one stderr line, got:\n{result.StandardError}");
        Assert.StartsWith("protoc-gen-connect-csharp: ", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.StandardError, StringComparison.Ordinal);
        Assert.Empty(result.StandardOutput);
    }

    [Fact]
    public async Task Version_PrintsVersion()
    {
        BufferedCommandResult result = await TestEnvironment.RunAsync(TestEnvironment.Plugin, ["--version"]);

        Assert.Equal(0, result.ExitCode);
        Assert.StartsWith("0.1.0", result.StandardOutput, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--bogus")]
    [InlineData("--help --version")]
    [InlineData("no_client")]
    public async Task Arguments_Unknown_ExitsTwoWithOneLine(string arguments)
    {
        BufferedCommandResult result = await TestEnvironment.RunAsync(TestEnvironment.Plugin, arguments.Split(' '));

        Assert.Equal(2, result.ExitCode);
        Assert.Empty(result.StandardOutput);
        Assert.StartsWith($"protoc-gen-connect-csharp: unknown arguments '{arguments}'", result.StandardError, StringComparison.Ordinal);
        Assert.Single(result.StandardError.TrimEnd('\n').Split('\n'));
    }

    [Fact]
    public async Task Help_DescribesUsageAndOptions()
    {
        BufferedCommandResult result = await TestEnvironment.RunAsync(TestEnvironment.Plugin, ["--help"]);

        Assert.Equal(0, result.ExitCode);
        foreach (string option in new[] { "no_client", "no_server", "no_service_base", "internal_access", "file_suffix", "base_namespace", "CodeGeneratorRequest" })
        {
            Assert.Contains(option, result.StandardOutput, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Request_UnknownParameter_ResponseErrorNamesIt()
    {
        CodeGeneratorResponse response = await RunPluginAsync(GreetRequest("no_client,frobnicate=1"));

        Assert.Contains("unknown option 'frobnicate'", response.Error, StringComparison.Ordinal);
        Assert.Empty(response.File);
    }

    [Fact]
    public async Task Protoc_UnknownParameter_FailsWithTheMessage()
    {
        GoldenCase greet = GoldenCase.Load("greet");
        string output = TestEnvironment.CreateTempDirectory();
        BufferedCommandResult result = await TestEnvironment.RunAsync(
            TestEnvironment.Protoc,
            ["-I", greet.ProtoRoot, $"--plugin=protoc-gen-connect-csharp={TestEnvironment.Plugin}", $"--connect-csharp_out=bogus:{output}", .. greet.ProtoFiles],
            greet.ProtoRoot);

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("unknown option 'bogus'", result.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Request_Valid_DeclaresOptionalAndEditionsSupport()
    {
        CodeGeneratorResponse response = await RunPluginAsync(GreetRequest(parameter: ""));

        Assert.True(string.IsNullOrEmpty(response.Error), response.Error);
        var features = (CodeGeneratorResponse.Types.Feature)response.SupportedFeatures;
        Assert.True(features.HasFlag(CodeGeneratorResponse.Types.Feature.Proto3Optional));
        Assert.True(features.HasFlag(CodeGeneratorResponse.Types.Feature.SupportsEditions));
        Assert.Equal((int)Edition.Proto2, response.MinimumEdition);
        Assert.Equal((int)Edition._2024, response.MaximumEdition);
        Assert.Equal("GreetConnect.cs", Assert.Single(response.File).Name);
    }

    [Fact]
    public async Task Request_FileMissingFromRequest_ResponseErrorNamesIt()
    {
        CodeGeneratorRequest request = GreetRequest(parameter: "");
        request.FileToGenerate.Add("missing/v1/missing.proto");

        CodeGeneratorResponse response = await RunPluginAsync(request);

        Assert.Contains("missing/v1/missing.proto", response.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Protoc_OptFlag_IsTheSameAsInlineParameters()
    {
        GoldenCase testCase = GoldenCase.Load("internal_access");
        string output = TestEnvironment.CreateTempDirectory();

        await TestEnvironment.RunCheckedAsync(
            TestEnvironment.Protoc,
            ["-I", testCase.ProtoRoot, $"--plugin=protoc-gen-connect-csharp={TestEnvironment.Plugin}",
             $"--connect-csharp_out={output}", $"--connect-csharp_opt={testCase.Options}", .. testCase.ProtoFiles],
            testCase.ProtoRoot);

        Assert.Equal(GoldenCase.ReadTree(testCase.GoldenRoot), GoldenCase.ReadTree(output));
    }

    [Fact]
    public async Task Request_TypeNotInRequest_ResponseErrorNamesIt()
    {
        CodeGeneratorRequest request = GreetRequest(parameter: "");
        request.ProtoFile[0].Service[0].Method[0].InputType = ".elsewhere.v1.Missing";

        CodeGeneratorResponse response = await RunPluginAsync(request);

        Assert.Equal("type 'elsewhere.v1.Missing' is not defined in any file of the request", response.Error);
        Assert.Empty(response.File);
    }

    [Fact]
    public async Task Request_TwoFilesWithOneOutputName_ResponseErrorSuggestsBaseNamespace()
    {
        CodeGeneratorRequest request = GreetRequest(parameter: "");
        FileDescriptorProto twin = request.ProtoFile[0].Clone();
        twin.Name = "other/v1/greet.proto";
        twin.Package = "other.v1";
        twin.Service[0].Method[0].InputType = ".other.v1.GreetRequest";
        twin.Service[0].Method[0].OutputType = ".other.v1.GreetResponse";
        request.ProtoFile.Add(twin);
        request.FileToGenerate.Add(twin.Name);

        CodeGeneratorResponse response = await RunPluginAsync(request);

        Assert.Contains("also generates 'GreetConnect.cs'", response.Error, StringComparison.Ordinal);
        Assert.Contains("base_namespace", response.Error, StringComparison.Ordinal);

        CodeGeneratorResponse separated = await RunPluginAsync(Reparameterized(request, "base_namespace="));
        Assert.True(string.IsNullOrEmpty(separated.Error), separated.Error);
        Assert.Equal(["Greet/V1/GreetConnect.cs", "Other/V1/GreetConnect.cs"], separated.File.Select(f => f.Name));
    }

    [Fact]
    public async Task Request_MethodNamesCollideInCSharp_ResponseErrorNamesBoth()
    {
        CodeGeneratorRequest request = GreetRequest(parameter: "");
        MethodDescriptorProto twin = request.ProtoFile[0].Service[0].Method[0].Clone();
        twin.Name = "greet";
        request.ProtoFile[0].Service[0].Method.Add(twin);

        CodeGeneratorResponse response = await RunPluginAsync(request);

        Assert.Contains("methods 'Greet' and 'greet' of service greet.v1.GreetService both map to the C# name 'Greet'", response.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Request_FileWithoutServices_GeneratesNothing()
    {
        CodeGeneratorRequest request = GreetRequest(parameter: "");
        request.ProtoFile[0].Service.Clear();

        CodeGeneratorResponse response = await RunPluginAsync(request);

        Assert.True(string.IsNullOrEmpty(response.Error), response.Error);
        Assert.Empty(response.File);
    }

    private static CodeGeneratorRequest Reparameterized(CodeGeneratorRequest request, string parameter)
    {
        CodeGeneratorRequest copy = request.Clone();
        copy.Parameter = parameter;
        return copy;
    }

    private static async Task<CodeGeneratorResponse> RunPluginAsync(CodeGeneratorRequest request)
    {
        using var timeout = new CancellationTokenSource(TestEnvironment.ProcessTimeout);
        using var stdout = new MemoryStream();
        var stderr = new StringBuilder();
        CliWrap.CommandResult result = await CliWrap.Cli.Wrap(TestEnvironment.Plugin)
            .WithStandardInputPipe(CliWrap.PipeSource.FromBytes(request.ToByteArray()))
            .WithStandardOutputPipe(CliWrap.PipeTarget.ToStream(stdout))
            .WithStandardErrorPipe(CliWrap.PipeTarget.ToStringBuilder(stderr))
            .WithValidation(CliWrap.CommandResultValidation.None)
            .ExecuteAsync(timeout.Token);
        Assert.True(result.ExitCode == 0, stderr.ToString());
        return CodeGeneratorResponse.Parser.ParseFrom(stdout.ToArray());
    }

    /// <summary>A request for the greet case, built the way protoc builds it.</summary>
    internal static CodeGeneratorRequest GreetRequest(string parameter)
    {
        var file = new FileDescriptorProto
        {
            Name = "greet/v1/greet.proto",
            Package = "greet.v1",
            Syntax = "proto3",
            MessageType = { new DescriptorProto { Name = "GreetRequest" }, new DescriptorProto { Name = "GreetResponse" } },
            Service =
            {
                new ServiceDescriptorProto
                {
                    Name = "GreetService",
                    Method = { new MethodDescriptorProto { Name = "Greet", InputType = ".greet.v1.GreetRequest", OutputType = ".greet.v1.GreetResponse" } },
                },
            },
        };
        return new CodeGeneratorRequest { FileToGenerate = { file.Name }, Parameter = parameter, ProtoFile = { file } };
    }

    private static byte[] TruncatedRequest()
    {
        byte[] whole = GreetRequest("").ToByteArray();
        return whole[..(whole.Length / 2)];
    }
}
