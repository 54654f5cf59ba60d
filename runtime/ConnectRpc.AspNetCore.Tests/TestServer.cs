using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Connectrpc.Greet.V1;
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
/// Real Kestrel on 127.0.0.1 with two dynamic ports: HTTP/1.1, and cleartext HTTP/2 (prior
/// knowledge needs its own endpoint); with <c>tls</c>, a third: HTTPS with ALPN for HTTP/1.1
/// and HTTP/2, on a self-signed certificate made for the run. Serves
/// <see cref="TestGreetService"/> and records the server's warnings and errors.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private readonly X509Certificate2? _certificate;

    private TestServer(WebApplication app, Uri http1, Uri http2, Uri? https, X509Certificate2? certificate, ConcurrentQueue<string> logs)
    {
        _app = app;
        Http1Url = http1;
        Http2Url = http2;
        HttpsUrl = https;
        _certificate = certificate;
        Logs = logs;
    }

    public Uri Http1Url { get; }

    public Uri Http2Url { get; }

    /// <summary>The HTTPS endpoint (HTTP/1.1 and HTTP/2 by ALPN), when started with <c>tls</c>.</summary>
    public Uri? HttpsUrl { get; }

    /// <summary>Warnings and errors the server logged, with their exceptions.</summary>
    public ConcurrentQueue<string> Logs { get; }

    public TestGreetService Service => _app.Services.GetRequiredService<TestGreetService>();

    /// <summary>The application's services.</summary>
    public IServiceProvider Services => _app.Services;

    public static Task<TestServer> StartAsync(Action<ConnectServerOptions>? configure = null, bool tls = false) =>
        StartAsync(configure, tls, services: null, map: static app => app.MapConnectService<TestGreetService>(IGreetService.BindService));

    /// <summary>
    /// A server whose services <paramref name="services"/> registers and <paramref name="map"/>
    /// maps (<see cref="TestGreetService"/> is registered, not mapped).
    /// </summary>
    public static async Task<TestServer> StartAsync(
        Action<ConnectServerOptions>? configure,
        bool tls,
        Action<IServiceCollection>? services,
        Action<WebApplication> map)
    {
        X509Certificate2? certificate = tls ? SelfSignedCertificate() : null;
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http1);
            kestrel.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http2);
            if (certificate is not null)
            {
                kestrel.Listen(IPAddress.Loopback, 0, listen =>
                {
                    listen.Protocols = HttpProtocols.Http1AndHttp2;
                    listen.UseHttps(certificate);
                });
            }
        });
        var logs = new ConcurrentQueue<string>();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new RecordingLoggerProvider(logs));
        builder.Services.AddSingleton<TestGreetService>();
        builder.Services.AddConnect(configure);
        services?.Invoke(builder.Services);
        WebApplication app = builder.Build();
        map(app);
        await app.StartAsync(Bounded.Token).Within();

        string[] addresses = [.. app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses];
        return new TestServer(app, new Uri(addresses[0]), new Uri(addresses[1]), tls ? new Uri(addresses[2]) : null, certificate, logs);
    }

    private static X509Certificate2 SelfSignedCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        using X509Certificate2 created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        // A round trip through PKCS#12 gives a certificate whose key TLS stacks can use everywhere.
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>
    /// A client of the HTTPS endpoint that trusts exactly this server's certificate; the HTTP
    /// version is the client's default for https (HTTP/2 by ALPN) unless the options say.
    /// </summary>
    public GreetServiceClient TlsClient(ConnectClientOptions options)
    {
        string expected = _certificate!.Thumbprint;
        var handler = new SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate?.GetCertHashString() == expected },
        };
        return new GreetServiceClient(new HttpClient(handler) { BaseAddress = HttpsUrl }, options);
    }

    /// <summary>A client of the HTTP/1.1 endpoint, or of the HTTP/2 one when <paramref name="http2"/>.</summary>
    public GreetServiceClient Client(bool http2 = false, ConnectClientOptions? options = null)
    {
        options ??= new ConnectClientOptions();
        if (http2)
        {
            options.HttpVersion = HttpVersion.Version20;
        }

        return new GreetServiceClient((http2 ? Http2Url : Http1Url).ToString(), options);
    }

    /// <summary>
    /// Stops the host gracefully: Kestrel stops listening, sends HTTP/2 GOAWAY, and waits for
    /// the calls in flight until <paramref name="cancellationToken"/> fires, then aborts them.
    /// </summary>
    public Task StopAsync(CancellationToken cancellationToken) => _app.StopAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(stop.Token);
        await _app.DisposeAsync();
        _certificate?.Dispose();
    }

    /// <summary>Records warnings and errors, with their exceptions (also used by <see cref="GrpcDotnetServer"/>).</summary>
    internal sealed class RecordingLoggerProvider(ConcurrentQueue<string> logs) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, logs);

        public void Dispose()
        {
        }

        private sealed class Logger(string category, ConcurrentQueue<string> logs) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (IsEnabled(logLevel))
                {
                    logs.Enqueue($"{logLevel} {category}: {formatter(state, exception)} {exception}");
                }
            }
        }
    }
}
