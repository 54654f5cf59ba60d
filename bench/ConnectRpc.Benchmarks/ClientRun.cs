using System.Diagnostics;
using System.Globalization;
using Connectrpc.Greet.V1;
using Grpc.Net.Client;

namespace ConnectRpc.Benchmarks;

/// <summary>
/// One client measurement, in a process of its own so its allocations are the client's alone:
/// <c>client ours|grpc unary|stream URL CONCURRENCY SECONDS</c>. Prints
/// <c>calls messages seconds allocated-bytes</c> on one line.
/// </summary>
internal static class ClientRun
{
    public static async Task<int> RunAsync(string contender, string kind, Uri url, int concurrency, double seconds)
    {
        Func<Task<int>> call = Create(contender, kind, url);

        // Warm up (JIT tiers, connections) under the same load for half the measured time.
        _ = await LoadAsync(call, concurrency, seconds / 2);
        using AllocationSampler? sampler = Environment.GetEnvironmentVariable("CONNECT_BENCH_ALLOCATIONS") == "1" ? new AllocationSampler() : null;
        long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var clock = Stopwatch.StartNew();
        (long calls, long messages) = await LoadAsync(call, concurrency, seconds);
        double elapsed = clock.Elapsed.TotalSeconds;
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
        sampler?.Print(calls, Console.Error);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{calls} {messages} {elapsed:F3} {allocated}"));
        return 0;
    }

    /// <summary>Calls in <paramref name="concurrency"/> loops for <paramref name="seconds"/>; the calls and messages made.</summary>
    private static async Task<(long Calls, long Messages)> LoadAsync(Func<Task<int>> call, int concurrency, double seconds)
    {
        long calls = 0;
        long messages = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        Task[] workers = new Task[concurrency];
        for (int w = 0; w < concurrency; w++)
        {
            workers[w] = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    int received = await call();
                    Interlocked.Increment(ref calls);
                    Interlocked.Add(ref messages, received);
                }
            });
        }

        await Task.WhenAll(workers);
        return (calls, messages);
    }

    private static Func<Task<int>> Create(string contender, string kind, Uri url)
    {
        var request = new GreetRequest { Name = "bench" };
        if (contender == "ours")
        {
            // No response compression, as between grpc-dotnet's client and server (its server
            // compresses only when configured to; ours follows the client's accept list).
            var options = new ConnectClientOptions { Protocol = Protocol.Grpc };
            options.Compressors.Clear();
            var client = new GreetServiceClient(url.ToString(), options);
            return kind == "unary"
                ? async () => { _ = await client.GreetAsync(request); return 1; }
                : async () =>
                {
                    int count = 0;
                    await foreach (GreetResponse _ in client.GreetManyAsync(request))
                    {
                        count++;
                    }

                    return count;
                };
        }

        var channel = GrpcChannel.ForAddress(url);
        var grpc = new GreetService.GreetServiceClient(channel);
        return kind == "unary"
            ? async () => { _ = await grpc.GreetAsync(request); return 1; }
            : async () =>
            {
                using var call = grpc.GreetMany(request);
                int count = 0;
                while (await call.ResponseStream.MoveNext(CancellationToken.None))
                {
                    count++;
                }

                return count;
            };
    }
}
