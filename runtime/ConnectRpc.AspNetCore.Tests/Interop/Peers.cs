using System.Reflection;
using System.Text;
using System.Text.Json;
using CliWrap;
using CliWrap.Buffered;
using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// The real peers of the interop tests: curl, buf curl (root node_modules) and connect-node
/// (interop/). `make test` installs them; a missing one fails the test with the command to run.
/// </summary>
internal static class Peers
{
    public static readonly string RepoRoot = typeof(Peers).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "RepoRoot").Value!;

    public static string Buf => Require(Path.Combine(RepoRoot, "node_modules", ".bin", "buf"), "npm ci");

    public static string InteropDir => Path.Combine(RepoRoot, "interop");

    public static string TestProtos => Path.Combine(RepoRoot, "testdata", "greet", "proto");

    private static string Require(string path, string install)
    {
        Assert.True(File.Exists(path), $"{path} is missing: run `make test` (or `{install}`) first.");
        return path;
    }

    /// <summary>Runs a peer to its end, bounded by a minute; returns its exit code and output.</summary>
    public static async Task<BufferedCommandResult> RunAsync(string program, params string[] arguments)
    {
        using CancellationTokenSource timeout = CancellationTokenSource.CreateLinkedTokenSource(Bounded.Token);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        return await Cli.Wrap(program)
            .WithArguments(arguments)
            .WithWorkingDirectory(RepoRoot)
            .WithValidation(CommandResultValidation.None)
            .ExecuteBufferedAsync(Encoding.UTF8, timeout.Token);
    }

    /// <summary>Runs interop/client.mjs and parses its JSON report.</summary>
    public static async Task<JsonElement> NodeClientAsync(Uri url, params string[] options)
    {
        string client = Require(Path.Combine(InteropDir, "client.mjs"), "make interop");
        Require(Path.Combine(InteropDir, "gen", "connectrpc", "greet", "v1", "greet_pb.js"), "make interop");
        Require(Path.Combine(InteropDir, "gen", "connectrpc", "jsonany", "v1", "json_any_pb.js"), "make interop");
        BufferedCommandResult result = await RunAsync("node", [client, "--url", url.ToString().TrimEnd('/'), .. options]);
        Assert.True(result.ExitCode == 0, $"client.mjs exited with {result.ExitCode}: {result.StandardError}");
        return JsonDocument.Parse(result.StandardOutput).RootElement.Clone();
    }
}

/// <summary>interop/server.mjs, running until disposed (CliWrap kills it on cancellation).</summary>
internal sealed class NodeServer : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop;
    private readonly CommandTask<CommandResult> _run;

    private NodeServer(CancellationTokenSource stop, CommandTask<CommandResult> run, Uri url)
    {
        _stop = stop;
        _run = run;
        Url = url;
    }

    public Uri Url { get; }

    public static async Task<NodeServer> StartAsync(bool h2c)
    {
        Assert.True(File.Exists(Path.Combine(Peers.InteropDir, "gen", "connectrpc", "greet", "v1", "greet_pb.js")), "interop/gen is missing: run `make interop` first.");
        Assert.True(File.Exists(Path.Combine(Peers.InteropDir, "gen", "connectrpc", "jsonany", "v1", "json_any_pb.js")), "interop/gen predates testdata/json_any: run `make interop` first.");
        var ready = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var errors = new StringBuilder();
        var stop = new CancellationTokenSource();
        CommandTask<CommandResult> run = Cli.Wrap("node")
            .WithArguments(["server.mjs", "--port", "0", "--ignore-stdin", .. h2c ? ["--h2c"] : Array.Empty<string>()])
            .WithWorkingDirectory(Peers.InteropDir)
            .WithValidation(CommandResultValidation.None)
            .WithStandardOutputPipe(PipeTarget.ToDelegate(line => ready.TrySetResult(line)))
            .WithStandardErrorPipe(PipeTarget.ToStringBuilder(errors))
            .ExecuteAsync(stop.Token);
        try
        {
            Task first = await Task.WhenAny(ready.Task, run.Task).Within();
            const string Prefix = "listening ";
            string? line = first == ready.Task ? ready.Task.Result : null;
            Assert.True(line?.StartsWith(Prefix, StringComparison.Ordinal) == true, $"server.mjs did not start ('{line}'): {errors}");
            return new NodeServer(stop, run, new Uri(line![Prefix.Length..]));
        }
        catch
        {
            await stop.CancelAsync();
            stop.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _run.Task.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (OperationCanceledException)
        {
            // Killed, as asked.
        }

        _stop.Dispose();
    }
}

/// <summary>
/// interop/server.mjs twice, over HTTP/1.1 and over cleartext HTTP/2, shared by the tests of a
/// class (an xunit class fixture): started before its first test, stopped after its last.
/// </summary>
public sealed class NodeServers : IAsyncLifetime
{
    private NodeServer? _http1;
    private NodeServer? _h2c;

    /// <summary>The server over cleartext HTTP/2 when <paramref name="h2c"/>, else the HTTP/1.1 one.</summary>
    internal NodeServer Server(bool h2c) => (h2c ? _h2c : _http1) ?? throw new InvalidOperationException("the node servers did not start");

    public async ValueTask InitializeAsync()
    {
        _http1 = await NodeServer.StartAsync(h2c: false);
        _h2c = await NodeServer.StartAsync(h2c: true);
    }

    public async ValueTask DisposeAsync()
    {
        if (_h2c is not null)
        {
            await _h2c.DisposeAsync();
        }

        if (_http1 is not null)
        {
            await _http1.DisposeAsync();
        }
    }
}
