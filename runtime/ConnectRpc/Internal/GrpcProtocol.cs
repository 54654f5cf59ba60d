using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace ConnectRpc.Internal;

/// <summary>The three forms of the gRPC wire: gRPC-Web is a flag on gRPC, not a copy (docs/architecture.md#design-choices).</summary>
internal enum GrpcWire
{
    /// <summary>gRPC over HTTP/2 with HTTP trailers (docs/protocols/grpc.md).</summary>
    Grpc,

    /// <summary>gRPC-Web: the trailers travel as the last frame of the body (docs/protocols/grpc-web.md).</summary>
    Web,

    /// <summary>gRPC-Web with both bodies base64-encoded (docs/protocols/grpc-web.md#text-mode, <c>application/grpc-web-text</c>).</summary>
    WebText,
}

/// <summary>Wire facts of gRPC and gRPC-Web (docs/protocols/grpc.md, docs/protocols/grpc-web.md, docs/wire/timeouts.md) shared by client and server.</summary>
internal static class GrpcProtocol
{
    public const string StatusHeader = "grpc-status";
    public const string StatusOk = "0";
    public const string MessageHeader = "grpc-message";
    public const string StatusDetailsHeader = "grpc-status-details-bin";
    public const string TimeoutHeader = "grpc-timeout";
    public const string EncodingHeader = "grpc-encoding";
    public const string AcceptEncodingHeader = "grpc-accept-encoding";

    public const string GrpcContentType = "application/grpc";
    public const string WebContentType = "application/grpc-web";
    public const string WebTextContentType = "application/grpc-web-text";

    /// <summary>The value of the 415 response's <c>Accept-Post</c> for gRPC requests.</summary>
    public const string AcceptPost =
        "application/grpc, application/grpc+proto, application/grpc+json, " +
        "application/grpc-web, application/grpc-web+proto, application/grpc-web+json, " +
        "application/grpc-web-text, application/grpc-web-text+proto";

    private const int MaxTimeoutDigits = 8;
    private const long MaxTimeoutValue = 99_999_999;

    private static readonly (long PerUnit, char Unit)[] s_timeoutUnits =
    [
        (TimeSpan.TicksPerMicrosecond, 'u'),
        (TimeSpan.TicksPerMillisecond, 'm'),
        (TimeSpan.TicksPerSecond, 'S'),
        (TimeSpan.TicksPerMinute, 'M'),
    ];

