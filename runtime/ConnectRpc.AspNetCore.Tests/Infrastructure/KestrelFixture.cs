using Microsoft.AspNetCore.Http;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// A <see cref="KestrelHost"/> shared by the tests of one class (an xunit class fixture): started
/// once before the class's first test, stopped after its last. Each test gets its own window of
/// the server's log and a reset service state (<see cref="ServerLogCheckAttribute"/>); the tests
/// of a class run one at a time, so they never see each other's calls. A warning or error logged
/// outside every test (as the server starts or stops, or after a test's check) fails the class.
/// </summary>
public abstract class KestrelFixture : IAsyncLifetime
{
    public KestrelHost Host { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Host = await StartAsync();

    public async ValueTask DisposeAsync()
    {
        if (Host is not null)
        {
            await Host.DisposeAsync();
            Host.AssertNothingLoggedOutsideTests();
        }

        GC.SuppressFinalize(this);
    }

    protected abstract Task<KestrelHost> StartAsync();
}

/// <summary>Our greet service with the default server options.</summary>
public sealed class GreetServer : KestrelFixture
{
    protected override Task<KestrelHost> StartAsync() => KestrelHost.StartAsync();
}

/// <summary>grpc-dotnet serving its greet service (<see cref="GrpcDotnetGreetService.Host"/>): the peer server.</summary>
public sealed class GrpcDotnetServer : KestrelFixture
{
    protected override Task<KestrelHost> StartAsync() => KestrelHost.StartAsync(GrpcDotnetGreetService.Host);
}

/// <summary>
/// A hand-written peer: every request goes to <see cref="Respond"/>, which each test of the class
/// sets to its own handler as it starts (the tests of a class run one at a time).
/// </summary>
public sealed class RawServer : KestrelFixture
{
    public RequestDelegate Respond { get; set; } = _ => throw new InvalidOperationException("no test set RawServer.Respond");

    protected override Task<KestrelHost> StartAsync() => KestrelHost.StartAsync(context => Respond(context));
}

/// <summary>
/// Our greet service behind one interceptor of the runtime's chain that runs <see cref="Interceptor"/>,
/// which each test of the class sets as it starts (none when null).
/// </summary>
public sealed class InterceptorServer : KestrelFixture
{
    private readonly Switch _switch = new();

    /// <summary>The interceptor calls pass through now (none when null).</summary>
    public ServerInterceptor? Interceptor
    {
        get => _switch.Current;
        set => _switch.Current = value;
    }

    protected override Task<KestrelHost> StartAsync() => KestrelHost.StartAsync(o => o.Interceptors.Add(_switch));

    private sealed class Switch : ServerInterceptor
    {
        public volatile ServerInterceptor? Current;

        public override Task InterceptAsync(ServerCall call, ServerCallHandler next) =>
            Current is { } current ? current.InterceptAsync(call, next) : next(call);
    }
}
