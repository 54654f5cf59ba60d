using System.Text.RegularExpressions;
using ConnectRpc.Internal;
using CsCheck;

namespace ConnectRpc.Tests;

/// <summary>
/// The metadata rules (docs/wire/metadata.md#rules-for-application-metadata) through the
/// public <see cref="Headers"/> API, against a reference written here from the rules alone.
/// </summary>
public sealed partial class HeadersFuzzTests
{
    private static readonly string[] s_transportNames =
    [
        "content-type", "content-length", "content-encoding", "accept-encoding", "transfer-encoding",
        "te", "trailer", "connection", "keep-alive", "upgrade", "host",
    ];

    /// <summary>Single characters: mostly legal ones, and every kind of illegal one.</summary>
    private static readonly Gen<string> s_char = Gen.Frequency(
        (8, Gen.Char["abcxyzABCXYZ0129"].Select(c => c.ToString())),
        (3, Gen.Char["-_."].Select(c => c.ToString())),
        (1, Gen.Char[" \t\r\n\0\u007F:,;=+/\"\\é\u0130\u017F\u212A\uFFFF\uD800"].Select(c => c.ToString())),
        (1, Gen.Char['\0', '\u00FF'].Select(c => c.ToString())));

    /// <summary>Keys: pieces of names, reserved prefixes and reserved names, in any case.</summary>
    public static readonly Gen<string> Key = Gen.Frequency(
        (4, Gen.Frequency(
                (6, s_char),
                (1, Gen.OneOf("connect-", "grpc-", "trailer-", "Connect-", "GRPC-", "connect", "grpc", "-bin", "-BIN", "x-")),
                (1, Gen.OneOf(s_transportNames)))
            .Array[0, 5]
            .Select(string.Concat)),
        (1, Gen.OneOf([.. s_transportNames, "TE", "Host", "Content-Type", "trailers", "te-", "hosts", "x-te", "Trailer"])),
        (1, Gen.Select(Gen.OneOf("connect-", "grpc-", "trailer-", "Connect-", "GRPC-", "Trailer-", "connect_", "grpc.", "trailer"), s_char.Array[0, 3])
            .Select((prefix, rest) => prefix + string.Concat(rest))));

    /// <summary>Values: printable text, base64 (padded or not), lists, and illegal characters.</summary>
    private static readonly Gen<string> s_value = Gen.Frequency(
            (6, s_char),
            (2, Gen.Byte.Array[0, 7].Select(bytes => Convert.ToBase64String(bytes))),
            (2, Gen.Byte.Array[0, 7].Select(bytes => Convert.ToBase64String(bytes).TrimEnd('='))),
            (1, Gen.OneOf(",", ", ", " ", "=", "==", "+/", "%")))
        .Array[0, 5]
        .Select(string.Concat);

    [Fact]
    public void SetAndAdd_AnyKeyAndValue_AcceptedExactlyWhenTheRulesAllowIt()
    {
        Gen.Select(Key, s_value, Gen.Bool).Check(sample =>
        {
            (string key, string value, bool add) = sample;
            bool valid = IsValidKey(key) && IsValidValue(key, value);
            var headers = new Headers();
            try
            {
                if (add)
                {
                    headers.Add(key, value);
                }
                else
                {
                    headers[key] = value;
                }
            }
            catch (ArgumentException ex)
            {
                Assert.False(valid, $"rejected a valid header: {ex.Message}");
                Assert.Contains(HeaderRules.Printable(key), ex.Message, StringComparison.OrdinalIgnoreCase);
                Assert.Empty(headers);
                return;
            }

            Assert.True(valid, "accepted an invalid header");
            KeyValuePair<string, string> entry = Assert.Single(headers);
            Assert.Equal(key.ToLowerInvariant(), entry.Key); // sent lower-case
            Assert.Equal(value, entry.Value);
            Assert.Equal(value, headers[key.ToUpperInvariant()]);
        });
    }

    [Fact]
    public void SetBinary_AnyBytes_GetBinaryReturnsThem()
    {
        Gen.Select(Gen.Byte.Array[0, 64], Gen.OneOf("a-bin", "X-Trace-Bin", "x.y_z-BIN")).Check(sample =>
        {
            (byte[] bytes, string key) = sample;
            var headers = new Headers();

            headers.SetBinary(key, bytes);
            headers.AddBinary(key, [.. bytes.Reverse()]);

            Assert.Equal(bytes, headers.GetBinary(key));
            Assert.DoesNotContain('=', headers[key]!); // unpadded out
            Assert.Equal([bytes, [.. bytes.Reverse()]], headers.GetAllBinary(key));
        });
    }

    [Fact]
    public void GetBinary_PaddedOrUnpaddedBase64_DecodesTheSameBytes()
    {
        Gen.Byte.Array[0, 64].Check(bytes =>
        {
            string padded = Convert.ToBase64String(bytes);
            var headers = new Headers { ["a-bin"] = padded, ["b-bin"] = padded.TrimEnd('=') };

            Assert.Equal(bytes, headers.GetBinary("a-bin"));
            Assert.Equal(bytes, headers.GetBinary("b-bin"));
            Assert.Equal(bytes, HeaderRules.DecodeBinary(padded));
            Assert.Equal(bytes, HeaderRules.DecodeBinary(padded.TrimEnd('=')));
        });
    }

    /// <summary>Key: one or more of <c>A–Z a–z 0–9 _ - .</c>, and not reserved in any case.</summary>
    internal static bool IsValidKey(string key)
    {
        if (!KeyPattern().IsMatch(key))
        {
            return false;
        }

        string lower = key.ToLowerInvariant();
        return !lower.StartsWith("connect-", StringComparison.Ordinal)
            && !lower.StartsWith("grpc-", StringComparison.Ordinal)
            && !lower.StartsWith("trailer-", StringComparison.Ordinal)
            && !s_transportNames.Contains(lower);
    }

    /// <summary>Value: printable ASCII, no space at either end; for a <c>-bin</c> key, base64 (a comma-separated list of it).</summary>
    internal static bool IsValidValue(string key, string value)
    {
        if (!value.All(c => c is >= ' ' and <= '~') || value.StartsWith(' ') || value.EndsWith(' '))
        {
            return false;
        }

        return !key.ToLowerInvariant().EndsWith("-bin", StringComparison.Ordinal)
            || value.Split(',').All(part => Base64Pattern().IsMatch(part.Trim(' ')));
    }

    [GeneratedRegex(@"\A[A-Za-z0-9_.-]+\z")]
    private static partial Regex KeyPattern();

    /// <summary>Standard base64, padded or unpadded (a lone leftover character encodes no byte).</summary>
    [GeneratedRegex(@"\A(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?\z")]
    private static partial Regex Base64Pattern();
}
