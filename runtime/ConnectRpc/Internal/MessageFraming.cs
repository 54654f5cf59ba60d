using System.Buffers;
using Google.Protobuf;

namespace ConnectRpc.Internal;

/// <summary>
/// Encoding and decoding of one message with size limits and compression, shared by every
/// protocol and both directions.
/// </summary>
internal static class MessageFraming
{
    /// <summary>
    /// What a unary body, request or response, may hold beyond its message's size limit:
    /// compression overhead, an envelope, or a superfluous frame to reject with the right code.
    /// </summary>
    public const int UnaryBodySlack = 64 * 1024;

    /// <summary>A message size limit of the options, checked where it is set: it must be positive.</summary>
    public static int PositiveSize(int value, [System.Runtime.CompilerServices.CallerMemberName] string name = "") =>
        value > 0 ? value : throw new ArgumentOutOfRangeException(name, value, "The size must be positive.");

    /// <summary>
    /// Serializes <paramref name="message"/>, compressed when <paramref name="compressor"/> is
    /// set and the message is not empty and at least <paramref name="compressMinBytes"/> long
    /// (any message may go uncompressed, docs/wire/compression.md). <paramref name="compressEmpty"/>
    /// compresses an empty message too: a Connect unary request announces its encoding in a
    /// header, and a peer may expect the encoding it asked for on every request. Throws
    /// resource_exhausted past <paramref name="maxSize"/>. The caller disposes the returned buffer.
    /// </summary>
    public static PooledBufferWriter Encode<T>(
        T message, MessageCodec codec, Compressor? compressor, int maxSize, out bool compressed, int compressMinBytes = 0, bool compressEmpty = false)
        where T : class, IMessage<T>
    {
        var plain = new PooledBufferWriter();
        try
        {
            codec.Serialize(message, plain);
            if (plain.WrittenCount > maxSize)
            {
                throw TooLargeToSend(plain.WrittenCount, maxSize);
            }

            compressed = compressor is not null && (plain.WrittenCount > 0 || compressEmpty) && plain.WrittenCount >= compressMinBytes;
            if (!compressed)
            {
                return plain;
            }

            var packed = new PooledBufferWriter(plain.WrittenCount / 2);
            try
            {
                compressor!.Compress(plain.WrittenSequence, packed);
            }
            catch
            {
                packed.Dispose();
                throw;
            }

            plain.Dispose();
            return packed;
        }
        catch
        {
            plain.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The size of <paramref name="message"/> when it can be written straight into its frame by
    /// <see cref="WriteProtoFrame"/> (proto codec, not compressed: no intermediate buffer), or
    /// -1 when it needs <see cref="Encode"/>. A message below <paramref name="compressMinBytes"/>
    /// is not compressed, as <see cref="Encode"/> decides. Throws resource_exhausted past <paramref name="maxSize"/>.
    /// </summary>
    public static int DirectProtoSize<T>(T message, MessageCodec codec, Compressor? compressor, int maxSize, int compressMinBytes = 0)
        where T : class, IMessage<T>
    {
        if (codec != MessageCodec.Proto)
        {
            return -1;
        }

        int size = message.CalculateSize();
        if (size > maxSize)
        {
            throw TooLargeToSend(size, maxSize);
        }

        return compressor is null || size == 0 || size < compressMinBytes ? size : -1;
    }

    /// <summary>Writes an uncompressed proto frame of <paramref name="size"/> bytes (from <see cref="DirectProtoSize"/>), prefix and message in one span.</summary>
    public static void WriteProtoFrame<T>(IBufferWriter<byte> output, T message, int size)
        where T : class, IMessage<T>
    {
        Span<byte> frame = output.GetSpan(Envelope.PrefixLength + size);
        Envelope.WritePrefix(frame, EnvelopeFlags.None, size);
        message.WriteTo(frame.Slice(Envelope.PrefixLength, size));
        output.Advance(Envelope.PrefixLength + size);
    }

    private static ConnectException TooLargeToSend(long size, int maxSize) =>
        new(Code.ResourceExhausted, $"message size {size} is larger than the send limit of {maxSize} bytes");

    /// <summary>
    /// Decodes one message. <paramref name="compressor"/> is the encoding of a compressed
    /// payload, null for a plain one. Throws resource_exhausted past <paramref name="maxSize"/>
    /// (after decompression) and <see cref="MessageDecodeException"/> for bad bytes.
    /// </summary>
    public static T Decode<T>(MessageParser<T> parser, MessageCodec codec, ReadOnlySequence<byte> payload, Compressor? compressor, int maxSize)
        where T : class, IMessage<T>
    {
        // A zero-length payload is the empty message and is never decompressed.
        if (compressor is null || payload.IsEmpty)
        {
            if (payload.Length > maxSize)
            {
                throw new ConnectException(Code.ResourceExhausted, $"message size {payload.Length} is larger than the limit of {maxSize} bytes");
            }

            return codec.Deserialize(parser, payload);
        }

        using PooledBufferWriter plain = Decompress(payload, compressor, maxSize);
        return codec.Deserialize(parser, plain.WrittenSequence);
    }

    /// <summary>
    /// Decompresses a payload into a pooled buffer the caller disposes. Throws resource_exhausted
    /// past <paramref name="maxSize"/> and <see cref="MessageDecodeException"/> for corrupt data.
    /// </summary>
    public static PooledBufferWriter Decompress(ReadOnlySequence<byte> payload, Compressor compressor, int maxSize)
    {
        var plain = new PooledBufferWriter((int)Math.Min(payload.Length * 4, maxSize + 1L));
        try
        {
            compressor.Decompress(payload, plain, maxSize);
            return plain;
        }
        catch
        {
            plain.Dispose();
            throw;
        }
    }
}
