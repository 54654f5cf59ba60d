using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using Connectrpc.Greet.V1;
using ConnectRpc.Tests;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Web;
using Microsoft.Extensions.DependencyInjection;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// grpc-dotnet (Grpc.Net.Client with GrpcWebHandler, Grpc.AspNetCore.Server with UseGrpcWeb) as the
/// peer, both ways: its client against our server, and our client against its server
/// (<see cref="GrpcDotnetGreetService.Host"/>), over gRPC (HTTP/2) and gRPC-Web binary and text (HTTP/1.1 and
/// HTTP/2). Every RPC kind with headers and trailers (multi-valued and binary), errors with
/// metadata and <c>grpc-status-details-bin</c>, percent-encoded messages, deadlines, gzip, and bidi
/// ping-pong. The expectations are the shared ones of <see cref="EveryProtocolCallTests"/>.
/// </summary>
public sealed class GrpcDotnetInteropTests(GreetServer server, GrpcDotnetServer peer) : IClassFixture<GreetServer>, IClassFixture<GrpcDotnetServer>
{
    private static readonly byte[] s_echoBytes = [0, 1, 2, 254, 255];

    /// <summary>gRPC over HTTP/2; gRPC-Web and gRPC-Web text over HTTP/1.1 and HTTP/2.</summary>
    private static readonly (Protocol Protocol, bool Http2)[] s_transports =
    [
        (Protocol.Grpc, true),
        (Protocol.GrpcWeb, false),
        (Protocol.GrpcWeb, true),
        (Protocol.GrpcWebText, false),
        (Protocol.GrpcWebText, true),
    ];

    private static readonly string[] s_names = ["Ada", "Grace", "Linus"];

    /// <summary>
    /// Client-stream names for gRPC-Web text requests to grpc-dotnet's server: frames of 10, 11 and
    /// 13 bytes, so each message's base64 ends in padding. grpc-dotnet 2.85's server
    /// (Base64PipeReader) decodes one padded fragment per read, but when one read decodes several
    /// messages and the body has ended, the next read finds fewer than 4 new characters and fails
    /// with "Unexpected end of data when reading base64 content." (Unknown to the client). Its own
    /// client hits that too ("Grace" and "Linus" are 12-byte frames, base64 without padding).
    /// </summary>
    private static readonly string[] s_paddedNames = ["Ada", "Alan", "Edsger"];

    private readonly KestrelHost _server = server.Host;
    private readonly KestrelHost _peer = peer.Host;

    private GrpcDotnetGreetService PeerService => _peer.Services.GetRequiredService<GrpcDotnetGreetService>();

    public static TheoryData<Protocol, bool> Transports()
    {
        var data = new TheoryData<Protocol, bool>();
        foreach ((Protocol protocol, bool http2) in s_transports)
        {
            data.Add(protocol, http2);
        }

        return data;
    }

    /// <summary>One row per content type, covering both HTTP versions and both places trailers travel.</summary>
    public static TheoryData<Protocol, bool> SomeTransports() => new()
    {
        { Protocol.Grpc, true },
        { Protocol.GrpcWeb, false },
        { Protocol.GrpcWebText, true },
    };

    /// <summary>What bidi needs: every protocol over HTTP/2.</summary>
    public static TheoryData<Protocol> Http2Transports() => new(Protocol.Grpc, Protocol.GrpcWeb, Protocol.GrpcWebText);

    // ---- grpc-dotnet's client against our server ----

    [Theory]
    [MemberData(nameof(Transports))]
    public Task GrpcDotnetClient_Unary_ResponseWithHeadersAndTrailers(Protocol protocol, bool http2) =>
        PeerUnaryAsync(Url(_server.Http1Url, _server.Http2Url, http2), protocol, http2);

    [Theory]
    [MemberData(nameof(Transports))]
    public Task GrpcDotnetClient_ServerAndClientStreaming_MessagesHeadersAndTrailers(Protocol protocol, bool http2) =>
        PeerStreamsAsync(Url(_server.Http1Url, _server.Http2Url, http2), protocol, http2, s_names);

