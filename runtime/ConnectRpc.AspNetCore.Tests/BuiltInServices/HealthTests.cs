extern alias GrpcDotnet;

using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using ConnectRpc.Tests;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using DotnetHealth = GrpcDotnet::Grpc.Health.V1;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// <c>grpc.health.v1.Health</c> from <c>MapConnectHealthService</c>, fed by ASP.NET Core health
/// checks that the tests switch on and off: grpc-dotnet's health client (Grpc.HealthCheck over
/// Grpc.Net.Client, gRPC) and our own client over every protocol, Check and Watch.
/// </summary>
public sealed class HealthTests
{
    private const string Greet = "connectrpc.greet.v1.GreetService";

    [Fact]
    public async Task Check_GrpcDotnetClient_OverallAndPerServiceFollowTheirChecks()
    {
        var greet = new Switch();
        var other = new Switch();
        await using KestrelHost server = await StartAsync(greet, other);
        using GrpcChannel channel = GrpcChannel.ForAddress(server.Http2Url);
        var client = new DotnetHealth::Health.HealthClient(channel);

        Assert.Equal(DotnetHealth::HealthCheckResponse.Types.ServingStatus.Serving, (await CheckAsync(client, "")).Status);
        Assert.Equal(DotnetHealth::HealthCheckResponse.Types.ServingStatus.Serving, (await CheckAsync(client, Greet)).Status);

        other.Healthy = false; // decides "" only
        Assert.Equal(DotnetHealth::HealthCheckResponse.Types.ServingStatus.NotServing, (await CheckAsync(client, "")).Status);
        Assert.Equal(DotnetHealth::HealthCheckResponse.Types.ServingStatus.Serving, (await CheckAsync(client, Greet)).Status);

        greet.Healthy = false;
        other.Healthy = true;
        Assert.Equal(DotnetHealth::HealthCheckResponse.Types.ServingStatus.NotServing, (await CheckAsync(client, "")).Status);
        Assert.Equal(DotnetHealth::HealthCheckResponse.Types.ServingStatus.NotServing, (await CheckAsync(client, Greet)).Status);

        RpcException unknown = await Assert.ThrowsAsync<RpcException>(() => CheckAsync(client, "no.such.Service"));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        // Unhealthy checks are logged by ASP.NET Core's health checks; the RPCs themselves log nothing.
        Assert.DoesNotContain(server.Logs, log => log.Contains("ConnectRpc", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(EveryProtocolCallTests.AllProtocols), MemberType = typeof(EveryProtocolCallTests))]
    public async Task Check_OurClient_EveryProtocol(Protocol protocol)
    {
        var greet = new Switch();
        await using KestrelHost server = await StartAsync(greet, new Switch());
        HealthClient client = Client(server, protocol);

        Assert.Equal(ServingStatus.Serving, (await client.CheckAsync(new HealthCheckRequest()).Within()).Status);
        greet.Healthy = false;
        Assert.Equal(ServingStatus.NotServing, (await client.CheckAsync(new HealthCheckRequest { Service = Greet }).Within()).Status);

        ConnectException unknown = await Assert.ThrowsAsync<ConnectException>(() => client.CheckAsync(new HealthCheckRequest { Service = "no.such.Service" }).Within());
        Assert.Equal(Code.NotFound, unknown.Code);
    }

    [Fact]
    public async Task Watch_GrpcDotnetClient_StreamsEachChangeOfItsService()
    {
        var greet = new Switch();
        var other = new Switch();
        await using KestrelHost server = await StartAsync(greet, other);
        using GrpcChannel channel = GrpcChannel.ForAddress(server.Http2Url);
        var client = new DotnetHealth::Health.HealthClient(channel);
        using CancellationTokenSource bounded = Bounded.TimeoutSource();
        using AsyncServerStreamingCall<DotnetHealth::HealthCheckResponse> watch =
            client.Watch(new DotnetHealth::HealthCheckRequest { Service = Greet }, cancellationToken: bounded.Token);
        IAsyncStreamReader<DotnetHealth::HealthCheckResponse> stream = watch.ResponseStream;

        Assert.True(await stream.MoveNext(bounded.Token));
        Assert.Equal(DotnetHealth::HealthCheckResponse.Types.ServingStatus.Serving, stream.Current.Status);

        // Another service's check changes nothing here; this one's change arrives as the next message.
        other.Healthy = false;
        await server.Services.GetRequiredService<PublishCounter>().WaitForAsync(2);
        greet.Healthy = false;
        Assert.True(await stream.MoveNext(bounded.Token));
        Assert.Equal(DotnetHealth::HealthCheckResponse.Types.ServingStatus.NotServing, stream.Current.Status);

        greet.Healthy = true;
        Assert.True(await stream.MoveNext(bounded.Token));
        Assert.Equal(DotnetHealth::HealthCheckResponse.Types.ServingStatus.Serving, stream.Current.Status);
        await bounded.CancelAsync();
    }

    [Theory]
    [MemberData(nameof(EveryProtocolCallTests.AllProtocols), MemberType = typeof(EveryProtocolCallTests))]
    public async Task Watch_OurClient_StreamsChangesUntilTheServerStops(Protocol protocol)
    {
        var greet = new Switch();
        await using KestrelHost server = await StartAsync(greet, new Switch());
        using CancellationTokenSource bounded = Bounded.TimeoutSource();
        await using IAsyncEnumerator<HealthCheckResponse> watch = Client(server, protocol)
            .WatchAsync(new HealthCheckRequest())
            .GetAsyncEnumerator(bounded.Token);

        Assert.True(await watch.MoveNextAsync().Within());
        Assert.Equal(ServingStatus.Serving, watch.Current.Status);
        greet.Healthy = false;
        Assert.True(await watch.MoveNextAsync().Within());
        Assert.Equal(ServingStatus.NotServing, watch.Current.Status);

        // A graceful stop ends the stream normally rather than waiting out the shutdown timeout.
        Task stopped = server.StopAsync(bounded.Token);
        Assert.False(await watch.MoveNextAsync().Within());
        await stopped.Within();
    }

    [Fact]
    public async Task Watch_UnknownService_ServiceUnknownThenNothing()
    {
        await using KestrelHost server = await StartAsync(new Switch(), new Switch());
        using CancellationTokenSource bounded = Bounded.TimeoutSource();
        await using IAsyncEnumerator<HealthCheckResponse> watch = Client(server, Protocol.Connect)
            .WatchAsync(new HealthCheckRequest { Service = "no.such.Service" })
            .GetAsyncEnumerator(bounded.Token);
        Assert.True(await watch.MoveNextAsync().Within());
        Assert.Equal(ServingStatus.ServiceUnknown, watch.Current.Status);

        await server.Services.GetRequiredService<PublishCounter>().WaitForAsync(2);
        ValueTask<bool> next = watch.MoveNextAsync();
        Assert.False(next.IsCompleted);
        await bounded.CancelAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => next.AsTask().Within());
    }

