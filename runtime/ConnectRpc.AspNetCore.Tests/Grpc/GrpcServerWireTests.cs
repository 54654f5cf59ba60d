using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Connectrpc.Greet.V1;
using ConnectRpc.Internal;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// Raw HTTP against our server for gRPC and gRPC-Web (docs/protocols/grpc.md, docs/protocols/grpc-web.md, docs/wire/timeouts.md, docs/wire/compression.md): trailers,
/// trailers-only responses, the gRPC-Web trailer frame, text mode, timeouts, encodings,
/// content types and message counts, checked on the bytes.
/// </summary>
public sealed class GrpcServerWireTests(GrpcServerWireTests.Server fixture) : IClassFixture<GrpcServerWireTests.Server>, IDisposable
{
    private const string Greet = "connectrpc.greet.v1.GreetService/Greet";
    private const string GreetMany = "connectrpc.greet.v1.GreetService/GreetMany";
    private readonly KestrelHost _server = fixture.Host;

    private readonly HttpClient _http = new(new SocketsHttpHandler()) { Timeout = Bounded.Timeout };

    /// <summary>
    /// The server the tests of this class share. "Hello, Ada!" (13 bytes serialized) is
    /// compressed when accepted; "Hello, A!" (11) is not.
    /// </summary>
    public sealed class Server : KestrelFixture
    {
        protected override Task<KestrelHost> StartAsync() => KestrelHost.StartAsync(options =>
        {
            options.MaxReceiveMessageSize = 1024;
            options.CompressMinBytes = 12;
        });
    }

    public void Dispose() => _http.Dispose();

    private static readonly byte[] s_ada = new GreetRequest { Name = "Ada" }.ToByteArray();

    private async Task<(HttpResponseMessage Response, byte[] Body)> SendAsync(
        string path, string contentType, byte[] body, bool http2 = true, HttpMethod? method = null, params (string Key, string Value)[] headers)
    {
        using HttpRequestMessage request = WireBytes.Request(method ?? HttpMethod.Post, (http2 ? _server.Http2Url : _server.Http1Url) + path, http2, body, contentType, headers);
        HttpResponseMessage response = await _http.SendAsync(request, Bounded.Token).Within();
        byte[] bytes = await response.Content.ReadAsByteArrayAsync(Bounded.Token).Within();
        return (response, bytes);
    }

    private static string One(HttpHeaders headers, string key) => Assert.Single(headers.GetValues(key));

    private static string? Value(HttpHeaders headers, string key) =>
        headers.TryGetValues(key, out IEnumerable<string>? values) ? string.Join(", ", values) : null;

