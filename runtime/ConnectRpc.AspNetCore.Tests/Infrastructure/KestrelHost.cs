using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Connectrpc.Greet.V1;
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

/// <summary>What a <see cref="KestrelHost"/> serves: its services, its request pipeline, and whether it also listens with TLS.</summary>
public sealed class KestrelHostOptions
{
    /// <summary>Registers the application's services (Connect, grpc-dotnet, singletons the test inspects).</summary>
    public Action<IServiceCollection>? Services { get; init; }

    /// <summary>Builds the request pipeline: maps services, adds middleware, or answers every request by hand.</summary>
    public required Action<WebApplication> App { get; init; }

    /// <summary>Adds a third endpoint: HTTPS with ALPN for HTTP/1.1 and HTTP/2, on a self-signed certificate made for the run.</summary>
    public bool Tls { get; init; }
}

/// <summary>A warning or error the server logged.</summary>
public sealed record LogEntry(LogLevel Level, string Category, EventId EventId, string Message, Exception? Exception)
{
    public override string ToString() => $"{Level} {Category}: {Message} {Exception}";
}

/// <summary>
/// The one Kestrel host of the end-to-end tests: real Kestrel on 127.0.0.1 with dynamic ports,
/// HTTP/1.1 on one endpoint and cleartext HTTP/2 on its own (prior knowledge needs its own
/// endpoint), and with <see cref="KestrelHostOptions.Tls"/> a third, HTTPS. It serves what the
/// test configures (<see cref="StartAsync(Action{ConnectServerOptions}?, bool)"/>: our Connect
/// greet service; or any <see cref="KestrelHostOptions"/>: grpc-dotnet, raw handlers), counts the
/// TCP connections and requests open now, and records every warning and error the server logs.
/// </summary>
/// <remarks>
/// Every test fails when a host it used logged a warning or an error during it, unless the test
/// said it expects that entry (<see cref="ExpectLogs(string, Func{LogEntry, bool})"/>): see
/// <see cref="ServerLogCheckAttribute"/>. A host shared by a test class (<see cref="KestrelFixture"/>)
/// is checked per test: each test sees only its own window of the log.
/// </remarks>
public sealed class KestrelHost : IAsyncDisposable
{
    /// <summary>How long the after-test check waits for the requests still in flight to end before it reads the log.</summary>
    private static readonly TimeSpan s_settle = TimeSpan.FromSeconds(5);

    /// <summary>Hosts started inside a test (not by a fixture), by the test's unique ID, for the after-test check.</summary>
    private static readonly ConcurrentDictionary<string, ConcurrentQueue<KestrelHost>> s_startedByTest = new();

    private readonly WebApplication _app;
    private readonly X509Certificate2? _certificate;
    private readonly List<(LogEntry Entry, int Window)> _log = [];
    private readonly List<(string Why, Func<LogEntry, bool> Match)> _expected = [];
    private readonly List<LogEntry> _outsideTests = [];
    private int _window;
    private bool _windowChecked;
    private int _openConnections;
    private int _requestsInFlight;
    private int _stopped;

    private KestrelHost(WebApplication app, X509Certificate2? certificate)
    {
        _app = app;
        _certificate = certificate;
    }

    public Uri Http1Url { get; private set; } = null!;

    public Uri Http2Url { get; private set; } = null!;

    /// <summary>The HTTPS endpoint (HTTP/1.1 and HTTP/2 by ALPN), when started with TLS.</summary>
    public Uri? HttpsUrl { get; private set; }

    public IServiceProvider Services => _app.Services;

    /// <summary>Our greet service, when the host serves it.</summary>
    public TestGreetService Service => Services.GetRequiredService<TestGreetService>();

    /// <summary>TCP connections accepted and not yet closed.</summary>
    public int OpenConnections => Volatile.Read(ref _openConnections);

    /// <summary>Requests whose pipeline has not returned yet.</summary>
    public int RequestsInFlight => Volatile.Read(ref _requestsInFlight);

    /// <summary>The warnings and errors logged in the current test's window, with their exceptions, formatted.</summary>
    public IReadOnlyList<string> Logs => [.. Entries().Select(entry => entry.ToString())];

