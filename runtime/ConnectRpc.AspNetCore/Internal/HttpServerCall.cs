using System.Buffers;
using System.IO.Pipelines;
using ConnectRpc.Internal;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace ConnectRpc.AspNetCore.Internal;

/// <summary>
/// What a call on the server shares whatever the protocol: the request headers and the
/// deadline, the handler's context, enveloped reading and the size limits. A protocol reads
/// its own headers (its timeout when it makes the call, the rest in <see cref="ReadProtocolHeaders"/>)
/// and adds how messages are written and how the call ends (<see cref="FinishAsync"/>).
/// A call with a deadline can be answered at its deadline while its handler still runs
/// (<see cref="AnswerDeadlineAsync"/>): its writes pass a gate, so none races that answer, and
/// those that come after it are refused.
/// </summary>
internal abstract class HttpServerCall : ServerCall, IDisposable
{
    // Timers cannot run longer than this; a longer deadline is reported but not enforced.
    private static readonly TimeSpan s_maxTimer = TimeSpan.FromMilliseconds(int.MaxValue - 1);

    // How long the deadline's answer waits for a write in progress (one stuck on a client that
    // reads nothing, under a token the handler did not pass) before it resets the request instead.
    private static readonly TimeSpan s_writeGateWait = TimeSpan.FromSeconds(1);

    private readonly ServerMethodSettings _settings;
    private readonly CancellationTokenSource? _deadline;
    private readonly CancellationTokenSource? _linked;
    private readonly ConnectException? _headerError;
    // Calls with a deadline only: one write at a time, and none once the deadline was answered.
    private readonly SemaphoreSlim? _writeGate;
    private volatile bool _answered;
    private EnvelopeReader? _envelopes;

    /// <summary>
    /// Makes the call and the handler's context from the received headers and the timeout its
    /// protocol read. The clock starts now: the deadline cancels the handler's token together
    /// with the client going away. Bad headers are thrown by <see cref="Start"/>, once the call
    /// exists to answer them.
    /// </summary>
    protected HttpServerCall(HttpContext http, ServerMethodSettings settings, MessageCodec codec, Protocol protocol, RequestTimeout timeout)
        : this(http, settings, codec, Begin(http, settings, protocol, timeout))
    {
    }

    private HttpServerCall(HttpContext http, ServerMethodSettings settings, MessageCodec codec, CallStart start)
        : base(start.Context)
    {
        Http = http;
        _settings = settings;
        // The content type names the codec; a JSON call uses the method's, which knows its types.
        Codec = codec.IsJson ? settings.JsonCodec : codec;
        ResponseSlots = start.Response;
        _deadline = start.Deadline;
        _linked = start.Linked;
        _headerError = start.Error;
        if (_deadline is not null)
        {
            _writeGate = new SemaphoreSlim(1, 1);
        }
    }

    public override Method Method => _settings.Method;

    public bool DeadlineExpired => _deadline?.IsCancellationRequested == true;

    /// <summary>Whether the call was answered at its deadline while its handler ran on.</summary>
    public bool AnsweredAtDeadline => _answered;

    /// <summary>Canceled when the call's deadline passes; never canceled without a (timed) deadline.</summary>
    public CancellationToken DeadlineToken => _deadline?.Token ?? CancellationToken.None;

    /// <summary>The request's HttpContext: the service's scope, the client's connection.</summary>
    public HttpContext Http { get; }

    protected MessageCodec Codec { get; }

    /// <summary>The method's JSON codec, whatever the call's: the <c>debug</c> of a Connect error's details.</summary>
    protected JsonCodec DebugCodec => _settings.JsonCodec;

    protected int MaxReceive => _settings.MaxReceive;

    protected int MaxSend => _settings.MaxSend;

    /// <summary>The smallest response message compressed.</summary>
    protected int CompressMinBytes => _settings.CompressMinBytes;

    /// <summary>The response headers and trailers the handler wrote, kept by the call itself.</summary>
    public ResponseMetadataSlots ResponseSlots { get; }

