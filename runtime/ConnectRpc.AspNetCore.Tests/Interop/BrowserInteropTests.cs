using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using CliWrap;
using CliWrap.Buffered;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.FileProviders;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// One run of a real browser against our server, shared by the tests of <see cref="BrowserInteropTests"/>:
/// Debian's chromium, headless, driven over the DevTools protocol by interop/browser/driver.mjs,
/// opens interop/browser's page (connect-web, bundled) from one origin (a static Kestrel host),
/// and the page calls our greet server on another origin, whose CORS policy
/// (<c>WithConnectCors</c>) allows the page's origin. Then the same page from a third origin,
/// which the policy does not allow. Everything it started (Kestrel hosts, node, chromium and its
/// profile folder) is gone when it returns or fails.
/// </summary>
public sealed class BrowserRun : IAsyncLifetime
{
    /// <summary>Where a failing case's screenshot is saved.</summary>
    public static readonly string ScreenshotDir = Path.Combine(Peers.RepoRoot, "bin", "browser-test");

    private static readonly string s_browserDir = Path.Combine(Peers.InteropDir, "browser");

    private readonly List<KestrelHost> _hosts = [];
    private DirectoryInfo? _screenshots;

    /// <summary>The page's origin, which the server allows.</summary>
    public string AllowedOrigin { get; private set; } = "";

    /// <summary>The origin the server does not allow.</summary>
    public string RefusedOrigin { get; private set; } = "";

    /// <summary>Each case's result, by name ("connect/unary"), and the screenshot of its page.</summary>
    public Dictionary<string, (JsonElement Result, string Screenshot)> Cases { get; } = [];

    /// <summary>chromium's product name and version.</summary>
    public string Browser { get; private set; } = "";

    /// <summary>When (ms after its start) the driver saw chromium listen, finished each page, and saw chromium exit.</summary>
    public string Timings { get; private set; } = "";

    /// <summary>How long the browser run took, from starting node to its exit.</summary>
    public TimeSpan Elapsed { get; private set; }

    /// <summary>Every request the server got: "POST /path from origin".</summary>
    public ConcurrentQueue<string> ServerRequests { get; } = new();

    /// <summary>The warnings and errors the server logged during the run.</summary>
    public IReadOnlyList<string> ServerLogs { get; private set; } = [];

    /// <summary>Processes still running with the run's chromium profile folder on their command line after the run (killed then).</summary>
    public List<string> LeftOver { get; } = [];

    /// <summary>Whether the run's chromium profile folder could not be removed after it.</summary>
    public bool ProfileLeftOver { get; private set; }

