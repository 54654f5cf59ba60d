// The Greet demo's server: greet.v1.GreetService over Connect on Kestrel, on 127.0.0.1 only.
//
//   dotnet run --project examples/greet/server -- [--http1-port N] [--http2-port N] [--token T] [--trace]
//
// --http1-port  HTTP/1.1 port (default 8080; env GREET_HTTP1_PORT)
// --http2-port  cleartext HTTP/2 port, prior knowledge, for gRPC and full-duplex bidi (default 8081; env GREET_HTTP2_PORT)
// --token       the bearer token every call must carry (default demo-token; env GREET_TOKEN)
// --trace       write each call's RPC span to the console (ActivitySource "ConnectRpc.AspNetCore")
//
// Port 0 picks a free port; the ready line names the ports actually bound. Ctrl-C or SIGTERM
// stops the server.
using System.Diagnostics;
using System.Net;
using Greet.Server;
using Greet.V1;
using Microsoft.AspNetCore.Server.Kestrel.Core;

if (!Settings.TryParse(args, out Settings? settings, out string? error))
{
    Console.Error.WriteLine(error);
    Console.Error.WriteLine(Settings.Usage);
    return 2;
}

if (settings is null)
{
    Console.WriteLine(Settings.Usage);
    return 0;
}

WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();

// Cleartext HTTP/2 needs an endpoint of its own: one set to Http1AndHttp2 refuses clients that
// speak HTTP/2 with prior knowledge (there is no TLS to negotiate it).
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.Listen(IPAddress.Loopback, settings.Http1Port, listen => listen.Protocols = HttpProtocols.Http1);
    kestrel.Listen(IPAddress.Loopback, settings.Http2Port, listen => listen.Protocols = HttpProtocols.Http2);
});

// One line per log entry; only the demo's own information, and warnings from everything else.
builder.Logging.ClearProviders();
builder.Logging.AddSimpleConsole(console =>
{
    console.SingleLine = true;
    console.TimestampFormat = "HH:mm:ss ";
});
builder.Logging.AddFilter("Microsoft", LogLevel.Warning);

builder.Services.AddConnect(options => options.Interceptors.Add(new BearerTokenInterceptor(settings.Token)));
builder.Services.AddSingleton<GreetService>();

// grpc.health.v1.Health on ASP.NET Core health checks: "" is SERVING while every check is healthy
// (add your own with .AddCheck(...)). The bearer-token interceptor lets health and reflection through.
builder.Services.AddConnectHealthChecks();

// CORS, so that a page on any other origin can call the demo with connect-web (Connect or gRPC-Web).
// Any origin is fine for a demo; a real service names its origins: policy.WithOrigins("https://app.example.com").
// WithConnectCors allows the protocols' methods and headers and exposes their response headers;
// the demo also exposes its greet-version header and trailer, and lets pages send the bearer token.
builder.Services.AddCors(cors => cors.AddDefaultPolicy(policy => policy
    .AllowAnyOrigin()
    .WithConnectCors(responseHeaders: ["Greet-Version"], responseTrailers: ["Greet-Version"])
    .WithHeaders("Authorization")));

// The server's RPC spans, one console line each when they end. A real service would hand the
// source to OpenTelemetry instead (AddSource("ConnectRpc.AspNetCore")); see the README.
using ActivityListener? spans = settings.Trace ? TraceToConsole() : null;

WebApplication app = builder.Build();
app.UseCors(); // the default policy above, for every endpoint; it answers preflights itself
app.MapConnectService<GreetService>(IGreetService.BindService);
app.MapConnectHealthService();
app.MapConnectReflectionService(); // buf curl and grpcurl need no schema

try
{
    await app.StartAsync();
}
catch (IOException ex)
{
    // Typically: a port is in use.
    Console.Error.WriteLine($"Greet server: {ex.Message}");
    return 1;
}

string[] urls = [.. app.Urls]; // as bound: port 0 became a free port
Console.WriteLine($"Greet server listening on {urls[0]} (HTTP/1.1) and {urls[1]} (HTTP/2)");
await app.WaitForShutdownAsync();
Console.WriteLine("Greet server stopped");
return 0;

static ActivityListener TraceToConsole()
{
    var listener = new ActivityListener
    {
        ShouldListenTo = source => source.Name == "ConnectRpc.AspNetCore",
        Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        ActivityStopped = span => Console.WriteLine(
            $"span {span.DisplayName} {span.Kind} trace={span.TraceId} parent={span.ParentSpanId} " +
            $"{span.Duration.TotalMilliseconds:0.0} ms " +
            string.Join(' ', span.TagObjects.Select(tag => $"{tag.Key}={tag.Value}"))),
    };
    ActivitySource.AddActivityListener(listener);
    return listener;
}
