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
/// <item>test-only: <c>x-throw</c> throws a plain exception, <c>x-sleep-ms</c> waits (cancellably), <c>x-detail</c> adds an error detail, <c>x-bad-header</c> writes a reserved header, <c>x-odd-message</c> fails with <see cref="OddMessage"/>.</item>
/// </list>
/// </summary>
public sealed class TestGreetService : IGreetService
{
    /// <summary>An error message that must survive every protocol: percent, CR, LF, tab, BMP and non-BMP text.</summary>
    public const string OddMessage = "100% sure:\r\n\tcaf\u00e9 \u65e5\u672c \U0001F389";

    /// <summary>Procedures whose handler saw its cancellation token fire.</summary>
    public ConcurrentQueue<string> Canceled { get; } = new();

    /// <summary>The <see cref="RequestContext.Timeout"/> each handler saw at its start, by procedure.</summary>
    public ConcurrentDictionary<string, TimeSpan?> Timeouts { get; } = new();

    /// <summary>The last call's protocol, HTTP version and scheme, by procedure: "Grpc HTTP/2 https".</summary>
    public ConcurrentDictionary<string, string> Transports { get; } = new();

    public async Task<GreetResponse> GreetAsync(GreetRequest request, RequestContext context)
    {
        Begin(context);
        await SleepAsync(context);
        Fail(context);
        return new GreetResponse { Greeting = $"Hello, {request.Name}!" };
    }

    public async IAsyncEnumerable<GreetResponse> GreetManyAsync(GreetRequest request, RequestContext context)
    {
        Begin(context);
        for (int i = 1; i <= 3; i++)
        {
            yield return new GreetResponse { Greeting = $"Hello, {request.Name}! ({i})" };
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

    public async IAsyncEnumerable<GreetResponse> ChatAsync(IAsyncEnumerable<GreetRequest> requests, RequestContext context)
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
