using System.IO.Pipelines;
using ConnectRpc.Internal;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace ConnectRpc.AspNetCore.Internal;

/// <summary>
/// One gRPC or gRPC-Web call on the server (docs/protocols/grpc.md, docs/protocols/grpc-web.md). Every RPC kind uses
/// envelopes; the response headers leave with the first message, and the status and trailers
/// end the call: as HTTP/2 trailers for gRPC, as the 0x80 frame for gRPC-Web, or all in the
/// headers (trailers-only) when nothing else was sent.
/// </summary>
internal sealed class GrpcServerCall : HttpServerCall
{
    private readonly GrpcWire _wire;
    private PipeReader? _textBody;

    private GrpcServerCall(HttpContext http, ServerMethodSettings settings, MessageCodec codec, GrpcWire wire)
        : base(http, settings, codec, GrpcProtocol.ToProtocol(wire), ReadTimeout(http.Request.Headers))
    {
        _wire = wire;
    }

    /// <summary>Whether the request's content type is a gRPC or gRPC-Web one (it starts with <c>application/grpc</c>).</summary>
    public static bool Claims(string? contentType, out GrpcWire wire, out MessageCodec? codec) =>
        GrpcProtocol.TryParseContentType(contentType, out wire, out codec);

    /// <summary>
    /// The call for a request that <see cref="Claims"/> found to be gRPC or gRPC-Web, or null
    /// when it was rejected with an HTTP status (docs/protocols/grpc.md, docs/protocols/grpc-web.md).
    /// </summary>
    public static GrpcServerCall? Create(HttpContext http, ServerMethodSettings settings, GrpcWire wire, MessageCodec? codec)
    {
        if (!HttpMethods.IsPost(http.Request.Method))
        {
            Reject(http, StatusCodes.Status405MethodNotAllowed, "Allow", "POST");
            return null;
        }

        if (codec is null)
        {
            Reject(http, StatusCodes.Status415UnsupportedMediaType, "Accept-Post", settings.AcceptPost);
            return null;
        }

        // gRPC needs HTTP trailers, which HTTP/1.1 responses here cannot carry.
        if (wire == GrpcWire.Grpc && !http.Response.SupportsTrailers())
        {
            Reject(http, StatusCodes.Status505HttpVersionNotsupported, null, null);
            return null;
        }

        return new GrpcServerCall(http, settings, codec, wire);
    }

    /// <summary><c>grpc-timeout</c> (docs/wire/timeouts.md); Kestrel keeps it in a field of its own, so the typed property skips the name lookup.</summary>
    private static RequestTimeout ReadTimeout(IHeaderDictionary headers) =>
        RequestTimeout.Read(headers.GrpcTimeout, GrpcProtocol.TimeoutHeader, GrpcProtocol.TryParseTimeout, "1 to 8 digits and a unit (H, M, S, m, u, n)");

    protected override void ReadProtocolHeaders()
    {
        // Kestrel keeps the grpc- headers in fields of their own; the typed properties skip the name lookup.
        IHeaderDictionary headers = Http.Request.Headers;
        NegotiateCompression(headers.GrpcEncoding, headers.GrpcAcceptEncoding);
    }

    public override ValueTask<T?> ReadAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
        where T : class
    {
        PipeReader body = _wire == GrpcWire.WebText
            ? _textBody ??= PipeReader.Create(new Base64ReadStream(Http.Request.Body, Code.InvalidArgument))
            : Http.Request.BodyReader;
        return ReadEnvelopeAsync(body, parser, cancellationToken);
    }

    protected override ValueTask WriteMessageAsync<T>(T message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        PipeWriter body = Http.Response.BodyWriter;
        int size = _wire == GrpcWire.WebText ? -1 : MessageFraming.DirectProtoSize(message, Codec, ResponseCompressor, MaxSend, CompressMinBytes);
        if (size >= 0)
        {
            SendHeaders(null);
            MessageFraming.WriteProtoFrame(body, message, size);
        }
        else
        {
            using PooledBufferWriter payload = MessageFraming.Encode(message, Codec, ResponseCompressor, MaxSend, out bool compressed, CompressMinBytes);
            SendHeaders(null);
            GrpcProtocol.WriteFrame(body, _wire, compressed ? EnvelopeFlags.Compressed : EnvelopeFlags.None, payload.WrittenSpan);
        }
        if (Method.Kind is MethodKind.Unary or MethodKind.ClientStreaming)
        {
            // The only response leaves with the end of the call, headers, message and trailers
            // in one write, instead of a flush of its own.
            return ValueTask.CompletedTask;
        }

        return FlushAsync(body, cancellationToken);
    }

