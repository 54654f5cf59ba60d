using System.Net;
using System.Reflection;
using System.Net.Http.Headers;
using Google.Protobuf;

namespace ConnectRpc.Internal;

/// <summary>What every HTTP client transport shares: the client, the URL prefix and the options.</summary>
internal sealed class HttpTransportSettings
{
    private static readonly string s_version =
        typeof(HttpTransportSettings).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    private static readonly string s_connectUserAgent = "connect-csharp/" + s_version;
    private static readonly string s_grpcUserAgent = "grpc-csharp-connect/" + s_version;

    private readonly HttpMessageInvoker _sender;
    private readonly HttpClient? _client;
    private readonly string _prefix;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Method, Uri> _urls = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Method, JsonCodec> _jsonCodecs = new();
    private readonly Google.Protobuf.Reflection.MessageDescriptor[] _jsonTypes;

    public HttpTransportSettings(HttpMessageInvoker sender, Uri baseAddress, ConnectClientOptions options)
    {
        _sender = sender;
        _client = sender as HttpClient;
        BaseAddress = baseAddress;
        Options = options;
        Codec = MessageCodec.For(options.Codec);
        _jsonTypes = [.. options.JsonTypes];
        _prefix = baseAddress.AbsoluteUri.TrimEnd('/');
        Compressors = CompressorSet.Create(options.Compressors, "ConnectClientOptions.Compressors", nameof(options));
        if (options.SendCompression is { } name && !Compressor.IsIdentity(name))
        {
            SendCompressor = Compressors.Find(name) ?? throw new ArgumentException(
                $"ConnectClientOptions.SendCompression is '{HeaderRules.Printable(name)}', which is not in ConnectClientOptions.Compressors ({Compressors.Description}): " +
                "add that compressor to Compressors, or set SendCompression to one of them or to null.",
                nameof(options));
        }

        if (options.Protocol == Protocol.GrpcWebText && options.Codec != ConnectRpc.Codec.Proto)
        {
            throw new ArgumentException("Protocol.GrpcWebText carries binary protobuf only: use Codec.Proto, or Protocol.GrpcWeb for JSON.", nameof(options));
        }

        if (options.Protocol == Protocol.Grpc && options.HttpVersion is { Major: < 2 } version)
        {
            throw new ArgumentException($"Protocol.Grpc needs HTTP/2, and HttpVersion is {version}: use Protocol.GrpcWeb or Protocol.Connect over HTTP/1.1.", nameof(options));
        }
    }

    public Uri BaseAddress { get; }

    public ConnectClientOptions Options { get; }

    /// <summary>The codec of the options: <see cref="MessageCodec.Proto"/> or <see cref="MessageCodec.Json"/>; a call encodes with <see cref="CodecFor"/>.</summary>
    public MessageCodec Codec { get; }

    /// <summary>
    /// The codec that encodes and decodes the messages of <paramref name="method"/>: for JSON, one
    /// that knows the method's types and those of <see cref="ConnectClientOptions.JsonTypes"/>, made once.
    /// </summary>
    public MessageCodec CodecFor(Method method) =>
        !Codec.IsJson ? Codec
        : _jsonTypes.Length == 0 ? method.JsonCodec
        : _jsonCodecs.GetOrAdd(method, static (m, types) => m.JsonCodec.With(types), _jsonTypes);

    public Compressor? SendCompressor { get; }

    /// <summary>The compressions the client reads and may send, with the accept header's value (<c>identity</c> when there are none).</summary>
    public CompressorSet Compressors { get; }

