using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace ConnectRpc.Benchmarks;

/// <summary>The results of one run, written as BENCHMARKS.md: tables, ratios, targets, the machine and the commands.</summary>
internal sealed class Report(bool quick, int rounds)
{
    public List<(string Name, string Peer, Runner.LoadResult Ours, Runner.LoadResult Theirs, Ratios Ratio)> Server { get; } = [];

    public List<(string Name, Runner.ClientResult Ours, Runner.ClientResult Theirs, Ratios Ratio)> Client { get; } = [];

    public (Runner.ClientResult Ours, Runner.ClientResult Theirs, Ratios Ratio)? Streaming { get; set; }

    public List<(string Name, double OursMs, double TheirsMs)> Plugin { get; } = [];

    public string Micro { get; set; } = "";

    public string ToMarkdown()
    {
        var md = new StringBuilder();
        void Line(FormattableString text) => md.AppendLine(text.ToString(CultureInfo.InvariantCulture));

        Line($"# Benchmarks");
        Line($"");
        Line($"Written by `make {(quick ? "bench-quick" : "bench")}` on {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC. Every contender runs in the same");
        Line($"run on the same machine, alternating round by round; a ratio is ours ÷ theirs (above 1 is better for");
        Line($"us, except for time and allocations, where below 1 is better). Absolute numbers drift on a shared machine;");
        Line($"the ratios are what to compare. {(quick ? "This is a quick run (short, one round): indicative only." : $"Full run: {rounds} rounds; a ratio is the median of the rounds' ratios, with their range beside it, and the absolute numbers are the median rounds.")}");
        Line($"");
        Line($"**Machine:** {Environment.ProcessorCount} cores, {CpuModel()}, {RuntimeInformation.OSDescription}, .NET {Environment.Version}, Server GC.");
        Line($"");
        Line($"{(Cpus.Pinned ? $"The servers run in a process of their own, pinned to CPU {Cpus.Server} after their warm-up; measured h2load runs and the client processes run on CPU {Cpus.Load} (`taskset`), so load and server never compete for a core and a server's result is its own cost per request." : "The servers, h2load and the clients are not pinned to CPUs (fewer than two cores, or no `taskset`): they share the cores as the scheduler decides.")}");
        Line($"");
        Line($"## Servers (h2load on loopback, same handler logic)");
        Line($"");
        Line($"h2load 1 thread; gRPC: 4 connections × 32 streams; HTTP/1.1: 32 connections; {(quick ? 3 : 10)} s after 1 s of warm-up, each server first driven {(quick ? 3 : 10)} s unmeasured on both cores.");
        Line($"Allocations are the server process's managed bytes per call, Kestrel's own included.");
        Line($"");
        Line($"| case | peer | ours req/s | peer req/s | **ratio** | rounds | ours p50 / p99 ms | peer p50 / p99 ms | ours B/call | peer B/call |");
        Line($"|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach ((string name, string peer, Runner.LoadResult ours, Runner.LoadResult theirs, Ratios ratio) in Server)
        {
            Line($"| {name} | {peer} | {ours.RequestsPerSecond:N0} | {theirs.RequestsPerSecond:N0} | **{ratio.Median:F2}×** | {Range(ratio)} | {ours.P50Ms:F2} / {ours.P99Ms:F2} | {theirs.P50Ms:F2} / {theirs.P99Ms:F2} | {Bytes(ours.AllocatedPerCall)} | {Bytes(theirs.AllocatedPerCall)} |");
        }

        Line($"");
        Line($"## Clients (against the Grpc.AspNetCore server, gRPC over h2c)");
        Line($"");
        Line($"Each client runs in a process of its own for {(quick ? 2 : 8)} s after {(quick ? 1 : 4)} s of warm-up under the same load; allocations are that process's managed bytes per call.");
        Line($"");
        Line($"| case | ours calls/s | Grpc.Net.Client calls/s | **ratio** | rounds | ours B/call | Grpc.Net.Client B/call | **alloc ratio** |");
        Line($"|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach ((string name, Runner.ClientResult ours, Runner.ClientResult theirs, Ratios ratio) in Client)
        {
            Line($"| {name} | {ours.CallsPerSecond:N0} | {theirs.CallsPerSecond:N0} | **{ratio.Median:F2}×** | {Range(ratio)} | {ours.AllocatedPerCall:N0} | {theirs.AllocatedPerCall:N0} | **{ours.AllocatedPerCall / theirs.AllocatedPerCall:F2}×** |");
        }

        if (Streaming is var (so, st, sr))
        {
            Line($"");
            Line($"## Server streaming (1,000 messages of 1 KiB per call, gRPC over h2c, one call at a time)");
            Line($"");
            Line($"Uncompressed on both sides, as grpc-dotnet's server answers by default (ours compresses what a client accepts, so our client clears `Compressors`).");
            Line($"");
            Line($"| contender | messages/s | **ratio** | rounds |");
            Line($"|---|---:|---:|---:|");
            Line($"| ours (client and server) | {so.MessagesPerSecond:N0} | **{sr.Median:F2}×** | {Range(sr)} |");
            Line($"| grpc-dotnet (client and server) | {st.MessagesPerSecond:N0} | 1.00× | |");
        }

        Line($"");
        Line($"## The plugin (wall time per run, median)");
        Line($"");
        Line($"The same synthetic `CodeGeneratorRequest` on stdin for both; grpc's `grpc_csharp_plugin` is the native C++ plugin from Grpc.Tools.");
        Line($"");
        Line($"| request | protoc-gen-connect-csharp ms | grpc_csharp_plugin ms | **ratio (time)** |");
        Line($"|---|---:|---:|---:|");
        foreach ((string name, double ours, double theirs) in Plugin)
        {
            Line($"| {name} | {ours:F1} | {theirs:F1} | **{ours / theirs:F2}×** |");
        }

        Line($"");
        Line($"## Micro-benchmarks (BenchmarkDotNet, in process)");
        Line($"");
        md.AppendLine(Micro.Trim());
        // The hand-written reading of the numbers lives beside the code, so a new run keeps it.
        string analysis = Path.Combine(AppContext.BaseDirectory, "analysis.md");
        if (File.Exists(analysis))
        {
            Line($"");
            md.AppendLine(File.ReadAllText(analysis).Trim());
        }

        Line($"");
        Line($"## Reproduce");
        Line($"");
        Line($"```sh");
        Line($"make bench-quick   # under two minutes: one short round");
        Line($"make bench         # the full run: five rounds, longer windows");
        Line($"```");
        Line($"");
        Line($"Both install h2load (Debian's nghttp2-client) if it is missing, publish the plugin, build");
        Line($"bench/ConnectRpc.Benchmarks in Release and run `ConnectRpc.Benchmarks run`, which starts the servers on");
        Line($"127.0.0.1, drives them with h2load and with child client processes, times both plugins and writes this file.");
        return md.ToString();
    }

    // The process-wide allocation counter can step back when thread-pool threads retire; such a window is not reported.
    /// <summary>The lowest and highest of the rounds' ratios; one round has no range.</summary>
    private string Range(Ratios ratio) =>
        rounds > 1 ? string.Create(CultureInfo.InvariantCulture, $"{ratio.Min:F2}–{ratio.Max:F2}") : "–";

    private static string Bytes(double perCall) => perCall >= 0 ? perCall.ToString("N0", CultureInfo.InvariantCulture) : "n/a";

    private static string CpuModel()
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        }
        catch (IOException)
        {
            return "unknown CPU";
        }
    }
}
