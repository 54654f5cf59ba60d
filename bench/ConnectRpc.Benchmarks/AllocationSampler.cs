using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace ConnectRpc.Benchmarks;

/// <summary>
/// Samples what a process allocates, by type, from the runtime's own allocation ticks (one
/// event about every 100 KB): which types dominate the bytes per call. Set
/// <c>CONNECT_BENCH_ALLOCATIONS=1</c> for a client run to print the top types.
/// </summary>
internal sealed class AllocationSampler : EventListener
{
    private const EventKeywords GcKeyword = (EventKeywords)0x1;

    private readonly ConcurrentDictionary<string, long> _bytes = new();

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(source, EventLevel.Verbose, GcKeyword);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (e.EventName?.StartsWith("GCAllocationTick", StringComparison.Ordinal) != true || e.Payload is null)
        {
            return;
        }

        int typeIndex = e.PayloadNames!.IndexOf("TypeName");
        int amountIndex = e.PayloadNames.IndexOf("AllocationAmount64");
        if (typeIndex >= 0 && amountIndex >= 0)
        {
            _bytes.AddOrUpdate((string)e.Payload[typeIndex]!, Convert.ToInt64(e.Payload[amountIndex], System.Globalization.CultureInfo.InvariantCulture), (_, old) => old + Convert.ToInt64(e.Payload[amountIndex], System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    public void Print(long calls, TextWriter output)
    {
        long total = _bytes.Values.Sum();
        foreach ((string type, long bytes) in _bytes.OrderByDescending(p => p.Value).Take(30))
        {
            output.WriteLine($"{bytes * 100.0 / total,6:F1}%  ~{(double)bytes / calls,8:F0} B/call  {type}");
        }
    }
}