    /// <summary>
    /// Whether <paramref name="contentType"/> is a gRPC one (it starts with <c>application/grpc</c>),
    /// and if so which wire and codec it names. The codec is null for an unsupported suffix
    /// (<c>+xml</c>, or JSON with <c>-text</c>): such requests get 415.
    /// </summary>
    public static bool TryParseContentType(string? contentType, out GrpcWire wire, out MessageCodec? codec)
    {
        wire = GrpcWire.Grpc;
        codec = null;
        if (contentType is null || !contentType.StartsWith(GrpcContentType, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        ReadOnlySpan<char> rest = MessageCodec.WithoutParameters(contentType.AsSpan(GrpcContentType.Length)).TrimEnd();
        if (rest.StartsWith("-web-text", StringComparison.OrdinalIgnoreCase))
        {
            wire = GrpcWire.WebText;
            rest = rest["-web-text".Length..];
        }
        else if (rest.StartsWith("-web", StringComparison.OrdinalIgnoreCase))
        {
            wire = GrpcWire.Web;
            rest = rest["-web".Length..];
        }

        if (rest.IsEmpty)
        {
            codec = MessageCodec.Proto;
        }
        else if (rest[0] == '+')
        {
            codec = MessageCodec.Named(rest[1..]);
            if (wire == GrpcWire.WebText && codec != MessageCodec.Proto)
            {
                codec = null;
            }
        }
        else
        {
            // "application/grpcfoo" is not a gRPC type at all.
            return false;
        }

        return true;
    }

    /// <summary>The content type of a wire and codec; proto uses the bare form, as connect-go and grpc-dotnet do.</summary>
    public static string ContentType(GrpcWire wire, MessageCodec codec) => (wire, codec.IsJson) switch
    {
        (GrpcWire.Grpc, false) => GrpcContentType,
        (GrpcWire.Grpc, true) => GrpcContentType + "+json",
        (GrpcWire.Web, false) => WebContentType,
        (GrpcWire.Web, true) => WebContentType + "+json",
        _ => WebTextContentType,
    };

    public static Protocol ToProtocol(GrpcWire wire) => wire switch
    {
        GrpcWire.Grpc => Protocol.Grpc,
        GrpcWire.Web => Protocol.GrpcWeb,
        _ => Protocol.GrpcWebText,
    };

    /// <summary>
    /// Parses <c>grpc-timeout</c>: 1 to 8 digits and a unit, <c>H M S m u n</c> (docs/wire/timeouts.md).
    /// </summary>
    public static bool TryParseTimeout(ReadOnlySpan<char> value, out TimeSpan timeout)
    {
        timeout = default;
        if (value.Length < 2 || value.Length > MaxTimeoutDigits + 1)
        {
            return false;
        }

        ReadOnlySpan<char> digits = value[..^1];
        if (digits.ContainsAnyExceptInRange('0', '9'))
        {
            return false;
        }

        long amount = long.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture);
        long ticks;
        switch (value[^1])
        {
            case 'H': ticks = amount * TimeSpan.TicksPerHour; break;
            case 'M': ticks = amount * TimeSpan.TicksPerMinute; break;
            case 'S': ticks = amount * TimeSpan.TicksPerSecond; break;
            case 'm': ticks = amount * TimeSpan.TicksPerMillisecond; break;
            case 'u': ticks = amount * TimeSpan.TicksPerMicrosecond; break;
            case 'n': ticks = (amount + 99) / 100; break; // round up: a deadline never grows shorter
            default: return false;
        }

        timeout = TimeSpan.FromTicks(ticks);
        return true;
    }

    /// <summary>
    /// The <c>grpc-timeout</c> value for the time left: the finest unit that keeps the amount
    /// below 10^8, as connect-go does; <c>0n</c> when the time is up.
    /// </summary>
    public static string FormatTimeout(TimeSpan timeout)
    {
        long ticks = Math.Max(0, timeout.Ticks);
        if (ticks <= MaxTimeoutValue / 100)
        {
            return Format(ticks * 100, 'n');
        }

        foreach ((long perUnit, char unit) in s_timeoutUnits)
        {
            long amount = DivideRoundingUp(ticks, perUnit);
            if (amount <= MaxTimeoutValue)
            {
                return Format(amount, unit);
            }
        }

        return Format(Math.Min(MaxTimeoutValue, DivideRoundingUp(ticks, TimeSpan.TicksPerHour)), 'H');

        // Not (ticks + perUnit - 1) / perUnit: that overflows to a negative amount within an
        // hour of TimeSpan.MaxValue, and a negative timeout would be sent.
        static long DivideRoundingUp(long ticks, long perUnit) => (ticks / perUnit) + (ticks % perUnit == 0 ? 0 : 1);

        static string Format(long amount, char unit) => string.Create(CultureInfo.InvariantCulture, $"{amount}{unit}");
    }

    /// <summary>
    /// Percent-encodes a status message for <c>grpc-message</c> (docs/protocols/grpc.md#status-fields): UTF-8, then every byte
    /// outside 0x20–0x7E and every <c>%</c> as <c>%XX</c>.
    /// </summary>
    public static string EncodeMessage(string message)
    {
        int i = 0;
        while (i < message.Length && message[i] is >= ' ' and <= '~' and not '%')
        {
            i++;
        }

        if (i == message.Length)
        {
            return message;
        }

        var builder = new StringBuilder(message.Length + 16);
        builder.Append(message, 0, i);
        byte[] utf8 = Encoding.UTF8.GetBytes(message[i..]);
        foreach (byte b in utf8)
        {
            if (b is >= 0x20 and <= 0x7E and not (byte)'%')
            {
                builder.Append((char)b);
            }
            else
            {
                builder.Append('%').Append(HexUpper(b >> 4)).Append(HexUpper(b & 0xF));
            }
        }

        return builder.ToString();

        static char HexUpper(int nibble) => (char)(nibble < 10 ? '0' + nibble : 'A' + nibble - 10);
    }

    /// <summary>
    /// Decodes <c>grpc-message</c>. A malformed escape is kept as it is, never an error (docs/protocols/grpc.md#status-fields).
    /// </summary>
    public static string DecodeMessage(string value)
    {
        int percent = value.IndexOf('%', StringComparison.Ordinal);
        if (percent < 0)
        {
            return value;
        }

        var bytes = new List<byte>(value.Length);
        for (int i = 0; i < value.Length; i++)
        {
            char c = value[i];
            if (c == '%' && i + 2 < value.Length && IsHex(value[i + 1]) && IsHex(value[i + 2]))
            {
                bytes.Add((byte)((HexValue(value[i + 1]) << 4) | HexValue(value[i + 2])));
                i += 2;
            }
            else if (c < 0x80)
            {
                bytes.Add((byte)c);
            }
            else
            {
                // Not valid on the wire; keep the character as received.
                bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
            }
        }

        return Encoding.UTF8.GetString([.. bytes]);

        static bool IsHex(char c) => char.IsAsciiHexDigit(c);
        static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
    }

    /// <summary>
    /// The status fields of a call's end: <c>grpc-status</c>, and for an error the encoded
    /// message and, when there are details, <c>grpc-status-details-bin</c>.
    /// </summary>
    public static void AddStatus(Headers target, ConnectException? error)
    {
        if (error is null)
        {
            target.AddReceived(StatusHeader, StatusOk);
            return;
        }

        target.AddReceived(StatusHeader, ((int)error.Code).ToString(CultureInfo.InvariantCulture));
        if (error.Message.Length > 0)
        {
            target.AddReceived(MessageHeader, EncodeMessage(error.Message));
        }

        if (error.Details.Count > 0)
        {
            target.AddReceived(StatusDetailsHeader, HeaderRules.EncodeBinary(EncodeStatus(error)));
        }
    }

    /// <summary>
    /// The status in a set of trailers (or the headers of a trailers-only response): null for
    /// OK, the error otherwise. <c>grpc-status-details-bin</c>, when it decodes, is preferred
    /// (docs/protocols/grpc.md). Missing or malformed status is unknown.
    /// </summary>
    public static ConnectException? ReadStatus(Headers trailers)
    {
        string? statusText = trailers.Get(StatusHeader);
        if (statusText is null)
        {
            return new ConnectException(Code.Unknown, "protocol error: the response has no grpc-status");
        }

        if (!int.TryParse(statusText, NumberStyles.None, CultureInfo.InvariantCulture, out int status))
        {
            return new ConnectException(Code.Unknown, $"protocol error: invalid grpc-status '{HeaderRules.Printable(statusText)}'");
        }

        if (status == 0)
        {
            return null;
        }

        string? message = trailers.Get(MessageHeader) is { } encoded ? DecodeMessage(encoded) : null;
        if (trailers.Get(StatusDetailsHeader) is { } detailsText && TryDecodeStatus(detailsText, out int detailCode, out string? detailMessage, out List<Any> details) && detailCode != 0)
        {
            var detailed = new ConnectException(CodeMapping.FromWireNumber(detailCode), detailMessage ?? message);
            foreach (Any detail in details)
            {
                detailed.Details.Add(detail);
            }

            return detailed;
        }

        return new ConnectException(CodeMapping.FromWireNumber(status), message);
    }

    /// <summary>Serializes the error as <c>google.rpc.Status {int32 code = 1; string message = 2; repeated Any details = 3;}</c>.</summary>
    internal static byte[] EncodeStatus(ConnectException error)
    {
        using var buffer = new MemoryStream();
        var output = new CodedOutputStream(buffer);
        output.WriteTag(1, WireFormat.WireType.Varint);
        output.WriteInt32((int)error.Code);
        if (error.Message.Length > 0)
        {
            output.WriteTag(2, WireFormat.WireType.LengthDelimited);
            output.WriteString(error.Message);
        }

        foreach (Any detail in error.Details)
        {
            output.WriteTag(3, WireFormat.WireType.LengthDelimited);
            output.WriteMessage(detail);
        }

        output.Flush();
        return buffer.ToArray();
    }

    internal static bool TryDecodeStatus(string base64, out int code, out string? message, out List<Any> details)
    {
        code = 0;
        message = null;
        details = [];
        try
        {
            var input = new CodedInputStream(HeaderRules.DecodeBinary(base64));
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                switch (WireFormat.GetTagFieldNumber(tag))
                {
                    case 1 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.Varint:
                        code = input.ReadInt32();
                        break;
                    case 2 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited:
                        message = input.ReadString();
                        break;
                    case 3 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited:
                        var any = new Any();
                        input.ReadMessage(any);
                        details.Add(any);
                        break;
                    default:
                        input.SkipLastField();
                        break;
                }
            }

            return true;
        }
        catch (Exception ex) when (ex is FormatException or InvalidProtocolBufferException)
        {
            return false;
        }
    }

