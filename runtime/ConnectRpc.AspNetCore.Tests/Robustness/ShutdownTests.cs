using System.Diagnostics;
using System.Net;
using Connectrpc.Greet.V1;
using ConnectRpc.AspNetCore.Internal;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// What the server does when the application stops (ConnectServerOptions.ShutdownTimeout), on
/// real Kestrel: calls in flight finish within the timeout, the rest end with unavailable, and
/// calls that arrive while it stops are refused with unavailable before their handler runs.
/// </summary>
public sealed class ShutdownTests
{
    [Theory]
    [InlineData(Protocol.Connect)]
    [InlineData(Protocol.Grpc)]
    [InlineData(Protocol.GrpcWeb)]
    public async Task Stop_InFlightCallsFinishWithinTimeout_TheRestEndUnavailable_LateCallsRefused(Protocol protocol)
    {
        TimeSpan timeout = TimeSpan.FromSeconds(2);
        Task<(ConnectException? Unary, ConnectException? Stream, int StreamReceived)>? lateCalls = null;
        GreetServiceClient? http1 = null;
        GreetServiceClient? http2 = null;
        KestrelHost host = await KestrelHost.StartAsync(
            options => options.ShutdownTimeout = timeout,
            tls: false,
            services: null,
            map: app =>
            {
                // Registered before the server's own shutdown (when the service is mapped), so
                // it runs after it (a token runs its callbacks last first), while Kestrel still
                // has its connections open: calls on them arrive at a server that is stopping.
                app.Lifetime.ApplicationStopping.Register(() =>
                {
                    lateCalls = Task.Run(() => LateCallsAsync(http1!, http2!));
                    lateCalls.Wait(Bounded.Timeout);
                });
                app.MapConnectService<TestGreetService>(IGreetService.BindService);
            });
        await using (host)
        {
            host.ExpectLogs("the held stream is still running at the shutdown timeout", "call(s) in flight: they are cancelled");
            // gRPC needs HTTP/2: its "HTTP/1.1" client is a second HTTP/2 connection.
            http1 = host.Client(http2: protocol == Protocol.Grpc, new ConnectClientOptions { Protocol = protocol });
            http2 = host.Client(http2: true, new ConnectClientOptions { Protocol = protocol });
            // Both connections open before the stop.
            await http1.GreetAsync(new GreetRequest { Name = "warm" }).Within();
            await http2.GreetAsync(new GreetRequest { Name = "warm" }).Within();

            // In flight at the stop: a unary call that needs less than the timeout, and a stream
            // held after its first message, past the timeout.
            var sleep = new Headers();
            sleep.Add("x-sleep-ms", "1000");
            Task<GreetResponse> unary = http2.GreetAsync(new GreetRequest { Name = "short" }, sleep);
            var hold = new Headers();
            hold.Add("x-fate", "held");
            hold.Add("x-hold", "1");
            var received = new List<string>();
            var firstMessage = new TaskCompletionSource();
            Task<ConnectException?> stream = Task.Run(async () =>
            {
                try
                {
                    await foreach (GreetResponse response in http2.GreetManyAsync(new GreetRequest { Name = "long" }, hold))
                    {
                        received.Add(response.Greeting);
                        firstMessage.TrySetResult();
                    }

                    return null;
                }
                catch (ConnectException ex)
                {
                    return ex;
                }
            });
            await firstMessage.Task.Within();
            await Wait.UntilAsync(() => host.Services.GetRequiredService<ServerShutdown>().InFlight == 2);

            var stopping = Stopwatch.StartNew();
            using (var hostLimit = new CancellationTokenSource(TimeSpan.FromSeconds(20)))
            {
                await host.StopAsync(hostLimit.Token).WaitAsync(TimeSpan.FromSeconds(25), Bounded.Token);
            }

            TimeSpan stopped = stopping.Elapsed;

            // The late calls: refused before their handlers ran, with HTTP 503 (unavailable).
            Assert.NotNull(lateCalls);
            (ConnectException? lateUnary, ConnectException? lateStream, int lateReceived) = await lateCalls.Within();
            Assert.Equal(Code.Unavailable, lateUnary?.Code);
            Assert.Equal(ServerShutdown.Message, lateUnary?.Message);
            Assert.Equal(Code.Unavailable, lateStream?.Code);
            Assert.Equal(0, lateReceived);
            Assert.Equal(0, host.Service.Handlers.For("late").Entered);

            // The short call finished; the held stream ended unavailable after its first message.
            Assert.Equal("Hello, short!", (await unary.Within()).Greeting);
            ConnectException? cut = await stream.Within();
            Assert.Equal(Code.Unavailable, cut?.Code);
            Assert.Equal(ServerShutdown.Message, cut?.Message);
            Assert.Single(received);
            Assert.Equal(1, host.Service.Handlers.For("held").ExitedCanceled);

            // The server's timeout ended the stop, not the host's 20 s.
            Assert.InRange(stopped, timeout - TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(10));
        }
    }

