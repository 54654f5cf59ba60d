using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// Kestrel on 127.0.0.1 with two dynamic ports, HTTP/1.1 and cleartext HTTP/2, answering
/// every request with a hand-written <see cref="RequestDelegate"/>: the peer of the client
/// validation tests. It counts the TCP connections open right now.
/// </summary>
internal sealed class RawServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _openConnections;

    private RawServer(WebApplication app) => _app = app;

    public Uri Http1 { get; private set; } = null!;

    public Uri Http2 { get; private set; } = null!;

    /// <summary>TCP connections accepted and not yet closed.</summary>
    public int OpenConnections => Volatile.Read(ref _openConnections);

    public static async Task<RawServer> StartAsync(RequestDelegate respond)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        RawServer? server = null;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, 0, listen => Configure(listen, HttpProtocols.Http1));
            kestrel.Listen(IPAddress.Loopback, 0, listen => Configure(listen, HttpProtocols.Http2));
        });
        builder.Logging.ClearProviders();
        WebApplication app = builder.Build();
        server = new RawServer(app);
        app.Run(respond);
        await app.StartAsync(Bounded.Token).Within();
        string[] addresses = [.. app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses];
        (server.Http1, server.Http2) = (new Uri(addresses[0]), new Uri(addresses[1]));
        return server;

        void Configure(ListenOptions listen, HttpProtocols protocols)
        {
            listen.Protocols = protocols;
            listen.Use(next => async connection =>
            {
                // Endpoints are configured before the app is built; the server exists by the first connection.
                Interlocked.Increment(ref server!._openConnections);
                try
                {
                    await next(connection);
                }
                finally
                {
                    Interlocked.Decrement(ref server._openConnections);
                }
            });
        }
    }

    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(stop.Token);
        await _app.DisposeAsync().Within();
    }
}
