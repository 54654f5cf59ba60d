using System.Buffers;
using System.Text;
using Connectrpc.Greet.V1;
using Connectrpc.Jsonany.Payload.V1;
using Connectrpc.Jsonany.V1;
using ConnectRpc.Internal;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace ConnectRpc.Tests;

/// <summary>
/// The JSON codec against the rules Go's protojson fixes (the reference of the Connect
/// implementations): names, 64-bit integers, enums, non-finite numbers, null, unknown fields,
/// bytes, well-known types; Any through the method's type registry; compact output.
/// </summary>
public sealed class JsonCodecTests
{
    private static readonly JsonCodec s_codec = AnyServiceConnect.EchoMethod.JsonCodec;

    private static string Write(IMessage message)
    {
        var output = new ArrayBufferWriter<byte>();
        s_codec.Serialize((dynamic)message, output);
        return Encoding.UTF8.GetString(output.WrittenSpan);
    }

    private static string Write<T>(T message)
        where T : class, IMessage<T>
    {
        var output = new ArrayBufferWriter<byte>();
        s_codec.Serialize(message, output);
        return Encoding.UTF8.GetString(output.WrittenSpan);
    }

    private static T Read<T>(MessageParser<T> parser, string json)
        where T : class, IMessage<T> =>
        s_codec.Deserialize(parser, new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(json)));

    [Fact]
    public void Names_LowerCamelCaseAndJsonName_BothSpellingsRead()
    {
        Assert.Equal("""{"int32Value":1,"renamed":"x"}""", Write(new Scalars { Int32Value = 1, CustomName = "x" }));

        Assert.Equal(new Scalars { Int32Value = 1, CustomName = "x" }, Read(Scalars.Parser, """{"int32_value":1,"custom_name":"x"}"""));
        Assert.Equal(new Scalars { Int32Value = 1, CustomName = "x" }, Read(Scalars.Parser, """{"int32Value":1,"renamed":"x"}"""));
    }

    [Fact]
    public void SixtyFourBitIntegers_WrittenAsStrings_ReadFromStringsOrNumbers()
    {
        var message = new Scalars
        {
            Int64Value = long.MinValue,
            Uint64Value = ulong.MaxValue,
            Sint64Value = -5,
            Fixed64Value = 7,
            WrappedInt64 = 9,
            Int64List = { 1, -2 },
            Int64Map = { [-3] = "minus three" },
        };

        Assert.Equal(
            """{"int64Value":"-9223372036854775808","uint64Value":"18446744073709551615","sint64Value":"-5","fixed64Value":"7","int64List":["1","-2"],"int64Map":{"-3":"minus three"},"wrappedInt64":"9"}""",
            Write(message));
        Assert.Equal(message, Read(Scalars.Parser, Write(message)));
        Assert.Equal(
            new Scalars { Int64Value = 12, Uint64Value = 34, WrappedInt64 = 56, Int64List = { 7 } },
            Read(Scalars.Parser, """{"int64Value":12,"uint64Value":34,"wrappedInt64":56,"int64List":[7]}"""));
        // An exponent is fine when the value is integral, as protojson reads it.
        Assert.Equal(new Scalars { Int64Value = 100, Int32Value = 200 }, Read(Scalars.Parser, """{"int64Value":1e2,"int32Value":"2e2"}"""));
    }

    [Fact]
    public void Enums_WrittenAsNames_ReadFromNamesOrNumbers_UnknownNumbersKept()
    {
        Assert.Equal("""{"color":"COLOR_RED","colors":["COLOR_GREEN",7]}""", Write(new Scalars { Color = Color.Red, Colors = { Color.Green, (Color)7 } }));

        Assert.Equal(new Scalars { Color = Color.Green, Colors = { Color.Red, (Color)7 } }, Read(Scalars.Parser, """{"color":2,"colors":["COLOR_RED",7]}"""));
    }

    [Fact]
    public void Enums_UnknownName_IsIgnoredLikeAnUnknownField()
    {
        // protojson with DiscardUnknown (connect-go's setting) drops an enum name it does not know.
        Assert.Equal(new Scalars { Int32Value = 1 }, Read(Scalars.Parser, """{"color":"COLOR_PURPLE","int32Value":1}"""));
    }

    [Fact]
    public void NonFiniteNumbers_WrittenAsStrings_Read()
    {
        Assert.Equal("""{"doubleValue":"NaN","floatValue":"-Infinity"}""", Write(new Scalars { DoubleValue = double.NaN, FloatValue = float.NegativeInfinity }));
        Assert.Equal("""{"doubleValue":"Infinity","floatValue":0.1}""", Write(new Scalars { DoubleValue = double.PositiveInfinity, FloatValue = 0.1f }));

        Scalars read = Read(Scalars.Parser, """{"doubleValue":"NaN","floatValue":"Infinity"}""");
        Assert.True(double.IsNaN(read.DoubleValue));
        Assert.Equal(float.PositiveInfinity, read.FloatValue);
        Assert.Equal(-1.5, Read(Scalars.Parser, """{"doubleValue":"-1.5"}""").DoubleValue);
    }

    [Fact]
    public void Null_IsTheDefault_ExceptForValue()
    {
        Scalars read = Read(
            Scalars.Parser,
            """{"int32Value":null,"int64Value":null,"color":null,"timestamp":null,"int64List":null,"int64Map":null,"wrappedInt64":null,"optionalValue":null,"choiceText":null,"value":null}""");

        Assert.Equal(new Scalars { Value = Value.ForNull() }, read);
        Assert.Null(read.Timestamp);
        Assert.False(read.HasOptionalValue);
        Assert.Equal(Scalars.ChoiceOneofCase.None, read.ChoiceCase);
    }

    [Fact]
    public void UnknownFields_AreIgnored()
    {
        Assert.Equal(
            new Scalars { Int32Value = 3 },
            Read(Scalars.Parser, """{"addedLater":{"a":[1,null,"x"]},"int32Value":3,"alsoNew":"y"}"""));
    }

    [Fact]
    public void Defaults_AreOmitted_PresenceKept()
    {
        Assert.Equal("{}", Write(new Scalars()));
        Assert.Equal("""{"optionalValue":0,"choiceText":""}""", Write(new Scalars { OptionalValue = 0, ChoiceText = "" }));
    }

    [Fact]
    public void Bytes_StandardPaddedBase64()
    {
        var bytes = ByteString.CopyFrom(0xfb, 0xff, 0xfe, 0x01);
        Assert.Equal("""{"bytesValue":"+//+AQ=="}""", Write(new Scalars { BytesValue = bytes }));

        Assert.Equal(bytes, Read(Scalars.Parser, """{"bytesValue":"+//+AQ=="}""").BytesValue);
    }

    /// <summary>
    /// Where Google.Protobuf's parser differs from protojson, kept (README, "JSON"): each is JSON no
    /// Connect implementation writes. This fails when Google.Protobuf changes, so the README can follow.
    /// </summary>
    [Fact]
    public void KnownDifferencesFromProtoJson_OnlyInJsonNoPeerWrites()
    {
        // protojson also reads URL-safe and unpadded base64; every implementation writes standard padded base64.
        Assert.Throws<MessageDecodeException>(() => Read(Scalars.Parser, """{"bytesValue":"-__-AQ=="}"""));
        Assert.Throws<MessageDecodeException>(() => Read(Scalars.Parser, """{"bytesValue":"+//+AQ"}"""));
        // protojson refuses a field named twice; here the last one wins.
        Assert.Equal(2, Read(Scalars.Parser, """{"int32Value":1,"int32_value":2}""").Int32Value);
        // A 64-bit integer as a JSON number goes through a double (exact up to 2^53); implementations write strings.
        Assert.Equal(9007199254740992, Read(Scalars.Parser, """{"int64Value":9007199254740993}""").Int64Value);
        Assert.Equal(9007199254740993, Read(Scalars.Parser, """{"int64Value":"9007199254740993"}""").Int64Value);
        // Google.Protobuf escapes <, > and some invisible characters; protojson writes them as they are (the same JSON).
        Assert.Equal("""{"stringValue":"\u003ca\u003e\u2028"}""", Write(new Scalars { StringValue = "<a>\u2028" }));
    }

    [Fact]
    public void WellKnownTypes_TheirOwnJson()
    {
        var message = new Scalars
        {
            Timestamp = new Timestamp { Seconds = 1, Nanos = 500_000_000 },
            Duration = new Duration { Seconds = -1, Nanos = -500_000_000 },
            FieldMask = FieldMask.FromString("int32_value,struct_value"),
            StructValue = new Struct { Fields = { ["a"] = Value.ForList(Value.ForNumber(1), Value.ForString("s b"), Value.ForBool(true), Value.ForNull()) } },
        };

        Assert.Equal(
            """{"structValue":{"a":[1,"s b",true,null]},"timestamp":"1970-01-01T00:00:01.500Z","duration":"-1.500s","fieldMask":"int32Value,structValue"}""",
            Write(message));
        Assert.Equal(message, Read(Scalars.Parser, Write(message)));
    }

    [Fact]
    public void Any_OfThisFileImportsTransitiveImportAndWellKnownTypes_RoundTrips()
    {
        var bag = new Bag
        {
            Items =
            {
                Any.Pack(new Note { Text = "same file" }),
                Any.Pack(new Receipt { Id = "r", Amount = 5 }),
                Any.Pack(new Stamp { By = "two imports away" }),
                Any.Pack(Duration.FromTimeSpan(TimeSpan.FromSeconds(2))),
                Any.Pack(new Empty()),
                Any.Pack(Value.ForStruct(new Struct { Fields = { ["k"] = Value.ForString("v") } })),
                Any.Pack(new Int64Value { Value = 3 }),
                Any.Pack(Any.Pack(new Note { Text = "nested" })),
            },
        };

        string json = Write(bag);

        Assert.Equal(
            """{"items":[{"@type":"type.googleapis.com/connectrpc.jsonany.v1.Note","text":"same file"},""" +
            """{"@type":"type.googleapis.com/connectrpc.jsonany.payload.v1.Receipt","id":"r","amount":"5"},""" +
            """{"@type":"type.googleapis.com/connectrpc.jsonany.payload.v1.Stamp","by":"two imports away"},""" +
            """{"@type":"type.googleapis.com/google.protobuf.Duration","value":"2s"},""" +
            """{"@type":"type.googleapis.com/google.protobuf.Empty"},""" +
            """{"@type":"type.googleapis.com/google.protobuf.Value","value":{"k":"v"}},""" +
            """{"@type":"type.googleapis.com/google.protobuf.Int64Value","value":"3"},""" +
            """{"@type":"type.googleapis.com/google.protobuf.Any","value":{"@type":"type.googleapis.com/connectrpc.jsonany.v1.Note","text":"nested"}}]}""",
            json);
        Assert.Equal(bag, Read(Bag.Parser, json));
    }

    [Fact]
    public void Any_OfAWellKnownTypeWithoutAJsonFormOfItsOwn_FieldsBesideTheType()
    {
        // As protojson writes them, and reads them: Google.Protobuf alone would nest them under "value".
        var bag = new Bag
        {
            Items =
            {
                Any.Pack(new SourceContext { FileName = "a.proto" }),
                Any.Pack(new Google.Protobuf.WellKnownTypes.Type { Name = "t", SourceContext = new SourceContext { FileName = "b.proto" } }),
                Any.Pack(Any.Pack(new Empty())),
            },
        };

        string json = Write(bag);

        Assert.Equal(
            """{"items":[{"@type":"type.googleapis.com/google.protobuf.SourceContext","fileName":"a.proto"},""" +
            """{"@type":"type.googleapis.com/google.protobuf.Type","name":"t","sourceContext":{"fileName":"b.proto"}},""" +
            """{"@type":"type.googleapis.com/google.protobuf.Any","value":{"@type":"type.googleapis.com/google.protobuf.Empty"}}]}""",
            json);
        Assert.Equal(bag, Read(Bag.Parser, json));
        Assert.Equal(bag, Read(Bag.Parser, """{"items":[{"fileName":"a.proto","@type":"type.googleapis.com/google.protobuf.SourceContext"},{"@type":"type.googleapis.com/google.protobuf.Type","value":{"name":"t","sourceContext":{"fileName":"b.proto"}}},{"@type":"type.googleapis.com/google.protobuf.Any","value":{"@type":"type.googleapis.com/google.protobuf.Empty","value":{}}}]}"""));
    }

    [Fact]
    public void TypeRegistry_WalksTheServiceFilesImportsTransitively()
    {
        Google.Protobuf.Reflection.TypeRegistry registry = AnyServiceConnect.EchoMethod.TypeRegistry;

        Assert.NotNull(registry.Find("connectrpc.jsonany.v1.Note"));
        Assert.NotNull(registry.Find("connectrpc.jsonany.payload.v1.Stamp"));
        Assert.NotNull(registry.Find("google.protobuf.Empty"));
        Assert.Null(registry.Find("connectrpc.greet.v1.GreetRequest"));
        Assert.Same(registry, AnyServiceConnect.EchoChatMethod.TypeRegistry);
        Assert.Equal("connectrpc.jsonany.v1.AnyService", AnyServiceConnect.EchoMethod.ServiceDescriptor!.FullName);
    }

    [Fact]
    public void HandWrittenMethod_WithoutDescriptor_KnowsItsMessagesFiles()
    {
        var method = new Method<Bag, Scalars>("x.v1.S", "M", MethodKind.Unary, Bag.Parser, Scalars.Parser);

        Assert.Null(method.ServiceDescriptor);
        Assert.NotNull(method.TypeRegistry.Find("connectrpc.jsonany.payload.v1.Receipt"));
        Assert.NotNull(method.TypeRegistry.Find("google.protobuf.Timestamp"));
    }

    [Fact]
    public void With_AddsTypesAndTheirFiles()
    {
        JsonCodec more = s_codec.With([GreetRequest.Descriptor]);

        Assert.NotNull(more.Registry.Find("connectrpc.greet.v1.GreetResponse"));
        Assert.Null(s_codec.Registry.Find("connectrpc.greet.v1.GreetRequest"));
        Assert.Same(s_codec, s_codec.With([]));
    }

    [Fact]
    public void Any_OfAnUnknownType_EncodeAndDecodeFailClearly()
    {
        var bag = new Bag { Items = { new Any { TypeUrl = "type.googleapis.com/not.Known", Value = ByteString.Empty } } };

        MessageEncodeException encode = Assert.Throws<MessageEncodeException>(() => Write(bag));
        Assert.Equal(Code.Internal, encode.Code);
        Assert.Contains("not.Known", encode.Message, StringComparison.Ordinal);

        MessageDecodeException decode = Assert.Throws<MessageDecodeException>(() => Read(Bag.Parser, """{"items":[{"@type":"type.googleapis.com/not.Known","x":1}]}"""));
        Assert.Contains("not.Known", decode.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Any_HugeTypeUrl_FailsAsCorruptInput_OnASmallStack()
    {
        // A request may carry an @type of any length beside a well-known type's Any (which makes
        // the codec look at every @type): reading it must cost no stack in proportion to it.
        string hugeType = "type.googleapis.com/" + new string('x', 400_000);
        string json = "{\"items\":[{\"@type\":\"type.googleapis.com/google.protobuf.Empty\"},{\"@type\":\"" + hugeType + "\"}]}";
        Exception? failure = null;
        var thread = new Thread(
            () => failure = Record.Exception(() => Read(Bag.Parser, json)),
            maxStackSize: 256 * 1024);
        thread.Start();
        Assert.True(thread.Join(TimeSpan.FromSeconds(30)), "the decode did not finish");
        Assert.IsType<MessageDecodeException>(failure);
    }

    [Fact]
    public void Any_NestedPastTheRewritesDepthLimit_FailsAsAnEncodeError()
    {
        // A well-known type's Any is rewritten through System.Text.Json, whose reader stops at a depth of 64.
        Any any = Any.Pack(new Empty());
        for (int i = 0; i < 70; i++)
        {
            any = Any.Pack(any);
        }

        MessageEncodeException encode = Assert.Throws<MessageEncodeException>(() => Write(new Bag { Items = { any } }));
        Assert.Equal(Code.Internal, encode.Code);
    }

    [Fact]
    public void ConnectErrorDetails_BinaryValueRead_DebugIgnored()
    {
        // Connect's error JSON carries a detail as its type name and base64 binary; connect-go adds "debug" (its JSON).
        byte[] body = Encoding.UTF8.GetBytes(
            """{"code":"invalid_argument","message":"m","details":[{"type":"connectrpc.jsonany.v1.Note","value":"CgF4","debug":{"text":"x"}}]}""");

        ConnectException error = ConnectProtocol.ReadErrorBody(new ReadOnlySequence<byte>(body), Code.Unknown)!;

        Assert.Equal(Code.InvalidArgument, error.Code);
        Assert.Equal(new Note { Text = "x" }, error.GetDetail<Note>());
    }

    [Fact]
    public void Compact_SpacesOnlyInsideStrings()
    {
        var message = new Scalars
        {
            StringValue = " a \"b\" \\ { : , } \n\t é 😀 ",
            StructValue = new Struct { Fields = { ["k e y"] = Value.ForString(" v ") } },
        };

        string json = Write(message);

        // (Google.Protobuf escapes characters outside the BMP; protojson writes them as they are: the same JSON.)
        Assert.Equal("""{"stringValue":" a \"b\" \\ { : , } \n\t é \ud83d\ude00 ","structValue":{"k e y":" v "}}""", json);
        Assert.Equal(message, Read(Scalars.Parser, json));
    }

    [Fact]
    public void LoneSurrogate_CannotBeEncoded()
    {
        MessageEncodeException error = Assert.Throws<MessageEncodeException>(() => Write(new Scalars { StringValue = "a\ud800" }));
        Assert.Equal(Code.Internal, error.Code);
    }

    [Fact]
    public void Compact_CostsNoMoreThanTheFormattersString()
    {
        // The formatter's own string (the old way: format, then encode) against the compact writer.
        var message = new GreetRequest { Name = "Ada Lovelace" };
        var output = new ArrayBufferWriter<byte>(256);
        for (int i = 0; i < 100; i++)
        {
            output.ResetWrittenCount();
            s_codec.Serialize(message, output);
            _ = Encoding.UTF8.GetBytes(JsonFormatter.Default.Format(message));
        }

        const int Rounds = 10_000;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < Rounds; i++)
        {
            output.ResetWrittenCount();
            s_codec.Serialize(message, output);
        }

        long compact = (GC.GetAllocatedBytesForCurrentThread() - before) / Rounds;
        before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < Rounds; i++)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(JsonFormatter.Default.Format(message));
            output.ResetWrittenCount();
            output.Write(bytes);
        }

        long formatted = (GC.GetAllocatedBytesForCurrentThread() - before) / Rounds;
        TestContext.Current.TestOutputHelper?.WriteLine($"JSON encode of a small message: compact writer {compact} B, formatter string + UTF-8 {formatted} B");
        Assert.True(compact <= formatted, $"compact writer {compact} B per message, formatter string {formatted} B");
    }
}
