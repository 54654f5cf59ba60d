using System.Collections.Concurrent;
using Connectrpc.Greet.V1;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// Our greet service behind ASP.NET Core's CORS middleware, with a default policy made by
/// <c>WithConnectCors</c> for the given origins: the greet service's own headers and trailers
/// exposed, and the request headers that steer it allowed (see <see cref="TestGreetService"/>).
/// </summary>
internal static class CorsServer
{
    /// <summary>The response headers of <see cref="TestGreetService"/> a browser may read.</summary>
    public static readonly string[] ResponseHeaders = ["Greet-Version", "Acme-Tenant-Id", "X-Echo", "X-Error-Meta"];

    /// <summary>The trailers of <see cref="TestGreetService"/> a browser may read.</summary>
    public static readonly string[] ResponseTrailers = ["Greet-Version", "X-Echo-Bin"];

    /// <summary>The request headers that steer <see cref="TestGreetService"/>, which a page may send.</summary>
    public static readonly string[] RequestHeaders = ["Acme-Tenant-Id", "X-Echo", "X-Echo-Bin", "X-Fail", "X-Detail", "X-Sleep-Ms"];

    /// <summary>Starts the server; it allows <paramref name="origins"/>, and notes each request it gets in <paramref name="requests"/> ("POST /path from origin").</summary>
    public static Task<KestrelHost> StartAsync(string[] origins, ConcurrentQueue<string>? requests = null) => KestrelHost.StartAsync(
        configure: null,
        tls: false,
        services => services.AddCors(cors => cors.AddDefaultPolicy(policy => policy
            .WithOrigins(origins)
            .WithConnectCors(ResponseHeaders, ResponseTrailers)
            .WithHeaders(RequestHeaders))),
        app =>
        {
            app.Use((context, next) =>
            {
                requests?.Enqueue($"{context.Request.Method} {context.Request.Path} from {context.Request.Headers.Origin}");
                return next(context);
            });
            app.UseCors();
            app.MapConnectService<TestGreetService>(IGreetService.BindService);
        });
}