    [Fact]
    public async Task Stop_NothingInFlight_StopsAtOnce()
    {
        KestrelHost host = await KestrelHost.StartAsync(options => options.ShutdownTimeout = TimeSpan.FromSeconds(20));
        await using (host)
        {
            await host.Client(http2: true).GreetAsync(new GreetRequest { Name = "one" }).Within();
            var stopping = Stopwatch.StartNew();
            using var hostLimit = new CancellationTokenSource(TimeSpan.FromSeconds(25));
            await host.StopAsync(hostLimit.Token).WaitAsync(TimeSpan.FromSeconds(30), Bounded.Token);
            Assert.InRange(stopping.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(5));
        }
    }

    [Fact]
    public async Task Stop_TimeoutNotBelowTheHosts_Warns()
    {
        // HostOptions.ShutdownTimeout is 30 s by default: Kestrel would abort calls first.
        KestrelHost host = await KestrelHost.StartAsync(options => options.ShutdownTimeout = TimeSpan.FromSeconds(30));
        await using (host)
        {
            host.ExpectLogs("the shutdown timeout is not below the host's", "is not below HostOptions.ShutdownTimeout");
            using var hostLimit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await host.StopAsync(hostLimit.Token).WaitAsync(TimeSpan.FromSeconds(15), Bounded.Token);
            Assert.Contains(host.Logs, entry => entry.Contains("ShutdownTimeout (30 s) is not below HostOptions.ShutdownTimeout (30 s)", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void ShutdownTimeout_NegativeRefused_ZeroAndInfiniteAccepted()
    {
        var options = new ConnectServerOptions();
        Assert.Equal(ConnectServerOptions.DefaultShutdownTimeout, options.ShutdownTimeout);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.ShutdownTimeout = TimeSpan.FromSeconds(-1));
        options.ShutdownTimeout = TimeSpan.Zero;
        Assert.Equal(TimeSpan.Zero, options.ShutdownTimeout);
        options.ShutdownTimeout = Timeout.InfiniteTimeSpan;
        Assert.Equal(Timeout.InfiniteTimeSpan, options.ShutdownTimeout);
    }

    /// <summary>A unary call on the open HTTP/1.1 connection and a stream on the open HTTP/2 one, once the server stops.</summary>
    private static async Task<(ConnectException? Unary, ConnectException? Stream, int StreamReceived)> LateCallsAsync(
        GreetServiceClient http1, GreetServiceClient http2)
    {
        ConnectException? unary = null;
        try
        {
            await http1.GreetAsync(new GreetRequest { Name = "late" }).Within();
        }
        catch (ConnectException ex)
        {
            unary = ex;
        }

        var headers = new Headers();
        headers.Add("x-fate", "late");
        int received = 0;
        ConnectException? stream = null;
        using CancellationTokenSource bounded = Bounded.TimeoutSource();
        try
        {
            await foreach (GreetResponse _ in http2.GreetManyAsync(new GreetRequest { Name = "late" }, headers, cancellationToken: bounded.Token))
            {
                received++;
            }
        }
        catch (ConnectException ex)
        {
            stream = ex;
        }

        return (unary, stream, received);
    }
}
