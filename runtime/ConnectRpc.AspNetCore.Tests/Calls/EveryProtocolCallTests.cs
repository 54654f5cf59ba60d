using System.Threading.Channels;
using Connectrpc.Greet.V1;

using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// Our client against our server over real sockets: the four RPC kinds in every combination of
/// protocol (Connect, gRPC, gRPC-Web binary and text), codec, compression and HTTP version
/// (gRPC on HTTP/2 only; bidi over HTTP/1.1 half-duplex), with the same headers and trailers delivered through
/// <see cref="ResponseMetadata"/> on success and on error, whatever the protocol.
/// </summary>
public sealed class EveryProtocolCallTests(GreetServer fixture) : IClassFixture<GreetServer>
{
    private readonly KestrelHost _server = fixture.Host;

    internal static readonly Protocol[] Protocols = [Protocol.Connect, Protocol.Grpc, Protocol.GrpcWeb, Protocol.GrpcWebText];

    /// <summary>Every protocol, codec, compression and HTTP version the protocol allows (HTTP/2 only if asked).</summary>
    public static TheoryData<Protocol, Codec, string?, bool> Matrix(bool http2Only = false)
    {
        var data = new TheoryData<Protocol, Codec, string?, bool>();
        foreach (Protocol protocol in Protocols)
        {
            foreach (Codec codec in new[] { Codec.Proto, Codec.Json })
            {
                foreach (string? compression in new[] { null, "gzip" })
                {
                    foreach (bool http2 in new[] { false, true })
                    {
                        if (((protocol == Protocol.Grpc || http2Only) && !http2) || (protocol == Protocol.GrpcWebText && codec == Codec.Json))
                        {
                            continue;
                        }

                        data.Add(protocol, codec, compression, http2);
                    }
                }
            }
        }

        return data;
    }

    /// <summary>Every protocol over HTTP/2 (what full-duplex bidi needs).</summary>
    public static TheoryData<Protocol> AllProtocols() => new(Protocols);

    private GreetServiceClient Client(Protocol protocol, Codec codec, string? compression, bool http2) =>
        _server.Client(http2, new ConnectClientOptions { Protocol = protocol, Codec = codec, SendCompression = compression });

    private GreetServiceClient Client(Protocol protocol, bool http2 = true) => Client(protocol, Codec.Proto, null, http2);

    internal static Headers RequestHeaders()
    {
        var headers = new Headers { ["acme-tenant-id"] = "1234" };
        headers.Add("x-echo", "a");
        headers.Add("x-echo", "b");
        headers.SetBinary("x-echo-bin", new byte[] { 0, 1, 2, 254, 255 });
        return headers;
    }

    internal static void AssertMetadata(Headers headers, Headers trailers)
    {
        Assert.Equal("1234", headers.Get("acme-tenant-id"));
        Assert.Equal("v1", headers.Get("greet-version"));
        Assert.Equal(["a", "b"], Split(headers.GetAll("x-echo")));
        Assert.Equal("v1", trailers.Get("greet-version"));
        Assert.Equal(new byte[] { 0, 1, 2, 254, 255 }, trailers.GetBinary("x-echo-bin"));
        Assert.Null(trailers.Get("acme-tenant-id"));
    }

    internal static string[] Split(IEnumerable<string> values) =>
        [.. values.SelectMany(v => v.Split(',')).Select(v => v.Trim())];

    /// <summary>Where each protocol names the response's compression.</summary>
    public static TheoryData<Protocol, bool, string> ResponseEncodingHeaders() => new()
    {
        { Protocol.Connect, false, "Content-Encoding" },
        { Protocol.Connect, true, "Connect-Content-Encoding" },
        { Protocol.Grpc, false, "grpc-encoding" },
        { Protocol.Grpc, true, "grpc-encoding" },
        { Protocol.GrpcWeb, false, "grpc-encoding" },
        { Protocol.GrpcWeb, true, "grpc-encoding" },
    };

