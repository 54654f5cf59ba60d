using Google.Protobuf;

namespace ConnectRpc.Internal;

/// <summary>What the invoker hands a protocol for one call.</summary>
/// <param name="RequestHeaders">Application headers, already checked.</param>
/// <param name="Lifetime">
/// The call's cancellation: the protocol sends its HTTP request with <see cref="CallLifetime.Token"/>
/// and abandons the lifetime when the call is disposed, so a call has one token source in all.
/// </param>
internal readonly record struct ClientCallInfo(Headers RequestHeaders, CallLifetime Lifetime)
{
    /// <summary>When the call must end, or null.</summary>
    public DateTimeOffset? Deadline => Lifetime.Deadline;

    /// <summary>The call's timeout as it started, or null; timeout headers use <see cref="CallLifetime.TimeLeft"/>.</summary>
    public TimeSpan? Timeout => Lifetime.Timeout;
}

/// <summary>
/// One wire protocol on the client side (Connect, gRPC, gRPC-Web). It makes a connection
/// per call; the invoker builds the four RPC kinds, deadlines, cancellation and
/// <see cref="ResponseMetadata"/> on top, the same for every protocol.
/// </summary>
internal interface IClientTransport
{
    ClientCall<TRequest, TResponse> CreateCall<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientCallInfo info)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>;
}

/// <summary>Chooses the transport for the configured protocol.</summary>
internal static class ClientTransports
{
    /// <param name="sender">An application's <see cref="HttpClient"/>, or the shared connection pool's invoker.</param>
    /// <param name="baseAddress">The server's base URL.</param>
    /// <param name="options">The client's options.</param>
    public static IClientTransport Create(HttpMessageInvoker sender, Uri baseAddress, ConnectClientOptions options)
    {
        var settings = new HttpTransportSettings(sender, baseAddress, options);
        return options.Protocol switch
        {
            Protocol.Grpc => new GrpcClientTransport(settings, GrpcWire.Grpc),
            Protocol.GrpcWeb => new GrpcClientTransport(settings, GrpcWire.Web),
            Protocol.GrpcWebText => new GrpcClientTransport(settings, GrpcWire.WebText),
            _ => new ConnectClientTransport(settings),
        };
    }
}
