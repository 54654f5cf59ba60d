using System.Collections.Concurrent;
using Connectrpc.Greet.V1;
using ConnectRpc.Tests;
using Google.Protobuf;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// Server interceptors over real HTTP, unary and streaming: rejecting calls, writing metadata,
/// seeing messages, rethrowing another call's error. The class shares one server whose
/// interceptor each test sets (<see cref="InterceptorServer.Interceptor"/>), and a plain server to call
/// downstream.
/// </summary>
public sealed class ServerInterceptorTests : IClassFixture<InterceptorServer>, IClassFixture<GreetServer>
{
    private readonly KestrelHost _server;
    private readonly KestrelHost _downstream;
    private readonly InterceptorServer _fixture;

    public ServerInterceptorTests(InterceptorServer fixture, GreetServer downstream)
    {
        fixture.Interceptor = null;
        _fixture = fixture;
        _server = fixture.Host;
        _downstream = downstream.Host;
    }

    [Fact]
    public async Task ServerAuthInterceptor_NoToken_UnauthenticatedForEveryKind()
    {
        _fixture.Interceptor = new RequireToken("s3cret");
        GreetServiceClient anonymous = _server.Client(http2: true);
        Assert.Equal(Code.Unauthenticated, (await Assert.ThrowsAsync<ConnectException>(() => anonymous.GreetAsync(new GreetRequest()).Within())).Code);
        Assert.Equal(Code.Unauthenticated, (await Assert.ThrowsAsync<ConnectException>(() => anonymous.GreetManyAsync(new GreetRequest()).ToListWithin())).Code);
        Assert.Equal(Code.Unauthenticated, (await Assert.ThrowsAsync<ConnectException>(() => anonymous.ChatAsync(EveryProtocolCallTests.Names("a")).ToListWithin())).Code);

        GreetServiceClient authorized = _server.Client(http2: true, new ConnectClientOptions { Interceptors = { new AddToken("s3cret") } });
        Assert.Equal("Hello, Ada!", (await authorized.GreetAsync(new GreetRequest { Name = "Ada" }).Within()).Greeting);
        Assert.Equal(3, (await authorized.GreetManyAsync(new GreetRequest()).ToListWithin()).Count);
    }

    [Fact]
    public async Task ServerInterceptor_WritesMetadataAndSeesMessagesInOrder()
    {
        var audit = new AuditInterceptor();
        _fixture.Interceptor = audit;
        using var meta = new ResponseMetadata();
        List<GreetResponse> responses = await _server.Client(http2: true).ChatAsync(EveryProtocolCallTests.Names("a", "b")).ToListWithin();
        Assert.Equal(2, responses.Count);
        Assert.Equal("audit", meta.Headers.Get("x-audit"));
        Assert.Equal("2 in, 2 out", meta.Trailers.Get("x-audit-count"));
        Assert.Equal(["in:a", "out:Hello, a!", "in:b", "out:Hello, b!"], audit.Log);
    }

    [Fact]
    public async Task ServerInterceptor_TrailersStillSentWhenHandlerFails()
    {
        _fixture.Interceptor = new AuditInterceptor();
        using var meta = new ResponseMetadata();
        var headers = new Headers { ["x-fail"] = "data_loss" };
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => _server.Client().GreetAsync(new GreetRequest(), headers).Within());
        Assert.Equal(Code.DataLoss, error.Code);
        Assert.Equal("1 in, 0 out", meta.Trailers.Get("x-audit-count"));
        Assert.Equal("v1", meta.Trailers.Get("greet-version"));
    }

    [Theory]
    [MemberData(nameof(EveryProtocolCallTests.AllProtocols), MemberType = typeof(EveryProtocolCallTests))]
    public async Task ServerRethrowsErrorFromAnotherCall_StatusForwardedNotItsMetadata(Protocol protocol)
    {
        var failing = new Headers { ["x-fail"] = "not_found", ["x-detail"] = "gone" };
        ConnectException received = await Assert.ThrowsAsync<ConnectException>(
            () => _downstream.Client(http2: true, new ConnectClientOptions { Protocol = protocol }).GreetAsync(new GreetRequest(), failing).Within());
        Assert.Equal("yes", received.Headers.Get("x-error-meta"));

        _fixture.Interceptor = new Rethrow(received);
        using var meta = new ResponseMetadata();
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => _server.Client(http2: true, new ConnectClientOptions { Protocol = protocol }).GreetAsync(new GreetRequest()).Within());
        Assert.Equal(Code.NotFound, error.Code);
        Assert.Equal("failed as asked", error.Message);
        Assert.Equal("gone", error.GetDetail<Google.Protobuf.WellKnownTypes.StringValue>()?.Value);
        Assert.Null(error.Metadata.Get("x-error-meta"));
        Assert.Null(error.Metadata.Get("greet-version"));
    }

    private sealed class RequireToken(string token) : ServerInterceptor
    {
        public override Task InterceptAsync(ServerCall call, ServerCallHandler next) =>
            call.Context.RequestHeaders.Get("authorization") == "Bearer " + token
                ? next(call)
                : throw new ConnectException(Code.Unauthenticated, "missing or wrong token");
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
}
