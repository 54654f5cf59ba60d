using Microsoft.Extensions.Logging;
using ConnectRpc.Internal;
using Google.Protobuf.Reflection;

namespace ConnectRpc;

/// <summary>
/// How a client talks to a server. Every method of a generated client uses the same options;
/// per-call values (headers, timeout, cancellation) are method parameters.
/// </summary>
/// <remarks>
/// Not sealed only so that <see cref="ConnectClientFactoryOptions"/> can add what a client
/// registered with <c>AddConnectClient</c> needs.
/// </remarks>
public class ConnectClientOptions
{
    /// <summary>The default <see cref="MaxReceiveMessageSize"/>: 4 MiB, as in gRPC.</summary>
    public const int DefaultMaxReceiveMessageSize = 4 * 1024 * 1024;

    private int _maxReceiveMessageSize = DefaultMaxReceiveMessageSize;
    private int _maxSendMessageSize = int.MaxValue;
    private TimeSpan? _timeout;
    private List<ClientInterceptor> _interceptors = [];
    private List<Compressor> _compressors = [Compressor.Gzip, Compressor.Brotli, Compressor.Zstd, Compressor.Deflate];
    private List<string> _tracedRequestMetadata = [];
    private List<string> _tracedResponseMetadata = [];
    private List<MessageDescriptor> _jsonTypes = [];

    /// <summary>
    /// The wire protocol of every method of the client. Default: <see cref="Protocol.Connect"/>.
    /// <see cref="Protocol.Grpc"/> always uses HTTP/2 (prior knowledge over cleartext);
    /// <see cref="Protocol.GrpcWeb"/> and <see cref="Protocol.GrpcWebText"/> follow
    /// <see cref="HttpVersion"/> like Connect. Servers built on ConnectRpc.AspNetCore answer all of them.
    /// </summary>
    public Protocol Protocol { get; set; } = Protocol.Connect;

    /// <summary>The message encoding. Default: <see cref="Codec.Proto"/>.</summary>
    public Codec Codec { get; set; } = Codec.Proto;

    /// <summary>
    /// Message types the JSON codec may meet inside <c>google.protobuf.Any</c>, beyond those it
    /// knows already: every message of the service's .proto file and its imports (generated
    /// code gives them) and the well-known types. Each type brings every message of its .proto
    /// file and that file's imports, as <see cref="TypeRegistry.FromMessages(MessageDescriptor[])"/> does.
    /// Add, say, the error-detail or event types an application packs into <c>Any</c> fields
    /// declared elsewhere: an <c>Any</c> of a type the codec does not know cannot be sent
    /// (the call fails with <see cref="Code.Internal"/> before anything is sent) nor received
    /// (<see cref="Code.Internal"/>). The binary codec needs none of this.
    /// </summary>
    public IList<MessageDescriptor> JsonTypes => _jsonTypes;

    /// <summary>
    /// The compression of request messages, by name (<c>"gzip"</c>): one of
    /// <see cref="Compressors"/>, compared without regard to case. Null (the default) sends them
    /// uncompressed. A name not in <see cref="Compressors"/> fails the client's construction
    /// with an <see cref="ArgumentException"/>. In streams, empty messages go uncompressed; a
    /// Connect unary request is always compressed, so that its <c>Content-Encoding</c> names it.
    /// </summary>
    public string? SendCompression { get; set; }

    /// <summary>
    /// The compressions this client reads and may send, in order of preference. The order is
    /// the protocol's accept header (<c>Accept-Encoding</c>, <c>Connect-Accept-Encoding</c> or
    /// <c>grpc-accept-encoding</c>), from which the server picks the first it supports for
    /// responses. Default: <see cref="Compressor.Gzip"/>, <see cref="Compressor.Brotli"/>,
    /// <see cref="Compressor.Zstd"/>, <see cref="Compressor.Deflate"/>. Add an application's
    /// own <see cref="Compressor"/>, or clear the list to ask for uncompressed responses, as on a
    /// fast network where compressing costs more than it saves.
    /// </summary>
    /// <remarks>
    /// A response in an encoding not listed fails with <see cref="Code.Internal"/>. Null entries
    /// and names listed twice (in any case) fail the client's construction with an
    /// <see cref="ArgumentException"/>.
    /// </remarks>
    public IList<Compressor> Compressors => _compressors;

