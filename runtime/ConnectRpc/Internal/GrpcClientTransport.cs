using System.Buffers;
using System.IO.Pipelines;
using System.Net.Http.Headers;
using Google.Protobuf;

namespace ConnectRpc.Internal;

/// <summary>gRPC and gRPC-Web (binary or text) on the client side (protocol.md §2, §3).</summary>
internal sealed class GrpcClientTransport(HttpTransportSettings settings, GrpcWire wire) : IClientTransport
{
    public ClientCall<TRequest, TResponse> CreateCall<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientCallInfo info)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        // gRPC is HTTP/2 only; gRPC-Web follows the Connect rules. A bidi call over HTTP/1.1 fails here, before any I/O.
        HttpVersionChoice version = settings.HttpVersionFor(method, http2Only: wire == GrpcWire.Grpc);
        return new GrpcClientCall<TRequest, TResponse>(settings, method, info, version, wire);
    }

    private sealed class GrpcClientCall<TRequest, TResponse>(HttpTransportSettings settings, Method<TRequest, TResponse> method, ClientCallInfo info, HttpVersionChoice version, GrpcWire wire)
        : HttpStreamClientCall<TRequest, TResponse>(settings, method, info, version)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        private HttpResponseMessage? _response;
        private EnvelopeReader? _envelopes;
        private Compressor? _responseCompressor;
        private bool _webResponse;
        private bool _messageReceived;
        private bool _ended;

        protected override string RequestContentType => GrpcProtocol.ContentType(wire, Settings.Codec);

        protected override HttpRequestMessage CreateRequest()
        {
            HttpRequestMessage request = Settings.CreateRequest(HttpMethod.Post, Settings.Url(Method), Version, RequestHeaders);
            HttpRequestHeaders headers = request.Headers;
            if (wire == GrpcWire.Grpc)
            {
                // Lets the server see that trailers survive the path (§2).
                headers.TryAddWithoutValidation("TE", "trailers");
            }
            else if (wire == GrpcWire.WebText)
            {
                headers.TryAddWithoutValidation("Accept", GrpcProtocol.WebTextContentType);
            }

            headers.TryAddWithoutValidation(GrpcProtocol.AcceptEncodingHeader, Settings.AcceptList);
            if (Settings.SendCompressor is { } compressor)
            {
                headers.TryAddWithoutValidation(GrpcProtocol.EncodingHeader, compressor.Name);
            }

            if (Deadline is { } deadline)
            {
                headers.TryAddWithoutValidation(GrpcProtocol.TimeoutHeader, GrpcProtocol.FormatTimeout(deadline - DateTimeOffset.UtcNow));
            }

            return request;
        }

        protected override bool FramesAsIs => wire != GrpcWire.WebText;

        protected override void WriteFrame(IBufferWriter<byte> output, EnvelopeFlags flags, ReadOnlySpan<byte> payload) =>
            GrpcProtocol.WriteFrame(output, wire, flags, payload);

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
                    _envelopes = await OpenBodyAsync(response, base64: StartReceiving(response), cancellationToken).ConfigureAwait(false);
                }

                if (await _envelopes.ReadAsync(cancellationToken).ConfigureAwait(false) is not { } frame)
                {
                    _ended = true;
                    ConnectException? status = _webResponse ? EndWithoutTrailerFrame() : EndWithHttpTrailers();
                    return status is null ? null : throw status;
                }

                if (_webResponse && (frame.Flags & EnvelopeFlags.Trailers) != 0)
                {
                    _ended = true;
                    ConnectException? status = ReadTrailerFrame(frame);
                    if (await _envelopes.ReadAsync(cancellationToken).ConfigureAwait(false) is not null)
                    {
                        throw new ConnectException(Code.Internal, "protocol error: data after the gRPC-Web trailers");
                    }

                    return status is null ? null : throw status;
                }

                if ((frame.Flags & ~EnvelopeFlags.Compressed) != 0)
                {
                    throw new ConnectException(Code.Internal, $"protocol error: invalid envelope flags 0x{(byte)frame.Flags:x2}");
                }

                bool compressed = (frame.Flags & EnvelopeFlags.Compressed) != 0;
                if (compressed && _responseCompressor is null)
                {
                    throw new ConnectException(Code.Internal, "protocol error: a response message is marked compressed but the response has no grpc-encoding");
                }

                _messageReceived = true;
                return Settings.Decode(Method.ResponseParser, frame.Payload, compressed ? _responseCompressor : null);
            }
            catch (IOException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw HttpTransportSettings.ReadFailure(ex);
            }
        }

        /// <summary>Checks the response's headers; whether its body is base64 (gRPC-Web text).</summary>
        private bool StartReceiving(HttpResponseMessage response)
        {
            _response = response;
            Headers headers = HttpTransportSettings.ReceivedHeaders(response, null, null);
            ReceivedResponseHeaders = headers;
            bool statusInHeaders = headers.ContainsKey(GrpcProtocol.StatusHeader);
            int httpStatus = (int)response.StatusCode;
            if (httpStatus != 200)
            {
                // A proxy or a server that failed before gRPC began: its grpc-status if it sent one.
                throw TryTrailersOnly(out ConnectException? status) && status is not null ? status : HttpTransportSettings.HttpStatusError(httpStatus);
            }

            string? contentType = response.Content.Headers.ContentType?.ToString();
            string expected = GrpcProtocol.ContentType(wire, Settings.Codec);
            bool typed = GrpcProtocol.TryParseContentType(contentType, out GrpcWire responseWire, out MessageCodec? codec) &&
                (responseWire == GrpcWire.Grpc) == (wire == GrpcWire.Grpc);
            if (!typed && !statusInHeaders)
            {
                throw new ConnectException(Code.Unknown, $"protocol error: the response has content type '{HeaderRules.Printable(contentType ?? "")}', not {expected}");
            }

            if (typed && codec != Settings.Codec)
            {
                throw new ConnectException(Code.Internal, $"protocol error: the response has content type '{HeaderRules.Printable(contentType!)}', not {expected}");
            }

            _webResponse = wire != GrpcWire.Grpc;
            if (headers.Get(GrpcProtocol.EncodingHeader) is { } encoding && !Compressor.IsIdentity(encoding))
            {
                _responseCompressor = Compressor.Find(encoding)
                    ?? throw new ConnectException(Code.Internal, $"protocol error: the response uses unknown compression '{HeaderRules.Printable(encoding)}'");
            }

            // A gRPC-Web text request may be answered in binary: the response's type decides.
            return typed && responseWire == GrpcWire.WebText;
        }

        /// <summary>gRPC: the body ended; the status is in the HTTP trailers, or in the headers of a trailers-only response.</summary>
        private ConnectException? EndWithHttpTrailers()
        {
            HttpResponseHeaders received = _response!.TrailingHeaders;
            if (received.NonValidated.Count == 0)
            {
                return !_messageReceived && TryTrailersOnly(out ConnectException? status)
                    ? status
                    : throw new ConnectException(Code.Internal, "protocol error: the response ended without trailers (was it cut short, or did a proxy drop them?)");
            }

            Headers trailers = Headers.CreateReceived(received.NonValidated.Count);
            foreach (KeyValuePair<string, HeaderStringValues> header in received.NonValidated)
            {
                foreach (string value in header.Value)
                {
                    trailers.AddReceived(header.Key, value);
                }
            }

            return Complete(trailers);
        }

        /// <summary>gRPC-Web without a trailer frame: only a trailers-only response may end so.</summary>
        private ConnectException? EndWithoutTrailerFrame() =>
            !_messageReceived && TryTrailersOnly(out ConnectException? status)
                ? status
                : throw new ConnectException(Code.Internal, "protocol error: the response ended without the gRPC-Web trailers");

        private ConnectException? ReadTrailerFrame(EnvelopeFrame frame)
        {
            if ((frame.Flags & ~(EnvelopeFlags.Trailers | EnvelopeFlags.Compressed)) != 0)
            {
                throw new ConnectException(Code.Internal, $"protocol error: invalid envelope flags 0x{(byte)frame.Flags:x2}");
            }

            Headers trailers = Headers.CreateReceived(4);
            if ((frame.Flags & EnvelopeFlags.Compressed) != 0 && !frame.Payload.IsEmpty)
            {
                if (_responseCompressor is null)
                {
                    throw new ConnectException(Code.Internal, "protocol error: the trailers are marked compressed but the response has no grpc-encoding");
                }

                PooledBufferWriter plain;
                try
                {
                    plain = MessageFraming.Decompress(frame.Payload, _responseCompressor, Settings.Options.MaxReceiveMessageSize);
                }
                catch (MessageDecodeException ex)
                {
                    throw new ConnectException(Code.Internal, ex.Message, ex);
                }

                using (plain)
                {
                    GrpcProtocol.ReadWebTrailers(plain.WrittenSequence, trailers);
                }
            }
            else
            {
                GrpcProtocol.ReadWebTrailers(frame.Payload, trailers);
            }

            return Complete(trailers);
        }

        /// <summary>
        /// A trailers-only response (§2): the status and trailers came as headers, so every
        /// header but the content type is a trailer. False when there is no status in the headers.
        /// </summary>
        private bool TryTrailersOnly(out ConnectException? status)
        {
            Headers headers = ReceivedResponseHeaders;
            if (!headers.ContainsKey(GrpcProtocol.StatusHeader))
            {
                status = null;
                return false;
            }

            Headers trailers = Headers.CreateReceived(headers.Count);
            foreach (KeyValuePair<string, string> header in headers)
            {
                if (!header.Key.Equals("content-type", StringComparison.OrdinalIgnoreCase))
                {
                    trailers.AddReceived(header.Key, header.Value);
                }
            }

            ReceivedResponseHeaders = Headers.CreateReceived(0);
            status = Complete(trailers);
            return true;
        }

        /// <summary>Reads the status from the trailers and exposes the rest of them.</summary>
        private ConnectException? Complete(Headers trailers)
        {
            ConnectException? status = GrpcProtocol.ReadStatus(trailers);
            // The status fields are the call's outcome, not application trailers.
            trailers.Remove(GrpcProtocol.StatusHeader);
            trailers.Remove(GrpcProtocol.MessageHeader);
            trailers.Remove(GrpcProtocol.StatusDetailsHeader);
            ReceivedResponseTrailers = trailers;
            return status;
        }
    }
}