    [Fact]
    public async Task Map_WithoutAddConnectHealthChecks_ThrowsNamingIt()
    {
        InvalidOperationException? error = null;
        await using KestrelHost server = await KestrelHost.StartAsync(
            configure: null,
            tls: false,
            services: null,
            map: app => error = Assert.Throws<InvalidOperationException>(() => app.MapConnectHealthService()));
        Assert.Contains("AddConnectHealthChecks()", error!.Message, StringComparison.Ordinal);
    }

    private static Task<DotnetHealth::HealthCheckResponse> CheckAsync(DotnetHealth::Health.HealthClient client, string service) =>
        client.CheckAsync(new DotnetHealth::HealthCheckRequest { Service = service }, deadline: DateTime.UtcNow + Bounded.Timeout).ResponseAsync.Within();

    private static HealthClient Client(KestrelHost server, Protocol protocol) =>
        new(server.Http2Url.ToString(), new ConnectClientOptions { Protocol = protocol, HttpVersion = System.Net.HttpVersion.Version20 });

    /// <summary>
    /// Serves health with two checks: <paramref name="greet"/> (tag <c>greet</c>) decides the Greet
    /// service, both decide <c>""</c>. The publisher runs every check every second.
    /// </summary>
    private static async Task<KestrelHost> StartAsync(Switch greet, Switch other)
    {
        KestrelHost server = await StartHostAsync(greet, other);
        // ASP.NET Core's health-check service logs every unhealthy result as an error; these
        // tests switch checks off on purpose.
        server.ExpectLogs("checks switched off on purpose are logged as unhealthy", "switched off");
        return server;
    }

    private static Task<KestrelHost> StartHostAsync(Switch greet, Switch other) =>
        KestrelHost.StartAsync(
            configure: null,
            tls: false,
            services: services =>
            {
                services.AddConnectHealthChecks(o => o.Services[Greet] = check => check.Tags.Contains("greet"))
                    .AddCheck("greet", greet, tags: ["greet"])
                    .AddCheck("other", other);
                services.Configure<HealthCheckPublisherOptions>(o =>
                {
                    o.Delay = TimeSpan.Zero;
                    o.Period = TimeSpan.FromSeconds(1); // its minimum
                });
                services.AddSingleton<PublishCounter>();
                services.AddSingleton<IHealthCheckPublisher>(s => s.GetRequiredService<PublishCounter>());
            },
            map: static app => app.MapConnectHealthService());

    /// <summary>Counts the reports ASP.NET Core's health-check publisher hands out.</summary>
    private sealed class PublishCounter : IHealthCheckPublisher
    {
        private int _count;

        public Task PublishAsync(HealthReport report, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _count);
            return Task.CompletedTask;
        }

        /// <summary>Waits (bounded) until <paramref name="reports"/> more reports have been published.</summary>
        public async Task WaitForAsync(int reports)
        {
            int target = Volatile.Read(ref _count) + reports;
            using CancellationTokenSource bounded = Bounded.TimeoutSource();
            while (Volatile.Read(ref _count) < target)
            {
                await Task.Delay(10, bounded.Token);
            }
        }
    }

    /// <summary>A health check the test turns on and off.</summary>
    private sealed class Switch : IHealthCheck
    {
        private volatile bool _healthy = true;

        public bool Healthy
        {
            get => _healthy;
            set => _healthy = value;
        }

        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(_healthy ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy("switched off"));
    }
}
