using Google.Protobuf;

namespace ConnectRpc.Internal;

/// <summary>What the invoker hands a protocol for one call.</summary>
/// <param name="RequestHeaders">Application headers, already checked.</param>
/// <param name="Deadline">When the call must end, or null.</param>
/// <param name="Timeout">The time left at the start of the call (for timeout headers), or null.</param>
internal readonly record struct ClientCallInfo(Headers RequestHeaders, DateTimeOffset? Deadline, TimeSpan? Timeout);

/// <summary>
/// One wire protocol on the client side (Connect, gRPC, gRPC-Web). It makes a connection
/// per call; the invoker builds the four RPC kinds, deadlines, cancellation and
/// <see cref="ResponseMetadata"/> on top, the same for every protocol.
/// </summary>
internal interface IClientTransport
{
    IClientCall<TRequest, TResponse> CreateCall<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientCallInfo info)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>;
}

/// <summary>
/// One call on the wire. Sends may run concurrently with receives (full duplex); sends do
/// not overlap each other, nor do receives. Failures are thrown as <see cref="ConnectException"/>.
/// </summary>
internal interface IClientCall<TRequest, TResponse> : IAsyncDisposable
{
    /// <summary>The response headers; empty until they arrive (at the latest when the first receive returns).</summary>
    Headers ResponseHeaders { get; }

    /// <summary>The response trailers; empty until the call ended.</summary>
    Headers ResponseTrailers { get; }

    ValueTask SendAsync(TRequest message, CancellationToken cancellationToken);

    /// <summary>Ends the request stream (half-close).</summary>
    ValueTask CompleteSendAsync(CancellationToken cancellationToken);

    /// <summary>The next response message, or null at the successful end of the stream.</summary>
    ValueTask<TResponse?> ReceiveAsync(CancellationToken cancellationToken);
}

/// <summary>Chooses the transport for the configured protocol.</summary>
internal static class ClientTransports
{
    public static IClientTransport Create(HttpClient httpClient, Uri baseAddress, ConnectClientOptions options)
    {
        _ = httpClient;
        _ = baseAddress;
        return new PendingTransport(options.Protocol);
    }

    /// <summary>
    /// Stands in until the wire protocols land: every call fails with a clear
    /// <see cref="Code.Unimplemented"/> instead of reaching the network.
    /// </summary>
    private sealed class PendingTransport(Protocol protocol) : IClientTransport
    {
        public IClientCall<TRequest, TResponse> CreateCall<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientCallInfo info)
            where TRequest : class, IMessage<TRequest>
            where TResponse : class, IMessage<TResponse> =>
            throw new ConnectException(
                Code.Unimplemented,
                $"The {protocol} protocol client is not implemented in this build of ConnectRpc (calling {method.Procedure}).");
    }
}