    [Theory]
    [MemberData(nameof(ResponseEncodingHeaders))]
    public async Task Compressors_DefaultOrCleared_ServerCompressesResponsesOrNot(Protocol protocol, bool streaming, string encodingHeader)
    {
        foreach (bool cleared in new[] { false, true })
        {
            using var recorder = new ResponseRecorder();
            var options = new ConnectClientOptions { Protocol = protocol, HttpVersion = System.Net.HttpVersion.Version20 };
            if (cleared)
            {
                options.Compressors.Clear();
            }

            var client = new GreetServiceClient(new HttpClient(recorder) { BaseAddress = _server.Http2Url }, options);
            // Longer than the server's CompressMinBytes (1 KiB by default), so worth compressing.
            var request = new GreetRequest { Name = "Ada" + new string('a', 2000) };
            string greeting = streaming
                ? (await client.GreetManyAsync(request).ToListWithin())[0].Greeting
                : (await client.GreetAsync(request).Within()).Greeting;

            Assert.StartsWith("Hello, Adaaa", greeting, StringComparison.Ordinal);
            HttpResponseMessage response = Assert.Single(recorder.Responses);
            string? encoding = response.Headers.TryGetValues(encodingHeader, out IEnumerable<string>? values) ||
                response.Content.Headers.TryGetValues(encodingHeader, out values)
                ? string.Join(",", values)
                : null;
            Assert.Equal(cleared ? null : "gzip", encoding);
        }
    }

