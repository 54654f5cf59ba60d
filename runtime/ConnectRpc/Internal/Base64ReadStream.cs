using System.Buffers;
using System.Buffers.Text;

namespace ConnectRpc.Internal;

/// <summary>
/// Decodes a gRPC-Web text body (docs/protocols/grpc-web.md#text-mode) as it arrives. The sender may pad at any
/// flush point, so the input is decoded in groups of four characters, each group on its own
/// when it carries padding. Input that is not base64 fails with <paramref name="malformedCode"/>.
/// The inner stream stays open: its owner closes it.
/// </summary>
internal sealed class Base64ReadStream(Stream inner, Code malformedCode) : Stream
{
    private const int ChunkSize = 8192;

    private byte[]? _text = ArrayPool<byte>.Shared.Rent(ChunkSize + 4);
    private byte[]? _decoded = ArrayPool<byte>.Shared.Rent(ChunkSize);
    private int _textCount;
    private int _decodedStart;
    private int _decodedEnd;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_text is null || _decoded is null, this);
        while (_decodedStart == _decodedEnd)
        {
            int read = await inner.ReadAsync(_text.AsMemory(_textCount, ChunkSize - _textCount), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                if (_textCount != 0)
                {
                    throw Malformed($"the body ends inside a group of four base64 characters ({_textCount} left over)");
                }

                return 0;
            }

            _textCount += read;
            int whole = _textCount - (_textCount % 4);
            _decodedStart = 0;
            _decodedEnd = Decode(_text.AsSpan(0, whole), _decoded);
            _textCount -= whole;
            _text.AsSpan(whole, _textCount).CopyTo(_text);
        }

        int count = Math.Min(buffer.Length, _decodedEnd - _decodedStart);
        _decoded.AsSpan(_decodedStart, count).CopyTo(buffer.Span);
        _decodedStart += count;
        return count;
    }

    private int Decode(ReadOnlySpan<byte> text, Span<byte> output)
    {
        int written = 0;
        while (!text.IsEmpty)
        {
            // Up to and including the first group that ends with padding.
            int padding = text.IndexOf((byte)'=');
            int end = padding < 0 ? text.Length : Math.Min(text.Length, ((padding / 4) + 1) * 4);
            OperationStatus status = Base64.DecodeFromUtf8(text[..end], output[written..], out int consumed, out int decoded);
            if (status != OperationStatus.Done || consumed != end)
            {
                throw Malformed("the body is not valid base64");
            }

            written += decoded;
            text = text[end..];
        }

        return written;
    }

    private ConnectException Malformed(string why) => new(malformedCode, $"protocol error: invalid gRPC-Web text body: {why}");

    public override int Read(byte[] buffer, int offset, int count) =>
        ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

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
            if (_text is not null)
            {
                ArrayPool<byte>.Shared.Return(_text);
                _text = null;
            }

            if (_decoded is not null)
            {
                ArrayPool<byte>.Shared.Return(_decoded);
                _decoded = null;
            }
        }

        base.Dispose(disposing);
    }
}
