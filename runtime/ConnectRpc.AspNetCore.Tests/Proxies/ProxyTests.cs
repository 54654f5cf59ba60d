using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Greet.V1;

using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// Debian's HAProxy 2.6 and nginx 1.22, each with its configuration from examples/proxies, in
/// front of three instances of the Greet demo's server, all on 127.0.0.1. Started once for the
/// class (<see cref="ProxyServers"/>), stopped after it.
/// </summary>
public sealed class ProxyTests(ProxyServers rig) : IClassFixture<ProxyServers>
{
    /// <summary>HAProxy: every protocol from HTTP/1.1 clients (gRPC needs HTTP/2) and from HTTP/2 clients.</summary>
    public static TheoryData<Protocol, bool> HAProxyCases => new()
    {
        { Protocol.Connect, false },
        { Protocol.GrpcWeb, false },
        { Protocol.Connect, true },
        { Protocol.Grpc, true },
        { Protocol.GrpcWeb, true },
    };

    [Theory]
    [MemberData(nameof(HAProxyCases))]
    public async Task HAProxy_EveryKind_PassesWithHeadersAndTrailers(Protocol protocol, bool http2)
    {
        // Bidi too: full duplex from HTTP/2 clients, half-duplex from HTTP/1.1 ones.
        await EveryKindAsync(ProxyRig.Client(rig.HAProxyUrl, protocol, http2));
        rig.AssertServersQuiet();
    }

    [Fact]
    public async Task HAProxy_SpreadsCallsOverAllThreeInstances()
    {
        int[] served = await SpreadAsync([ProxyRig.Client(rig.HAProxyUrl, Protocol.Connect, http2: true), ProxyRig.Client(rig.HAProxyUrl, Protocol.Grpc, http2: true)]);
        Assert.All(served, count => Assert.InRange(count, 1, 30));
    }

    [Fact]
    public async Task HAProxy_HealthCheck_IsAConnectUnaryCall_AndEveryServerPassesIt()
    {
        // The check HAProxy makes, by hand: a plain HTTP/1.1 POST of JSON {} to the health service.
        using var http = new HttpClient();
        foreach (GreetInstance server in rig.Servers)
        {
            using var body = new StringContent("{}", Encoding.UTF8, new MediaTypeHeaderValue("application/json"));
            using HttpResponseMessage response = await http.PostAsync(new Uri($"http://127.0.0.1:{server.Http1Port}/grpc.health.v1.Health/Check"), body, Bounded.Token).Within();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Contains("\"SERVING\"", await response.Content.ReadAsStringAsync(Bounded.Token), StringComparison.Ordinal);
        }

        // HAProxy's own view: every server passed its layer 7 check, with HTTP 200.
        Dictionary<string, (string Status, string Check, string Code)> stats = await rig.HAProxyServersAsync();
        Assert.Equal(["greet1", "greet2", "greet3"], stats.Keys.Order());
        Assert.All(stats.Values, server => Assert.Equal(("UP", "L7OK", "200"), server));
    }

    [Theory]
    [InlineData(Protocol.Grpc)]
    [InlineData(Protocol.Connect)]
    [InlineData(Protocol.GrpcWeb)]
    public async Task Nginx_Http2_GrpcPass_EveryKind_PassesWithHeadersAndTrailers(Protocol protocol)
    {
        await EveryKindAsync(ProxyRig.Client(rig.NginxHttp2Url, protocol, http2: true));
        rig.AssertServersQuiet();
    }

    [Theory]
    [InlineData(Protocol.Connect)]
    [InlineData(Protocol.GrpcWeb)]
    public async Task Nginx_Http1_ProxyPass_EveryKind_PassesWithHeadersAndTrailers(Protocol protocol)
    {
        // Bidi half-duplex: nginx streams the request body to the server (proxy_request_buffering off).
        await EveryKindAsync(ProxyRig.Client(rig.NginxHttp1Url, protocol, http2: false));
        rig.AssertServersQuiet();
    }

    [Fact]
    public async Task Nginx_SpreadsCallsOverAllThreeInstances()
    {
        int[] served = await SpreadAsync([ProxyRig.Client(rig.NginxHttp2Url, Protocol.Grpc, http2: true), ProxyRig.Client(rig.NginxHttp1Url, Protocol.Connect, http2: false)]);
        Assert.All(served, count => Assert.InRange(count, 1, 30));
    }

