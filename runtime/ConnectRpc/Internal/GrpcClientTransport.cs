using System.Buffers;
using System.IO.Pipelines;
using System.Net.Http.Headers;
using Google.Protobuf;

namespace ConnectRpc.Internal;

/// <summary>gRPC and gRPC-Web (binary or text) on the client side (docs/protocols/grpc.md, docs/protocols/grpc-web.md).</summary>
internal sealed class GrpcClientTransport(HttpTransportSettings settings, GrpcWire wire) : IClientTransport
{
    /// <summary><c>grpc-timeout</c> (docs/wire/timeouts.md).</summary>
    private static readonly TimeoutHeader s_timeout = new(GrpcProtocol.TimeoutHeader, GrpcProtocol.FormatTimeout);

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
        protected override string RequestContentType => GrpcProtocol.ContentType(wire, Settings.Codec);

        protected override string ResponseEncodingHeader => GrpcProtocol.EncodingHeader;

        /// <summary>gRPC-Web ends with a trailer frame; gRPC with HTTP trailers, and no end frame at all.</summary>
        protected override EnvelopeFlags EndFlag => wire == GrpcWire.Grpc ? EnvelopeFlags.None : EnvelopeFlags.Trailers;

        protected override string EndName => "the gRPC-Web trailers";

        protected override HttpRequestMessage CreateRequest()
        {
            HttpRequestMessage request = Settings.CreateRequest(HttpMethod.Post, Settings.Url(Method), Version, RequestHeaders, Lifetime, s_timeout);
            HttpRequestHeaders headers = request.Headers;
            if (wire == GrpcWire.Grpc)
            {
                // Lets the server see that trailers survive the path (docs/protocols/grpc.md#requests).
                headers.TryAddWithoutValidation("TE", "trailers");
            }
            else if (wire == GrpcWire.WebText)
            {
                headers.TryAddWithoutValidation("Accept", GrpcProtocol.WebTextContentType);
            }

            headers.TryAddWithoutValidation(GrpcProtocol.AcceptEncodingHeader, Settings.Compressors.AcceptHeader);
            if (Settings.SendCompressor is { } compressor)
            {
                headers.TryAddWithoutValidation(GrpcProtocol.EncodingHeader, compressor.Name);
            }

            return request;
        }

        protected override bool FramesAsIs => wire != GrpcWire.WebText;

        protected override void WriteFrame(IBufferWriter<byte> output, EnvelopeFlags flags, ReadOnlySpan<byte> payload) =>
            GrpcProtocol.WriteFrame(output, wire, flags, payload);

        /// <summary>Checks the response's headers; whether its body is base64 (gRPC-Web text).</summary>
        protected override bool StartReceiving(HttpResponseMessage response)
        {
            Headers headers = ReceivedResponseHeaders;
            bool statusInHeaders = headers.ContainsKey(GrpcProtocol.StatusHeader);
            int httpStatus = (int)response.StatusCode;
            if (httpStatus != 200)
            {
                // A proxy or a server that failed before gRPC began: its grpc-status if it sent one.
                throw TryTrailersOnly(out ConnectException? status) && status is not null ? status : HttpFailures.FromStatus(httpStatus);
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

            // A gRPC-Web text request may be answered in binary: the response's type decides.
            return typed && responseWire == GrpcWire.WebText;
        }

        protected override ConnectException? EndOfBody(HttpResponseMessage response) =>
            wire == GrpcWire.Grpc ? EndWithHttpTrailers(response) : EndWithoutTrailerFrame();

        /// <summary>gRPC: the body ended; the status is in the HTTP trailers, or in the headers of a trailers-only response.</summary>
        private ConnectException? EndWithHttpTrailers(HttpResponseMessage response)
        {
            HttpResponseHeaders received = response.TrailingHeaders;
            if (received.NonValidated.Count == 0)
            {
                return !MessageReceived && TryTrailersOnly(out ConnectException? status)
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
            !MessageReceived && TryTrailersOnly(out ConnectException? status)
                ? status
                : throw new ConnectException(Code.Internal, "protocol error: the response ended without the gRPC-Web trailers");

        /// <summary>The gRPC-Web trailer frame (docs/protocols/grpc-web.md): the trailers, and the status among them.</summary>
        protected override ConnectException? ReadEnd(ReadOnlySequence<byte> payload)
        {
            Headers trailers = Headers.CreateReceived(4);
            GrpcProtocol.ReadWebTrailers(payload, trailers);
            return Complete(trailers);
        }

        /// <summary>
        /// A trailers-only response (docs/protocols/grpc.md#trailers-only): the status and trailers came as headers, so every
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
