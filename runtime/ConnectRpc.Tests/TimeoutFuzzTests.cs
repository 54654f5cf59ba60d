using ConnectRpc.Internal;
using CsCheck;

namespace ConnectRpc.Tests;

/// <summary>
/// <c>Connect-Timeout-Ms</c> and <c>grpc-timeout</c> (docs/wire/timeouts.md): the parsers agree with
/// a reference on any string, and what the formatters write parses back to the time given,
/// rounded up by at most one unit.
/// </summary>
public sealed class TimeoutFuzzTests
{
    private const string GrpcUnits = "HMSmun";

    /// <summary>Strings made mostly of digits and units, with signs, spaces, non-ASCII digits and the like.</summary>
    private static readonly Gen<string> s_timeoutText = Gen.Frequency(
            (10, Gen.Char['0', '9']),
            (3, Gen.Char[GrpcUnits]),
            (1, Gen.Char[" +-.,eExh\t\0\u0663\uFF11\u00B2"]))
        .Array[0, 12]
        .Select(chars => new string(chars));

    /// <summary>Durations of every size, including negative ones and those next to the TimeSpan limits.</summary>
    private static readonly Gen<TimeSpan> s_duration = Gen.Frequency(
            (3, Gen.Long[-10, 2_000_000]),
            (3, Gen.Long[0, 100_000_000_000_000]),
            (2, Gen.Long[0, long.MaxValue]),
            (1, Gen.Long[long.MaxValue - 100_000_000_000_000, long.MaxValue]),
            (1, Gen.Long[long.MinValue, 0]))
        .Select(TimeSpan.FromTicks);

    [Fact]
    public void ConnectTryParseTimeout_AnyString_AgreesWithTheReference()
    {
        s_timeoutText.Check(text =>
        {
            bool parsed = ConnectProtocol.TryParseTimeout(text, out TimeSpan timeout);

            Assert.Equal(ConnectReference(text), parsed ? timeout : null);
        });
    }

    [Fact]
    public void GrpcTryParseTimeout_AnyString_AgreesWithTheReference()
    {
        s_timeoutText.Check(text =>
        {
            bool parsed = GrpcProtocol.TryParseTimeout(text, out TimeSpan timeout);

            Assert.Equal(GrpcReference(text), parsed ? timeout : null);
        });
    }

    [Fact]
    public void ConnectFormatTimeout_AnyDuration_ParsesBackRoundedUpToTheMillisecond()
    {
        s_duration.Check(duration =>
        {
            string? text = ConnectProtocol.FormatTimeout(duration);

            // Whole milliseconds, rounded up, at least 1; no header past 10 digits.
            long ms = Math.Max(1, (duration.Ticks / TimeSpan.TicksPerMillisecond) + (duration.Ticks % TimeSpan.TicksPerMillisecond > 0 ? 1 : 0));
            if (ms >= 10_000_000_000)
            {
                Assert.Null(text);
                return;
            }

            Assert.NotNull(text);
            Assert.Equal(TimeSpan.FromTicks(ms * TimeSpan.TicksPerMillisecond), ConnectReference(text));
        });
    }

    [Fact]
    public void GrpcFormatTimeout_AnyDuration_ParsesBackInTheFinestUnitRoundedUp()
    {
        s_duration.Check(duration =>
        {
            string text = GrpcProtocol.FormatTimeout(duration);

            TimeSpan parsed = GrpcReference(text) ?? throw new Xunit.Sdk.XunitException($"'{text}' does not parse");
            if (duration <= TimeSpan.Zero)
            {
                Assert.Equal("0n", text);
                return;
            }

            long unit = UnitTicks(text[^1]);
            long max = 99_999_999 * TimeSpan.TicksPerHour;
            if (duration.Ticks > max)
            {
                Assert.Equal("99999999H", text); // the longest timeout gRPC can say
                return;
            }

            Assert.InRange(parsed.Ticks - duration.Ticks, 0, Math.Max(0, unit - 1));

            // The finest unit: the next finer one would need more than 8 digits.
            int index = GrpcUnits.IndexOf(text[^1], StringComparison.Ordinal);
            if (index < GrpcUnits.Length - 1 && text[^1] != 'u')
            {
                long finer = UnitTicks(GrpcUnits[index + 1]);
                Assert.True(Math.Ceiling((decimal)duration.Ticks / finer) > 99_999_999, $"{duration.Ticks} ticks fit in unit '{GrpcUnits[index + 1]}', not '{text}'");
            }
            else if (text[^1] == 'u')
            {
                Assert.True(duration.Ticks * 100m > 99_999_999, $"{duration.Ticks} ticks fit in nanoseconds, not '{text}'");
            }
        });
    }

    /// <summary>Reference: 1 to 10 ASCII digits, milliseconds.</summary>
    private static TimeSpan? ConnectReference(string text) =>
        text.Length is >= 1 and <= 10 && text.All(char.IsAsciiDigit)
            ? TimeSpan.FromTicks(long.Parse(text, System.Globalization.CultureInfo.InvariantCulture) * TimeSpan.TicksPerMillisecond)
            : null;

    /// <summary>Reference: 1 to 8 ASCII digits and a unit; nanoseconds round up to whole ticks.</summary>
    private static TimeSpan? GrpcReference(string text)
    {
        if (text.Length is < 2 or > 9 || !text[..^1].All(char.IsAsciiDigit) || !GrpcUnits.Contains(text[^1], StringComparison.Ordinal))
        {
            return null;
        }

        long amount = long.Parse(text[..^1], System.Globalization.CultureInfo.InvariantCulture);
        return text[^1] == 'n' ? TimeSpan.FromTicks((long)Math.Ceiling(amount / 100m)) : TimeSpan.FromTicks(amount * UnitTicks(text[^1]));
    }

    private static long UnitTicks(char unit) => unit switch
    {
        'H' => TimeSpan.TicksPerHour,
        'M' => TimeSpan.TicksPerMinute,
        'S' => TimeSpan.TicksPerSecond,
        'm' => TimeSpan.TicksPerMillisecond,
        'u' => TimeSpan.TicksPerMicrosecond,
        _ => 1, // 'n': a tick is the finest a TimeSpan holds
    };
}