    /// <summary>The compressions the server reads and may answer with (<see cref="ConnectServerOptions.Compressors"/>).</summary>
    protected CompressorSet SupportedCompressions => _settings.Compressors;

    /// <summary>The encoding of compressed request messages, or null.</summary>
    protected Compressor? RequestCompressor { get; private set; }

    /// <summary>The encoding of response messages, or null.</summary>
    protected Compressor? ResponseCompressor { get; private set; }

    /// <summary>Whether the response headers have been sent (they leave with the first message).</summary>
    protected bool HeadersSent { get; private set; }

    /// <summary>
    /// Checks the request headers: the shared ones (timeout, binary values), then the
    /// protocol's own. Throws <see cref="ConnectException"/> for bad ones.
    /// </summary>
    public void Start()
    {
        if (_headerError is not null)
        {
            throw _headerError;
        }

        ReadProtocolHeaders();
    }

    /// <summary>Reads the protocol's own request headers (version, compression, GET parameters).</summary>
    protected abstract void ReadProtocolHeaders();

    /// <summary>Writes the end of the call: the response or the error, and the trailers.</summary>
    public abstract Task FinishAsync(ConnectException? error);

    /// <summary>Writes one response message in the protocol's form.</summary>
    protected abstract ValueTask WriteMessageAsync<T>(T message, CancellationToken cancellationToken)
        where T : class, IMessage<T>;

    public sealed override ValueTask WriteAsync<T>(T message, CancellationToken cancellationToken) =>
        _writeGate is null ? WriteMessageAsync(message, cancellationToken) : GatedWriteAsync(_writeGate, message, cancellationToken);

    private async ValueTask GatedWriteAsync<T>(SemaphoreSlim gate, T message, CancellationToken cancellationToken)
        where T : class, IMessage<T>
    {
        // Checked before and after the wait: the handler's token is canceled by the time of the answer.
        ThrowIfAnswered();
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfAnswered();

            await WriteMessageAsync(message, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
        }
    }

    private void ThrowIfAnswered()
    {
        if (_answered)
        {
            // The handler ignored its token: the client already has deadline_exceeded.
            throw new ConnectException(Code.DeadlineExceeded, "the call exceeded its deadline and was answered: this message was not sent");
        }
    }

