using System.Buffers;
using System.IO.Pipelines;
using ConnectRpc.Internal;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace ConnectRpc.AspNetCore.Internal;

/// <summary>
/// What a call on the server shares whatever the protocol: the request headers and the
/// deadline, the handler's context, compression, enveloped reading and the size limits.
/// A protocol adds how the call starts (<see cref="Start"/>), how messages are written and
/// how the call ends (<see cref="FinishAsync"/>).
/// </summary>
internal abstract class HttpServerCall : ServerCall, IDisposable
{
    // Timers cannot run longer than this; a longer deadline is reported but not enforced.
    private static readonly TimeSpan s_maxTimer = TimeSpan.FromMilliseconds(int.MaxValue - 1);

    private readonly Method _method;
    private RequestContext? _context;
    private CancellationTokenSource? _deadline;
    private CancellationTokenSource? _linked;
    private EnvelopeReader? _envelopes;

    protected HttpServerCall(HttpContext http, Method method, MessageCodec codec, ConnectServerOptions options)
    {
        Http = http;
        _method = method;
        Codec = codec;
        MaxReceive = options.MaxReceiveMessageSize;
        MaxSend = options.MaxSendMessageSize;
        CompressMinBytes = options.CompressMinBytes;
    }

    public override Method Method => _method;

    public override RequestContext Context => _context ?? throw new InvalidOperationException("The call has not started.");

    public bool DeadlineExpired => _deadline?.IsCancellationRequested == true;

    protected HttpContext Http { get; }

    protected MessageCodec Codec { get; }

    protected int MaxReceive { get; }

    protected int MaxSend { get; }

    /// <summary>The smallest response message compressed.</summary>
    protected int CompressMinBytes { get; }

    /// <summary>The encoding of compressed request messages, or null.</summary>
    protected Compressor? RequestCompressor { get; set; }

    /// <summary>The encoding of response messages, or null.</summary>
    protected Compressor? ResponseCompressor { get; set; }

    /// <summary>The context, or null if <see cref="Start"/> failed before making it.</summary>
    protected RequestContext? ContextOrNull => _context;

    /// <summary>Whether the response headers have been sent (they leave with the first message).</summary>
    protected bool HeadersSent { get; private set; }

    /// <summary>
    /// Reads the protocol headers and creates the context. Throws <see cref="ConnectException"/>
    /// for bad ones, after the context exists where the headers allowed it.
    /// </summary>
    public abstract void Start();

    /// <summary>Writes the end of the call: the response or the error, and the trailers.</summary>
    public abstract Task FinishAsync(ConnectException? error);

    /// <summary>
    /// The request headers as received (pseudo-headers are not among them), and the first
    /// binary (<c>-bin</c>) header whose value is not base64, if any.
    /// </summary>
    private Headers ReceivedHeaders(out string? invalidBinaryKey)
    {
        invalidBinaryKey = null;
        IHeaderDictionary headers = Http.Request.Headers;
        Headers received = Headers.CreateReceived(headers.Count);
        foreach (KeyValuePair<string, StringValues> header in headers)
        {
            bool binary = HeaderRules.IsBinaryKey(header.Key);
            foreach (string? value in header.Value)
            {
                if (binary && invalidBinaryKey is null && !HeaderRules.IsBase64List(value))
                {
                    invalidBinaryKey = header.Key;
                }

                received.AddReceived(header.Key, value ?? string.Empty);
            }
        }

        return received.MakeReadOnly();
    }

    /// <summary>
    /// Makes the handler's context from the received headers and the protocol's timeout header
    /// (<c>Connect-Timeout-Ms</c> or <c>grpc-timeout</c>, §6). The clock starts now: the deadline
    /// cancels the handler's token together with the client going away. A malformed timeout is
    /// invalid_argument, thrown once the context exists so the error can still be answered.
    /// </summary>
    protected void CreateContext(Protocol protocol)
    {
        bool connect = protocol == Protocol.Connect;
        string timeoutHeader = connect ? ConnectProtocol.TimeoutHeader : GrpcProtocol.TimeoutHeader;
        IHeaderDictionary requestHeaders = Http.Request.Headers;
        // Kestrel keeps grpc-timeout in a field of its own; the typed property skips the name lookup.
        string? timeoutText = connect ? requestHeaders[timeoutHeader] : requestHeaders.GrpcTimeout;
        TimeSpan parsed = default;
        bool valid = timeoutText is null ||
            (connect ? ConnectProtocol.TryParseTimeout(timeoutText, out parsed) : GrpcProtocol.TryParseTimeout(timeoutText, out parsed));

        DateTimeOffset? deadline = null;
        // A timeout past the end of the calendar (grpc-timeout allows 99,999,999 hours) is no timeout (§6).
        if (timeoutText is not null && valid && DateTimeOffset.UtcNow is var now && parsed < DateTimeOffset.MaxValue - now)
        {
            deadline = now + parsed;
            if (parsed <= s_maxTimer)
            {
                _deadline = new CancellationTokenSource(parsed);
                _linked = CancellationTokenSource.CreateLinkedTokenSource(Http.RequestAborted, _deadline.Token);
            }
        }

        _context = new RequestContext(_method.Procedure, ReceivedHeaders(out string? invalidBinaryKey), protocol, deadline, cancellationToken: _linked?.Token ?? Http.RequestAborted)
        {
            TransportContext = Http,
        };

        if (!valid)
        {
            throw new ConnectException(
                Code.InvalidArgument,
                $"protocol error: invalid {timeoutHeader} '{HeaderRules.Printable(timeoutText!)}': expected " +
                (connect ? "1 to 10 digits" : "1 to 8 digits and a unit (H, M, S, m, u, n)"));
        }

        // Binary values are base64 on every protocol (§4); the handler should not meet a bad one.
        if (invalidBinaryKey is not null)
        {
            throw new ConnectException(Code.InvalidArgument, $"protocol error: the binary header '{HeaderRules.Printable(invalidBinaryKey)}' is not base64");
        }
    }

