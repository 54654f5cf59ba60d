using System.IO.Compression;

namespace ConnectRpc;

/// <summary>
/// A message compression, known on the wire by its <see cref="Name"/> (docs/wire/compression.md).
/// The built-in ones are <see cref="Gzip"/>, <see cref="Brotli"/>, <see cref="Zstd"/> and
/// <see cref="Deflate"/>; an application adds its own by deriving from this class and listing
/// an instance in <c>ConnectClientOptions.Compressors</c> or <c>ConnectServerOptions.Compressors</c>.
/// </summary>
/// <remarks>
/// <para>
/// One instance serves every call at once: keep no per-call state in it, and make a new stream
/// in each <see cref="CreateCompressionStream"/> and <see cref="CreateDecompressionStream"/>.
/// </para>
/// <para>
/// The runtime owns the streams it passes in and disposes the streams returned, once per
/// message. Disposing the compression stream must write everything left (the end of the
/// compressed data); closing the stream passed in, with or without <c>leaveOpen</c>, is harmless.
/// The runtime reads a decompression stream in small blocks and stops one byte past the
/// receive limit (<c>MaxReceiveMessageSize</c>), so a compression bomb costs at most the limit
/// whatever the implementation. Any exception a decompression stream throws, other than a
/// <see cref="ConnectException"/>, marks the message corrupt: the call fails with the
/// protocol's code (invalid_argument for a request the server reads, internal for a response
/// the client reads), and the process goes on. An exception while compressing fails the call
/// with internal.
/// </para>
/// <para>
/// No compressor is used for messages that are empty, and a server leaves messages under
/// <c>ConnectServerOptions.CompressMinBytes</c> uncompressed.
/// </para>
/// </remarks>
public abstract partial class Compressor
{
    /// <summary>Makes a compressor; derive from this class to add one.</summary>
    protected Compressor()
    {
    }

    /// <summary>gzip (RFC 1952), the one encoding every Connect and gRPC implementation supports.</summary>
    public static Compressor Gzip { get; } = new GzipCompressor();

    /// <summary>Brotli (RFC 7932), named <c>br</c>.</summary>
    public static Compressor Brotli { get; } = new BrotliCompressor();

    /// <summary>
    /// Zstandard (RFC 8878), named <c>zstd</c>, through the managed ZstdSharp port. A frame
    /// that needs a window larger than 8 MiB (the limit of the HTTP <c>zstd</c> coding, RFC 9659)
    /// is refused as corrupt, so a small message cannot make the reader allocate more.
    /// </summary>
    public static Compressor Zstd { get; } = new ZstdCompressor();

    /// <summary>
    /// gRPC's <c>deflate</c>: the zlib format (RFC 1950), as grpc-dotnet and grpc-go send it,
    /// not raw DEFLATE.
    /// </summary>
    public static Compressor Deflate { get; } = new DeflateCompressor();

    /// <summary>
    /// The name in encoding and accept headers (<c>gzip</c>): an HTTP token, compared without
    /// regard to case, never <c>identity</c>. It must not change.
    /// </summary>
    public abstract string Name { get; }

    /// <summary>
    /// A stream that compresses what is written to it into <paramref name="output"/>. The
    /// runtime writes one message, then disposes the returned stream, which must then have
    /// written all of its compressed data to <paramref name="output"/>.
    /// </summary>
    /// <param name="output">Where the compressed bytes go; the runtime's, it may be closed harmlessly.</param>
    /// <returns>A writable stream, disposed by the runtime.</returns>
    public abstract Stream CreateCompressionStream(Stream output);

    /// <summary>
    /// A stream that reads the decompressed bytes of <paramref name="input"/>, which holds one
    /// compressed message. The runtime reads it until it ends or the receive limit is passed,
    /// then disposes it.
    /// </summary>
    /// <param name="input">The compressed bytes; the runtime's, it may be closed harmlessly.</param>
    /// <returns>A readable stream, disposed by the runtime.</returns>
    public abstract Stream CreateDecompressionStream(Stream input);

    /// <summary>The <see cref="Name"/>.</summary>
    /// <returns>The name.</returns>
    public override string ToString() => Name;

    private sealed class GzipCompressor : Compressor
    {
        public override string Name => "gzip";

        // RFC 1952: header (no name, no time, OS Unix), an empty final stored block, CRC-32 and size of zero.
        private protected override byte[]? CompressedEmpty { get; } = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0];

        public override Stream CreateCompressionStream(Stream output) => new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true);

        public override Stream CreateDecompressionStream(Stream input) => new GZipStream(input, CompressionMode.Decompress, leaveOpen: true);
    }

    private sealed class BrotliCompressor : Compressor
    {
        public override string Name => "br";

        public override Stream CreateCompressionStream(Stream output) => new BrotliStream(output, CompressionLevel.Fastest, leaveOpen: true);

        public override Stream CreateDecompressionStream(Stream input) => new BrotliStream(input, CompressionMode.Decompress, leaveOpen: true);
    }

    private sealed class DeflateCompressor : Compressor
    {
        public override string Name => "deflate";

        // RFC 1950: header (deflate, 32 KiB window), an empty final fixed block, Adler-32 of nothing (1).
        private protected override byte[]? CompressedEmpty { get; } = [0x78, 0x9c, 3, 0, 0, 0, 0, 1];

        public override Stream CreateCompressionStream(Stream output) => new ZLibStream(output, CompressionLevel.Fastest, leaveOpen: true);

        public override Stream CreateDecompressionStream(Stream input) => new ZLibStream(input, CompressionMode.Decompress, leaveOpen: true);
    }

    private sealed class ZstdCompressor : Compressor
    {
        // 2^23 = 8 MiB, RFC 9659's window limit for the HTTP zstd coding.
        private const int WindowLogMax = 23;

        public override string Name => "zstd";

        public override Stream CreateCompressionStream(Stream output) => new ZstdSharp.CompressionStream(output, level: 3, leaveOpen: true);

        public override Stream CreateDecompressionStream(Stream input)
        {
            var stream = new ZstdSharp.DecompressionStream(input, leaveOpen: true);
            stream.SetParameter(ZstdSharp.Unsafe.ZSTD_dParameter.ZSTD_d_windowLogMax, WindowLogMax);
            return stream;
        }
    }
}
