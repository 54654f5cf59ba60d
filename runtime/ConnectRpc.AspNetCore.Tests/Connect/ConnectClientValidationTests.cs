using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using Connectrpc.Greet.V1;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// Our Connect client against a raw Kestrel server that answers with hand-made, mostly broken
/// responses (docs/protocols/connect.md#client-validation, docs/wire/errors.md, docs/wire/compression.md, docs/wire/framing.md): the code each one gets, stalled
/// bodies ending by deadline or cancellation, compression bombs kept within the receive limit,
/// and no request or connection left behind.
/// </summary>
public sealed class ConnectClientValidationTests : IClassFixture<RawServer>
{
    private const string Proto = "application/proto";
    private const string Json = "application/json";
    private const string StreamProto = "application/connect+proto";

    /// <summary>A 64 MiB compression bomb (about 64 KiB of gzip), made once.</summary>
    private static readonly Lazy<byte[]> s_bomb = new(() => WireBytes.GzipZeros(64));

    private static readonly byte[] s_hello = new GreetResponse { Greeting = "Hello" }.ToByteArray();

    private readonly ConcurrentDictionary<string, Reply> _replies = new();
    private readonly KestrelHost _server;
    private int _nextReply;
    private int _started;
    private int _finished;

    /// <summary>The class shares one raw server; each test answers its requests with its own replies and counts.</summary>
    public ConnectClientValidationTests(RawServer fixture)
    {
        fixture.Respond = RespondAsync;
        _server = fixture.Host;
    }

    private enum Stall
    {
        None,

        /// <summary>The handler never sends the response headers.</summary>
        BeforeHeaders,

        /// <summary>The headers and the body so far are flushed, then nothing more.</summary>
        AfterBody,
    }

    /// <summary>What the server answers: status, content type, encoding header, body bytes.</summary>
    private sealed record Reply(int Status, string? ContentType, byte[] Body, string? Encoding = null)
    {
        public Stall Stall { get; init; }

        /// <summary>Whether the server reads the request body before answering.</summary>
        public bool ReadRequest { get; init; } = true;

        /// <summary>Whether the body goes without a Content-Length (chunked over HTTP/1.1).</summary>
        public bool Chunked { get; init; }
    }

    /// <summary>Answers with the <see cref="Reply"/> the request names, counting handlers started and returned.</summary>
    private async Task RespondAsync(HttpContext http)
    {
        Interlocked.Increment(ref _started);
        try
        {
            Reply reply = _replies[http.Request.Headers["x-reply"].ToString()];
            if (reply.ReadRequest)
            {
                await http.Request.Body.CopyToAsync(Stream.Null, http.RequestAborted);
            }

            HttpResponse response = http.Response;
            response.StatusCode = reply.Status;
            if (reply.ContentType is not null)
            {
                response.ContentType = reply.ContentType;
            }

            if (reply.Encoding is not null)
            {
                bool streaming = http.Request.ContentType?.StartsWith("application/connect+", StringComparison.Ordinal) == true;
                response.Headers[streaming ? "connect-content-encoding" : "content-encoding"] = reply.Encoding;
            }

            if (reply.Stall == Stall.BeforeHeaders)
            {
                await Task.Delay(Timeout.Infinite, http.RequestAborted);
            }

            if (reply.Stall == Stall.None && !reply.Chunked)
            {
                response.ContentLength = reply.Body.Length;
            }

            await response.Body.WriteAsync(reply.Body, http.RequestAborted);
            if (reply.Stall == Stall.AfterBody)
            {
                await response.Body.FlushAsync(http.RequestAborted);
                await Task.Delay(Timeout.Infinite, http.RequestAborted);
            }
        }
        finally
        {
            Interlocked.Increment(ref _finished);
        }
    }

    /// <summary>The request headers that make the server answer with <paramref name="reply"/>.</summary>
    private Headers Answer(Reply reply)
    {
        string id = Interlocked.Increment(ref _nextReply).ToString(System.Globalization.CultureInfo.InvariantCulture);
        _replies[id] = reply;
        return new Headers { ["x-reply"] = id };
    }

