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
    ClientCall<TRequest, TResponse> CreateCall<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientCallInfo info)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>;
}

/// <summary>Chooses the transport for the configured protocol.</summary>
internal static class ClientTransports
{
    public static IClientTransport Create(HttpClient httpClient, Uri baseAddress, ConnectClientOptions options)
    {
        var settings = new HttpTransportSettings(httpClient, baseAddress, options);
        return options.Protocol switch
        {
            Protocol.Grpc => new GrpcClientTransport(settings, GrpcWire.Grpc),
            Protocol.GrpcWeb => new GrpcClientTransport(settings, GrpcWire.Web),
            Protocol.GrpcWebText => new GrpcClientTransport(settings, GrpcWire.WebText),
            _ => new ConnectClientTransport(settings),
        };
    }
}
