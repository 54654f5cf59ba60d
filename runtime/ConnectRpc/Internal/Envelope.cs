using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;

namespace ConnectRpc.Internal;

/// <summary>Flag bits of the 5-byte envelope prefix (Connect streaming, gRPC, gRPC-Web).</summary>
[Flags]
internal enum EnvelopeFlags : byte
{
    None = 0,

    /// <summary>The payload is compressed with the negotiated encoding.</summary>
    Compressed = 0x01,

    /// <summary>Connect: the frame is the end-of-stream JSON.</summary>
    EndStream = 0x02,

    /// <summary>gRPC-Web: the frame holds the trailers.</summary>
    Trailers = 0x80,
}

/// <summary>One frame: its flags and its payload (valid until the next read).</summary>
internal readonly record struct EnvelopeFrame(EnvelopeFlags Flags, ReadOnlySequence<byte> Payload)
{
    /// <summary>Whether the frame carries <paramref name="flag"/>.</summary>
    public bool Has(EnvelopeFlags flag) => (Flags & flag) != 0;

    /// <summary>Throws a protocol error (<paramref name="code"/>) when the frame carries a flag outside <paramref name="allowed"/>.</summary>
    /// <param name="allowed">The flags this kind of frame may carry.</param>
    /// <param name="code">The code of the error: invalid_argument for a request, internal for a response.</param>
    /// <param name="what">What the frame is, for the message ("a request message").</param>
    public void CheckFlags(EnvelopeFlags allowed, Code code, string what)
    {
        if ((Flags & ~allowed) != 0)
        {
            throw new ConnectException(code, $"protocol error: invalid envelope flags 0x{(byte)Flags:x2} on {what}");
        }
    }

    /// <summary>
    /// The compressor of the frame's payload: null when it is not compressed, the call's
    /// <paramref name="compressor"/> when it is. A compressed frame in a call that negotiated no
    /// compression is a protocol error (<paramref name="code"/>).
    /// </summary>
    public Compressor? CompressorFor(Compressor? compressor, Code code, string what)
    {
        if (!Has(EnvelopeFlags.Compressed))
        {
            return null;
        }

        return compressor ?? throw new ConnectException(code, $"protocol error: {what} is marked compressed but the call negotiated no compression");
    }
}

/// <summary>The envelope prefix: 1 flags byte, then the payload length as a 4-byte big-endian integer.</summary>
internal static class Envelope
{
    public const int PrefixLength = 5;

    public static void WritePrefix(Span<byte> destination, EnvelopeFlags flags, int length)
    {
        destination[0] = (byte)flags;
        BinaryPrimitives.WriteUInt32BigEndian(destination[1..], (uint)length);
    }

    /// <summary>Writes a whole frame to <paramref name="output"/>.</summary>
    public static void WriteFrame(IBufferWriter<byte> output, EnvelopeFlags flags, ReadOnlySpan<byte> payload)
    {
        Span<byte> span = output.GetSpan(PrefixLength + payload.Length);
        WritePrefix(span, flags, payload.Length);
        payload.CopyTo(span[PrefixLength..]);
        output.Advance(PrefixLength + payload.Length);
    }

    /// <summary>
    /// Reads the prefix at the start of <paramref name="buffer"/> when all five bytes are
    /// there, wherever the segment boundaries fall. The length is unsigned on the wire.
    /// </summary>
    public static bool TryReadPrefix(in ReadOnlySequence<byte> buffer, out EnvelopeFlags flags, out uint length)
    {
        if (buffer.Length < PrefixLength)
        {
            flags = EnvelopeFlags.None;
            length = 0;
            return false;
        }

        Span<byte> copy = stackalloc byte[PrefixLength];
        scoped ReadOnlySpan<byte> prefix = buffer.FirstSpan;
        if (prefix.Length < PrefixLength)
        {
            // The prefix straddles segments.
            buffer.Slice(0, PrefixLength).CopyTo(copy);
            prefix = copy;
        }

        flags = (EnvelopeFlags)prefix[0];
        length = BinaryPrimitives.ReadUInt32BigEndian(prefix[1..]);
        return true;
    }
}

