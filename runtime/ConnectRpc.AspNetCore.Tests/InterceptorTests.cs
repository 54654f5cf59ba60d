using System.Collections.Concurrent;
using Connectrpc.Greet.V1;
using ConnectRpc.Tests;
using Google.Protobuf;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>Client and server interceptors over real HTTP, unary and streaming.</summary>
public sealed class InterceptorTests
{
    [Fact]
    public async Task ServerAuthInterceptor_NoToken_UnauthenticatedForEveryKind()
    {
        await using KestrelHost server = await KestrelHost.StartAsync(o => o.Interceptors.Add(new RequireToken("s3cret")));
        GreetServiceClient anonymous = server.Client(http2: true);
        Assert.Equal(Code.Unauthenticated, (await Assert.ThrowsAsync<ConnectException>(() => anonymous.GreetAsync(new GreetRequest()).Within())).Code);
        Assert.Equal(Code.Unauthenticated, (await Assert.ThrowsAsync<ConnectException>(() => anonymous.GreetManyAsync(new GreetRequest()).ToListWithin())).Code);
        Assert.Equal(Code.Unauthenticated, (await Assert.ThrowsAsync<ConnectException>(() => anonymous.ChatAsync(ConnectCallTests.Names("a")).ToListWithin())).Code);

        GreetServiceClient authorized = server.Client(http2: true, new ConnectClientOptions { Interceptors = { new AddToken("s3cret") } });
        Assert.Equal("Hello, Ada!", (await authorized.GreetAsync(new GreetRequest { Name = "Ada" }).Within()).Greeting);
        Assert.Equal(3, (await authorized.GreetManyAsync(new GreetRequest()).ToListWithin()).Count);
    }

    [Fact]
    public async Task ServerInterceptor_WritesMetadataAndSeesMessagesInOrder()
    {
        var audit = new AuditInterceptor();
        await using KestrelHost server = await KestrelHost.StartAsync(o => o.Interceptors.Add(audit));
        using var meta = new ResponseMetadata();
        List<GreetResponse> responses = await server.Client(http2: true).ChatAsync(ConnectCallTests.Names("a", "b")).ToListWithin();
        Assert.Equal(2, responses.Count);
        Assert.Equal("audit", meta.Headers.Get("x-audit"));
        Assert.Equal("2 in, 2 out", meta.Trailers.Get("x-audit-count"));
        Assert.Equal(["in:a", "out:Hello, a!", "in:b", "out:Hello, b!"], audit.Log);
    }

