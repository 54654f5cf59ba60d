using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Connectrpc.Greet.V1;

using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>The load tests run alone: they measure the process's managed heap and use every core.</summary>
[CollectionDefinition(nameof(LoadTestsRunAlone), DisableParallelization = true)]
public sealed class LoadTestsRunAlone;

/// <summary>
/// Many concurrent streams on one Kestrel server, every protocol mixed, with client
/// cancellations and abrupt disconnects on a share of them: every call ends as its fate says,
/// every server handler ends and sees its cancellation, nothing leaks, unary calls beside the
/// load keep working; and a graceful stop lets streams in flight finish while refusing new calls.
/// </summary>
/// <remarks>
/// <para>
/// Connections: Kestrel keeps its default of 100 concurrent streams per HTTP/2 connection, and
/// the clients spread their streams over several connections
/// (<see cref="SocketsHttpHandler.EnableMultipleHttp2Connections"/>, as the shared handler of
/// <see cref="CallInvoker"/> does). That is what a server with default limits meets in
/// production, it puts the server under many connections rather than one (so an abrupt
/// disconnect takes down only the streams of its connection), and raising the limit on the
/// server would test a configuration nobody runs while leaving one connection's flow control
/// and frame writer as the bottleneck.
/// </para>
/// <para>
/// Size: <c>CONNECT_LOAD_SCALE</c> (default 1, at least 1) multiplies the stream count
/// (1,500 at scale 1, of which 1,200 run to completion and are held open together) and every
/// time window and bound; <c>make load</c> runs these tests at a larger scale.
/// </para>
/// <para>
/// The load run and the graceful stop have servers of their own; the connection-fault
/// regressions share the class's server.
/// </para>
/// </remarks>
[Collection(nameof(LoadTestsRunAlone))]
public sealed class LoadAndFaultTests(GreetServer fixture) : IClassFixture<GreetServer>
{
    private readonly KestrelHost _shared = fixture.Host;

    // The x-fate header: what the test does to a call, and how the server counts its handler.
    private const string Complete = "complete";
    private const string Cancel = "cancel";
    private const string Disconnect = "disconnect";

    private const int StreamsAtScaleOne = 1500;
    private const int DisconnectGroupSize = 10;
    private const long HeapTolerance = 64L * 1024 * 1024;

    private static readonly double s_scale = ReadScale();

    /// <summary>Bounds each phase of a load run (opening, finishing, draining).</summary>
    private static readonly TimeSpan s_phase = TimeSpan.FromSeconds(30 * s_scale);

    /// <summary>Cancellations and disconnects fire at random within this long after the run starts.</summary>
    private static readonly TimeSpan s_faultWindow = TimeSpan.FromSeconds(3 * s_scale);

    // Streams of every protocol: bidi held open mid-conversation needs full duplex (HTTP/2), gRPC always uses HTTP/2; Connect and gRPC-Web also stream over HTTP/1.1.
    private static readonly Variant[] s_variants =
    [
        new(Protocol.Connect, Http2: true, Bidi: false),
        new(Protocol.Connect, Http2: true, Bidi: true),
        new(Protocol.Connect, Http2: false, Bidi: false),
        new(Protocol.Grpc, Http2: true, Bidi: false),
        new(Protocol.Grpc, Http2: true, Bidi: true),
        new(Protocol.GrpcWeb, Http2: true, Bidi: false),
        new(Protocol.GrpcWeb, Http2: true, Bidi: true),
        new(Protocol.GrpcWeb, Http2: false, Bidi: false),
        new(Protocol.GrpcWebText, Http2: true, Bidi: false),
        new(Protocol.GrpcWebText, Http2: false, Bidi: false),
    ];

