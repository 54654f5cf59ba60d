using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using Greet.V1;

using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// A process a proxy test started: its output kept line by line, stopped with a signal and
/// waited for, bounded; killed (with its children) only when it does not stop.
/// </summary>
internal sealed class RigProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _lines = new();

    private RigProcess(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    public string Name { get; }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Every line the process wrote, stdout and stderr, so far.</summary>
    public IReadOnlyList<string> Lines => [.. _lines];

    public string Output => string.Join('\n', _lines);

    public static RigProcess Start(string name, string program, IEnumerable<string> arguments, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        var process = new Process { StartInfo = start };
        var rig = new RigProcess(name, process);
        process.OutputDataReceived += (_, e) => rig.Add(e.Data);
        process.ErrorDataReceived += (_, e) => rig.Add(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return rig;
    }

    /// <summary>Waits (bounded) for a line containing <paramref name="text"/>; fails if the process exits first.</summary>
    public async Task WaitForLineAsync(string text, TimeSpan timeout)
    {
        var waited = Stopwatch.StartNew();
        while (!_lines.Any(line => line.Contains(text, StringComparison.Ordinal)))
        {
            if (_process.HasExited)
            {
                Assert.Fail($"{Name} exited ({_process.ExitCode}) before writing '{text}':\n{Output}");
            }

            Assert.True(waited.Elapsed < timeout, $"{Name} did not write '{text}' within {timeout.TotalSeconds} s:\n{Output}");
            await Task.Delay(50, Bounded.Token);
        }
    }

    /// <summary>Sends SIGTERM (with kill(1)): the process stops in its own way.</summary>
    public void Terminate()
    {
        if (_process.HasExited)
        {
            return;
        }

        using var kill = System.Diagnostics.Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]);
        Assert.True(kill.WaitForExit(TimeSpan.FromSeconds(10)) && (kill.ExitCode == 0 || _process.HasExited), $"kill -TERM {_process.Id} ({Name}) failed");
    }

    /// <summary>Waits for the process to exit, bounded; returns whether it did (else it is left running).</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(Bounded.Token);
        bounded.CancelAfter(timeout);
        try
        {
            await _process.WaitForExitAsync(bounded.Token);
            return true;
        }
        catch (OperationCanceledException) when (!Bounded.Token.IsCancellationRequested)
        {
            return false;
        }
    }

    public int ExitCode => _process.ExitCode;

    /// <summary>SIGTERM, then up to 10 s to exit; killed (with its children) after that.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                Terminate();
                if (!await WaitForExitAsync(TimeSpan.FromSeconds(10)))
                {
                    _process.Kill(entireProcessTree: true);
                    await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
                }
            }
        }
        finally
        {
            _process.Dispose();
        }
    }

    private void Add(string? line)
    {
        if (line is not null)
        {
            _lines.Enqueue(line);
        }
    }
}

/// <summary>
/// One instance of the Greet demo's server (examples/greet/server) on two fixed loopback ports,
/// HTTP/1.1 and cleartext HTTP/2, so that a proxy's configuration names it across restarts.
/// </summary>
internal sealed class GreetInstance : IAsyncDisposable
{
    public const string Token = "demo-token";

    private RigProcess? _process;
    private readonly List<RigProcess> _stopped = [];

    public GreetInstance(string name)
    {
        Name = name;
        Http1Port = ProxyRig.FreePort();
        Http2Port = ProxyRig.FreePort();
    }

    public string Name { get; }

    public int Http1Port { get; }

    public int Http2Port { get; }

    public RigProcess Process => _process ?? throw new InvalidOperationException($"{Name} is not running");

    /// <summary>The output of every run of this instance, the current one last.</summary>
    public string AllOutput => string.Join('\n', _stopped.Append(_process).OfType<RigProcess>().Select(p => p.Output));

    /// <summary>How many calls this instance's handlers logged for <paramref name="tenant"/>, over every run.</summary>
    public int CallsBy(string tenant) =>
        _stopped.Append(_process).OfType<RigProcess>().Sum(p => p.Lines.Count(line => line.EndsWith(" called by tenant " + tenant, StringComparison.Ordinal)));

    public async Task StartAsync()
    {
        Assert.True(_process is null || _process.HasExited, $"{Name} is still running");
        if (_process is not null)
        {
            _stopped.Add(_process);
        }

        _process = RigProcess.Start(Name, ProxyRig.GreetServer, [
            "--http1-port", Http1Port.ToString(CultureInfo.InvariantCulture),
            "--http2-port", Http2Port.ToString(CultureInfo.InvariantCulture),
            "--token", Token]);
        await _process.WaitForLineAsync(" listening on ", TimeSpan.FromSeconds(30));
    }

    /// <summary>The lines of every run that are warnings or errors (the console logger's "warn:" and "fail:").</summary>
    public IEnumerable<string> Problems =>
        AllOutput.Split('\n').Where(line => line.Contains(" warn: ", StringComparison.Ordinal) || line.Contains(" fail: ", StringComparison.Ordinal) || line.Contains(" crit: ", StringComparison.Ordinal));

    public async ValueTask DisposeAsync()
    {
        if (_process is not null)
        {
            await _process.DisposeAsync();
        }

        foreach (RigProcess stopped in _stopped)
        {
            await stopped.DisposeAsync();
        }
    }
}