    /// <summary>Keeps the HTTP responses a client received.</summary>
    private sealed class ResponseRecorder() : DelegatingHandler(new SocketsHttpHandler())
    {
        public System.Collections.Concurrent.ConcurrentQueue<HttpResponseMessage> Responses { get; } = new();

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            HttpResponseMessage response = await base.SendAsync(request, cancellationToken);
            Responses.Enqueue(response);
            return response;
        }
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task Unary_EveryCombination_DeliversResponseHeadersAndTrailers(Protocol protocol, Codec codec, string? compression, bool http2)
    {
        using var meta = new ResponseMetadata();
        GreetResponse response = await Client(protocol, codec, compression, http2).GreetAsync(new GreetRequest { Name = "Ada" }, RequestHeaders()).Within();
        Assert.Equal("Hello, Ada!", response.Greeting);
        AssertMetadata(meta.Headers, meta.Trailers);
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task ServerStreaming_EveryCombination_DeliversMessagesHeadersAndTrailers(Protocol protocol, Codec codec, string? compression, bool http2)
    {
        using var meta = new ResponseMetadata();
        List<GreetResponse> responses = await Client(protocol, codec, compression, http2).GreetManyAsync(new GreetRequest { Name = "Ada" }, RequestHeaders()).ToListWithin();
        Assert.Equal(["Hello, Ada! (1)", "Hello, Ada! (2)", "Hello, Ada! (3)"], responses.Select(r => r.Greeting));
        AssertMetadata(meta.Headers, meta.Trailers);
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task ClientStreaming_EveryCombination_DeliversResponseHeadersAndTrailers(Protocol protocol, Codec codec, string? compression, bool http2)
    {
        using var meta = new ResponseMetadata();
        GreetResponse response = await Client(protocol, codec, compression, http2).GreetEveryoneAsync(Names("Ada", "Grace", "Linus"), RequestHeaders()).Within();
        Assert.Equal("Hello, Ada, Grace, Linus!", response.Greeting);
        AssertMetadata(meta.Headers, meta.Trailers);
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task Unary_HandlerFails_ErrorCarriesCodeDetailsAndAllMetadata(Protocol protocol, Codec codec, string? compression, bool http2)
    {
        Headers headers = RequestHeaders();
        headers["x-fail"] = "permission_denied";
        headers["x-detail"] = "why";
        using var meta = new ResponseMetadata();
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(protocol, codec, compression, http2).GreetAsync(new GreetRequest { Name = "Ada" }, headers).Within());
        Assert.Equal(Code.PermissionDenied, error.Code);
        Assert.Equal("failed as asked", error.Message);
        Assert.Equal("why", error.GetDetail<Google.Protobuf.WellKnownTypes.StringValue>()?.Value);
        Assert.Equal("yes", error.Metadata.Get("x-error-meta"));
        AssertMetadata(error.Headers, error.Trailers);
        AssertMetadata(meta.Headers, meta.Trailers);
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task ServerStreaming_HandlerFailsAfterOneMessage_MessageThenErrorWithMetadata(Protocol protocol, Codec codec, string? compression, bool http2)
    {
        Headers headers = RequestHeaders();
        headers["x-fail"] = "resource_exhausted";
        using var meta = new ResponseMetadata();
        var received = new List<string>();
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(async () =>
        {
            using CancellationTokenSource bounded = Bounded.TimeoutSource();
            await foreach (GreetResponse response in Client(protocol, codec, compression, http2).GreetManyAsync(new GreetRequest { Name = "Ada" }, headers, cancellationToken: bounded.Token))
            {
                received.Add(response.Greeting);
                Assert.Equal("v1", meta.Headers.Get("greet-version")); // headers are visible with the first message
            }
        });
        Assert.Equal(["Hello, Ada! (1)"], received);
        Assert.Equal(Code.ResourceExhausted, error.Code);
        Assert.Equal("yes", error.Metadata.Get("x-error-meta"));
        AssertMetadata(meta.Headers, meta.Trailers);
    }

    [Theory]
    [MemberData(nameof(Matrix), true)]
    public async Task Bidi_PingPong_HeadersAfterFirstResponseTrailersAfterLast(Protocol protocol, Codec codec, string? compression, bool http2)
    {
        using var meta = new ResponseMetadata();
        await PingPongAsync(Client(protocol, codec, compression, http2), RequestHeaders(), meta, ["Ada", "Grace", "Linus"]);
        AssertMetadata(meta.Headers, meta.Trailers);
    }

    [Theory]
    [MemberData(nameof(AllProtocols))]
    public async Task Bidi_PingPongEndingInError_TrailersAndErrorMetadataArrive(Protocol protocol)
    {
        Headers headers = RequestHeaders();
        headers["x-fail"] = "aborted";
        using var meta = new ResponseMetadata();
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => PingPongAsync(Client(protocol), headers, meta, ["Ada", "Grace"]));
        Assert.Equal(Code.Aborted, error.Code);
        Assert.Equal("yes", error.Metadata.Get("x-error-meta"));
        AssertMetadata(meta.Headers, meta.Trailers);
    }

    /// <summary>
    /// Sends request n+1 only after response n arrived. A half-duplex client (all requests
    /// first, then responses) deadlocks here and fails on the timeout.
    /// </summary>
    internal static async Task PingPongAsync(GreetServiceClient client, Headers headers, ResponseMetadata meta, string[] names)
    {
        var requests = Channel.CreateUnbounded<GreetRequest>();
        await requests.Writer.WriteAsync(new GreetRequest { Name = names[0] });
        int received = 0;
        using CancellationTokenSource bounded = Bounded.TimeoutSource();
        await foreach (GreetResponse response in client.ChatAsync(requests.Reader.ReadAllAsync(bounded.Token), headers, cancellationToken: bounded.Token))
        {
            Assert.Equal($"Hello, {names[received]}!", response.Greeting);
            Assert.Equal("v1", meta.Headers.Get("greet-version"));
            Assert.Equal(0, meta.Trailers.Count);
            received++;
            if (received < names.Length)
            {
                await requests.Writer.WriteAsync(new GreetRequest { Name = names[received] });
            }
            else
            {
                requests.Writer.Complete();
            }
        }

        Assert.Equal(names.Length, received);
    }

    /// <summary>Every protocol that runs bidi over HTTP/1.1 (half-duplex), with each codec and compression it allows.</summary>
    public static TheoryData<Protocol, Codec, string?> Http11BidiMatrix()
    {
        var data = new TheoryData<Protocol, Codec, string?>();
        foreach (Protocol protocol in new[] { Protocol.Connect, Protocol.GrpcWeb, Protocol.GrpcWebText })
        {
            foreach (Codec codec in protocol == Protocol.GrpcWebText ? new[] { Codec.Proto } : new[] { Codec.Proto, Codec.Json })
            {
                data.Add(protocol, codec, null);
                data.Add(protocol, codec, "gzip");
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Http11BidiMatrix))]
    public async Task Bidi_OverHttp11_HalfDuplex_EveryRequestAnsweredWithMetadata(Protocol protocol, Codec codec, string? compression)
    {
        using var meta = new ResponseMetadata();
        List<GreetResponse> responses = await Client(protocol, codec, compression, http2: false)
            .ChatAsync(Names("Ada", "Grace", "Linus"), RequestHeaders()).ToListWithin();
        Assert.Equal(["Hello, Ada!", "Hello, Grace!", "Hello, Linus!"], responses.Select(r => r.Greeting));
        AssertMetadata(meta.Headers, meta.Trailers);
        Assert.Equal($"{protocol} HTTP/1.1 http", _server.Service.Transports[GreetServiceConnect.Procedures.Chat]);
    }

    [Theory]
    [InlineData(Protocol.Connect)]
    [InlineData(Protocol.GrpcWeb)]
    [InlineData(Protocol.GrpcWebText)]
    public async Task Bidi_OverHttp11_HandlerFails_MessageThenErrorWithMetadata(Protocol protocol)
    {
        Headers headers = RequestHeaders();
        headers["x-fail"] = "aborted";
        using var meta = new ResponseMetadata();
        var received = new List<string>();
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(async () =>
        {
            await foreach (GreetResponse response in Client(protocol, http2: false).ChatAsync(Names("Ada", "Grace"), headers).WithCancellation(Bounded.Token))
            {
                received.Add(response.Greeting);
            }
        });
        Assert.Equal(["Hello, Ada!"], received);
        Assert.Equal(Code.Aborted, error.Code);
        Assert.Equal("failed as asked", error.Message);
        Assert.Equal("yes", error.Metadata.Get("x-error-meta"));
        AssertMetadata(meta.Headers, meta.Trailers);
    }

    [Theory]
    [InlineData(Protocol.Connect)]
    [InlineData(Protocol.GrpcWeb)]
    [InlineData(Protocol.GrpcWebText)]
    public async Task Bidi_OverHttp11_Deadline_DeadlineExceededAndHandlerIsCanceled(Protocol protocol)
    {
        var headers = new Headers { ["x-sleep-ms"] = "10000" };
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(protocol, http2: false).ChatAsync(Names("Ada"), headers, timeout: TimeSpan.FromMilliseconds(300)).ToListWithin());
        Assert.Equal(Code.DeadlineExceeded, error.Code);
        await Wait.UntilAsync(() => _server.Service.Canceled.Contains(GreetServiceConnect.Procedures.Chat));
        Assert.InRange(_server.Service.Timeouts[GreetServiceConnect.Procedures.Chat]!.Value, TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(300));
    }

    [Theory]
    [InlineData(Protocol.Connect)]
    [InlineData(Protocol.GrpcWeb)]
    [InlineData(Protocol.GrpcWebText)]
    public async Task Bidi_OverHttp11_ClientCancels_CanceledAndHandlerSeesIt(Protocol protocol)
    {
        var headers = new Headers { ["x-sleep-ms"] = "10000" };
        using var cancel = new CancellationTokenSource();
        var received = new List<string>();
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(async () =>
        {
            await foreach (GreetResponse response in Client(protocol, http2: false).ChatAsync(Names("Ada", "Grace"), headers, cancellationToken: cancel.Token).WithCancellation(Bounded.Token))
            {
                received.Add(response.Greeting);
                await cancel.CancelAsync();
            }
        });
        Assert.Equal(Code.Canceled, error.Code);
        Assert.Equal(["Hello, Ada!"], received);
        await Wait.UntilAsync(() => _server.Service.Canceled.Contains(GreetServiceConnect.Procedures.Chat));
    }

    /// <summary>
    /// A request stream that waits for a response before it ends cannot work half-duplex: the
    /// call ends at its deadline, and its error says why and what to do.
    /// </summary>
    [Theory]
    [InlineData(Protocol.Connect)]
    [InlineData(Protocol.GrpcWeb)]
    [InlineData(Protocol.GrpcWebText)]
    public async Task Bidi_OverHttp11_PingPong_EndsAtDeadlineSayingHalfDuplex(Protocol protocol)
    {
        var client = _server.Client(http2: false, new ConnectClientOptions { Protocol = protocol, Timeout = TimeSpan.FromMilliseconds(500) });
        using var meta = new ResponseMetadata();
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => PingPongAsync(client, RequestHeaders(), meta, ["Ada", "Grace"]));
        Assert.Equal(Code.DeadlineExceeded, error.Code);
        Assert.True(error.Message.Contains("half-duplex", StringComparison.Ordinal), error.ToString());
        Assert.Contains("HttpVersion.Version20", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bidi_OverHttp11_PingPongCanceled_CanceledSayingHalfDuplex()
    {
        var client = Client(Protocol.Connect, http2: false);
        var requests = Channel.CreateUnbounded<GreetRequest>();
        await requests.Writer.WriteAsync(new GreetRequest { Name = "Ada" });
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => client.ChatAsync(requests.Reader.ReadAllAsync(Bounded.Token), cancellationToken: cancel.Token).ToListWithin());
        Assert.Equal(Code.Canceled, error.Code);
        Assert.True(error.Message.Contains("half-duplex", StringComparison.Ordinal), error.ToString());
    }

    [Theory]
    [MemberData(nameof(AllProtocols))]
    public async Task Unary_Deadline_ClientGetsDeadlineExceededAndHandlerIsCanceled(Protocol protocol)
    {
        var headers = new Headers { ["x-sleep-ms"] = "10000" };
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(protocol).GreetAsync(new GreetRequest(), headers, timeout: TimeSpan.FromMilliseconds(300)).Within());
        Assert.Equal(Code.DeadlineExceeded, error.Code);
        await Wait.UntilAsync(() => _server.Service.Canceled.Contains(GreetServiceConnect.Procedures.Greet));
        TimeSpan? seen = _server.Service.Timeouts[GreetServiceConnect.Procedures.Greet];
        Assert.NotNull(seen);
        Assert.InRange(seen.Value, TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(300));
    }

