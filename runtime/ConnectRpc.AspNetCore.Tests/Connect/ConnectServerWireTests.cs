using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Connectrpc.Greet.V1;
using Google.Protobuf;
using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// Raw HTTP against our server: the rejections and codes of docs/protocols/connect.md (rejection order,
/// content types, versions, timeouts, encodings), checked byte for byte where it matters.
/// </summary>
public sealed class ConnectServerWireTests(ConnectServerWireTests.Server fixture) : IClassFixture<ConnectServerWireTests.Server>, IDisposable
{
    private const string Greet = "connectrpc.greet.v1.GreetService/Greet";
    private const string GreetMany = "connectrpc.greet.v1.GreetService/GreetMany";
    private const string Chat = "connectrpc.greet.v1.GreetService/Chat";
    private readonly KestrelHost _server = fixture.Host;

    /// <summary>The server the tests of this class share.</summary>
    public sealed class Server : KestrelFixture
    {
        protected override Task<KestrelHost> StartAsync() => KestrelHost.StartAsync(options => options.MaxReceiveMessageSize = 1024);
    }
    private readonly HttpClient _http = new(new SocketsHttpHandler()) { Timeout = Bounded.Timeout };

    public void Dispose() => _http.Dispose();

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? contentType, byte[]? body, bool http2 = false, params (string Key, string Value)[] headers)
    {
        using HttpRequestMessage request = WireBytes.Request(method, (http2 ? _server.Http2Url : _server.Http1Url) + path, http2, body, contentType, headers);
        return await _http.SendAsync(request, Bounded.Token).Within();
    }

    private static async Task<(string Code, string Message)> ErrorAsync(HttpResponseMessage response)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        JsonElement error = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Bounded.Token).Within()).RootElement;
        return (error.GetProperty("code").GetString()!, error.TryGetProperty("message", out JsonElement m) ? m.GetString()! : "");
    }

    private static byte[] Json(string text) => Encoding.UTF8.GetBytes(text);

    /// <summary>Bidi over HTTP/1.1 is served half-duplex: every request is answered, then the end-stream message.</summary>
    [Fact]
    public async Task BidiOverHttp11_Served()
    {
        byte[] body = [.. WireBytes.Frame(new GreetRequest { Name = "Ada" }.ToByteArray()), .. WireBytes.Frame(new GreetRequest { Name = "Grace" }.ToByteArray())];
        using HttpResponseMessage response = await SendAsync(HttpMethod.Post, Chat, "application/connect+proto", body);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpVersion.Version11, response.Version);
        Assert.Equal("application/connect+proto", response.Content.Headers.ContentType?.MediaType);
        List<(byte Flags, byte[] Payload)> frames = WireBytes.Frames(await response.Content.ReadAsByteArrayAsync(Bounded.Token).Within());
        Assert.Equal(3, frames.Count);
        Assert.Equal("Hello, Ada!", GreetResponse.Parser.ParseFrom(frames[0].Payload).Greeting);
        Assert.Equal("Hello, Grace!", GreetResponse.Parser.ParseFrom(frames[1].Payload).Greeting);
        Assert.Equal(0x02, frames[2].Flags);
        Assert.False(JsonDocument.Parse(frames[2].Payload).RootElement.TryGetProperty("error", out _));
    }

    [Theory]
    [InlineData("PUT", Greet, "GET, POST")]
    [InlineData("GET", GreetMany, "POST")]
    [InlineData("DELETE", GreetMany, "POST")]
    public async Task WrongHttpMethod_405WithAllow(string method, string path, string allow)
    {
        using HttpResponseMessage response = await SendAsync(new HttpMethod(method), path, null, null);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        Assert.Equal(allow, string.Join(", ", response.Content.Headers.Allow));
    }

    [Theory]
    [InlineData(Greet, "text/plain")]
    [InlineData(Greet, "application/connect+proto")]
    [InlineData(Greet, "application/xml")]
    [InlineData(GreetMany, "application/proto")]
    [InlineData(GreetMany, "application/grpc-web+xml")]
    public async Task UnsupportedContentType_415WithAcceptPost(string path, string contentType)
    {
        using HttpResponseMessage response = await SendAsync(HttpMethod.Post, path, contentType, []);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        string acceptPost = string.Join(", ", response.Headers.GetValues("Accept-Post"));
        Assert.Contains(path == Greet ? "application/json, application/proto, " : "application/connect+json, application/connect+proto, ", acceptPost, StringComparison.Ordinal);
        Assert.Contains("application/grpc-web+proto", acceptPost, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("connect-protocol-version", "2", "invalid_argument", 400)]
    [InlineData("connect-timeout-ms", "-5", "invalid_argument", 400)]
    [InlineData("connect-timeout-ms", "12345678901", "invalid_argument", 400)]
    [InlineData("connect-timeout-ms", "1s", "invalid_argument", 400)]
    [InlineData("content-encoding", "snappy", "unimplemented", 501)]
    public async Task UnaryBadProtocolHeader_CodeAndStatus(string header, string value, string code, int status)
    {
        using HttpResponseMessage response = await SendAsync(HttpMethod.Post, Greet, "application/json", Json("{}"), false, (header, value));
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal(code, (await ErrorAsync(response)).Code);
    }

    [Fact]
    public async Task ConnectTimeout_TenDigits_LongerThanAnyTimer_Accepted()
    {
        // 9,999,999,999 ms is 115 days, more than a .NET timer can wait: the deadline is
        // reported to the handler but not armed, and the call succeeds.
        using HttpResponseMessage response = await SendAsync(HttpMethod.Post, Greet, "application/json", Json("{}"), false, ("connect-timeout-ms", "9999999999"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.InRange(_server.Service.Timeouts[GreetServiceConnect.Procedures.Greet]!.Value.TotalDays, 115, 116);
    }

    [Fact]
    public async Task UnaryUnknownEncoding_ListsSupportedEncodings()
    {
        using HttpResponseMessage response = await SendAsync(HttpMethod.Post, Greet, "application/json", Json("{}"), false, ("content-encoding", "lz4"));
        (string code, string message) = await ErrorAsync(response);
        Assert.Equal("unimplemented", code);
        Assert.Equal("unknown compression 'lz4': supported encodings are gzip, br, zstd, deflate", message);
    }

    [Theory]
    [InlineData("{\"name\": 5}")]
    [InlineData("{not json")]
    public async Task UnaryInvalidJson_InvalidArgument(string body)
    {
        using HttpResponseMessage response = await SendAsync(HttpMethod.Post, Greet, "application/json", Json(body));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_argument", (await ErrorAsync(response)).Code);
    }

    [Fact]
    public async Task UnaryInvalidProto_InvalidArgument()
    {
        using HttpResponseMessage response = await SendAsync(HttpMethod.Post, Greet, "application/proto", [0x0A, 0x05, 0x41]);
        Assert.Equal("invalid_argument", (await ErrorAsync(response)).Code);
    }

    [Theory]
    [InlineData(1024, HttpStatusCode.OK)]
    [InlineData(1025, HttpStatusCode.TooManyRequests)]
    public async Task UnaryAtAndOverReceiveLimit_PassesThenResourceExhausted(int size, HttpStatusCode expected)
    {
        byte[] message = new GreetRequest { Name = new string('x', size - 3) }.ToByteArray();
        Assert.Equal(size, message.Length);
        using HttpResponseMessage response = await SendAsync(HttpMethod.Post, Greet, "application/proto", message);
        Assert.Equal(expected, response.StatusCode);
    }

    [Fact]
    public async Task UnaryEmptyBody_IsTheEmptyMessage()
    {
        using HttpResponseMessage response = await SendAsync(HttpMethod.Post, Greet, "application/proto", []);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Hello, !", GreetResponse.Parser.ParseFrom(await response.Content.ReadAsByteArrayAsync(Bounded.Token).Within()).Greeting);
    }

    [Theory]
    [InlineData("?encoding=json", "invalid_argument")]
    [InlineData("?encoding=proto&base64=1&message=***", "invalid_argument")]
    [InlineData("?encoding=json&connect=v2&message=%7B%7D", "invalid_argument")]
    [InlineData("?encoding=json&compression=lz4&message=%7B%7D", "unimplemented")]
    public async Task GetWithBadParameters_Code(string query, string code)
    {
        using HttpResponseMessage response = await SendAsync(HttpMethod.Get, Greet + query, null, null);
        Assert.Equal(code, (await ErrorAsync(response)).Code);
    }

    [Fact]
    public async Task GetWithoutEncoding_415()
    {
        using HttpResponseMessage response = await SendAsync(HttpMethod.Get, Greet + "?message=%7B%7D", null, null);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
    }

    [Fact]
    public async Task GetBase64Proto_Works()
    {
        string message = System.Buffers.Text.Base64Url.EncodeToString(new GreetRequest { Name = "Ada" }.ToByteArray());
        using HttpResponseMessage response = await SendAsync(HttpMethod.Get, Greet + "?connect=v1&encoding=proto&base64=1&message=" + message, null, null);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Hello, Ada!", GreetResponse.Parser.ParseFrom(await response.Content.ReadAsByteArrayAsync(Bounded.Token).Within()).Greeting);
    }

    [Fact]
    public async Task PathIsCaseSensitive_404()
    {
        using HttpResponseMessage response = await SendAsync(HttpMethod.Post, Greet.ToUpperInvariant(), "application/json", Json("{}"));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task StreamingErrors_Http200WithEndStreamError()
    {
        // Two requests on a server-streaming call: the spec's code for a wrong count, in the end-stream message.
        byte[] frame = WireBytes.Frame(new GreetRequest { Name = "a" }.ToByteArray());
        using HttpResponseMessage response = await SendAsync(HttpMethod.Post, GreetMany, "application/connect+proto", [.. frame, .. frame], http2: true);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        byte[] body = await response.Content.ReadAsByteArrayAsync(Bounded.Token).Within();
        Assert.Equal(0x02, body[0]);
        JsonElement end = JsonDocument.Parse(body.AsMemory(5)).RootElement;
        Assert.Equal("unimplemented", end.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task StreamingTimeout_EndStreamDeadlineExceededAndHandlerCanceled()
    {
        byte[] frame = WireBytes.Frame(new GreetRequest { Name = "a" }.ToByteArray());
        using HttpResponseMessage response = await SendAsync(HttpMethod.Post, GreetMany, "application/connect+proto", frame, http2: true,
            ("connect-timeout-ms", "200"), ("x-sleep-ms", "10000"));
        byte[] body = await response.Content.ReadAsByteArrayAsync(Bounded.Token).Within();
        (byte flags, byte[] payload) = WireBytes.Frames(body)[^1];
        Assert.Equal(0x02, flags);
        JsonElement end = JsonDocument.Parse(payload).RootElement;
        Assert.Equal("deadline_exceeded", end.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("v1", end.GetProperty("metadata").GetProperty("greet-version")[0].GetString());
        await Wait.UntilAsync(() => _server.Service.Canceled.Contains(GreetServiceConnect.Procedures.GreetMany));
    }

    [Fact]
    public async Task UnaryTrailers_SentAsTrailerPrefixedHeaders_NoHttpTrailers()
    {
        using HttpResponseMessage response = await SendAsync(HttpMethod.Post, Greet, "application/proto", [], http2: true, ("x-echo-bin", "AAEC/v8"));
        Assert.Equal("v1", response.Headers.GetValues("trailer-greet-version").Single());
        Assert.Equal("AAEC/v8", response.Headers.GetValues("trailer-x-echo-bin").Single());
        _ = await response.Content.ReadAsByteArrayAsync(Bounded.Token).Within();
        Assert.Empty(response.TrailingHeaders);
    }
}
