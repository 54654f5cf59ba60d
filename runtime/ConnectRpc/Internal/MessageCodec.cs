using System.Buffers;
using System.Text;
using Google.Protobuf;

namespace ConnectRpc.Internal;

/// <summary>Encodes and decodes messages for one wire codec.</summary>
internal abstract class MessageCodec
{
    public static MessageCodec Proto { get; } = new ProtoCodec();

    public static MessageCodec Json { get; } = new JsonCodec();

    /// <summary>The codec's name in content types: <c>proto</c> or <c>json</c>.</summary>
    public abstract string Name { get; }

    public static MessageCodec For(Codec codec) => codec switch
    {
        Codec.Proto => Proto,
        Codec.Json => Json,
        _ => throw new ArgumentOutOfRangeException(nameof(codec), codec, "Unknown codec."),
    };

    /// <summary>
    /// The codec a content-type suffix or a GET <c>encoding</c> parameter names
    /// (<c>proto</c> or <c>json</c>, any case), or null.
    /// </summary>
    public static MessageCodec? Named(ReadOnlySpan<char> name) =>
        name.Equals("proto", StringComparison.OrdinalIgnoreCase) ? Proto
        : name.Equals("json", StringComparison.OrdinalIgnoreCase) ? Json
        : null;

    /// <summary>A media type without its parameters (<c>; charset=utf-8</c> and the like).</summary>
    public static ReadOnlySpan<char> WithoutParameters(ReadOnlySpan<char> mediaType)
    {
        int parameters = mediaType.IndexOf(';');
        return parameters >= 0 ? mediaType[..parameters] : mediaType;
    }

    /// <summary>Appends the encoded message to <paramref name="output"/>.</summary>
    public abstract void Serialize<T>(T message, IBufferWriter<byte> output)
        where T : class, IMessage<T>;

    /// <summary>
    /// Decodes a message. Malformed input throws <see cref="MessageDecodeException"/>; the
    /// caller picks the code, as it depends on the direction (invalid_argument on a server,
    /// internal on a client).
    /// </summary>
    public T Deserialize<T>(MessageParser<T> parser, ReadOnlySequence<byte> data)
        where T : class, IMessage<T>
    {
        try
        {
            return DeserializeCore(parser, data);
        }
        catch (Exception ex) when (ex is InvalidProtocolBufferException or InvalidJsonException or DecoderFallbackException)
        {
            throw new MessageDecodeException($"cannot decode {Name} message: {ex.Message}", ex);
        }
    }

    protected abstract T DeserializeCore<T>(MessageParser<T> parser, ReadOnlySequence<byte> data)
        where T : class, IMessage<T>;

    private sealed class ProtoCodec : MessageCodec
    {
        public override string Name => "proto";

        public override void Serialize<T>(T message, IBufferWriter<byte> output)
        {
            int size = message.CalculateSize();
            if (size > 0)
            {
                message.WriteTo(output.GetSpan(size)[..size]);
                output.Advance(size);
            }
        }

        protected override T DeserializeCore<T>(MessageParser<T> parser, ReadOnlySequence<byte> data) => parser.ParseFrom(data);
    }

    private sealed class JsonCodec : MessageCodec
    {
        // Strict UTF-8: invalid bytes are an error, not replacement characters.
        private static readonly UTF8Encoding s_utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

        // Unknown fields are skipped, so a peer built from a newer schema can still talk to
        // this one (connect-go does the same); everything else in the JSON must be valid.
        private static readonly JsonParser s_parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(true));

        public override string Name => "json";

        public override void Serialize<T>(T message, IBufferWriter<byte> output)
        {
            string json = JsonFormatter.Default.Format(message);
            int count = s_utf8.GetByteCount(json);
            s_utf8.GetBytes(json, output.GetSpan(count));
            output.Advance(count);
        }

        protected override T DeserializeCore<T>(MessageParser<T> parser, ReadOnlySequence<byte> data)
        {
            string json = s_utf8.GetString(data);
            // An empty body is the empty message, as for the binary codec.
            return json.Length == 0 ? parser.ParseFrom(ReadOnlySequence<byte>.Empty) : (T)s_parser.Parse(json, DescriptorOf(parser));
        }

        private static Google.Protobuf.Reflection.MessageDescriptor DescriptorOf<T>(MessageParser<T> parser)
            where T : class, IMessage<T> =>
            DescriptorCache<T>.Value ??= parser.ParseFrom(ReadOnlySequence<byte>.Empty).Descriptor;

        private static class DescriptorCache<T>
        {
            public static Google.Protobuf.Reflection.MessageDescriptor? Value;
        }
    }
}

/// <summary>A message could not be decoded; the caller turns it into the code of its direction.</summary>
internal sealed class MessageDecodeException(string message, Exception inner) : Exception(message, inner);
