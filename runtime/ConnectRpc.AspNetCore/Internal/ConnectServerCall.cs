using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using ConnectRpc.Internal;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace ConnectRpc.AspNetCore.Internal;

/// <summary>
/// One Connect call on the server (protocol.md §1): unary POST and GET with bare bodies and
/// metadata in headers (trailers as <c>trailer-</c> headers), or streaming with envelopes and
/// the end-stream JSON.
/// </summary>
internal sealed class ConnectServerCall : ServerCall, IDisposable
{
    // Compressed unary bodies may be slightly larger than the message they hold.
    private const int CompressedSlack = 64 * 1024;

    private readonly HttpContext _http;
    private readonly Method _method;
    private readonly MessageCodec _codec;
    private readonly bool _streaming;
    private readonly bool _isGet;
    private readonly int _maxReceive;
    private readonly int _maxSend;

    private RequestContext? _context;
    private CancellationTokenSource? _deadline;
    private CancellationTokenSource? _linked;
    private Compressor? _requestCompressor;
    private Compressor? _responseCompressor;
    private byte[]? _getPayload;
    private bool _requestRead;
    private EnvelopeReader? _envelopes;
    private PooledBufferWriter? _unaryResponse;
    private bool _unaryResponseCompressed;
    private bool _headersSent;

    public ConnectServerCall(HttpContext http, Method method, MessageCodec codec, bool streaming, bool isGet, ConnectServerOptions options)
    {
        _http = http;
        _method = method;
        _codec = codec;
        _streaming = streaming;
        _isGet = isGet;
        _maxReceive = options.MaxReceiveMessageSize;
        _maxSend = options.MaxSendMessageSize;
    }

    public override Method Method => _method;

    public override RequestContext Context => _context ?? throw new InvalidOperationException("The call has not started.");

    public bool DeadlineExpired => _deadline?.IsCancellationRequested == true;

    /// <summary>
    /// Reads the protocol headers (or GET parameters) and creates the context. Throws
    /// <see cref="ConnectException"/> for bad ones; the context exists either way.
    /// </summary>
    public void Start()
    {
        HttpRequest request = _http.Request;
        IHeaderDictionary headers = request.Headers;
        Headers received = Headers.CreateReceived(headers.Count);
        foreach (KeyValuePair<string, StringValues> header in headers)
        {
            foreach (string? value in header.Value)
            {
                received.AddReceived(header.Key, value ?? string.Empty);
            }
        }

        TimeSpan? timeout = null;
        ConnectException? error = null;
        string? timeoutText = headers[ConnectProtocol.TimeoutHeader];
        if (timeoutText is not null)
        {
            if (ConnectProtocol.TryParseTimeout(timeoutText, out TimeSpan parsed))
            {
                timeout = parsed;
            }
            else
            {
                error = new ConnectException(Code.InvalidArgument, $"protocol error: invalid {ConnectProtocol.TimeoutHeader} '{HeaderRules.Printable(timeoutText)}': expected 1 to 10 digits");
            }
        }

        DateTimeOffset? deadline = null;
        if (timeout is { } t && error is null)
        {
            deadline = DateTimeOffset.UtcNow + t;
            _deadline = new CancellationTokenSource(t);
            _linked = CancellationTokenSource.CreateLinkedTokenSource(_http.RequestAborted, _deadline.Token);
        }

        _context = new RequestContext(_method.Procedure, received.MakeReadOnly(), Protocol.Connect, deadline, cancellationToken: _linked?.Token ?? _http.RequestAborted)
        {
            TransportContext = _http,
        };

        if (error is not null)
        {
            throw error;
        }

        if (_isGet)
        {
            ReadGetParameters(request.Query);
        }
        else
        {
            string? version = headers[ConnectProtocol.ProtocolVersionHeader];
            if (version is not null && version != ConnectProtocol.ProtocolVersion)
            {
                throw new ConnectException(Code.InvalidArgument, $"protocol error: unsupported {ConnectProtocol.ProtocolVersionHeader} '{HeaderRules.Printable(version)}': expected 1");
            }

            _requestCompressor = RequestCompressor(headers[_streaming ? ConnectProtocol.StreamContentEncodingHeader : "Content-Encoding"]);
        }

        // Responses use the request's encoding, else the client's first accepted one (§7).
        _responseCompressor = _requestCompressor
            ?? Compressor.Negotiate(headers[_streaming ? ConnectProtocol.StreamAcceptEncodingHeader : "Accept-Encoding"]);
    }