    public async ValueTask InitializeAsync()
    {
        string chromium = Environment.GetEnvironmentVariable("CONNECT_CHROMIUM") ?? "/usr/bin/chromium";
        Assert.True(File.Exists(chromium), $"{chromium} is missing: run `make test` (it installs Debian's chromium) or `apt-get install chromium`.");
        string dist = Path.Combine(s_browserDir, "dist");
        if (Directory.Exists(ScreenshotDir))
        {
            Directory.Delete(ScreenshotDir, recursive: true); // an earlier run's failures
        }

        Assert.True(File.Exists(Path.Combine(dist, "page.js")), "interop/browser/dist is missing: run `make interop` first.");

        try
        {
            KestrelHost allowed = await StaticHostAsync(dist);
            KestrelHost refused = await StaticHostAsync(dist);
            AllowedOrigin = Origin(allowed);
            RefusedOrigin = Origin(refused);
            KestrelHost server = await CorsServer.StartAsync([AllowedOrigin], ServerRequests);
            _hosts.Add(server);
            await RunBrowserAsync(server, chromium);
            ServerLogs = server.Logs;
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (KestrelHost host in _hosts)
        {
            await host.DisposeAsync();
        }

        _hosts.Clear();
        _screenshots?.Delete(recursive: true);
        _screenshots = null;
    }

    private async Task<KestrelHost> StaticHostAsync(string dist)
    {
        KestrelHost host = await KestrelHost.StartAsync(new KestrelHostOptions
        {
            App = app => app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = new PhysicalFileProvider(dist) })
                .UseStaticFiles(new StaticFileOptions { FileProvider = new PhysicalFileProvider(dist) }),
        });
        _hosts.Add(host);
        return host;
    }

    private static string Origin(KestrelHost host) => host.Http1Url.GetLeftPart(UriPartial.Authority);

    private async Task RunBrowserAsync(KestrelHost server, string chromium)
    {
        _screenshots = Directory.CreateTempSubdirectory("connectrpc-browser-shots-");
        DirectoryInfo profile = Directory.CreateTempSubdirectory("connectrpc-chromium-");
        string serverUrl = Uri.EscapeDataString(Origin(server));
        var stopwatch = Stopwatch.StartNew();
        BufferedCommandResult result;
        try
        {
            // The driver bounds its own run (60 s) and stops chromium on every way out; this bound
            // is for the driver itself, which CliWrap kills (with its process tree) when it fires.
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(90));
            result = await Cli.Wrap("node")
                .WithArguments([
                    Path.Combine(s_browserDir, "driver.mjs"),
                    "--chromium", chromium,
                    "--user-data-dir", profile.FullName,
                    "--screenshots", _screenshots.FullName,
                    "--timeout-ms", "60000",
                    "--page", $"{AllowedOrigin}/?server={serverUrl}",
                    "--page", $"{RefusedOrigin}/?server={serverUrl}&cases=refused",
                ])
                .WithWorkingDirectory(s_browserDir)
                .WithValidation(CommandResultValidation.None)
                .ExecuteBufferedAsync(Encoding.UTF8, timeout.Token);
        }
        finally
        {
            Elapsed = stopwatch.Elapsed;
            StopLeftOvers(profile.FullName);
            profile.Refresh();
            for (int attempt = 0; profile.Exists && attempt < 20; attempt++)
            {
                try
                {
                    profile.Delete(recursive: true);
                }
                catch (IOException)
                {
                    // A process that just died may still be closing files in it.
                    await Task.Delay(100);
                }

                profile.Refresh();
            }

            ProfileLeftOver = profile.Exists;
        }

        Assert.True(result.ExitCode == 0, $"driver.mjs exited with {result.ExitCode}:\n{result.StandardError}");
        JsonElement report = JsonDocument.Parse(result.StandardOutput).RootElement.Clone();
        Browser = report.GetProperty("browser").GetString()!;
        Timings = report.GetProperty("timingsMs").ToString();
        foreach (JsonElement page in report.GetProperty("pages").EnumerateArray())
        {
            foreach (JsonElement item in page.GetProperty("results").EnumerateArray())
            {
                Cases[item.GetProperty("name").GetString()!] = (item, page.GetProperty("screenshot").GetString()!);
            }
        }
    }

    /// <summary>Kills (by process ID) whatever still runs with the run's profile folder on its command line: chromium the driver failed to stop.</summary>
    private void StopLeftOvers(string profile)
    {
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
            {
                continue;
            }

            string commandLine;
            try
            {
                commandLine = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
            }
            catch (IOException)
            {
                continue; // exited meanwhile
            }
            catch (UnauthorizedAccessException)
            {
                continue;
            }

            if (commandLine.Contains(profile, StringComparison.Ordinal))
            {
                LeftOver.Add($"{pid}: {commandLine}");
                try
                {
                    using var process = Process.GetProcessById(pid);
                    process.Kill();
                }
                catch (ArgumentException)
                {
                    // Exited meanwhile.
                }
            }
        }
    }
}

/// <summary>
/// A real browser calls our server across origins with connect-web's Connect and gRPC-Web
/// transports (see <see cref="BrowserRun"/>); each test asserts on one case of the page's report.
/// A failing case saves its page's screenshot to bin/browser-test/&lt;case&gt;.png.
/// </summary>
public sealed class BrowserInteropTests(BrowserRun run) : IClassFixture<BrowserRun>
{
    public static TheoryData<string> Transports => ["connect", "grpc-web"];

