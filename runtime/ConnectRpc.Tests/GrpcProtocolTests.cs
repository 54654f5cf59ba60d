using System.Buffers;
using System.Text;
using ConnectRpc.Internal;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace ConnectRpc.Tests;

/// <summary>
/// The gRPC and gRPC-Web wire facts of docs/protocols/grpc.md, docs/protocols/grpc-web.md and
/// docs/wire/timeouts.md.
/// </summary>
public sealed class GrpcProtocolTests
{
    // GrpcWire is internal, so the tables name it as a string.
    [Theory]
    [InlineData("application/grpc", "Grpc", "proto")]
    [InlineData("application/grpc+proto", "Grpc", "proto")]
    [InlineData("application/grpc+json", "Grpc", "json")]
    [InlineData("application/grpc-web", "Web", "proto")]
    [InlineData("application/grpc-web+proto", "Web", "proto")]
    [InlineData("application/grpc-web+json", "Web", "json")]
    [InlineData("application/grpc-web-text", "WebText", "proto")]
    [InlineData("application/grpc-web-text+proto", "WebText", "proto")]
    [InlineData("APPLICATION/GRPC", "Grpc", "proto")]
    [InlineData("Application/gRPC+JSON", "Grpc", "json")]
    [InlineData("application/GRPC-Web+Proto", "Web", "proto")]
    [InlineData("application/grpc-WEB-TEXT+PROTO", "WebText", "proto")]
    [InlineData("application/grpc; charset=utf-8", "Grpc", "proto")]
    [InlineData("application/grpc+json;charset=utf-8", "Grpc", "json")]
    [InlineData("application/grpc-web+proto ; foo=bar", "Web", "proto")]
    [InlineData("application/grpc-web-text; charset=utf-8", "WebText", "proto")]
    [InlineData("application/grpc-web-text+json", "WebText", null)] // JSON is never base64-wrapped
    [InlineData("application/grpc+xml", "Grpc", null)]
    [InlineData("application/grpc-web+xml", "Web", null)]
    [InlineData("application/grpc+", "Grpc", null)]
    public void TryParseContentType_GrpcType_ReturnsWireAndCodec(string contentType, string wire, string? codec)
    {
        Assert.True(GrpcProtocol.TryParseContentType(contentType, out GrpcWire parsedWire, out MessageCodec? parsedCodec));

        Assert.Equal(System.Enum.Parse<GrpcWire>(wire), parsedWire);
        Assert.Equal(codec, parsedCodec?.Name);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("application/json")]
    [InlineData("application/proto")]
    [InlineData("application/connect+proto")]
    [InlineData("application/grp")]
    [InlineData("application/grpcfoo")]
    [InlineData("application/grpc-")]
    [InlineData("application/grpc-webfoo")]
    [InlineData("application/grpc-web-textual")]
    [InlineData("text/grpc")]
    public void TryParseContentType_NotGrpc_ReturnsFalse(string? contentType)
    {
        Assert.False(GrpcProtocol.TryParseContentType(contentType, out _, out MessageCodec? codec));
        Assert.Null(codec);
    }

    [Theory]
    [InlineData("Grpc", "proto", "application/grpc")]
    [InlineData("Grpc", "json", "application/grpc+json")]
    [InlineData("Web", "proto", "application/grpc-web")]
    [InlineData("Web", "json", "application/grpc-web+json")]
    [InlineData("WebText", "proto", "application/grpc-web-text")]
    public void ContentType_EachWireAndCodec_RoundTripsThroughParse(string wire, string codec, string expected)
    {
        GrpcWire grpcWire = System.Enum.Parse<GrpcWire>(wire);
        MessageCodec messageCodec = MessageCodec.Named(codec)!;

        string contentType = GrpcProtocol.ContentType(grpcWire, messageCodec);

        Assert.Equal(expected, contentType);
        Assert.True(GrpcProtocol.TryParseContentType(contentType, out GrpcWire parsedWire, out MessageCodec? parsedCodec));
        Assert.Equal(grpcWire, parsedWire);
        Assert.Same(messageCodec, parsedCodec);
    }

