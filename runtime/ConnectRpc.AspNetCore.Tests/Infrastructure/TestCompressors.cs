using System.IO.Compression;
using Snappier;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// Snappy (the framing format, through Snappier): a compressor the runtime does not ship, added
/// the way an application adds its own. It closes the streams it is given (no <c>leaveOpen</c>),
/// which the runtime must survive.
/// </summary>
internal sealed class SnappyCompressor : Compressor
{
    public static SnappyCompressor Instance { get; } = new();

    public override string Name => "snappy";

    public override Stream CreateCompressionStream(Stream output) => new SnappyStream(output, CompressionMode.Compress, leaveOpen: false);

    public override Stream CreateDecompressionStream(Stream input) => new SnappyStream(input, CompressionMode.Decompress, leaveOpen: false);
}

/// <summary>A custom compressor with a bug: every stream it makes throws on first use.</summary>
internal sealed class BrokenCompressor : Compressor
{
    public override string Name => "broken";

    public override Stream CreateCompressionStream(Stream output) => new Failing();

    public override Stream CreateDecompressionStream(Stream input) => new Failing();

    private sealed class Failing : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new InvalidOperationException("broken on purpose");

        public override void Write(byte[] buffer, int offset, int count) => throw new InvalidOperationException("broken on purpose");

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}

/// <summary>
/// Wraps a compressor and counts what the runtime asks of it: streams made each way, and the bytes
/// read from the latest decompression stream (how far decompression went).
/// </summary>
internal sealed class CountingCompressor(Compressor inner) : Compressor
{
    private int _compressions;
    private int _decompressions;
    private long _lastDecompressedBytes;

    public Compressor Inner => inner;

    public override string Name => inner.Name;

    public int Compressions => Volatile.Read(ref _compressions);

    public int Decompressions => Volatile.Read(ref _decompressions);

    public long LastDecompressedBytes => Interlocked.Read(ref _lastDecompressedBytes);

    public void Reset()
    {
        Volatile.Write(ref _compressions, 0);
        Volatile.Write(ref _decompressions, 0);
        Interlocked.Exchange(ref _lastDecompressedBytes, 0);
    }

    public override Stream CreateCompressionStream(Stream output)
    {
        Interlocked.Increment(ref _compressions);
        return inner.CreateCompressionStream(output);
    }

    public override Stream CreateDecompressionStream(Stream input)
    {
        Interlocked.Increment(ref _decompressions);
        Interlocked.Exchange(ref _lastDecompressedBytes, 0);
        return new CountingReader(inner.CreateDecompressionStream(input), this);
    }

    private sealed class CountingReader(Stream inner, CountingCompressor owner) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int read = inner.Read(buffer);
            Interlocked.Add(ref owner._lastDecompressedBytes, read);
            return read;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
