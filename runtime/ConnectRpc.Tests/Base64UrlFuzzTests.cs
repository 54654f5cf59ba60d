using ConnectRpc.Internal;
using CsCheck;

namespace ConnectRpc.Tests;

/// <summary>
/// The <c>message</c> parameter of a Connect GET with <c>base64=1</c>
/// (docs/protocols/connect.md#unary-get): URL-safe base64 (RFC 4648 §5), padded or not,
/// decoded as a reference decoder does.
/// </summary>
public sealed class Base64UrlFuzzTests
{
    /// <summary>Mostly URL-safe base64 characters, with padding, the standard alphabet's + and /, spaces and junk.</summary>
    private static readonly Gen<string> s_text = Gen.Frequency(
            (12, Gen.Char["ABCXYZabcxyz0189-_"]),
            (2, Gen.Char["="]),
            (1, Gen.Char["+/ \t\r\n%.é\0"]))
        .Array[0, 16]
        .Select(chars => new string(chars));

    [Fact]
    public void TryDecodeBase64Url_AnyString_AgreesWithTheReference()
    {
        s_text.Check(text =>
        {
            using var output = new PooledBufferWriter(1);

            bool decoded = ConnectProtocol.TryDecodeBase64Url(text, output);

            byte[]? expected = Reference(text);
            Assert.Equal(expected is not null, decoded);
            if (expected is not null)
            {
                Assert.Equal(expected, output.WrittenSpan.ToArray());
            }
        });
    }

    [Fact]
    public void TryDecodeBase64Url_AnyBytesEncodedPaddedOrNot_RoundTrips()
    {
        Gen.Byte.Array[0, 100].Check(bytes =>
        {
            string padded = Convert.ToBase64String(bytes).Replace('+', '-').Replace('/', '_');
            foreach (string text in new[] { padded, padded.TrimEnd('=') })
            {
                using var output = new PooledBufferWriter(1);

                Assert.True(ConnectProtocol.TryDecodeBase64Url(text, output), text);
                Assert.Equal(bytes, output.WrittenSpan.ToArray());
            }
        });
    }

    // Found by the property above: padding that completes no group ("=" alone, or too much of it) and whitespace were accepted.
    [Theory]
    [InlineData("=", false)]
    [InlineData("====", false)]
    [InlineData("QQ=====", false)]
    [InlineData("QQ===", false)]
    [InlineData(" ", false)]
    [InlineData("QQ ==", false)]
    [InlineData("QQ==", true)]
    [InlineData("QQ", true)]
    [InlineData("QUI=", true)]
    [InlineData("", true)]
    public void TryDecodeBase64Url_Padding_AcceptedOnlyWhenItCompletesTheLastGroup(string text, bool valid)
    {
        using var output = new PooledBufferWriter(1);

        Assert.Equal(valid, ConnectProtocol.TryDecodeBase64Url(text, output));
    }

    /// <summary>
    /// Reference: the URL-safe alphabet only (no +, / or whitespace); padding, if any, completes the last group; then the
    /// standard alphabet's decoder after mapping <c>-_</c> to <c>+/</c> and padding.
    /// </summary>
    private static byte[]? Reference(string text)
    {
        if (text.Any(c => c is '+' or '/' || char.IsWhiteSpace(c)))
        {
            return null;
        }

        // Padding, when present, completes the last group of four; only unpadded text gets padded here.
        if (text.Contains('=', StringComparison.Ordinal) && text.Length % 4 != 0)
        {
            return null;
        }

        string standard = text.Replace('-', '+').Replace('_', '/');
        if (standard.Length % 4 != 0)
        {
            standard += new string('=', 4 - (standard.Length % 4));
        }

        byte[] buffer = new byte[standard.Length];
        if (!Convert.TryFromBase64String(standard, buffer, out int written))
        {
            return null;
        }

        // The runtime's decoder is strict where RFC 4648 §3.5 lets decoders be: the bits left
        // over in the last character must be zero ("QQ" is 'A'; "QR" encodes nothing). Every
        // encoder writes them so; the reference asks for the canonical encoding too.
        byte[] bytes = buffer[..written];
        string canonical = Convert.ToBase64String(bytes).TrimEnd('=');
        return canonical == standard.TrimEnd('=') ? bytes : null;
    }
}