    /// <summary>
    /// Every RPC kind through <paramref name="client"/>, and an error: each
    /// answer complete, with the demo's <c>greet-version: v1</c> in its headers and trailers.
    /// </summary>
    private static async Task EveryKindAsync(CallInvoker client)
    {
        string tenant = "kinds-" + Guid.NewGuid().ToString("N")[..8];
        using (var meta = new ResponseMetadata())
        {
            GreetResponse response = await client.UnaryAsync(DemoGreet.Greet, new GreetRequest { Name = "Ada" }, ProxyRig.Headers(tenant)).Within();
            Assert.Equal("Hello, Ada!", response.Greeting);
            AssertVersion("unary", meta.Headers, meta.Trailers);
        }

        using (var meta = new ResponseMetadata())
        {
            List<GreetManyResponse> responses = await client.ServerStreamingAsync(
                DemoGreet.GreetMany, new GreetManyRequest { Name = "Ada", Times = 3 }, ProxyRig.Headers(tenant)).ToListWithin();
            Assert.Equal(["Hello, Ada! (1 of 3)", "Hello, Ada! (2 of 3)", "Hello, Ada! (3 of 3)"], responses.Select(r => r.Greeting));
            AssertVersion("server stream", meta.Headers, meta.Trailers);
        }

        using (var meta = new ResponseMetadata())
        {
            GreetEveryoneResponse response = await client.ClientStreamingAsync(
                DemoGreet.GreetEveryone, Items(new GreetEveryoneRequest { Name = "Ada" }, new GreetEveryoneRequest { Name = "Grace" }), ProxyRig.Headers(tenant)).Within();
            Assert.Equal("Hello, Ada, Grace!", response.Greeting);
            AssertVersion("client stream", meta.Headers, meta.Trailers);
        }

        using (var meta = new ResponseMetadata())
        {
            List<ChatResponse> responses = await client.BidiStreamingAsync(
                DemoGreet.Chat, Items(new ChatRequest { Name = "Ada" }, new ChatRequest { Name = "Grace" }), ProxyRig.Headers(tenant)).ToListWithin();
            Assert.Equal(["Hello, Ada!", "Hello, Grace!"], responses.Select(r => r.Greeting));
            AssertVersion("bidi", meta.Headers, meta.Trailers);
        }

        // An error, with its message and metadata.
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => client.UnaryAsync(DemoGreet.Greet, new GreetRequest { Name = "" }, ProxyRig.Headers(tenant)).Within());
        Assert.Equal((Code.InvalidArgument, "name is required"), (error.Code, error.Message));
        Assert.Equal("v1", error.Headers.Get("greet-version") ?? error.Trailers.Get("greet-version"));
    }

    /// <summary>30 unary calls over each client; how many of them each instance served (from its log).</summary>
    private async Task<int[]> SpreadAsync(CallInvoker[] clients)
    {
        string tenant = "spread-" + Guid.NewGuid().ToString("N")[..8];
        int calls = 0;
        foreach (CallInvoker client in clients)
        {
            for (int i = 0; i < 30; i++)
            {
                await client.UnaryAsync(DemoGreet.Greet, new GreetRequest { Name = "n" + i.ToString(CultureInfo.InvariantCulture) }, ProxyRig.Headers(tenant)).Within();
                calls++;
            }
        }

        // The servers log each call; the console logger writes on its own thread.
        await Wait.UntilAsync(() => rig.Servers.Sum(s => s.CallsBy(tenant)) == calls, () => string.Join(", ", rig.Servers.Select(s => s.CallsBy(tenant))));
        int[] served = [.. rig.Servers.Select(s => s.CallsBy(tenant))];
        TestContext.Current.SendDiagnosticMessage($"{calls} calls served: {string.Join(", ", served)}");
        return served;
    }

    private static void AssertVersion(string kind, Headers headers, Headers trailers)
    {
        Assert.True(headers.Get("greet-version") == "v1", $"{kind}: the response headers lack greet-version: v1");
        Assert.True(trailers.Get("greet-version") == "v1", $"{kind}: the trailers lack greet-version: v1");
    }

    private static async IAsyncEnumerable<T> Items<T>(params T[] items)
    {
        foreach (T item in items)
        {
            await Task.Yield();
            yield return item;
        }
    }
}

