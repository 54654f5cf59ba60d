using ConnectRpc.Internal;
using Google.Protobuf.Reflection;

namespace ConnectRpc.AspNetCore;

/// <summary>How the server handles Connect calls; set with <c>services.AddConnect(options => …)</c>.</summary>
/// <remarks>
/// <para>
/// <see cref="MaxReceiveMessageSize"/> is the one size limit of a request on a Connect
/// endpoint: it replaces Kestrel's <c>MaxRequestBodySize</c> there (a unary body may hold the
/// limit plus 64 KiB of framing and compression overhead; a stream is limited per message).
/// Streams are also exempt from Kestrel's <c>MinRequestBodyDataRate</c>, since a client stream
/// may idle legitimately; deadlines bound them instead.
/// </para>
/// <para>
/// Kestrel's other limits still apply before a call starts, and are set on
/// <c>KestrelServerOptions.Limits</c> (<c>builder.WebHost.ConfigureKestrel(…)</c>): request
/// headers (32 KiB in all and 100 fields, else 431), the request line (8 KiB, else 414), the
/// minimum data rates (240 B/s after a 5 s grace; a stalled unary body then fails with
/// <see cref="Code.DeadlineExceeded"/>), and HTTP/2's 100 concurrent streams per connection.
/// The README's "Reliability" section lists them all.
/// </para>
/// </remarks>
public sealed class ConnectServerOptions
{
    /// <summary>The default <see cref="MaxReceiveMessageSize"/>: 4 MiB, as in gRPC.</summary>
    public const int DefaultMaxReceiveMessageSize = 4 * 1024 * 1024;

    /// <summary>The default <see cref="CompressMinBytes"/>: 1 KiB.</summary>
    public const int DefaultCompressMinBytes = 1024;

    private int _maxReceiveMessageSize = DefaultMaxReceiveMessageSize;
    private int _maxSendMessageSize = int.MaxValue;
    private int _compressMinBytes = DefaultCompressMinBytes;
    private TimeSpan _shutdownTimeout = DefaultShutdownTimeout;

    /// <summary>
    /// The default <see cref="ShutdownTimeout"/>: 25 seconds, 5 below ASP.NET Core's default
    /// <c>HostOptions.ShutdownTimeout</c> (30 s) and Kubernetes' default grace period (30 s).
    /// </summary>
    public static readonly TimeSpan DefaultShutdownTimeout = TimeSpan.FromSeconds(25);

    /// <summary>
    /// The largest request message accepted, in bytes, after decompression; larger ones fail
    /// with <see cref="Code.ResourceExhausted"/>. A frame's declared length is checked before
    /// its bytes are buffered, and decompression stops one byte past the limit, so neither a
    /// large frame nor a compression bomb costs more than the limit. Default: 4 MiB.
    /// </summary>
    public int MaxReceiveMessageSize
    {
        get => _maxReceiveMessageSize;
        set => _maxReceiveMessageSize = MessageFraming.PositiveSize(value);
    }

    /// <summary>
    /// The largest response message sent, in bytes; a handler returning a larger one fails the
    /// call with <see cref="Code.ResourceExhausted"/>. Default: no limit (<see cref="int.MaxValue"/>).
    /// </summary>
    public int MaxSendMessageSize
    {
        get => _maxSendMessageSize;
        set => _maxSendMessageSize = MessageFraming.PositiveSize(value);
    }

