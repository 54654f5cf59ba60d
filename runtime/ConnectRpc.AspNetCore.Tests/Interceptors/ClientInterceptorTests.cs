using System.Collections.Concurrent;
using Connectrpc.Greet.V1;
using ConnectRpc.Tests;
using Google.Protobuf;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>Client interceptors against our server over real HTTP: their order, what they see of the response, and rejecting a call before the network.</summary>
public sealed class ClientInterceptorTests(GreetServer fixture) : IClassFixture<GreetServer>
{
    private readonly KestrelHost _server = fixture.Host;

    [Fact]
    public async Task ClientInterceptors_RunOutermostFirst_SeeResponseMetadata()
    {
        var order = new ConcurrentQueue<string>();
        var first = new Recording("first", order);
        var second = new Recording("second", order);
        var client = _server.Client(http2: true, new ConnectClientOptions { Interceptors = { first, second } });
        _ = await client.GreetManyAsync(new GreetRequest { Name = "x" }).ToListWithin();
        Assert.Equal(["first", "second"], order);
        Assert.Equal("v1", second.TrailerSeen);
        Assert.Equal(3, second.Received);
    }

    [Fact]
    public async Task ClientInterceptor_Rejects_CallFailsBeforeTheNetwork()
    {
        var client = _server.Client(options: new ConnectClientOptions { Interceptors = { new Refuse() } });
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => client.GreetAsync(new GreetRequest()).Within());
        Assert.Equal(Code.FailedPrecondition, error.Code);
        Assert.Empty(_server.Service.Timeouts);
    }

    [Fact]
    public async Task ClientInterceptor_ReservedHeader_ArgumentException()
    {
        var client = _server.Client(options: new ConnectClientOptions { Interceptors = { new AddHeader("connect-timeout-ms", "1") } });
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => client.GreetAsync(new GreetRequest()).Within());
        ArgumentException cause = Assert.IsType<ArgumentException>(error.InnerException);
        Assert.Contains("connect-timeout-ms", cause.Message, StringComparison.Ordinal);
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