    [Theory]
    [InlineData("1H", TimeSpan.TicksPerHour)]
    [InlineData("1M", TimeSpan.TicksPerMinute)]
    [InlineData("1S", TimeSpan.TicksPerSecond)]
    [InlineData("1m", TimeSpan.TicksPerMillisecond)]
    [InlineData("1u", TimeSpan.TicksPerMicrosecond)]
    [InlineData("1n", 1L)] // 1 ns rounds up to one tick: a deadline never grows shorter
    [InlineData("99n", 1L)]
    [InlineData("100n", 1L)]
    [InlineData("101n", 2L)]
    [InlineData("0n", 0L)]
    [InlineData("0H", 0L)]
    [InlineData("00000001S", TimeSpan.TicksPerSecond)]
    [InlineData("12345678H", 12_345_678 * TimeSpan.TicksPerHour)]
    [InlineData("99999999H", 99_999_999 * TimeSpan.TicksPerHour)]
    [InlineData("99999999M", 99_999_999 * TimeSpan.TicksPerMinute)]
    [InlineData("99999999S", 99_999_999 * TimeSpan.TicksPerSecond)]
    [InlineData("99999999m", 99_999_999 * TimeSpan.TicksPerMillisecond)]
    [InlineData("99999999u", 99_999_999 * TimeSpan.TicksPerMicrosecond)]
    [InlineData("99999999n", 1_000_000L)]
    public void TryParseTimeout_Valid_ReturnsTicks(string value, long ticks)
    {
        Assert.True(GrpcProtocol.TryParseTimeout(value, out TimeSpan timeout));

        Assert.Equal(ticks, timeout.Ticks);
    }

    [Theory]
    [InlineData("")]
    [InlineData("S")]
    [InlineData("1")]
    [InlineData("12345678")] // eight digits and no unit
    [InlineData("123456789S")] // nine digits
    [InlineData("100000000n")]
    [InlineData("1x")]
    [InlineData("1h")]
    [InlineData("1s")]
    [InlineData("1U")]
    [InlineData("1N")]
    [InlineData("-1S")]
    [InlineData("+1S")]
    [InlineData(" 1S")]
    [InlineData("1S ")]
    [InlineData("1 S")]
    [InlineData("1.5S")]
    [InlineData("1SS")]
    [InlineData("\uFF11S")] // a full-width digit is not an ASCII digit
    public void TryParseTimeout_Invalid_ReturnsFalse(string value)
    {
        Assert.False(GrpcProtocol.TryParseTimeout(value, out _));
    }

    // The finest unit that keeps the amount at most 99,999,999 (8 digits), rounded up
    // (docs/wire/timeouts.md).
    [Theory]
    [InlineData(0L, "0n")]
    [InlineData(-1L, "0n")]
    [InlineData(-TimeSpan.TicksPerHour, "0n")]
    [InlineData(long.MinValue, "0n")]
    [InlineData(1L, "100n")]
    [InlineData(TimeSpan.TicksPerMicrosecond, "1000n")]
    [InlineData(TimeSpan.TicksPerMillisecond, "1000000n")]
    [InlineData(999_999L, "99999900n")] // 99.9999 ms, the largest that fits in ns
    [InlineData(1_000_000L, "100000u")] // 100 ms is 10^8 ns: one digit too many
    [InlineData(1_000_001L, "100001u")] // 100,000.1 µs rounds up
    [InlineData(250 * TimeSpan.TicksPerMillisecond, "250000u")]
    [InlineData(TimeSpan.TicksPerSecond, "1000000u")]
    [InlineData(999_999_990L, "99999999u")]
    [InlineData(999_999_991L, "100000m")]
    [InlineData(TimeSpan.TicksPerDay, "86400000m")]
    [InlineData(2 * TimeSpan.TicksPerDay, "172800S")]
    [InlineData(100_000_000 * TimeSpan.TicksPerSecond, "1666667M")]
    [InlineData(100_000_000 * TimeSpan.TicksPerMinute, "1666667H")]
    [InlineData(99_999_999 * TimeSpan.TicksPerHour, "99999999H")]
    [InlineData((99_999_999 * TimeSpan.TicksPerHour) + 1, "99999999H")] // capped
    [InlineData(long.MaxValue - TimeSpan.TicksPerSecond, "99999999H")]
    [InlineData(long.MaxValue, "99999999H")] // TimeSpan.MaxValue
    public void FormatTimeout_Ticks_UsesFinestUnitBelowTenToTheEight(long ticks, string expected)
    {
        Assert.Equal(expected, GrpcProtocol.FormatTimeout(TimeSpan.FromTicks(ticks)));
    }

