using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Connectrpc.Greet.V1;
using ConnectRpc.Internal;
using Google.Protobuf;
using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// Malformed requests against a real server, over every protocol: each gets the spec's HTTP
/// status and code (docs/README.md), and the server then still answers a normal call on
/// the same protocol and connection kind. The receive limit is 1 KiB so the limits are cheap
/// to reach.
/// </summary>
public sealed class HostileRequestTests(HostileRequestTests.Server fixture) : IClassFixture<HostileRequestTests.Server>, IDisposable
{
    private const string Greet = "connectrpc.greet.v1.GreetService/Greet";
    private const string GreetMany = "connectrpc.greet.v1.GreetService/GreetMany";
    private const string GreetEveryone = "connectrpc.greet.v1.GreetService/GreetEveryone";
    private const string Chat = "connectrpc.greet.v1.GreetService/Chat";
    private const int Limit = 1024;

    private readonly KestrelHost _server = fixture.Host;

    /// <summary>The server the tests of this class share.</summary>
    public sealed class Server : KestrelFixture
    {
        protected override Task<KestrelHost> StartAsync() => KestrelHost.StartAsync(options => options.MaxReceiveMessageSize = Limit);
    }
    private readonly HttpClient _http = new(new SocketsHttpHandler()) { Timeout = Bounded.Timeout };

    public void Dispose() => _http.Dispose();

    /// <summary>The wire a case speaks, which decides how its outcome is read and which normal call follows it.</summary>
    public enum Wire
    {
        ConnectUnary,
        ConnectGet,
        ConnectStream,
        Grpc,
        GrpcWeb,
        GrpcWebText,
    }

    /// <summary>
    /// One malformed request and what it must get: an HTTP status, and the RPC code (null when
    /// the rejection is HTTP-level only: 404, 405, 415, 505).
    /// </summary>
    public sealed record Hostile(Wire Wire, string Path, byte[] Body, int Status, Code? Code)
    {
        public string Method { get; init; } = "POST";

        public string? ContentType { get; init; } = DefaultContentType(Wire);

        public (string Key, string Value)[] Headers { get; init; } = [];

        public bool Http2 { get; init; } = Wire is Wire.Grpc or Wire.ConnectStream;

        private static string? DefaultContentType(Wire wire) => wire switch
        {
            Wire.ConnectUnary => "application/proto",
            Wire.ConnectGet => null,
            Wire.ConnectStream => "application/connect+proto",
            Wire.Grpc => "application/grpc",
            Wire.GrpcWeb => "application/grpc-web+proto",
            _ => "application/grpc-web-text",
        };
    }

    private static readonly byte[] s_ada = new GreetRequest { Name = "Ada" }.ToByteArray();
    private static readonly byte[] s_frame = WireBytes.Frame(s_ada);
    private static readonly byte[] s_notProto = [0x0A, 0x05, 0x41];
    private static readonly byte[] s_overLimit = new GreetRequest { Name = new string('x', Limit - 2) }.ToByteArray();

    /// <summary>16 MiB of zeros in about 16 KiB of gzip: far over the limit once inflated.</summary>
    private static readonly byte[] s_gzipBomb = WireBytes.Gzip(new byte[16 * 1024 * 1024]);

    private static readonly byte[] s_notGzip = Encoding.ASCII.GetBytes("this is not gzip data at all");