    [Fact]
    public async Task Streams_ThousandsWithRandomCancelsAndDisconnects_EachEndsAsItsFateAndServerRecovers()
    {
        int total = (int)(StreamsAtScaleOne * s_scale);
        int seed = Environment.TickCount;
        var random = new Random(seed);
        Log($"scale {s_scale}, {total} streams, seed {seed}");

        await using KestrelHost server = await KestrelHost.StartAsync();
        HandlerTracker tracker = server.Service.Handlers;
        var pools = new List<Connections>();
        var cancellations = new List<CancellationTokenSource>();
        try
        {
            var shared = new Connections(server);
            var side = new Connections(server);
            pools.Add(shared);
            pools.Add(side);

            // Every path runs once before the baseline, so JIT and pools are not counted as growth.
            await WarmUpAsync(shared);
            long baseline = ManagedHeapAfterFullGc();
            long baselineHeapSize = GC.GetGCMemoryInfo().HeapSizeBytes;
            var clock = Stopwatch.StartNew();

            using var stopSide = CancellationTokenSource.CreateLinkedTokenSource(Bounded.Token);
            Task<UnaryLoopResult> unary = UnaryLoopAsync(side, stopSide.Token);

            var calls = new Task<StreamResult>[total];
            var established = new Task[total];
            var faults = new List<Task>();
            Connections? group = null;
            int disconnects = 0;
            for (int i = 0; i < total; i++)
            {
                string fate = Fate(i);
                Variant variant = s_variants[random.Next(s_variants.Length)];
                Connections pool = shared;
                CancellationToken token = default;
                if (fate == Cancel)
                {
                    var cancel = new CancellationTokenSource();
                    cancellations.Add(cancel);
                    cancel.CancelAfter(RandomDelay(random));
                    token = cancel.Token;
                }
                else if (fate == Disconnect)
                {
                    // Disconnected streams have connections of their own, a group at a time, each cut at a random moment.
                    if (disconnects++ % DisconnectGroupSize == 0)
                    {
                        group = new Connections(server);
                        pools.Add(group);
                        faults.Add(AbortLaterAsync(group, RandomDelay(random)));
                    }

                    pool = group!;
                }

                var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                established[i] = first.Task;
                calls[i] = RunStreamAsync(pool, variant, i, fate, tracker.Released, first, token);
            }

            // Phase 1: every faulted call ends, every other stream is open and held by the server.
            Task<StreamResult>[] faulted = [.. Enumerable.Range(0, total).Where(i => Fate(i) != Complete).Select(i => calls[i])];
            Task<StreamResult>[] completing = [.. Enumerable.Range(0, total).Where(i => Fate(i) == Complete).Select(i => calls[i])];
            Task[] opened = [.. Enumerable.Range(0, total).Where(i => Fate(i) == Complete).Select(i => established[i])];
            await Task.WhenAll(faults).WaitAsync(s_phase, Bounded.Token);
            await Task.WhenAll(faulted).WaitAsync(s_phase, Bounded.Token);
            await Task.WhenAll(opened).WaitAsync(s_phase, Bounded.Token);
            await Wait.UntilAsync(
                () => tracker.InFlight == completing.Length && Drained(tracker.For(Cancel)) && Drained(tracker.For(Disconnect)),
                () => $"in flight {tracker.InFlight} of {completing.Length} held; cancel: {tracker.For(Cancel)}; disconnect: {tracker.For(Disconnect)}\n" +
                    tracker.DescribeRunning(Complete, 20));
            long held = GC.GetTotalMemory(forceFullCollection: false);
            long workingSetHeld = WorkingSet();
            int connections = pools.Sum(p => p.ConnectionCount);
            TimeSpan openedAfter = clock.Elapsed;

            // Phase 2: the held streams finish.
            tracker.Release();
            StreamResult[] results = await Task.WhenAll(calls).WaitAsync(s_phase, Bounded.Token);
            TimeSpan finishedAfter = clock.Elapsed;
            await stopSide.CancelAsync();
            UnaryLoopResult unaryResult = await unary.WaitAsync(s_phase, Bounded.Token);
            await Wait.UntilAsync(() => tracker.InFlight == 0, () => $"{tracker.InFlight} handlers still in flight");

            // Every call ended as its fate says, and every server handler as its call did.
            string[] wrong = [.. results.Select(Misbehavior).OfType<string>()];
            Assert.True(wrong.Length == 0, $"{wrong.Length} calls ended unexpectedly (seed {seed}):\n" + string.Join("\n", wrong.Take(20)));
            HandlerTracker.Counts completed = tracker.For(Complete);
            HandlerTracker.Counts canceled = tracker.For(Cancel);
            HandlerTracker.Counts disconnected = tracker.For(Disconnect);
            Log($"handlers: complete {completed}; cancel {canceled}; disconnect {disconnected}; at most {tracker.MaxInFlight} at once over {connections} connections");
            Assert.Equal((completing.Length, completing.Length, 0), (completed.Entered, completed.Exited, completed.ExitedCanceled));
            Assert.Equal((canceled.Entered, canceled.Entered), (canceled.Exited, canceled.ExitedCanceled));
            Assert.Equal((disconnected.Entered, disconnected.Entered), (disconnected.Exited, disconnected.ExitedCanceled));
            Assert.True(canceled.Entered > 0 && disconnected.Entered > 0, "no faulted call reached its handler: the faults came too early to test anything");
            Assert.True(tracker.MaxInFlight >= 1000, $"only {tracker.MaxInFlight} streams were open at once");
            Assert.True(connections > completing.Length / 100, $"the streams used only {connections} connections");

            Log($"unary calls beside the load: {unaryResult.Calls}, failed {unaryResult.Failures.Count}");
            Assert.True(unaryResult.Failures.Count == 0, string.Join("\n", unaryResult.Failures.Take(20)));
            Assert.True(unaryResult.Calls >= 6, $"only {unaryResult.Calls} unary calls ran beside the load");
            AssertNoServerErrors(server);

            foreach (Connections pool in pools)
            {
                pool.Dispose();
            }

            // The server closes the connections of the disposed clients in its own time: measure once the heap has settled.
            long firstAfter = ManagedHeapAfterFullGc();
            long after = firstAfter;
            var settling = Stopwatch.StartNew();
            for (long previous = long.MaxValue; previous - after > 512 * 1024 && settling.Elapsed < Bounded.Timeout;)
            {
                await Task.Delay(250, Bounded.Token);
                previous = after;
                after = ManagedHeapAfterFullGc();
            }

            Log($"opened and held after {openedAfter.TotalSeconds:F1} s, all ended after {finishedAfter.TotalSeconds:F1} s");
            Log($"managed heap after full GC: baseline {Mib(baseline)}, held {Mib(held)} (before GC), after {Mib(firstAfter)} then {Mib(after)} " +
                $"(settled in {settling.Elapsed.TotalSeconds:F1} s; gen0, gen1, gen2, LOH, POH: {Generations()}); " +
                $"GC heap size {Mib(baselineHeapSize)} before, {Mib(GC.GetGCMemoryInfo().HeapSizeBytes)} after; working set held {Mib(workingSetHeld)}, after {Mib(WorkingSet())}");
            Assert.True(after <= baseline + HeapTolerance, $"the managed heap grew from {Mib(baseline)} to {Mib(after)}");
        }
        finally
        {
            tracker.Release();
            foreach (Connections pool in pools)
            {
                pool.Dispose();
            }

            foreach (CancellationTokenSource cancel in cancellations)
            {
                cancel.Dispose();
            }
        }
    }