/// <summary>
/// The proxy tests' rig: three Greet servers, and HAProxy or nginx in front of them with the
/// configuration committed under examples/proxies, its ports filled in, in a temporary directory.
/// </summary>
internal static class ProxyRig
{
    public static readonly string RepoRoot = typeof(ProxyRig).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "RepoRoot").Value!;

    private static readonly string s_configuration = typeof(ProxyRig).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "Configuration").Value!;

    /// <summary>The Greet demo's server as the test project's build built it (a project reference).</summary>
    public static string GreetServer
    {
        get
        {
            string path = Path.Combine(RepoRoot, "examples", "greet", "server", "bin", s_configuration, "net10.0", "Greet.Server");
            Assert.True(File.Exists(path), $"{path} is missing: build the tests (dotnet build runtime/ConnectRpc.AspNetCore.Tests) first.");
            return path;
        }
    }

    /// <summary>A program from Debian's packages; `make test` installs it when missing.</summary>
    public static string Require(string program, string package)
    {
        string? found = new[] { "/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin" }
            .Select(dir => Path.Combine(dir, program)).FirstOrDefault(File.Exists);
        Assert.True(found is not null, $"{program} is missing: run `make test`, or `apt-get install {package}` as root.");
        return found!;
    }

    /// <summary>A free TCP port on 127.0.0.1 (free now: bound and released).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>examples/proxies/<paramref name="name"/> with every {{NAME}} replaced; fails if one is left.</summary>
    public static string Config(string name, IReadOnlyDictionary<string, string> values, IReadOnlyList<GreetInstance> servers)
    {
        string text = File.ReadAllText(Path.Combine(RepoRoot, "examples", "proxies", name));
        for (int i = 0; i < servers.Count; i++)
        {
            text = text
                .Replace($"{{{{SERVER{i + 1}_HTTP1_PORT}}}}", servers[i].Http1Port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
                .Replace($"{{{{SERVER{i + 1}_HTTP2_PORT}}}}", servers[i].Http2Port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);
        }

        foreach ((string key, string value) in values)
        {
            text = text.Replace("{{" + key + "}}", value, StringComparison.Ordinal);
        }

        string[] left = [.. text.Split('\n').Where(line => !line.TrimStart().StartsWith('#') && line.Contains("{{", StringComparison.Ordinal))];
        Assert.True(left.Length == 0, $"{name}: placeholders left: {string.Join("; ", left)}");
        return text;
    }

    /// <summary>Waits (bounded) until a TCP connection to 127.0.0.1:<paramref name="port"/> succeeds.</summary>
    public static async Task WaitForPortAsync(int port, RigProcess owner)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port, Bounded.Token);
                return;
            }
            catch (SocketException) when (waited.Elapsed < TimeSpan.FromSeconds(15) && !owner.HasExited)
            {
                await Task.Delay(50, Bounded.Token);
            }
            catch (SocketException ex)
            {
                Assert.Fail($"{owner.Name} is not listening on {port} ({ex.SocketErrorCode}):\n{owner.Output}");
            }
        }
    }

    /// <summary>
    /// Stops the proxies first, in the order given (nginx's master stops its worker on SIGTERM),
    /// then the servers, and deletes <paramref name="dir"/>.
    /// </summary>
    public static async Task StopAsync(string dir, GreetInstance[] servers, params RigProcess?[] proxies)
    {
        foreach (RigProcess? proxy in proxies)
        {
            if (proxy is not null)
            {
                await proxy.DisposeAsync();
            }
        }

        foreach (GreetInstance server in servers)
        {
            await server.DisposeAsync();
        }

        Directory.Delete(dir, recursive: true);
    }

    /// <summary>Fails if a server logged a warning or an error.</summary>
    public static void AssertQuiet(GreetInstance[] servers)
    {
        string[] problems = [.. servers.SelectMany(s => s.Problems.Select(line => s.Name + ": " + line))];
        Assert.True(problems.Length == 0, "The servers logged warnings or errors:\n" + string.Join('\n', problems.Take(10)));
    }

    /// <summary>A client of the demo's service at <paramref name="url"/>.</summary>
    public static CallInvoker Client(Uri url, Protocol protocol, bool http2) =>
        new(url.ToString(), new ConnectClientOptions { Protocol = protocol, HttpVersion = http2 ? HttpVersion.Version20 : HttpVersion.Version11 });

    /// <summary>The request headers of a test call: the demo's bearer token, and the tenant the server logs.</summary>
    public static Headers Headers(string tenant)
    {
        var headers = new Headers();
        headers["authorization"] = "Bearer " + GreetInstance.Token;
        headers["acme-tenant-id"] = tenant;
        return headers;
    }
}

/// <summary>The Greet demo's methods (examples/greet/v1/greet.proto), for <see cref="CallInvoker"/>.</summary>
internal static class DemoGreet
{
    private const string Service = "greet.v1.GreetService";

    public static readonly Method<GreetRequest, GreetResponse> Greet =
        new(Service, "Greet", MethodKind.Unary, GreetRequest.Parser, GreetResponse.Parser, IdempotencyLevel.NoSideEffects);

    public static readonly Method<GreetManyRequest, GreetManyResponse> GreetMany =
        new(Service, "GreetMany", MethodKind.ServerStreaming, GreetManyRequest.Parser, GreetManyResponse.Parser, IdempotencyLevel.Unknown);

    public static readonly Method<GreetEveryoneRequest, GreetEveryoneResponse> GreetEveryone =
        new(Service, "GreetEveryone", MethodKind.ClientStreaming, GreetEveryoneRequest.Parser, GreetEveryoneResponse.Parser, IdempotencyLevel.Unknown);

    public static readonly Method<ChatRequest, ChatResponse> Chat =
        new(Service, "Chat", MethodKind.BidiStreaming, ChatRequest.Parser, ChatResponse.Parser, IdempotencyLevel.Unknown);
}
