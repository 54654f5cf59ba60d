using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Greet.V1;

using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// A rolling restart behind HAProxy (examples/proxies/haproxy.cfg): under steady load of unary
/// calls and server streams of 3 s, each of three Greet demo servers in turn gets SIGTERM, stops
/// on its own (ConnectServerOptions.ShutdownTimeout: no new calls, the calls in flight finish),
/// and starts afresh. No unary call may fail; a stream either completes or ends with
/// unavailable before its first message (safe to retry).
/// </summary>
/// <remarks>
/// Size: <c>CONNECT_PROXY_SCALE</c> (default 1) multiplies the workers and, above 1, makes two
/// rounds of restarts; <c>make scale</c> runs it at 4.
/// </remarks>
public sealed partial class RollingRestartTests : IAsyncLifetime
{
    private const int StreamMessages = 30; // 100 ms apart: 3 s

    private readonly string _dir = Directory.CreateTempSubdirectory("connect-rolling-").FullName;
    private readonly GreetInstance[] _servers = [new("greet1"), new("greet2"), new("greet3")];
    private RigProcess? _haproxy;
    private Uri _url = null!;
    private int _statsPort;
    private int _disposed;

    public async ValueTask InitializeAsync()
    {
        try
        {
            await Task.WhenAll(_servers.Select(s => s.StartAsync()));
            (_haproxy, _url, _statsPort) = await ProxyServers.StartHAProxyAsync(_dir, _servers);
            await ProxyServers.WaitForHAProxyChecksAsync(_statsPort, _haproxy, _servers.Length);
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    [Fact]
    public async Task RollingRestart_UnderLoad_NoUnaryCallFails_StreamsCompleteOrEndRetryable()
    {
        double scale = Scale();
        int rounds = scale > 1 ? 2 : 1;
        int unaryWorkers = (int)(4 * scale);
        int streamWorkers = (int)(3 * scale);
        string tenant = "rolling-" + Guid.NewGuid().ToString("N")[..8];
        var counts = new Counts();
        using var stopLoad = new CancellationTokenSource();
        var clock = Stopwatch.StartNew();

        Task[] load =
        [
            .. Enumerable.Range(0, unaryWorkers).Select(i => Task.Run(() => UnaryWorkerAsync(i, tenant, counts, stopLoad.Token))),
            .. Enumerable.Range(0, streamWorkers).Select(i => Task.Run(() => StreamWorkerAsync(i, tenant, counts, stopLoad.Token))),
        ];
        var restarts = new List<string>();
        try
        {
            // Load on all three first, then each in turn: SIGTERM, its own exit, a fresh start, up again in HAProxy.
            await Task.Delay(TimeSpan.FromSeconds(2), Bounded.Token);
            for (int round = 0; round < rounds; round++)
            {
                foreach (GreetInstance server in _servers)
                {
                    restarts.Add(await RestartAsync(server));
                    await Task.Delay(TimeSpan.FromSeconds(1), Bounded.Token);
                }
            }
        }
        finally
        {
            await stopLoad.CancelAsync();
            await Task.WhenAll(load).WaitAsync(TimeSpan.FromSeconds(30), Bounded.Token);
        }

        string report =
            $"rolling restart: {rounds * _servers.Length} restarts in {clock.Elapsed.TotalSeconds:0.0} s, " +
            $"{unaryWorkers} unary and {streamWorkers} stream workers; " +
            $"unary calls {counts.Unary} ({counts.UnaryFailed} failed); " +
            $"streams {counts.Streams}: {counts.StreamsCompleted} completed, {counts.StreamsRetryable} unavailable before their first message, {counts.StreamsFailed} failed\n  " +
            string.Join("\n  ", restarts);
        // HAProxy logs only requests that failed, were retried or redispatched (option dontlog-normal).
        string[] requests = [.. _haproxy!.Lines.Where(line => line.Contains(" rpc greet/", StringComparison.Ordinal))];
        string[] notOk = [.. requests.Where(line => !line.Contains(" 200 ", StringComparison.Ordinal))];
        report += $"\n  HAProxy logged {requests.Length} requests as retried (on another server) or failed; {notOk.Length} ended other than 200" +
            string.Concat(notOk.Take(20).Select(line => "\n    " + line));
        TestContext.Current.SendDiagnosticMessage(report);
        TestContext.Current.TestOutputHelper?.WriteLine(report);

        Assert.True(counts.Failures.IsEmpty, report + "\nfailures:\n" + string.Join('\n', counts.Failures.Take(10)));
        Assert.Equal(0, counts.UnaryFailed);
        Assert.Equal(0, counts.StreamsFailed);
        Assert.True(counts.Unary > 0 && counts.StreamsCompleted > 0, report);

        // Every fresh instance took calls again.
        await Wait.UntilAsync(() => _servers.All(s => s.Process.Lines.Any(line => line.EndsWith(" called by tenant " + tenant, StringComparison.Ordinal))));
        ProxyRig.AssertQuiet(_servers);
    }

    /// <summary>
    /// SIGTERM, and the server's own exit: bounded by its shutdown timeout (25 s) and more, so it
    /// is never killed while it may still hold calls; then a fresh start, up in HAProxy again.
    /// </summary>
    private async Task<string> RestartAsync(GreetInstance server)
    {
        RigProcess old = server.Process;
        var stopping = Stopwatch.StartNew();
        old.Terminate();
        Assert.True(await old.WaitForExitAsync(TimeSpan.FromSeconds(40)), $"{server.Name} did not exit within 40 s of SIGTERM:\n{old.Output}");
        TimeSpan exited = stopping.Elapsed;
        Assert.Equal(0, old.ExitCode);
        string output = old.Output;
        Match stoppingLine = StoppingLine().Match(output);
        Match drainedLine = DrainedLine().Match(output);
        Assert.True(stoppingLine.Success && drainedLine.Success, $"{server.Name}: expected the shutdown's log lines:\n{output}");
        Assert.DoesNotContain("they are cancelled", output, StringComparison.Ordinal);

        var starting = Stopwatch.StartNew();
        await server.StartAsync();
        await ProxyServers.WaitForHAProxyChecksAsync(_statsPort, _haproxy!, _servers.Length);
        return $"{server.Name}: {stoppingLine.Groups[1].Value} call(s) in flight at SIGTERM, all finished after {drainedLine.Groups[1].Value} ms, " +
            $"exited after {exited.TotalMilliseconds:0} ms; up again in HAProxy {starting.Elapsed.TotalMilliseconds:0} ms after its start";
    }

    /// <summary>Unary calls back to back, over Connect (HTTP/2 and HTTP/1.1), gRPC and gRPC-Web.</summary>
    private async Task UnaryWorkerAsync(int index, string tenant, Counts counts, CancellationToken stop)
    {
        (Protocol protocol, bool http2) = (index % 4) switch
        {
            0 => (Protocol.Connect, true),
            1 => (Protocol.Connect, false),
            2 => (Protocol.Grpc, true),
            _ => (Protocol.GrpcWeb, true),
        };
        CallInvoker client = ProxyRig.Client(_url, protocol, http2);
        for (int i = 0; !stop.IsCancellationRequested; i++)
        {
            string name = $"u{index}-{i}";
            try
            {
                GreetResponse response = await client.UnaryAsync(DemoGreet.Greet, new GreetRequest { Name = name }, ProxyRig.Headers(tenant), TimeSpan.FromSeconds(15), CancellationToken.None); // a call in flight finishes when the load stops
                if (response.Greeting != $"Hello, {name}!")
                {
                    counts.Fail($"unary {protocol} {name}: '{response.Greeting}'");
                }
            }
            catch (ConnectException ex)
            {
                Interlocked.Increment(ref counts.UnaryFailed);
                counts.Fail($"unary {protocol} http2={http2} {name} at {DateTime.UtcNow:HH:mm:ss.fff}: {ex.Code.ToWireName()} {ex.Message}");
            }

            Interlocked.Increment(ref counts.Unary);
        }
    }

    /// <summary>Server streams of 3 s back to back, over Connect and gRPC (HTTP/2) and gRPC-Web (HTTP/1.1).</summary>
    private async Task StreamWorkerAsync(int index, string tenant, Counts counts, CancellationToken stop)
    {
        (Protocol protocol, bool http2) = (index % 3) switch
        {
            0 => (Protocol.Connect, true),
            1 => (Protocol.Grpc, true),
            _ => (Protocol.GrpcWeb, false),
        };
        CallInvoker client = ProxyRig.Client(_url, protocol, http2);
        for (int i = 0; !stop.IsCancellationRequested; i++)
        {
            string name = $"s{index}-{i}";
            int received = 0;
            try
            {
                await foreach (GreetManyResponse _ in client.ServerStreamingAsync(
                    DemoGreet.GreetMany, new GreetManyRequest { Name = name, Times = StreamMessages }, ProxyRig.Headers(tenant), TimeSpan.FromSeconds(20), CancellationToken.None))
                {
                    received++;
                }

                if (received == StreamMessages)
                {
                    Interlocked.Increment(ref counts.StreamsCompleted);
                }
                else
                {
                    Interlocked.Increment(ref counts.StreamsFailed);
                    counts.Fail($"stream {protocol} {name}: {received} of {StreamMessages} messages, then a normal end");
                }
            }
            catch (ConnectException ex) when (ex.Code == Code.Unavailable && received == 0)
            {
                Interlocked.Increment(ref counts.StreamsRetryable);
            }
            catch (ConnectException ex)
            {
                Interlocked.Increment(ref counts.StreamsFailed);
                counts.Fail($"stream {protocol} http2={http2} {name} after {received} messages at {DateTime.UtcNow:HH:mm:ss.fff}: {ex.Code.ToWireName()} {ex.Message}");
            }

            Interlocked.Increment(ref counts.Streams);
        }
    }

    private static double Scale() =>
        double.TryParse(Environment.GetEnvironmentVariable("CONNECT_PROXY_SCALE"), NumberStyles.Float, CultureInfo.InvariantCulture, out double scale) && scale > 1
            ? scale
            : 1;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await ProxyRig.StopAsync(_dir, _servers, _haproxy);
        }
    }

    [GeneratedRegex(@"(\d+) call\(s\) in flight get up to")]
    private static partial Regex StoppingLine();

    [GeneratedRegex(@"Every call in flight has finished, (\d+) ms after")]
    private static partial Regex DrainedLine();

    private sealed class Counts
    {
        public int Unary;
        public int UnaryFailed;
        public int Streams;
        public int StreamsCompleted;
        public int StreamsRetryable;
        public int StreamsFailed;

        public ConcurrentQueue<string> Failures { get; } = new();

        public void Fail(string what) => Failures.Enqueue(what);
    }
}