    /// <summary>Serves our <see cref="TestGreetService"/> with Connect, gRPC and gRPC-Web.</summary>
    public static Task<KestrelHost> StartAsync(Action<ConnectServerOptions>? configure = null, bool tls = false) => StartAsync(new KestrelHostOptions
    {
        Tls = tls,
        Services = services =>
        {
            services.AddSingleton<TestGreetService>();
            services.AddConnect(configure);
        },
        App = app => app.MapConnectService<TestGreetService>(IGreetService.BindService),
    });

    /// <summary>
    /// Our server with the greet service registered (not mapped), more services from
    /// <paramref name="services"/>, and the endpoints <paramref name="map"/> maps.
    /// </summary>
    public static Task<KestrelHost> StartAsync(
        Action<ConnectServerOptions>? configure,
        bool tls,
        Action<IServiceCollection>? services,
        Action<WebApplication> map) => StartAsync(new KestrelHostOptions
    {
        Tls = tls,
        Services = collection =>
        {
            collection.AddSingleton<TestGreetService>();
            collection.AddConnect(configure);
            services?.Invoke(collection);
        },
        App = map,
    });

    /// <summary>Answers every request with <paramref name="respond"/>: a hand-written peer.</summary>
    public static Task<KestrelHost> StartAsync(RequestDelegate respond) => StartAsync(new KestrelHostOptions { App = app => app.Run(respond) });