    private void ReadGetParameters(IQueryCollection query)
    {
        string? connect = query[ConnectProtocol.QueryConnect];
        if (connect is not null && connect != ConnectProtocol.QueryConnectValue)
        {
            throw new ConnectException(Code.InvalidArgument, $"protocol error: unsupported connect parameter '{HeaderRules.Printable(connect)}': expected v1");
        }

        _requestCompressor = RequestCompressor(query[ConnectProtocol.QueryCompression]);
        string? message = query[ConnectProtocol.QueryMessage];
        if (message is null)
        {
            throw new ConnectException(Code.InvalidArgument, "protocol error: missing the message query parameter");
        }

        if (query[ConnectProtocol.QueryBase64] == "1")
        {
            using var decoded = new PooledBufferWriter(message.Length);
            if (!ConnectProtocol.TryDecodeBase64Url(message, decoded))
            {
                throw new ConnectException(Code.InvalidArgument, "protocol error: the message query parameter is not valid URL-safe base64");
            }

            _getPayload = decoded.WrittenSpan.ToArray();
        }
        else
        {
            _getPayload = Encoding.UTF8.GetBytes(message);
        }
    }

    private static Compressor? RequestCompressor(string? name)
    {
        if (name is null || Compressor.IsIdentity(name))
        {
            return null;
        }

        return Compressor.Find(name) ?? throw new ConnectException(
            Code.Unimplemented,
            $"unknown compression '{HeaderRules.Printable(name)}': supported encodings are {Compressor.AcceptList}");
    }

