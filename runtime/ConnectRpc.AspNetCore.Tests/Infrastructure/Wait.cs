using System.Runtime.CompilerServices;
using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>Waiting for what a server does in its own time (a handler seeing its cancellation, a log entry), bounded.</summary>
internal static class Wait
{
    /// <summary>Polls <paramref name="condition"/> until it holds; fails after <see cref="Bounded.Timeout"/>, saying what it waited for.</summary>
    public static async Task UntilAsync(Func<bool> condition, Func<string>? describe = null, [CallerArgumentExpression(nameof(condition))] string what = "")
    {
        using CancellationTokenSource bounded = Bounded.TimeoutSource();
        while (!condition())
        {
            if (bounded.IsCancellationRequested)
            {
                Assert.Fail("Timed out waiting for " + what + (describe is null ? "" : ": " + describe()));
            }

            await Task.Delay(20, Bounded.Token);
        }
    }
}