    /// <summary>
    /// The smallest response message compressed, in bytes, when the client accepts a
    /// compression (docs/wire/compression.md). Smaller messages go uncompressed: compressing them costs
    /// time and seldom saves bytes, and gzip makes a message of a few bytes larger. Default:
    /// <see cref="DefaultCompressMinBytes"/>; 0 compresses every non-empty message.
    /// </summary>
    public int CompressMinBytes
    {
        get => _compressMinBytes;
        set => _compressMinBytes = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(CompressMinBytes), value, "The size must not be negative.");
    }

    /// <summary>
    /// The compressions the server reads and may answer with. A request in an encoding not
    /// listed fails with <see cref="Code.Unimplemented"/>, naming the ones listed; the list
    /// is also the accept header of responses. The response takes the request's encoding, else
    /// the first encoding of the client's accept list that is listed here: the client's order
    /// decides, not this one. Default: <see cref="Compressor.Gzip"/>,
    /// <see cref="Compressor.Brotli"/>, <see cref="Compressor.Zstd"/>,
    /// <see cref="Compressor.Deflate"/>. Add an application's own <see cref="Compressor"/>, or
    /// clear the list to read and send only uncompressed messages. Null entries and names listed
    /// twice (in any case) fail <c>MapConnectService</c> with an <see cref="ArgumentException"/>.
    /// </summary>
    public IList<Compressor> Compressors { get; } = new List<Compressor> { Compressor.Gzip, Compressor.Brotli, Compressor.Zstd, Compressor.Deflate };

    /// <summary>
    /// How long calls in flight may go on once the application begins to stop (SIGTERM, Ctrl-C,
    /// <c>IHostApplicationLifetime.StopApplication</c>). Default: <see cref="DefaultShutdownTimeout"/>
    /// (25 s); <see cref="TimeSpan.Zero"/> cancels them at once, <see cref="Timeout.InfiniteTimeSpan"/>
    /// leaves them to the host. Server-wide: only the value given to <c>AddConnect</c> counts.
    /// </summary>
    /// <remarks>
    /// <para>
    /// From the moment the application stops, the server refuses calls that still arrive (on a
    /// connection opened before) with <see cref="Code.Unavailable"/>, "the server is shutting
    /// down", before their handler runs: a client or proxy may retry them on another instance.
    /// Meanwhile Kestrel stops listening, sends HTTP/2 connections a GOAWAY and closes HTTP/1.1
    /// connections after their current response, so proxies move to other instances. Calls in
    /// flight run on; when the timeout passes, each handler's <see cref="RequestContext.CancellationToken"/>
    /// fires and the call ends with <see cref="Code.Unavailable"/>, "the server is shutting
    /// down" (a stream after the messages it sent). A handler that ignores its token runs on
    /// until the host gives up.
    /// </para>
    /// <para>
    /// Keep it below <c>HostOptions.ShutdownTimeout</c> (30 s by default; <c>builder.Services.Configure&lt;HostOptions&gt;</c>):
    /// when the host's time is up, Kestrel aborts the connections still open, and calls then end
    /// without a status (the client sees a reset stream or a closed connection). A warning is
    /// logged at shutdown when it is not below. The server's orchestrator must wait longer still
    /// before it kills the process (Kubernetes: <c>terminationGracePeriodSeconds</c>, 30 s).
    /// </para>
    /// </remarks>
    public TimeSpan ShutdownTimeout
    {
        get => _shutdownTimeout;
        set => _shutdownTimeout = value >= TimeSpan.Zero || value == Timeout.InfiniteTimeSpan
            ? value
            : throw new ArgumentOutOfRangeException(nameof(ShutdownTimeout), value, "The timeout must not be negative, unless it is Timeout.InfiniteTimeSpan.");
    }

    /// <summary>
    /// Message types the JSON codec may meet inside <c>google.protobuf.Any</c>, beyond those it
    /// knows already: every message of the service's .proto file and its imports (generated
    /// code gives them) and the well-known types. Each type brings every message of its .proto
    /// file and that file's imports, as <see cref="TypeRegistry.FromMessages(MessageDescriptor[])"/> does.
    /// A request with an <c>Any</c> of a type the codec does not know fails with
    /// <see cref="Code.InvalidArgument"/>; a response with one fails with <see cref="Code.Internal"/>,
    /// logged as the server's failure. The binary codec needs none of this.
    /// </summary>
    public IList<MessageDescriptor> JsonTypes { get; } = new List<MessageDescriptor>();

    /// <summary>Interceptors that every call passes through; the first is the outermost.</summary>
    public IList<ServerInterceptor> Interceptors { get; } = new List<ServerInterceptor>();

    /// <summary>
    /// Request header keys whose values a call's trace span records, as
    /// <c>rpc.request.metadata.&lt;key&gt;</c>. Empty by default: headers may carry secrets, so
    /// only keys named here are ever recorded.
    /// </summary>
    public IList<string> TracedRequestMetadata { get; } = new List<string>();

    /// <summary>
    /// Response header and trailer keys whose values a call's trace span records, as
    /// <c>rpc.response.metadata.&lt;key&gt;</c>. Empty by default.
    /// </summary>
    public IList<string> TracedResponseMetadata { get; } = new List<string>();

    /// <summary>A copy for one service's options, which start from the server's.</summary>
    internal ConnectServerOptions Clone()
    {
        var copy = new ConnectServerOptions
        {
            MaxReceiveMessageSize = MaxReceiveMessageSize,
            MaxSendMessageSize = MaxSendMessageSize,
            CompressMinBytes = CompressMinBytes,
            ShutdownTimeout = ShutdownTimeout,
        };
        copy.Compressors.Clear();
        foreach (Compressor compressor in Compressors)
        {
            copy.Compressors.Add(compressor);
        }

        foreach (ServerInterceptor interceptor in Interceptors)
        {
            copy.Interceptors.Add(interceptor);
        }

        foreach (string key in TracedRequestMetadata)
        {
            copy.TracedRequestMetadata.Add(key);
        }

        foreach (MessageDescriptor type in JsonTypes)
        {
            copy.JsonTypes.Add(type);
        }

        foreach (string key in TracedResponseMetadata)
        {
            copy.TracedResponseMetadata.Add(key);
        }

        return copy;
    }
}