    [Theory]
    [InlineData(1L)]
    [InlineData(7L)]
    [InlineData(999_999L)]
    [InlineData(1_000_000L)]
    [InlineData(1_234_567L)]
    [InlineData(999_999_999L)]
    [InlineData(1_000_000_001L)]
    [InlineData(TimeSpan.TicksPerDay + 1)]
    [InlineData((3 * TimeSpan.TicksPerDay) + 12_345)]
    [InlineData((100_000_000 * TimeSpan.TicksPerSecond) + 1)]
    [InlineData((100_000_000 * TimeSpan.TicksPerMinute) + 1)]
    [InlineData(99_999_999 * TimeSpan.TicksPerHour)]
    public void FormatTimeout_ThenParse_IsNeverShorterAndWithinOneUnit(long ticks)
    {
        string formatted = GrpcProtocol.FormatTimeout(TimeSpan.FromTicks(ticks));

        Assert.True(formatted.Length <= 9, formatted);
        Assert.True(GrpcProtocol.TryParseTimeout(formatted, out TimeSpan parsed), formatted);
        long unit = formatted[^1] switch
        {
            'H' => TimeSpan.TicksPerHour,
            'M' => TimeSpan.TicksPerMinute,
            'S' => TimeSpan.TicksPerSecond,
            'm' => TimeSpan.TicksPerMillisecond,
            'u' => TimeSpan.TicksPerMicrosecond,
            _ => 1, // n: a tick is 100 ns, so the round trip is exact
        };
        Assert.InRange(parsed.Ticks - ticks, 0, unit - 1);
    }

    [Theory]
    [InlineData("", "")]
    [InlineData("hello, world", "hello, world")]
    [InlineData(" !\"#$&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~", " !\"#$&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~")]
    [InlineData("100%", "100%25")]
    [InlineData("%25", "%2525")]
    [InlineData("a\r\nb", "a%0D%0Ab")]
    [InlineData("a\tb", "a%09b")]
    [InlineData("\0", "%00")]
    [InlineData("\u007F", "%7F")]
    [InlineData("caf\u00E9", "caf%C3%A9")]
    [InlineData("\u00E9%", "%C3%A9%25")]
    [InlineData("\u65E5\u672C", "%E6%97%A5%E6%9C%AC")]
    [InlineData("\U0001F600 ok", "%F0%9F%98%80 ok")]
    public void EncodeMessage_Text_PercentEncodesUtf8WithUppercaseHex(string message, string expected)
    {
        string encoded = GrpcProtocol.EncodeMessage(message);

        Assert.Equal(expected, encoded);
        Assert.Equal(message, GrpcProtocol.DecodeMessage(encoded));
    }

