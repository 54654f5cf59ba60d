using Connectrpc.Greet.V1;
using Microsoft.Extensions.DependencyInjection;

namespace ConnectRpc.Tests;

/// <summary>The ways a generated client is made (docs/architecture.md#the-user-facing-api).</summary>
public sealed class ClientConstructionTests
{
    [Fact]
    public void HttpClientFactory_TypedClient_IsActivatedWithTheFactorysHttpClient()
    {
        var services = new ServiceCollection();
        services.AddHttpClient<GreetServiceClient>(http => http.BaseAddress = new Uri("http://127.0.0.1:5000/api/"));
        using ServiceProvider provider = services.BuildServiceProvider();

        GreetServiceClient client = provider.GetRequiredService<GreetServiceClient>();

        CallInvoker invoker = InvokerOf(client);
        Assert.Equal("http://127.0.0.1:5000/api", invoker.BaseAddress.ToString());
        Assert.Equal(Codec.Proto, invoker.Options.Codec);
    }

    [Fact]
    public void HttpClientFactory_OptionsRegistered_AreInjected()
    {
        var services = new ServiceCollection();
        services.AddSingleton(new ConnectClientOptions { Codec = Codec.Json });
        services.AddHttpClient<IGreetServiceClient, GreetServiceClient>(http => http.BaseAddress = new Uri("http://127.0.0.1:5000"));
        using ServiceProvider provider = services.BuildServiceProvider();

        IGreetServiceClient client = provider.GetRequiredService<IGreetServiceClient>();

        CallInvoker invoker = InvokerOf(Assert.IsType<GreetServiceClient>(client));
        Assert.Equal(Codec.Json, invoker.Options.Codec);
        Assert.Equal("http://127.0.0.1:5000/", invoker.BaseAddress.ToString());
    }

    // The generated client keeps its invoker private; the test looks inside on purpose.
    private static CallInvoker InvokerOf(GreetServiceClient client) =>
        (CallInvoker)typeof(GreetServiceClient)
            .GetField("_invoker", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!
            .GetValue(client)!;

    [Fact]
    public void Invoker_SharedByTwoClients_Works()
    {
        var invoker = new CallInvoker("https://api.acme.com/prefix");

        var first = new GreetServiceClient(invoker);
        var second = new GreetServiceClient(invoker);

        Assert.NotSame(first, second);
        Assert.Equal("https://api.acme.com/prefix", invoker.BaseAddress.ToString());
    }

    [Fact]
    public void Options_AreCopied_LaterChangesDoNotAffectAClient()
    {
        var options = new ConnectClientOptions { Timeout = TimeSpan.FromSeconds(1) };
        var transport = new EchoTransport { Hang = true };
        var invoker = new CallInvoker(transport, new Uri("http://127.0.0.1:1"), options);

        options.Timeout = TimeSpan.FromHours(1);

        Assert.Equal(TimeSpan.FromSeconds(1), invoker.Options.Timeout);
    }

    [Fact]
    public void JsonTypes_AreCopied_NullRefused()
    {
        var options = new ConnectClientOptions { JsonTypes = { GreetRequest.Descriptor } };
        var invoker = new CallInvoker("http://127.0.0.1:1", options);

        options.JsonTypes.Clear();

        Assert.Equal([GreetRequest.Descriptor], invoker.Options.JsonTypes);
        options.JsonTypes.Add(null!);
        ArgumentException error = Assert.Throws<ArgumentException>(() => new CallInvoker("http://127.0.0.1:1", options));
        Assert.Contains("JsonTypes contains null", error.Message, StringComparison.Ordinal);
    }
}