/// <summary>
/// Reads envelopes from a <see cref="PipeReader"/> without copying payloads. A frame's
/// payload stays valid until the next <see cref="ReadAsync"/>. The length prefix is checked
/// against the limit before the payload is buffered, so an oversized frame costs nothing.
/// </summary>
internal sealed class EnvelopeReader(PipeReader reader, int maxMessageSize, Code malformedCode)
{
    private SequencePosition? _consumed;
    // The read that gave the last frame also showed the end of the input right after it, so
    // the next read needs no trip to the pipe (the usual unary body: one frame, then the end).
    private bool _endSeen;

    /// <summary>
    /// The next frame, or null at a clean end of input. Throws <see cref="ConnectException"/>:
    /// <see cref="Code.ResourceExhausted"/> for a frame over the limit, the malformed-input code given at construction
    /// for input that ends inside a frame.
    /// </summary>
    public ValueTask<EnvelopeFrame?> ReadAsync(CancellationToken cancellationToken)
    {
        Release();
        if (_endSeen)
        {
            return ValueTask.FromResult<EnvelopeFrame?>(null);
        }

        // Input already buffered (most small messages) is framed without a state machine.
        ValueTask<ReadResult> read = reader.ReadOrThrowAsync(cancellationToken);
        while (read.IsCompletedSuccessfully)
        {
            if (TryTake(read.Result, out EnvelopeFrame? frame))
            {
                return ValueTask.FromResult(frame);
            }

            read = reader.ReadOrThrowAsync(cancellationToken);
        }

        return ReadPendingAsync(read, cancellationToken);
    }

    private async ValueTask<EnvelopeFrame?> ReadPendingAsync(ValueTask<ReadResult> read, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (TryTake(await read.ConfigureAwait(false), out EnvelopeFrame? frame))
            {
                return frame;
            }

            read = reader.ReadOrThrowAsync(cancellationToken);
        }
    }

    /// <summary>
    /// The frame at the start of a read's buffer, or null at a clean end: true once decided.
    /// False when the frame is still incomplete, after handing the buffer back for more.
    /// </summary>
    private bool TryTake(in ReadResult result, out EnvelopeFrame? frame)
    {
        ReadOnlySequence<byte> buffer = result.Buffer;
        if (Envelope.TryReadPrefix(buffer, out EnvelopeFlags flags, out uint length))
        {
            if (length > (uint)maxMessageSize)
            {
                reader.AdvanceTo(buffer.Start);
                throw new ConnectException(
                    Code.ResourceExhausted,
                    $"message size {length} is larger than the limit of {maxMessageSize} bytes");
            }

            long frameLength = Envelope.PrefixLength + (long)length;
            if (buffer.Length >= frameLength)
            {
                ReadOnlySequence<byte> whole = buffer.Slice(0, frameLength);
                _consumed = whole.End;
                _endSeen = result.IsCompleted && buffer.Length == frameLength;
                frame = new EnvelopeFrame(flags, whole.Slice(Envelope.PrefixLength));
                return true;
            }
        }

        if (result.IsCompleted)
        {
            long have = buffer.Length;
            reader.AdvanceTo(buffer.End);
            if (have == 0)
            {
                frame = null;
                return true;
            }

            throw new ConnectException(
                malformedCode,
                have < Envelope.PrefixLength
                    ? $"protocol error: incomplete envelope: {have} of {Envelope.PrefixLength} prefix bytes"
                    : $"protocol error: incomplete envelope: the body ended {Envelope.PrefixLength + (long)length - have} bytes short of the declared length {length}");
        }

        reader.AdvanceTo(buffer.Start, buffer.End);
        frame = null;
        return false;
    }

    /// <summary>
    /// Gives the last frame's bytes back to the reader, ending its read, so the owner of the
    /// pipe (Kestrel drains a request body after the call) can use it again.
    /// </summary>
    public void Release()
    {
        if (_consumed is { } consumed)
        {
            _consumed = null;
            reader.AdvanceTo(consumed);
        }
    }
}
