using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using Connectrpc.Greet.V1;
using ConnectRpc.Internal;
using Google.Protobuf.WellKnownTypes;

using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// The greet service as the interop peers implement it (see interop/server.mjs), so the
/// same assertions hold against either server. Request headers steer it:
/// <list type="bullet">
/// <item><c>acme-tenant-id</c> is copied to the response headers; every call sets <c>greet-version: v1</c> in headers and trailers;</item>
/// <item>each <c>x-echo</c> value is added to the response headers; <c>x-echo-bin</c> bytes come back as a binary trailer;</item>
/// <item><c>x-fail: &lt;code&gt;</c> fails the call with that code (after one response on streams), with error metadata <c>x-error-meta: yes</c>;</item>
/// <item>test-only: <c>x-throw</c> throws a plain exception, <c>x-sleep-ms</c> waits (cancellably), <c>x-stall-ms</c> waits ignoring cancellation (Greet before its response, GreetMany after its first) and records its end in <see cref="Stalled"/>, <c>x-detail</c> adds an error detail, <c>x-bad-header</c> writes a reserved header, <c>x-odd-message</c> fails with <see cref="OddMessage"/>;</item>
/// <item>test-only, for load tests: <c>x-fate</c> counts the GreetMany or Chat handler in <see cref="Handlers"/> under that name, and <c>x-hold</c> makes GreetMany wait (cancellably) after its first response until <see cref="HandlerTracker.Release"/>.</item>
/// </list>
/// </summary>
public sealed class TestGreetService : IGreetService
{
    /// <summary>An error message that must survive every protocol: percent, CR, LF, tab, BMP and non-BMP text.</summary>
    public const string OddMessage = "100% sure:\r\n\tcaf\u00e9 \u65e5\u672c \U0001F389";

    /// <summary>Procedures whose handler finished an <c>x-stall-ms</c> wait (that ignores its token).</summary>
    public ConcurrentQueue<string> Stalled { get; } = new();

    /// <summary>Procedures whose handler saw its cancellation token fire.</summary>
    public ConcurrentQueue<string> Canceled { get; } = new();

    /// <summary>The <see cref="RequestContext.Timeout"/> each handler saw at its start, by procedure.</summary>
    public ConcurrentDictionary<string, TimeSpan?> Timeouts { get; } = new();

    /// <summary>The last call's protocol, HTTP version and scheme, by procedure: "Grpc HTTP/2 https".</summary>
    public ConcurrentDictionary<string, string> Transports { get; } = new();

    /// <summary>The GreetMany and Chat handlers of calls with an <c>x-fate</c> header: entries, exits, in flight.</summary>
    public HandlerTracker Handlers { get; private set; } = new();

    /// <summary>Forgets what earlier calls recorded: a server shared by a test class starts each test afresh.</summary>
    public void Reset()
    {
        Canceled.Clear();
        Stalled.Clear();
        Timeouts.Clear();
        Transports.Clear();
        Handlers.Release();
        Handlers = new HandlerTracker();
    }

    public async Task<GreetResponse> GreetAsync(GreetRequest request, RequestContext context)
    {
        Begin(context);
        await SleepAsync(context);
        await StallAsync(context);
        Fail(context);
        return new GreetResponse { Greeting = $"Hello, {request.Name}!" };
    }

    public IAsyncEnumerable<GreetResponse> GreetManyAsync(GreetRequest request, RequestContext context) =>
        Handlers.Track(GreetMany(request, context), context);

    public IAsyncEnumerable<GreetResponse> ChatAsync(IAsyncEnumerable<GreetRequest> requests, RequestContext context) =>
        Handlers.Track(Chat(requests, context), context);

    private async IAsyncEnumerable<GreetResponse> GreetMany(GreetRequest request, RequestContext context)
    {
        Begin(context);
        for (int i = 1; i <= 3; i++)
        {
            yield return new GreetResponse { Greeting = $"Hello, {request.Name}! ({i})" };
            if (i == 1 && context.RequestHeaders.ContainsKey("x-hold"))
            {
                await Handlers.Released.WaitAsync(context.CancellationToken);
            }

            if (i == 1)
            {
                await StallAsync(context);
            }

            await SleepAsync(context);
            Fail(context);
        }
    }