    [Fact]
    public async Task StopAsync_StreamsInFlight_FinishWithinShutdownTimeoutWhileNewCallsAreRefused()
    {
        const int count = 50;
        TimeSpan shutdownTimeout = TimeSpan.FromSeconds(10);
        await using KestrelHost server = await KestrelHost.StartAsync();
        HandlerTracker tracker = server.Service.Handlers;
        using var pool = new Connections(server);
        using var fresh = new Connections(server);
        try
        {
            var calls = new Task<StreamResult>[count];
            var established = new Task[count];
            for (int i = 0; i < count; i++)
            {
                var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                established[i] = first.Task;
                calls[i] = RunStreamAsync(pool, s_variants[i % s_variants.Length], i, Complete, tracker.Released, first, default);
            }

            await Task.WhenAll(established).Within();
            await Wait.UntilAsync(() => tracker.InFlight == count, () => $"{tracker.InFlight} of {count} streams held");

            using var shutdown = new CancellationTokenSource(shutdownTimeout);
            var clock = Stopwatch.StartNew();
            Task stopping = server.StopAsync(shutdown.Token);

            // Once the listeners are closed, new calls are refused, on new connections and on
            // the ones that carry the held streams (the server sent them GOAWAY).
            await Wait.UntilAsync(() => !Accepts(server.Http1Url) && !Accepts(server.Http2Url));
            foreach (Connections clients in new[] { fresh, pool })
            {
                foreach ((Protocol protocol, bool http2) in UnaryTransports())
                {
                    ConnectException refused = await Assert.ThrowsAsync<ConnectException>(
                        () => clients.Client(protocol, http2).GreetAsync(new GreetRequest { Name = "late" }).Within());
                    Assert.Equal(Code.Unavailable, refused.Code);
                }
            }

            Assert.False(stopping.IsCompleted, "the server stopped before its calls in flight finished");
            Assert.Equal(count, tracker.InFlight);

            tracker.Release();
            StreamResult[] results = await Task.WhenAll(calls).Within();
            await stopping.Within();
            Log($"stopped {clock.Elapsed.TotalMilliseconds:F0} ms after StopAsync began (timeout {shutdownTimeout.TotalSeconds} s)");
            Assert.False(shutdown.IsCancellationRequested, "the shutdown timeout expired");

            string[] wrong = [.. results.Select(Misbehavior).OfType<string>()];
            Assert.True(wrong.Length == 0, string.Join("\n", wrong));
            HandlerTracker.Counts completed = tracker.For(Complete);
            Assert.Equal((count, count, 0), (completed.Entered, completed.Exited, completed.ExitedCanceled));
            AssertNoServerErrors(server);
        }
        finally
        {
            tracker.Release();
        }
    }