    [Theory]
    [MemberData(nameof(Transports))]
    public void A_unary_call_sends_headers_and_reads_headers_and_trailers(string transport) => Case($"{transport}/unary", result =>
    {
        Assert.Equal(JsonValueKind.Null, result.GetProperty("error").ValueKind);
        Assert.Equal(["Hello, Ada!"], Strings(result.GetProperty("messages")));
        JsonElement headers = result.GetProperty("headers");
        Assert.Equal(["1234"], Strings(headers.GetProperty("acme-tenant-id"))); // a request header the page sent, echoed
        Assert.Equal(["a"], Strings(headers.GetProperty("x-echo")));
        Assert.Equal(["v1"], Strings(headers.GetProperty("greet-version")));
        Assert.Equal(["v1"], Strings(result.GetProperty("trailers").GetProperty("greet-version")));
        Assert.Equal([0, 1, 2, 254, 255], result.GetProperty("echoBin").EnumerateArray().Select(b => b.GetInt32()));
        Assert.Equal(["POST"], Methods(result));
    });

    [Fact]
    public void A_Connect_unary_call_can_be_a_GET() => Case("connect-get/unary", result =>
    {
        Assert.Equal(JsonValueKind.Null, result.GetProperty("error").ValueKind);
        Assert.Equal(["Hello, Ada!"], Strings(result.GetProperty("messages")));
        Assert.Equal(["1234"], Strings(result.GetProperty("headers").GetProperty("acme-tenant-id")));
        Assert.Equal(["v1"], Strings(result.GetProperty("trailers").GetProperty("greet-version")));
        Assert.Equal(["GET"], Methods(result));
        Assert.Contains($"GET /connectrpc.greet.v1.GreetService/Greet from {run.AllowedOrigin}", run.ServerRequests);
    });

    [Theory]
    [MemberData(nameof(Transports))]
    public void A_server_stream_arrives_whole_with_headers_and_trailers(string transport) => Case($"{transport}/server-stream", result =>
    {
        Assert.Equal(JsonValueKind.Null, result.GetProperty("error").ValueKind);
        Assert.Equal(["Hello, Ada! (1)", "Hello, Ada! (2)", "Hello, Ada! (3)"], Strings(result.GetProperty("messages")));
        Assert.Equal(["1234"], Strings(result.GetProperty("headers").GetProperty("acme-tenant-id")));
        Assert.Equal(["v1"], Strings(result.GetProperty("trailers").GetProperty("greet-version")));
        Assert.Equal([0, 1, 2, 254, 255], result.GetProperty("echoBin").EnumerateArray().Select(b => b.GetInt32()));
    });

    [Theory]
    [MemberData(nameof(Transports))]
    public void An_error_carries_its_code_message_metadata_and_details(string transport) => Case($"{transport}/error-details", result =>
    {
        JsonElement error = result.GetProperty("error");
        Assert.Equal("not_found", error.GetProperty("code").GetString());
        Assert.Equal("failed as asked", error.GetProperty("message").GetString());
        Assert.Equal(["yes"], Strings(error.GetProperty("metadata").GetProperty("x-error-meta")));
        Assert.Equal(["the reason"], Strings(error.GetProperty("details")));
        Assert.Empty(Strings(result.GetProperty("messages")));
    });

    [Theory]
    [MemberData(nameof(Transports))]
    public void A_stream_that_fails_after_a_message_delivers_the_message_then_the_error(string transport) => Case($"{transport}/stream-error", result =>
    {
        Assert.Equal(["Hello, Ada! (1)"], Strings(result.GetProperty("messages")));
        JsonElement error = result.GetProperty("error");
        Assert.Equal("resource_exhausted", error.GetProperty("code").GetString());
        Assert.Equal(["yes"], Strings(error.GetProperty("metadata").GetProperty("x-error-meta")));
    });

    [Theory]
    [MemberData(nameof(Transports))]
    public void A_call_past_its_deadline_ends_with_deadline_exceeded_in_time(string transport) => Case($"{transport}/deadline", result =>
    {
        // The page gave the call 500 ms; the server would have answered after 5 s.
        Assert.Equal("deadline_exceeded", result.GetProperty("error").GetProperty("code").GetString());
        int elapsed = result.GetProperty("elapsedMs").GetInt32();
        Assert.InRange(elapsed, 400, 3000);
    });

