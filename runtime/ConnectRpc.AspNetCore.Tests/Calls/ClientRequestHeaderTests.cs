using System.Collections.Concurrent;
using Connectrpc.Greet.V1;
using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// The request headers our client sends, as a server interceptor records them: the runtime's
/// User-Agent unless the application sets one, and the default headers of an application's own
/// HttpClient on every call. The class shares one server; each test sets its recording interceptor.
/// </summary>
public sealed class ClientRequestHeaderTests : IClassFixture<InterceptorServer>
{
    private readonly InterceptorServer _fixture;
    private readonly KestrelHost _server;

    public ClientRequestHeaderTests(InterceptorServer fixture)
    {
        fixture.Interceptor = null;
        _fixture = fixture;
        _server = fixture.Host;
    }

    [Theory]
    [InlineData(Protocol.Connect, "connect-csharp/")]
    [InlineData(Protocol.Grpc, "grpc-csharp-connect/")]
    [InlineData(Protocol.GrpcWeb, "grpc-csharp-connect/")]
    public async Task UserAgent_RuntimesOwnUnlessTheApplicationSetsOne(Protocol protocol, string prefix)
    {
        var seen = new ConcurrentQueue<string?>();
        _fixture.Interceptor = new RecordHeaders(("user-agent", seen));
        GreetServiceClient client = _server.Client(http2: true, new ConnectClientOptions { Protocol = protocol });
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
        _fixture.Interceptor = new RecordHeaders(("user-agent", agents), ("acme-tenant-id", tenants));
        using var http = new HttpClient { BaseAddress = _server.Http2Url };
        http.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", "acme-app/2");
        http.DefaultRequestHeaders.TryAddWithoutValidation("acme-tenant-id", "1234");
        var client = new GreetServiceClient(http, new ConnectClientOptions { Protocol = protocol, HttpVersion = System.Net.HttpVersion.Version20 });

        await client.GreetAsync(new GreetRequest()).Within();

        // Sent through the application's HttpClient, not around it: its defaults apply, and its
        // User-Agent stands instead of the runtime's.
        Assert.Equal("acme-app/2", Assert.Single(agents));
        Assert.Equal("1234", Assert.Single(tenants));
    }

    /// <summary>Records each call's value of every key it is given, in its own queue.</summary>
    private sealed class RecordHeaders(params (string Key, ConcurrentQueue<string?> Seen)[] keys) : ServerInterceptor
    {
        public override Task InterceptAsync(ServerCall call, ServerCallHandler next)
        {
            foreach ((string key, ConcurrentQueue<string?> seen) in keys)
            {
                seen.Enqueue(call.Context.RequestHeaders.Get(key));
            }

            return next(call);
        }
    }
}
