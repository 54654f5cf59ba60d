using System.Buffers;
using System.IO.Pipelines;
using Google.Protobuf;

namespace ConnectRpc.Internal;

/// <summary>
/// An enveloped call over HttpClient, whatever the protocol (Connect streaming, gRPC,
/// gRPC-Web): the one place that starts the HTTP request, writes request frames and reads
/// response frames. A call with one request (unary, server streaming) sends it whole, with its
/// length; a call with a request stream is full duplex, except a bidi call over HTTP/1.1, which
/// is half-duplex: it reads no response before its request stream ended. A protocol says how its
/// request is made, how its response headers are checked, and how its stream ends.
/// </summary>
internal abstract class HttpStreamClientCall<TRequest, TResponse> : ClientCall<TRequest, TResponse>
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    private readonly CallLifetime _lifetime;
    private readonly DuplexContent? _duplex;
    // Half-duplex only (bidi over HTTP/1.1): completes when the request stream ended.
    private readonly TaskCompletionSource? _requestEnded;
    private PooledBufferWriter? _single;
    private Task<HttpResponseMessage>? _response;
    private HttpRequestMessage? _request;
    private PipeReader? _body;
    private EnvelopeReader? _envelopes;
    private Compressor? _responseCompressor;
    private bool _ended;

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

        if (version.HalfDuplex)
        {
            _requestEnded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    public override Headers ResponseHeaders => ReceivedResponseHeaders;

    public override Headers ResponseTrailers => ReceivedResponseTrailers;

    protected HttpTransportSettings Settings { get; }

    protected HttpVersionChoice Version { get; }

    /// <summary>The call's lifetime: its deadline for the timeout header.</summary>
    protected CallLifetime Lifetime => _lifetime;

    /// <summary>Whether a response message has been received (a trailers-only response has none).</summary>
    protected bool MessageReceived { get; private set; }

    protected Headers ReceivedResponseHeaders { get; set; } = Headers.Empty;

    protected Headers ReceivedResponseTrailers { get; set; } = Headers.Empty;

    /// <summary>The request with its URL, version and every header but the content's.</summary>
    protected abstract HttpRequestMessage CreateRequest();

    protected abstract string RequestContentType { get; }

    /// <summary>The response header that names the compression of response messages.</summary>
    protected abstract string ResponseEncodingHeader { get; }

    /// <summary>The flag of the frame that ends the response stream (none for gRPC, whose status comes in HTTP trailers).</summary>
    protected abstract EnvelopeFlags EndFlag { get; }

    /// <summary>What the end frame is called in errors ("the end-of-stream message").</summary>
    protected abstract string EndName { get; }

    /// <summary>
    /// Checks the response's status and headers (<see cref="ReceivedResponseHeaders"/> are set)
    /// and says whether its body is base64 (gRPC-Web text). Throws for a response that is not
    /// the protocol's.
    /// </summary>
    protected abstract bool StartReceiving(HttpResponseMessage response);

    /// <summary>Reads the end frame's (decompressed) payload: sets the trailers and returns the call's error, if any.</summary>
    protected abstract ConnectException? ReadEnd(ReadOnlySequence<byte> payload);

    /// <summary>The body ended without an end frame: the call's error, if any (or a protocol error, thrown).</summary>
    protected abstract ConnectException? EndOfBody(HttpResponseMessage response);

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
            MessageCodec codec = Settings.CodecFor(Method);
            int size = FramesAsIs ? MessageFraming.DirectProtoSize(message, codec, Settings.SendCompressor, Settings.Options.MaxSendMessageSize) : -1;
            if (size >= 0)
            {
                MessageFraming.WriteProtoFrame(frame, message, size);
            }
            else
            {
                using PooledBufferWriter payload = MessageFraming.Encode(message, codec, Settings.SendCompressor, Settings.Options.MaxSendMessageSize, out bool compressed);
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
            try
            {
                Stream stream = await RequestStreamAsync(_duplex, cancellationToken).ConfigureAwait(false);
                await stream.WriteAsync(frame.WrittenMemory, cancellationToken).ConfigureAwait(false);
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                // The request stream cannot go on (the server answered and closed it, or the
                // connection broke). A half-duplex call ends its body, which HTTP/1.1 must send
                // whole before it reads the response, and stops waiting for the request stream:
                // the response (or the connection's failure) then says what happened.
                if (_requestEnded is not null)
                {
                    _duplex.Complete();
                    _requestEnded.TrySetResult();
                }

                throw;
            }
        }
        catch (Exception ex) when (HttpFailures.Map(ex, cancellationToken) is { } error)
        {
            throw error;
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
        _requestEnded?.TrySetResult();
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// The next response message, or null at the end of a successful stream. The one receive
    /// loop of every enveloped protocol: it starts the response, checks every frame's flags and
    /// compression, reads the end frame through the protocol, and maps HTTP failures.
    /// </summary>
    public sealed override async ValueTask<TResponse?> ReceiveAsync(CancellationToken cancellationToken)
    {
        if (_ended)
        {
            return null;
        }

        try
        {
            if (_envelopes is null)
            {
                if (_requestEnded is not null)
                {
                    await RequestEndedAsync(_requestEnded.Task, cancellationToken).ConfigureAwait(false);
                }

                HttpResponseMessage response = await ResponseAsync(cancellationToken).ConfigureAwait(false);
                ReceivedResponseHeaders = HttpTransportSettings.ReceivedHeaders(response, null, null);
                bool base64 = StartReceiving(response);
                _responseCompressor = Compressor.Negotiate(Settings.Compressors, ReceivedResponseHeaders.Get(ResponseEncodingHeader), null, Code.Internal).Received;
                _envelopes = await OpenBodyAsync(response, base64, cancellationToken).ConfigureAwait(false);
            }

            if (await _envelopes.ReadAsync(cancellationToken).ConfigureAwait(false) is not { } frame)
            {
                _ended = true;
                ConnectException? error = EndOfBody(await _response!.ConfigureAwait(false));
                return error is null ? null : throw error;
            }

            if (EndFlag != EnvelopeFlags.None && frame.Has(EndFlag))
            {
                _ended = true;
                ConnectException? status = ReadEndFrame(frame);
                if (await _envelopes.ReadAsync(cancellationToken).ConfigureAwait(false) is not null)
                {
                    throw new ConnectException(Code.Internal, $"protocol error: data after {EndName}");
                }

                return status is null ? null : throw status;
            }

            frame.CheckFlags(EnvelopeFlags.Compressed, Code.Internal, "a response message");
            Compressor? compressor = frame.CompressorFor(_responseCompressor, Code.Internal, "a response message");
            MessageReceived = true;
            return Settings.Decode(Method, frame.Payload, compressor);
        }
        catch (Exception ex) when (HttpFailures.Map(ex, cancellationToken) is { } error)
        {
            throw error;
        }
    }

    /// <summary>
    /// Half-duplex (bidi over HTTP/1.1): waits until the request stream ended, or the response
    /// came anyway (a failed request). A request stream that waits for a response itself never
    /// ends: the call's deadline or cancellation ends the wait, and the call's error says why.
    /// </summary>
    private async ValueTask RequestEndedAsync(Task requestEnded, CancellationToken cancellationToken)
    {
        if (requestEnded.IsCompleted)
        {
            return;
        }

        EnsureStarted();
        // Kept when the wait ends without either (canceled, or the request failed as the call
        // was canceled): the call's error reports it.
        _lifetime.Waiting = HalfDuplexNote;
        await Task.WhenAny(requestEnded, _response!).WaitAsync(cancellationToken).ConfigureAwait(false);
        if (requestEnded.IsCompletedSuccessfully || _response!.IsCompletedSuccessfully)
        {
            _lifetime.Waiting = null;
        }
    }

    /// <summary>Why a half-duplex call that ended while waiting for its request stream to end got no response.</summary>
    internal const string HalfDuplexNote =
        "Over HTTP/1.1 a bidi call is half-duplex: no response is read until the request stream has ended, and it had not. " +
        "A request stream that waits for responses needs HTTP/2 (ConnectClientOptions.HttpVersion = HttpVersion.Version20).";

    /// <summary>The end frame: its flags checked, its payload decompressed when marked so, then read by the protocol.</summary>
    private ConnectException? ReadEndFrame(EnvelopeFrame frame)
    {
        frame.CheckFlags(EndFlag | EnvelopeFlags.Compressed, Code.Internal, EndName);
        Compressor? compressor = frame.CompressorFor(_responseCompressor, Code.Internal, EndName);
        if (compressor is null || frame.Payload.IsEmpty)
        {
            return ReadEnd(frame.Payload);
        }

        PooledBufferWriter plain;
        try
        {
            plain = MessageFraming.Decompress(frame.Payload, compressor, Settings.Options.MaxReceiveMessageSize);
        }
        catch (MessageDecodeException ex)
        {
            throw new ConnectException(Code.Internal, ex.Message, ex);
        }

        using (plain)
        {
            return ReadEnd(plain.WrittenSequence);
        }
    }

    /// <summary>The response, once its headers arrived.</summary>
    private Task<HttpResponseMessage> ResponseAsync(CancellationToken cancellationToken)
    {
        EnsureStarted();
        // The request already ends with the call's token; another token (an interceptor's) needs a wait of its own.
        return cancellationToken == _lifetime.Token || !cancellationToken.CanBeCanceled
            ? _response!
            : _response!.WaitAsync(cancellationToken);
    }

    /// <summary>The response body's envelopes, base64-decoded for gRPC-Web text.</summary>
    private ValueTask<EnvelopeReader> OpenBodyAsync(HttpResponseMessage response, bool base64, CancellationToken cancellationToken)
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
        _requestEnded?.TrySetCanceled();
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