    public override async ValueTask<T?> ReadAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
        where T : class
    {
        if (_streaming)
        {
            return await ReadEnvelopeAsync(parser, cancellationToken).ConfigureAwait(false);
        }

        if (_requestRead)
        {
            return null;
        }

        _requestRead = true;
        if (_getPayload is not null)
        {
            return Decode(parser, new ReadOnlySequence<byte>(_getPayload), _requestCompressor);
        }

        long cap = _requestCompressor is null ? _maxReceive : (long)_maxReceive + CompressedSlack;
        if (_http.Request.ContentLength > cap)
        {
            throw TooLarge(_http.Request.ContentLength.Value);
        }

        PipeReader body = _http.Request.BodyReader;
        while (true)
        {
            ReadResult result = await body.ReadAsync(cancellationToken).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = result.Buffer;
            if (buffer.Length > cap)
            {
                body.AdvanceTo(buffer.Start);
                throw TooLarge(buffer.Length);
            }

            if (result.IsCompleted)
            {
                try
                {
                    return Decode(parser, buffer, _requestCompressor);
                }
                finally
                {
                    body.AdvanceTo(buffer.End);
                }
            }

            body.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private async ValueTask<T?> ReadEnvelopeAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
        where T : class, IMessage<T>
    {
        _envelopes ??= new EnvelopeReader(_http.Request.BodyReader, _maxReceive, Code.InvalidArgument);
        if (await _envelopes.ReadAsync(cancellationToken).ConfigureAwait(false) is not { } frame)
        {
            return null;
        }

        if ((frame.Flags & ~EnvelopeFlags.Compressed) != 0)
        {
            throw new ConnectException(Code.InvalidArgument, $"protocol error: invalid envelope flags 0x{(byte)frame.Flags:x2} on a request message");
        }

        bool compressed = (frame.Flags & EnvelopeFlags.Compressed) != 0;
        if (compressed && _requestCompressor is null)
        {
            throw new ConnectException(Code.Internal, "protocol error: a message is marked compressed but the request has no compression");
        }

        return Decode(parser, frame.Payload, compressed ? _requestCompressor : null);
    }

    private T Decode<T>(MessageParser<T> parser, ReadOnlySequence<byte> payload, Compressor? compressor)
        where T : class, IMessage<T>
    {
        try
        {
            return MessageFraming.Decode(parser, _codec, payload, compressor, _maxReceive);
        }
        catch (MessageDecodeException ex)
        {
            throw new ConnectException(Code.InvalidArgument, ex.Message, ex);
        }
    }

    private ConnectException TooLarge(long size) =>
        new(Code.ResourceExhausted, $"request size {size} is larger than the limit of {_maxReceive} bytes");

    public override async ValueTask WriteAsync<T>(T message, CancellationToken cancellationToken)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(message);
        PooledBufferWriter payload = MessageFraming.Encode(message, _codec, _responseCompressor, _maxSend, out bool compressed);
        if (!_streaming)
        {
            // Sent at the end, with the trailers as headers.
            _unaryResponse?.Dispose();
            _unaryResponse = payload;
            _unaryResponseCompressed = compressed;
            return;
        }

        using (payload)
        {
            SendStreamHeaders(null);
            PipeWriter body = _http.Response.BodyWriter;
            Envelope.WriteFrame(body, compressed ? EnvelopeFlags.Compressed : EnvelopeFlags.None, payload.WrittenSpan);
            FlushResult flushed = await body.FlushAsync(cancellationToken).ConfigureAwait(false);
            if (flushed.IsCanceled || flushed.IsCompleted)
            {
                throw new ConnectException(Code.Canceled, "the client is gone");
            }
        }
    }

    /// <summary>Writes the end of the call: the unary response or error, or the end-stream message.</summary>
    public async Task FinishAsync(ConnectException? error)
    {
        HttpResponse response = _http.Response;
        Headers trailers = _context?.ResponseTrailers ?? Headers.Empty;
        if (_streaming)
        {
            // Error headers go with the response headers when those have not gone yet,
            // otherwise into the end-stream metadata beside the error's trailers.
            Headers? errorMetadata = _headersSent ? error?.Metadata : error?.Trailers;
            SendStreamHeaders(error?.Headers);

            using var endStream = new PooledBufferWriter();
            ConnectProtocol.WriteEndStream(endStream, error, trailers, errorMetadata);
            Envelope.WriteFrame(response.BodyWriter, EnvelopeFlags.EndStream, endStream.WrittenSpan);
            await response.BodyWriter.FlushAsync(_http.RequestAborted).ConfigureAwait(false);
            return;
        }

        IHeaderDictionary headers = response.Headers;
        AppendHeaders(headers, _context?.ResponseHeaders, null);
        _context?.MarkHeadersSent();
        AppendHeaders(headers, trailers, ConnectProtocol.TrailerPrefix);
        headers["Accept-Encoding"] = Compressor.AcceptList;
        if (_isGet)
        {
            headers.Vary = "Accept-Encoding";
        }

        if (error is null && _unaryResponse is { } body)
        {
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = ConnectProtocol.UnaryContentType(_codec);
            if (_unaryResponseCompressed)
            {
                headers.ContentEncoding = _responseCompressor!.Name;
            }

            response.ContentLength = body.WrittenCount;
            await response.Body.WriteAsync(body.WrittenMemory, _http.RequestAborted).ConfigureAwait(false);
            return;
        }

        // No response without an error cannot happen through ServerMethod; treat it as one.
        error ??= new ConnectException(Code.Internal, "the handler produced no response");
        AppendHeaders(headers, error.Headers, null);
        AppendHeaders(headers, error.Trailers, ConnectProtocol.TrailerPrefix);
        response.StatusCode = CodeMapping.ToHttpStatus(error.Code);
        response.ContentType = ConnectProtocol.UnaryJson;
        using var json = new PooledBufferWriter();
        ConnectProtocol.WriteErrorBody(json, error);
        response.ContentLength = json.WrittenCount;
        await response.Body.WriteAsync(json.WrittenMemory, _http.RequestAborted).ConfigureAwait(false);
    }

    private void SendStreamHeaders(Headers? errorHeaders)
    {
        if (_headersSent)
        {
            return;
        }

        _headersSent = true;
        HttpResponse response = _http.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = ConnectProtocol.StreamContentType(_codec);
        IHeaderDictionary headers = response.Headers;
        if (_responseCompressor is not null)
        {
            headers[ConnectProtocol.StreamContentEncodingHeader] = _responseCompressor.Name;
        }

        headers[ConnectProtocol.StreamAcceptEncodingHeader] = Compressor.AcceptList;
        AppendHeaders(headers, _context?.ResponseHeaders, null);
        AppendHeaders(headers, errorHeaders, null);
        _context?.MarkHeadersSent();
    }

    private static void AppendHeaders(IHeaderDictionary target, Headers? source, string? prefix)
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

    public void Dispose()
    {
        _unaryResponse?.Dispose();
        _linked?.Dispose();
        _deadline?.Dispose();
    }
}