    [Theory]
    [MemberData(nameof(Http2Transports))]
    public Task GrpcDotnetClient_BidiPingPong_HeadersAfterFirstResponseTrailersAfterLast(Protocol protocol) =>
        PeerPingPongAsync(_server.Http2Url, protocol);

    [Theory]
    [MemberData(nameof(Transports))]
    public Task GrpcDotnetClient_UnaryFails_CodeMessageMetadataAndStatusDetail(Protocol protocol, bool http2) =>
        PeerUnaryErrorAsync(Url(_server.Http1Url, _server.Http2Url, http2), protocol, http2);

    [Theory]
    [MemberData(nameof(SomeTransports))]
    public Task GrpcDotnetClient_ServerStreamFailsAfterOneMessage_MessageThenErrorWithTrailers(Protocol protocol, bool http2) =>
        PeerStreamErrorAsync(Url(_server.Http1Url, _server.Http2Url, http2), protocol, http2);

    [Theory]
    [MemberData(nameof(SomeTransports))]
    public Task GrpcDotnetClient_Gzip_RequestAndResponseCompressed(Protocol protocol, bool http2) =>
        PeerGzipAsync(Url(_server.Http1Url, _server.Http2Url, http2), protocol, http2);

    [Theory]
    [InlineData(Protocol.Grpc, true)]
    [InlineData(Protocol.GrpcWebText, false)]
    public Task GrpcDotnetClient_OddErrorMessage_ArrivesIntact(Protocol protocol, bool http2) =>
        PeerOddMessageAsync(Url(_server.Http1Url, _server.Http2Url, http2), protocol, http2);

