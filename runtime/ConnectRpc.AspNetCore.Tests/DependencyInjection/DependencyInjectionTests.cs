using System.Collections.Concurrent;
using Connectrpc.Greet.V1;
using ConnectRpc.Tests;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// Clients and interceptors from dependency injection: <c>AddConnectClient</c> on
/// IHttpClientFactory (handlers composed and recycled, names shared, options from
/// configuration), interceptors made per call or per client from the application's services,
/// per-service interceptors, call-context propagation, and the per-call debug logs.
/// </summary>
public sealed partial class DependencyInjectionTests
{
    /// <summary>A second service beside the greet service, bound by hand: it forwards to a backend through a DI client.</summary>
    private static readonly Method<GreetRequest, GreetResponse> s_relay = new(
        "test.v1.RelayService", "Relay", MethodKind.Unary, GreetRequest.Parser, GreetResponse.Parser);

    [Fact]
    public async Task AddConnectClient_ResolvesAndCalls_ThroughTheFactorysHandlers()
    {
        await using KestrelHost server = await KestrelHost.StartAsync();
        var seen = new ConcurrentQueue<string>();
        var services = new ServiceCollection();
        services.AddConnectClient<GreetServiceClient>(o =>
            {
                o.BaseAddress = server.Http2Url;
                o.Protocol = Protocol.Grpc;
            })
            .AddHttpMessageHandler(() => new RecordingHandler(seen));
        await using ServiceProvider provider = services.BuildServiceProvider();

        GreetServiceClient client = provider.GetRequiredService<GreetServiceClient>();
        using var meta = new ResponseMetadata();
        GreetResponse response = await client.GreetAsync(new GreetRequest { Name = "Ada" }).Within();

        Assert.Equal("Hello, Ada!", response.Greeting);
        Assert.Equal("v1", meta.Trailers.Get("greet-version"));
        Assert.Equal(["application/grpc /connectrpc.greet.v1.GreetService/Greet"], seen);
        Assert.NotSame(client, provider.GetRequiredService<GreetServiceClient>());
    }

    [Fact]
    public async Task AddConnectClient_HandlersAreRecycled_AfterTheirLifetime()
    {
        await using KestrelHost server = await KestrelHost.StartAsync();
        int handlersMade = 0;
        var services = new ServiceCollection();
        services.AddConnectClient<GreetServiceClient>(o => o.BaseAddress = server.Http1Url)
            .AddHttpMessageHandler(() =>
            {
                Interlocked.Increment(ref handlersMade);
                return new RecordingHandler(new ConcurrentQueue<string>());
            })
            .SetHandlerLifetime(TimeSpan.FromSeconds(1));
        await using ServiceProvider provider = services.BuildServiceProvider();

        await provider.GetRequiredService<GreetServiceClient>().GreetAsync(new GreetRequest()).Within();
        await provider.GetRequiredService<GreetServiceClient>().GreetAsync(new GreetRequest()).Within();
        Assert.Equal(1, handlersMade);

        await Task.Delay(TimeSpan.FromSeconds(1.5), Bounded.Token);
        await provider.GetRequiredService<GreetServiceClient>().GreetAsync(new GreetRequest()).Within();

        Assert.Equal(2, handlersMade);
    }

    [Fact]
    public async Task AddConnectClient_TwoClientsShareOneName_OneHttpClientAndItsOptions()
    {
        await using KestrelHost server = await KestrelHost.StartAsync();
        var seen = new ConcurrentQueue<string>();
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Backend:Url"] = server.Http1Url.ToString() })
            .Build();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddConnectClient<GreetServiceClient>("backend", (provider, o) =>
                o.BaseAddress = new Uri(provider.GetRequiredService<IConfiguration>()["Backend:Url"]!))
            .AddHttpMessageHandler(() => new RecordingHandler(seen));
        services.AddConnectClient<RelayClient>("backend");
        await using ServiceProvider provider = services.BuildServiceProvider();

        await provider.GetRequiredService<GreetServiceClient>().GreetAsync(new GreetRequest()).Within();
        await provider.GetRequiredService<RelayClient>().Inner.GreetAsync(new GreetRequest()).Within();

        Assert.Equal(2, seen.Count);
    }