    /// <summary>
    /// Sends a request and returns as soon as the response headers arrive, through the
    /// application's HttpClient (its defaults and timeout apply) or the shared pool directly.
    /// </summary>
    public Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        _client is { } client
            ? client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken)
            : _sender.SendAsync(request, cancellationToken);

    /// <summary>The URL of <paramref name="method"/>, made and parsed once per method and client.</summary>
    public Uri Url(Method method) => _urls.GetOrAdd(method, static (m, prefix) => new Uri(prefix + m.Procedure), _prefix);

    /// <summary>
    /// The HTTP version and policy of a call (docs/architecture.md#http-versions): what the options ask
    /// for; otherwise HTTP/2 by ALPN over TLS and HTTP/1.1 over cleartext, except gRPC
    /// (<paramref name="http2Only"/>), which is always HTTP/2, with prior knowledge over
    /// cleartext. A bidi call on HTTP/2 never falls back, so it stays full duplex; a bidi call
    /// on HTTP/1.1 is half-duplex (<see cref="HttpVersionChoice.HalfDuplex"/>).
    /// </summary>
    public HttpVersionChoice HttpVersionFor(Method method, bool http2Only = false)
    {
        bool tls = BaseAddress.Scheme == Uri.UriSchemeHttps;
        Version version = Options.HttpVersion ?? (tls || http2Only ? HttpVersion.Version20 : HttpVersion.Version11);
        // (gRPC asked to use HTTP/1.x was already refused when the options were read.)
        bool bidi = method.Kind == MethodKind.BidiStreaming;
        bool exact = version.Major >= 2 && (!tls || bidi || http2Only);
        HttpVersionPolicy policy = Options.HttpVersionPolicy ?? (exact ? HttpVersionPolicy.RequestVersionExact : HttpVersionPolicy.RequestVersionOrLower);
        return new HttpVersionChoice(version, policy, HalfDuplex: bidi && version.Major < 2);
    }

    /// <summary>
    /// A request with the application's headers, the protocol's timeout header for the time
    /// left (read from the call's one clock, so it matches the deadline the call enforces), and
    /// a <c>User-Agent</c> naming this runtime (grpc's form for gRPC and gRPC-Web, docs/protocols/grpc.md) unless the
    /// application or the HttpClient set one.
    /// </summary>
    /// <param name="httpMethod">GET or POST.</param>
    /// <param name="url">The URL of the call.</param>
    /// <param name="version">The HTTP version of the call.</param>
    /// <param name="requestHeaders">The application's headers, already checked.</param>
    /// <param name="lifetime">The call's deadline, if any.</param>
    /// <param name="timeout">The protocol's timeout header: its name, and how it writes a time left (null: not sent).</param>
    public HttpRequestMessage CreateRequest(
        HttpMethod httpMethod, Uri url, HttpVersionChoice version, Headers requestHeaders, CallLifetime lifetime, TimeoutHeader timeout)
    {
        var request = new HttpRequestMessage(httpMethod, url) { Version = version.Version, VersionPolicy = version.Policy };
        foreach (KeyValuePair<string, string> header in requestHeaders)
        {
            request.Headers.TryAddWithoutValidation(header.Key, header.Value);
        }

        if (lifetime.TimeLeft is { } left && timeout.Format(left) is { } value)
        {
            request.Headers.TryAddWithoutValidation(timeout.Name, value);
        }

        if (!request.Headers.NonValidated.Contains("User-Agent") && _client?.DefaultRequestHeaders.NonValidated.Contains("User-Agent") != true)
        {
            request.Headers.TryAddWithoutValidation("User-Agent", Options.Protocol == Protocol.Connect ? s_connectUserAgent : s_grpcUserAgent);
        }

        return request;
    }

    /// <summary>The response's headers (and content headers) as received, in order.</summary>
    public static Headers ReceivedHeaders(HttpResponseMessage response, Headers? trailers, string? trailerPrefix)
    {
        Headers headers = Headers.CreateReceived(response.Headers.NonValidated.Count + 4);
        Add(response.Headers.NonValidated, headers, trailers, trailerPrefix);
        Add(response.Content.Headers.NonValidated, headers, trailers, trailerPrefix);
        return headers;
    }

    private static void Add(HttpHeadersNonValidated source, Headers headers, Headers? trailers, string? trailerPrefix)
    {
        foreach (KeyValuePair<string, HeaderStringValues> header in source)
        {
            bool isTrailer = trailerPrefix is not null && header.Key.Length > trailerPrefix.Length &&
                header.Key.StartsWith(trailerPrefix, StringComparison.OrdinalIgnoreCase);
            foreach (string value in header.Value)
            {
                if (isTrailer)
                {
                    trailers!.AddReceived(header.Key[trailerPrefix!.Length..], value);
                }
                else
                {
                    headers.AddReceived(header.Key, value);
                }
            }
        }
    }

    /// <summary>Reads a whole body, failing with resource_exhausted past <paramref name="cap"/> bytes.</summary>
    public static async Task<PooledBufferWriter> ReadBodyAsync(HttpContent content, long cap, CancellationToken cancellationToken)
    {
        if (content.Headers.ContentLength > cap)
        {
            throw new ConnectException(Code.ResourceExhausted, $"response size {content.Headers.ContentLength} is larger than the limit of {cap} bytes");
        }

        var body = new PooledBufferWriter((int)Math.Min(content.Headers.ContentLength ?? 4096, cap));
        try
        {
            Stream stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                while (true)
                {
                    int read = await stream.ReadAsync(body.GetMemory(4096), cancellationToken).ConfigureAwait(false);
                    if (read == 0)
                    {
                        return body;
                    }

                    body.Advance(read);
                    if (body.WrittenCount > cap)
                    {
                        throw new ConnectException(Code.ResourceExhausted, $"response size is larger than the limit of {cap} bytes");
                    }
                }
            }
        }
        catch
        {
            body.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A response message decoded as a client does: a bad payload is internal (the server
    /// broke the protocol), a size over the limit resource_exhausted.
    /// </summary>
    public TResponse Decode<TRequest, TResponse>(Method<TRequest, TResponse> method, System.Buffers.ReadOnlySequence<byte> payload, Compressor? compressor)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        try
        {
            return MessageFraming.Decode(method.ResponseParser, CodecFor(method), payload, compressor, Options.MaxReceiveMessageSize);
        }
        catch (MessageDecodeException ex)
        {
            throw new ConnectException(Code.Internal, ex.Message, ex);
        }
    }
}

