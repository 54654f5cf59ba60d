using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Loggers;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Perfolizer.Horology;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Connectrpc.Greet.V1;
using ConnectRpc.Internal;
using Google.Protobuf;

namespace ConnectRpc.Benchmarks;

/// <summary>
/// Runs every contender side by side in one run and writes BENCHMARKS.md: h2load against the
/// servers, child processes for the clients, the two protoc plugins on the same requests, and
/// BenchmarkDotNet for the micro-benchmarks. Contenders alternate within each round, and a
/// ratio is the median of the rounds' ratios, so drift on a shared machine hits both sides alike.
/// </summary>
internal static partial class Runner
{
    private sealed record Settings(bool Quick, string Out, string Plugin, string GrpcPlugin)
    {
        public int Rounds => Quick ? 1 : 5;

        public int LoadSeconds => Quick ? 3 : 10;

        public double ClientSeconds => Quick ? 2 : 8;

        public int PluginRuns => Quick ? 3 : 15;

        public int WarmUpSeconds => Quick ? 3 : 10;
    }

    public static async Task<int> RunAsync(string[] args)
    {
        string? Option(string name) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
        string grpcTools = typeof(Runner).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "GrpcToolsPath").Value!;
        var settings = new Settings(
            args.Contains("--quick"),
            Option("--out") ?? "BENCHMARKS.md",
            Option("--plugin") ?? "bin/protoc-gen-connect-csharp",
            Path.Combine(grpcTools, "tools", "linux_x64", "grpc_csharp_plugin"));

        var report = new Report(settings.Quick, settings.Rounds);
        string work = Directory.CreateTempSubdirectory("connect-bench-").FullName;
        try
        {
            await using (ServerProcess servers = await ServerProcess.StartAsync())
            {
                Console.WriteLine($"servers: connect {servers.ConnectHttp1} {servers.ConnectHttp2}, grpc-dotnet {servers.GrpcDotnetHttp2}, bare {servers.BareHttp1}; " +
                    (Cpus.Pinned ? $"servers on CPU {Cpus.Server}, load on CPU {Cpus.Load}" : "not pinned to CPUs"));
                await ServerLoadAsync(settings, servers, work, report);
                await ClientsAsync(settings, servers, report);
            }

            await PluginAsync(settings, work, report);
            Micro(settings, report);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }

