using System.Buffers;
using System.Text;
using Connectrpc.Greet.V1;
using ConnectRpc.Internal;

namespace ConnectRpc.Tests;

public sealed class CodecTests
{
    public static TheoryData<Codec> Codecs() => [Codec.Proto, Codec.Json];

    [Theory]
    [MemberData(nameof(Codecs))]
    public void Serialize_ThenDeserialize_RoundTrips(Codec codec)
    {
        MessageCodec messageCodec = MessageCodec.For(codec);
        var output = new ArrayBufferWriter<byte>();
        var message = new GreetRequest { Name = "Ada ✓ \"quoted\"" };

        messageCodec.Serialize(message, output);
        GreetRequest back = messageCodec.Deserialize(GreetRequest.Parser, new ReadOnlySequence<byte>(output.WrittenMemory));

        Assert.Equal(message, back);
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void Deserialize_EmptyInput_IsTheEmptyMessage(Codec codec)
    {
        GreetRequest message = MessageCodec.For(codec).Deserialize(GreetRequest.Parser, ReadOnlySequence<byte>.Empty);

        Assert.Equal(new GreetRequest(), message);
    }

    [Fact]
    public void Json_UsesProtoJsonMapping()
    {
        var output = new ArrayBufferWriter<byte>();

        MessageCodec.Json.Serialize(new GreetRequest { Name = "Ada" }, output);

        Assert.Equal("{\"name\":\"Ada\"}", Encoding.UTF8.GetString(output.WrittenSpan));
        Assert.Equal("json", MessageCodec.Json.Name);
        Assert.Equal("proto", MessageCodec.Proto.Name);
    }

    [Fact]
    public void Json_UnknownField_IsIgnoredForForwardCompatibility()
    {
        byte[] json = Encoding.UTF8.GetBytes("{\"name\": \"Ada\", \"addedInV2\": {\"x\": [1, 2]}}");

        GreetRequest message = MessageCodec.Json.Deserialize(GreetRequest.Parser, new ReadOnlySequence<byte>(json));

        Assert.Equal("Ada", message.Name);
    }

    public static TheoryData<Codec, byte[]> Malformed() => new()
    {
        { Codec.Proto, [0xFF, 0xFF, 0xFF] },
        { Codec.Proto, [0x0A, 0x05, 0x41] },
        { Codec.Json, Encoding.UTF8.GetBytes("{\"name\": ") },
        { Codec.Json, Encoding.UTF8.GetBytes("{\"name\": 42}") },
        { Codec.Json, Encoding.UTF8.GetBytes("[1,2]") },
        { Codec.Json, [0x7B, 0xC3, 0x28, 0x7D] },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Deserialize_Malformed_ThrowsMessageDecodeException(Codec codec, byte[] input)
    {
        MessageDecodeException error = Assert.Throws<MessageDecodeException>(
            () => MessageCodec.For(codec).Deserialize(GreetRequest.Parser, new ReadOnlySequence<byte>(input)));

        Assert.StartsWith($"cannot decode {MessageCodec.For(codec).Name} message", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, true)]
    [InlineData(5, true)] // exactly the threshold: compressed
    [InlineData(6, false)]
    public void Encode_CompressMinBytes_CompressesFromTheThresholdOn(int compressMinBytes, bool expected)
    {
        var message = new GreetRequest { Name = "Ada" }; // 5 bytes serialized

        using PooledBufferWriter encoded = MessageFraming.Encode(message, MessageCodec.Proto, Compressor.Gzip, int.MaxValue, out bool compressed, compressMinBytes);
        int direct = MessageFraming.DirectProtoSize(message, MessageCodec.Proto, Compressor.Gzip, int.MaxValue, compressMinBytes);

        Assert.Equal(expected, compressed);
        Assert.Equal(expected ? -1 : 5, direct); // written straight into its frame exactly when not compressed
        Assert.Equal(message, MessageFraming.Decode(GreetRequest.Parser, MessageCodec.Proto, encoded.WrittenSequence, compressed ? Compressor.Gzip : null, int.MaxValue));
    }

    [Fact]
    public void Encode_EmptyMessage_NeverCompressed()
    {
        using PooledBufferWriter encoded = MessageFraming.Encode(new GreetRequest(), MessageCodec.Proto, Compressor.Gzip, int.MaxValue, out bool compressed);

        Assert.False(compressed);
        Assert.Equal(0, encoded.WrittenCount);
    }
}