    public override async Task FinishAsync(ConnectException? error)
    {
        Headers? trailers = ResponseSlots.TrailersOrNull;
        HttpResponse response = Http.Response;

        // Trailers-only (docs/protocols/grpc.md#trailers-only, docs/protocols/grpc-web.md#trailers-only) when nothing went out and there are no headers to keep apart
        // from the trailers: a client reads every header of such a response as a trailer.
        if (!HeadersSent && (ResponseSlots.HeadersOrNull is not { Count: > 0 }) && (error is null || error.Headers.Count == 0))
        {
            SendHeaders(null);
            AppendEnd(response.Headers, trailers, error?.Trailers, error);
            return;
        }

        Headers? errorMetadata = ErrorTrailers(error);
        bool bodyless = !HeadersSent;
        SendHeaders(error?.Headers);
        if (_wire == GrpcWire.Grpc)
        {
            // HTTP/2 trailers: the endpoint sends gRPC only where the response supports them.
            AppendEnd(Http.Features.GetRequiredFeature<IHttpResponseTrailersFeature>().Trailers, trailers, errorMetadata, error);
            if (bodyless)
            {
                // Headers, no message, then trailers: sent on their own, or Kestrel would mark the
                // headers content-length: 0, and nginx's grpc_pass ends such a response there,
                // dropping the trailers and with them the status.
                await response.StartAsync(Http.RequestAborted).ConfigureAwait(false);
            }

            return;
        }

        using var block = new PooledBufferWriter();
        GrpcProtocol.WriteWebTrailers(block, End(trailers, errorMetadata, error));
        GrpcProtocol.WriteFrame(response.BodyWriter, _wire, EnvelopeFlags.Trailers, block.WrittenSpan);
        await response.BodyWriter.FlushAsync(Http.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>The end of the call: the application's trailers, then the error's metadata, then the status fields (docs/protocols/grpc.md).</summary>
    private static Headers End(Headers? trailers, Headers? errorMetadata, ConnectException? error)
    {
        Headers end = Headers.CreateReceived((trailers?.Count ?? 0) + (errorMetadata?.Count ?? 0) + 3);
        end.AddRangeUnchecked(trailers ?? Headers.Empty);
        end.AddRangeUnchecked(errorMetadata ?? Headers.Empty);
        GrpcProtocol.AddStatus(end, error);
        return end;
    }

    /// <summary>
    /// Appends the <see cref="End"/> of the call to HTTP headers or trailers. The usual end, OK
    /// with no trailers (there is no error metadata without an error), needs no copy.
    /// </summary>
    private static void AppendEnd(IHeaderDictionary target, Headers? trailers, Headers? errorMetadata, ConnectException? error)
    {
        if (error is null && trailers is not { Count: > 0 })
        {
            target.GrpcStatus = GrpcProtocol.StatusOk;
            return;
        }

        AppendHeaders(target, End(trailers, errorMetadata, error), null);
    }

    private void SendHeaders(Headers? errorHeaders) => SendResponseHeaders(GrpcProtocol.ContentType(_wire, Codec), errorHeaders);

    protected override void SetEncodingHeaders(IHeaderDictionary headers, string? encoding)
    {
        // Kestrel keeps the grpc- headers in fields of their own; the typed properties skip the name lookup.
        if (encoding is not null)
        {
            headers.GrpcEncoding = encoding;
        }

        headers.GrpcAcceptEncoding = SupportedCompressions.AcceptHeader;
    }

    public override void Dispose()
    {
        // The base gives the envelope reader's last frame back first; then the text reader may end.
        base.Dispose();
        _textBody?.Complete();
    }
}
