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
    private readonly CancellationTokenSource _cancel = new();
    private readonly DuplexContent? _duplex;
    private PooledBufferWriter? _single;
    private Task<HttpResponseMessage>? _response;
    private HttpRequestMessage? _request;
    private HttpResponseMessage? _responseMessage;
    private PipeReader? _body;

    protected HttpStreamClientCall(HttpTransportSettings settings, Method<TRequest, TResponse> method, ClientCallInfo info, HttpVersionChoice version)
        : base(method, info.RequestHeaders, info.Deadline)
    {
        Settings = settings;
        Version = version;
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

        lock (_cancel)
        {
            if (_response is null)
            {
                HttpContent content = (HttpContent?)_duplex ?? new ReadOnlyMemoryContent(_single?.WrittenMemory ?? ReadOnlyMemory<byte>.Empty);
                HttpRequestMessage request = CreateRequest();
                content.Headers.TryAddWithoutValidation("Content-Type", RequestContentType);
                request.Content = content;
                _request = request;
                _response = Settings.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, _cancel.Token);
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
    protected async Task<HttpResponseMessage> ResponseAsync(CancellationToken cancellationToken)
    {
        EnsureStarted();
        HttpResponseMessage response = await _response!.WaitAsync(cancellationToken).ConfigureAwait(false);
        _responseMessage = response;
        return response;
    }

    /// <summary>The response body as a pipe, base64-decoded for gRPC-Web text.</summary>
    protected async Task<PipeReader> OpenBodyAsync(HttpResponseMessage response, bool base64, CancellationToken cancellationToken)
    {
        Stream stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        if (base64)
        {
            stream = new Base64ReadStream(stream, Code.Internal);
        }

        _body = PipeReader.Create(stream);
        return _body;
    }

    public override async ValueTask DisposeAsync()
    {
        _cancel.Cancel();
        _duplex?.Abort();
        if (_response is not null)
        {
            try
            {
                // Headers that arrived as the call was canceled were never taken by ResponseAsync:
                // the response is disposed all the same, or its HTTP/2 stream is never reset
                // and the server's handler runs on.
                _responseMessage ??= await _response.ConfigureAwait(false);
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

        _responseMessage?.Dispose();
        _request?.Dispose();
        _single?.Dispose();
        _cancel.Dispose();
    }
}