    [Theory]
    [InlineData("plain text")]
    [InlineData("50% off\r\n\tnext line")]
    [InlineData("\u00E9t\u00E9 \u65E5\u672C\u8A9E \U0001F600\U0001F680")]
    [InlineData("%%%4%zz%")]
    [InlineData("\u0001\u001F\u007F\u0080\u00FF\uFFFD")]
    public void EncodeMessage_ThenDecode_RoundTripsAndIsPrintableAscii(string message)
    {
        string encoded = GrpcProtocol.EncodeMessage(message);

        Assert.Equal(message, GrpcProtocol.DecodeMessage(encoded));
        for (int i = 0; i < encoded.Length; i++)
        {
            Assert.InRange(encoded[i], ' ', '~');
            if (encoded[i] == '%')
            {
                Assert.True(i + 2 < encoded.Length, encoded);
                Assert.True(char.IsAsciiHexDigitUpper(encoded[i + 1]) && char.IsAsciiHexDigitUpper(encoded[i + 2]), encoded);
            }
        }
    }

    [Theory]
    [InlineData("no escapes", "no escapes")]
    [InlineData("%", "%")]
    [InlineData("%4", "%4")]
    [InlineData("abc%", "abc%")]
    [InlineData("abc%4", "abc%4")]
    [InlineData("%zz", "%zz")]
    [InlineData("%4g", "%4g")]
    [InlineData("%%41", "%A")]
    [InlineData("%4%41", "%4A")]
    [InlineData("%41%42", "AB")]
    [InlineData("%c3%a9", "\u00E9")] // lower-case hex is accepted
    [InlineData("%C3%a9", "\u00E9")]
    [InlineData("%E2%82%AC 5", "\u20AC 5")]
    [InlineData("%FF", "\uFFFD")] // not UTF-8 once decoded: replaced, never an error
    [InlineData("caf\u00E9", "caf\u00E9")] // raw non-ASCII is not valid on the wire, but kept
    [InlineData("caf\u00E9 %21", "caf\u00E9 !")]
    public void DecodeMessage_Value_DecodesAndKeepsMalformedEscapes(string value, string expected)
    {
        Assert.Equal(expected, GrpcProtocol.DecodeMessage(value));
    }

    [Fact]
    public void AddStatus_Ok_AddsOnlyGrpcStatusZero()
    {
        var trailers = new Headers();

        GrpcProtocol.AddStatus(trailers, null);

        Assert.Equal(["grpc-status: 0"], Lines(trailers));
    }

    [Fact]
    public void AddStatus_ErrorWithoutMessageOrDetails_AddsOnlyGrpcStatus()
    {
        var trailers = new Headers();

        GrpcProtocol.AddStatus(trailers, new ConnectException(Code.NotFound));

        Assert.Equal(["grpc-status: 5"], Lines(trailers));
    }

    [Fact]
    public void AddStatus_ErrorWithMessageAndDetails_AddsStatusEncodedMessageAndDetails()
    {
        var error = new ConnectException(Code.InvalidArgument, "bad 100%\n\u00E9");
        error.AddDetail(new StringValue { Value = "why" });
        var trailers = new Headers();

        GrpcProtocol.AddStatus(trailers, error);

        Assert.Equal(
            ["grpc-status", "grpc-message", "grpc-status-details-bin"],
            trailers.Select(entry => entry.Key));
        Assert.Equal("3", trailers.Get("grpc-status"));
        Assert.Equal("bad 100%25%0A%C3%A9", trailers.Get("grpc-message"));
        string details = trailers.Get("grpc-status-details-bin")!;
        Assert.DoesNotContain('=', details); // unpadded (docs/protocols/grpc.md)
        Assert.True(GrpcProtocol.TryDecodeStatus(details, out int code, out string? message, out List<Any> anys));
        Assert.Equal(3, code);
        Assert.Equal("bad 100%\n\u00E9", message); // google.rpc.Status carries the raw message
        Assert.Equal("why", Assert.Single(anys).Unpack<StringValue>().Value);
    }

    [Fact]
    public void AddStatus_ThenReadStatus_RoundTrips()
    {
        var error = new ConnectException(Code.ResourceExhausted, "slow down \U0001F40C");
        error.AddDetail(new StringValue { Value = "one" });
        error.AddDetail(new Int32Value { Value = 2 });
        var trailers = new Headers();
        GrpcProtocol.AddStatus(trailers, error);

        ConnectException read = GrpcProtocol.ReadStatus(trailers)!;

        Assert.Equal(Code.ResourceExhausted, read.Code);
        Assert.Equal("slow down \U0001F40C", read.Message);
        Assert.Equal(error.Details, read.Details);
    }

