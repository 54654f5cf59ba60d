using System.IO.Pipelines;
using ConnectRpc.Internal;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;

namespace ConnectRpc.AspNetCore.Internal;

/// <summary>
/// One gRPC or gRPC-Web call on the server (protocol.md §2, §3). Every RPC kind uses
/// envelopes; the response headers leave with the first message, and the status and trailers
/// end the call: as HTTP/2 trailers for gRPC, as the 0x80 frame for gRPC-Web, or all in the
/// headers (trailers-only) when nothing else was sent.
/// </summary>
internal sealed class GrpcServerCall : HttpServerCall
{
    private readonly GrpcWire _wire;
    private PipeReader? _textBody;

    public GrpcServerCall(HttpContext http, Method method, MessageCodec codec, GrpcWire wire, ConnectServerOptions options)
        : base(http, method, codec, options)
    {
        _wire = wire;
    }

    public override void Start()
    {
        IHeaderDictionary headers = Http.Request.Headers;
        CreateContext(GrpcProtocol.ToProtocol(_wire));
        RequestCompressor = FindRequestCompressor(headers[GrpcProtocol.EncodingHeader]);
        ResponseCompressor = RequestCompressor ?? Compressor.Negotiate(headers[GrpcProtocol.AcceptEncodingHeader]);
    }

    public override ValueTask<T?> ReadAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
        where T : class
    {
        PipeReader body = _wire == GrpcWire.WebText
            ? _textBody ??= PipeReader.Create(new Base64ReadStream(Http.Request.Body, Code.InvalidArgument))
            : Http.Request.BodyReader;
        return ReadEnvelopeAsync(body, parser, cancellationToken);
    }

    public override async ValueTask WriteAsync<T>(T message, CancellationToken cancellationToken)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(message);
        using PooledBufferWriter payload = MessageFraming.Encode(message, Codec, ResponseCompressor, MaxSend, out bool compressed);
        SendHeaders(null);
        PipeWriter body = Http.Response.BodyWriter;
        GrpcProtocol.WriteFrame(body, _wire, compressed ? EnvelopeFlags.Compressed : EnvelopeFlags.None, payload.WrittenSpan);
        if (Method.Kind is MethodKind.Unary or MethodKind.ClientStreaming)
        {
            // The only response leaves with the end of the call, headers, message and trailers
            // in one write, instead of a flush of its own.
            return;
        }

        await FlushAsync(body, cancellationToken).ConfigureAwait(false);
    }

    public override async Task FinishAsync(ConnectException? error)
    {
        RequestContext? context = ContextOrNull;
        Headers trailers = context?.ResponseTrailers ?? Headers.Empty;
        HttpResponse response = Http.Response;

        // Trailers-only (§2, §3) when nothing went out and there are no headers to keep apart
        // from the trailers: a client reads every header of such a response as a trailer.
        if (!HeadersSent && (context is null || context.ResponseHeaders.Count == 0) && (error is null || error.Headers.Count == 0))
        {
            SendHeaders(null);
            AppendHeaders(response.Headers, End(trailers, error, error?.Trailers), null);
            return;
        }

        Headers? errorMetadata = ErrorTrailers(error);
        SendHeaders(error?.Headers);
        Headers end = End(trailers, error, errorMetadata);
        if (_wire == GrpcWire.Grpc)
        {
            foreach (KeyValuePair<string, string> entry in end)
            {
                response.AppendTrailer(entry.Key, entry.Value);
            }

            return;
        }

        using var block = new PooledBufferWriter();
        GrpcProtocol.WriteWebTrailers(block, end);
        GrpcProtocol.WriteFrame(response.BodyWriter, _wire, EnvelopeFlags.Trailers, block.WrittenSpan);
        await response.BodyWriter.FlushAsync(Http.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>The application's trailers, then the error's metadata, then the status fields.</summary>
    private static Headers End(Headers trailers, ConnectException? error, Headers? errorMetadata)
    {
        Headers end = Headers.CreateReceived(trailers.Count + (errorMetadata?.Count ?? 0) + 3);
        end.AddRangeUnchecked(trailers);
        if (errorMetadata is not null)
        {
            end.AddRangeUnchecked(errorMetadata);
        }

        GrpcProtocol.AddStatus(end, error);
        return end;
    }

    private void SendHeaders(Headers? errorHeaders) =>
        SendResponseHeaders(GrpcProtocol.ContentType(_wire, Codec), GrpcProtocol.EncodingHeader, GrpcProtocol.AcceptEncodingHeader, errorHeaders);

    public override void Dispose()
    {
        // The base gives the envelope reader's last frame back first; then the text reader may end.
        base.Dispose();
        _textBody?.Complete();
    }
}
