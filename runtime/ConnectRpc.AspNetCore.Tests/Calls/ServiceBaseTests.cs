using Connectrpc.Greet.V1;
using ConnectRpc.Tests;
using Microsoft.AspNetCore.Builder;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// A service deriving from the generated <see cref="GreetServiceBase"/> serves what it
/// overrides; every other method answers <c>unimplemented</c> over the wire, on every protocol.
/// </summary>
public sealed class ServiceBaseTests
{
    [Theory]
    [MemberData(nameof(EveryProtocolCallTests.AllProtocols), MemberType = typeof(EveryProtocolCallTests))]
    public async Task UnoverriddenMethods_AnswerUnimplemented_OverriddenOneServes(Protocol protocol)
    {
        await using KestrelHost server = await KestrelHost.StartAsync(
            configure: null,
            tls: false,
            services: null,
            map: static app => app.MapConnectService<GreetOnlyService>(IGreetService.BindService));
        GreetServiceClient client = server.Client(http2: true, new ConnectClientOptions { Protocol = protocol });

        Assert.Equal("Hi, Ada", (await client.GreetAsync(new GreetRequest { Name = "Ada" }).Within()).Greeting);

        ConnectException many = await Assert.ThrowsAsync<ConnectException>(() => client.GreetManyAsync(new GreetRequest()).ToListWithin());
        Assert.Equal(Code.Unimplemented, many.Code);
        Assert.Equal("/connectrpc.greet.v1.GreetService/GreetMany is not implemented", many.Message);

        ConnectException everyone = await Assert.ThrowsAsync<ConnectException>(() => client.GreetEveryoneAsync(EveryProtocolCallTests.Names("a", "b")).Within());
        Assert.Equal(Code.Unimplemented, everyone.Code);
        Assert.Equal("/connectrpc.greet.v1.GreetService/GreetEveryone is not implemented", everyone.Message);

        ConnectException chat = await Assert.ThrowsAsync<ConnectException>(() => client.ChatAsync(EveryProtocolCallTests.Names("a")).ToListWithin());
        Assert.Equal(Code.Unimplemented, chat.Code);
        Assert.Equal("/connectrpc.greet.v1.GreetService/Chat is not implemented", chat.Message);

        // A ConnectException is the handler's answer, not a failure of the server: nothing logged.
        Assert.Empty(server.Logs);
    }

    /// <summary>Overrides one method of four, as an implementation written before the others were added would.</summary>
    private sealed class GreetOnlyService : GreetServiceBase
    {
        public override Task<GreetResponse> GreetAsync(GreetRequest request, RequestContext context) =>
            Task.FromResult(new GreetResponse { Greeting = "Hi, " + request.Name });
    }
}