    [Theory]
    [MemberData(nameof(SomeTransports))]
    public async Task GrpcDotnetClient_Deadline_DeadlineExceededAndHandlerCanceled(Protocol protocol, bool http2)
    {
        using GrpcChannel channel = PeerChannel(Url(_server.Http1Url, _server.Http2Url, http2), protocol, http2, new Recorder());
        var client = new GreetService.GreetServiceClient(channel);
        using AsyncUnaryCall<GreetResponse> call = client.GreetAsync(
            new GreetRequest(), new Metadata { { "x-sleep-ms", "5000" } }, deadline: DateTime.UtcNow.AddMilliseconds(300), cancellationToken: Bounded.Token);
        RpcException error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.Within());
        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        await Wait.UntilAsync(() => _server.Service.Canceled.Contains(GreetServiceConnect.Procedures.Greet));
    }

    /// <summary>
    /// The peer server checked with the peer's own client: it meets the shared expectations, so a
    /// failure of our client against it is ours.
    /// </summary>
    [Fact]
    public async Task GrpcDotnetClient_GrpcDotnetServer_PeerMeetsTheSharedExpectations()
    {
        foreach ((Protocol protocol, bool http2) in s_transports)
        {
            Uri url = Url(_peer.Http1Url, _peer.Http2Url, http2);
            try
            {
                await PeerUnaryAsync(url, protocol, http2);
                await PeerStreamsAsync(url, protocol, http2, protocol == Protocol.GrpcWebText ? s_paddedNames : s_names);
                await PeerUnaryErrorAsync(url, protocol, http2);
                await PeerStreamErrorAsync(url, protocol, http2);
                await PeerGzipAsync(url, protocol, http2);
                await PeerOddMessageAsync(url, protocol, http2);
                if (http2)
                {
                    await PeerPingPongAsync(url, protocol);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new InvalidOperationException($"{protocol} over HTTP/{(http2 ? "2" : "1.1")}; the peer logged: {string.Join(Environment.NewLine, _peer.Logs)}", e);
            }
        }
    }

    private static Uri Url(Uri http1, Uri http2Url, bool http2) => http2 ? http2Url : http1;

    /// <summary>
    /// A channel of grpc-dotnet's client: plain gRPC (h2c prior knowledge on an http:// address),
    /// or gRPC-Web through <see cref="GrpcWebHandler"/>, at exactly the HTTP version asked for.
    /// </summary>
    private static GrpcChannel PeerChannel(Uri url, Protocol protocol, bool http2, Recorder recorder)
    {
        HttpMessageHandler handler = protocol switch
        {
            Protocol.Grpc => recorder,
            Protocol.GrpcWeb => new GrpcWebHandler(GrpcWebMode.GrpcWeb, recorder),
            Protocol.GrpcWebText => new GrpcWebHandler(GrpcWebMode.GrpcWebText, recorder),
            _ => throw new ArgumentOutOfRangeException(nameof(protocol), protocol, "not a gRPC protocol"),
        };
        return GrpcChannel.ForAddress(url, new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            HttpVersion = http2 ? HttpVersion.Version20 : HttpVersion.Version11,
            HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        });
    }

    /// <summary>The request metadata of <see cref="EveryProtocolCallTests.RequestHeaders"/>, as grpc-dotnet metadata.</summary>
    private static Metadata PeerRequestHeaders() => new()
    {
        { "acme-tenant-id", "1234" },
        { "x-echo", "a" },
        { "x-echo", "b" },
        { "x-echo-bin", s_echoBytes },
    };

    /// <summary>grpc-dotnet metadata as received <see cref="Headers"/> (binary values base64), for the shared assertions.</summary>
    internal static Headers ToHeaders(Metadata metadata)
    {
        Headers headers = Headers.CreateReceived();
        foreach (Metadata.Entry entry in metadata)
        {
            headers.AddReceived(entry.Key, entry.IsBinary ? Convert.ToBase64String(entry.ValueBytes) : entry.Value);
        }

        return headers;
    }

    private static void AssertPeerMetadata(Metadata headers, Metadata trailers) =>
        EveryProtocolCallTests.AssertMetadata(ToHeaders(headers), ToHeaders(trailers));

    private static async Task PeerUnaryAsync(Uri url, Protocol protocol, bool http2)
    {
        using GrpcChannel channel = PeerChannel(url, protocol, http2, new Recorder());
        var client = new GreetService.GreetServiceClient(channel);
        using AsyncUnaryCall<GreetResponse> call = client.GreetAsync(new GreetRequest { Name = "Ada" }, PeerRequestHeaders(), cancellationToken: Bounded.Token);
        GreetResponse response = await call.ResponseAsync.Within();
        Assert.Equal("Hello, Ada!", response.Greeting);
        AssertPeerMetadata(await call.ResponseHeadersAsync.Within(), call.GetTrailers());
    }

    private static async Task PeerStreamsAsync(Uri url, Protocol protocol, bool http2, string[] names)
    {
        using GrpcChannel channel = PeerChannel(url, protocol, http2, new Recorder());
        var client = new GreetService.GreetServiceClient(channel);

        using (AsyncServerStreamingCall<GreetResponse> many = client.GreetMany(new GreetRequest { Name = "Ada" }, PeerRequestHeaders(), cancellationToken: Bounded.Token))
        {
            List<GreetResponse> responses = await many.ResponseStream.ReadAllAsync().ToListWithin();
            Assert.Equal(["Hello, Ada! (1)", "Hello, Ada! (2)", "Hello, Ada! (3)"], responses.Select(r => r.Greeting));
            AssertPeerMetadata(await many.ResponseHeadersAsync.Within(), many.GetTrailers());
        }

        using AsyncClientStreamingCall<GreetRequest, GreetResponse> everyone = client.GreetEveryone(PeerRequestHeaders(), cancellationToken: Bounded.Token);
        foreach (string name in names)
        {
            await everyone.RequestStream.WriteAsync(new GreetRequest { Name = name }).Within();
        }

        await everyone.RequestStream.CompleteAsync().Within();
        Assert.Equal($"Hello, {string.Join(", ", names)}!", (await everyone.ResponseAsync.Within()).Greeting);
        AssertPeerMetadata(await everyone.ResponseHeadersAsync.Within(), everyone.GetTrailers());
    }

    /// <summary>Sends request n+1 only after response n arrived; a half-duplex peer deadlocks and times out.</summary>
    private static async Task PeerPingPongAsync(Uri url, Protocol protocol)
    {
        using GrpcChannel channel = PeerChannel(url, protocol, http2: true, new Recorder());
        var client = new GreetService.GreetServiceClient(channel);
        using CancellationTokenSource bounded = Bounded.TimeoutSource();
        using AsyncDuplexStreamingCall<GreetRequest, GreetResponse> call = client.Chat(PeerRequestHeaders(), cancellationToken: bounded.Token);
        string[] names = s_names;
        await call.RequestStream.WriteAsync(new GreetRequest { Name = names[0] }).Within();
        Metadata? headers = null;
        for (int i = 0; i < names.Length; i++)
        {
            Assert.True(await call.ResponseStream.MoveNext(bounded.Token).Within(), $"response {i + 1} is missing");
            Assert.Equal($"Hello, {names[i]}!", call.ResponseStream.Current.Greeting);
            headers ??= await call.ResponseHeadersAsync.Within();
            Assert.Equal("v1", headers.GetValue("greet-version"));
            Assert.Throws<InvalidOperationException>(call.GetTrailers); // not before the end
            if (i + 1 < names.Length)
            {
                await call.RequestStream.WriteAsync(new GreetRequest { Name = names[i + 1] }).Within();
            }
            else
            {
                await call.RequestStream.CompleteAsync().Within();
            }
        }

        Assert.False(await call.ResponseStream.MoveNext(bounded.Token).Within());
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
        AssertPeerMetadata(headers!, call.GetTrailers());
    }

    private static async Task PeerUnaryErrorAsync(Uri url, Protocol protocol, bool http2)
    {
        using GrpcChannel channel = PeerChannel(url, protocol, http2, new Recorder());
        var client = new GreetService.GreetServiceClient(channel);
        Metadata request = PeerRequestHeaders();
        request.Add("x-fail", "permission_denied");
        request.Add("x-detail", "why");
        using AsyncUnaryCall<GreetResponse> call = client.GreetAsync(new GreetRequest { Name = "Ada" }, request, cancellationToken: Bounded.Token);
        RpcException error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.Within());
        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
        Assert.Equal("failed as asked", error.Status.Detail);

        // Error metadata may travel in the headers or the trailers; together they hold it.
        Headers all = ToHeaders(await call.ResponseHeadersAsync.Within());
        all.AddRangeUnchecked(ToHeaders(error.Trailers));
        Assert.Equal("yes", all.Get("x-error-meta"));
        Assert.Equal("v1", error.Trailers.GetValue("greet-version"));
        Assert.Equal(s_echoBytes, error.Trailers.GetValueBytes("x-echo-bin"));

        byte[]? details = error.Trailers.GetValueBytes(RpcStatus.DetailsKey);
        Assert.NotNull(details);
        (int code, string message, List<Any> anys) = RpcStatus.Decode(details);
        Assert.Equal((int)StatusCode.PermissionDenied, code);
        Assert.Equal("failed as asked", message);
        Assert.Equal("why", Assert.Single(anys).Unpack<StringValue>().Value);
    }

    private static async Task PeerStreamErrorAsync(Uri url, Protocol protocol, bool http2)
    {
        using GrpcChannel channel = PeerChannel(url, protocol, http2, new Recorder());
        var client = new GreetService.GreetServiceClient(channel);
        Metadata request = PeerRequestHeaders();
        request.Add("x-fail", "resource_exhausted");
        using CancellationTokenSource bounded = Bounded.TimeoutSource();
        using AsyncServerStreamingCall<GreetResponse> call = client.GreetMany(new GreetRequest { Name = "Ada" }, request, cancellationToken: bounded.Token);
        Assert.True(await call.ResponseStream.MoveNext(bounded.Token).Within());
        Assert.Equal("Hello, Ada! (1)", call.ResponseStream.Current.Greeting);
        RpcException error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(bounded.Token).Within());
        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.Equal("failed as asked", error.Status.Detail);
        Assert.Equal("yes", error.Trailers.GetValue("x-error-meta"));
        AssertPeerMetadata(await call.ResponseHeadersAsync.Within(), error.Trailers);
    }

    private static async Task PeerGzipAsync(Uri url, Protocol protocol, bool http2)
    {
        var recorder = new Recorder();
        using GrpcChannel channel = PeerChannel(url, protocol, http2, recorder);
        var client = new GreetService.GreetServiceClient(channel);
        Metadata request = PeerRequestHeaders();
        request.Add("grpc-internal-encoding-request", "gzip"); // grpc-dotnet's per-call request compression

        using (AsyncUnaryCall<GreetResponse> call = client.GreetAsync(new GreetRequest { Name = "Ada" }, request, cancellationToken: Bounded.Token))
        {
            Assert.Equal("Hello, Ada!", (await call.ResponseAsync.Within()).Greeting);
            AssertPeerMetadata(await call.ResponseHeadersAsync.Within(), call.GetTrailers());
        }

        using (AsyncServerStreamingCall<GreetResponse> many = client.GreetMany(new GreetRequest { Name = "Ada" }, request, cancellationToken: Bounded.Token))
        {
            List<GreetResponse> responses = await many.ResponseStream.ReadAllAsync().ToListWithin();
            Assert.Equal(["Hello, Ada! (1)", "Hello, Ada! (2)", "Hello, Ada! (3)"], responses.Select(r => r.Greeting));
        }

        Assert.Equal(2, recorder.Exchanges.Count);
        foreach ((HttpRequestMessage sent, HttpResponseMessage received) in recorder.Exchanges)
        {
            Assert.Equal("gzip", Recorder.Get(sent.Headers, "grpc-encoding"));
            Assert.Equal("gzip", Recorder.Get(received.Headers, "grpc-encoding"));
        }
    }

    private static async Task PeerOddMessageAsync(Uri url, Protocol protocol, bool http2)
    {
        using GrpcChannel channel = PeerChannel(url, protocol, http2, new Recorder());
        var client = new GreetService.GreetServiceClient(channel);
        var request = new Metadata { { "x-fail", "unavailable" }, { "x-odd-message", "1" } };
        using AsyncUnaryCall<GreetResponse> call = client.GreetAsync(new GreetRequest(), request, cancellationToken: Bounded.Token);
        RpcException error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.Within());
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal(TestGreetService.OddMessage, error.Status.Detail);
    }

    /// <summary>The innermost handler of grpc-dotnet's client: records each request and response as sent and received.</summary>
    private sealed class Recorder() : DelegatingHandler(new SocketsHttpHandler())
    {
        public ConcurrentQueue<(HttpRequestMessage Request, HttpResponseMessage Response)> Exchanges { get; } = new();

        public static string? Get(HttpHeaders headers, string key) =>
            headers.TryGetValues(key, out IEnumerable<string>? values) ? string.Join(",", values) : null;

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            HttpResponseMessage response = await base.SendAsync(request, cancellationToken);
            Exchanges.Enqueue((request, response));
            return response;
        }
    }

    // ---- our client against grpc-dotnet's server ----

    /// <summary>
    /// Our client of the peer: gRPC on the HTTP/2 address with the default HTTP version (h2c prior
    /// knowledge); gRPC-Web on either address, HTTP/2 asked for explicitly.
    /// </summary>
    private GreetServiceClient OurClient(Protocol protocol, bool http2, string? compression = null) =>
        new(Url(_peer.Http1Url, _peer.Http2Url, http2).ToString(), new ConnectClientOptions
        {
            Protocol = protocol,
            SendCompression = compression,
            HttpVersion = http2 && protocol != Protocol.Grpc ? HttpVersion.Version20 : null,
        });

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task OurClient_Unary_ResponseWithHeadersAndTrailers(Protocol protocol, bool http2)
    {
        using var meta = new ResponseMetadata();
        GreetResponse response = await OurClient(protocol, http2).GreetAsync(new GreetRequest { Name = "Ada" }, EveryProtocolCallTests.RequestHeaders()).Within();
        Assert.Equal("Hello, Ada!", response.Greeting);
        EveryProtocolCallTests.AssertMetadata(meta.Headers, meta.Trailers);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task OurClient_ServerAndClientStreaming_MessagesHeadersAndTrailers(Protocol protocol, bool http2)
    {
        GreetServiceClient client = OurClient(protocol, http2);
        using (var meta = new ResponseMetadata())
        {
            List<GreetResponse> responses = await client.GreetManyAsync(new GreetRequest { Name = "Ada" }, EveryProtocolCallTests.RequestHeaders()).ToListWithin();
            Assert.Equal(["Hello, Ada! (1)", "Hello, Ada! (2)", "Hello, Ada! (3)"], responses.Select(r => r.Greeting));
            EveryProtocolCallTests.AssertMetadata(meta.Headers, meta.Trailers);
        }

        string[] names = protocol == Protocol.GrpcWebText ? s_paddedNames : s_names;
        using (var meta = new ResponseMetadata())
        {
            GreetResponse response = await client.GreetEveryoneAsync(EveryProtocolCallTests.Names(names), EveryProtocolCallTests.RequestHeaders()).Within();
            Assert.Equal($"Hello, {string.Join(", ", names)}!", response.Greeting);
            EveryProtocolCallTests.AssertMetadata(meta.Headers, meta.Trailers);
        }
    }

    /// <summary>
    /// grpc-dotnet's server sends its response headers before it reads the request (the peer's
    /// service writes them first), so they may arrive before HttpClient asks the request content
    /// for its stream. The client must still send every request then: a stalled request stream
    /// leaves the server waiting and the call hangs until its deadline. The race is narrow, hence
    /// a burst of concurrent calls (each bounded by 3 s).
    /// </summary>
    [Fact]
    public async Task OurClient_ClientStreamingBurst_ResponseHeadersBeforeRequest_EveryCallCompletes()
    {
        var client = new GreetServiceClient(_peer.Http2Url.ToString(), new ConnectClientOptions { Protocol = Protocol.Grpc });
        var failures = new ConcurrentQueue<string>();
        for (int round = 0; round < 8; round++)
        {
            await Task.WhenAll(Enumerable.Range(0, 64).Select(async _ =>
            {
                using CancellationTokenSource bounded = CancellationTokenSource.CreateLinkedTokenSource(Bounded.Token);
                bounded.CancelAfter(TimeSpan.FromSeconds(3));
                try
                {
                    GreetResponse response = await client.GreetEveryoneAsync(EveryProtocolCallTests.Names("Ada", "Grace"), cancellationToken: bounded.Token);
                    Assert.Equal("Hello, Ada, Grace!", response.Greeting);
                }
                catch (ConnectException e)
                {
                    failures.Enqueue($"[{e.Code}] {e.Message}");
                }
            })).Within();
        }

        Assert.True(failures.IsEmpty, $"{failures.Count} of 512 calls failed, first: {failures.FirstOrDefault()}");
    }

    [Theory]
    [MemberData(nameof(Http2Transports))]
    public async Task OurClient_BidiPingPong_HeadersAfterFirstResponseTrailersAfterLast(Protocol protocol)
    {
        using var meta = new ResponseMetadata();
        await EveryProtocolCallTests.PingPongAsync(OurClient(protocol, http2: true), EveryProtocolCallTests.RequestHeaders(), meta, s_names);
        EveryProtocolCallTests.AssertMetadata(meta.Headers, meta.Trailers);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task OurClient_UnaryFails_CodeMessageMetadataAndStatusDetail(Protocol protocol, bool http2)
    {
        Headers headers = EveryProtocolCallTests.RequestHeaders();
        headers["x-fail"] = "permission_denied";
        headers["x-detail"] = "why";
        using var meta = new ResponseMetadata();
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => OurClient(protocol, http2).GreetAsync(new GreetRequest { Name = "Ada" }, headers).Within());
        Assert.Equal(Code.PermissionDenied, error.Code);
        Assert.Equal("failed as asked", error.Message);
        Assert.Equal("why", error.GetDetail<StringValue>()?.Value);
        Assert.Equal("yes", error.Metadata.Get("x-error-meta"));
        EveryProtocolCallTests.AssertMetadata(error.Headers, error.Trailers);
        EveryProtocolCallTests.AssertMetadata(meta.Headers, meta.Trailers);
    }

    [Theory]
    [MemberData(nameof(SomeTransports))]
    public async Task OurClient_ServerStreamFailsAfterOneMessage_MessageThenErrorWithTrailers(Protocol protocol, bool http2)
    {
        Headers headers = EveryProtocolCallTests.RequestHeaders();
        headers["x-fail"] = "resource_exhausted";
        using var meta = new ResponseMetadata();
        var received = new List<string>();
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(async () =>
        {
            using CancellationTokenSource bounded = Bounded.TimeoutSource();
            await foreach (GreetResponse response in OurClient(protocol, http2).GreetManyAsync(new GreetRequest { Name = "Ada" }, headers, cancellationToken: bounded.Token))
            {
                received.Add(response.Greeting);
                Assert.Equal("v1", meta.Headers.Get("greet-version"));
            }
        });
        Assert.Equal(["Hello, Ada! (1)"], received);
        Assert.Equal(Code.ResourceExhausted, error.Code);
        Assert.Equal("failed as asked", error.Message);
        Assert.Equal("yes", error.Trailers.Get("x-error-meta"));
        EveryProtocolCallTests.AssertMetadata(meta.Headers, meta.Trailers);
    }

    [Theory]
    [MemberData(nameof(SomeTransports))]
    public async Task OurClient_Gzip_RequestAndResponseCompressed(Protocol protocol, bool http2)
    {
        GreetServiceClient client = OurClient(protocol, http2, compression: "gzip");
        using (var meta = new ResponseMetadata())
        {
            GreetResponse response = await client.GreetAsync(new GreetRequest { Name = "Ada" }, EveryProtocolCallTests.RequestHeaders()).Within();
            Assert.Equal("Hello, Ada!", response.Greeting);
            EveryProtocolCallTests.AssertMetadata(meta.Headers, meta.Trailers);
        }

        List<GreetResponse> responses = await client.GreetManyAsync(new GreetRequest { Name = "Ada" }).ToListWithin();
        Assert.Equal(["Hello, Ada! (1)", "Hello, Ada! (2)", "Hello, Ada! (3)"], responses.Select(r => r.Greeting));

        // The peer decompressed the requests, and compressed its responses because the requests were.
        foreach (string procedure in new[] { GreetServiceConnect.Procedures.Greet, GreetServiceConnect.Procedures.GreetMany })
        {
            Dictionary<string, string> seen = PeerService.RequestHeaders[procedure];
            Assert.Equal("gzip", seen.GetValueOrDefault("grpc-encoding"));
            Assert.Contains("gzip", EveryProtocolCallTests.Split([seen.GetValueOrDefault("grpc-accept-encoding") ?? string.Empty]));
        }
    }

    [Theory]
    [InlineData(Protocol.Grpc, true)]
    [InlineData(Protocol.GrpcWebText, false)]
    public async Task OurClient_OddErrorMessage_ArrivesIntact(Protocol protocol, bool http2)
    {
        var headers = new Headers { ["x-fail"] = "unavailable", ["x-odd-message"] = "1" };
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => OurClient(protocol, http2).GreetAsync(new GreetRequest(), headers).Within());
        Assert.Equal(Code.Unavailable, error.Code);
        Assert.Equal(TestGreetService.OddMessage, error.Message);
    }

    [Theory]
    [MemberData(nameof(SomeTransports))]
    public async Task OurClient_Deadline_DeadlineExceededAndPeerHandlerCanceled(Protocol protocol, bool http2)
    {
        var headers = new Headers { ["x-sleep-ms"] = "5000" };
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => OurClient(protocol, http2).GreetAsync(new GreetRequest(), headers, timeout: TimeSpan.FromMilliseconds(300)).Within());
        Assert.Equal(Code.DeadlineExceeded, error.Code);
        Assert.NotNull(PeerService.RequestHeaders[GreetServiceConnect.Procedures.Greet].GetValueOrDefault("grpc-timeout"));
        await Wait.UntilAsync(() => PeerService.Canceled.Contains(GreetServiceConnect.Procedures.Greet));
    }
}