    [Fact]
    public async Task ConnectClientFactory_OneTypeUnderTwoNames_EachWithItsOwnOptions()
    {
        await using KestrelHost server = await KestrelHost.StartAsync();
        var seen = new ConcurrentQueue<string>();
        var services = new ServiceCollection();
        services.AddConnectClient<GreetServiceClient>("connect", (_, o) => o.BaseAddress = server.Http1Url)
            .AddHttpMessageHandler(() => new RecordingHandler(seen));
        services.AddConnectClient<GreetServiceClient>("grpc", (_, o) =>
            {
                o.BaseAddress = server.Http2Url;
                o.Protocol = Protocol.Grpc;
            })
            .AddHttpMessageHandler(() => new RecordingHandler(seen));
        await using ServiceProvider provider = services.BuildServiceProvider();
        ConnectClientFactory factory = provider.GetRequiredService<ConnectClientFactory>();

        await factory.CreateClient<GreetServiceClient>("connect").GreetAsync(new GreetRequest()).Within();
        await factory.CreateClient<GreetServiceClient>("grpc").GreetAsync(new GreetRequest()).Within();

        Assert.Equal(["application/proto /connectrpc.greet.v1.GreetService/Greet", "application/grpc /connectrpc.greet.v1.GreetService/Greet"], seen);
        Assert.Throws<InvalidOperationException>(() => factory.CreateClient<GreetServiceClient>("nobody"));
    }

    [Fact]
    public async Task AddConnectClient_DiInterceptor_MadeFromTheApplicationsServices()
    {
        await using KestrelHost server = await KestrelHost.StartAsync();
        var services = new ServiceCollection();
        services.AddSingleton(new Tenant("acme"));
        services.AddConnectClient<GreetServiceClient>(o =>
        {
            o.BaseAddress = server.Http1Url;
            o.Interceptors.Add<TenantHeader>();
        });
        await using ServiceProvider provider = services.BuildServiceProvider();

        using var meta = new ResponseMetadata();
        await provider.GetRequiredService<GreetServiceClient>().GreetAsync(new GreetRequest()).Within();

        // The greet service copies acme-tenant-id to its response headers.
        Assert.Equal("acme", meta.Headers.Get("acme-tenant-id"));
    }