    /// <summary>
    /// Whether Connect unary calls to methods marked <c>NO_SIDE_EFFECTS</c> use HTTP GET
    /// (cacheable). Default: false.
    /// </summary>
    public bool UseHttpGet { get; set; }

    /// <summary>The largest response message accepted, in bytes, after decompression. Default: 4 MiB.</summary>
    public int MaxReceiveMessageSize
    {
        get => _maxReceiveMessageSize;
        set => _maxReceiveMessageSize = MessageFraming.PositiveSize(value);
    }

    /// <summary>The largest request message sent, in bytes. Default: no limit (<see cref="int.MaxValue"/>).</summary>
    public int MaxSendMessageSize
    {
        get => _maxSendMessageSize;
        set => _maxSendMessageSize = MessageFraming.PositiveSize(value);
    }

    /// <summary>The timeout of calls that pass none; null means no timeout.</summary>
    public TimeSpan? Timeout
    {
        get => _timeout;
        set
        {
            if (value is { } t && t <= TimeSpan.Zero && t != System.Threading.Timeout.InfiniteTimeSpan)
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "The timeout must be positive.");
            }

            _timeout = value == System.Threading.Timeout.InfiniteTimeSpan ? null : value;
        }
    }

    /// <summary>
    /// The HTTP version requested. Null picks per protocol: HTTP/2 for gRPC; for Connect and
    /// gRPC-Web, HTTP/2 by ALPN over TLS and HTTP/1.1 over cleartext.
    /// </summary>
    /// <remarks>
    /// Bidirectional streaming is full duplex over HTTP/2 (a bidi call that uses HTTP/2 never
    /// falls back to HTTP/1.1). Over HTTP/1.1 (Connect and gRPC-Web) it is half-duplex: the call
    /// sends its whole request stream, then reads the responses. A request stream that waits for
    /// a response before it ends (ping-pong) cannot work half-duplex: such a call ends only at
    /// its timeout or cancellation, with an error saying so. Set
    /// <see cref="System.Net.HttpVersion.Version20"/> for ping-pong over cleartext.
    /// </remarks>
    public Version? HttpVersion { get; set; }

    /// <summary>How strictly <see cref="HttpVersion"/> applies; null picks the policy that fits it.</summary>
    public HttpVersionPolicy? HttpVersionPolicy { get; set; }

    /// <summary>
    /// Interceptors that every call of the client passes through; the first is the outermost.
    /// </summary>
    public IList<ClientInterceptor> Interceptors => _interceptors;

    /// <summary>
    /// Request header keys whose values the call's trace span records, as
    /// <c>rpc.request.metadata.&lt;key&gt;</c>. Empty by default: headers may carry secrets, so
    /// only keys named here are ever recorded.
    /// </summary>
    public IList<string> TracedRequestMetadata => _tracedRequestMetadata;

    /// <summary>
    /// Response header and trailer keys whose values the call's trace span records, as
    /// <c>rpc.response.metadata.&lt;key&gt;</c>. Empty by default.
    /// </summary>
    public IList<string> TracedResponseMetadata => _tracedResponseMetadata;

    /// <summary>
    /// Where the client writes its per-call debug logs (category <c>ConnectRpc.Client</c>: call
    /// started, call ended with its code and duration). Null writes none. Clients registered
    /// with <c>AddConnectClient</c> use the application's.
    /// </summary>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>
    /// The context of the server call that this client's calls are made inside of, if any:
    /// its deadline and cancellation then bound every call (call-context propagation).
    /// </summary>
    internal Func<RequestContext?>? ParentContext { get; set; }

    /// <summary>A copy, so a client is unaffected by later changes to the options it was given.</summary>
    internal ConnectClientOptions Clone()
    {
        var copy = (ConnectClientOptions)MemberwiseClone();
        copy._interceptors = [.. _interceptors];
        copy._compressors = [.. _compressors];
        copy._tracedRequestMetadata = [.. _tracedRequestMetadata];
        copy._tracedResponseMetadata = [.. _tracedResponseMetadata];
        copy._jsonTypes = [.. _jsonTypes];
        if (copy._interceptors.Contains(null!))
        {
            throw new ArgumentException("ConnectClientOptions.Interceptors contains null.", "options");
        }

        if (copy._jsonTypes.Contains(null!))
        {
            throw new ArgumentException("ConnectClientOptions.JsonTypes contains null.", "options");
        }

        return copy;
    }
}
