using System.Globalization;
using ConnectRpc.Benchmarks;

// make bench / make bench-quick run `run`; `client` is the child process that measures one client.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
return args switch
{
    ["run", .. var rest] => await Runner.RunAsync(rest),
    ["client", var contender, var kind, var url, var concurrency, var seconds] =>
        await ClientRun.RunAsync(contender, kind, new Uri(url), int.Parse(concurrency, CultureInfo.InvariantCulture), double.Parse(seconds, CultureInfo.InvariantCulture)),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: ConnectRpc.Benchmarks run [--quick] --out BENCHMARKS.md --plugin PATH");
    return 2;
}
