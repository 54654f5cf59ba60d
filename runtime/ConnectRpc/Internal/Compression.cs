using System.Buffers;
using System.IO.Compression;

namespace ConnectRpc.Internal;

/// <summary>
/// A message compression (docs/wire/compression.md). Identity is not a compressor: it is represented
/// by null. Decompression stops one byte past the size limit, so a compression bomb costs at
/// most the limit in memory.
/// </summary>
internal abstract class Compressor
{
    public const string Identity = "identity";

    public static Compressor Gzip { get; } = new GzipCompressor();

    public static Compressor Brotli { get; } = new BrotliCompressor();

    /// <summary>The names this runtime accepts, in order of preference, as sent in accept headers.</summary>
    public const string AcceptList = "gzip, br";

    public abstract string Name { get; }

    /// <summary>The compressor named <paramref name="name"/> (case-insensitive), or null when unknown.</summary>
    public static Compressor? Find(ReadOnlySpan<char> name) =>
        name.Trim().Equals("gzip", StringComparison.OrdinalIgnoreCase) ? Gzip
        : name.Trim().Equals("br", StringComparison.OrdinalIgnoreCase) ? Brotli
        : null;

    /// <summary>Whether <paramref name="name"/> means no compression (absent, empty or identity).</summary>
    public static bool IsIdentity(ReadOnlySpan<char> name) =>
        name.Trim().IsEmpty || name.Trim().Equals(Identity, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The one compression negotiation of a call, for client and server, request and response.
    /// <paramref name="received"/> names the encoding of the peer's messages (its encoding
    /// header or GET parameter): absent, empty or <c>identity</c> is none, and a name this
    /// runtime does not know fails with <paramref name="unknownCode"/> (unimplemented for a
    /// server reading a request, internal for a client reading a response).
    /// <paramref name="peerAccepts"/>, the peer's ordered accept list, decides what to send
    /// back: the received encoding when there is one, else the first accepted entry this
    /// runtime supports, else none.
    /// </summary>
    public static NegotiatedCompression Negotiate(string? received, string? peerAccepts, Code unknownCode)
    {
        Compressor? compressor = null;
        if (received is not null && !IsIdentity(received))
        {
            compressor = Find(received) ?? throw new ConnectException(
                unknownCode,
                (unknownCode == Code.Internal ? "protocol error: " : string.Empty) +
                $"unknown compression '{HeaderRules.Printable(received)}': supported encodings are {AcceptList}");
        }

        return new NegotiatedCompression(compressor, compressor ?? FirstAccepted(peerAccepts));
    }

    /// <summary>The first entry of a peer's ordered accept list that this runtime supports, or null.</summary>
    private static Compressor? FirstAccepted(string? acceptList)
    {
        if (string.IsNullOrEmpty(acceptList))
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

            if (Find(entry) is { } found)
            {
                return found;
            }
        }

        return null;
    }

    public void Compress(ReadOnlySequence<byte> input, IBufferWriter<byte> output)
    {
        using var target = new BufferWriterStream(output);
        using (Stream compressor = CreateCompressor(target))
        {
            foreach (ReadOnlyMemory<byte> segment in input)
            {
                compressor.Write(segment.Span);
            }
        }
    }

    /// <summary>
    /// Decompresses <paramref name="input"/> into <paramref name="output"/>. Throws
    /// <see cref="ConnectException"/> (resource_exhausted) past <paramref name="maxSize"/>
    /// bytes, and <see cref="MessageDecodeException"/> for corrupt input.
    /// </summary>
    public void Decompress(ReadOnlySequence<byte> input, PooledBufferWriter output, int maxSize)
    {
        try
        {
            using var source = new SequenceStream(input);
            using Stream decompressor = CreateDecompressor(source);
            while (true)
            {
                int read = decompressor.Read(output.GetSpan(4096));
                if (read == 0)
                {
                    return;
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
        catch (InvalidDataException ex)
        {
            throw new MessageDecodeException($"cannot decompress {Name} data: {ex.Message}", ex);
        }
    }

    protected abstract Stream CreateCompressor(Stream output);

    protected abstract Stream CreateDecompressor(Stream input);

    private sealed class GzipCompressor : Compressor
    {
        public override string Name => "gzip";

        protected override Stream CreateCompressor(Stream output) => new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true);

        protected override Stream CreateDecompressor(Stream input) => new GZipStream(input, CompressionMode.Decompress, leaveOpen: true);
    }

    private sealed class BrotliCompressor : Compressor
    {
        public override string Name => "br";

        protected override Stream CreateCompressor(Stream output) => new BrotliStream(output, CompressionLevel.Fastest, leaveOpen: true);

        protected override Stream CreateDecompressor(Stream input) => new BrotliStream(input, CompressionMode.Decompress, leaveOpen: true);
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

    /// <summary>A write-only stream appending to an <see cref="IBufferWriter{T}"/>.</summary>
    private sealed class BufferWriterStream(IBufferWriter<byte> output) : Stream
    {
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
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}

/// <summary>The outcome of <see cref="Compressor.Negotiate"/>: how the peer's messages are compressed, and how to compress ours.</summary>
/// <param name="Received">The compressor of the peer's messages, or null for none.</param>
/// <param name="Send">The compressor of the messages sent back, or null for none.</param>
internal readonly record struct NegotiatedCompression(Compressor? Received, Compressor? Send);