    /// <summary>The compressor a request names; unknown names are unimplemented (§7).</summary>
    protected static Compressor? FindRequestCompressor(string? name)
    {
        if (name is null || Compressor.IsIdentity(name))
        {
            return null;
        }

        return Compressor.Find(name) ?? throw new ConnectException(
            Code.Unimplemented,
            $"unknown compression '{HeaderRules.Printable(name)}': supported encodings are {Compressor.AcceptList}");
    }

    /// <summary>The next enveloped request message from <paramref name="body"/>, or null at its end.</summary>
    protected async ValueTask<T?> ReadEnvelopeAsync<T>(PipeReader body, MessageParser<T> parser, CancellationToken cancellationToken)
        where T : class, IMessage<T>
    {
        _envelopes ??= new EnvelopeReader(body, MaxReceive, Code.InvalidArgument);
        EnvelopeFrame? next;
        try
        {
            next = await _envelopes.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException ex) when (IsBrokenOff(ex))
        {
            throw ClientGone(ex);
        }

        if (next is not { } frame)
        {
            return null;
        }

        if ((frame.Flags & ~EnvelopeFlags.Compressed) != 0)
        {
            throw new ConnectException(Code.InvalidArgument, $"protocol error: invalid envelope flags 0x{(byte)frame.Flags:x2} on a request message");
        }

        bool compressed = (frame.Flags & EnvelopeFlags.Compressed) != 0;
        if (compressed && RequestCompressor is null)
        {
            throw new ConnectException(Code.Internal, "protocol error: a message is marked compressed but the request has no compression");
        }

        return Decode(parser, frame.Payload, compressed ? RequestCompressor : null);
    }

    /// <summary>
    /// Whether reading the request failed because its stream or connection broke off (reset,
    /// aborted), rather than because Kestrel refused the body (<see cref="BadHttpRequestException"/>,
    /// the client's fault, mapped by the endpoint).
    /// </summary>
    protected static bool IsBrokenOff(IOException ex) => ex is not BadHttpRequestException;

    /// <summary>
    /// A request that broke off: the client is gone, as when its cancellation comes first. Kestrel
    /// fails the body before it fires <see cref="HttpContext.RequestAborted"/> (that is queued),
    /// so this cannot wait for the token; left alone it would be logged as a handler failure.
    /// </summary>
    protected static ConnectException ClientGone(IOException ex) =>
        new(Code.Canceled, "the client is gone: " + ex.Message, ex);

    /// <summary>A request message decoded: bad bytes are the client's fault (invalid_argument).</summary>
    protected T Decode<T>(MessageParser<T> parser, ReadOnlySequence<byte> payload, Compressor? compressor)
        where T : class, IMessage<T>
    {
        try
        {
            return MessageFraming.Decode(parser, Codec, payload, compressor, MaxReceive);
        }
        catch (MessageDecodeException ex)
        {
            throw new ConnectException(Code.InvalidArgument, ex.Message, ex);
        }
    }

    /// <summary>Flushes the response body; a client that is gone ends the handler's writes.</summary>
    protected static async ValueTask FlushAsync(PipeWriter body, CancellationToken cancellationToken)
    {
        FlushResult flushed = await body.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (flushed.IsCanceled || flushed.IsCompleted)
        {
            throw new ConnectException(Code.Canceled, "the client is gone");
        }
    }

    /// <summary>
    /// Sends the 200 response headers of an enveloped response, once: the content type, the
    /// encoding headers, the handler's headers and an error's headers.
    /// </summary>
    protected void SendResponseHeaders(string contentType, Headers? errorHeaders)
    {
        if (HeadersSent)
        {
            return;
        }

        HeadersSent = true;
        HttpResponse response = Http.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = contentType;
        IHeaderDictionary headers = response.Headers;
        SetEncodingHeaders(headers, ResponseCompressor?.Name);
        AppendHeaders(headers, _context?.ResponseHeadersOrNull, null);
        AppendHeaders(headers, errorHeaders, null);
        _context?.MarkHeadersSent();
    }

    /// <summary>
    /// Sets the response's message encoding (when there is one) and the accepted encodings,
    /// under the protocol's header names.
    /// </summary>
    protected abstract void SetEncodingHeaders(IHeaderDictionary headers, string? encoding);

    /// <summary>
    /// The error metadata that ends a stream beside the trailers: all of it once the response
    /// headers are gone, otherwise only the error's trailers (its headers go with the response headers).
    /// </summary>
    protected Headers? ErrorTrailers(ConnectException? error) => HeadersSent ? error?.Metadata : error?.Trailers;

    protected static void AppendHeaders(IHeaderDictionary target, Headers? source, string? prefix)
    {
        if (source is null)
        {
            return;
        }

        foreach (KeyValuePair<string, string> entry in source)
        {
            target.Append(prefix is null ? entry.Key : prefix + entry.Key, entry.Value);
        }
    }

    public virtual void Dispose()
    {
        _envelopes?.Release();
        _linked?.Dispose();
        _deadline?.Dispose();
    }
}