/// <summary>Three Greet servers, HAProxy and nginx in front of them; for a test class.</summary>
public sealed class ProxyServers : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("connect-proxies-").FullName;
    private RigProcess? _haproxy;
    private RigProcess? _nginx;
    private int _statsPort;
    private int _disposed;

    internal GreetInstance[] Servers { get; } = [new("greet1"), new("greet2"), new("greet3")];

    internal Uri HAProxyUrl { get; private set; } = null!;

    internal Uri NginxHttp1Url { get; private set; } = null!;

    internal Uri NginxHttp2Url { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        try
        {
            await Task.WhenAll(Servers.Select(s => s.StartAsync()));
            (_haproxy, HAProxyUrl, _statsPort) = await StartHAProxyAsync(_dir, Servers);
            await WaitForHAProxyChecksAsync(_statsPort, _haproxy, Servers.Length);
            (_nginx, NginxHttp1Url, NginxHttp2Url) = await StartNginxAsync(_dir, Servers);
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    /// <summary>HAProxy with examples/proxies/haproxy.cfg, in the foreground; its URL and stats port.</summary>
    internal static async Task<(RigProcess Process, Uri Url, int StatsPort)> StartHAProxyAsync(string dir, GreetInstance[] servers)
    {
        string haproxy = ProxyRig.Require("haproxy", "haproxy");
        int port = ProxyRig.FreePort();
        int stats = ProxyRig.FreePort();
        string config = Path.Combine(dir, "haproxy.cfg");
        await File.WriteAllTextAsync(config, ProxyRig.Config("haproxy.cfg", new Dictionary<string, string>
        {
            ["PROXY_PORT"] = port.ToString(CultureInfo.InvariantCulture),
            ["STATS_PORT"] = stats.ToString(CultureInfo.InvariantCulture),
            ["RUNTIME_SOCKET"] = Path.Combine(dir, "haproxy.sock"),
        }, servers), Bounded.Token);
        RigProcess process = RigProcess.Start("haproxy", haproxy, ["-db", "-f", config], dir);
        await ProxyRig.WaitForPortAsync(port, process);
        return (process, new Uri($"http://127.0.0.1:{port}"), stats);
    }

    /// <summary>Waits (bounded) until HAProxy has checked every server and found it up.</summary>
    internal static async Task WaitForHAProxyChecksAsync(int statsPort, RigProcess haproxy, int count)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            Dictionary<string, (string Status, string Check, string Code)> servers = await HAProxyServersAsync(statsPort);
            if (servers.Count == count && servers.Values.All(s => s.Status == "UP" && s.Check == "L7OK"))
            {
                return;
            }

            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(20), "HAProxy did not find every server up: " +
                string.Join("; ", servers.Select(s => $"{s.Key} {s.Value}")) + "\n" + haproxy.Output);
            await Task.Delay(100, Bounded.Token);
        }
    }

    /// <summary>Each server of the backend: its status, last check and the check's HTTP status (HAProxy's stats, CSV).</summary>
    internal Task<Dictionary<string, (string Status, string Check, string Code)>> HAProxyServersAsync() => HAProxyServersAsync(_statsPort);

    internal static async Task<Dictionary<string, (string Status, string Check, string Code)>> HAProxyServersAsync(int statsPort)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        string csv = await http.GetStringAsync(new Uri($"http://127.0.0.1:{statsPort}/stats;csv"), Bounded.Token);
        string[] lines = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string[] columns = lines[0].TrimStart('#', ' ').Split(',');
        int name = Array.IndexOf(columns, "svname"), status = Array.IndexOf(columns, "status"), check = Array.IndexOf(columns, "check_status"), code = Array.IndexOf(columns, "check_code");
        var servers = new Dictionary<string, (string, string, string)>();
        foreach (string[] row in lines.Skip(1).Select(line => line.Split(',')))
        {
            if (row[0] == "greet" && row[name] is not ("BACKEND" or "FRONTEND"))
            {
                servers[row[name]] = (row[status], row[check], row[code]);
            }
        }

        return servers;
    }

    /// <summary>nginx with examples/proxies/nginx.conf, in the foreground, prefix <paramref name="dir"/>.</summary>
    private static async Task<(RigProcess Process, Uri Http1, Uri Http2)> StartNginxAsync(string dir, GreetInstance[] servers)
    {
        string nginx = ProxyRig.Require("nginx", "nginx");
        int http1 = ProxyRig.FreePort();
        int http2 = ProxyRig.FreePort();
        string prefix = Path.Combine(dir, "nginx") + "/";
        Directory.CreateDirectory(Path.Combine(prefix, "tmp"));
        string config = Path.Combine(prefix, "nginx.conf");
        await File.WriteAllTextAsync(config, ProxyRig.Config("nginx.conf", new Dictionary<string, string>
        {
            ["HTTP1_PORT"] = http1.ToString(CultureInfo.InvariantCulture),
            ["HTTP2_PORT"] = http2.ToString(CultureInfo.InvariantCulture),
        }, servers), Bounded.Token);
        RigProcess process = RigProcess.Start("nginx", nginx, ["-p", prefix, "-c", config, "-g", "daemon off;"], prefix);
        await ProxyRig.WaitForPortAsync(http1, process);
        await ProxyRig.WaitForPortAsync(http2, process);
        return (process, new Uri($"http://127.0.0.1:{http1}"), new Uri($"http://127.0.0.1:{http2}"));
    }

    /// <summary>Fails if a server logged a warning or an error.</summary>
    internal void AssertServersQuiet() => ProxyRig.AssertQuiet(Servers);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await ProxyRig.StopAsync(_dir, Servers, _nginx, _haproxy);
        }
    }
}
