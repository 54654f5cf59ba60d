using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using ConnectRpc.Internal;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace ConnectRpc.AspNetCore.Internal;

/// <summary>
/// One Connect call on the server (docs/protocols/connect.md): unary POST and GET with bare bodies and
/// metadata in headers (trailers as <c>trailer-</c> headers), or streaming with envelopes and
/// the end-stream JSON.
/// </summary>
internal sealed class ConnectServerCall : HttpServerCall
{
    private readonly bool _streaming;
    private readonly bool _isGet;

    private byte[]? _getPayload;
    private bool _requestRead;
    private PooledBufferWriter? _unaryResponse;
    private bool _unaryResponseCompressed;

    private ConnectServerCall(HttpContext http, ServerMethodSettings settings, MessageCodec codec, bool isGet)
        : base(http, settings, codec, Protocol.Connect, ReadTimeout(http.Request.Headers))
    {
        _streaming = settings.Streaming;
        _isGet = isGet;
    }

    /// <summary>
    /// The call for a Connect request (any content type that is not gRPC's), or null when it
    /// was rejected with an HTTP status (docs/protocols/connect.md): a method other than POST (or GET where the method
    /// allows it), or a content type or GET encoding that names no codec.
    /// </summary>
    public static ConnectServerCall? Create(HttpContext http, ServerMethodSettings settings)
    {
        HttpRequest request = http.Request;
        bool isGet = HttpMethods.IsGet(request.Method);
        if (!HttpMethods.IsPost(request.Method) && !(isGet && settings.GetAllowed))
        {
            Reject(http, StatusCodes.Status405MethodNotAllowed, "Allow", settings.GetAllowed ? "GET, POST" : "POST");
            return null;
        }

        MessageCodec? codec = isGet
            ? MessageCodec.Named(request.Query[ConnectProtocol.QueryEncoding].ToString())
            : settings.Streaming ? ConnectProtocol.StreamCodec(request.ContentType) : ConnectProtocol.UnaryCodec(request.ContentType);
        if (codec is null || (isGet && request.ContentLength > 0))
        {
            Reject(http, StatusCodes.Status415UnsupportedMediaType, isGet ? null : "Accept-Post", settings.AcceptPost);
            return null;
        }

        return new ConnectServerCall(http, settings, codec, isGet);
    }

    /// <summary><c>Connect-Timeout-Ms</c> (docs/wire/timeouts.md).</summary>
    private static RequestTimeout ReadTimeout(IHeaderDictionary headers) =>
        RequestTimeout.Read(headers[ConnectProtocol.TimeoutHeader], ConnectProtocol.TimeoutHeader, ConnectProtocol.TryParseTimeout, "1 to 10 digits");

    protected override void ReadProtocolHeaders()
    {
        HttpRequest request = Http.Request;
        IHeaderDictionary headers = request.Headers;
        if (_isGet)
        {
            ReadGetParameters(request.Query, headers.AcceptEncoding);
            return;
        }

        string? version = headers[ConnectProtocol.ProtocolVersionHeader];
        if (version is not null && version != ConnectProtocol.ProtocolVersion)
        {
            throw new ConnectException(Code.InvalidArgument, $"protocol error: unsupported {ConnectProtocol.ProtocolVersionHeader} '{HeaderRules.Printable(version)}': expected 1");
        }

        // Responses use the request's encoding, else the client's first accepted one (docs/wire/compression.md).
        NegotiateCompression(
            _streaming ? headers[ConnectProtocol.StreamContentEncodingHeader] : headers.ContentEncoding,
            _streaming ? headers[ConnectProtocol.StreamAcceptEncodingHeader] : headers.AcceptEncoding);
    }