    /// <summary>
    /// Answers the call with <paramref name="error"/> (deadline_exceeded) while its handler may
    /// still run, and completes the response at once, so the client need not wait for a handler
    /// that ignores its token. A write in progress finishes first; the handler's later writes
    /// fail with deadline_exceeded and send nothing. When a write is stuck, the request is reset
    /// instead. The caller still waits for the handler before the request ends.
    /// </summary>
    public async Task AnswerDeadlineAsync(ConnectException error)
    {
        SemaphoreSlim gate = _writeGate ?? throw new InvalidOperationException("only a call with a deadline is answered at its deadline");
        if (!await gate.WaitAsync(s_writeGateWait).ConfigureAwait(false))
        {
            _answered = true;
            Http.Abort();
            return;
        }

        try
        {
            _answered = true;
            await FinishAsync(error).ConfigureAwait(false);
            await Http.Response.CompleteAsync().ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// Sets the call's compressions from what the request says (docs/wire/compression.md): the encoding of its
    /// messages (an unknown one is unimplemented) and the client's accepted list.
    /// </summary>
    protected void NegotiateCompression(string? requestEncoding, string? acceptEncoding) =>
        (RequestCompressor, ResponseCompressor) = Compressor.Negotiate(_settings.Compressors, requestEncoding, acceptEncoding, Code.Unimplemented);

    /// <summary>
    /// The server's own call under whatever the interceptors passed on. A call's context is
    /// fixed and a <see cref="DelegatingServerCall"/> shares its inner call's, so the handler
    /// always writes into the context this server sends from. A call that wraps nothing of the
    /// server's could only hand the handler a context nobody sends: that is refused.
    /// </summary>
    public static HttpServerCall Of(ServerCall call) =>
        call.Origin as HttpServerCall ?? throw new InvalidOperationException(
            $"An interceptor passed the handler a {call.GetType()} that does not wrap the server's call; " +
            "derive interceptor calls from DelegatingServerCall.");

    /// <summary>Answers a request that no call was made for with an HTTP status (and a header explaining it).</summary>
    public static void Reject(HttpContext http, int status, string? header, string? value)
    {
        http.Response.StatusCode = status;
        if (header is not null)
        {
            http.Response.Headers[header] = value;
        }
    }

    private static CallStart Begin(HttpContext http, ServerMethodSettings settings, Protocol protocol, RequestTimeout timeout)
    {
        TimeProvider time = settings.Time;
        DateTimeOffset? deadline = null;
        CancellationTokenSource? deadlineSource = null;
        CancellationTokenSource? linked = null;
        // The handler's token also fires when the shutdown timeout passes.
        CancellationToken shutdown = settings.Shutdown.Expired;
        // A timeout past the end of the calendar (grpc-timeout allows 99,999,999 hours) is no timeout (docs/wire/timeouts.md).
        if (timeout.Value is { } value && time.GetUtcNow() is var now && value < DateTimeOffset.MaxValue - now)
        {
            deadline = now + value;
            if (value <= s_maxTimer)
            {
                deadlineSource = new CancellationTokenSource(value, time);
                linked = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, deadlineSource.Token, shutdown);
            }
        }

        linked ??= CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, shutdown);

        var response = new ResponseMetadataSlots();
        Headers headers = ReceivedHeaders(http.Request.Headers, out string? invalidBinaryKey);
        var context = new RequestContext(
            settings.Method.Procedure, headers, protocol, deadline, time, response, transport: http, linked?.Token ?? http.RequestAborted);

        // Binary values are base64 on every protocol (docs/wire/metadata.md); the handler should not meet a bad one.
        ConnectException? error = timeout.Error ?? (invalidBinaryKey is null
            ? null
            : new ConnectException(Code.InvalidArgument, $"protocol error: the binary header '{HeaderRules.Printable(invalidBinaryKey)}' is not base64"));
        return new CallStart(context, response, deadlineSource, linked, error);
    }

    /// <summary>
    /// The request headers as received (pseudo-headers are not among them), and the first
    /// binary (<c>-bin</c>) header whose value is not base64, if any.
    /// </summary>
    private static Headers ReceivedHeaders(IHeaderDictionary headers, out string? invalidBinaryKey)
    {
        invalidBinaryKey = null;
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

        frame.CheckFlags(EnvelopeFlags.Compressed, Code.InvalidArgument, "a request message");
        return Decode(parser, frame.Payload, frame.CompressorFor(RequestCompressor, Code.Internal, "a request message"));
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
        AppendHeaders(headers, ResponseSlots.HeadersOrNull, null);
        AppendHeaders(headers, errorHeaders, null);
        ResponseSlots.MarkHeadersSent();
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
        _writeGate?.Dispose();
    }

    private readonly record struct CallStart(
        RequestContext Context,
        ResponseMetadataSlots Response,
        CancellationTokenSource? Deadline,
        CancellationTokenSource? Linked,
        ConnectException? Error);
}

/// <summary>A request's timeout header as its protocol read it: the timeout, or the error of a malformed one.</summary>
/// <param name="Value">The timeout, or null when the request has none.</param>
/// <param name="Error">The invalid_argument error of a malformed header, or null.</param>
internal readonly record struct RequestTimeout(TimeSpan? Value, ConnectException? Error)
{
    /// <summary>
    /// A protocol's timeout header read with its parser: no timeout when absent, and
    /// invalid_argument, saying what was expected, when malformed.
    /// </summary>
    public static RequestTimeout Read(string? text, string header, TimeoutParser parse, string expected)
    {
        if (text is null)
        {
            return default;
        }

        return parse(text, out TimeSpan timeout)
            ? new RequestTimeout(timeout, null)
            : new RequestTimeout(null, new ConnectException(
                Code.InvalidArgument,
                $"protocol error: invalid {header} '{HeaderRules.Printable(text)}': expected {expected}"));
    }
}

/// <summary>A protocol's timeout parser.</summary>
internal delegate bool TimeoutParser(ReadOnlySpan<char> value, out TimeSpan timeout);
