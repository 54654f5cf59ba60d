using System.Reflection;
using System.Runtime.InteropServices;
using CliWrap;
using CliWrap.Buffered;

namespace ConnectRpc.Plugin.Tests;

/// <summary>Paths to the real tools the tests drive, and a bounded way to run them.</summary>
internal static class TestEnvironment
{
    /// <summary>No process a test starts may run longer than this.</summary>
    public static readonly TimeSpan ProcessTimeout = TimeSpan.FromSeconds(60);

    public static string RepoRoot { get; } = Metadata("RepoRoot");

    public static string TestDataRoot { get; } = Path.Combine(RepoRoot, "testdata");

    /// <summary>
    /// The plugin executable: <c>CONNECT_PLUGIN</c> when set (make test points it at the
    /// published <c>bin/protoc-gen-connect-csharp</c>), else the build beside these tests.
    /// </summary>
    public static string Plugin { get; } = Environment.GetEnvironmentVariable("CONNECT_PLUGIN") is { Length: > 0 } plugin
        ? Path.GetFullPath(plugin)
        : Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "protoc-gen-connect-csharp.exe" : "protoc-gen-connect-csharp");

    /// <summary>protoc from the Google.Protobuf.Tools package.</summary>
    public static string Protoc { get; } = FindProtoc();

    /// <summary>The well-known .proto files shipped beside protoc.</summary>
    public static string ProtocInclude { get; } = Path.Combine(Metadata("ProtobufToolsPath"), "tools", "include");

    /// <summary>The buf CLI installed by <c>npm ci</c> from the committed lockfile.</summary>
    public static string Buf
    {
        get
        {
            string buf = Path.Combine(RepoRoot, "node_modules", ".bin", OperatingSystem.IsWindows() ? "buf.cmd" : "buf");
            return File.Exists(buf)
                ? buf
                : throw new InvalidOperationException($"buf is not installed at {buf}: run `npm ci` in {RepoRoot} (`make test` does).");
        }
    }

    /// <summary>
    /// Runs a process to its end, killed at <paramref name="timeout"/> (default <see cref="ProcessTimeout"/>);
    /// <paramref name="environment"/> sets variables (a null value removes one).
    /// </summary>
    public static async Task<BufferedCommandResult> RunAsync(
        string executable,
        IEnumerable<string> arguments,
        string? workingDirectory = null,
        byte[]? stdin = null,
        TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        using var cancel = new CancellationTokenSource(timeout ?? ProcessTimeout);
        Command command = Cli.Wrap(executable)
            .WithArguments(arguments)
            .WithWorkingDirectory(workingDirectory ?? RepoRoot)
            .WithValidation(CommandResultValidation.None);
        if (stdin is not null)
        {
            command = command.WithStandardInputPipe(PipeSource.FromBytes(stdin));
        }

        if (environment is not null)
        {
            command = command.WithEnvironmentVariables(environment);
        }

        return await command.ExecuteBufferedAsync(cancel.Token);
    }

    public static async Task<BufferedCommandResult> RunCheckedAsync(
        string executable,
        IEnumerable<string> arguments,
        string? workingDirectory = null,
        TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        BufferedCommandResult result = await RunAsync(executable, arguments, workingDirectory, timeout: timeout, environment: environment);
        Assert.True(
            result.ExitCode == 0,
            $"{Path.GetFileName(executable)} {string.Join(' ', arguments)} exited {result.ExitCode}:\n{result.StandardError}{result.StandardOutput}");
        return result;
    }

    public static string CreateTempDirectory()
    {
        string path = Path.Combine(Path.GetTempPath(), "connect-plugin-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }

    private static string FindProtoc()
    {
        string os = OperatingSystem.IsWindows() ? "windows" : OperatingSystem.IsMacOS() ? "macosx" : "linux";
        string arch = RuntimeInformation.OSArchitecture switch
        {
            Architecture.Arm64 when os == "linux" => "aarch_64",
            Architecture.X86 => "x86",
            _ => "x64",
        };
        string protoc = Path.Combine(Metadata("ProtobufToolsPath"), "tools", $"{os}_{arch}", OperatingSystem.IsWindows() ? "protoc.exe" : "protoc");
        if (!OperatingSystem.IsWindows())
        {
            // NuGet may unpack without the execute bit for everyone.
            File.SetUnixFileMode(protoc, File.GetUnixFileMode(protoc) | UnixFileMode.UserExecute);
        }

        return protoc;
    }

    private static string Metadata(string key) =>
        typeof(TestEnvironment).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value
        ?? throw new InvalidOperationException($"Assembly metadata {key} is missing.");
}