    [Theory]
    [InlineData(Protocol.Connect)]
    [InlineData(Protocol.Grpc)]
    [InlineData(Protocol.GrpcWeb)]
    public async Task Chat_ConnectionResetWhileHandlersRead_HandlersEndCanceledAndNoErrorIsLogged(Protocol protocol)
    {
        // Regression: Kestrel fails the request body of a reset connection before it fires
        // RequestAborted, and the IOException was logged as a handler failure.
        const int count = 20;
        KestrelHost server = _shared;
        HandlerTracker tracker = server.Service.Handlers;
        using var pool = new Connections(server);
        var calls = new Task<StreamResult>[count];
        var established = new Task[count];
        for (int i = 0; i < count; i++)
        {
            var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            established[i] = first.Task;
            calls[i] = RunStreamAsync(pool, new Variant(protocol, Http2: true, Bidi: true), i, Disconnect, tracker.Released, first, default);
        }

        await Task.WhenAll(established).Within();
        await Wait.UntilAsync(() => tracker.InFlight == count, () => $"{tracker.InFlight} of {count} handlers reading");
        pool.Abort();

        StreamResult[] results = await Task.WhenAll(calls).Within();
        await Wait.UntilAsync(() => tracker.InFlight == 0, () => $"{tracker.InFlight} handlers still in flight");
        Assert.All(results, result => Assert.Null(Misbehavior(result)));
        HandlerTracker.Counts counts = tracker.For(Disconnect);
        Assert.Equal((count, count, count), (counts.Entered, counts.Exited, counts.ExitedCanceled));
        AssertNoServerErrors(server);
    }

