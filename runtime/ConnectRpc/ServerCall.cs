using Google.Protobuf;

namespace ConnectRpc;

/// <summary>
/// One call on the server, as <see cref="ServerInterceptor"/>s see it: the context, a source
/// of request messages and a sink for response messages, for every RPC kind.
/// </summary>
/// <remarks>
/// Failures are thrown as <see cref="ConnectException"/>. A call's <see cref="Context"/> is
/// fixed when the call is made, and a <see cref="DelegatingServerCall"/> shares its inner
/// call's: whatever interceptors wrap around a call, the handler writes its response
/// metadata into the context the server sends from.
/// </remarks>
public abstract class ServerCall
{
    /// <summary>Initializes a call with its context.</summary>
    /// <param name="context">The call's context.</param>
    protected ServerCall(RequestContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        Context = context;
        Origin = this;
    }

    /// <summary>Initializes a call that wraps <paramref name="inner"/>: the same context, the same origin.</summary>
    private protected ServerCall(ServerCall inner)
    {
        ArgumentNullException.ThrowIfNull(inner);
        Context = inner.Context;
        Origin = inner.Origin;
    }

    /// <summary>The method called.</summary>
    public abstract Method Method { get; }

    /// <summary>The call's context: request headers, response headers and trailers, deadline, cancellation.</summary>
    public RequestContext Context { get; }

    /// <summary>The call that a chain of <see cref="DelegatingServerCall"/>s wraps: the server's own, or this one.</summary>
    internal ServerCall Origin { get; }

    /// <summary>The next request message, or null when the client ended its stream.</summary>
    public abstract ValueTask<T?> ReadAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
        where T : class, IMessage<T>;

    /// <summary>Sends a response message (the response headers first, if they have not gone).</summary>
    public abstract ValueTask WriteAsync<T>(T message, CancellationToken cancellationToken)
        where T : class, IMessage<T>;
}

/// <summary>
/// A <see cref="ServerCall"/> that forwards everything to another call. Derive from it in an
/// interceptor to observe or change request and response messages.
/// </summary>
public class DelegatingServerCall : ServerCall
{
    /// <summary>Wraps <paramref name="inner"/>.</summary>
    public DelegatingServerCall(ServerCall inner)
        : base(inner)
    {
        Inner = inner;
    }

    /// <summary>The call this one forwards to.</summary>
    protected ServerCall Inner { get; }

    /// <inheritdoc/>
    public override Method Method => Inner.Method;

    /// <inheritdoc/>
    public override ValueTask<T?> ReadAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
        where T : class => Inner.ReadAsync(parser, cancellationToken);

    /// <inheritdoc/>
    public override ValueTask WriteAsync<T>(T message, CancellationToken cancellationToken)
        where T : class => Inner.WriteAsync(message, cancellationToken);
}

/// <summary>Handles a server call: the handler, or the rest of the interceptor chain.</summary>
/// <param name="call">The call.</param>
/// <returns>A task that completes when the call's handling is done.</returns>
public delegate Task ServerCallHandler(ServerCall call);

/// <summary>
/// Intercepts the calls a server handles, for every RPC kind: check request headers, write
/// response headers and trailers, observe messages and errors. The first interceptor
/// registered is the outermost.
/// </summary>
/// <example>
/// <code>
/// sealed class RequireToken : ServerInterceptor
/// {
///     public override Task InterceptAsync(ServerCall call, ServerCallHandler next) =>
///         call.Context.RequestHeaders.Get("authorization") is null
///             ? throw new ConnectException(Code.Unauthenticated, "missing token")
///             : next(call);
/// }
/// </code>
/// </example>
public abstract class ServerInterceptor
{
    /// <summary>
    /// Handles <paramref name="call"/>, normally by awaiting <paramref name="next"/> with it
    /// (or with a <see cref="DelegatingServerCall"/> around it). Throwing a
    /// <see cref="ConnectException"/> ends the call with that error; what was written to the
    /// context's response trailers is still sent.
    /// </summary>
    public abstract Task InterceptAsync(ServerCall call, ServerCallHandler next);
}