/// <summary>A protocol's timeout header: its name, and its value for a time left (null when it cannot be written).</summary>
internal readonly record struct TimeoutHeader(string Name, Func<TimeSpan, string?> Format);

/// <summary>The HTTP version of a call and how strictly it applies.</summary>
/// <param name="Version">The HTTP version requested.</param>
/// <param name="Policy">How strictly it applies.</param>
/// <param name="HalfDuplex">
/// A bidi call over HTTP/1.1: the request stream is sent to its end before any response is
/// read, as HTTP/1.1 (and HttpClient on it) returns a response only after its request.
/// </param>
internal readonly record struct HttpVersionChoice(Version Version, HttpVersionPolicy Policy, bool HalfDuplex = false);

/// <summary>
/// A request body written while the response is read (full duplex). Its headers are flushed
/// as soon as HttpClient asks for the body, so the server sees the call before the first
/// message; messages are then written straight to the request stream.
/// </summary>
internal sealed class DuplexContent : HttpContent
{
    private readonly TaskCompletionSource<Stream> _stream = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _completed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<Stream> StreamReady => _stream.Task;

    /// <summary>Ends the request body.</summary>
    public void Complete() => _completed.TrySetResult();

    /// <summary>Ends the request body with an error (the request is aborted).</summary>
    public void Abort()
    {
        _stream.TrySetCanceled();
        _completed.TrySetCanceled();
    }

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        _stream.TrySetResult(stream);
        await _completed.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override bool TryComputeLength(out long length)
    {
        length = -1;
        return false;
    }
}
