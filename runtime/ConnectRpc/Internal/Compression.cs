using System.Buffers;
using ConnectRpc.Internal;

namespace ConnectRpc;

/// <summary>
/// What the runtime does with a <see cref="Compressor"/>: the one negotiation, and compressing and
/// decompressing a whole message within the limits, whatever the implementation. Identity is
/// not a compressor: it is represented by null.
/// </summary>
public abstract partial class Compressor
{
    internal const string Identity = "identity";

    /// <summary>Whether <paramref name="name"/> means no compression (absent, empty or identity).</summary>
    internal static bool IsIdentity(ReadOnlySpan<char> name) =>
        name.Trim().IsEmpty || name.Trim().Equals(Identity, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The one compression negotiation of a call, for client and server, request and response,
    /// among the <paramref name="supported"/> compressors of the options.
    /// <paramref name="received"/> names the encoding of the peer's messages (its encoding
    /// header or GET parameter): absent, empty or <c>identity</c> is none, and a name not
    /// supported fails with <paramref name="unknownCode"/> (unimplemented for a
    /// server reading a request, internal for a client reading a response).
    /// <paramref name="peerAccepts"/>, the peer's ordered accept list, decides what to send
    /// back: the received encoding when there is one, else the first accepted entry
    /// supported, else none.
    /// </summary>
    internal static NegotiatedCompression Negotiate(CompressorSet supported, string? received, string? peerAccepts, Code unknownCode)
    {
        Compressor? compressor = null;
        if (received is not null && !IsIdentity(received))
        {
            compressor = supported.Find(received) ?? throw new ConnectException(
                unknownCode,
                (unknownCode == Code.Internal ? "protocol error: " : string.Empty) +
                $"unknown compression '{HeaderRules.Printable(received)}': supported encodings are {supported.Description}");
        }

        return new NegotiatedCompression(compressor, compressor ?? FirstAccepted(supported, peerAccepts));
    }

    /// <summary>The first entry of a peer's ordered accept list that is supported, or null.</summary>
    private static Compressor? FirstAccepted(CompressorSet supported, string? acceptList)
    {
        if (string.IsNullOrEmpty(acceptList) || supported.IsEmpty)
        {
            return null;
        }

        foreach (Range range in acceptList.AsSpan().Split(','))
        {
            ReadOnlySpan<char> entry = acceptList.AsSpan(range);
            int parameters = entry.IndexOf(';');
            if (parameters >= 0)
            {
                entry = entry[..parameters];
            }

            if (supported.Find(entry) is { } found)
            {
                return found;
            }
        }

        return null;
    }

    /// <summary>
    /// Compresses <paramref name="input"/> into <paramref name="output"/>. Any failure of the
    /// implementation is this side's: <see cref="ConnectException"/> (internal).
    /// </summary>
    internal void Compress(ReadOnlySequence<byte> input, IBufferWriter<byte> output)
    {
        try
        {
            using var target = new BufferWriterStream(output);
            using (Stream compressor = CreateCompressionStream(target) ?? throw new InvalidOperationException("CreateCompressionStream returned null"))
            {
                foreach (ReadOnlyMemory<byte> segment in input)
                {
                    compressor.Write(segment.Span);
                }
            }

            if (input.IsEmpty && target.Written == 0 && CompressedEmpty is { } empty)
            {
                // .NET's gzip and zlib streams write nothing at all for no input; a peer's decoder wants a whole (empty) stream.
                target.Write(empty);
            }
        }
        catch (Exception ex) when (ex is not ConnectException)
        {
            throw new ConnectException(Code.Internal, $"cannot compress a message with {Name}: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Decompresses <paramref name="input"/> into <paramref name="output"/>. Throws
    /// <see cref="ConnectException"/> (resource_exhausted) past <paramref name="maxSize"/>
    /// bytes, and <see cref="MessageDecodeException"/> for corrupt input: whatever an
    /// implementation throws (gzip's <see cref="InvalidDataException"/>, zstd's own exceptions,
    /// a truncated stream's <see cref="EndOfStreamException"/>, a custom compressor's bug).
    /// </summary>
    internal void Decompress(ReadOnlySequence<byte> input, PooledBufferWriter output, int maxSize)
    {
        try
        {
            using var source = new SequenceStream(input);
            using Stream decompressor = CreateDecompressionStream(source) ?? throw new InvalidOperationException("CreateDecompressionStream returned null");
            while (true)
            {
                // Never more than one byte past the limit is asked for, so no implementation can go further.
                Span<byte> block = output.GetSpan(4096);
                block = block[..(int)Math.Min(block.Length, maxSize + 1L - output.WrittenCount)];
                int read = decompressor.Read(block);
                if (read == 0)
                {
                    return;
                }

                if ((uint)read > (uint)block.Length)
                {
                    throw new InvalidOperationException($"the decompression stream returned {read} bytes for a block of {block.Length}");
                }

                output.Advance(read);
                if (output.WrittenCount > maxSize)
                {
                    throw new ConnectException(
                        Code.ResourceExhausted,
                        $"message is larger than the limit of {maxSize} bytes after {Name} decompression");
                }
            }
        }
        catch (Exception ex) when (ex is not ConnectException)
        {
            throw new MessageDecodeException($"cannot decompress {Name} data: {ex.Message}", ex);
        }
    }

    /// <summary>A read-only stream over a <see cref="ReadOnlySequence{T}"/>, without copying it.</summary>
    private sealed class SequenceStream(ReadOnlySequence<byte> sequence) : Stream
    {
        private ReadOnlySequence<byte> _remaining = sequence;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int count = (int)Math.Min(buffer.Length, _remaining.Length);
            _remaining.Slice(0, count).CopyTo(buffer);
            _remaining = _remaining.Slice(count);
            return count;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>
    /// The whole compressed form of no bytes, for a built-in compressor whose stream writes nothing
    /// when nothing is written to it; null when its stream is whole anyway.
    /// </summary>
    private protected virtual byte[]? CompressedEmpty => null;

    /// <summary>A write-only stream appending to an <see cref="IBufferWriter{T}"/>.</summary>
    private sealed class BufferWriterStream(IBufferWriter<byte> output) : Stream
    {
        /// <summary>How many bytes were written.</summary>
        public long Written { get; private set; }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            buffer.CopyTo(output.GetSpan(buffer.Length));
            output.Advance(buffer.Length);
            Written += buffer.Length;
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}

