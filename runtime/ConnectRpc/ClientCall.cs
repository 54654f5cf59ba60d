using ConnectRpc.Internal;
using Google.Protobuf;

namespace ConnectRpc;

/// <summary>
/// One client call on the wire, as <see cref="ClientInterceptor"/>s see it: every RPC kind is
/// a stream of requests and a stream of responses (a unary call sends one and receives one).
/// </summary>
/// <remarks>
/// Sends may run concurrently with receives (full duplex), but sends do not overlap each
/// other, nor do receives. Every failure is thrown as a <see cref="ConnectException"/>.
/// </remarks>
/// <typeparam name="TRequest">The request message type.</typeparam>
/// <typeparam name="TResponse">The response message type.</typeparam>
public abstract class ClientCall<TRequest, TResponse> : IAsyncDisposable
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    /// <summary>Initializes the call's method, request headers and deadline.</summary>
    protected ClientCall(Method<TRequest, TResponse> method, Headers requestHeaders, DateTimeOffset? deadline)
    {
        Method = method;
        RequestHeaders = requestHeaders;
        Deadline = deadline;
    }

    /// <summary>The method called.</summary>
    public Method<TRequest, TResponse> Method { get; }

    /// <summary>
    /// The request headers. Interceptors may change them until the request starts (the first
    /// send, half-close or receive); writes are checked like every application header.
    /// </summary>
    public Headers RequestHeaders { get; }

    /// <summary>When the call must end, or null when it has no deadline.</summary>
    public DateTimeOffset? Deadline { get; }

    /// <summary>The response headers: empty until they arrive (at the latest when the first receive returns). Read-only.</summary>
    public abstract Headers ResponseHeaders { get; }

    /// <summary>The response trailers: empty until the call ended. Read-only.</summary>
    public abstract Headers ResponseTrailers { get; }

    /// <summary>Sends a request message (starting the request if it has not started).</summary>
    public abstract ValueTask SendAsync(TRequest message, CancellationToken cancellationToken);

    /// <summary>Ends the request stream (half-close).</summary>
    public abstract ValueTask CompleteSendAsync(CancellationToken cancellationToken);

    /// <summary>The next response message, or null at the successful end of the response stream.</summary>
    public abstract ValueTask<TResponse?> ReceiveAsync(CancellationToken cancellationToken);

    /// <summary>Releases the call; an unfinished call is canceled.</summary>
    public abstract ValueTask DisposeAsync();
}

/// <summary>
/// A <see cref="ClientCall{TRequest, TResponse}"/> that forwards everything to another call.
/// Derive from it in an interceptor and override what you want to observe or change.
/// </summary>
/// <typeparam name="TRequest">The request message type.</typeparam>
/// <typeparam name="TResponse">The response message type.</typeparam>
public class DelegatingClientCall<TRequest, TResponse> : ClientCall<TRequest, TResponse>
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    /// <summary>Wraps <paramref name="inner"/>; its method, request headers and deadline are shared.</summary>
    public DelegatingClientCall(ClientCall<TRequest, TResponse> inner)
        : base(NotNull(inner).Method, inner.RequestHeaders, inner.Deadline)
    {
        Inner = inner;
    }

    /// <summary>The call this one forwards to.</summary>
    protected ClientCall<TRequest, TResponse> Inner { get; }

    /// <inheritdoc/>
    public override Headers ResponseHeaders => Inner.ResponseHeaders;

    /// <inheritdoc/>
    public override Headers ResponseTrailers => Inner.ResponseTrailers;

    /// <inheritdoc/>
    public override ValueTask SendAsync(TRequest message, CancellationToken cancellationToken) => Inner.SendAsync(message, cancellationToken);

    /// <inheritdoc/>
    public override ValueTask CompleteSendAsync(CancellationToken cancellationToken) => Inner.CompleteSendAsync(cancellationToken);

    /// <inheritdoc/>
    public override ValueTask<TResponse?> ReceiveAsync(CancellationToken cancellationToken) => Inner.ReceiveAsync(cancellationToken);

    /// <inheritdoc/>
    public override ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return Inner.DisposeAsync();
    }

    private static ClientCall<TRequest, TResponse> NotNull(ClientCall<TRequest, TResponse> inner)
    {
        ArgumentNullException.ThrowIfNull(inner);
        return inner;
    }
}

/// <summary>
/// Intercepts the calls of a client: add or check headers, observe messages, responses,
/// trailers and errors. Set in <see cref="ConnectClientOptions.Interceptors"/>; the first in the
/// list is the outermost.
/// </summary>
/// <example>
/// <code>
/// sealed class BearerToken(string token) : ClientInterceptor
/// {
///     public override ClientCall&lt;TReq, TRes&gt; Intercept&lt;TReq, TRes&gt;(ClientCall&lt;TReq, TRes&gt; call)
///     {
///         call.RequestHeaders["authorization"] = "Bearer " + token;
///         return call;
///     }
/// }
/// </code>
/// </example>
public abstract class ClientInterceptor
{
    /// <summary>
    /// Called when a call is about to start, for every RPC kind. Return <paramref name="call"/>
    /// (after changing its <see cref="ClientCall{TRequest, TResponse}.RequestHeaders"/>, say) or a
    /// <see cref="DelegatingClientCall{TRequest, TResponse}"/> around it. Throwing a
    /// <see cref="ConnectException"/> fails the call before it reaches the network.
    /// </summary>
    public abstract ClientCall<TRequest, TResponse> Intercept<TRequest, TResponse>(ClientCall<TRequest, TResponse> call)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>;
}
