using System.Collections.Concurrent;
using System.Net;
using Grpc.AspNetCore.Web;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// grpc-dotnet (Grpc.AspNetCore.Server with its gRPC-Web middleware) as a peer server: real Kestrel
/// on 127.0.0.1 with two dynamic ports, HTTP/1.1 (gRPC-Web only) and cleartext HTTP/2 (gRPC and
/// gRPC-Web), serving <see cref="GrpcDotnetGreetService"/>. grpc-dotnet's built-in gzip provider
/// decompresses requests; responses are compressed per call as the service asks.
/// </summary>
public sealed class GrpcDotnetServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private GrpcDotnetServer(WebApplication app, Uri http1, Uri http2, ConcurrentQueue<string> logs)
    {
        _app = app;
        Http1Url = http1;
        Http2Url = http2;
        Logs = logs;
    }

    public Uri Http1Url { get; }

    public Uri Http2Url { get; }

    /// <summary>Warnings and errors the server logged, with their exceptions.</summary>
    public ConcurrentQueue<string> Logs { get; }

    public GrpcDotnetGreetService Service => _app.Services.GetRequiredService<GrpcDotnetGreetService>();

    public static async Task<GrpcDotnetServer> StartAsync()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http1);
            kestrel.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http2);
        });
        var logs = new ConcurrentQueue<string>();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new TestServer.RecordingLoggerProvider(logs));

        // A singleton, so the test sees what every call recorded (grpc-dotnet resolves the service from DI first).
        builder.Services.AddSingleton<GrpcDotnetGreetService>();
        builder.Services.AddGrpc();
        WebApplication app = builder.Build();
        app.UseGrpcWeb(new GrpcWebOptions { DefaultEnabled = true });
        app.MapGrpcService<GrpcDotnetGreetService>();
        await app.StartAsync(Bounded.Token).Within();

        string[] addresses = [.. app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses];
        return new GrpcDotnetServer(app, new Uri(addresses[0]), new Uri(addresses[1]), logs);
    }

    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(stop.Token);
        await _app.DisposeAsync();
    }
}