    private void ReadGetParameters(IQueryCollection query, string? acceptEncoding)
    {
        string? connect = query[ConnectProtocol.QueryConnect];
        if (connect is not null && connect != ConnectProtocol.QueryConnectValue)
        {
            throw new ConnectException(Code.InvalidArgument, $"protocol error: unsupported connect parameter '{HeaderRules.Printable(connect)}': expected v1");
        }

        NegotiateCompression(query[ConnectProtocol.QueryCompression], acceptEncoding);
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

    public override async ValueTask<T?> ReadAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
        where T : class
    {
        if (_streaming)
        {
            return await ReadEnvelopeAsync(Http.Request.BodyReader, parser, cancellationToken).ConfigureAwait(false);
        }

        if (_requestRead)
        {
            return null;
        }

        _requestRead = true;
        if (_getPayload is not null)
        {
            return Decode(parser, new ReadOnlySequence<byte>(_getPayload), RequestCompressor);
        }

        long cap = RequestCompressor is null ? MaxReceive : (long)MaxReceive + MessageFraming.UnaryBodySlack;
        if (Http.Request.ContentLength > cap)
        {
            throw TooLarge(Http.Request.ContentLength.Value);
        }

        PipeReader body = Http.Request.BodyReader;
        while (true)
        {
            ReadResult result;
            try
            {
                result = await body.ReadOrThrowAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (IOException ex) when (IsBrokenOff(ex))
            {
                throw ClientGone(ex);
            }

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
                    return Decode(parser, buffer, RequestCompressor);
                }
                finally
                {
                    body.AdvanceTo(buffer.End);
                }
            }

            body.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private ConnectException TooLarge(long size) =>
        new(Code.ResourceExhausted, $"request size {size} is larger than the limit of {MaxReceive} bytes");

    protected override async ValueTask WriteMessageAsync<T>(T message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (_streaming && MessageFraming.DirectProtoSize(message, Codec, ResponseCompressor, MaxSend, CompressMinBytes) is var size and >= 0)
        {
            SendStreamHeaders(null);
            MessageFraming.WriteProtoFrame(Http.Response.BodyWriter, message, size);
            await FlushAsync(Http.Response.BodyWriter, cancellationToken).ConfigureAwait(false);
            return;
        }

        PooledBufferWriter payload = MessageFraming.Encode(message, Codec, ResponseCompressor, MaxSend, out bool compressed, CompressMinBytes);
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
            PipeWriter body = Http.Response.BodyWriter;
            Envelope.WriteFrame(body, compressed ? EnvelopeFlags.Compressed : EnvelopeFlags.None, payload.WrittenSpan);
            await FlushAsync(body, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Writes the end of the call: the unary response or error, or the end-stream message.</summary>
    public override async Task FinishAsync(ConnectException? error)
    {
        HttpResponse response = Http.Response;
        Headers trailers = ResponseSlots.TrailersOrNull ?? Headers.Empty;
        if (_streaming)
        {
            Headers? errorMetadata = ErrorTrailers(error);
            SendStreamHeaders(error?.Headers);

            using var endStream = new PooledBufferWriter();
            ConnectProtocol.WriteEndStream(endStream, error, trailers, errorMetadata, DebugCodec);
            Envelope.WriteFrame(response.BodyWriter, EnvelopeFlags.EndStream, endStream.WrittenSpan);
            await response.BodyWriter.FlushAsync(Http.RequestAborted).ConfigureAwait(false);
            return;
        }

        IHeaderDictionary headers = response.Headers;
        AppendHeaders(headers, ResponseSlots.HeadersOrNull, null);
        ResponseSlots.MarkHeadersSent();
        AppendHeaders(headers, trailers, ConnectProtocol.TrailerPrefix);
        headers["Accept-Encoding"] = SupportedCompressions.AcceptHeader;
        if (_isGet)
        {
            headers.Vary = "Accept-Encoding";
        }

        if (error is null && _unaryResponse is { } body)
        {
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = ConnectProtocol.UnaryContentType(Codec);
            if (_unaryResponseCompressed)
            {
                headers.ContentEncoding = ResponseCompressor!.Name;
            }

            response.ContentLength = body.WrittenCount;
            await response.Body.WriteAsync(body.WrittenMemory, Http.RequestAborted).ConfigureAwait(false);
            return;
        }

        // No response without an error cannot happen through ServerMethod; treat it as one.
        error ??= new ConnectException(Code.Internal, "the handler produced no response");
        AppendHeaders(headers, error.Headers, null);
        AppendHeaders(headers, error.Trailers, ConnectProtocol.TrailerPrefix);
        response.StatusCode = CodeMapping.ToHttpStatus(error.Code);
        response.ContentType = ConnectProtocol.UnaryJson;
        using var json = new PooledBufferWriter();
        ConnectProtocol.WriteErrorBody(json, error, DebugCodec);
        response.ContentLength = json.WrittenCount;
        await response.Body.WriteAsync(json.WrittenMemory, Http.RequestAborted).ConfigureAwait(false);
    }

    private void SendStreamHeaders(Headers? errorHeaders) =>
        SendResponseHeaders(ConnectProtocol.StreamContentType(Codec), errorHeaders);

    /// <summary>The streaming names; a unary response writes its own (<c>Content-Encoding</c>, <c>Accept-Encoding</c>).</summary>
    protected override void SetEncodingHeaders(IHeaderDictionary headers, string? encoding)
    {
        if (encoding is not null)
        {
            headers[ConnectProtocol.StreamContentEncodingHeader] = encoding;
        }

        headers[ConnectProtocol.StreamAcceptEncodingHeader] = SupportedCompressions.AcceptHeader;
    }

    public override void Dispose()
    {
        _unaryResponse?.Dispose();
        base.Dispose();
    }
}