    public static async Task<KestrelHost> StartAsync(KestrelHostOptions options)
    {
        X509Certificate2? certificate = options.Tls ? SelfSignedCertificate() : null;
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        KestrelHost? host = null;
        if (certificate is not null)
        {
            builder.WebHost.UseKestrelHttpsConfiguration();
        }

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, 0, listen => Configure(listen, HttpProtocols.Http1));
            kestrel.Listen(IPAddress.Loopback, 0, listen => Configure(listen, HttpProtocols.Http2));
            if (certificate is not null)
            {
                kestrel.Listen(IPAddress.Loopback, 0, listen =>
                {
                    Configure(listen, HttpProtocols.Http1AndHttp2);
                    listen.UseHttps(certificate);
                });
            }
        });
        builder.Logging.ClearProviders();
        var early = new ConcurrentQueue<LogEntry>();
        builder.Logging.AddProvider(new RecordingLoggerProvider(entry =>
        {
            if (Volatile.Read(ref host) is { } started)
            {
                started.Record(entry);
            }
            else
            {
                early.Enqueue(entry);
            }
        }));
        options.Services?.Invoke(builder.Services);
        WebApplication app = builder.Build();
        Volatile.Write(ref host, new KestrelHost(app, certificate));
        while (early.TryDequeue(out LogEntry? entry))
        {
            host.Record(entry);
        }

        app.Use(async (context, next) =>
        {
            Interlocked.Increment(ref host._requestsInFlight);
            try
            {
                await next(context);
            }
            finally
            {
                Interlocked.Decrement(ref host._requestsInFlight);
            }
        });
        options.App(app);
        try
        {
            await app.StartAsync(Bounded.Token).Within();
        }
        catch
        {
            await app.DisposeAsync();
            certificate?.Dispose();
            throw;
        }

        string[] addresses = [.. app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses];
        host.Http1Url = new Uri(addresses[0]);
        host.Http2Url = new Uri(addresses[1]);
        host.HttpsUrl = certificate is null ? null : new Uri(addresses[2]);
        if (TestContext.Current.Test is { } test)
        {
            s_startedByTest.GetOrAdd(test.UniqueID, static _ => new()).Enqueue(host);
        }

        return host;

        void Configure(ListenOptions listen, HttpProtocols protocols)
        {
            listen.Protocols = protocols;
            listen.Use(next => async connection =>
            {
                // Endpoints are configured before the app is built; the host exists by the first connection.
                Interlocked.Increment(ref host!._openConnections);
                try
                {
                    await next(connection);
                }
                finally
                {
                    Interlocked.Decrement(ref host._openConnections);
                }
            });
        }
    }

    /// <summary>
    /// The test expects the server to log warnings or errors that <paramref name="match"/> accepts
    /// (<paramref name="why"/> says which and why): they do not fail it. Holds until the end of
    /// the current test.
    /// </summary>
    public void ExpectLogs(string why, Func<LogEntry, bool> match)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(why);
        lock (_log)
        {
            _expected.Add((why, match));
        }
    }

    /// <summary>
    /// The test expects warnings or errors whose message or exception contains
    /// <paramref name="text"/>; until the end of the current test.
    /// </summary>
    public void ExpectLogs(string why, string text) =>
        ExpectLogs(why, entry => entry.ToString().Contains(text, StringComparison.Ordinal));

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

    /// <summary>Stops the host (calls in flight get 5 seconds) and releases it; bounded.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }

        using (var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            await _app.StopAsync(stop.Token).WaitAsync(TimeSpan.FromSeconds(10));
        }

        await _app.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        _certificate?.Dispose();
    }

    /// <summary>Starts a new test's window: the log so far and its expectations no longer count, and the served state is reset.</summary>
    internal void BeginTest()
    {
        lock (_log)
        {
            if (!_windowChecked)
            {
                // Logged before the first test (while the host started) or by a test nobody checked.
                _outsideTests.AddRange(Unexpected());
            }

            _window++;
            _windowChecked = false;
            _expected.Clear();
        }

        if (Volatile.Read(ref _stopped) == 0)
        {
            Services.GetService<TestGreetService>()?.Reset();
            Services.GetService<GrpcDotnetGreetService>()?.Reset();
        }
    }

    /// <summary>
    /// Fails unless every warning and error of the current window was expected. Waits (bounded)
    /// for the requests in flight to end first, so a test's late server log counts for that test.
    /// </summary>
    internal void AssertNoUnexpectedLogs(string test)
    {
        var settle = System.Diagnostics.Stopwatch.StartNew();
        while (RequestsInFlight > 0 && settle.Elapsed < s_settle)
        {
            Thread.Sleep(10);
        }

        LogEntry[] unexpected;
        string expected;
        lock (_log)
        {
            unexpected = Unexpected();
            expected = _expected.Count == 0 ? "none" : string.Join("; ", _expected.Select(e => e.Why));
            _windowChecked = true;
        }

        if (unexpected.Length > 0)
        {
            throw new Xunit.Sdk.XunitException(
                $"The server logged {unexpected.Length} unexpected warning(s) or error(s) during {test} " +
                $"(a test that expects them says so with KestrelHost.ExpectLogs; expected here: {expected}):\n" + string.Join("\n", unexpected.Take(10)));
        }
    }

    /// <summary>
    /// Fails if the server logged a warning or an error outside every test's window: while it
    /// started, between tests, after the last test's check, or as it stopped. A fixture's host
    /// calls this once stopped.
    /// </summary>
    internal void AssertNothingLoggedOutsideTests()
    {
        LogEntry[] outside;
        lock (_log)
        {
            outside = [.. _outsideTests, .. _windowChecked ? [] : Unexpected()];
        }

        if (outside.Length > 0)
        {
            throw new Xunit.Sdk.XunitException(
                $"The shared server logged {outside.Length} warning(s) or error(s) outside the window of any test:\n" + string.Join("\n", outside.Take(10)));
        }
    }

    /// <summary>The hosts started inside the test <paramref name="testId"/>, forgotten as they are returned.</summary>
    internal static KestrelHost[] TakeStartedBy(string testId) =>
        s_startedByTest.TryRemove(testId, out ConcurrentQueue<KestrelHost>? hosts) ? [.. hosts] : [];

    /// <summary>The current window's entries no expectation accepts; under the lock.</summary>
    private LogEntry[] Unexpected() =>
        [.. _log.Where(e => e.Window == _window).Select(e => e.Entry).Where(entry => !_expected.Any(e => e.Match(entry)))];

    private IEnumerable<LogEntry> Entries()
    {
        lock (_log)
        {
            return [.. _log.Where(e => e.Window == _window).Select(e => e.Entry)];
        }
    }

    private void Record(LogEntry entry)
    {
        lock (_log)
        {
            _log.Add((entry, _window));
            if (_windowChecked && !_expected.Any(e => e.Match(entry)))
            {
                // The current test was already checked: nobody else will see this entry.
                _outsideTests.Add(entry);
            }
        }
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

    /// <summary>Records warnings and errors, with their exceptions.</summary>
    private sealed class RecordingLoggerProvider(Action<LogEntry> record) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, record);

        public void Dispose()
        {
        }

        private sealed class Logger(string category, Action<LogEntry> record) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (IsEnabled(logLevel))
                {
                    record(new LogEntry(logLevel, category, eventId, formatter(state, exception), exception));
                }
            }
        }
    }
}