    [Theory]
    [MemberData(nameof(AllProtocols))]
    public async Task ServerStreaming_ClientCancels_CanceledAndHandlerSeesIt(Protocol protocol)
    {
        var headers = new Headers { ["x-sleep-ms"] = "10000" };
        using var cancel = new CancellationTokenSource();
        var received = new List<string>();
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(async () =>
        {
            await foreach (GreetResponse response in Client(protocol).GreetManyAsync(new GreetRequest { Name = "x" }, headers, cancellationToken: cancel.Token).WithCancellation(Bounded.Token))
            {
                received.Add(response.Greeting);
                await cancel.CancelAsync();
            }
        });
        Assert.Equal(Code.Canceled, error.Code);
        Assert.Single(received);
        await Wait.UntilAsync(() => _server.Service.Canceled.Contains(GreetServiceConnect.Procedures.GreetMany));
    }

    public static TheoryData<Protocol, bool> ProtocolsAndStreaming()
    {
        var data = new TheoryData<Protocol, bool>();
        foreach (Protocol protocol in Protocols)
        {
            data.Add(protocol, false);
            data.Add(protocol, true);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(ProtocolsAndStreaming))]
    public async Task HandlerThrowsPlainException_UnknownWithSafeMessageAndMetadataStillSent(Protocol protocol, bool streaming)
    {
        _server.ExpectLogs("the handler's exception, logged by the server (the client gets only 'unknown')", entry => entry.Exception is InvalidOperationException);
        var headers = new Headers { ["x-throw"] = "db password is hunter2" };
        using var meta = new ResponseMetadata();
        ConnectException error = streaming
            ? await Assert.ThrowsAsync<ConnectException>(() => Client(protocol).GreetManyAsync(new GreetRequest(), headers).ToListWithin())
            : await Assert.ThrowsAsync<ConnectException>(() => Client(protocol).GreetAsync(new GreetRequest(), headers).Within());
        Assert.Equal(Code.Unknown, error.Code);
        Assert.DoesNotContain("hunter2", error.ToString(), StringComparison.Ordinal);
        Assert.Equal("v1", meta.Headers.Get("greet-version"));
        Assert.Equal("v1", meta.Trailers.Get("greet-version"));
        await Wait.UntilAsync(() => _server.Logs.Any(l => l.Contains("hunter2", StringComparison.Ordinal)));
    }