    /// <summary>
    /// Writes a gRPC-Web trailer block (docs/protocols/grpc-web.md#the-trailer-frame): one <c>name: value\r\n</c> line per value, names
    /// lower-case. Values were checked when they were written (or are runtime-made), so they
    /// hold no CR or LF.
    /// </summary>
    public static void WriteWebTrailers(IBufferWriter<byte> output, Headers trailers)
    {
        foreach (KeyValuePair<string, string> entry in trailers)
        {
            int length = entry.Key.Length + 2 + entry.Value.Length + 2;
            Span<byte> span = output.GetSpan(length);
            int written = Encoding.ASCII.GetBytes(entry.Key, span);
            for (int i = 0; i < written; i++)
            {
                span[i] = (byte)char.ToLowerInvariant((char)span[i]);
            }

            span[written++] = (byte)':';
            span[written++] = (byte)' ';
            written += Encoding.ASCII.GetBytes(entry.Value, span[written..]);
            span[written++] = (byte)'\r';
            span[written++] = (byte)'\n';
            output.Advance(written);
        }
    }

    /// <summary>
    /// Reads a gRPC-Web trailer block leniently (docs/protocols/grpc-web.md#the-trailer-frame): names in any case, whitespace trimmed, a
    /// bare LF accepted, blank lines skipped. A line without a colon is a protocol error.
    /// </summary>
    public static void ReadWebTrailers(ReadOnlySequence<byte> block, Headers trailers)
    {
        string text = Encoding.ASCII.GetString(block);
        foreach (Range range in text.AsSpan().Split('\n'))
        {
            ReadOnlySpan<char> line = text.AsSpan(range).Trim();
            if (line.IsEmpty)
            {
                continue;
            }

            int colon = line.IndexOf(':');
            if (colon <= 0)
            {
                throw new ConnectException(Code.Internal, $"protocol error: invalid gRPC-Web trailer line '{HeaderRules.Printable(line.ToString())}'");
            }

            trailers.AddReceived(line[..colon].Trim().ToString().ToLowerInvariant(), line[(colon + 1)..].Trim().ToString());
        }
    }

    /// <summary>
    /// Writes one frame as the wire carries it: as is, or for gRPC-Web text base64-encoded on
    /// its own (padding may then sit between frames, docs/protocols/grpc-web.md#text-mode).
    /// </summary>
    public static void WriteFrame(IBufferWriter<byte> output, GrpcWire wire, EnvelopeFlags flags, ReadOnlySpan<byte> payload)
    {
        if (wire != GrpcWire.WebText)
        {
            Envelope.WriteFrame(output, flags, payload);
            return;
        }

        using var frame = new PooledBufferWriter(Envelope.PrefixLength + payload.Length);
        Envelope.WriteFrame(frame, flags, payload);
        WriteBase64(output, frame.WrittenSpan);
    }

    /// <summary>Base64-encodes a chunk of a gRPC-Web text body (each chunk padded on its own, docs/protocols/grpc-web.md#text-mode).</summary>
    public static void WriteBase64(IBufferWriter<byte> output, ReadOnlySpan<byte> bytes)
    {
        int length = Base64.GetMaxEncodedToUtf8Length(bytes.Length);
        Span<byte> span = output.GetSpan(length);
        Base64.EncodeToUtf8(bytes, span, out _, out int written);
        output.Advance(written);
    }
}