    /// <summary>A prefix declaring <paramref name="length"/> bytes, followed by <paramref name="payload"/>.</summary>
    private static byte[] Prefix(byte flags, uint length, byte[] payload)
    {
        byte[] frame = new byte[5 + payload.Length];
        frame[0] = flags;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), length);
        payload.CopyTo(frame, 5);
        return frame;
    }

    private static byte[] Ascii(string text) => Encoding.ASCII.GetBytes(text);

    private static byte[] Base64(byte[] bytes) => Ascii(Convert.ToBase64String(bytes));

    private static Hostile Unary(byte[] body, int status, Code? code) => new(Wire.ConnectUnary, Greet, body, status, code);

    private static Hostile Get(string query, int status, Code? code) => new(Wire.ConnectGet, Greet + query, [], status, code) { Method = "GET" };

    private static Hostile Stream(byte[] body, Code code, string path = GreetMany) => new(Wire.ConnectStream, path, body, 200, code);

    private static Hostile Grpc(byte[] body, Code code) => new(Wire.Grpc, Greet, body, 200, code);

    private static Hostile Web(byte[] body, Code code) => new(Wire.GrpcWeb, Greet, body, 200, code);

    private static Hostile WebText(byte[] body, Code code) => new(Wire.GrpcWebText, Greet, body, 200, code);

    private static (string, string)[] With(string key, string value) => [(key, value)];

    /// <summary>Every case by name: the names are the theory's rows.</summary>
    private static readonly Dictionary<string, Hostile> s_cases = new()
    {
        // Connect unary POST (docs/protocols/connect.md).
        ["connect-unary invalid proto"] = Unary(s_notProto, 400, Code.InvalidArgument),
        ["connect-unary invalid json"] = Unary(Ascii("{not json"), 400, Code.InvalidArgument) with { ContentType = "application/json" },
        ["connect-unary json of the wrong type"] = Unary(Ascii("{\"name\": 5}"), 400, Code.InvalidArgument) with { ContentType = "application/json" },
        ["connect-unary json array"] = Unary(Ascii("[]"), 400, Code.InvalidArgument) with { ContentType = "application/json" },
        ["connect-unary json with invalid utf-8"] = Unary([.. Ascii("{\"name\": \""), 0xC3, 0x28, .. Ascii("\"}")], 400, Code.InvalidArgument) with { ContentType = "application/json" },
        ["connect-unary one byte over the limit"] = Unary(s_overLimit, 429, Code.ResourceExhausted),
        ["connect-unary gzip bomb"] = Unary(s_gzipBomb, 429, Code.ResourceExhausted) with { Headers = With("content-encoding", "gzip") },
        ["connect-unary gzip body that is not gzip"] = Unary(s_notGzip, 400, Code.InvalidArgument) with { Headers = With("content-encoding", "gzip") },
        ["connect-unary gzip body without content-encoding"] = Unary(WireBytes.Gzip(s_ada), 400, Code.InvalidArgument),
        ["connect-unary unknown content-encoding"] = Unary(s_ada, 501, Code.Unimplemented) with { Headers = With("content-encoding", "lz4") },
        ["connect-unary protocol version 2"] = Unary(s_ada, 400, Code.InvalidArgument) with { Headers = With("connect-protocol-version", "2") },
        ["connect-unary negative timeout"] = Unary(s_ada, 400, Code.InvalidArgument) with { Headers = With("connect-timeout-ms", "-1") },
        ["connect-unary eleven-digit timeout"] = Unary(s_ada, 400, Code.InvalidArgument) with { Headers = With("connect-timeout-ms", "12345678901") },
        ["connect-unary timeout with a unit"] = Unary(s_ada, 400, Code.InvalidArgument) with { Headers = With("connect-timeout-ms", "5s") },
        ["connect-unary fractional timeout"] = Unary(s_ada, 400, Code.InvalidArgument) with { Headers = With("connect-timeout-ms", "1.5") },
        ["connect-unary invalid base64 in a -bin header"] = Unary(s_ada, 400, Code.InvalidArgument) with { Headers = With("x-echo-bin", "not*base64") },
        ["connect-unary text/plain"] = Unary(s_ada, 415, null) with { ContentType = "text/plain" },
        ["connect-unary streaming content type"] = Unary(s_ada, 415, null) with { ContentType = "application/connect+proto" },
        ["connect-unary no content type"] = Unary(s_ada, 415, null) with { ContentType = null },
        ["connect-unary PUT"] = Unary(s_ada, 405, null) with { Method = "PUT" },
        ["connect-unary path in the wrong case"] = Unary(s_ada, 404, null) with { Path = Greet.ToUpperInvariant() },
        ["connect-unary unknown method"] = Unary(s_ada, 404, null) with { Path = "connectrpc.greet.v1.GreetService/Nope" },

        // Connect unary GET (docs/protocols/connect.md).
        ["connect-get without message"] = Get("?encoding=json", 400, Code.InvalidArgument),
        ["connect-get without encoding"] = Get("?message=%7B%7D", 415, null),
        ["connect-get unknown encoding"] = Get("?encoding=xml&message=%7B%7D", 415, null),
        ["connect-get bad base64"] = Get("?encoding=proto&base64=1&message=***", 400, Code.InvalidArgument),
        ["connect-get base64 of invalid proto"] = Get("?encoding=proto&base64=1&message=CgVB", 400, Code.InvalidArgument),
        ["connect-get invalid json"] = Get("?encoding=json&message=%7Bnope", 400, Code.InvalidArgument),
        ["connect-get connect=v2"] = Get("?encoding=json&connect=v2&message=%7B%7D", 400, Code.InvalidArgument),
        ["connect-get unknown compression"] = Get("?encoding=json&compression=lz4&message=%7B%7D", 501, Code.Unimplemented),
        ["connect-get gzip that is not gzip"] = Get("?encoding=proto&base64=1&compression=gzip&message=bm90IGd6aXA", 400, Code.InvalidArgument),
        ["connect-get on a streaming method"] = new Hostile(Wire.ConnectGet, GreetMany + "?encoding=json&message=%7B%7D", [], 405, null) { Method = "GET" },

        // Connect streaming (docs/wire/framing.md).
        ["connect-stream truncated prefix"] = Stream(s_frame[..3], Code.InvalidArgument),
        ["connect-stream length prefix longer than the body"] = Stream(Prefix(0, 100, s_ada), Code.InvalidArgument),
        ["connect-stream length prefix over the limit"] = Stream(Prefix(0, Limit + 1, s_ada), Code.ResourceExhausted),
        ["connect-stream length prefix of 4 GiB"] = Stream(Prefix(0, uint.MaxValue, s_ada), Code.ResourceExhausted),
        ["connect-stream reserved flag bit"] = Stream(WireBytes.Frame(s_ada, 0x04), Code.InvalidArgument),
        ["connect-stream end-stream flag on a request"] = Stream(WireBytes.Frame(s_ada, 0x02), Code.InvalidArgument),
        ["connect-stream compressed flag under identity"] = Stream(WireBytes.Frame(s_ada, 0x01), Code.Internal),
        ["connect-stream unknown encoding"] = Stream(s_frame, Code.Unimplemented) with { Headers = With("connect-content-encoding", "lz4") },
        ["connect-stream gzip bomb"] = Stream(WireBytes.Frame(s_gzipBomb, 0x01), Code.ResourceExhausted) with { Headers = With("connect-content-encoding", "gzip") },
        ["connect-stream no message on server streaming"] = Stream([], Code.Unimplemented),
        ["connect-stream two messages on server streaming"] = Stream([.. s_frame, .. s_frame], Code.Unimplemented),
        ["connect-stream invalid proto"] = Stream(WireBytes.Frame(s_notProto), Code.InvalidArgument),
        ["connect-stream invalid json"] = Stream(WireBytes.Frame(Ascii("{\"name\":")), Code.InvalidArgument) with { ContentType = "application/connect+json" },
        ["connect-stream bad timeout"] = Stream(s_frame, Code.InvalidArgument) with { Headers = With("connect-timeout-ms", "soon") },
        ["connect-stream client stream truncated"] = Stream([.. s_frame, .. s_frame[..7]], Code.InvalidArgument, GreetEveryone),
        ["connect-stream bidi truncated over http/1.1"] = Stream([.. s_frame, .. s_frame[..^1]], Code.InvalidArgument, Chat) with { Http2 = false },
        ["connect-stream two messages over http/1.1"] = Stream([.. s_frame, .. s_frame], Code.Unimplemented) with { Http2 = false },
        ["connect-stream truncated over http/1.1"] = Stream(s_frame[..^1], Code.InvalidArgument) with { Http2 = false },
        ["connect-stream unary content type"] = new Hostile(Wire.ConnectStream, GreetMany, s_frame, 415, null) { ContentType = "application/proto" },

        // gRPC (docs/protocols/grpc.md).
        ["grpc no message on unary"] = Grpc([], Code.Unimplemented),
        ["grpc two messages on unary"] = Grpc([.. s_frame, .. s_frame], Code.Unimplemented),
        ["grpc truncated prefix"] = Grpc(s_frame[..4], Code.InvalidArgument),
        ["grpc length prefix longer than the body"] = Grpc(Prefix(0, 64, s_ada), Code.InvalidArgument),
        ["grpc length prefix over the limit"] = Grpc(Prefix(0, Limit + 1, []), Code.ResourceExhausted),
        ["grpc compressed flag under identity"] = Grpc(WireBytes.Frame(s_ada, 0x01), Code.Internal),
        ["grpc trailer flag on a request"] = Grpc(WireBytes.Frame(s_ada, 0x80), Code.InvalidArgument),
        ["grpc unknown encoding"] = Grpc(s_frame, Code.Unimplemented) with { Headers = With("grpc-encoding", "snappy") },
        ["grpc gzip bomb"] = Grpc(WireBytes.Frame(s_gzipBomb, 0x01), Code.ResourceExhausted) with { Headers = With("grpc-encoding", "gzip") },
        ["grpc gzip flag on data that is not gzip"] = Grpc(WireBytes.Frame(s_notGzip, 0x01), Code.InvalidArgument) with { Headers = With("grpc-encoding", "gzip") },
        ["grpc timeout with an unknown unit"] = Grpc(s_frame, Code.InvalidArgument) with { Headers = With("grpc-timeout", "1x") },
        ["grpc timeout of nine digits"] = Grpc(s_frame, Code.InvalidArgument) with { Headers = With("grpc-timeout", "123456789S") },
        ["grpc negative timeout"] = Grpc(s_frame, Code.InvalidArgument) with { Headers = With("grpc-timeout", "-1S") },
        ["grpc timeout without a unit"] = Grpc(s_frame, Code.InvalidArgument) with { Headers = With("grpc-timeout", "100") },
        ["grpc invalid proto"] = Grpc(WireBytes.Frame(s_notProto), Code.InvalidArgument),
        ["grpc invalid json"] = Grpc(WireBytes.Frame(Ascii("{]")), Code.InvalidArgument) with { ContentType = "application/grpc+json" },
        ["grpc invalid base64 in a -bin header"] = Grpc(s_frame, Code.InvalidArgument) with { Headers = With("x-echo-bin", "a") },
        ["grpc +xml"] = new Hostile(Wire.Grpc, Greet, s_frame, 415, null) { ContentType = "application/grpc+xml" },
        ["grpc over http/1.1"] = new Hostile(Wire.Grpc, Greet, s_frame, 505, null) { Http2 = false },
        ["grpc bidi over http/1.1"] = new Hostile(Wire.Grpc, Chat, s_frame, 505, null) { Http2 = false },
        ["grpc GET"] = new Hostile(Wire.Grpc, Greet, s_frame, 405, null) { Method = "GET" },

        // gRPC-Web, binary and text (docs/protocols/grpc-web.md).
        ["grpc-web truncated payload"] = Web(s_frame[..^1], Code.InvalidArgument),
        ["grpc-web trailer flag on a request"] = Web(WireBytes.Frame(Ascii("grpc-status: 0\r\n"), 0x80), Code.InvalidArgument),
        ["grpc-web over the limit"] = Web(WireBytes.Frame(s_overLimit), Code.ResourceExhausted),
        ["grpc-web two messages on unary"] = Web([.. s_frame, .. s_frame], Code.Unimplemented),
        ["grpc-web two messages over http/2"] = Web([.. s_frame, .. s_frame], Code.Unimplemented) with { Http2 = true },
        ["grpc-web bad timeout"] = Web(s_frame, Code.InvalidArgument) with { Headers = With("grpc-timeout", "1 S") },
        ["grpc-web-text invalid base64"] = WebText(Ascii("AAAA*AAA"), Code.InvalidArgument),
        ["grpc-web-text base64 of a truncated frame"] = WebText(Base64(s_frame[..^2]), Code.InvalidArgument),
        ["grpc-web-text base64 cut mid-group"] = WebText(Base64(s_frame)[..^1], Code.InvalidArgument),
        ["grpc-web-text binary body"] = WebText(s_frame, Code.InvalidArgument),
        ["grpc-web-text json"] = new Hostile(Wire.GrpcWebText, Greet, s_frame, 415, null) { ContentType = "application/grpc-web-text+json" },
    };

    public static TheoryData<string> Cases() => [.. s_cases.Keys];

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task MalformedRequest_SpecCodeThenServerStillServes(string name)
    {
        Hostile hostile = s_cases[name];
        using HttpRequestMessage request = WireBytes.Request(
            new HttpMethod(hostile.Method),
            (hostile.Http2 ? _server.Http2Url : _server.Http1Url) + hostile.Path,
            hostile.Http2,
            hostile.Wire == Wire.ConnectGet ? null : hostile.Body,
            hostile.ContentType,
            hostile.Headers);
        using HttpResponseMessage response = await _http.SendAsync(request, Bounded.Token).Within();
        byte[] body = await response.Content.ReadAsByteArrayAsync(Bounded.Token).Within();
        Assert.Equal(hostile.Status, (int)response.StatusCode);
        Assert.Equal(hostile.Code, ReadCode(response, body));

        await AssertServesAsync(hostile.Wire, hostile.Http2);
    }

    [Theory]
    [InlineData(Wire.ConnectUnary, "connect-timeout-ms", "300")]
    [InlineData(Wire.Grpc, "grpc-timeout", "300m")]
    public async Task UnaryBodyStalls_DeadlineEndsTheCall(Wire wire, string timeoutHeader, string timeout)
    {
        // Half a request, then nothing: the call's deadline bounds the wait for the rest.
        byte[] whole = wire == Wire.Grpc ? s_frame : s_ada;
        var request = new HttpRequestMessage(HttpMethod.Post, _server.Http2Url + Greet)
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new StallingContent(whole[..(whole.Length / 2)], wire == Wire.Grpc ? "application/grpc" : "application/proto", whole.Length),
        };
        request.Headers.TryAddWithoutValidation(timeoutHeader, timeout);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using HttpResponseMessage response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Bounded.Token).Within();
        byte[] body = await response.Content.ReadAsByteArrayAsync(Bounded.Token).Within();
        Assert.Equal(Code.DeadlineExceeded, ReadCode(response, body));
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(5));
        await AssertServesAsync(wire, http2: true);
    }

    [Fact]
    public async Task ClientStreamIdle_LongerThanKestrelsDataRateGrace_NotCut()
    {
        // Kestrel's minimum request data rate (240 B/s after a 5 s grace) would end an idle
        // request body; a stream may idle legitimately, so streaming calls are exempt.
        static async IAsyncEnumerable<GreetRequest> SlowNames()
        {
            yield return new GreetRequest { Name = "a" };
            await Task.Delay(TimeSpan.FromSeconds(7), Bounded.Token);
            yield return new GreetRequest { Name = "b" };
        }

        GreetServiceClient client = _server.Client(http2: true);
        GreetResponse response = await client.GreetEveryoneAsync(SlowNames(), cancellationToken: Bounded.Token)
            .WaitAsync(TimeSpan.FromSeconds(20), Bounded.Token);
        Assert.Equal("Hello, a, b!", response.Greeting);
    }

    public static TheoryData<string, string, int> RawHttp1Requests() => new()
    {
        // Kestrel answers most of these before any Connect code runs; the test pins what a client gets.
        { "CR in a header value", $"POST /{Greet} HTTP/1.1\r\nHost: x\r\nContent-Type: application/proto\r\nx-bad: a\rb\r\nContent-Length: 0\r\n\r\n", 400 },
        { "space in a header name", $"POST /{Greet} HTTP/1.1\r\nHost: x\r\nContent-Type: application/proto\r\nx bad: 1\r\nContent-Length: 0\r\n\r\n", 400 },
        { "headers over 32 KiB", $"POST /{Greet} HTTP/1.1\r\nHost: x\r\nContent-Type: application/proto\r\nx-big: {new string('a', 33 * 1024)}\r\nContent-Length: 0\r\n\r\n", 431 },
        { "request line over 8 KiB", $"POST /{Greet}?{new string('a', 9 * 1024)} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 414 },
        { "two content lengths", $"POST /{Greet} HTTP/1.1\r\nHost: x\r\nContent-Type: application/proto\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400 },
        { "bad chunked framing", $"POST /{Greet} HTTP/1.1\r\nHost: x\r\nContent-Type: application/proto\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400 },
        // The body never completes: the call's deadline ends the wait with deadline_exceeded.
        { "body shorter than its content-length", $"POST /{Greet} HTTP/1.1\r\nHost: x\r\nContent-Type: application/proto\r\nConnect-Timeout-Ms: 300\r\nContent-Length: 100\r\n\r\nabc", 504 },
        // Without a deadline, Kestrel's minimum request body data rate (240 B/s after a 5 s grace)
        // ends a unary body that stalls: deadline_exceeded too.
        { "body stalls without a deadline", $"POST /{Greet} HTTP/1.1\r\nHost: x\r\nContent-Type: application/proto\r\nContent-Length: 100\r\n\r\nabc", 504 },
    };

    [Theory]
    [MemberData(nameof(RawHttp1Requests))]
    public async Task RawHttp1_MalformedHttp_StatusThenServerStillServes(string description, string raw, int status)
    {
        string head = await RawHttp1Async(raw, halfClose: false);
        Assert.True(head.StartsWith($"HTTP/1.1 {status} ", StringComparison.Ordinal), $"{description}: {head}");
        await AssertServesAsync(Wire.ConnectUnary, http2: false);
    }

    [Fact]
    public async Task RawHttp1_ClientClosesMidBody_NoErrorAndServerStillServes()
    {
        // A client that vanishes halfway through its request gets nothing, and costs nothing.
        _ = await RawHttp1Async($"POST /{Greet} HTTP/1.1\r\nHost: x\r\nContent-Type: application/proto\r\nContent-Length: 100\r\n\r\nabc", halfClose: true);
        await AssertServesAsync(Wire.ConnectUnary, http2: false);
    }

    /// <summary>Sends raw bytes on a new HTTP/1.1 connection and returns the response's status line and headers.</summary>
    private async Task<string> RawHttp1Async(string raw, bool halfClose)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _server.Http1Url.Port), Bounded.Token).Within();
        await socket.SendAsync(Encoding.Latin1.GetBytes(raw), Bounded.Token).Within();
        if (halfClose)
        {
            socket.Shutdown(SocketShutdown.Send);
        }

        var received = new StringBuilder();
        byte[] buffer = new byte[4096];
        int read;
        try
        {
            while (!received.ToString().Contains("\r\n\r\n", StringComparison.Ordinal) &&
                (read = await socket.ReceiveAsync(buffer, Bounded.Token).Within()) > 0)
            {
                received.Append(Encoding.Latin1.GetString(buffer, 0, read));
            }
        }
        catch (SocketException) when (halfClose)
        {
            // The server may reset a connection whose request can never complete.
        }

        return received.ToString();
    }

    /// <summary>A request body that sends its first bytes, then nothing until the request is abandoned.</summary>
    private sealed class StallingContent : HttpContent
    {
        private readonly byte[] _start;

        public StallingContent(byte[] start, string contentType, long declaredLength)
        {
            _start = start;
            Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
            Headers.ContentLength = declaredLength;
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            await stream.WriteAsync(_start, cancellationToken);
            await stream.FlushAsync(cancellationToken);
            await Task.Delay(Timeout.Infinite, cancellationToken).WaitAsync(Bounded.Timeout, Bounded.Token);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = Headers.ContentLength ?? -1;
            return length >= 0;
        }
    }

    /// <summary>The RPC code of a response in whichever form its protocol carries it, or null for none.</summary>
    private static Code? ReadCode(HttpResponseMessage response, byte[] body)
    {
        string mediaType = response.Content.Headers.ContentType?.MediaType ?? "";
        if (mediaType.StartsWith("application/grpc", StringComparison.Ordinal))
        {
            if (mediaType.StartsWith("application/grpc-web-text", StringComparison.Ordinal))
            {
                body = Convert.FromBase64String(Encoding.ASCII.GetString(body));
            }

            string? status = Value(response.TrailingHeaders, "grpc-status") ?? Value(response.Headers, "grpc-status");
            if (status is null && WireBytes.Frames(body) is [.., (0x80, byte[] block)])
            {
                status = Encoding.ASCII.GetString(block).Split("\r\n").Single(line => line.StartsWith("grpc-status:", StringComparison.Ordinal))[12..].Trim();
            }

            Assert.NotNull(status);
            return status == "0" ? null : (Code)int.Parse(status, System.Globalization.CultureInfo.InvariantCulture);
        }

        if (mediaType.StartsWith("application/connect+", StringComparison.Ordinal))
        {
            (byte flags, byte[] payload) = WireBytes.Frames(body)[^1];
            Assert.Equal(0x02, flags);
            return JsonDocument.Parse(payload).RootElement.TryGetProperty("error", out JsonElement streamError) ? WireCode(streamError) : null;
        }

        return mediaType == "application/json" && response.StatusCode != HttpStatusCode.OK
            ? WireCode(JsonDocument.Parse(body).RootElement)
            : null;
    }

    private static Code WireCode(JsonElement error)
    {
        Assert.True(CodeMapping.TryParseWireName(error.GetProperty("code").GetString()!, out Code code));
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()), "an error carries a message");
        return code;
    }

    private static string? Value(HttpHeaders headers, string key) =>
        headers.TryGetValues(key, out IEnumerable<string>? values) ? string.Join(", ", values) : null;

    /// <summary>A normal call on the same protocol and HTTP version succeeds.</summary>
    private async Task AssertServesAsync(Wire wire, bool http2)
    {
        var options = new ConnectClientOptions
        {
            Protocol = wire switch
            {
                Wire.Grpc => Protocol.Grpc,
                Wire.GrpcWeb => Protocol.GrpcWeb,
                Wire.GrpcWebText => Protocol.GrpcWebText,
                _ => Protocol.Connect,
            },
            UseHttpGet = wire == Wire.ConnectGet,
        };
        GreetServiceClient client = _server.Client(http2 || wire == Wire.Grpc, options);
        GreetResponse response = await client.GreetAsync(new GreetRequest { Name = "after" }, cancellationToken: Bounded.Token).Within();
        Assert.Equal("Hello, after!", response.Greeting);
        Assert.True(!_server.Logs.Any(log => log.StartsWith("Error", StringComparison.Ordinal)), string.Join("\n", _server.Logs));
    }
}