    [Fact]
    public void PlainClient_WithADiInterceptor_RefusedAtConstruction()
    {
        var options = new ConnectClientOptions();
        options.Interceptors.Add<TenantHeader>();

        ArgumentException error = Assert.Throws<ArgumentException>(() => new GreetServiceClient("http://127.0.0.1:1", options));

        Assert.Contains("AddConnectClient", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ServerDiInterceptors_ScopedPerRequest_UnregisteredMadeAndDisposedPerCall()
    {
        ScopeCounter.Reset();
        await using Host host = await Host.StartAsync(
            services =>
            {
                services.AddScoped<ScopeCounter>();
                services.AddScoped<ScopedStamp>();
                services.AddConnect(o =>
                {
                    o.Interceptors.Add<ScopedStamp>();
                    o.Interceptors.Add<UnregisteredStamp>();
                });
            },
            app => app.MapConnectService<TestGreetService>(IGreetService.BindService));
        GreetServiceClient client = host.Client<GreetServiceClient>();

        var ids = new List<string?>();
        for (int i = 0; i < 2; i++)
        {
            using var meta = new ResponseMetadata();
            await client.GreetAsync(new GreetRequest()).Within();
            ids.Add(meta.Headers.Get("x-scope"));
            Assert.Equal("made", meta.Headers.Get("x-unregistered"));
        }

        Assert.Equal(["1", "2"], ids);
        Assert.Equal(2, UnregisteredStamp.Disposed);
    }

    [Fact]
    public async Task PerServiceInterceptor_AppliesToThatServiceOnly()
    {
        await using KestrelHost backend = await KestrelHost.StartAsync();
        await using Host host = await Host.StartAsync(
            services =>
            {
                services.AddConnect();
                services.AddConnectClient<GreetServiceClient>(o => o.BaseAddress = backend.Http1Url);
            },
            app =>
            {
                app.MapConnectService<TestGreetService>(IGreetService.BindService);
                app.MapConnectService<RelayService>(BindRelay, o => o.Interceptors.Add(new Stamp("x-relay-only")));
            });

        using (var meta = new ResponseMetadata())
        {
            await host.Client<GreetServiceClient>().GreetAsync(new GreetRequest()).Within();
            Assert.Null(meta.Headers.Get("x-relay-only"));
        }

        using (var meta = new ResponseMetadata())
        {
            await host.Client<RelayClient>().RelayAsync(new GreetRequest { Name = "Ada" }).Within();
            Assert.Equal("stamped", meta.Headers.Get("x-relay-only"));
        }
    }

    [Fact]
    public async Task CallContextPropagation_DownstreamCallInheritsTheHandlersDeadline()
    {
        await using KestrelHost backend = await KestrelHost.StartAsync();
        await using Host host = await Host.StartAsync(
            services =>
            {
                services.AddConnect();
                services.AddConnectClient<GreetServiceClient>(o => o.BaseAddress = backend.Http1Url).EnableCallContextPropagation();
            },
            app => app.MapConnectService<RelayService>(BindRelay));

        host.ExpectLogs("the relay logs how its downstream call ended", "downstream: ");

        // The relay asks the backend to sleep 5 s; its own deadline is 300 ms, and the backend call inherits it.
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => host.Client<RelayClient>()
            .RelayAsync(new GreetRequest { Name = "sleep" }, TimeSpan.FromMilliseconds(300)).Within());

        Assert.Equal(Code.DeadlineExceeded, error.Code);
        await WaitUntilAsync(() => backend.Service.Canceled.Contains("/connectrpc.greet.v1.GreetService/Greet"), TimeSpan.FromSeconds(3));
        // The relay saw its downstream call end with the inherited deadline (or the cancellation
        // that came with it, whichever timer fired first), not after the backend's 5 s.
        await WaitUntilAsync(
            () => host.Logs.Any(log => log.Contains("downstream: deadline_exceeded", StringComparison.Ordinal) || log.Contains("downstream: canceled", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(3));
    }

    [Fact]
    public async Task DebugLogs_CallStartedAndEnded_WithStableEventIds()
    {
        var logs = new ConcurrentQueue<(int Id, string Message)>();
        await using Host host = await Host.StartAsync(
            services => services.AddConnect(),
            app => app.MapConnectService<TestGreetService>(IGreetService.BindService),
            debugLogs: logs);
        var clientLogs = new ConcurrentQueue<(int Id, string Message)>();
        using ILoggerFactory clientLoggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(new EventLogger(clientLogs)));
        var client = new GreetServiceClient(host.Url.ToString(), new ConnectClientOptions { LoggerFactory = clientLoggerFactory });

        await Assert.ThrowsAsync<ConnectException>(() => client.GreetAsync(new GreetRequest(), new Headers { ["x-fail"] = "not_found" }).Within());
        await WaitUntilAsync(() => logs.Any(l => l.Id == 5), Bounded.Timeout);

        Assert.Contains(logs, l => l.Id == 4 && l.Message.Contains("/connectrpc.greet.v1.GreetService/Greet", StringComparison.Ordinal));
        Assert.Contains(logs, l => l.Id == 5 && l.Message.Contains("not_found", StringComparison.Ordinal));
        Assert.Contains(clientLogs, l => l.Id == 1 && l.Message.Contains("Connect", StringComparison.Ordinal));
        Assert.Contains(clientLogs, l => l.Id == 2 && l.Message.Contains("not_found", StringComparison.Ordinal));
    }

    private static void BindRelay(ServiceBinder<RelayService> binder) =>
        binder.AddUnary(s_relay, static (service, request, context) => service.RelayAsync(request, context));

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan limit)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Bounded.Token);
        timeout.CancelAfter(limit);
        while (!condition())
        {
            await Task.Delay(20, timeout.Token);
        }
    }

    /// <summary>Forwards to the backend's greet service through the DI client, sleeping there when asked.</summary>
    public sealed class RelayService(GreetServiceClient backend, ILogger<RelayService> logger)
    {
        public async Task<GreetResponse> RelayAsync(GreetRequest request, RequestContext context)
        {
            Headers headers = request.Name == "sleep" ? new Headers { ["x-sleep-ms"] = "5000" } : new Headers();
            try
            {
                return await backend.GreetAsync(request, headers);
            }
            catch (ConnectException ex)
            {
                Downstream(logger, ex.Code.ToWireName());
                throw;
            }
        }
    }

    [LoggerMessage(LogLevel.Warning, "downstream: {Code}")]
    private static partial void Downstream(ILogger logger, string code);

    /// <summary>A client of the relay service, and a second client type for shared names.</summary>
    public sealed class RelayClient(CallInvoker invoker)
    {
        public GreetServiceClient Inner { get; } = new(invoker);

        public Task<GreetResponse> RelayAsync(GreetRequest request, TimeSpan? timeout = null) =>
            invoker.UnaryAsync(s_relay, request, timeout: timeout);
    }

    public sealed record Tenant(string Id);

    public sealed class TenantHeader(Tenant tenant) : ClientInterceptor
    {
        public override ClientCall<TRequest, TResponse> Intercept<TRequest, TResponse>(ClientCall<TRequest, TResponse> call)
        {
            call.RequestHeaders["acme-tenant-id"] = tenant.Id;
            return call;
        }
    }

    /// <summary>Counts request scopes: one instance per request.</summary>
    public sealed class ScopeCounter
    {
        private static int s_made;

        public ScopeCounter() => Id = Interlocked.Increment(ref s_made);

        public int Id { get; }

        public static void Reset() => s_made = 0;
    }

    public sealed class ScopedStamp(ScopeCounter scope) : ServerInterceptor
    {
        public override Task InterceptAsync(ServerCall call, ServerCallHandler next)
        {
            call.Context.ResponseHeaders["x-scope"] = scope.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return next(call);
        }
    }

    public sealed class UnregisteredStamp(ILogger<UnregisteredStamp> logger) : ServerInterceptor, IDisposable
    {
        private static int s_disposed;

        public static int Disposed => s_disposed;

        public override Task InterceptAsync(ServerCall call, ServerCallHandler next)
        {
            ArgumentNullException.ThrowIfNull(logger);
            call.Context.ResponseHeaders["x-unregistered"] = "made";
            return next(call);
        }

        public void Dispose() => Interlocked.Increment(ref s_disposed);
    }

    private sealed class Stamp(string key) : ServerInterceptor
    {
        public override Task InterceptAsync(ServerCall call, ServerCallHandler next)
        {
            call.Context.ResponseHeaders[key] = "stamped";
            return next(call);
        }
    }

    private sealed class RecordingHandler(ConcurrentQueue<string> seen) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            seen.Enqueue($"{request.Content?.Headers.ContentType?.MediaType} {request.RequestUri!.AbsolutePath}");
            return base.SendAsync(request, cancellationToken);
        }
    }

    /// <summary>Records log events with their ids, from Debug up.</summary>
    private sealed class EventLogger(ConcurrentQueue<(int Id, string Message)> events) : ILoggerProvider, ILogger
    {
        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            events.Enqueue((eventId.Id, formatter(state, exception)));

        public void Dispose()
        {
        }
    }

    /// <summary>
    /// A <see cref="KestrelHost"/> with services and endpoints of the test's choosing, a
    /// <see cref="RelayClient"/> that calls the host itself, and debug logs when asked for.
    /// </summary>
    private sealed class Host : IAsyncDisposable
    {
        private readonly KestrelHost _host;

        private Host(KestrelHost host) => _host = host;

        public Uri Url => _host.Http1Url;

        /// <summary>Warnings and errors the host logged.</summary>
        public IReadOnlyList<string> Logs => _host.Logs;

        public static async Task<Host> StartAsync(
            Action<IServiceCollection> services,
            Action<WebApplication> endpoints,
            ConcurrentQueue<(int Id, string Message)>? debugLogs = null)
        {
            KestrelHost host = await KestrelHost.StartAsync(new KestrelHostOptions
            {
                Services = collection =>
                {
                    collection.AddSingleton<TestGreetService>();
                    collection.AddConnectClient<RelayClient>("self", (provider, o) =>
                        o.BaseAddress = new Uri(provider.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()));
                    if (debugLogs is not null)
                    {
                        collection.AddSingleton<ILoggerProvider>(new EventLogger(debugLogs));
                        collection.Configure<LoggerFilterOptions>(o => o.MinLevel = LogLevel.Debug);
                    }

                    services(collection);
                },
                App = endpoints,
            });
            return new Host(host);
        }

        public void ExpectLogs(string why, string text) => _host.ExpectLogs(why, text);

        public TClient Client<TClient>()
            where TClient : class =>
            typeof(TClient) == typeof(GreetServiceClient)
                ? (TClient)(object)new GreetServiceClient(Url.ToString())
                : _host.Services.GetRequiredService<TClient>();

        public ValueTask DisposeAsync() => _host.DisposeAsync();
    }
}
