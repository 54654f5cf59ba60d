using ConnectRpc;
using Greet.V1;

namespace Greet.Server;

/// <summary>
/// The Greet service: one method of each RPC kind. Every call logs the caller's
/// <c>acme-tenant-id</c> request header and answers <c>greet-version: v1</c> in its response
/// headers and in its trailers.
/// </summary>
internal sealed partial class GreetService(ILogger<GreetService> logger) : IGreetService
{
    private const int DefaultTimes = 3;
    private const int MaxTimes = 100;
    private static readonly TimeSpan Pause = TimeSpan.FromMilliseconds(100);

    public Task<GreetResponse> GreetAsync(GreetRequest request, RequestContext ctx)
    {
        Begin(ctx);
        return Task.FromResult(new GreetResponse { Greeting = $"Hello, {RequireName(request.Name)}!" });
    }

    public async IAsyncEnumerable<GreetManyResponse> GreetManyAsync(GreetManyRequest request, RequestContext ctx)
    {
        // An async iterator runs when the runtime starts enumerating it: the headers set here
        // leave with the first message.
        Begin(ctx);
        string name = RequireName(request.Name);
        int times = request.Times switch
        {
            0 => DefaultTimes,
            < 0 or > MaxTimes => throw new ConnectException(Code.InvalidArgument, $"times must be between 1 and {MaxTimes}"),
            _ => request.Times,
        };
        for (int i = 1; i <= times; i++)
        {
            if (i > 1)
            {
                // A pause, so the stream shows; the token fires on cancel, disconnect or deadline.
                await Task.Delay(Pause, ctx.CancellationToken);
            }

            yield return new GreetManyResponse { Greeting = $"Hello, {name}! ({i} of {times})" };
        }
    }

    public async Task<GreetEveryoneResponse> GreetEveryoneAsync(IAsyncEnumerable<GreetEveryoneRequest> requests, RequestContext ctx)
    {
        Begin(ctx);
        var names = new List<string>();
        await foreach (GreetEveryoneRequest request in requests.WithCancellation(ctx.CancellationToken))
        {
            names.Add(RequireName(request.Name));
        }

        return new GreetEveryoneResponse
        {
            Greeting = names.Count == 0 ? "Hello, nobody!" : $"Hello, {string.Join(", ", names)}!",
        };
    }

    public async IAsyncEnumerable<ChatResponse> ChatAsync(IAsyncEnumerable<ChatRequest> requests, RequestContext ctx)
    {
        // Full duplex: each answer goes out as soon as its request came in.
        Begin(ctx);
        await foreach (ChatRequest request in requests.WithCancellation(ctx.CancellationToken))
        {
            yield return new ChatResponse { Greeting = $"Hello, {RequireName(request.Name)}!" };
        }
    }

    private void Begin(RequestContext ctx)
    {
        LogCall(logger, ctx.Procedure, ctx.RequestHeaders.Get("acme-tenant-id") ?? "(none)");
        ctx.ResponseHeaders["greet-version"] = "v1";
        ctx.ResponseTrailers["greet-version"] = "v1";
    }

    private static string RequireName(string name) =>
        string.IsNullOrWhiteSpace(name) ? throw new ConnectException(Code.InvalidArgument, "name is required") : name;

    [LoggerMessage(1, LogLevel.Information, "{Procedure} called by tenant {TenantId}")]
    private static partial void LogCall(ILogger logger, string procedure, string tenantId);
}