    public static TheoryData<Protocol, string> ProtocolsAndReservedKeys()
    {
        var data = new TheoryData<Protocol, string>();
        foreach (Protocol protocol in Protocols)
        {
            foreach (string key in new[] { "grpc-status", "Connect-Timeout-Ms", "trailer-x", "content-type" })
            {
                data.Add(protocol, key);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(ProtocolsAndReservedKeys))]
    public async Task HandlerWritesReservedHeader_RefusedWithArgumentExceptionNeverSent(Protocol protocol, string key)
    {
        _server.ExpectLogs("the handler's ArgumentException for the reserved header, logged by the server", entry => entry.Exception is ArgumentException);
        var headers = new Headers { ["x-bad-header"] = key };
        using var meta = new ResponseMetadata();
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => Client(protocol).GreetAsync(new GreetRequest(), headers).Within());
        Assert.Equal(Code.Unknown, error.Code);
        Assert.Equal("the handler failed with an unexpected error", error.Message);
        Assert.DoesNotContain(meta.Headers, h => h.Key.Equals(key, StringComparison.OrdinalIgnoreCase) && h.Value == "x");
        Assert.DoesNotContain(meta.Trailers, h => h.Key.Equals(key, StringComparison.OrdinalIgnoreCase) && h.Value == "x");
        await Wait.UntilAsync(() => _server.Logs.Any(l => l.Contains("ArgumentException", StringComparison.Ordinal) && l.Contains(key, StringComparison.OrdinalIgnoreCase)));
    }

