using Connectrpc.Greet.V1;
using ConnectRpc.Tests;
using Google.Protobuf;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// A server interceptor may wrap a call, but the handler always writes into the context the
/// server sends from: the handler's headers and trailers reach the client on every protocol,
/// and a call that wraps nothing of the server's is refused with a clear error instead of
/// losing metadata or breaking service activation.
/// </summary>
public sealed class ServerInterceptorContextTests(InterceptorServer fixture) : IClassFixture<InterceptorServer>
{
    private readonly KestrelHost _server = fixture.Host;

    [Theory]
    [MemberData(nameof(EveryProtocolCallTests.AllProtocols), MemberType = typeof(EveryProtocolCallTests))]
    public async Task WrappingInterceptor_HandlersHeadersAndTrailersStillArrive(Protocol protocol)
    {
        fixture.Interceptor = new WrapEveryCall();
        GreetServiceClient client = _server.Client(http2: true, new ConnectClientOptions { Protocol = protocol });

        using (var meta = new ResponseMetadata())
        {
            GreetResponse response = await client.GreetAsync(new GreetRequest { Name = "Ada" }, new Headers { ["acme-tenant-id"] = "42" }).Within();
            Assert.Equal("Hello, Ada!", response.Greeting);
            Assert.Equal("42", meta.Headers.Get("acme-tenant-id"));
            Assert.Equal("v1", meta.Headers.Get("greet-version"));
            Assert.Equal("v1", meta.Trailers.Get("greet-version"));
            Assert.Equal("wrapped", meta.Headers.Get("x-wrapped"));
            Assert.Equal("1", meta.Trailers.Get("x-wrapped-writes"));
        }

        using (var meta = new ResponseMetadata())
        {
            List<GreetResponse> responses = await client.GreetManyAsync(new GreetRequest { Name = "Ada" }).ToListWithin();
            Assert.Equal(3, responses.Count);
            Assert.Equal("v1", meta.Headers.Get("greet-version"));
            Assert.Equal("v1", meta.Trailers.Get("greet-version"));
            Assert.Equal("3", meta.Trailers.Get("x-wrapped-writes"));
        }

        Assert.Empty(_server.Logs);
    }

    [Fact]
    public async Task InterceptorWithACallOfItsOwn_RefusedClearly_ServerKeepsServing()
    {
        fixture.Interceptor = new ReplaceEveryCall();
        GreetServiceClient client = _server.Client(http2: true);
        _server.ExpectLogs("the endpoint refuses the interceptor's own call and logs it", "does not wrap the server's call");

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => client.GreetAsync(new GreetRequest(), new Headers { ["x-replace"] = "1" }).Within());

        Assert.Equal(Code.Unknown, error.Code);
        Assert.Contains(_server.Logs, log => log.Contains("does not wrap the server's call", StringComparison.Ordinal));
        Assert.Equal("Hello, Ada!", (await client.GreetAsync(new GreetRequest { Name = "Ada" }).Within()).Greeting);
    }

    [Fact]
    public void ServerCallContext_CannotBeOverridden()
    {
        System.Reflection.MethodInfo getter = typeof(ServerCall).GetProperty(nameof(ServerCall.Context))!.GetMethod!;

        Assert.False(getter.IsVirtual);
        Assert.Null(typeof(DelegatingServerCall).GetProperty(nameof(ServerCall.Context), System.Reflection.BindingFlags.DeclaredOnly | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance));
    }

    /// <summary>Wraps every call, writes metadata of its own and counts the handler's writes.</summary>
    private sealed class WrapEveryCall : ServerInterceptor
    {
        public override async Task InterceptAsync(ServerCall call, ServerCallHandler next)
        {
            var wrapped = new CountingCall(call);
            Assert.Same(call.Context, wrapped.Context);
            wrapped.Context.ResponseHeaders["x-wrapped"] = "wrapped";
            try
            {
                await next(wrapped);
            }
            finally
            {
                call.Context.ResponseTrailers["x-wrapped-writes"] = wrapped.Writes.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
        }
    }

    private sealed class CountingCall(ServerCall inner) : DelegatingServerCall(inner)
    {
        public int Writes { get; private set; }

        public override ValueTask WriteAsync<T>(T message, CancellationToken cancellationToken)
        {
            Writes++;
            return base.WriteAsync(message, cancellationToken);
        }
    }

    /// <summary>Hands the handler a call of its own (with a context it made) when asked to.</summary>
    private sealed class ReplaceEveryCall : ServerInterceptor
    {
        public override Task InterceptAsync(ServerCall call, ServerCallHandler next) =>
            call.Context.RequestHeaders.ContainsKey("x-replace") ? next(new DetachedCall(call)) : next(call);
    }

    private sealed class DetachedCall(ServerCall inner) : ServerCall(new RequestContext(inner.Context.Procedure, inner.Context.RequestHeaders))
    {
        public override Method Method => inner.Method;

        public override ValueTask<T?> ReadAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
            where T : class => inner.ReadAsync(parser, cancellationToken);

        public override ValueTask WriteAsync<T>(T message, CancellationToken cancellationToken)
            where T : class => inner.WriteAsync(message, cancellationToken);
    }
}
