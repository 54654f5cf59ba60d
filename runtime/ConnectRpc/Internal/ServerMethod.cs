using System.Runtime.CompilerServices;
using Google.Protobuf;

namespace ConnectRpc.Internal;

/// <summary>
/// A bound method: runs the handler against an <see cref="ServerCall"/> with the cardinality
/// rules of its kind. Protocol-independent; the protocol writes the end of the call.
/// </summary>
internal abstract class ServerMethod<TService>(Method method)
    where TService : class
{
    public Method Method { get; } = method;

    public abstract Task InvokeAsync(TService service, ServerCall call);

    /// <summary>Reads the single request of a unary or server-streaming call.</summary>
    protected static async ValueTask<TRequest> ReadSingleAsync<TRequest>(ServerCall call, Method method, MessageParser<TRequest> parser)
        where TRequest : class, IMessage<TRequest>
    {
        CancellationToken token = call.Context.CancellationToken;
        TRequest request = await call.ReadAsync(parser, token).ConfigureAwait(false)
            ?? throw new ConnectException(Code.Unimplemented, $"protocol error: no request message for {method.Kind} method {method.Procedure}");
        if (await call.ReadAsync(parser, token).ConfigureAwait(false) is not null)
        {
            throw new ConnectException(Code.Unimplemented, $"protocol error: more than one request message for {method.Kind} method {method.Procedure}");
        }

        return request;
    }

    protected static async Task WriteAllAsync<TResponse>(ServerCall call, IAsyncEnumerable<TResponse> responses)
        where TResponse : class, IMessage<TResponse>
    {
        CancellationToken token = call.Context.CancellationToken;
        await foreach (TResponse response in responses.WithCancellation(token).ConfigureAwait(false))
        {
            await call.WriteAsync(NotNull(response), token).ConfigureAwait(false);
        }
    }

    protected static T NotNull<T>(T? message)
        where T : class =>
        message ?? throw new InvalidOperationException("The handler returned a null message.");

    /// <summary>The requests of a streaming call as the handler sees them; enumerable once.</summary>
    protected static async IAsyncEnumerable<TRequest> ReadAll<TRequest>(
        ServerCall call,
        MessageParser<TRequest> parser,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
        where TRequest : class, IMessage<TRequest>
    {
        using CancellationTokenSource? linked = cancellationToken.CanBeCanceled
            ? CancellationTokenSource.CreateLinkedTokenSource(call.Context.CancellationToken, cancellationToken)
            : null;
        CancellationToken token = linked?.Token ?? call.Context.CancellationToken;
        while (await call.ReadAsync(parser, token).ConfigureAwait(false) is { } request)
        {
            yield return request;
        }
    }
}

internal sealed class UnaryServerMethod<TService, TRequest, TResponse>(
    Method<TRequest, TResponse> method,
    Func<TService, TRequest, RequestContext, Task<TResponse>> handler) : ServerMethod<TService>(method)
    where TService : class
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    public override async Task InvokeAsync(TService service, ServerCall call)
    {
        TRequest request = await ReadSingleAsync(call, method, method.RequestParser).ConfigureAwait(false);
        TResponse response = await handler(service, request, call.Context).ConfigureAwait(false);
        await call.WriteAsync(NotNull(response), call.Context.CancellationToken).ConfigureAwait(false);
    }
}

internal sealed class ServerStreamingServerMethod<TService, TRequest, TResponse>(
    Method<TRequest, TResponse> method,
    Func<TService, TRequest, RequestContext, IAsyncEnumerable<TResponse>> handler) : ServerMethod<TService>(method)
    where TService : class
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    public override async Task InvokeAsync(TService service, ServerCall call)
    {
        TRequest request = await ReadSingleAsync(call, method, method.RequestParser).ConfigureAwait(false);
        await WriteAllAsync(call, handler(service, request, call.Context)).ConfigureAwait(false);
    }
}

internal sealed class ClientStreamingServerMethod<TService, TRequest, TResponse>(
    Method<TRequest, TResponse> method,
    Func<TService, IAsyncEnumerable<TRequest>, RequestContext, Task<TResponse>> handler) : ServerMethod<TService>(method)
    where TService : class
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    public override async Task InvokeAsync(TService service, ServerCall call)
    {
        TResponse response = await handler(service, ReadAll(call, method.RequestParser), call.Context).ConfigureAwait(false);
        await call.WriteAsync(NotNull(response), call.Context.CancellationToken).ConfigureAwait(false);
    }
}

internal sealed class BidiStreamingServerMethod<TService, TRequest, TResponse>(
    Method<TRequest, TResponse> method,
    Func<TService, IAsyncEnumerable<TRequest>, RequestContext, IAsyncEnumerable<TResponse>> handler) : ServerMethod<TService>(method)
    where TService : class
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    public override Task InvokeAsync(TService service, ServerCall call) =>
        WriteAllAsync(call, handler(service, ReadAll(call, method.RequestParser), call.Context));
}