    [Fact]
    public async Task Unary_HttpGet_ForNoSideEffectsMethod_Works()
    {
        foreach (Codec codec in new[] { Codec.Proto, Codec.Json })
        {
            using var meta = new ResponseMetadata();
            var client = _server.Client(options: new ConnectClientOptions { UseHttpGet = true, Codec = codec, SendCompression = "gzip" });
            GreetResponse response = await client.GreetAsync(new GreetRequest { Name = "Ada" }, RequestHeaders()).Within();
            Assert.Equal("Hello, Ada!", response.Greeting);
            AssertMetadata(meta.Headers, meta.Trailers);
        }
    }

    [Theory]
    [MemberData(nameof(AllProtocols))]
    public async Task ConnectionRefused_Unavailable(Protocol protocol)
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var client = new GreetServiceClient($"http://127.0.0.1:{port}", new ConnectClientOptions { Protocol = protocol });
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => client.GreetAsync(new GreetRequest()).Within());
        Assert.Equal(Code.Unavailable, error.Code);
    }

    [Theory]
    [MemberData(nameof(AllProtocols))]
    public async Task UnknownProcedure_Unimplemented(Protocol protocol)
    {
        var invoker = new CallInvoker(_server.Http2Url.ToString(), new ConnectClientOptions { Protocol = protocol, HttpVersion = System.Net.HttpVersion.Version20 });
        var method = new Method<GreetRequest, GreetResponse>("connectrpc.greet.v1.GreetService", "Missing", MethodKind.Unary, GreetRequest.Parser, GreetResponse.Parser);
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => invoker.UnaryAsync(method, new GreetRequest()).Within());
        Assert.Equal(Code.Unimplemented, error.Code);
    }

    [Theory]
    [MemberData(nameof(AllProtocols))]
    public async Task ResponseOverClientLimit_ResourceExhausted(Protocol protocol)
    {
        var client = _server.Client(http2: true, new ConnectClientOptions { Protocol = protocol, MaxReceiveMessageSize = 16 });
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => client.GreetAsync(new GreetRequest { Name = new string('x', 100) }).Within());
        Assert.Equal(Code.ResourceExhausted, error.Code);
    }

    internal static async IAsyncEnumerable<GreetRequest> Names(params string[] names)
    {
        foreach (string name in names)
        {
            await Task.Yield();
            yield return new GreetRequest { Name = name };
        }
    }
}
