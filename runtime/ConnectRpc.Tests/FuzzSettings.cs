using System.Globalization;
using CsCheck;

namespace ConnectRpc.Tests;

/// <summary>
/// How long the property-based fuzz tests (<c>*FuzzTests</c>) run. Without
/// <c>CONNECT_FUZZ_SECONDS</c> each property runs a short fixed number of samples, so the
/// fuzz tests stay a small part of <c>make test</c>; with it (<c>make fuzz</c>) each property
/// runs for that many seconds. CsCheck reports the seed of a failure; run again with
/// <c>CsCheck_Seed=&lt;seed&gt;</c> to reproduce it.
/// </summary>
internal static class FuzzSettings
{
    public const string SecondsVariable = "CONNECT_FUZZ_SECONDS";

    /// <summary>Samples per property in the default (quick) mode.</summary>
    public const int DefaultIterations = 1000;

    /// <summary>The seconds per property from <c>CONNECT_FUZZ_SECONDS</c>, or null for the quick mode.</summary>
    public static int? Seconds { get; } =
        int.TryParse(Environment.GetEnvironmentVariable(SecondsVariable), NumberStyles.None, CultureInfo.InvariantCulture, out int seconds) && seconds > 0
            ? seconds
            : null;

    /// <summary>Checks <paramref name="assert"/> on samples of <paramref name="gen"/> for the configured time or count.</summary>
    /// <param name="iterations">Samples in the quick mode, for properties much cheaper or dearer than the default.</param>
    public static void Check<T>(this Gen<T> gen, Action<T> assert, int iterations = DefaultIterations, Func<T, string>? print = null) =>
        gen.Sample(assert, iter: Seconds is null ? iterations : -1, time: Seconds ?? -1, print: print);

    /// <summary>
    /// The asynchronous form of <see cref="Check{T}"/>; each sample bounds its own awaits, and the
    /// whole run is bounded too (generously: CsCheck shrinks a failure after the run).
    /// </summary>
    public static Task CheckAsync<T>(this Gen<T> gen, Func<T, Task> assert, int iterations = DefaultIterations, Func<T, string>? print = null) =>
        gen.SampleAsync(assert, iter: Seconds is null ? iterations : -1, time: Seconds ?? -1, print: print)
            .WaitAsync(TimeSpan.FromSeconds(60 + (2 * (Seconds ?? 30))), TestContext.Current.CancellationToken);
}