    [Theory]
    [MemberData(nameof(Transports))]
    public void Client_streaming_and_bidi_never_leave_the_browser(string transport)
    {
        foreach (string kind in new[] { "client-stream", "bidi" })
        {
            Case($"{transport}/{kind}", result =>
            {
                // connect-web refuses both before any fetch: browsers' fetch cannot stream a request body.
                Assert.Empty(result.GetProperty("requests").EnumerateArray());
                JsonElement error = result.GetProperty("error");
                Assert.Equal("unknown", error.GetProperty("code").GetString());
                Assert.Contains("does not support streaming request bodies", error.GetProperty("message").GetString(), StringComparison.Ordinal);
            });
        }

        Assert.DoesNotContain(run.ServerRequests, r => r.Contains("/GreetEveryone ", StringComparison.Ordinal) || r.Contains("/Chat ", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public void A_call_from_an_origin_the_policy_does_not_allow_is_refused_before_it_is_sent(string transport) => Case($"{transport}/refused", result =>
    {
        // The preflight got no Access-Control-Allow-Origin: fetch fails, and the call never leaves the browser.
        JsonElement request = Assert.Single(result.GetProperty("requests").EnumerateArray());
        Assert.Equal("TypeError: Failed to fetch", request.GetProperty("fetchError").GetString());
        Assert.Equal("unknown", result.GetProperty("error").GetProperty("code").GetString());
        Assert.Empty(Strings(result.GetProperty("messages")));
        string[] fromRefused = [.. run.ServerRequests.Where(r => r.EndsWith(" from " + run.RefusedOrigin, StringComparison.Ordinal))];
        Assert.NotEmpty(fromRefused);
        Assert.All(fromRefused, r => Assert.StartsWith("OPTIONS ", r, StringComparison.Ordinal));
    });

    [Fact]
    public void The_run_was_quick_cached_its_preflights_and_left_nothing_behind()
    {
        TestContext.Current.TestOutputHelper?.WriteLine($"{run.Browser}: {run.Cases.Count} cases in {run.Elapsed.TotalSeconds:0.0} s (chromium's start and stop included; driver's marks in ms: {run.Timings})");
        Assert.Contains("Chrome/", run.Browser, StringComparison.Ordinal);
        Assert.Equal(17, run.Cases.Count);
        Assert.Empty(run.LeftOver);
        Assert.False(run.ProfileLeftOver);
        Assert.True(run.Elapsed < TimeSpan.FromSeconds(30), $"the browser run took {run.Elapsed}");
        Assert.Empty(run.ServerLogs);
        // The allowed page's calls reached the server, and the browser kept its preflights: one per
        // URL (Greet by POST, Greet by GET with its query, GreetMany) for its 11 calls, whatever the
        // transport's headers, since the cached answer lists every header the policy allows.
        string[] fromAllowed = [.. run.ServerRequests.Where(r => r.EndsWith(" from " + run.AllowedOrigin, StringComparison.Ordinal))];
        int preflights = fromAllowed.Count(r => r.StartsWith("OPTIONS ", StringComparison.Ordinal));
        Assert.Equal(11, fromAllowed.Length - preflights);
        Assert.InRange(preflights, 1, 3);
    }

    private void Case(string name, Action<JsonElement> assert)
    {
        Assert.True(run.Cases.TryGetValue(name, out (JsonElement Result, string Screenshot) found), $"the page reported no case {name}; it reported {string.Join(", ", run.Cases.Keys)}");
        try
        {
            assert(found.Result);
        }
        catch (Exception ex) when (ex is Xunit.Sdk.IAssertionException or KeyNotFoundException or InvalidOperationException)
        {
            Directory.CreateDirectory(BrowserRun.ScreenshotDir);
            string screenshot = Path.Combine(BrowserRun.ScreenshotDir, name.Replace('/', '-') + ".png");
            File.Copy(found.Screenshot, screenshot, overwrite: true);
            throw new Xunit.Sdk.XunitException($"{name}: {ex.Message}\nThe case reported: {found.Result}\nThe page's screenshot: {screenshot}", ex);
        }
    }

    private static string[] Methods(JsonElement result) =>
        [.. result.GetProperty("requests").EnumerateArray().Select(r => r.GetProperty("method").GetString()!)];

    private static string[] Strings(JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetString()!)];
}