    [Theory]
    [InlineData(Protocol.Connect)]
    [InlineData(Protocol.Grpc)]
    [InlineData(Protocol.GrpcWeb)]
    public async Task GreetMany_CanceledAsResponseHeadersArrive_ServerHandlerSeesCancellation(Protocol protocol)
    {
        // Regression: a response whose headers arrived as the call was canceled was never
        // disposed, so its HTTP/2 stream stayed open and the server's handler ran on.
        KestrelHost server = _shared;
        HandlerTracker tracker = server.Service.Handlers;
        using var cancel = new CancellationTokenSource();
        using var handler = new CancelAfterHeaders(cancel) { InnerHandler = new SocketsHttpHandler() };
        using var http = new HttpClient(handler) { BaseAddress = server.Http2Url };
        var client = new GreetServiceClient(http, new ConnectClientOptions { Protocol = protocol, HttpVersion = HttpVersion.Version20 });
        var headers = new Headers();
        headers.Add("x-fate", Cancel);
        headers.Add("x-hold", "1");

        ConnectException canceled = await Assert.ThrowsAsync<ConnectException>(
            () => client.GreetManyAsync(new GreetRequest { Name = "late" }, headers, cancellationToken: cancel.Token).ToListWithin());

        Assert.Equal(Code.Canceled, canceled.Code);
        HandlerTracker.Counts counts = tracker.For(Cancel);
        await Wait.UntilAsync(() => counts.Exited == 1, () => $"the handler did not end: {counts}");
        Assert.Equal((1, 1), (counts.Entered, counts.ExitedCanceled));
    }

    /// <summary>One call in ten is canceled, one in ten disconnected; the rest complete.</summary>
    private static string Fate(int index) => (index % 10) switch { 3 => Cancel, 7 => Disconnect, _ => Complete };

    /// <summary>Why a call's end does not fit its fate, or null when it does.</summary>
    private static string? Misbehavior(StreamResult result) => result switch
    {
        { Unexpected: { } ex } => $"{result}: threw {ex}",
        { Fate: Complete, Code: null, Received: 3 } => null,
        { Fate: Cancel, Code: Code.Canceled } => null,
        { Fate: Disconnect, Code: not null } => null, // whatever the client sees of a cut connection, but not success
        _ => $"{result}: unexpected end",
    };

    /// <summary>One stream: GreetMany held by the server after its first response, or Chat held by its request stream.</summary>
    private static async Task<StreamResult> RunStreamAsync(
        Connections pool, Variant variant, int index, string fate, Task release, TaskCompletionSource established, CancellationToken cancellationToken)
    {
        await Task.Yield();
        var headers = new Headers();
        headers.Add("x-fate", fate);
        headers.Add("x-hold", "1");
        headers.Add("x-name", index.ToString(CultureInfo.InvariantCulture));
        string name = "s" + index.ToString(CultureInfo.InvariantCulture);
        GreetServiceClient client = pool.Client(variant.Protocol, variant.Http2);
        IAsyncEnumerable<GreetResponse> responses = variant.Bidi
            ? client.ChatAsync(HeldRequests(name, release, CancellationToken.None), headers, cancellationToken: cancellationToken)
            : client.GreetManyAsync(new GreetRequest { Name = name }, headers, cancellationToken: cancellationToken);
        int received = 0;
        try
        {
            await foreach (GreetResponse response in responses)
            {
                received++;
                established.TrySetResult();
            }

            return new StreamResult(index, fate, variant, received, null, null);
        }
        catch (ConnectException ex)
        {
            return new StreamResult(index, fate, variant, received, ex.Code, null);
        }
        catch (Exception ex)
        {
            return new StreamResult(index, fate, variant, received, null, ex);
        }
        finally
        {
            // A stream that fails before its first response is reported by its result, not by a timeout.
            established.TrySetResult();
        }
    }

    private static async IAsyncEnumerable<GreetRequest> HeldRequests(string name, Task release, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        yield return new GreetRequest { Name = name + " (1)" };
        await release.WaitAsync(cancellationToken);
        yield return new GreetRequest { Name = name + " (2)" };
        yield return new GreetRequest { Name = name + " (3)" };
    }

