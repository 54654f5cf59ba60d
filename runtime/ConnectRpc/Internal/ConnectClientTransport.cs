using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Google.Protobuf;

namespace ConnectRpc.Internal;

/// <summary>The Connect protocol on the client side (docs/protocols/connect.md).</summary>
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

    /// <summary><c>Connect-Timeout-Ms</c>, on unary and streaming requests alike (docs/wire/timeouts.md).</summary>
    private static readonly TimeoutHeader s_timeout = new(ConnectProtocol.TimeoutHeader, ConnectProtocol.FormatTimeout);

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

            // Compressed even when empty: the request's Content-Encoding (or GET compression parameter) then always
            // names the encoding the options ask for, as peers checking the call expect.
            _request = MessageFraming.Encode(message, settings.CodecFor(Method), settings.SendCompressor, settings.Options.MaxSendMessageSize, out _compressed, compressEmpty: true);
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
            try
            {
                using HttpRequestMessage request = CreateRequest(payload);
                using HttpResponseMessage response = await settings.SendAsync(request, cancellationToken).ConfigureAwait(false);
                Headers trailers = Headers.CreateReceived(4);
                _headers = HttpTransportSettings.ReceivedHeaders(response, trailers, ConnectProtocol.TrailerPrefix);
                _trailers = trailers;

                string? encoding = response.Content.Headers.ContentEncoding.Count > 0 ? string.Join(",", response.Content.Headers.ContentEncoding) : null;
                Compressor? compressor = Compressor.Negotiate(settings.Compressors, encoding, null, Code.Internal).Received;
                int max = settings.Options.MaxReceiveMessageSize;
                long cap = compressor is null ? max : (long)max + MessageFraming.UnaryBodySlack;
                string? contentType = response.Content.Headers.ContentType?.ToString();
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    throw await ErrorAsync(response, contentType, cap, compressor, max, cancellationToken).ConfigureAwait(false);
                }

                using PooledBufferWriter body = await HttpTransportSettings.ReadBodyAsync(response.Content, cap, cancellationToken).ConfigureAwait(false);
                if (contentType is null || !contentType.StartsWith("application/", StringComparison.OrdinalIgnoreCase))
                {
                    throw new ConnectException(Code.Unknown, $"protocol error: the response has content type '{HeaderRules.Printable(contentType ?? "")}', not {ConnectProtocol.UnaryContentType(settings.Codec)}");
                }

                if (ConnectProtocol.UnaryCodec(contentType) != settings.Codec)
                {
                    throw new ConnectException(Code.Internal, $"protocol error: the response has content type '{HeaderRules.Printable(contentType)}', not {ConnectProtocol.UnaryContentType(settings.Codec)}");
                }

                return settings.Decode(Method, body.WrittenSequence, compressor);
            }
            catch (Exception ex) when (HttpFailures.Map(ex, cancellationToken) is { } error)
            {
                throw error;
            }
        }

        /// <summary>
        /// A non-200 response (docs/protocols/connect.md#client-validation): the JSON error when usable, else the HTTP
        /// status. Any other body is not read, and one over the size limit is not usable.
        /// </summary>
        private static async Task<ConnectException> ErrorAsync(HttpResponseMessage response, string? contentType, long cap, Compressor? compressor, int maxSize, CancellationToken cancellationToken)
        {
            int status = (int)response.StatusCode;
            if (ConnectProtocol.UnaryCodec(contentType)?.IsJson != true)
            {
                return HttpFailures.FromStatus(status);
            }

            PooledBufferWriter body;
            try
            {
                body = await HttpTransportSettings.ReadBodyAsync(response.Content, cap, cancellationToken).ConfigureAwait(false);
            }
            catch (ConnectException ex) when (ex.Code == Code.ResourceExhausted)
            {
                return HttpFailures.FromStatus(status);
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

            return HttpFailures.FromStatus(status);
        }

        private HttpRequestMessage CreateRequest(PooledBufferWriter payload)
        {
            HttpRequestMessage request;
            Uri url = settings.Url(Method);
            if (settings.Options.UseHttpGet && Method.Idempotency == IdempotencyLevel.NoSideEffects &&
                GetUrl(url.OriginalString, payload) is { } getUrl)
            {
                request = settings.CreateRequest(HttpMethod.Get, new Uri(getUrl), version, RequestHeaders, info.Lifetime, s_timeout);
            }
            else
            {
                request = settings.CreateRequest(HttpMethod.Post, url, version, RequestHeaders, info.Lifetime, s_timeout);
                request.Headers.TryAddWithoutValidation(ConnectProtocol.ProtocolVersionHeader, ConnectProtocol.ProtocolVersion);
                var content = new ReadOnlyMemoryContent(payload.WrittenMemory);
                content.Headers.TryAddWithoutValidation("Content-Type", ConnectProtocol.UnaryContentType(settings.Codec));
                if (_compressed)
                {
                    content.Headers.TryAddWithoutValidation("Content-Encoding", settings.SendCompressor!.Name);
                }

                request.Content = content;
            }

            request.Headers.TryAddWithoutValidation("Accept-Encoding", settings.Compressors.AcceptHeader);
            return request;
        }

        /// <summary>The GET URL (docs/protocols/connect.md#unary-get), or null when it would be too long.</summary>
        private string? GetUrl(string url, PooledBufferWriter payload)
        {
            var builder = new StringBuilder(url.Length + 64 + (payload.WrittenCount * 4 / 3));
            builder.Append(url).Append("?connect=v1");
            bool base64 = _compressed || !settings.Codec.IsJson;
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
        protected override string RequestContentType => ConnectProtocol.StreamContentType(Settings.Codec);

        protected override string ResponseEncodingHeader => ConnectProtocol.StreamContentEncodingHeader;

        protected override EnvelopeFlags EndFlag => EnvelopeFlags.EndStream;

        protected override string EndName => "the end-of-stream message";

        protected override HttpRequestMessage CreateRequest()
        {
            HttpRequestMessage request = Settings.CreateRequest(HttpMethod.Post, Settings.Url(Method), Version, RequestHeaders, Lifetime, s_timeout);
            request.Headers.TryAddWithoutValidation(ConnectProtocol.ProtocolVersionHeader, ConnectProtocol.ProtocolVersion);
            request.Headers.TryAddWithoutValidation(ConnectProtocol.StreamAcceptEncodingHeader, Settings.Compressors.AcceptHeader);
            if (Settings.SendCompressor is { } compressor)
            {
                request.Headers.TryAddWithoutValidation(ConnectProtocol.StreamContentEncodingHeader, compressor.Name);
            }

            return request;
        }

        /// <summary>Checks the response's status and content type; a Connect body is never base64.</summary>
        protected override bool StartReceiving(HttpResponseMessage response)
        {
            int status = (int)response.StatusCode;
            if (status != 200)
            {
                throw HttpFailures.FromStatus(status);
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

            return false;
        }

        /// <summary>The end-stream message (docs/protocols/connect.md#streaming): the error, if any, and the trailers.</summary>
        protected override ConnectException? ReadEnd(ReadOnlySequence<byte> payload)
        {
            Headers trailers = Headers.CreateReceived(4);
            ConnectException? error = ConnectProtocol.ReadEndStream(payload, trailers);
            ReceivedResponseTrailers = trailers;
            return error;
        }

        protected override ConnectException? EndOfBody(HttpResponseMessage response) =>
            throw new ConnectException(Code.Internal, "protocol error: the response stream ended without an end-of-stream message");
    }
}
