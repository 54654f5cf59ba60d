using System.Buffers;
using System.Globalization;
using System.Text;

namespace ConnectRpc.Internal;

/// <summary>
/// The metadata rules of docs/wire/metadata.md ("Rules for application metadata"), applied to every header that
/// application code writes. Received headers never pass through here: they are kept as
/// they came.
/// </summary>
internal static class HeaderRules
{
    // Connect and gRPC both define names as 1*[0-9a-z_.-]; upper case is accepted from
    // the application and lower-cased before it is stored (HTTP/2 forbids it on the wire).
    private static readonly SearchValues<char> s_keyChars =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.");

    // Standard base64 alphabet; '=' is checked separately because it may only pad the end.
    private static readonly SearchValues<char> s_base64Chars =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");

    /// <summary>Names the transport owns; an application may not set them in any case.</summary>
    private static readonly string[] s_transportNames =
    [
        "content-type", "content-length", "content-encoding", "accept-encoding", "transfer-encoding",
        "te", "trailer", "connection", "keep-alive", "upgrade", "host",
    ];

    /// <summary>
    /// Checks a key written by application code and returns it in the form it is stored
    /// and sent: lower case. Throws <see cref="ArgumentException"/> naming the key and the rule.
    /// </summary>
    public static string ValidateKey(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length == 0)
        {
            throw new ArgumentException("Header key must not be empty.", nameof(key));
        }

        int bad = key.AsSpan().IndexOfAnyExcept(s_keyChars);
        if (bad >= 0)
        {
            throw new ArgumentException(
                $"Header key '{Printable(key)}' has {Describe(key[bad])} at index {bad}: keys may contain only ASCII letters, digits, '-', '_' and '.'.",
                nameof(key));
        }

        string? rule = ReservedRule(key);
        if (rule is not null)
        {
            throw new ArgumentException($"Header key '{key}' is reserved: {rule}", nameof(key));
        }

        return key.AsSpan().ContainsAnyInRange('A', 'Z') ? key.ToLowerInvariant() : key;
    }

    /// <summary>
    /// Checks a value written by application code for <paramref name="key"/> (already validated).
    /// </summary>
    public static void ValidateValue(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        ReadOnlySpan<char> span = value;
        int bad = span.IndexOfAnyExceptInRange((char)0x20, (char)0x7E);
        if (bad >= 0)
        {
            throw new ArgumentException(
                $"Header '{key}' has an invalid value: {Describe(value[bad])} at index {bad} is not printable ASCII (0x20-0x7E).",
                nameof(value));
        }

        if (span.Length > 0 && (span[0] == ' ' || span[^1] == ' '))
        {
            throw new ArgumentException(
                $"Header '{key}' has an invalid value: it must not start or end with a space.", nameof(value));
        }

        if (IsBinaryKey(key) && !IsBase64List(span))
        {
            throw new ArgumentException(
                $"Header '{key}' is binary (its key ends in '-bin'): its value must be base64. Use SetBinary or AddBinary to send bytes.",
                nameof(value));
        }
    }

    /// <summary>True when <paramref name="key"/> names a binary header (suffix <c>-bin</c>, any case).</summary>
    public static bool IsBinaryKey(string key) => key.EndsWith("-bin", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The reason a syntactically valid key is reserved, or null when the application may use it.
    /// </summary>
    public static string? ReservedRule(string key)
    {
        if (key.StartsWith("connect-", StringComparison.OrdinalIgnoreCase))
        {
            return "keys starting with 'connect-' belong to the Connect protocol.";
        }

        if (key.StartsWith("grpc-", StringComparison.OrdinalIgnoreCase))
        {
            return "keys starting with 'grpc-' belong to the gRPC protocol.";
        }

        if (key.StartsWith("trailer-", StringComparison.OrdinalIgnoreCase))
        {
            return "keys starting with 'trailer-' are read as trailers by Connect unary clients.";
        }

        foreach (string name in s_transportNames)
        {
            if (key.Length == name.Length && key.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                return $"'{name}' is set by the transport, not by application code.";
            }
        }

        return null;
    }

    /// <summary>
    /// True when every comma-separated part of <paramref name="value"/> is standard base64,
    /// padded or unpadded.
    /// </summary>
    public static bool IsBase64List(ReadOnlySpan<char> value)
    {
        foreach (Range range in value.Split(','))
        {
            if (!IsBase64(value[range].Trim(' ')))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsBase64(ReadOnlySpan<char> part)
    {
        ReadOnlySpan<char> body = part.TrimEnd('=');
        int padding = part.Length - body.Length;
        if (body.IndexOfAnyExcept(s_base64Chars) >= 0)
        {
            return false;
        }

        // One leftover character never encodes a whole byte; padding, when present, must
        // complete the last group exactly.
        int rest = body.Length % 4;
        return rest != 1 && (padding == 0 || (rest != 0 && rest + padding == 4));
    }

    /// <summary>Encodes bytes as unpadded standard base64, the form both specs ask senders to use.</summary>
    public static string EncodeBinary(ReadOnlySpan<byte> bytes)
    {
        string padded = Convert.ToBase64String(bytes);
        return padded.TrimEnd('=');
    }

    /// <summary>Decodes one base64 value, padded or unpadded. Throws <see cref="FormatException"/>.</summary>
    public static byte[] DecodeBinary(ReadOnlySpan<char> value)
    {
        value = value.Trim(' ');
        if (!IsBase64(value))
        {
            throw new FormatException("The value is not valid base64.");
        }

        ReadOnlySpan<char> body = value.TrimEnd('=');
        int rest = body.Length % 4;
        if (rest == 0)
        {
            return Convert.FromBase64String(body.ToString());
        }

        var builder = new StringBuilder(body.Length + 4 - rest);
        builder.Append(body).Append('=', 4 - rest);
        return Convert.FromBase64String(builder.ToString());
    }

    /// <summary>Text safe to put in an exception message: control and non-ASCII characters escaped.</summary>
    internal static string Printable(string text)
    {
        if (!text.AsSpan().ContainsAnyExceptInRange((char)0x20, (char)0x7E))
        {
            return text;
        }

        var builder = new StringBuilder(text.Length + 8);
        foreach (char c in text)
        {
            if (c is >= (char)0x20 and <= (char)0x7E)
            {
                builder.Append(c);
            }
            else
            {
                builder.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}");
            }
        }

        return builder.ToString();
    }

    private static string Describe(char c) => c switch
    {
        ' ' => "a space",
        '\r' => "a carriage return (CR)",
        '\n' => "a line feed (LF)",
        '\t' => "a tab",
        '\0' => "a NUL character",
        (char)0x7F => "a DEL character",
        _ when c < 0x20 => string.Create(CultureInfo.InvariantCulture, $"the control character U+{(int)c:X4}"),
        _ when c > 0x7E => string.Create(CultureInfo.InvariantCulture, $"the non-ASCII character U+{(int)c:X4}"),
        _ => $"the character '{c}'",
    };
}
