namespace ConnectRpc.Tests;

/// <summary>Every await in these tests is bounded, so a hang fails fast instead of stalling the run.</summary>
internal static class Bounded
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>The test's own token: cancelled when the run is aborted.</summary>
    public static CancellationToken Token => TestContext.Current.CancellationToken;

    public static Task Within(this Task task) => task.WaitAsync(Timeout, Token);

    public static Task<T> Within<T>(this Task<T> task) => task.WaitAsync(Timeout, Token);

    public static Task<T> Within<T>(this ValueTask<T> task) => task.AsTask().WaitAsync(Timeout, Token);

    public static Task Within(this ValueTask task) => task.AsTask().WaitAsync(Timeout, Token);

    /// <summary>A token that fires after <see cref="Timeout"/> or when the run is aborted; dispose it.</summary>
    public static CancellationTokenSource TimeoutSource()
    {
        var source = CancellationTokenSource.CreateLinkedTokenSource(Token);
        source.CancelAfter(Timeout);
        return source;
    }

    /// <summary>Reads a whole stream of responses, bounded.</summary>
    public static async Task<List<T>> ToListWithin<T>(this IAsyncEnumerable<T> source)
    {
        var list = new List<T>();
        using CancellationTokenSource bounded = TimeoutSource();
        await foreach (T item in source.WithCancellation(bounded.Token))
        {
            list.Add(item);
        }

        return list;
    }
}
