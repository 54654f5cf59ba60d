using ConnectRpc.Internal;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace ConnectRpc;

/// <summary>The four shapes of an RPC, by how many messages flow each way.</summary>
public enum MethodKind
{
    /// <summary>One request, one response.</summary>
    Unary,

    /// <summary>One request, a stream of responses.</summary>
    ServerStreaming,

    /// <summary>A stream of requests, one response.</summary>
    ClientStreaming,

    /// <summary>A stream each way: full duplex over HTTP/2, half-duplex (all requests, then the responses) over HTTP/1.1.</summary>
    BidiStreaming,
}

/// <summary>
/// A method's <c>idempotency_level</c> option. <see cref="NoSideEffects"/> methods may be
/// called with HTTP GET by the Connect protocol.
/// </summary>
public enum IdempotencyLevel
{
    /// <summary>Not declared: the method may have side effects.</summary>
    Unknown,

    /// <summary>The method has no side effects (a read); safe to call with HTTP GET and to retry.</summary>
    NoSideEffects,

    /// <summary>Calling the method twice has the same effect as calling it once.</summary>
    Idempotent,
}

/// <summary>Describes one RPC method: its names, kind and idempotency.</summary>
public abstract class Method
{
    private readonly Func<ServiceDescriptor>? _serviceDescriptor;
    private ServiceDescriptor? _service;
    private JsonCodec? _jsonCodec;

    private protected Method(string serviceName, string name, MethodKind kind, IdempotencyLevel idempotency, Func<ServiceDescriptor>? serviceDescriptor)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (kind is < MethodKind.Unary or > MethodKind.BidiStreaming)
        {
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown method kind.");
        }

        ServiceName = serviceName;
        Name = name;
        Kind = kind;
        Idempotency = idempotency;
        Procedure = "/" + serviceName + "/" + name;
        _serviceDescriptor = serviceDescriptor;
    }

    /// <summary>The fully-qualified service name, such as <c>greet.v1.GreetService</c>.</summary>
    public string ServiceName { get; }

    /// <summary>The method name as declared in the .proto file, such as <c>Greet</c>.</summary>
    public string Name { get; }

    /// <summary>The URL path of the method: <c>/greet.v1.GreetService/Greet</c>.</summary>
    public string Procedure { get; }

    /// <summary>The method's kind.</summary>
    public MethodKind Kind { get; }

    /// <summary>The method's declared idempotency.</summary>
    public IdempotencyLevel Idempotency { get; }

    /// <summary>
    /// The protobuf descriptor of the method's service, or null for a method made without one
    /// (by hand). Generated code supplies it; it is read on first use, not when the method is made.
    /// </summary>
    public ServiceDescriptor? ServiceDescriptor =>
        _service ??= _serviceDescriptor?.Invoke();

    /// <summary>
    /// The message types the JSON codec can write and read inside <c>google.protobuf.Any</c> for
    /// this method, before any that the client's or server's options add: every message of the
    /// service's .proto file and of the files it imports, transitively (without a
    /// <see cref="ServiceDescriptor"/>, those of the request's and response's files), and the
    /// well-known types. Built on first use.
    /// </summary>
    public TypeRegistry TypeRegistry => JsonCodec.Registry;

    /// <summary>The JSON codec of <see cref="TypeRegistry"/>, made once per service file and shared by its methods.</summary>
    internal JsonCodec JsonCodec => _jsonCodec ??= JsonCodec.ForFiles(JsonFiles());

    /// <summary>The files whose types (with their imports) the JSON codec resolves in Any.</summary>
    internal IReadOnlyList<FileDescriptor> JsonFiles() =>
        ServiceDescriptor is { } service ? [service.File] : MessageFiles();

    /// <summary>The files of the request and response messages.</summary>
    private protected abstract IReadOnlyList<FileDescriptor> MessageFiles();

    /// <summary>The procedure path.</summary>
    public override string ToString() => Procedure;
}

/// <summary>
/// Describes one RPC method with its message types. Generated code creates one per method;
/// clients and servers use it to route, encode and decode calls.
/// </summary>
/// <typeparam name="TRequest">The request message type.</typeparam>
/// <typeparam name="TResponse">The response message type.</typeparam>
public sealed class Method<TRequest, TResponse> : Method
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    /// <summary>Creates a method descriptor.</summary>
    /// <param name="serviceName">The fully-qualified service name.</param>
    /// <param name="name">The method name as declared in the .proto file.</param>
    /// <param name="kind">The method's kind.</param>
    /// <param name="requestParser">Parses request messages.</param>
    /// <param name="responseParser">Parses response messages.</param>
    /// <param name="idempotency">The method's declared idempotency.</param>
    /// <param name="serviceDescriptor">
    /// Gets the service's descriptor (generated code passes one), read on first use: the JSON
    /// codec then knows every message type of the service's .proto file and its imports inside
    /// <c>google.protobuf.Any</c>. Null: it knows those of the request's and response's files.
    /// </param>
    public Method(
        string serviceName,
        string name,
        MethodKind kind,
        MessageParser<TRequest> requestParser,
        MessageParser<TResponse> responseParser,
        IdempotencyLevel idempotency = IdempotencyLevel.Unknown,
        Func<ServiceDescriptor>? serviceDescriptor = null)
        : base(serviceName, name, kind, idempotency, serviceDescriptor)
    {
        ArgumentNullException.ThrowIfNull(requestParser);
        ArgumentNullException.ThrowIfNull(responseParser);
        RequestParser = requestParser;
        ResponseParser = responseParser;
    }

    /// <summary>Parses request messages.</summary>
    public MessageParser<TRequest> RequestParser { get; }

    /// <summary>Parses response messages.</summary>
    public MessageParser<TResponse> ResponseParser { get; }

    private protected override IReadOnlyList<FileDescriptor> MessageFiles() =>
        [RequestParser.ParseFrom(ByteString.Empty).Descriptor.File, ResponseParser.ParseFrom(ByteString.Empty).Descriptor.File];
}
