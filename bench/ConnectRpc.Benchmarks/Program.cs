using System.Globalization;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using ConnectRpc.Benchmarks;

// make bench / make bench-quick run `run`; `client` is the child process that measures one client.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
return args switch
{
    ["run", .. var rest] => await Runner.RunAsync(rest),
    ["serve"] => await ServeAsync(),
    ["micro", .. var rest] => Micro(rest),
    ["plugin-request", var files, var methods, var output] => await WritePluginRequestAsync(int.Parse(files, CultureInfo.InvariantCulture), int.Parse(methods, CultureInfo.InvariantCulture), output),
    ["client", var contender, var kind, var url, var concurrency, var seconds] =>
        await ClientRun.RunAsync(contender, kind, new Uri(url), int.Parse(concurrency, CultureInfo.InvariantCulture), double.Parse(seconds, CultureInfo.InvariantCulture)),
    _ => Usage(),
};

// The servers alone, for `run` (which starts them as a child process on a CPU of their own) and
// for profiling by hand: prints the addresses, answers "allocated" with the managed bytes
// allocated so far, and runs until stdin closes.
static async Task<int> ServeAsync()
{
    await using Servers servers = await Servers.StartAsync();
    Console.WriteLine($"connect {servers.ConnectHttp1} {servers.ConnectHttp2} grpc-dotnet {servers.GrpcDotnetHttp2} bare {servers.BareHttp1}");
    while (await Console.In.ReadLineAsync() is { } command)
    {
        if (command == "allocated")
        {
            Console.WriteLine(GC.GetTotalAllocatedBytes(precise: true).ToString(CultureInfo.InvariantCulture));
        }
    }

    return 0;
}

// The micro-benchmarks alone, with BenchmarkDotNet's own arguments (--filter *Header*, --job short).
static int Micro(string[] arguments)
{
    BenchmarkSwitcher
        .FromTypes([typeof(HeaderBenchmarks), typeof(EnvelopeBenchmarks), typeof(CodecBenchmarks)])
        .Run(arguments, DefaultConfig.Instance.AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance)));
    return 0;
}

// The plugin benchmark's synthetic request, for profiling a plugin by hand.
static async Task<int> WritePluginRequestAsync(int files, int methodsPerFile, string output)
{
    await File.WriteAllBytesAsync(output, Google.Protobuf.MessageExtensions.ToByteArray(PluginRequest.Create(files, methodsPerFile)));
    return 0;
}

static int Usage()
{
    Console.Error.WriteLine("usage: ConnectRpc.Benchmarks run [--quick] --out BENCHMARKS.md --plugin PATH | serve | micro [BenchmarkDotNet arguments] | plugin-request FILES METHODS-PER-FILE OUT | client ours|grpc unary|stream URL CONCURRENCY SECONDS");
    return 2;
}