    [Fact]
    public async Task ServerInterceptor_TrailersStillSentWhenHandlerFails()
    {
        await using KestrelHost server = await KestrelHost.StartAsync(o => o.Interceptors.Add(new AuditInterceptor()));
        using var meta = new ResponseMetadata();
        var headers = new Headers { ["x-fail"] = "data_loss" };
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => server.Client().GreetAsync(new GreetRequest(), headers).Within());
        Assert.Equal(Code.DataLoss, error.Code);
        Assert.Equal("1 in, 0 out", meta.Trailers.Get("x-audit-count"));
        Assert.Equal("v1", meta.Trailers.Get("greet-version"));
    }

    [Theory]
    [MemberData(nameof(ConnectCallTests.AllProtocols), MemberType = typeof(ConnectCallTests))]
    public async Task ServerRethrowsErrorFromAnotherCall_StatusForwardedNotItsMetadata(Protocol protocol)
    {
        await using KestrelHost downstream = await KestrelHost.StartAsync();
        var failing = new Headers { ["x-fail"] = "not_found", ["x-detail"] = "gone" };
        ConnectException received = await Assert.ThrowsAsync<ConnectException>(
            () => downstream.Client(http2: true, new ConnectClientOptions { Protocol = protocol }).GreetAsync(new GreetRequest(), failing).Within());
        Assert.Equal("yes", received.Headers.Get("x-error-meta"));

        await using KestrelHost server = await KestrelHost.StartAsync(o => o.Interceptors.Add(new Rethrow(received)));
        using var meta = new ResponseMetadata();
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => server.Client(http2: true, new ConnectClientOptions { Protocol = protocol }).GreetAsync(new GreetRequest()).Within());
        Assert.Equal(Code.NotFound, error.Code);
        Assert.Equal("failed as asked", error.Message);
        Assert.Equal("gone", error.GetDetail<Google.Protobuf.WellKnownTypes.StringValue>()?.Value);
        Assert.Null(error.Metadata.Get("x-error-meta"));
        Assert.Null(error.Metadata.Get("greet-version"));
    }

    [Theory]
    [InlineData(Protocol.Connect, "connect-csharp/")]
    [InlineData(Protocol.Grpc, "grpc-csharp-connect/")]
    [InlineData(Protocol.GrpcWeb, "grpc-csharp-connect/")]
    public async Task UserAgent_RuntimesOwnUnlessTheApplicationSetsOne(Protocol protocol, string prefix)
    {
        var seen = new ConcurrentQueue<string?>();
        await using KestrelHost server = await KestrelHost.StartAsync(o => o.Interceptors.Add(new RecordHeader("user-agent", seen)));
        GreetServiceClient client = server.Client(http2: true, new ConnectClientOptions { Protocol = protocol });
        await client.GreetAsync(new GreetRequest()).Within();
        await client.GreetAsync(new GreetRequest(), new Headers { ["user-agent"] = "acme/7" }).Within();
        Assert.Collection(
            seen,
            agent => Assert.StartsWith(prefix, agent, StringComparison.Ordinal),
            agent => Assert.Equal("acme/7", agent));
    }

    [Theory]
    [InlineData(Protocol.Connect)]
    [InlineData(Protocol.Grpc)]
    public async Task ApplicationsHttpClient_ItsDefaultHeadersGoOnEveryCall(Protocol protocol)
    {
        var agents = new ConcurrentQueue<string?>();
        var tenants = new ConcurrentQueue<string?>();
        await using KestrelHost server = await KestrelHost.StartAsync(o =>
        {
            o.Interceptors.Add(new RecordHeader("user-agent", agents));
            o.Interceptors.Add(new RecordHeader("acme-tenant-id", tenants));
        });
        using var http = new HttpClient { BaseAddress = server.Http2Url };
        http.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", "acme-app/2");
        http.DefaultRequestHeaders.TryAddWithoutValidation("acme-tenant-id", "1234");
        var client = new GreetServiceClient(http, new ConnectClientOptions { Protocol = protocol, HttpVersion = System.Net.HttpVersion.Version20 });

        await client.GreetAsync(new GreetRequest()).Within();

        // Sent through the application's HttpClient, not around it: its defaults apply, and its
        // User-Agent stands instead of the runtime's.
        Assert.Equal("acme-app/2", Assert.Single(agents));
        Assert.Equal("1234", Assert.Single(tenants));
    }

    [Fact]
    public async Task ClientInterceptors_RunOutermostFirst_SeeResponseMetadata()
    {
        await using KestrelHost server = await KestrelHost.StartAsync();
        var order = new ConcurrentQueue<string>();
        var first = new Recording("first", order);
        var second = new Recording("second", order);
        var client = server.Client(http2: true, new ConnectClientOptions { Interceptors = { first, second } });
        _ = await client.GreetManyAsync(new GreetRequest { Name = "x" }).ToListWithin();
        Assert.Equal(["first", "second"], order);
        Assert.Equal("v1", second.TrailerSeen);
        Assert.Equal(3, second.Received);
    }

    [Fact]
    public async Task ClientInterceptor_Rejects_CallFailsBeforeTheNetwork()
    {
        await using KestrelHost server = await KestrelHost.StartAsync();
        var client = server.Client(options: new ConnectClientOptions { Interceptors = { new Refuse() } });
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => client.GreetAsync(new GreetRequest()).Within());
        Assert.Equal(Code.FailedPrecondition, error.Code);
        Assert.Empty(server.Service.Timeouts);
    }

    [Fact]
    public async Task ClientInterceptor_ReservedHeader_ArgumentException()
    {
        await using KestrelHost server = await KestrelHost.StartAsync();
        var client = server.Client(options: new ConnectClientOptions { Interceptors = { new AddHeader("connect-timeout-ms", "1") } });
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => client.GreetAsync(new GreetRequest()).Within());
        ArgumentException cause = Assert.IsType<ArgumentException>(error.InnerException);
        Assert.Contains("connect-timeout-ms", cause.Message, StringComparison.Ordinal);
    }

    private sealed class RequireToken(string token) : ServerInterceptor
    {
        public override Task InterceptAsync(ServerCall call, ServerCallHandler next) =>
            call.Context.RequestHeaders.Get("authorization") == "Bearer " + token
                ? next(call)
                : throw new ConnectException(Code.Unauthenticated, "missing or wrong token");
    }

    private sealed class RecordHeader(string key, ConcurrentQueue<string?> seen) : ServerInterceptor
    {
        public override Task InterceptAsync(ServerCall call, ServerCallHandler next)
        {
            seen.Enqueue(call.Context.RequestHeaders.Get(key));
            return next(call);
        }
    }

    private sealed class Rethrow(ConnectException error) : ServerInterceptor
    {
        public override Task InterceptAsync(ServerCall call, ServerCallHandler next) => throw error;
    }

    private sealed class AddToken(string token) : ClientInterceptor
    {
        public override ClientCall<TRequest, TResponse> Intercept<TRequest, TResponse>(ClientCall<TRequest, TResponse> call)
        {
            call.RequestHeaders["authorization"] = "Bearer " + token;
            return call;
        }
    }

    private sealed class AddHeader(string key, string value) : ClientInterceptor
    {
        public override ClientCall<TRequest, TResponse> Intercept<TRequest, TResponse>(ClientCall<TRequest, TResponse> call)
        {
            call.RequestHeaders[key] = value;
            return call;
        }
    }

    private sealed class Refuse : ClientInterceptor
    {
        public override ClientCall<TRequest, TResponse> Intercept<TRequest, TResponse>(ClientCall<TRequest, TResponse> call) =>
            throw new ConnectException(Code.FailedPrecondition, "refused locally");
    }

    private sealed class AuditInterceptor : ServerInterceptor
    {
        public ConcurrentQueue<string> Log { get; } = new();

        public override async Task InterceptAsync(ServerCall call, ServerCallHandler next)
        {
            call.Context.ResponseHeaders["x-audit"] = "audit";
            var counting = new Counting(call, Log);
            try
            {
                await next(counting);
            }
            finally
            {
                call.Context.ResponseTrailers["x-audit-count"] = $"{counting.In} in, {counting.Out} out";
            }
        }

        private sealed class Counting(ServerCall inner, ConcurrentQueue<string> log) : DelegatingServerCall(inner)
        {
            public int In { get; private set; }

            public int Out { get; private set; }

            public override async ValueTask<T?> ReadAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
                where T : class
            {
                T? message = await base.ReadAsync(parser, cancellationToken);
                if (message is GreetRequest request)
                {
                    In++;
                    log.Enqueue("in:" + request.Name);
                }

                return message;
            }

            public override ValueTask WriteAsync<T>(T message, CancellationToken cancellationToken)
                where T : class
            {
                Out++;
                log.Enqueue("out:" + (message as GreetResponse)?.Greeting);
                return base.WriteAsync(message, cancellationToken);
            }
        }
    }

    private sealed class Recording(string name, ConcurrentQueue<string> order) : ClientInterceptor
    {
        public string Name => name;

        public ConcurrentQueue<string> Order => order;

        public string? TrailerSeen { get; private set; }

        public int Received { get; private set; }

        public override ClientCall<TRequest, TResponse> Intercept<TRequest, TResponse>(ClientCall<TRequest, TResponse> call)
        {
            return new Call<TRequest, TResponse>(call, this);
        }

        private sealed class Call<TRequest, TResponse>(ClientCall<TRequest, TResponse> inner, Recording owner) : DelegatingClientCall<TRequest, TResponse>(inner)
            where TRequest : class, IMessage<TRequest>
            where TResponse : class, IMessage<TResponse>
        {
            private bool _entered;

            public override async ValueTask<TResponse?> ReceiveAsync(CancellationToken cancellationToken)
            {
                if (!_entered)
                {
                    _entered = true;
                    owner.Order.Enqueue(owner.Name);
                }

                TResponse? response = await base.ReceiveAsync(cancellationToken);
                if (response is null)
                {
                    owner.TrailerSeen = ResponseTrailers.Get("greet-version");
                }
                else
                {
                    owner.Received++;
                }

                return response;
            }
        }
    }
}
