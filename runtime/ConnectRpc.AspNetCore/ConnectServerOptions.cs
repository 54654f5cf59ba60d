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
        };
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