    public async Task<GreetResponse> GreetEveryoneAsync(IAsyncEnumerable<GreetRequest> requests, RequestContext context)
    {
        Begin(context);
        var names = new List<string>();
        await foreach (GreetRequest request in requests)
        {
            names.Add(request.Name);
        }

        await SleepAsync(context);
        Fail(context);
        return new GreetResponse { Greeting = $"Hello, {string.Join(", ", names)}!" };
    }

    private async IAsyncEnumerable<GreetResponse> Chat(IAsyncEnumerable<GreetRequest> requests, RequestContext context)
    {
        Begin(context);
        await foreach (GreetRequest request in requests)
        {
            yield return new GreetResponse { Greeting = $"Hello, {request.Name}!" };
            await SleepAsync(context);
            Fail(context);
        }
    }

    private void Begin(RequestContext context)
    {
        Timeouts[context.Procedure] = context.Timeout;
        Microsoft.AspNetCore.Http.HttpRequest http = context.GetHttpContext().Request;
        Transports[context.Procedure] = $"{context.Protocol} {http.Protocol} {http.Scheme}";
        context.CancellationToken.Register(() => Canceled.Enqueue(context.Procedure));
        Headers request = context.RequestHeaders;
        if (request.Get("acme-tenant-id") is { } tenant)
        {
            context.ResponseHeaders["acme-tenant-id"] = tenant;
        }

        context.ResponseHeaders["greet-version"] = "v1";
        context.ResponseTrailers["greet-version"] = "v1";
        foreach (string value in request.GetAll("x-echo"))
        {
            foreach (string part in value.Split(','))
            {
                context.ResponseHeaders.Add("x-echo", part.Trim());
            }
        }

        if (request.GetBinary("x-echo-bin") is { } bytes)
        {
            context.ResponseTrailers.SetBinary("x-echo-bin", bytes);
        }

        if (request.Get("x-bad-header") is { } bad)
        {
            context.ResponseHeaders[bad] = "x";
        }
    }

    /// <summary>A handler that ignores its token: <c>x-stall-ms</c> of waiting, recorded when it ends.</summary>
    private async Task StallAsync(RequestContext context)
    {
        if (context.RequestHeaders.Get("x-stall-ms") is { } ms)
        {
            await Task.Delay(int.Parse(ms, CultureInfo.InvariantCulture), CancellationToken.None);
            Stalled.Enqueue(context.Procedure);
        }
    }

    private static Task SleepAsync(RequestContext context) =>
        context.RequestHeaders.Get("x-sleep-ms") is { } ms
            ? Task.Delay(int.Parse(ms, CultureInfo.InvariantCulture), context.CancellationToken)
            : Task.CompletedTask;

    private static void Fail(RequestContext context)
    {
        if (context.RequestHeaders.Get("x-throw") is { } secret)
        {
            throw new InvalidOperationException("secret: " + secret);
        }

        if (context.RequestHeaders.Get("x-fail") is not { } name)
        {
            return;
        }

        if (!CodeMapping.TryParseWireName(name, out Code code))
        {
            code = Code.Internal;
        }

        var error = new ConnectException(code, context.RequestHeaders.ContainsKey("x-odd-message") ? OddMessage : "failed as asked");
        error.Headers["x-error-meta"] = "yes";
        if (context.RequestHeaders.Get("x-detail") is { } detail)
        {
            error.AddDetail(new StringValue { Value = detail });
        }

        throw error;
    }
}

/// <summary>
/// Counts streaming handlers by the <c>x-fate</c> request header (what the test does to the
/// call): entries, exits, and exits that observed the call's cancellation; and holds streams
/// until <see cref="Release"/>.
/// </summary>
public sealed class HandlerTracker
{
    private readonly ConcurrentDictionary<string, Counts> _byFate = new();
    private readonly ConcurrentDictionary<RequestContext, string> _running = new();
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _inFlight;
    private int _maxInFlight;

