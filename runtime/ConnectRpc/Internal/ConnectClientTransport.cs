using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Google.Protobuf;

namespace ConnectRpc.Internal;

/// <summary>The Connect protocol on the client side (protocol.md §1).</summary>
internal sealed class ConnectClientTransport(HttpTransportSettings settings) : IClientTransport
{
    // Longer GET URLs risk proxy and server limits; such calls are sent as POST instead.
    private const int MaxGetUrlLength = 8 * 1024;

    public ClientCall<TRequest, TResponse> CreateCall<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientCallInfo info)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        // A bidi call over HTTP/1.1 fails here, before any I/O.
        HttpVersionChoice version = settings.HttpVersionFor(method);
        return method.Kind == MethodKind.Unary
            ? new ConnectUnaryClientCall<TRequest, TResponse>(settings, method, info, version)
            : new ConnectStreamClientCall<TRequest, TResponse>(settings, method, info, version);
    }

    /// <summary>The timeout header value for the time left until the deadline, or null.</summary>
    internal static string? TimeoutHeader(DateTimeOffset? deadline) =>
        deadline is { } d ? ConnectProtocol.FormatTimeout(d - DateTimeOffset.UtcNow) : null;

    private sealed class ConnectUnaryClientCall<TRequest, TResponse>(HttpTransportSettings settings, Method<TRequest, TResponse> method, ClientCallInfo info, HttpVersionChoice version)
        : ClientCall<TRequest, TResponse>(method, info.RequestHeaders, info.Deadline)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        private PooledBufferWriter? _request;
        private bool _compressed;
        private bool _received;
        private Headers _headers = Headers.Empty;
        private Headers _trailers = Headers.Empty;

        public override Headers ResponseHeaders => _headers;

        public override Headers ResponseTrailers => _trailers;

        public override ValueTask SendAsync(TRequest message, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(message);
            if (_request is not null)
            {
                throw new InvalidOperationException("A unary call sends exactly one request.");
            }

            _request = MessageFraming.Encode(message, settings.Codec, settings.SendCompressor, settings.Options.MaxSendMessageSize, out _compressed);
            return ValueTask.CompletedTask;
        }

        public override ValueTask CompleteSendAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public override async ValueTask<TResponse?> ReceiveAsync(CancellationToken cancellationToken)
        {
            if (_received)
            {
                return null;
            }

            _received = true;
            PooledBufferWriter payload = _request ?? throw new InvalidOperationException("A unary call sends its request before receiving.");
            using HttpRequestMessage request = CreateRequest(payload);
            using HttpResponseMessage response = await settings.SendAsync(request, cancellationToken).ConfigureAwait(false);
            Headers trailers = Headers.CreateReceived(4);
            _headers = HttpTransportSettings.ReceivedHeaders(response, trailers, ConnectProtocol.TrailerPrefix);
            _trailers = trailers;

            string? encoding = response.Content.Headers.ContentEncoding.Count > 0 ? string.Join(",", response.Content.Headers.ContentEncoding) : null;
            Compressor? compressor = null;
            if (encoding is not null && !Compressor.IsIdentity(encoding))
            {
                compressor = Compressor.Find(encoding)
                    ?? throw new ConnectException(Code.Internal, $"protocol error: the response uses unknown compression '{HeaderRules.Printable(encoding)}'");
            }

            int max = settings.Options.MaxReceiveMessageSize;
            long cap = compressor is null ? max : (long)max + MessageFraming.UnaryBodySlack;
            string? contentType = response.Content.Headers.ContentType?.ToString();
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw await ErrorAsync(response, contentType, cap, compressor, max, cancellationToken).ConfigureAwait(false);
            }

            using PooledBufferWriter body = await ReadAsync(response.Content, cap, cancellationToken).ConfigureAwait(false);
            if (contentType is null || !contentType.StartsWith("application/", StringComparison.OrdinalIgnoreCase))
            {
                throw new ConnectException(Code.Unknown, $"protocol error: the response has content type '{HeaderRules.Printable(contentType ?? "")}', not {ConnectProtocol.UnaryContentType(settings.Codec)}");
            }

            if (ConnectProtocol.UnaryCodec(contentType) != settings.Codec)
            {
                throw new ConnectException(Code.Internal, $"protocol error: the response has content type '{HeaderRules.Printable(contentType)}', not {ConnectProtocol.UnaryContentType(settings.Codec)}");
            }

            return settings.Decode(Method.ResponseParser, body.WrittenSequence, compressor);
        }

        private static async Task<PooledBufferWriter> ReadAsync(HttpContent content, long cap, CancellationToken cancellationToken)
        {
            try
            {
                return await HttpTransportSettings.ReadBodyAsync(content, cap, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw HttpTransportSettings.ReadFailure(ex);
            }
        }

        /// <summary>
        /// A non-200 response (§1 "Client validation"): the JSON error when usable, else the HTTP
        /// status. Any other body is not read, and one over the size limit is not usable.
        /// </summary>
        private static async Task<ConnectException> ErrorAsync(HttpResponseMessage response, string? contentType, long cap, Compressor? compressor, int maxSize, CancellationToken cancellationToken)
        {
            int status = (int)response.StatusCode;
            if (ConnectProtocol.UnaryCodec(contentType) != MessageCodec.Json)
            {
                return HttpTransportSettings.HttpStatusError(status);
            }

            PooledBufferWriter body;
            try
            {
                body = await ReadAsync(response.Content, cap, cancellationToken).ConfigureAwait(false);
            }
            catch (ConnectException ex) when (ex.Code == Code.ResourceExhausted)
            {
                return HttpTransportSettings.HttpStatusError(status);
            }

            using (body)
            {
                try
                {
                    using PooledBufferWriter? plain = compressor is null || body.WrittenCount == 0
                        ? null
                        : MessageFraming.Decompress(body.WrittenSequence, compressor, maxSize);
                    if (ConnectProtocol.ReadErrorBody(plain?.WrittenSequence ?? body.WrittenSequence, CodeMapping.FromHttpStatus(status)) is { } error)
                    {
                        return error;
                    }
                }
                catch (Exception ex) when (ex is MessageDecodeException or ConnectException)
                {
                    // Not a usable error body: fall back to the HTTP status.
                }
            }

            return HttpTransportSettings.HttpStatusError(status);
        }

        private HttpRequestMessage CreateRequest(PooledBufferWriter payload)
        {
            HttpRequestMessage request;
            Uri url = settings.Url(Method);
            if (settings.Options.UseHttpGet && Method.Idempotency == IdempotencyLevel.NoSideEffects &&
                GetUrl(url.OriginalString, payload) is { } getUrl)
            {
                request = settings.CreateRequest(HttpMethod.Get, new Uri(getUrl), version, RequestHeaders);
            }
            else
            {
                request = settings.CreateRequest(HttpMethod.Post, url, version, RequestHeaders);
                request.Headers.TryAddWithoutValidation(ConnectProtocol.ProtocolVersionHeader, ConnectProtocol.ProtocolVersion);
                var content = new ReadOnlyMemoryContent(payload.WrittenMemory);
                content.Headers.TryAddWithoutValidation("Content-Type", ConnectProtocol.UnaryContentType(settings.Codec));
                if (_compressed)
                {
                    content.Headers.TryAddWithoutValidation("Content-Encoding", settings.SendCompressor!.Name);
                }

                request.Content = content;
            }

            request.Headers.TryAddWithoutValidation("Accept-Encoding", settings.AcceptList);
            if (TimeoutHeader(Deadline) is { } timeout)
            {
                request.Headers.TryAddWithoutValidation(ConnectProtocol.TimeoutHeader, timeout);
            }

            return request;
        }

        /// <summary>The GET URL (§1 "Unary GET"), or null when it would be too long.</summary>
        private string? GetUrl(string url, PooledBufferWriter payload)
        {
            var builder = new StringBuilder(url.Length + 64 + (payload.WrittenCount * 4 / 3));
            builder.Append(url).Append("?connect=v1");
            bool base64 = _compressed || settings.Codec != MessageCodec.Json;
            if (base64)
            {
                builder.Append("&base64=1");
            }

            if (_compressed)
            {
                builder.Append("&compression=").Append(settings.SendCompressor!.Name);
            }

            builder.Append("&encoding=").Append(settings.Codec.Name).Append("&message=");
            builder.Append(base64
                ? System.Buffers.Text.Base64Url.EncodeToString(payload.WrittenSpan)
                : Uri.EscapeDataString(Encoding.UTF8.GetString(payload.WrittenSpan)));
            return builder.Length <= MaxGetUrlLength ? builder.ToString() : null;
        }

        public override ValueTask DisposeAsync()
        {
            _request?.Dispose();
            _request = null;
            return ValueTask.CompletedTask;
        }
    }

    private sealed class ConnectStreamClientCall<TRequest, TResponse>(HttpTransportSettings settings, Method<TRequest, TResponse> method, ClientCallInfo info, HttpVersionChoice version)
        : HttpStreamClientCall<TRequest, TResponse>(settings, method, info, version)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        private EnvelopeReader? _envelopes;
        private Compressor? _responseCompressor;
        private bool _ended;

        protected override string RequestContentType => ConnectProtocol.StreamContentType(Settings.Codec);

        protected override HttpRequestMessage CreateRequest()
        {
            HttpRequestMessage request = Settings.CreateRequest(HttpMethod.Post, Settings.Url(Method), Version, RequestHeaders);
            request.Headers.TryAddWithoutValidation(ConnectProtocol.ProtocolVersionHeader, ConnectProtocol.ProtocolVersion);
            request.Headers.TryAddWithoutValidation(ConnectProtocol.StreamAcceptEncodingHeader, Settings.AcceptList);
            if (Settings.SendCompressor is { } compressor)
            {
                request.Headers.TryAddWithoutValidation(ConnectProtocol.StreamContentEncodingHeader, compressor.Name);
            }

            if (TimeoutHeader(Deadline) is { } timeout)
            {
                request.Headers.TryAddWithoutValidation(ConnectProtocol.TimeoutHeader, timeout);
            }

            return request;
        }

        public override async ValueTask<TResponse?> ReceiveAsync(CancellationToken cancellationToken)
        {
            if (_ended)
            {
                return null;
            }

            try
            {
                if (_envelopes is null)
                {
                    HttpResponseMessage response = await ResponseAsync(cancellationToken).ConfigureAwait(false);
                    StartReceiving(response);
                    _envelopes = await OpenBodyAsync(response, base64: false, cancellationToken).ConfigureAwait(false);
                }

                EnvelopeFrame frame = await _envelopes.ReadAsync(cancellationToken).ConfigureAwait(false)
                    ?? throw new ConnectException(Code.Internal, "protocol error: the response stream ended without an end-of-stream message");
                bool compressed = (frame.Flags & EnvelopeFlags.Compressed) != 0;
                if (compressed && _responseCompressor is null)
                {
                    throw new ConnectException(Code.Internal, "protocol error: a response message is marked compressed but the response has no compression");
                }

                if ((frame.Flags & ~(EnvelopeFlags.Compressed | EnvelopeFlags.EndStream)) != 0)
                {
                    throw new ConnectException(Code.Internal, $"protocol error: invalid envelope flags 0x{(byte)frame.Flags:x2}");
                }

                if ((frame.Flags & EnvelopeFlags.EndStream) == 0)
                {
                    return Settings.Decode(Method.ResponseParser, frame.Payload, compressed ? _responseCompressor : null);
                }

                _ended = true;
                ConnectException? error = ReadEndStream(frame.Payload, compressed);
                if (await _envelopes.ReadAsync(cancellationToken).ConfigureAwait(false) is not null)
                {
                    throw new ConnectException(Code.Internal, "protocol error: data after the end-of-stream message");
                }

                return error is null ? null : throw error;
            }
            catch (IOException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw HttpTransportSettings.ReadFailure(ex);
            }
        }

        private ConnectException? ReadEndStream(ReadOnlySequence<byte> payload, bool compressed)
        {
            Headers trailers = Headers.CreateReceived(4);
            PooledBufferWriter? plain = null;
            try
            {
                if (compressed && !payload.IsEmpty)
                {
                    plain = MessageFraming.Decompress(payload, _responseCompressor!, Settings.Options.MaxReceiveMessageSize);
                }
            }
            catch (MessageDecodeException ex)
            {
                throw new ConnectException(Code.Internal, ex.Message, ex);
            }

            ConnectException? error;
            using (plain)
            {
                error = ConnectProtocol.ReadEndStream(plain?.WrittenSequence ?? payload, trailers);
            }

            ReceivedResponseTrailers = trailers;
            return error;
        }

        /// <summary>Checks the response's headers.</summary>
        private void StartReceiving(HttpResponseMessage response)
        {
            ReceivedResponseHeaders = HttpTransportSettings.ReceivedHeaders(response, null, null);
            int status = (int)response.StatusCode;
            if (status != 200)
            {
                throw HttpTransportSettings.HttpStatusError(status);
            }

            string? contentType = response.Content.Headers.ContentType?.ToString();
            if (contentType is null || !contentType.StartsWith("application/connect+", StringComparison.OrdinalIgnoreCase))
            {
                throw new ConnectException(Code.Unknown, $"protocol error: the response has content type '{HeaderRules.Printable(contentType ?? "")}', not {ConnectProtocol.StreamContentType(Settings.Codec)}");
            }

            if (ConnectProtocol.StreamCodec(contentType) != Settings.Codec)
            {
                throw new ConnectException(Code.Internal, $"protocol error: the response has content type '{HeaderRules.Printable(contentType)}', not {ConnectProtocol.StreamContentType(Settings.Codec)}");
            }

            if (response.Headers.TryGetValues(ConnectProtocol.StreamContentEncodingHeader, out IEnumerable<string>? encodings) &&
                string.Join(",", encodings) is { } encoding && !Compressor.IsIdentity(encoding))
            {
                _responseCompressor = Compressor.Find(encoding)
                    ?? throw new ConnectException(Code.Internal, $"protocol error: the response uses unknown compression '{HeaderRules.Printable(encoding)}'");
            }
        }
    }
}
