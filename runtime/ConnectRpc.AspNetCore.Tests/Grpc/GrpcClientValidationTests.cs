using System.Net;
using System.Text;
using Connectrpc.Greet.V1;
using ConnectRpc.Internal;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// Our gRPC and gRPC-Web client against a raw Kestrel server that answers with hand-made
/// responses (docs/protocols/grpc.md, docs/protocols/grpc-web.md): trailers-only detection, missing and malformed status,
/// wrong content types and encodings, and the gRPC-Web trailer frame's edge cases.
/// </summary>
public sealed class GrpcClientValidationTests : IClassFixture<RawServer>
{
    private readonly KestrelHost _server;

    public GrpcClientValidationTests(RawServer fixture)
    {
        fixture.Respond = RespondAsync;
        _server = fixture.Host;
    }

    private static readonly byte[] s_hello = WireBytes.Frame(new GreetResponse { Greeting = "Hello" }.ToByteArray());

    /// <summary>The scenario named in the request's <c>x-scenario</c> header.</summary>
    private static async Task RespondAsync(HttpContext http)
    {
        if (http.Request.Headers["x-reset-at-deadline"].Count > 0)
        {
            // A server that enforces the deadline as grpc-go may: RST_STREAM(CANCEL) once grpc-timeout is up.
            Assert.True(GrpcProtocol.TryParseTimeout(http.Request.Headers.GrpcTimeout.ToString(), out TimeSpan timeout));
            await Task.Delay(timeout, http.RequestAborted);
            http.Features.GetRequiredFeature<IHttpResetFeature>().Reset(0x8);
            return;
        }

        if (http.Request.Headers["x-reset"].ToString() is { Length: > 0 } reset)
        {
            // RST_STREAM with the given HTTP/2 error code, before the headers or after one message.
            if (http.Request.Headers["x-reset-after-message"].Count > 0)
            {
                http.Response.ContentType = "application/grpc";
                await http.Response.Body.WriteAsync(s_hello, http.RequestAborted);
                await http.Response.Body.FlushAsync(http.RequestAborted);
            }

            http.Features.GetRequiredFeature<IHttpResetFeature>().Reset(int.Parse(reset, System.Globalization.CultureInfo.InvariantCulture));
            return;
        }

        await http.Request.Body.CopyToAsync(Stream.Null, http.RequestAborted);
        HttpResponse response = http.Response;
        IHeaderDictionary headers = response.Headers;
        bool web = http.Request.ContentType?.StartsWith("application/grpc-web", StringComparison.Ordinal) == true;
        response.ContentType = web ? "application/grpc-web+proto" : "application/grpc";
        byte[] body = [];
        switch (http.Request.Headers["x-scenario"].ToString())
        {
            case "trailers-only-ok":
                headers["grpc-status"] = "0";
                headers["x-t"] = "1";
                break;
            case "trailers-only-error":
                headers["grpc-status"] = "7";
                headers["grpc-message"] = "nope%21";
                headers["x-t"] = "1";
                break;
            case "trailers-without-status":
                body = s_hello;
                response.AppendTrailer("x-t", "1");
                break;
            case "no-trailers":
                body = s_hello;
                break;
            case "status-not-a-number":
                body = s_hello;
                response.AppendTrailer("grpc-status", "abc");
                break;
            case "status-out-of-range":
                response.AppendTrailer("grpc-status", "99");
                response.AppendTrailer("grpc-message", "odd");
                body = s_hello;
                break;
            case "malformed-escape":
                response.AppendTrailer("grpc-status", "3");
                response.AppendTrailer("grpc-message", "50%zz off%");
                break;
            case "details-preferred":
                var status = new ConnectException(Code.Aborted, "from details");
                status.AddDetail(new StringValue { Value = "why" });
                response.AppendTrailer("grpc-status", "2");
                response.AppendTrailer("grpc-message", "plain");
                response.AppendTrailer("grpc-status-details-bin", HeaderRules.EncodeBinary(GrpcProtocol.EncodeStatus(status)));
                break;
            case "http-503":
                response.StatusCode = 503;
                break;
            case "http-503-with-status":
                response.StatusCode = 503;
                headers["grpc-status"] = "8";
                break;
            case "html":
                response.ContentType = "text/html";
                body = Encoding.ASCII.GetBytes("<html></html>");
                break;
            case "json-codec":
                response.ContentType = web ? "application/grpc-web+json" : "application/grpc+json";
                body = WireBytes.Frame(Encoding.UTF8.GetBytes("""{"greeting":"Hello"}"""));
                break;
            case "unknown-encoding":
                headers["grpc-encoding"] = "snappy";
                body = WireBytes.Frame([1, 2, 3], 1);
                break;
            case "compressed-without-encoding":
                body = WireBytes.Frame(WireBytes.Gzip(new GreetResponse { Greeting = "Hello" }.ToByteArray()), 1);
                break;
            case "web-no-trailer-frame":
                body = s_hello;
                break;
            case "web-data-after-trailers":
                body = [.. s_hello, .. WireBytes.Frame("grpc-status: 0\r\n"u8.ToArray(), 0x80), .. s_hello];
                break;
            case "web-gzip-trailers":
                headers["grpc-encoding"] = "gzip";
                body = [.. s_hello, .. WireBytes.Frame(WireBytes.Gzip("grpc-status: 0\r\nx-t: 1\r\n"u8.ToArray()), 0x81)];
                break;
            case "web-lenient-trailers":
                body = [.. s_hello, .. WireBytes.Frame("Grpc-Status:  0 \nX-T: a:b\r\n\r\n"u8.ToArray(), 0x80)];
                break;
            case "web-bad-trailer-line":
                body = [.. s_hello, .. WireBytes.Frame("grpc-status 0\r\n"u8.ToArray(), 0x80)];
                break;
        }

        await response.Body.WriteAsync(body, http.RequestAborted);
    }