    [Fact]
    public async Task Unary_Success_MessageThenTrailersWithStatusZero()
    {
        (HttpResponseMessage response, byte[] body) = await SendAsync(Greet, "application/grpc", WireBytes.Frame(s_ada), headers: ("x-echo-bin", "AAEC/v8"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/grpc", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("v1", One(response.Headers, "greet-version"));
        Assert.Null(Value(response.Headers, "grpc-status"));
        (byte flags, byte[] payload) = Assert.Single(WireBytes.Frames(body));
        Assert.Equal(0, flags);
        Assert.Equal("Hello, Ada!", GreetResponse.Parser.ParseFrom(payload).Greeting);
        Assert.Equal("0", One(response.TrailingHeaders, "grpc-status"));
        Assert.Null(Value(response.TrailingHeaders, "grpc-message"));
        Assert.Equal("v1", One(response.TrailingHeaders, "greet-version"));
        Assert.Equal("AAEC/v8", One(response.TrailingHeaders, "x-echo-bin"));
    }

    [Fact]
    public async Task Error_MessagePercentEncodedAndDetailsInStatusDetailsBin()
    {
        (HttpResponseMessage response, byte[] body) = await SendAsync(
            Greet, "application/grpc+proto", WireBytes.Frame(s_ada), headers: [("x-fail", "failed_precondition"), ("x-odd-message", "1"), ("x-detail", "why")]);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(body);
        Assert.Equal("yes", One(response.Headers, "x-error-meta"));
        Assert.Equal("9", One(response.TrailingHeaders, "grpc-status"));
        Assert.Equal("100%25 sure:%0D%0A%09caf%C3%A9 %E6%97%A5%E6%9C%AC %F0%9F%8E%89", One(response.TrailingHeaders, "grpc-message"));
        string details = One(response.TrailingHeaders, "grpc-status-details-bin");
        Assert.DoesNotContain("=", details, StringComparison.Ordinal);
        Assert.True(GrpcProtocol.TryDecodeStatus(details, out int code, out string? message, out List<Any> anys));
        Assert.Equal(9, code);
        Assert.Equal(TestGreetService.OddMessage, message);
        Assert.Equal("why", Assert.Single(anys).Unpack<StringValue>().Value);
    }

    [Fact]
    public async Task Error_WithoutDetails_NoStatusDetailsBin()
    {
        (HttpResponseMessage response, _) = await SendAsync(Greet, "application/grpc", WireBytes.Frame(s_ada), headers: ("x-fail", "not_found"));
        Assert.Equal("5", One(response.TrailingHeaders, "grpc-status"));
        Assert.Equal("failed as asked", One(response.TrailingHeaders, "grpc-message"));
        Assert.Null(Value(response.TrailingHeaders, "grpc-status-details-bin"));
    }

    [Fact]
    public async Task ImmediateError_TrailersOnly_StatusInHeadersNoBodyNoTrailers()
    {
        (HttpResponseMessage response, byte[] body) = await SendAsync(Greet, "application/grpc", WireBytes.Frame(s_ada), headers: ("grpc-timeout", "12x"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/grpc", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("3", One(response.Headers, "grpc-status"));
        Assert.Contains("grpc-timeout", Value(response.Headers, "grpc-message"), StringComparison.Ordinal);
        Assert.Empty(body);
        Assert.Empty(response.TrailingHeaders);
    }

    [Theory]
    [InlineData("2H", 7_200_000.0)]
    [InlineData("3M", 180_000.0)]
    [InlineData("4S", 4_000.0)]
    [InlineData("4500m", 4_500.0)]
    [InlineData("5000000u", 5_000.0)]
    [InlineData("6000000000n", -1.0)] // 10 digits: more than the 8 the spec allows
    [InlineData("99999999n", 99.999999)]
    public async Task GrpcTimeout_EveryUnit_BecomesTheHandlersDeadline(string header, double expectedMs)
    {
        (HttpResponseMessage response, _) = await SendAsync(Greet, "application/grpc", WireBytes.Frame(s_ada), headers: ("grpc-timeout", header));
        if (expectedMs < 0)
        {
            Assert.Equal("3", One(response.Headers, "grpc-status"));
            return;
        }

        Assert.Equal("0", One(response.TrailingHeaders, "grpc-status"));
        TimeSpan? seen = _server.Service.Timeouts[GreetServiceConnect.Procedures.Greet];
        Assert.NotNull(seen);
        Assert.InRange(seen.Value.TotalMilliseconds, expectedMs - 1000, expectedMs);
    }

    [Fact]
    public async Task GrpcTimeout_LargestHours_NoDeadline()
    {
        // 99,999,999 hours is past the end of the calendar: no deadline, not a crash.
        (HttpResponseMessage response, _) = await SendAsync(Greet, "application/grpc", WireBytes.Frame(s_ada), headers: ("grpc-timeout", "99999999H"));
        Assert.Equal("0", One(response.TrailingHeaders, "grpc-status"));
        Assert.Null(_server.Service.Timeouts[GreetServiceConnect.Procedures.Greet]);
    }

    [Fact]
    public async Task UnknownGrpcEncoding_UnimplementedWithAcceptList()
    {
        (HttpResponseMessage response, _) = await SendAsync(Greet, "application/grpc", WireBytes.Frame(s_ada, 1), headers: ("grpc-encoding", "snappy"));
        Assert.Equal("12", One(response.Headers, "grpc-status"));
        Assert.Equal("gzip, br, zstd, deflate", One(response.Headers, "grpc-accept-encoding"));
        Assert.Contains("snappy", Value(response.Headers, "grpc-message"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task GzipRequestAndAcceptedResponse_CompressedFramesBothWays()
    {
        (HttpResponseMessage response, byte[] body) = await SendAsync(
            Greet, "application/grpc", WireBytes.Frame(WireBytes.Gzip(s_ada), 1), headers: [("grpc-encoding", "gzip"), ("grpc-accept-encoding", "gzip")]);
        Assert.Equal("0", One(response.TrailingHeaders, "grpc-status"));
        Assert.Equal("gzip", One(response.Headers, "grpc-encoding"));
        (byte flags, byte[] payload) = Assert.Single(WireBytes.Frames(body));
        Assert.Equal(1, flags);
        using var unpacked = new GZipStream(new MemoryStream(payload), CompressionMode.Decompress);
        Assert.Equal("Hello, Ada!", GreetResponse.Parser.ParseFrom(unpacked).Greeting);
    }

    [Fact]
    public async Task GzipAccepted_ResponseBelowCompressMinBytes_UncompressedFrameUnderTheSameEncoding()
    {
        (HttpResponseMessage response, byte[] body) = await SendAsync(
            Greet, "application/grpc", WireBytes.Frame(new GreetRequest { Name = "A" }.ToByteArray()), headers: ("grpc-accept-encoding", "gzip"));
        Assert.Equal("0", One(response.TrailingHeaders, "grpc-status"));
        Assert.Equal("gzip", One(response.Headers, "grpc-encoding"));
        (byte flags, byte[] payload) = Assert.Single(WireBytes.Frames(body));
        Assert.Equal(0, flags); // any message may go uncompressed (docs/wire/compression.md)
        Assert.Equal("Hello, A!", GreetResponse.Parser.ParseFrom(payload).Greeting);
    }

    [Theory]
    [InlineData("", "12")] // no request message on a unary call
    [InlineData("two", "12")] // two request messages
    [InlineData("compressed-under-identity", "13")]
    [InlineData("truncated", "3")]
    [InlineData("not-proto", "3")]
    [InlineData("over-limit", "8")]
    public async Task BadRequestBody_CodeInStatus(string kind, string status)
    {
        byte[] body = kind switch
        {
            "" => [],
            "two" => [.. WireBytes.Frame(s_ada), .. WireBytes.Frame(s_ada)],
            "compressed-under-identity" => WireBytes.Frame(s_ada, 1),
            "truncated" => WireBytes.Frame(s_ada)[..^2],
            "not-proto" => WireBytes.Frame([0xFF, 0xFF, 0xFF]),
            _ => WireBytes.Frame(new byte[1025]),
        };
        (HttpResponseMessage response, _) = await SendAsync(Greet, "application/grpc", body);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        string? code = Value(response.TrailingHeaders, "grpc-status") ?? Value(response.Headers, "grpc-status");
        Assert.Equal(status, code);
    }

    [Theory]
    [InlineData("application/grpc+xml")]
    [InlineData("application/grpc-web-text+json")]
    public async Task UnsupportedGrpcContentType_415(string contentType)
    {
        (HttpResponseMessage response, _) = await SendAsync(Greet, contentType, WireBytes.Frame(s_ada));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Contains("application/grpc+json", Value(response.Headers, "Accept-Post"), StringComparison.Ordinal);
        Assert.Contains("application/proto", Value(response.Headers, "Accept-Post"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task GrpcOverHttp11_505()
    {
        (HttpResponseMessage response, _) = await SendAsync(Greet, "application/grpc", WireBytes.Frame(s_ada), http2: false);
        Assert.Equal(HttpStatusCode.HttpVersionNotSupported, response.StatusCode);
    }

    [Fact]
    public async Task GrpcWithPut_405WithAllow()
    {
        (HttpResponseMessage response, _) = await SendAsync(Greet, "application/grpc", WireBytes.Frame(s_ada), method: HttpMethod.Put);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        Assert.Equal("POST", Value(response.Content.Headers, "Allow"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task GrpcWeb_MessagesThenLowerCaseCrlfTrailerFrame_NoHttpTrailers(bool http2)
    {
        (HttpResponseMessage response, byte[] body) = await SendAsync(
            GreetMany, "application/grpc-web+proto", WireBytes.Frame(s_ada), http2, headers: [("x-echo-bin", "AAEC/v8"), ("x-fail", "data_loss")]);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/grpc-web", response.Content.Headers.ContentType?.MediaType);
        List<(byte Flags, byte[] Payload)> frames = WireBytes.Frames(body);
        Assert.Equal(2, frames.Count);
        Assert.Equal("Hello, Ada! (1)", GreetResponse.Parser.ParseFrom(frames[0].Payload).Greeting);
        Assert.Equal(0x80, frames[1].Flags);
        string block = Encoding.ASCII.GetString(frames[1].Payload);
        Assert.Equal(
            "greet-version: v1\r\nx-echo-bin: AAEC/v8\r\nx-error-meta: yes\r\ngrpc-status: 15\r\ngrpc-message: failed as asked\r\n",
            block);
        Assert.Empty(response.TrailingHeaders);
    }

    [Fact]
    public async Task GrpcWebText_Http11_Base64BodiesBothWays()
    {
        byte[] request = Encoding.ASCII.GetBytes(Convert.ToBase64String(WireBytes.Frame(s_ada)));
        (HttpResponseMessage response, byte[] body) = await SendAsync(GreetMany, "application/grpc-web-text", request, http2: false);
        Assert.Equal("application/grpc-web-text", response.Content.Headers.ContentType?.MediaType);
        List<(byte Flags, byte[] Payload)> frames = WireBytes.Frames(DecodeText(body));
        Assert.Equal(4, frames.Count);
        Assert.Equal("Hello, Ada! (3)", GreetResponse.Parser.ParseFrom(frames[2].Payload).Greeting);
        Assert.Contains("grpc-status: 0\r\n", Encoding.ASCII.GetString(frames[3].Payload), StringComparison.Ordinal);
    }

    [Fact]
    public async Task GrpcWebText_PaddedChunksInRequest_Accepted()
    {
        // The request split after the prefix, each part padded on its own (docs/protocols/grpc-web.md#text-mode: padding at any flush point).
        byte[] frame = WireBytes.Frame(s_ada);
        string text = Convert.ToBase64String(frame[..4]) + Convert.ToBase64String(frame[4..]);
        (HttpResponseMessage response, byte[] body) = await SendAsync(Greet, "application/grpc-web-text", Encoding.ASCII.GetBytes(text), http2: false);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        List<(byte Flags, byte[] Payload)> frames = WireBytes.Frames(DecodeText(body));
        Assert.Equal("Hello, Ada!", GreetResponse.Parser.ParseFrom(frames[0].Payload).Greeting);
        Assert.Contains("grpc-status: 0\r\n", Encoding.ASCII.GetString(frames[1].Payload), StringComparison.Ordinal);
    }

    /// <summary>
    /// A gRPC-Web text body decoded independently of the runtime: each frame is encoded on its
    /// own, so padding may sit between frames; decode up to each padded group of four.
    /// </summary>
    private static byte[] DecodeText(byte[] body)
    {
        var decoded = new MemoryStream();
        string text = Encoding.ASCII.GetString(body);
        for (int i = 0; i < text.Length;)
        {
            int pad = text.IndexOf('=', i);
            int end = pad < 0 ? text.Length : i + (((pad - i) / 4) + 1) * 4;
            decoded.Write(Convert.FromBase64String(text[i..end]));
            i = end;
        }

        return decoded.ToArray();
    }
}
