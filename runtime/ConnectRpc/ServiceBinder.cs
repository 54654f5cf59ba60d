using ConnectRpc.Internal;
using Google.Protobuf;

namespace ConnectRpc;

/// <summary>
/// Collects the methods of a service implementation. Generated <c>BindService</c> methods
/// fill it with one strongly-typed, non-capturing handler per RPC, so a server routes calls
/// without reflection.
/// </summary>
/// <typeparam name="TService">The implementation type, resolved per call by the server.</typeparam>
public sealed class ServiceBinder<TService>
    where TService : class
{
    private readonly List<ServerMethod<TService>> _methods = [];

    /// <summary>
    /// The protobuf descriptor of the service, which generated <c>BindService</c> methods set:
    /// servers publish it (as endpoint metadata) for server reflection. Null when not set.
    /// </summary>
    public Google.Protobuf.Reflection.ServiceDescriptor? Descriptor { get; set; }

    /// <summary>The methods bound so far, in order.</summary>
    internal IReadOnlyList<ServerMethod<TService>> Methods => _methods;

    /// <summary>Binds a unary method.</summary>
    public void AddUnary<TRequest, TResponse>(
        Method<TRequest, TResponse> method,
        Func<TService, TRequest, RequestContext, Task<TResponse>> handler)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse> =>
        Add(method, MethodKind.Unary, handler, static (m, h) => new UnaryServerMethod<TService, TRequest, TResponse>(m, h));

    /// <summary>Binds a server-streaming method.</summary>
    public void AddServerStreaming<TRequest, TResponse>(
        Method<TRequest, TResponse> method,
        Func<TService, TRequest, RequestContext, IAsyncEnumerable<TResponse>> handler)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse> =>
        Add(method, MethodKind.ServerStreaming, handler, static (m, h) => new ServerStreamingServerMethod<TService, TRequest, TResponse>(m, h));

    /// <summary>Binds a client-streaming method.</summary>
    public void AddClientStreaming<TRequest, TResponse>(
        Method<TRequest, TResponse> method,
        Func<TService, IAsyncEnumerable<TRequest>, RequestContext, Task<TResponse>> handler)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse> =>
        Add(method, MethodKind.ClientStreaming, handler, static (m, h) => new ClientStreamingServerMethod<TService, TRequest, TResponse>(m, h));

    /// <summary>Binds a bidirectional-streaming method.</summary>
    public void AddBidiStreaming<TRequest, TResponse>(
        Method<TRequest, TResponse> method,
        Func<TService, IAsyncEnumerable<TRequest>, RequestContext, IAsyncEnumerable<TResponse>> handler)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse> =>
        Add(method, MethodKind.BidiStreaming, handler, static (m, h) => new BidiStreamingServerMethod<TService, TRequest, TResponse>(m, h));

    private void Add<TMethod, THandler>(TMethod method, MethodKind kind, THandler handler, Func<TMethod, THandler, ServerMethod<TService>> create)
        where TMethod : Method
        where THandler : Delegate
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(handler);
        if (method.Kind != kind)
        {
            throw new ArgumentException($"{method.Procedure} is a {method.Kind} method and cannot be bound as {kind}.", nameof(method));
        }

        foreach (ServerMethod<TService> existing in _methods)
        {
            if (existing.Method.Procedure == method.Procedure)
            {
                throw new InvalidOperationException($"{method.Procedure} is already bound.");
            }
        }

        _methods.Add(create(method, handler));
    }
}