    private GreetServiceClient Client(Protocol protocol, bool http2 = true) =>
        new((http2 ? _server.Http2Url : _server.Http1Url).ToString(), new ConnectClientOptions
        {
            Protocol = protocol,
            HttpVersion = http2 ? HttpVersion.Version20 : HttpVersion.Version11,
        });

    private static Headers Scenario(string name) => new() { ["x-scenario"] = name };

    [Fact]
    public async Task TrailersOnlyOk_NoMessagesHeadersBecomeTrailers()
    {
        using var meta = new ResponseMetadata();
        List<GreetResponse> responses = await Client(Protocol.Grpc).GreetManyAsync(new GreetRequest(), Scenario("trailers-only-ok")).ToListWithin();
        Assert.Empty(responses);
        Assert.Equal("1", meta.Trailers.Get("x-t"));
        Assert.Null(meta.Trailers.Get("grpc-status"));
        Assert.Null(meta.Trailers.Get("content-type"));
        Assert.Null(meta.Headers.Get("x-t"));
    }

    [Theory]
    [InlineData(Protocol.Grpc)]
    [InlineData(Protocol.GrpcWeb)]
    public async Task TrailersOnlyError_StatusDecodedMetadataAsTrailers(Protocol protocol)
    {
        using var meta = new ResponseMetadata();
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(protocol).GreetAsync(new GreetRequest(), Scenario("trailers-only-error")).Within());
        Assert.Equal(Code.PermissionDenied, error.Code);
        Assert.Equal("nope!", error.Message);
        Assert.Equal("1", error.Trailers.Get("x-t"));
        Assert.Equal("1", meta.Trailers.Get("x-t"));
    }

    [Theory]
    [InlineData(Protocol.Grpc, "trailers-without-status", Code.Unknown)]
    [InlineData(Protocol.Grpc, "no-trailers", Code.Internal)]
    [InlineData(Protocol.Grpc, "status-not-a-number", Code.Unknown)]
    [InlineData(Protocol.Grpc, "status-out-of-range", Code.Unknown)]
    [InlineData(Protocol.Grpc, "http-503", Code.Unavailable)]
    [InlineData(Protocol.Grpc, "http-503-with-status", Code.ResourceExhausted)]
    [InlineData(Protocol.Grpc, "html", Code.Unknown)]
    [InlineData(Protocol.Grpc, "json-codec", Code.Internal)]
    [InlineData(Protocol.Grpc, "unknown-encoding", Code.Internal)]
    [InlineData(Protocol.Grpc, "compressed-without-encoding", Code.Internal)]
    [InlineData(Protocol.GrpcWeb, "web-no-trailer-frame", Code.Internal)]
    [InlineData(Protocol.GrpcWeb, "web-data-after-trailers", Code.Internal)]
    [InlineData(Protocol.GrpcWeb, "web-bad-trailer-line", Code.Internal)]
    [InlineData(Protocol.GrpcWeb, "html", Code.Unknown)]
    [InlineData(Protocol.GrpcWeb, "http-503", Code.Unavailable)]
    public async Task BrokenResponse_CodeOfTheSpec(Protocol protocol, string scenario, Code code)
    {
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(protocol, http2: protocol == Protocol.Grpc).GreetAsync(new GreetRequest(), Scenario(scenario)).Within());
        Assert.Equal(code, error.Code);
    }

    [Theory]
    [InlineData(0x7, false, Code.Unavailable)] // REFUSED_STREAM
    [InlineData(0x8, false, Code.Canceled)] // CANCEL
    [InlineData(0xb, false, Code.ResourceExhausted)] // ENHANCE_YOUR_CALM
    [InlineData(0xc, false, Code.PermissionDenied)] // INADEQUATE_SECURITY
    [InlineData(0x2, false, Code.Internal)] // INTERNAL_ERROR
    [InlineData(0x7, true, Code.Unavailable)]
    [InlineData(0xb, true, Code.ResourceExhausted)]
    public async Task StreamReset_MappedByErrorCode_BeforeHeadersOrAfterAMessage(int errorCode, bool afterMessage, Code code)
    {
        var headers = new Headers { ["x-reset"] = errorCode.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        if (afterMessage)
        {
            headers["x-reset-after-message"] = "1";
        }

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(Protocol.Grpc).GreetManyAsync(new GreetRequest(), headers).ToListWithin());
        Assert.Equal(code, error.Code);
    }

    /// <summary>
    /// The server's RST_STREAM(CANCEL) at its deadline arrives before the client's own deadline
    /// timer runs (here the client's timers run 30 s late): the call still reports
    /// deadline_exceeded, read from the clock, not canceled.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ServerCancelsAtDeadline_BeforeClientTimer_DeadlineExceeded(bool stream)
    {
        var options = new ConnectClientOptions { Protocol = Protocol.Grpc, HttpVersion = HttpVersion.Version20 };
        using var http = new HttpClient(new SocketsHttpHandler()) { Timeout = Bounded.Timeout };
        GreetServiceClient client = LateTimers.Client(http, _server.Http2Url, options);
        var headers = new Headers { ["x-reset-at-deadline"] = "1" };
        TimeSpan timeout = TimeSpan.FromMilliseconds(300);

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => stream
            ? client.GreetManyAsync(new GreetRequest(), headers, timeout).ToListWithin()
            : client.GreetAsync(new GreetRequest(), headers, timeout).Within());
        Assert.Equal(Code.DeadlineExceeded, error.Code);
    }

    [Fact]
    public async Task MalformedPercentEscape_KeptAsReceived()
    {
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(Protocol.Grpc).GreetAsync(new GreetRequest(), Scenario("malformed-escape")).Within());
        Assert.Equal(Code.InvalidArgument, error.Code);
        Assert.Equal("50%zz off%", error.Message);
    }

    [Fact]
    public async Task StatusDetailsBin_PreferredOverPlainFields()
    {
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(Protocol.Grpc).GreetAsync(new GreetRequest(), Scenario("details-preferred")).Within());
        Assert.Equal(Code.Aborted, error.Code);
        Assert.Equal("from details", error.Message);
        Assert.Equal("why", error.GetDetail<StringValue>()?.Value);
        Assert.Null(error.Trailers.Get("grpc-status-details-bin"));
    }

    [Theory]
    [InlineData("web-gzip-trailers")]
    [InlineData("web-lenient-trailers")]
    public async Task GrpcWebTrailerFrame_CompressedOrLenient_Read(string scenario)
    {
        using var meta = new ResponseMetadata();
        GreetResponse response = await Client(Protocol.GrpcWeb, http2: false).GreetAsync(new GreetRequest(), Scenario(scenario)).Within();
        Assert.Equal("Hello", response.Greeting);
        Assert.Equal(scenario == "web-gzip-trailers" ? "1" : "a:b", meta.Trailers.Get("x-t"));
        Assert.Null(meta.Trailers.Get("grpc-status"));
    }
}