        await File.WriteAllTextAsync(settings.Out, report.ToMarkdown());
        Console.WriteLine($"wrote {settings.Out}");
        return 0;
    }

    private static async Task ServerLoadAsync(Settings settings, ServerProcess servers, string work, Report report)
    {
        byte[] proto = new GreetRequest { Name = "bench" }.ToByteArray();
        string grpcBody = Path.Combine(work, "grpc.bin");
        string protoBody = Path.Combine(work, "proto.bin");
        string jsonBody = Path.Combine(work, "json.bin");
        byte[] frame = new byte[5 + proto.Length];
        Envelope.WritePrefix(frame, EnvelopeFlags.None, proto.Length);
        proto.CopyTo(frame, 5);
        await File.WriteAllBytesAsync(grpcBody, frame);
        await File.WriteAllBytesAsync(protoBody, proto);
        await File.WriteAllTextAsync(jsonBody, "{\"name\":\"bench\"}");

        string path = Servers.GreetPath;
        (string Name, string Peer, Uri Ours, Uri Theirs, string Body, string ContentType, bool Http1)[] cases =
        [
            ("gRPC unary, HTTP/2 (h2c)", "Grpc.AspNetCore", new Uri(servers.ConnectHttp2, path), new Uri(servers.GrpcDotnetHttp2, path), grpcBody, "application/grpc", false),
            ("Connect unary proto, HTTP/1.1", "bare Kestrel", new Uri(servers.ConnectHttp1, path), new Uri(servers.BareHttp1, path), protoBody, "application/proto", true),
            ("Connect unary JSON, HTTP/1.1", "bare Kestrel", new Uri(servers.ConnectHttp1, path), new Uri(servers.BareHttp1, path), jsonBody, "application/json", true),
        ];
        // Tiered JIT and dynamic PGO need seconds of load to settle (the peers ship ReadyToRun code,
        // this runtime does not): every server is driven once, unmeasured, before the rounds, on
        // every core. Pinned to one core from the start, the JIT's tier-up competed with the
        // server itself, and 10 s of load still left a fresh server at 0.7× its speed.
        foreach (var c in cases)
        {
            _ = await H2LoadAsync(settings, servers, c.Ours, c.Body, c.ContentType, c.Http1, work, settings.WarmUpSeconds);
            _ = await H2LoadAsync(settings, servers, c.Theirs, c.Body, c.ContentType, c.Http1, work, settings.WarmUpSeconds);
        }

        await servers.PinAsync();

        foreach (var c in cases)
        {
            var ours = new List<LoadResult>();
            var theirs = new List<LoadResult>();
            for (int round = 0; round < settings.Rounds; round++)
            {
                ours.Add(await H2LoadAsync(settings, servers, c.Ours, c.Body, c.ContentType, c.Http1, work));
                theirs.Add(await H2LoadAsync(settings, servers, c.Theirs, c.Body, c.ContentType, c.Http1, work));
                Progress(c.Name, round, ours[^1].RequestsPerSecond, theirs[^1].RequestsPerSecond, "req/s");
            }

            report.Server.Add((c.Name, c.Peer, Median(ours), Median(theirs), Ratios.Of(ours.Select(r => r.RequestsPerSecond), theirs.Select(r => r.RequestsPerSecond))));
        }
    }

    internal sealed record LoadResult(double RequestsPerSecond, double P50Ms, double P99Ms, double AllocatedPerCall);

    private static LoadResult Median(List<LoadResult> results) => results.OrderBy(r => r.RequestsPerSecond).ElementAt(results.Count / 2);

    /// <summary>One h2load run; a warm-up (<paramref name="seconds"/> given) runs on any core, a measured run on the load CPU.</summary>
    private static async Task<LoadResult> H2LoadAsync(Settings settings, ServerProcess servers, Uri url, string body, string contentType, bool http1, string work, int? seconds = null)
    {
        string log = Path.Combine(work, "h2load.log");
        File.Delete(log);
        var arguments = new List<string>
        {
            "-t", "1", "-c", http1 ? "32" : "4", "-m", http1 ? "1" : "32",
            "-D", (seconds ?? settings.LoadSeconds).ToString(CultureInfo.InvariantCulture), "--warm-up-time", "1",
            "-d", body, "-H", "content-type: " + contentType, "--log-file", log,
        };
        if (http1)
        {
            arguments.Add("--h1");
        }
        else
        {
            arguments.AddRange(["-H", "te: trailers"]);
        }

        arguments.Add(url.ToString());
        long before = await servers.AllocatedBytesAsync();
        string output = await RunProcessAsync(seconds is null ? Cpus.Load : null, "h2load", arguments, null);
        long allocated = await servers.AllocatedBytesAsync() - before;

        double rps = double.Parse(RequestsPerSecond().Match(output).Groups[1].Value, CultureInfo.InvariantCulture);
        long succeeded = long.Parse(Succeeded().Match(output).Groups[1].Value, CultureInfo.InvariantCulture);
        if (succeeded == 0 || !output.Contains(" 0 failed", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"h2load against {url} had failures:\n{output}");
        }

        double[] latencies = [.. File.ReadLines(log).Select(line => double.Parse(line.Split('\t')[2], CultureInfo.InvariantCulture) / 1000).Order()];
        return new LoadResult(rps, Percentile(latencies, 0.50), Percentile(latencies, 0.99), (double)allocated / succeeded);
    }

    private static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? double.NaN : sorted[(int)Math.Min(sorted.Length - 1, Math.Floor(p * sorted.Length))];

    [GeneratedRegex(@"finished in [^,]+, ([0-9.]+) req/s")]
    private static partial Regex RequestsPerSecond();

    [GeneratedRegex(@"([0-9]+) succeeded")]
    private static partial Regex Succeeded();

    private static async Task ClientsAsync(Settings settings, ServerProcess servers, Report report)
    {
        foreach (int concurrency in new[] { 1, 64 })
        {
            var ours = new List<ClientResult>();
            var theirs = new List<ClientResult>();
            string name = $"gRPC unary, concurrency {concurrency}";
            for (int round = 0; round < settings.Rounds; round++)
            {
                ours.Add(await ClientAsync(settings, "ours", "unary", servers.GrpcDotnetHttp2, concurrency));
                theirs.Add(await ClientAsync(settings, "grpc", "unary", servers.GrpcDotnetHttp2, concurrency));
                Progress(name, round, ours[^1].CallsPerSecond, theirs[^1].CallsPerSecond, "calls/s");
            }

            report.Client.Add((name, Median(ours), Median(theirs), Ratios.Of(ours.Select(r => r.CallsPerSecond), theirs.Select(r => r.CallsPerSecond))));
        }

        var oursStream = new List<ClientResult>();
        var theirsStream = new List<ClientResult>();
        for (int round = 0; round < settings.Rounds; round++)
        {
            oursStream.Add(await ClientAsync(settings, "ours", "stream", servers.ConnectHttp2, 1));
            theirsStream.Add(await ClientAsync(settings, "grpc", "stream", servers.GrpcDotnetHttp2, 1));
            Progress("server streaming", round, oursStream[^1].MessagesPerSecond, theirsStream[^1].MessagesPerSecond, "messages/s");
        }

        report.Streaming = (Median(oursStream), Median(theirsStream), Ratios.Of(oursStream.Select(r => r.MessagesPerSecond), theirsStream.Select(r => r.MessagesPerSecond)));
    }

    internal sealed record ClientResult(long Calls, long Messages, double Seconds, long Allocated)
    {
        public double CallsPerSecond => Calls / Seconds;

        public double MessagesPerSecond => Messages / Seconds;

        public double AllocatedPerCall => (double)Allocated / Calls;
    }

    /// <summary>One round of one case on the console, so a run's spread can be seen as it goes.</summary>
    private static void Progress(string name, int round, double ours, double theirs, string unit) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name}, round {round + 1}: ours {ours:N0} {unit}, theirs {theirs:N0}, ratio {ours / theirs:F2}"));

    private static ClientResult Median(List<ClientResult> results) => results.OrderBy(r => r.CallsPerSecond).ElementAt(results.Count / 2);

    private static async Task<ClientResult> ClientAsync(Settings settings, string contender, string kind, Uri url, int concurrency)
    {
        string output = await RunProcessAsync(
            Cpus.Load,
            Environment.ProcessPath!,
            ["client", contender, kind, url.ToString(), concurrency.ToString(CultureInfo.InvariantCulture), settings.ClientSeconds.ToString(CultureInfo.InvariantCulture)],
            null);
        string[] fields = output.Trim().Split('\n')[^1].Split(' ');
        return new ClientResult(long.Parse(fields[0], CultureInfo.InvariantCulture), long.Parse(fields[1], CultureInfo.InvariantCulture),
            double.Parse(fields[2], CultureInfo.InvariantCulture), long.Parse(fields[3], CultureInfo.InvariantCulture));
    }

    private static async Task PluginAsync(Settings settings, string work, Report report)
    {
        foreach ((string name, int files, int methods) in new[] { ("100 files, 3,000 methods", 100, 30), ("1 file, 4 methods", 1, 4) })
        {
            string input = Path.Combine(work, $"plugin-{files}.bin");
            await File.WriteAllBytesAsync(input, PluginRequest.Create(files, methods).ToByteArray());
            var ours = new List<double>();
            var theirs = new List<double>();
            for (int run = 0; run < settings.PluginRuns; run++)
            {
                ours.Add(await TimeProcessAsync(settings.Plugin, input));
                theirs.Add(await TimeProcessAsync(settings.GrpcPlugin, input));
            }

            report.Plugin.Add((name, ours.Order().ElementAt(ours.Count / 2), theirs.Order().ElementAt(theirs.Count / 2)));
        }
    }

    private static async Task<double> TimeProcessAsync(string executable, string input)
    {
        var clock = Stopwatch.StartNew();
        await RunProcessAsync(null, executable, [], input);
        return clock.Elapsed.TotalMilliseconds;
    }

    private static void Micro(Settings settings, Report report)
    {
        // Quick: one warm-up and three 100 ms iterations, enough to rank; full: BenchmarkDotNet's ShortRun.
        Job job = (settings.Quick ? Job.ShortRun.WithWarmupCount(1).WithIterationTime(TimeInterval.FromMilliseconds(100)) : Job.ShortRun)
            .WithToolchain(InProcessEmitToolchain.Instance);
        IConfig config = DefaultConfig.Instance.AddJob(job).WithOptions(ConfigOptions.DisableLogFile | ConfigOptions.JoinSummary);
        Summary summary = BenchmarkRunner.Run([typeof(HeaderBenchmarks), typeof(EnvelopeBenchmarks), typeof(CodecBenchmarks)], config).Single();
        var log = new AccumulationLogger();
        MarkdownExporter.GitHub.ExportToLog(summary, log);
        report.Micro = log.GetLog();
    }

    /// <summary>Runs a process to its end, on <paramref name="cpu"/> when given; its standard output.</summary>
    internal static async Task<string> RunProcessAsync(int? cpu, string executable, IEnumerable<string> arguments, string? stdinFile)
    {
        if (cpu is { } on)
        {
            (executable, List<string> pinned) = Cpus.On(on, executable, arguments);
            arguments = pinned;
        }

        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdinFile is not null,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(start)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        if (stdinFile is not null)
        {
            await using (FileStream input = File.OpenRead(stdinFile))
            {
                await input.CopyToAsync(process.StandardInput.BaseStream);
            }

            process.StandardInput.Close();
        }

        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5));
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{executable} exited with {process.ExitCode}:\n{await error}");
        }

        return await output;
    }
}

/// <summary>
/// The ratios of one case, ours ÷ theirs, taken round by round: the two contenders of a round
/// run one after the other, so the drift of a shared machine hits both alike. The median is
/// the reported ratio; the range shows how far the rounds spread.
/// </summary>
internal sealed record Ratios(double Median, double Min, double Max)
{
    public static Ratios Of(IEnumerable<double> ours, IEnumerable<double> theirs)
    {
        double[] each = [.. ours.Zip(theirs, (o, t) => o / t).Order()];
        return new Ratios(each[each.Length / 2], each[0], each[^1]);
    }
}