    /// <summary>Tracked handlers running now.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>The most tracked handlers that ran at once.</summary>
    public int MaxInFlight => Volatile.Read(ref _maxInFlight);

    /// <summary>Completes when <see cref="Release"/> is called.</summary>
    public Task Released => _released.Task;

    /// <summary>Lets held streams go on.</summary>
    public void Release() => _released.TrySetResult();

    /// <summary>The counts of one fate (zeros if none was seen).</summary>
    public Counts For(string fate) => _byFate.GetOrAdd(fate, static _ => new Counts());

    /// <summary>The handlers running now, but those of <paramref name="exceptFate"/>, for failure messages.</summary>
    public string DescribeRunning(string exceptFate, int max) =>
        string.Join("\n", _running.Where(entry => !entry.Value.StartsWith(exceptFate + " ", StringComparison.Ordinal)).Take(max)
            .Select(entry => $"{entry.Value}: canceled {entry.Key.CancellationToken.IsCancellationRequested}"));

    /// <summary>The responses of <paramref name="handler"/>, counted if the call has a fate.</summary>
    public IAsyncEnumerable<T> Track<T>(IAsyncEnumerable<T> handler, RequestContext context) =>
        context.RequestHeaders.Get("x-fate") is { } fate ? TrackAsync(handler, context, fate) : handler;

    /// <summary>
    /// Runs the handler and counts it in and out. It observed its cancellation when, as it
    /// ended, its token had fired, or it ended with a cancellation (a wait or a read: Kestrel
    /// may fail a reset request body before it fires the token), or the server stopped it at
    /// a response it could not write (the client was gone).
    /// </summary>
    private async IAsyncEnumerable<T> TrackAsync<T>(IAsyncEnumerable<T> handler, RequestContext context, string fate, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        Counts counts = For(fate);
        counts.OnEnter();
        Microsoft.AspNetCore.Http.HttpRequest http = context.GetHttpContext().Request;
        _running[context] = $"{fate} {context.Procedure} {context.Protocol} {http.Protocol} #{http.Headers["x-name"]}";
        int now = Interlocked.Increment(ref _inFlight);
        int max;
        while (now > (max = Volatile.Read(ref _maxInFlight)) && Interlocked.CompareExchange(ref _maxInFlight, now, max) != max)
        {
        }

        bool completed = false;
        bool canceled = false;
        bool failed = false;
        try
        {
            await using IAsyncEnumerator<T> responses = handler.GetAsyncEnumerator(cancellationToken);
            while (true)
            {
                try
                {
                    if (!await responses.MoveNextAsync())
                    {
                        completed = true;
                        break;
                    }
                }
                catch (Exception ex) when (ex is OperationCanceledException or ConnectException { Code: Code.Canceled })
                {
                    canceled = true;
                    throw;
                }
                catch (Exception)
                {
                    failed = true;
                    throw;
                }

                yield return responses.Current;
            }
        }
        finally
        {
            bool abandoned = !completed && !canceled && !failed;
            counts.OnExit(canceled || abandoned || context.CancellationToken.IsCancellationRequested);
            _running.TryRemove(context, out _);
            Interlocked.Decrement(ref _inFlight);
        }
    }

    /// <summary>Entries and exits of the handlers of one fate.</summary>
    public sealed class Counts
    {
        private int _entered;
        private int _exited;
        private int _exitedCanceled;

        public int Entered => Volatile.Read(ref _entered);

        public int Exited => Volatile.Read(ref _exited);

        /// <summary>Exits that observed the call's cancellation.</summary>
        public int ExitedCanceled => Volatile.Read(ref _exitedCanceled);

        public override string ToString() => $"entered {Entered}, exited {Exited} ({ExitedCanceled} canceled)";

        internal void OnEnter() => Interlocked.Increment(ref _entered);

        internal void OnExit(bool canceled)
        {
            if (canceled)
            {
                Interlocked.Increment(ref _exitedCanceled);
            }

            Interlocked.Increment(ref _exited);
        }
    }
}