    private GreetServiceClient Client(bool http2, int maxReceive = ConnectClientOptions.DefaultMaxReceiveMessageSize) =>
        new((http2 ? _server.Http2Url : _server.Http1Url).ToString(), new ConnectClientOptions
        {
            HttpVersion = http2 ? HttpVersion.Version20 : HttpVersion.Version11,
            MaxReceiveMessageSize = maxReceive,
        });

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    private static byte[] Message(string greeting) => WireBytes.Frame(new GreetResponse { Greeting = greeting }.ToByteArray());

    private static byte[] End(string json, byte flags = 2) => WireBytes.Frame(Utf8(json), flags);

    private static Reply StreamReply(params byte[][] frames) => new(200, StreamProto, [.. frames.SelectMany(f => f)]);

    private static async IAsyncEnumerable<GreetRequest> Requests(bool endless, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await Task.Yield();
        yield return new GreetRequest { Name = "a" };
        if (endless)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
    }

    private async Task<Code> UnaryCode(Reply reply, bool http2, int maxReceive = ConnectClientOptions.DefaultMaxReceiveMessageSize)
    {
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(http2, maxReceive).GreetAsync(new GreetRequest(), Answer(reply)).Within());
        return error.Code;
    }

    private async Task<Code> ServerStreamCode(Reply reply, bool http2, int maxReceive = ConnectClientOptions.DefaultMaxReceiveMessageSize)
    {
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(http2, maxReceive).GreetManyAsync(new GreetRequest(), Answer(reply)).ToListWithin());
        return error.Code;
    }

    private async Task<Code> ClientStreamCode(Reply reply, bool http2)
    {
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(http2).GreetEveryoneAsync(Requests(endless: false), Answer(reply)).Within());
        return error.Code;
    }

    // ---- Unary, non-200: the JSON error when usable, else the HTTP status (docs/protocols/connect.md, docs/wire/errors.md).

    [Theory]
    [InlineData(409, Json, """{"code":"aborted","message":"m"}""", Code.Aborted)]
    [InlineData(500, Json, """{"code":"not_found"}""", Code.NotFound)]
    [InlineData(502, "application/json; charset=utf-8", """{"code":"data_loss","debug":{"x":1},"extra":2}""", Code.DataLoss)]
    [InlineData(429, Json, "not json", Code.Unavailable)]
    [InlineData(400, Json, """{"message":"no code"}""", Code.Internal)]
    [InlineData(401, Json, """{"code":null}""", Code.Unauthenticated)]
    [InlineData(403, Json, """{"code":"bogus"}""", Code.PermissionDenied)]
    [InlineData(404, Json, """{"code":7}""", Code.Unimplemented)]
    [InlineData(503, Json, "null", Code.Unavailable)]
    [InlineData(504, Json, "[]", Code.Unavailable)]
    [InlineData(409, Json, "", Code.Unknown)]
    [InlineData(403, Proto, """{"code":"aborted"}""", Code.PermissionDenied)]
    [InlineData(400, "text/plain", """{"code":"aborted"}""", Code.Internal)]
    [InlineData(401, "text/html", "<html/>", Code.Unauthenticated)]
    [InlineData(403, "text/html", "<html/>", Code.PermissionDenied)]
    [InlineData(404, "text/html", "<html/>", Code.Unimplemented)]
    [InlineData(429, "text/html", "<html/>", Code.Unavailable)]
    [InlineData(502, "text/html", "<html/>", Code.Unavailable)]
    [InlineData(503, null, "", Code.Unavailable)]
    [InlineData(504, "text/html", "<html/>", Code.Unavailable)]
    [InlineData(409, "text/html", "<html/>", Code.Unknown)]
    [InlineData(415, "text/html", "<html/>", Code.Unknown)]
    [InlineData(431, "text/html", "<html/>", Code.Unknown)]
    [InlineData(500, "text/html", "<html/>", Code.Unknown)]
    [InlineData(418, null, "", Code.Unknown)]
    [InlineData(505, null, "", Code.Unknown)]
    [InlineData(800, null, "", Code.Unknown)]
    public async Task Unary_NonOk_CodeFromJsonBodyElseHttpStatus(int status, string? contentType, string body, Code code)
    {
        var reply = new Reply(status, contentType, Utf8(body));
        Assert.Equal(code, await UnaryCode(reply, http2: false));
        Assert.Equal(code, await UnaryCode(reply, http2: true));
    }

    [Theory]
    [InlineData(401, """{ "code": null, "message": "oops" }""", Code.Unauthenticated)]
    [InlineData(401, """{ "message": "oops" }""", Code.Unauthenticated)]
    [InlineData(429, """{ "code": "foobar", "message": "oops" }""", Code.Unavailable)]
    [InlineData(422, """{ "code": "out_of_range", "message": "oops", "foobar": "baz" }""", Code.OutOfRange)]
    public async Task Unary_NonOkJsonWithMessage_MessageKeptWhateverTheCode(int status, string body, Code code)
    {
        // As conformance's connect_client_error_endstream suite expects.
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(http2: false).GreetAsync(new GreetRequest(), Answer(new Reply(status, Json, Utf8(body)))).Within());
        Assert.Equal((code, "oops"), (error.Code, error.Message));
    }

    [Theory]
    [InlineData("""{ "error": { "code": null, "message": "oops" } }""")]
    [InlineData("""{ "error": { "message": "oops" } }""")]
    [InlineData("""{ "error": { "code": "foobar", "message": "oops" } }""")]
    public async Task Stream_EndStreamErrorWithoutKnownCode_UnknownMessageKept(string end)
    {
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(http2: false).GreetManyAsync(new GreetRequest(), Answer(StreamReply(End(end)))).ToListWithin());
        Assert.Equal((Code.Unknown, "oops"), (error.Code, error.Message));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task GzipErrorBodyOrEndStream_DecompressedWithDetails(bool streaming)
    {
        // Conformance's connect_client_compressed_error_endstream cases (docs/wire/compression.md#what-may-be-compressed).
        string json = """
            {"code": "out_of_range", "message": "oops", "foobar": "baz",
             "details": [{"type": "google.protobuf.FileDescriptorProto", "value": "Cgp0ZXN0LnByb3Rv", "debug": {"name": "test.proto"}}]}
            """;
        GreetServiceClient client = Client(http2: false);
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => streaming
            ? client.GreetManyAsync(new GreetRequest(), Answer(new Reply(200, StreamProto, WireBytes.Frame(WireBytes.Gzip(Utf8($$"""{"error": {{json}}}""")), 3), "gzip"))).ToListWithin()
            : client.GreetAsync(new GreetRequest(), Answer(new Reply(422, Json, WireBytes.Gzip(Utf8(json)), "gzip"))).Within());
        Assert.Equal((Code.OutOfRange, "oops"), (error.Code, error.Message));
        Assert.Equal("test.proto", error.GetDetail<Google.Protobuf.Reflection.FileDescriptorProto>()?.Name);
    }

    [Theory]
    [InlineData("corrupt-gzip")]
    [InlineData("bomb")]
    public async Task Unary_NonOkUnusableCompressedBody_HttpStatus(string body)
    {
        byte[] bytes = body == "bomb" ? s_bomb.Value : Utf8("not gzip at all");
        Assert.Equal(Code.Unavailable, await UnaryCode(new Reply(503, Json, bytes, "gzip"), http2: false));
    }

    [Fact]
    public async Task Unary_NonOkErrorBodyInflatingPastTheReceiveLimit_HttpStatus()
    {
        // A 2 KiB error message in about 60 bytes of gzip: under the limit compressed, over it inflated.
        byte[] json = Utf8($$"""{"code": "internal", "message": "{{new string('x', 2048)}}"}""");
        var reply = new Reply(503, Json, WireBytes.Gzip(json), "gzip");
        Assert.Equal(Code.Internal, await UnaryCode(reply, http2: false));
        Assert.Equal(Code.Unavailable, await UnaryCode(reply, http2: false, maxReceive: 1024));
    }

    [Theory]
    [InlineData("text/html")]
    [InlineData(Json)]
    public async Task Unary_NonOkBodyOverTheReceiveLimit_HttpStatus(string contentType)
    {
        // A proxy's large error page, or an error too large to read: the HTTP status tells what it can.
        var reply = new Reply(502, contentType, new byte[4096]) { Chunked = true };
        Assert.Equal(Code.Unavailable, await UnaryCode(reply, http2: false, maxReceive: 1024));
        Assert.Equal(Code.Unavailable, await UnaryCode(reply with { Chunked = false }, http2: true, maxReceive: 1024));
    }

    // ---- Unary, 200: content type, codec, encoding, body (docs/protocols/connect.md, docs/wire/compression.md, docs/wire/limits.md).

    private static Reply UnaryOk(string scenario) => scenario switch
    {
        "text-plain" => new(200, "text/plain", s_hello),
        "no-content-type" => new(200, null, s_hello),
        "json-codec" => new(200, Json, Utf8("""{"greeting":"Hello"}""")),
        "stream-content-type" => new(200, StreamProto, s_hello),
        "unknown-encoding" => new(200, Proto, s_hello, "snappy"),
        "not-gzip" => new(200, Proto, Utf8("plain text"), "gzip"),
        "gzip-bad-crc" => new(200, Proto, BadCrc(WireBytes.Gzip(s_hello)), "gzip"),
        "gzip-cut-short" => new(200, Proto, WireBytes.Gzip(s_hello)[..12], "gzip"),
        "gzip-of-garbage" => new(200, Proto, WireBytes.Gzip([0xff, 0xff, 0xff]), "gzip"),
        "bad-proto" => new(200, Proto, [0xff, 0xff, 0xff]),
        _ => throw new ArgumentOutOfRangeException(nameof(scenario)),
    };

    /// <summary>A gzip member whose CRC-32 (the trailer's first four bytes) is wrong.</summary>
    private static byte[] BadCrc(byte[] gzip)
    {
        gzip[^8] ^= 0xff;
        return gzip;
    }

    [Theory]
    [InlineData("text-plain", Code.Unknown)]
    [InlineData("no-content-type", Code.Unknown)]
    [InlineData("json-codec", Code.Internal)]
    [InlineData("stream-content-type", Code.Internal)]
    [InlineData("unknown-encoding", Code.Internal)]
    [InlineData("not-gzip", Code.Internal)]
    [InlineData("gzip-bad-crc", Code.Internal)]
    [InlineData("gzip-cut-short", Code.Internal)]
    [InlineData("gzip-of-garbage", Code.Internal)]
    [InlineData("bad-proto", Code.Internal)]
    public async Task Unary_OkMalformed_CodeOfTheSpec(string scenario, Code code)
    {
        Assert.Equal(code, await UnaryCode(UnaryOk(scenario), http2: false));
        Assert.Equal(code, await UnaryCode(UnaryOk(scenario), http2: true));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("gzip")]
    public async Task EmptyBodyOrFrame_AnEmptyMessageNeverDecompressed(string? encoding)
    {
        // Conformance's connect_client_empty cases (docs/wire/framing.md#empty-messages), also under gzip (docs/wire/compression.md).
        using var meta = new ResponseMetadata();
        GreetServiceClient client = Client(http2: false);
        GreetResponse unary = await client.GreetAsync(new GreetRequest(), Answer(new Reply(200, Proto, [], encoding))).Within();
        Assert.Equal(new GreetResponse(), unary);

        Reply stream = StreamReply(WireBytes.Frame([], encoding is null ? (byte)0 : (byte)1), End("""{"metadata": {"x-custom-trailer": ["bing"]}}""")) with { Encoding = encoding };
        Assert.Equal(new GreetResponse(), Assert.Single(await client.GreetManyAsync(new GreetRequest(), Answer(stream)).ToListWithin()));
        Assert.Equal("bing", meta.Trailers.Get("x-custom-trailer"));
        Assert.Equal(new GreetResponse(), await Client(http2: true).GreetEveryoneAsync(Requests(endless: false), Answer(stream)).Within());
    }

    [Fact]
    public async Task Unary_GzipWithoutItsTrailer_AcceptedAsDotNetInflates()
    {
        // Documented leniency: .NET's GZipStream ends quietly when the input stops after the
        // deflate data, so a gzip member missing its CRC-32 and size trailer is not detected
        // (a wrong CRC is: see gzip-bad-crc). Transport truncation is caught by the HTTP framing.
        GreetResponse response = await Client(http2: false)
            .GreetAsync(new GreetRequest(), Answer(new Reply(200, Proto, WireBytes.Gzip(s_hello)[..^8], "gzip"))).Within();
        Assert.Equal("Hello", response.Greeting);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public async Task Unary_BodyOverTheReceiveLimit_ResourceExhaustedAtTheLimitFine(bool http2, bool chunked)
    {
        byte[] big = new GreetResponse { Greeting = new string('a', 2000) }.ToByteArray();
        Assert.Equal(Code.ResourceExhausted, await UnaryCode(new Reply(200, Proto, big) { Chunked = chunked }, http2, maxReceive: big.Length - 1));
        GreetResponse response = await Client(http2, big.Length).GreetAsync(new GreetRequest(), Answer(new Reply(200, Proto, big) { Chunked = chunked })).Within();
        Assert.Equal(2000, response.Greeting.Length);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Unary_GzipBomb_ResourceExhaustedWithoutInflatingIt(bool http2)
    {
        byte[] bomb = s_bomb.Value;
        Assert.InRange(bomb.Length, 1, 256 * 1024);
        // The counter is process-wide and other test classes run alongside (one of them sends
        // 40 MB): the least of three calls is this call's own cost. Inflating the bomb would take
        // 64 MiB at least, on every call; the limit allows 1 MiB (plus pooled slack).
        long least = long.MaxValue;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            Assert.Equal(Code.ResourceExhausted, await UnaryCode(new Reply(200, Proto, bomb, "gzip"), http2, maxReceive: 1024 * 1024));
            least = Math.Min(least, GC.GetTotalAllocatedBytes(precise: true) - before);
        }

        Assert.InRange(least, 0, 40L * 1024 * 1024);
    }

    // ---- Streaming (docs/protocols/connect.md#streaming, docs/wire/compression.md, docs/wire/limits.md): server streaming over HTTP/1.1 and HTTP/2, client streaming over HTTP/2.

    private static Reply Streaming(string scenario) => scenario switch
    {
        "http-503" => new(503, StreamProto, End("{}")),
        "http-404" => new(404, StreamProto, End("{}")),
        "http-400-json-error" => new(400, Json, Utf8("""{"code":"aborted"}""")),
        "http-429-html" => new(429, "text/html", Utf8("<html/>")),
        "unary-content-type" => new(200, Proto, [.. Message("Hello"), .. End("{}")]),
        "html" => new(200, "text/html", Utf8("<html/>")),
        "no-content-type" => new(200, null, End("{}")),
        "json-codec" => new(200, "application/connect+json", [.. WireBytes.Frame(Utf8("""{"greeting":"Hello"}""")), .. End("{}")]),
        "unknown-encoding" => new(200, StreamProto, [.. Message("Hello"), .. End("{}")], "snappy"),
        "compressed-under-identity" => StreamReply(WireBytes.Frame(WireBytes.Gzip(s_hello), 1), End("{}")),
        "compressed-under-identity-header" => StreamReply(WireBytes.Frame(WireBytes.Gzip(s_hello), 1), End("{}")) with { Encoding = "identity" },
        "compressed-end-under-identity" => StreamReply(Message("Hello"), WireBytes.Frame(WireBytes.Gzip(Utf8("{}")), 3)),
        "no-end-stream" => StreamReply(Message("Hello")),
        "empty-body" => StreamReply(),
        "message-after-end" => StreamReply(Message("Hello"), End("{}"), Message("again")),
        "end-after-end" => StreamReply(End("{}"), End("{}")),
        "byte-after-end" => StreamReply(End("{}"), [0]),
        "flags-04" => StreamReply(WireBytes.Frame(s_hello, 0x04), End("{}")),
        "flags-80" => StreamReply(WireBytes.Frame(s_hello, 0x80), End("{}")),
        "end-flags-06" => StreamReply(End("{}", 0x06)),
        "truncated-prefix" => StreamReply(Message("Hello"), [0, 0, 0]),
        "truncated-payload" => StreamReply(Message("Hello"), Message("Hello")[..^2]),
        "truncated-end" => StreamReply(Message("Hello"), End("{}")[..^1]),
        "end-no-code" => StreamReply(End("""{"error":{"message":"m"}}""")),
        "end-null-code" => StreamReply(End("""{"error":{"code":null}}""")),
        "end-unknown-code" => StreamReply(End("""{"error":{"code":"bogus"}}""")),
        "end-numeric-code" => StreamReply(End("""{"error":{"code":5}}""")),
        "end-error-not-object" => StreamReply(End("""{"error":"aborted"}""")),
        "end-error" => StreamReply(Message("Hello"), End("""{"error":{"code":"aborted","message":"m"},"metadata":{"x":["1"]}}""")),
        "end-gzip-error" => new(200, StreamProto, WireBytes.Frame(WireBytes.Gzip(Utf8("""{"error":{"code":"aborted"}}""")), 3), "gzip"),
        "end-corrupt-gzip" => new(200, StreamProto, WireBytes.Frame(Utf8("not gzip"), 3), "gzip"),
        "end-not-json" => StreamReply(End("not json")),
        "end-empty" => StreamReply(End("")),
        "end-array" => StreamReply(End("[]")),
        "end-bad-metadata" => StreamReply(End("""{"metadata":{"x":"1"}}""")),
        "end-bad-metadata-value" => StreamReply(End("""{"metadata":{"x":[1]}}""")),
        "frame-over-limit" => StreamReply([0, 0x7f, 0xff, 0xff, 0xff]),
        "message-bomb" => new(200, StreamProto, [.. WireBytes.Frame(s_bomb.Value, 1), .. End("{}")], "gzip"),
        "end-bomb" => new(200, StreamProto, WireBytes.Frame(s_bomb.Value, 3), "gzip"),
        _ => throw new ArgumentOutOfRangeException(nameof(scenario)),
    };

    [Theory]
    [InlineData("http-503", Code.Unavailable)]
    [InlineData("http-404", Code.Unimplemented)]
    [InlineData("http-400-json-error", Code.Internal)]
    [InlineData("http-429-html", Code.Unavailable)]
    [InlineData("unary-content-type", Code.Unknown)]
    [InlineData("html", Code.Unknown)]
    [InlineData("no-content-type", Code.Unknown)]
    [InlineData("json-codec", Code.Internal)]
    [InlineData("unknown-encoding", Code.Internal)]
    [InlineData("compressed-under-identity", Code.Internal)]
    [InlineData("compressed-under-identity-header", Code.Internal)]
    [InlineData("compressed-end-under-identity", Code.Internal)]
    [InlineData("no-end-stream", Code.Internal)]
    [InlineData("empty-body", Code.Internal)]
    [InlineData("message-after-end", Code.Internal)]
    [InlineData("end-after-end", Code.Internal)]
    [InlineData("byte-after-end", Code.Internal)]
    [InlineData("flags-04", Code.Internal)]
    [InlineData("flags-80", Code.Internal)]
    [InlineData("end-flags-06", Code.Internal)]
    [InlineData("truncated-prefix", Code.Internal)]
    [InlineData("truncated-payload", Code.Internal)]
    [InlineData("truncated-end", Code.Internal)]
    [InlineData("end-no-code", Code.Unknown)]
    [InlineData("end-null-code", Code.Unknown)]
    [InlineData("end-unknown-code", Code.Unknown)]
    [InlineData("end-numeric-code", Code.Unknown)]
    [InlineData("end-error-not-object", Code.Unknown)]
    [InlineData("end-error", Code.Aborted)]
    [InlineData("end-gzip-error", Code.Aborted)]
    [InlineData("end-corrupt-gzip", Code.Internal)]
    [InlineData("end-not-json", Code.Internal)]
    [InlineData("end-empty", Code.Internal)]
    [InlineData("end-array", Code.Internal)]
    [InlineData("end-bad-metadata", Code.Internal)]
    [InlineData("end-bad-metadata-value", Code.Internal)]
    [InlineData("frame-over-limit", Code.ResourceExhausted)]
    [InlineData("message-bomb", Code.ResourceExhausted)]
    [InlineData("end-bomb", Code.ResourceExhausted)]
    public async Task Stream_Malformed_CodeOfTheSpec(string scenario, Code code)
    {
        Reply reply = Streaming(scenario);
        Assert.Equal(("server stream, HTTP/1.1", code), ("server stream, HTTP/1.1", await ServerStreamCode(reply, http2: false)));
        Assert.Equal(("server stream, HTTP/2", code), ("server stream, HTTP/2", await ServerStreamCode(reply, http2: true)));
        Assert.Equal(("client stream, HTTP/2", code), ("client stream, HTTP/2", await ClientStreamCode(reply, http2: true)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Stream_FrameOverTheReceiveLimit_ResourceExhaustedAtTheLimitFine(bool http2)
    {
        byte[] big = new GreetResponse { Greeting = new string('a', 2000) }.ToByteArray();
        Reply reply = StreamReply(WireBytes.Frame(big), End("{}"));
        Assert.Equal(Code.ResourceExhausted, await ServerStreamCode(reply, http2, maxReceive: big.Length - 1));
        List<GreetResponse> responses = await Client(http2, big.Length).GreetManyAsync(new GreetRequest(), Answer(reply)).ToListWithin();
        Assert.Equal(2000, Assert.Single(responses).Greeting.Length);
    }

    [Fact]
    public async Task Stream_EndStreamErrorNull_Success()
    {
        using var meta = new ResponseMetadata();
        Reply reply = StreamReply(Message("Hello"), End("""{"error":null,"metadata":{"x-t":["1","2"]}}"""));
        List<GreetResponse> responses = await Client(http2: false).GreetManyAsync(new GreetRequest(), Answer(reply)).ToListWithin();
        Assert.Equal("Hello", Assert.Single(responses).Greeting);
        Assert.Equal(["1", "2"], meta.Trailers.GetAll("x-t"));

        GreetResponse single = await Client(http2: true).GreetEveryoneAsync(Requests(endless: false), Answer(reply)).Within();
        Assert.Equal("Hello", single.Greeting);
    }

    [Theory]
    [InlineData(0, "{}")]
    [InlineData(0, """{"error":null}""")]
    [InlineData(0, """{"code":"out_of_range","message":"oops"}""")] // a code outside "error" is no error
    [InlineData(2, "{}")]
    public async Task ClientStream_SuccessWithoutExactlyOneMessage_Unimplemented(int messages, string end)
    {
        // Fine for server streaming; client streaming needs exactly one response (docs/wire/framing.md#cardinality).
        Reply reply = StreamReply([.. Enumerable.Repeat(Message("Hello"), messages), End(end)]);
        Assert.Equal(messages, (await Client(http2: false).GreetManyAsync(new GreetRequest(), Answer(reply)).ToListWithin()).Count);
        Assert.Equal(Code.Unimplemented, await ClientStreamCode(reply, http2: true));
    }

    [Fact]
    public async Task ClientStream_ServerAnswersWithoutReadingTheRequests_ItsErrorNoHang()
    {
        // The request stream never ends; over HTTP/2 the server's answer ends the call.
        Reply reply = StreamReply(End("""{"error":{"code":"aborted"}}""")) with { ReadRequest = false };
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(http2: true).GreetEveryoneAsync(Requests(endless: true), Answer(reply)).Within());
        Assert.Equal(Code.Aborted, error.Code);

        // Over HTTP/1.1, HttpClient hands over the response only once the request body has ended
        // (docs/architecture.md#platform-facts-the-code-relies-on), so only the deadline ends such a call.
        var clock = Stopwatch.StartNew();
        error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(http2: false).GreetEveryoneAsync(Requests(endless: true), Answer(reply), TimeSpan.FromMilliseconds(500)).Within());
        Assert.Equal(Code.DeadlineExceeded, error.Code);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(400), TimeSpan.FromSeconds(5));
        await Wait.UntilAsync(() => Volatile.Read(ref _finished) == Volatile.Read(ref _started));
    }

    // ---- Stalled bodies: the client's deadline or cancellation ends the call, and the server sees it end.

    /// <summary>
    /// A call whose response stalls, before its headers or after part of its body (two bytes of
    /// a unary body, one whole message of a stream), ended by a 500 ms timeout or cancellation.
    /// </summary>
    private async Task<(Code Code, TimeSpan Elapsed, int Received)> StalledCall(string kind, bool beforeHeaders, bool http2, bool cancel)
    {
        Stall stall = beforeHeaders ? Stall.BeforeHeaders : Stall.AfterBody;
        using var canceler = new CancellationTokenSource();
        TimeSpan? timeout = cancel ? null : TimeSpan.FromMilliseconds(500);
        GreetServiceClient client = Client(http2);
        Headers stream = Answer(StreamReply(Message("Hello")) with { Stall = stall });
        int received = 0;
        var clock = Stopwatch.StartNew();
        canceler.CancelAfter(cancel ? TimeSpan.FromMilliseconds(500) : Bounded.Timeout);
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(async () =>
        {
            switch (kind)
            {
                case "unary":
                    Reply unary = new(200, Proto, s_hello[..2]) { Stall = stall };
                    await client.GreetAsync(new GreetRequest(), Answer(unary), timeout, canceler.Token).Within();
                    break;
                case "server-stream":
                    await foreach (GreetResponse response in client.GreetManyAsync(new GreetRequest(), stream, timeout, canceler.Token))
                    {
                        received++;
                    }

                    break;
                default:
                    await client.GreetEveryoneAsync(Requests(endless: false), stream, timeout, canceler.Token).Within();
                    break;
            }
        }).Within();
        return (error.Code, clock.Elapsed, received);
    }

    [Theory]
    [InlineData("unary", true, false, false)]
    [InlineData("unary", false, false, false)]
    [InlineData("unary", false, true, false)]
    [InlineData("server-stream", true, true, false)]
    [InlineData("server-stream", false, false, false)]
    [InlineData("server-stream", false, true, false)]
    [InlineData("client-stream", false, false, false)]
    [InlineData("client-stream", false, true, false)]
    [InlineData("unary", true, true, true)]
    [InlineData("unary", false, false, true)]
    [InlineData("server-stream", false, false, true)]
    [InlineData("server-stream", false, true, true)]
    [InlineData("client-stream", false, true, true)]
    public async Task Stalled_TimeoutOrCancel_DeadlineExceededOrCanceledPromptlyAndTheServerSeesTheAbort(string kind, bool beforeHeaders, bool http2, bool cancel)
    {
        (Code code, TimeSpan elapsed, int received) = await StalledCall(kind, beforeHeaders, http2, cancel);
        Assert.Equal(cancel ? Code.Canceled : Code.DeadlineExceeded, code);
        Assert.InRange(elapsed, TimeSpan.FromMilliseconds(400), TimeSpan.FromSeconds(5));
        Assert.Equal(kind == "server-stream" && !beforeHeaders ? 1 : 0, received);
        await Wait.UntilAsync(() => Volatile.Read(ref _finished) == Volatile.Read(ref _started));
    }

    // ---- Nothing left behind.

    [Fact]
    public async Task ManyMalformedCalls_EveryRequestEndsAndConnectionsStayFew()
    {
        string[] unary = ["text-plain", "json-codec", "unknown-encoding", "not-gzip", "bad-proto"];
        string[] streaming = ["unknown-encoding", "no-end-stream", "message-after-end", "flags-04", "truncated-payload", "end-not-json", "frame-over-limit", "http-503"];
        const int calls = 200;
        for (int i = 0; i < calls; i++)
        {
            bool http2 = i % 2 == 1;
            if (i % 25 == 0)
            {
                // Now and then one that stalls until its deadline.
                Headers stall = Answer(StreamReply(Message("Hello")) with { Stall = Stall.AfterBody });
                await Assert.ThrowsAsync<ConnectException>(
                    () => Client(http2).GreetManyAsync(new GreetRequest(), stall, TimeSpan.FromMilliseconds(50)).ToListWithin());
            }
            else if (i % 3 == 0)
            {
                await UnaryCode(UnaryOk(unary[i % unary.Length]), http2);
            }
            else
            {
                await ServerStreamCode(Streaming(streaming[i % streaming.Length]), http2);
            }
        }

        Assert.Equal(calls, Volatile.Read(ref _started));
        await Wait.UntilAsync(() => Volatile.Read(ref _finished) == calls);
        // One HTTP/2 connection, and the HTTP/1.1 connections that were not closed reused (2 in practice).
        await Wait.UntilAsync(() => _server.OpenConnections <= 4);
    }
}
