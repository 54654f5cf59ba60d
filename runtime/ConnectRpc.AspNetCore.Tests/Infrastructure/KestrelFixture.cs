namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// A <see cref="KestrelHost"/> shared by the tests of one class (an xunit class fixture): started
/// once before the class's first test, stopped after its last. Each test gets its own window of
/// the server's log and a reset service state (<see cref="ServerLogCheckAttribute"/>); tests of a
/// class run one at a time, so they never see each other's calls.
/// </summary>
public abstract class KestrelFixture(Func<Task<KestrelHost>> start) : IAsyncLifetime
{
    public KestrelHost Host { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Host = await start();

    public async ValueTask DisposeAsync()
    {
        if (Host is not null)
        {
            await Host.DisposeAsync();
        }

        GC.SuppressFinalize(this);
    }
}

/// <summary>Our greet service with the default server options.</summary>
public sealed class GreetServer() : KestrelFixture(() => KestrelHost.StartAsync());
