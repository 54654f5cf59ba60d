using System.Net;
using Connectrpc.Greet.V1;
using ConnectRpc.AspNetCore;
using Google.Protobuf;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace ConnectRpc.Benchmarks;

/// <summary>
/// The three servers under test, each its own Kestrel on 127.0.0.1 with dynamic ports:
/// this runtime (HTTP/1.1 and cleartext HTTP/2), grpc-dotnet (cleartext HTTP/2), and a bare
/// Kestrel endpoint doing the same work with no RPC layer (HTTP/1.1 and HTTP/2).
/// </summary>
internal sealed class Servers : IAsyncDisposable
{
    private readonly WebApplication[] _apps;

    private Servers(WebApplication[] apps) => _apps = apps;

    public Uri ConnectHttp1 { get; private init; } = null!;

    public Uri ConnectHttp2 { get; private init; } = null!;

    public Uri GrpcDotnetHttp2 { get; private init; } = null!;

    public Uri BareHttp1 { get; private init; } = null!;

    /// <summary>The path the bare endpoint serves: the same as the RPC, so requests differ only in the port.</summary>
    public const string GreetPath = "/connectrpc.greet.v1.GreetService/Greet";

    public static async Task<Servers> StartAsync()
    {
        WebApplication connect = Build(HttpProtocols.Http1, HttpProtocols.Http2, services => services.AddConnect());
        connect.MapConnectService<ConnectGreetService>(IGreetService.BindService);

        WebApplication grpc = Build(HttpProtocols.Http2, null, services => services.AddGrpc());
        grpc.MapGrpcService<GrpcDotnetGreetService>();

        WebApplication bare = Build(HttpProtocols.Http1, null, _ => { });
        bare.MapPost(GreetPath, async (HttpContext http) =>
        {
            // The floor: read the body, parse, do the work, write the bytes. No RPC protocol at all.
            var body = new MemoryStream();
            await http.Request.Body.CopyToAsync(body, http.RequestAborted);
            bool json = http.Request.ContentType == "application/json";
            GreetRequest request = json
                ? JsonParser.Default.Parse<GreetRequest>(System.Text.Encoding.UTF8.GetString(body.GetBuffer(), 0, (int)body.Length))
                : GreetRequest.Parser.ParseFrom(body.GetBuffer(), 0, (int)body.Length);
            GreetResponse response = Work.Greet(request);
            byte[] bytes = json ? System.Text.Encoding.UTF8.GetBytes(JsonFormatter.Default.Format(response)) : response.ToByteArray();
            http.Response.ContentType = json ? "application/json" : "application/proto";
            http.Response.ContentLength = bytes.Length;
            await http.Response.Body.WriteAsync(bytes, http.RequestAborted);
        });

        WebApplication[] apps = [connect, grpc, bare];
        foreach (WebApplication app in apps)
        {
            await app.StartAsync();
        }

        return new Servers(apps)
        {
            ConnectHttp1 = Address(connect, 0),
            ConnectHttp2 = Address(connect, 1),
            GrpcDotnetHttp2 = Address(grpc, 0),
            BareHttp1 = Address(bare, 0),
        };
    }

    private static WebApplication Build(HttpProtocols first, HttpProtocols? second, Action<IServiceCollection> services)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = first);
            if (second is { } protocols)
            {
                kestrel.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = protocols);
            }
        });
        services(builder.Services);
        return builder.Build();
    }

    private static Uri Address(WebApplication app, int index) =>
        new(app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.ElementAt(index));

    public async ValueTask DisposeAsync()
    {
        foreach (WebApplication app in _apps)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }
}
