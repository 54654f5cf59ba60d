using System.Buffers;
using System.IO.Pipelines;
using Google.Protobuf;

namespace ConnectRpc.Internal;

/// <summary>
/// An enveloped call over HttpClient, whatever the protocol (Connect streaming, gRPC,
/// gRPC-Web): the one place that starts the HTTP request, writes request frames and hands the
/// response body to the protocol. A call with one request (unary, server streaming) sends it
/// whole, with its length; a call with a request stream is full duplex.
/// </summary>
internal abstract class HttpStreamClientCall<TRequest, TResponse> : ClientCall<TRequest, TResponse>
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    private readonly CallLifetime _lifetime;
    private readonly DuplexContent? _duplex;
    private PooledBufferWriter? _single;
    private Task<HttpResponseMessage>? _response;
    private HttpRequestMessage? _request;
    private PipeReader? _body;

    protected HttpStreamClientCall(HttpTransportSettings settings, Method<TRequest, TResponse> method, ClientCallInfo info, HttpVersionChoice version)
        : base(method, info.RequestHeaders, info.Deadline)
    {
        Settings = settings;
        Version = version;
        _lifetime = info.Lifetime;
        if (method.Kind is MethodKind.ClientStreaming or MethodKind.BidiStreaming)
        {
            _duplex = new DuplexContent();
        }
    }

    public override Headers ResponseHeaders => ReceivedResponseHeaders;

    public override Headers ResponseTrailers => ReceivedResponseTrailers;

    protected HttpTransportSettings Settings { get; }

    protected HttpVersionChoice Version { get; }

    protected Headers ReceivedResponseHeaders { get; set; } = Headers.Empty;

    protected Headers ReceivedResponseTrailers { get; set; } = Headers.Empty;

    /// <summary>The request with its URL, version and every header but the content's.</summary>
    protected abstract HttpRequestMessage CreateRequest();

    protected abstract string RequestContentType { get; }

    /// <summary>Whether frames go on the wire as they are (false for gRPC-Web text, which base64-encodes them).</summary>
    protected virtual bool FramesAsIs => true;

    /// <summary>Writes one request frame; gRPC-Web text overrides it to base64-encode.</summary>
    protected virtual void WriteFrame(IBufferWriter<byte> output, EnvelopeFlags flags, ReadOnlySpan<byte> payload) =>
        Envelope.WriteFrame(output, flags, payload);

    private void EnsureStarted()
    {
        // Sends and receives run concurrently, and either may be first.
        if (Volatile.Read(ref _response) is not null)
        {
            return;
        }

        lock (_lifetime) // owned by this call alone
        {
            if (_response is null)
            {
                HttpContent content = (HttpContent?)_duplex ?? new ReadOnlyMemoryContent(_single?.WrittenMemory ?? ReadOnlyMemory<byte>.Empty);
                HttpRequestMessage request = CreateRequest();
                content.Headers.TryAddWithoutValidation("Content-Type", RequestContentType);
                request.Content = content;
                _request = request;
                _response = Settings.SendAsync(request, _lifetime.Token);
            }
        }
    }

    public override async ValueTask SendAsync(TRequest message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (_duplex is null && (_single is not null || _response is not null))
        {
            throw new InvalidOperationException($"A {Method.Kind} call sends exactly one request.");
        }

        var frame = new PooledBufferWriter();
        try
        {
            int size = FramesAsIs ? MessageFraming.DirectProtoSize(message, Settings.Codec, Settings.SendCompressor, Settings.Options.MaxSendMessageSize) : -1;
            if (size >= 0)
            {
                MessageFraming.WriteProtoFrame(frame, message, size);
            }
            else
            {
                using PooledBufferWriter payload = MessageFraming.Encode(message, Settings.Codec, Settings.SendCompressor, Settings.Options.MaxSendMessageSize, out bool compressed);
                WriteFrame(frame, compressed ? EnvelopeFlags.Compressed : EnvelopeFlags.None, payload.WrittenSpan);
            }

            if (_duplex is null)
            {
                // Sent whole when the request side completes.
                _single = frame;
                frame = null;
                return;
            }

            EnsureStarted();
            Stream stream = await RequestStreamAsync(_duplex, cancellationToken).ConfigureAwait(false);
            await stream.WriteAsync(frame.WrittenMemory, cancellationToken).ConfigureAwait(false);
            await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            frame?.Dispose();
        }
    }

    private async ValueTask<Stream> RequestStreamAsync(DuplexContent duplex, CancellationToken cancellationToken)
    {
        Task<Stream> ready = duplex.StreamReady;
        if (!ready.IsCompleted)
        {
            // A failed request never asks for its body. Response headers may well come first
            // (grpc-dotnet sends them before reading): the body is still to be asked for then,
            // and the call's token ends the wait if the call ends instead.
            await Task.WhenAny(ready, _response!).WaitAsync(cancellationToken).ConfigureAwait(false);
            if (!ready.IsCompleted && !_response!.IsCompletedSuccessfully)
            {
                throw new ConnectException(Code.Canceled, "the call ended before the request stream started");
            }
        }

        return await ready.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public override ValueTask CompleteSendAsync(CancellationToken cancellationToken)
    {
        EnsureStarted();
        _duplex?.Complete();
        return ValueTask.CompletedTask;
    }

    /// <summary>The response, once its headers arrived.</summary>
    protected Task<HttpResponseMessage> ResponseAsync(CancellationToken cancellationToken)
    {
        EnsureStarted();
        // The request already ends with the call's token; another token (an interceptor's) needs a wait of its own.
        return cancellationToken == _lifetime.Token || !cancellationToken.CanBeCanceled
            ? _response!
            : _response!.WaitAsync(cancellationToken);
    }

    /// <summary>The response body's envelopes, base64-decoded for gRPC-Web text.</summary>
    protected ValueTask<EnvelopeReader> OpenBodyAsync(HttpResponseMessage response, bool base64, CancellationToken cancellationToken)
    {
        // HttpClient's own responses hand their stream over at once; other contents may not.
        Task<Stream> stream = response.Content.ReadAsStreamAsync(cancellationToken);
        return stream.IsCompletedSuccessfully ? new(Envelopes(stream.Result, base64)) : OpenBodySlowAsync(stream, base64);
    }

    private async ValueTask<EnvelopeReader> OpenBodySlowAsync(Task<Stream> stream, bool base64) =>
        Envelopes(await stream.ConfigureAwait(false), base64);

    private EnvelopeReader Envelopes(Stream stream, bool base64)
    {
        if (base64)
        {
            stream = new Base64ReadStream(stream, Code.Internal);
        }

        _body = PipeReader.Create(stream);
        return new EnvelopeReader(_body, Settings.Options.MaxReceiveMessageSize, Code.Internal);
    }

    public override async ValueTask DisposeAsync()
    {
        _lifetime.Abandon();
        _duplex?.Abort();
        HttpResponseMessage? response = null;
        if (_response is not null)
        {
            try
            {
                // Also the response whose headers arrived as the call was canceled, which no
                // receive took: it is disposed all the same, or its HTTP/2 stream is never reset
                // and the server's handler runs on.
                response = await _response.ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Canceled above, or already reported by ReceiveAsync.
            }
        }

        if (_body is not null)
        {
            await _body.CompleteAsync().ConfigureAwait(false);
        }

        response?.Dispose();
        _request?.Dispose();
        _single?.Dispose();
    }
}
