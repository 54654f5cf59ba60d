using System.Diagnostics;
using System.Globalization;

namespace ConnectRpc.Benchmarks;

/// <summary>
/// Where each side of a measurement runs. On a machine with two cores or more and
/// <c>taskset</c>, the servers get CPU 0 and the load (h2load, the client processes) CPU 1, so
/// the two never compete for a core: a server's result is then its own cost per request, not
/// how the scheduler happened to share two cores with the load generator (unpinned, rounds of
/// the same case differed by up to 1.8× on this machine).
/// </summary>
internal static class Cpus
{
    public const string TaskSet = "/usr/bin/taskset";

    public static bool Pinned { get; } = Environment.ProcessorCount >= 2 && File.Exists(TaskSet);

    public const int Server = 0;

    public const int Load = 1;

    /// <summary>The command that runs <paramref name="executable"/> on <paramref name="cpu"/> (as it is when pinning is not possible).</summary>
    public static (string Executable, List<string> Arguments) On(int cpu, string executable, IEnumerable<string> arguments) =>
        Pinned
            ? (TaskSet, ["-c", cpu.ToString(CultureInfo.InvariantCulture), executable, .. arguments])
            : (executable, [.. arguments]);
}

/// <summary>
/// The three servers (<see cref="Servers"/>) in a child process running <c>serve</c>. It starts
/// on every core, so the JIT's tier-up during warm-up is not starved, and is then moved, every
/// thread of it, to the server CPU (<see cref="PinAsync"/>). It answers <c>allocated</c> on
/// stdin with its managed bytes allocated so far, and ends when stdin closes.
/// </summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;

    private ServerProcess(Process process, string[] urls)
    {
        _process = process;
        ConnectHttp1 = new Uri(urls[0]);
        ConnectHttp2 = new Uri(urls[1]);
        GrpcDotnetHttp2 = new Uri(urls[2]);
        BareHttp1 = new Uri(urls[3]);
    }

    public Uri ConnectHttp1 { get; }

    public Uri ConnectHttp2 { get; }

    public Uri GrpcDotnetHttp2 { get; }

    public Uri BareHttp1 { get; }

    public static async Task<ServerProcess> StartAsync()
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("serve");
        Process process = Process.Start(start)!;
        // "connect URL URL grpc-dotnet URL bare URL", as `serve` prints it.
        string line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60))
            ?? throw new InvalidOperationException("the server process ended before it printed its addresses");
        string[] words = line.Split(' ');
        return new ServerProcess(process, [words[1], words[2], words[4], words[6]]);
    }

    /// <summary>
    /// Moves every thread of the server process to the server CPU; threads it starts later
    /// inherit that. Nothing to do when pinning is not possible.
    /// </summary>
    public async Task PinAsync()
    {
        if (!Cpus.Pinned)
        {
            return;
        }

        // Exits non-zero, and so throws, if the process could not be pinned.
        await Runner.RunProcessAsync(
            null, Cpus.TaskSet, ["-a", "-p", "-c", Cpus.Server.ToString(CultureInfo.InvariantCulture), _process.Id.ToString(CultureInfo.InvariantCulture)], null);
    }

    /// <summary>The managed bytes the server process has allocated so far.</summary>
    public async Task<long> AllocatedBytesAsync()
    {
        await _process.StandardInput.WriteLineAsync("allocated");
        await _process.StandardInput.FlushAsync();
        string line = await _process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30))
            ?? throw new InvalidOperationException("the server process ended");
        return long.Parse(line, CultureInfo.InvariantCulture);
    }

    public async ValueTask DisposeAsync()
    {
        _process.StandardInput.Close();
        try
        {
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (TimeoutException)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.Dispose();
    }
}