    [Theory]
    [InlineData("1", Code.Canceled)]
    [InlineData("3", Code.InvalidArgument)]
    [InlineData("16", Code.Unauthenticated)]
    [InlineData(null, Code.Unknown)]
    [InlineData("", Code.Unknown)]
    [InlineData("abc", Code.Unknown)]
    [InlineData("-1", Code.Unknown)]
    [InlineData("+3", Code.Unknown)]
    [InlineData(" 3", Code.Unknown)]
    [InlineData("3.0", Code.Unknown)]
    [InlineData("17", Code.Unknown)]
    [InlineData("99", Code.Unknown)]
    [InlineData("99999999999", Code.Unknown)]
    public void ReadStatus_GrpcStatus_MapsToCode(string? status, Code expected)
    {
        Headers trailers = Headers.CreateReceived();
        if (status is not null)
        {
            trailers.AddReceived("grpc-status", status);
        }

        ConnectException? error = GrpcProtocol.ReadStatus(trailers);

        Assert.NotNull(error);
        Assert.Equal(expected, error.Code);
        Assert.Empty(error.Details);
    }

    [Fact]
    public void ReadStatus_Missing_SaysSo()
    {
        ConnectException error = GrpcProtocol.ReadStatus(Headers.CreateReceived())!;

        Assert.Equal(Code.Unknown, error.Code);
        Assert.Contains("no grpc-status", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadStatus_Ok_ReturnsNullEvenWithMessageAndDetails()
    {
        Headers trailers = Headers.CreateReceived();
        trailers.AddReceived("grpc-status", "0");
        trailers.AddReceived("grpc-message", "ignored");
        trailers.AddReceived("grpc-status-details-bin", DetailsBin(new ConnectException(Code.NotFound, "x")));

        Assert.Null(GrpcProtocol.ReadStatus(trailers));
    }

    [Fact]
    public void ReadStatus_Message_IsPercentDecoded()
    {
        Headers trailers = Headers.CreateReceived();
        trailers.AddReceived("grpc-status", "9");
        trailers.AddReceived("grpc-message", "caf%C3%A9 %zz 100%");

        ConnectException error = GrpcProtocol.ReadStatus(trailers)!;

        Assert.Equal(Code.FailedPrecondition, error.Code);
        Assert.Equal("caf\u00E9 %zz 100%", error.Message);
    }

    [Fact]
    public void ReadStatus_DetailsBin_IsPreferredForCodeMessageAndDetails()
    {
        var source = new ConnectException(Code.NotFound, "from details");
        source.AddDetail(new StringValue { Value = "detail" });
        Headers trailers = Headers.CreateReceived();
        trailers.AddReceived("grpc-status", "3");
        trailers.AddReceived("grpc-message", "from grpc-message");
        trailers.AddReceived("grpc-status-details-bin", DetailsBin(source));

        ConnectException error = GrpcProtocol.ReadStatus(trailers)!;

        Assert.Equal(Code.NotFound, error.Code);
        Assert.Equal("from details", error.Message);
        Assert.Equal("detail", Assert.Single(error.Details).Unpack<StringValue>().Value);
    }

    [Fact]
    public void ReadStatus_DetailsBinWithoutMessage_UsesGrpcMessage()
    {
        var source = new ConnectException(Code.NotFound);
        source.AddDetail(new StringValue { Value = "detail" });
        Headers trailers = Headers.CreateReceived();
        trailers.AddReceived("grpc-status", "5");
        trailers.AddReceived("grpc-message", "from%20grpc-message");
        trailers.AddReceived("grpc-status-details-bin", DetailsBin(source));

        ConnectException error = GrpcProtocol.ReadStatus(trailers)!;

        Assert.Equal(Code.NotFound, error.Code);
        Assert.Equal("from grpc-message", error.Message);
        Assert.Single(error.Details);
    }

    [Fact]
    public void ReadStatus_PaddedDetailsBin_IsAccepted()
    {
        var source = new ConnectException(Code.Aborted, "m"); // 5 bytes: base64 needs padding
        Headers trailers = Headers.CreateReceived();
        trailers.AddReceived("grpc-status", "10");
        string padded = Convert.ToBase64String(GrpcProtocol.EncodeStatus(source));
        Assert.EndsWith("=", padded, StringComparison.Ordinal);
        trailers.AddReceived("grpc-status-details-bin", padded);

        ConnectException error = GrpcProtocol.ReadStatus(trailers)!;

        Assert.Equal(Code.Aborted, error.Code);
        Assert.Equal("m", error.Message);
    }

    public static TheoryData<string> BadDetailsBin() => new()
    {
        "!!!not base64",
        "A", // one leftover character encodes no byte
        "QQ=", // padding that does not complete the group
        Convert.ToBase64String([0xFF]), // a truncated varint tag
        Convert.ToBase64String([0x00]), // field number 0
        Convert.ToBase64String([0x08]), // code's tag without its value
        Convert.ToBase64String([0x12, 0x05, 0x61]), // a message shorter than its length
        Convert.ToBase64String([0x1A, 0x02, 0xFF, 0xFF]), // a detail that is not an Any
        Convert.ToBase64String([0x08, 0x00]), // code 0: not an error, so not believed
    };

    [Theory]
    [MemberData(nameof(BadDetailsBin))]
    public void ReadStatus_BadDetailsBin_FallsBackToGrpcStatusAndMessage(string detailsBin)
    {
        Headers trailers = Headers.CreateReceived();
        trailers.AddReceived("grpc-status", "7");
        trailers.AddReceived("grpc-message", "plain");
        trailers.AddReceived("grpc-status-details-bin", detailsBin);

        ConnectException error = GrpcProtocol.ReadStatus(trailers)!;

        Assert.Equal(Code.PermissionDenied, error.Code);
        Assert.Equal("plain", error.Message);
        Assert.Empty(error.Details);
    }

    [Theory]
    [InlineData(Code.Canceled, "")]
    [InlineData(Code.Internal, "boom")]
    [InlineData(Code.Unauthenticated, "\u00E9t\u00E9 \U0001F600 100%\r\n")]
    public void EncodeStatus_ThenTryDecodeStatus_RoundTrips(Code code, string message)
    {
        var error = new ConnectException(code, message);
        error.Details.Add(Any.Pack(new StringValue { Value = "first" }));
        error.Details.Add(Any.Pack(new StringValue { Value = "" }));
        error.Details.Add(Any.Pack(new Int64Value { Value = -42 }));

        string encoded = HeaderRules.EncodeBinary(GrpcProtocol.EncodeStatus(error));
        Assert.True(GrpcProtocol.TryDecodeStatus(encoded, out int decodedCode, out string? decodedMessage, out List<Any> details));

        Assert.Equal((int)code, decodedCode);
        Assert.Equal(message.Length == 0 ? null : message, decodedMessage);
        Assert.Equal(error.Details, details);
        Assert.Equal("type.googleapis.com/google.protobuf.StringValue", details[0].TypeUrl);
        Assert.Equal("first", details[0].Unpack<StringValue>().Value);
        Assert.Equal(-42, details[2].Unpack<Int64Value>().Value);
    }

    [Fact]
    public void TryDecodeStatus_UnknownFieldsAndWireTypes_AreSkipped()
    {
        Any detail = Any.Pack(new StringValue { Value = "kept" });
        using var buffer = new MemoryStream();
        var output = new CodedOutputStream(buffer);
        output.WriteTag(4, WireFormat.WireType.Varint);
        output.WriteUInt64(ulong.MaxValue);
        output.WriteTag(1, WireFormat.WireType.Varint);
        output.WriteInt32(14);
        output.WriteTag(5, WireFormat.WireType.LengthDelimited);
        output.WriteString("unknown");
        output.WriteTag(6, WireFormat.WireType.Fixed32);
        output.WriteFixed32(7);
        output.WriteTag(2, WireFormat.WireType.LengthDelimited);
        output.WriteString("known");
        output.WriteTag(7, WireFormat.WireType.Fixed64);
        output.WriteFixed64(8);
        output.WriteTag(1, WireFormat.WireType.Fixed32); // code with the wrong wire type: skipped
        output.WriteFixed32(99);
        output.WriteTag(3, WireFormat.WireType.LengthDelimited);
        output.WriteMessage(detail);
        output.WriteTag(1000, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFrom(1, 2, 3));
        output.Flush();

        Assert.True(GrpcProtocol.TryDecodeStatus(HeaderRules.EncodeBinary(buffer.ToArray()), out int code, out string? message, out List<Any> details));

        Assert.Equal(14, code);
        Assert.Equal("known", message);
        Assert.Equal([detail], details);
    }

    [Fact]
    public void TryDecodeStatus_Empty_IsCodeZero()
    {
        Assert.True(GrpcProtocol.TryDecodeStatus("", out int code, out string? message, out List<Any> details));

        Assert.Equal(0, code);
        Assert.Null(message);
        Assert.Empty(details);
    }

    [Fact]
    public void WriteWebTrailers_Trailers_WritesLowerCaseLinesWithoutFinalBlankLine()
    {
        Headers trailers = Headers.CreateReceived();
        trailers.AddReceived("grpc-status", "3");
        trailers.AddReceived("Grpc-Message", "bad%20input");
        trailers.AddReceived("X-Custom", "a");
        trailers.AddReceived("x-other", "v: with colon");
        trailers.AddReceived("x-custom", "b");
        trailers.AddReceived("x-empty", "");
        var output = new ArrayBufferWriter<byte>(1); // forces GetSpan to grow for each line

        GrpcProtocol.WriteWebTrailers(output, trailers);

        Assert.Equal(
            "grpc-status: 3\r\ngrpc-message: bad%20input\r\nx-custom: a\r\nx-other: v: with colon\r\nx-custom: b\r\nx-empty: \r\n",
            Encoding.ASCII.GetString(output.WrittenSpan));
    }

    [Fact]
    public void WriteWebTrailers_MultiValuedKey_WritesOneLinePerValue()
    {
        var trailers = new Headers();
        trailers.Add("x-multi", "1");
        trailers.Add("X-Multi", "2");
        trailers.Add("x-multi", "3");
        var output = new ArrayBufferWriter<byte>();

        GrpcProtocol.WriteWebTrailers(output, trailers);

        Assert.Equal("x-multi: 1\r\nx-multi: 2\r\nx-multi: 3\r\n", Encoding.ASCII.GetString(output.WrittenSpan));
    }

    [Fact]
    public void WriteWebTrailers_Empty_WritesNothing()
    {
        var output = new ArrayBufferWriter<byte>();

        GrpcProtocol.WriteWebTrailers(output, Headers.CreateReceived());

        Assert.Equal(0, output.WrittenCount);
    }

    public static TheoryData<string, string[]> TrailerBlocks() => new()
    {
        { "", [] },
        { "\r\n", [] },
        { "grpc-status: 0\r\n", ["grpc-status: 0"] },
        { "grpc-status: 0\r\ngrpc-message: ok\r\n", ["grpc-status: 0", "grpc-message: ok"] },
        { "Grpc-Status: 3\r\ngRPC-Message: bad\r\nX-CUSTOM: Value\r\n", ["grpc-status: 3", "grpc-message: bad", "x-custom: Value"] },
        { "grpc-status:0\ngrpc-message:ok\n", ["grpc-status: 0", "grpc-message: ok"] }, // bare LF, no space
        { "  grpc-status  :\t 0 \t\r\n", ["grpc-status: 0"] },
        { "\r\n\r\ngrpc-status: 0\r\n\r\n\n\r\n", ["grpc-status: 0"] },
        { "grpc-status: 0", ["grpc-status: 0"] }, // no final line end
        { "x-url: http://host:80/path\r\n", ["x-url: http://host:80/path"] },
        { "x-empty:\r\nx-blank:   \r\n", ["x-empty: ", "x-blank: "] },
        { "x-a: 1\r\nx-a: 2\r\nX-A: 3\r\n", ["x-a: 1", "x-a: 2", "x-a: 3"] },
    };

    [Theory]
    [MemberData(nameof(TrailerBlocks))]
    public void ReadWebTrailers_Block_ReadsLowerCaseTrimmedEntries(string block, string[] expected)
    {
        Headers trailers = Headers.CreateReceived();

        GrpcProtocol.ReadWebTrailers(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(block)), trailers);

        Assert.Equal(expected, Lines(trailers));
    }

    [Fact]
    public void ReadWebTrailers_BlockSplitAcrossSegments_ReadsTheSame()
    {
        byte[] block = Encoding.ASCII.GetBytes("Grpc-Status: 5\r\ngrpc-message: not%20found\r\n");
        for (int split = 0; split <= block.Length; split++)
        {
            Headers trailers = Headers.CreateReceived();

            GrpcProtocol.ReadWebTrailers(Sequences.TwoSegments(block[..split], block[split..]), trailers);

            Assert.Equal(["grpc-status: 5", "grpc-message: not%20found"], Lines(trailers));
        }
    }

    [Theory]
    [InlineData("grpc-status 0\r\n")]
    [InlineData("grpc-status\r\n")]
    [InlineData(": 0\r\n")]
    [InlineData("  : 0\r\n")]
    [InlineData("grpc-status: 0\r\n folded continuation\r\n")]
    public void ReadWebTrailers_LineWithoutName_IsInternal(string block)
    {
        ConnectException error = Assert.Throws<ConnectException>(
            () => GrpcProtocol.ReadWebTrailers(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(block)), Headers.CreateReceived()));

        Assert.Equal(Code.Internal, error.Code);
        Assert.Contains("trailer line", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\r', error.Message);
    }

    [Fact]
    public void WriteWebTrailers_ThenRead_RoundTrips()
    {
        Headers written = Headers.CreateReceived();
        GrpcProtocol.AddStatus(written, new ConnectException(Code.Unavailable, "try: again\r\n"));
        written.AddReceived("x-trace", "abc");
        written.AddReceived("x-trace", "def");
        var output = new ArrayBufferWriter<byte>();
        GrpcProtocol.WriteWebTrailers(output, written);
        Headers read = Headers.CreateReceived();

        GrpcProtocol.ReadWebTrailers(new ReadOnlySequence<byte>(output.WrittenMemory), read);

        Assert.Equal(Lines(written), Lines(read));
        ConnectException error = GrpcProtocol.ReadStatus(read)!;
        Assert.Equal(Code.Unavailable, error.Code);
        Assert.Equal("try: again\r\n", error.Message);
    }

    [Theory]
    [InlineData(0, "")]
    [InlineData(1, "AA==")]
    [InlineData(2, "AAE=")]
    [InlineData(3, "AAEC")]
    [InlineData(4, "AAECAw==")]
    [InlineData(5, "AAECAwQ=")]
    public void WriteBase64_Bytes_WritesPaddedBase64(int length, string expected)
    {
        byte[] bytes = [.. Enumerable.Range(0, length).Select(i => (byte)i)];
        var output = new ArrayBufferWriter<byte>(1);

        GrpcProtocol.WriteBase64(output, bytes);

        Assert.Equal(expected, Encoding.ASCII.GetString(output.WrittenSpan));
    }

    private static string DetailsBin(ConnectException error) => HeaderRules.EncodeBinary(GrpcProtocol.EncodeStatus(error));

    private static string[] Lines(Headers headers) => [.. headers.Select(entry => $"{entry.Key}: {entry.Value}")];
}
