using ConnectRpc.Internal;

namespace ConnectRpc.AspNetCore.Internal;

/// <summary>
/// What every call of one endpoint shares, fixed when the service is mapped: the method, the
/// server's limits and its clock.
/// </summary>
internal sealed class ServerMethodSettings
{
    // A 415 lists every content type the method accepts, whatever the protocol (as connect-go does).
    private const string UnaryAcceptPost = ConnectProtocol.UnaryJson + ", " + ConnectProtocol.UnaryProto + ", " + GrpcProtocol.AcceptPost;
    private const string StreamAcceptPost = ConnectProtocol.StreamJson + ", " + ConnectProtocol.StreamProto + ", " + GrpcProtocol.AcceptPost;

    public ServerMethodSettings(Method method, ConnectServerOptions options, TimeProvider time, ServerShutdown shutdown)
    {
        // Checked here, so that a bad list fails MapConnectService rather than a call.
        Compressors = CompressorSet.Create(options.Compressors, "ConnectServerOptions.Compressors", nameof(options));
        Shutdown = shutdown;
        Method = method;
        MaxReceive = options.MaxReceiveMessageSize;
        MaxSend = options.MaxSendMessageSize;
        CompressMinBytes = options.CompressMinBytes;
        Time = time;
        Streaming = method.Kind != MethodKind.Unary;
        GetAllowed = method.Kind == MethodKind.Unary && method.Idempotency == IdempotencyLevel.NoSideEffects;
        AcceptPost = Streaming ? StreamAcceptPost : UnaryAcceptPost;
        TracedRequestMetadata = [.. options.TracedRequestMetadata];
        TracedResponseMetadata = [.. options.TracedResponseMetadata];
        _jsonTypes = [.. options.JsonTypes];
        if (_jsonTypes.Contains(null!))
        {
            throw new InvalidOperationException("ConnectServerOptions.JsonTypes contains null.");
        }
    }

    private readonly Google.Protobuf.Reflection.MessageDescriptor[] _jsonTypes;
    private JsonCodec? _jsonCodec;

    /// <summary>
    /// The JSON codec of the method: its types and those of <see cref="ConnectServerOptions.JsonTypes"/>, made on first use.
    /// </summary>
    public JsonCodec JsonCodec => _jsonCodec ??= Method.JsonCodec.With(_jsonTypes);

    /// <summary>The server side's spans and call durations.</summary>
    public static RpcTelemetry Telemetry { get; } = new(typeof(ServerMethodSettings).Assembly, server: true);

    public Method Method { get; }

    /// <summary>The server's shutdown: refuses calls once stopping, cancels the rest at its timeout.</summary>
    public ServerShutdown Shutdown { get; }

    /// <summary>The largest request message, after decompression.</summary>
    public int MaxReceive { get; }

    /// <summary>The largest response message.</summary>
    public int MaxSend { get; }

    /// <summary>The compressions read and answered with; their accept header, made once.</summary>
    public CompressorSet Compressors { get; }

    /// <summary>The smallest response message compressed.</summary>
    public int CompressMinBytes { get; }

    /// <summary>The one clock of the server's deadlines and of <see cref="RequestContext.Timeout"/>.</summary>
    public TimeProvider Time { get; }

    /// <summary>Whether the method streams (every kind but unary): enveloped on every protocol.</summary>
    public bool Streaming { get; }

    /// <summary>Whether Connect GET may call the method (unary, marked free of side effects).</summary>
    public bool GetAllowed { get; }

    /// <summary>The 415 response's <c>Accept-Post</c>: every content type the method accepts.</summary>
    public string AcceptPost { get; }

    /// <summary>The request metadata keys a span records.</summary>
    public IList<string> TracedRequestMetadata { get; }

    /// <summary>The response metadata keys a span records.</summary>
    public IList<string> TracedResponseMetadata { get; }
}