    private static async Task WarmUpAsync(Connections pool)
    {
        foreach (Variant variant in s_variants)
        {
            GreetServiceClient client = pool.Client(variant.Protocol, variant.Http2);
            List<GreetResponse> responses = variant.Bidi
                ? await client.ChatAsync(HeldRequests("warm", Task.CompletedTask, CancellationToken.None)).ToListWithin()
                : await client.GreetManyAsync(new GreetRequest { Name = "warm" }).ToListWithin();
            Assert.Equal(3, responses.Count);
        }

        foreach ((Protocol protocol, bool http2) in UnaryTransports())
        {
            await pool.Client(protocol, http2).GreetAsync(new GreetRequest { Name = "warm" }).Within();
        }
    }

    /// <summary>Unary calls over every protocol, one after another, until stopped; every one must succeed.</summary>
    private static async Task<UnaryLoopResult> UnaryLoopAsync(Connections pool, CancellationToken stop)
    {
        (Protocol Protocol, bool Http2)[] transports = [.. UnaryTransports()];
        var failures = new List<string>();
        int calls = 0;
        while (!stop.IsCancellationRequested)
        {
            (Protocol protocol, bool http2) = transports[calls++ % transports.Length];
            try
            {
                using CancellationTokenSource bounded = Bounded.TimeoutSource();
                GreetResponse response = await pool.Client(protocol, http2).GreetAsync(new GreetRequest { Name = "side" }, cancellationToken: bounded.Token);
                if (response.Greeting != "Hello, side!")
                {
                    failures.Add($"{protocol} HTTP/{(http2 ? 2 : 1)}: {response.Greeting}");
                }
            }
            catch (Exception ex)
            {
                failures.Add($"{protocol} HTTP/{(http2 ? 2 : 1)}: {ex}");
            }

            try
            {
                await Task.Delay(10, stop);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        return new UnaryLoopResult(calls, failures);
    }

    private static IEnumerable<(Protocol Protocol, bool Http2)> UnaryTransports() =>
    [
        (Protocol.Connect, false), (Protocol.Connect, true), (Protocol.Grpc, true),
        (Protocol.GrpcWeb, false), (Protocol.GrpcWeb, true), (Protocol.GrpcWebText, false),
    ];

    private static async Task AbortLaterAsync(Connections group, TimeSpan delay)
    {
        await Task.Delay(delay, Bounded.Token);
        group.Abort();
    }

    private static TimeSpan RandomDelay(Random random) => s_faultWindow * random.NextDouble();

    private static bool Drained(HandlerTracker.Counts counts) => counts.Exited == counts.Entered;

    /// <summary>Whether a TCP connection to <paramref name="url"/>'s port is accepted (on loopback, at once or refused at once).</summary>
    private static bool Accepts(Uri url)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Connect(new IPEndPoint(IPAddress.Loopback, url.Port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static void AssertNoServerErrors(KestrelHost server)
    {
        string[] errors = [.. server.Logs.Where(entry => entry.StartsWith("Error", StringComparison.Ordinal) || entry.StartsWith("Critical", StringComparison.Ordinal))];
        Assert.True(errors.Length == 0, $"the server logged {errors.Length} errors:\n" + string.Join("\n", errors.Take(5)));
        foreach (string warning in server.Logs.Take(5))
        {
            Log("server log: " + warning);
        }
    }

    private static long ManagedHeapAfterFullGc()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        return GC.GetTotalMemory(forceFullCollection: false);
    }

    /// <summary>The sizes of the GC's generations after the last collection: gen0, gen1, gen2, large and pinned object heaps.</summary>
    private static string Generations()
    {
        GCMemoryInfo info = GC.GetGCMemoryInfo();
        return string.Join(", ", info.GenerationInfo.ToArray().Select(generation => Mib(generation.SizeAfterBytes)));
    }

    private static long WorkingSet()
    {
        using var process = Process.GetCurrentProcess();
        return process.WorkingSet64;
    }

    private static string Mib(long bytes) => (bytes / (1024.0 * 1024.0)).ToString("F1", CultureInfo.InvariantCulture) + " MiB";

    private static void Log(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    private static double ReadScale() =>
        double.TryParse(Environment.GetEnvironmentVariable("CONNECT_LOAD_SCALE"), NumberStyles.Float, CultureInfo.InvariantCulture, out double scale) && scale > 1
            ? scale
            : 1;

    /// <summary>Cancels the call once its response headers are in, before the client takes them.</summary>
    private sealed class CancelAfterHeaders(CancellationTokenSource cancel) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            HttpResponseMessage response = await base.SendAsync(request, cancellationToken);
            await cancel.CancelAsync();
            return response;
        }
    }

    private sealed record Variant(Protocol Protocol, bool Http2, bool Bidi)
    {
        public override string ToString() => $"{Protocol} HTTP/{(Http2 ? 2 : 1)} {(Bidi ? "Chat" : "GreetMany")}";
    }

    private sealed record StreamResult(int Index, string Fate, Variant Variant, int Received, Code? Code, Exception? Unexpected)
    {
        public override string ToString() => $"#{Index} {Fate} {Variant}: {Received} responses, {(Code is { } code ? code.ToString() : "ok")}";
    }

    private sealed record UnaryLoopResult(int Calls, List<string> Failures);

    /// <summary>
    /// Clients of the test server over one handler of their own, whose connections (HTTP/2
    /// spread over several, HTTP/1.1 one per stream) can be cut at once by resetting their sockets.
    /// </summary>
    private sealed class Connections : IDisposable
    {
        private readonly KestrelHost _server;
        private readonly SocketsHttpHandler _handler;
        private readonly GreetServiceClient?[] _clients = new GreetServiceClient?[8];
        private readonly List<Socket> _sockets = [];
        private int _connections;
        private bool _aborted;

        public Connections(KestrelHost server)
        {
            _server = server;
            _handler = new SocketsHttpHandler
            {
                EnableMultipleHttp2Connections = true,
                AutomaticDecompression = DecompressionMethods.None,
                UseCookies = false,
                ConnectCallback = ConnectAsync,
            };
        }

        /// <summary>Connections opened so far.</summary>
        public int ConnectionCount => Volatile.Read(ref _connections);

        public GreetServiceClient Client(Protocol protocol, bool http2)
        {
            int slot = ((int)protocol * 2) + (http2 ? 1 : 0);
            lock (_clients)
            {
                return _clients[slot] ??= Create();
            }

            GreetServiceClient Create()
            {
                // gRPC needs HTTP/2, which cleartext gets only on the prior-knowledge endpoint.
                bool useHttp2 = http2 || protocol == Protocol.Grpc;
                var http = new HttpClient(_handler, disposeHandler: false)
                {
                    BaseAddress = useHttp2 ? _server.Http2Url : _server.Http1Url,
                    Timeout = Timeout.InfiniteTimeSpan,
                };
                return new GreetServiceClient(http, new ConnectClientOptions
                {
                    Protocol = protocol,
                    HttpVersion = useHttp2 ? HttpVersion.Version20 : HttpVersion.Version11,
                });
            }
        }

        /// <summary>Resets every connection (RST, no FIN) and refuses new ones: the client vanishes.</summary>
        public void Abort()
        {
            lock (_sockets)
            {
                _aborted = true;
                foreach (Socket socket in _sockets)
                {
                    Reset(socket);
                }
            }
        }

        public void Dispose() => _handler.Dispose();

        private static void Reset(Socket socket)
        {
            try
            {
                socket.LingerState = new LingerOption(true, 0);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // Already closed.
            }

            socket.Dispose();
        }

        private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            lock (_sockets)
            {
                if (_aborted)
                {
                    socket.Dispose();
                    throw new IOException("the test cut this client's connections");
                }

                _sockets.Add(socket);
            }

            Interlocked.Increment(ref _connections);
            try
            {
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            return new NetworkStream(socket, ownsSocket: true);
        }
    }
}
