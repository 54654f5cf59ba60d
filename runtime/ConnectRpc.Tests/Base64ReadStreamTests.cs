using System.Buffers;
using System.Text;
using ConnectRpc.Internal;

namespace ConnectRpc.Tests;

/// <summary>Decoding a gRPC-Web text body as it arrives (docs/protocols/grpc-web.md#text-mode).</summary>
public sealed class Base64ReadStreamTests
{
    // Chunks are separated by '|'; each is base64-encoded (and padded) on its own, as a sender
    // that flushes after each one would.
    [Theory]
    [InlineData("")]
    [InlineData("a")]
    [InlineData("a|bc")]
    [InlineData("a|b|c")]
    [InlineData("ab|c|def|g")]
    [InlineData("abc|defg|hi")]
    [InlineData("|x||yz|")] // empty chunks encode to nothing
    [InlineData("hello, gRPC-Web text body")]
    public async Task ReadAsync_ChunksPaddedSeparately_DecodesAll(string chunks)
    {
        string[] parts = chunks.Split('|');
        string text = string.Concat(parts.Select(part => Convert.ToBase64String(Encoding.UTF8.GetBytes(part))));
        string expected = string.Concat(parts);

        foreach (int readSize in new[] { 1, 2, 3, 5, 4096 })
        {
            foreach (int bufferSize in new[] { 1, 7, 4096 })
            {
                byte[] decoded = await ReadAll(Encoding.ASCII.GetBytes(text), readSize, bufferSize);

                Assert.Equal(expected, Encoding.UTF8.GetString(decoded));
            }
        }
    }

    [Fact]
    public async Task ReadAsync_PaddingInTheMiddle_DecodesBothGroups()
    {
        // base64("a") + base64("bc"): padding ends the first group, and a new one follows.
        Assert.Equal("YQ==YmM=", Convert.ToBase64String("a"u8) + Convert.ToBase64String("bc"u8));

        byte[] decoded = await ReadAll("YQ==YmM="u8.ToArray(), readSize: 1, bufferSize: 1);

        Assert.Equal("abc"u8.ToArray(), decoded);
    }

    [Fact]
    public async Task ReadAsync_InnerReturnsOneByteAtATime_Decodes()
    {
        byte[] body = [.. Enumerable.Range(0, 1000).Select(i => (byte)(i * 7))];
        byte[] text = Encoding.ASCII.GetBytes(Convert.ToBase64String(body));

        byte[] decoded = await ReadAll(text, readSize: 1, bufferSize: 16);

        Assert.Equal(body, decoded);
    }

    [Theory]
    [InlineData("YQ#=", Code.InvalidArgument)]
    [InlineData("YWJj!GVm", Code.Internal)]
    [InlineData("Y===", Code.InvalidArgument)]
    [InlineData("====", Code.Internal)]
    [InlineData("YQ=a", Code.InvalidArgument)] // data after padding inside a group
    [InlineData("=YQ=", Code.Internal)]
    [InlineData("YQ==YmM*", Code.InvalidArgument)] // bad only after a good padded group
    [InlineData("YWJj-_8=", Code.Internal)] // base64url is not base64
    [InlineData("YWJj\u00E9GVm", Code.InvalidArgument)]
    public async Task ReadAsync_InvalidBase64_ThrowsTheConstructorsCode(string text, Code code)
    {
        foreach (int readSize in new[] { 1, 4096 })
        {
            ConnectException error = await Assert.ThrowsAsync<ConnectException>(
                () => ReadAll(Encoding.UTF8.GetBytes(text), readSize, bufferSize: 64, code));

            Assert.Equal(code, error.Code);
            Assert.Contains("not valid base64", error.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("Y", Code.InvalidArgument)]
    [InlineData("YQ", Code.Internal)]
    [InlineData("YQ=", Code.InvalidArgument)]
    [InlineData("YWJjZA", Code.Internal)] // unpadded final group
    [InlineData("YQ==Y", Code.InvalidArgument)]
    public async Task ReadAsync_BodyEndsMidGroup_ThrowsTheConstructorsCode(string text, Code code)
    {
        foreach (int readSize in new[] { 1, 4096 })
        {
            ConnectException error = await Assert.ThrowsAsync<ConnectException>(
                () => ReadAll(Encoding.ASCII.GetBytes(text), readSize, bufferSize: 64, code));

            Assert.Equal(code, error.Code);
            Assert.Contains("ends inside a group", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ReadAsync_EmptyBody_IsCleanEnd()
    {
        using var stream = new Base64ReadStream(new ChunkedStream([], 1), Code.Internal);

        Assert.Equal(0, await stream.ReadAsync(new byte[8], Bounded.Token).Within());
        Assert.Equal(0, await stream.ReadAsync(new byte[8], Bounded.Token).Within());
    }

    [Theory]
    [InlineData(1, 4096, 4096)]
    [InlineData(13, 1000, 997)]
    [InlineData(8192, 65536, 3)]
    [InlineData(65536, 100_000, 100_000)]
    public async Task ReadAsync_LargeBody_RoundTrips(int readSize, int bufferSize, int chunkSize)
    {
        byte[] body = new byte[100 * 1024];
        new Random(1234).NextBytes(body);
        var text = new ArrayBufferWriter<byte>();
        for (int offset = 0; offset < body.Length; offset += chunkSize)
        {
            GrpcProtocol.WriteBase64(text, body.AsSpan(offset, Math.Min(chunkSize, body.Length - offset)));
        }

        byte[] decoded = await ReadAll(text.WrittenSpan.ToArray(), readSize, bufferSize);

        Assert.Equal(body, decoded);
    }

    [Fact]
    public async Task ReadAsync_WriteBase64OfRandomChunks_DecodesBack()
    {
        var random = new Random(42);
        var body = new List<byte>();
        var text = new ArrayBufferWriter<byte>();
        for (int i = 0; i < 200; i++)
        {
            byte[] chunk = new byte[random.Next(0, 40)];
            random.NextBytes(chunk);
            body.AddRange(chunk);
            GrpcProtocol.WriteBase64(text, chunk);
        }

        byte[] decoded = await ReadAll(text.WrittenSpan.ToArray(), readSize: 3, bufferSize: 5);

        Assert.Equal(body, decoded);
    }

    [Fact]
    public void Read_Synchronous_Decodes()
    {
        using var stream = new Base64ReadStream(new ChunkedStream("YQ==YmM="u8.ToArray(), 3), Code.Internal);
        using var output = new MemoryStream();

        stream.CopyTo(output);

        Assert.Equal("abc"u8.ToArray(), output.ToArray());
    }

    [Fact]
    public async Task ReadAsync_AfterDispose_ThrowsObjectDisposed()
    {
        var stream = new Base64ReadStream(new ChunkedStream("YQ=="u8.ToArray(), 4), Code.Internal);
        await stream.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => stream.ReadAsync(new byte[4], Bounded.Token).Within());
    }

    private static async Task<byte[]> ReadAll(byte[] text, int readSize, int bufferSize, Code code = Code.InvalidArgument)
    {
        using var stream = new Base64ReadStream(new ChunkedStream(text, readSize), code);
        using var output = new MemoryStream();
        byte[] buffer = new byte[bufferSize];
        int read;
        while ((read = await stream.ReadAsync(buffer, Bounded.Token).Within()) > 0)
        {
            output.Write(buffer, 0, read);
        }

        return output.ToArray();
    }

    /// <summary>A read-only stream that returns at most <c>readSize</c> bytes per read, like a slow network.</summary>
    private sealed class ChunkedStream(byte[] data, int readSize) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int count = Math.Min(Math.Min(readSize, buffer.Length), data.Length - _position);
            data.AsSpan(_position, count).CopyTo(buffer);
            _position += count;
            return count;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await Task.Yield(); // complete asynchronously, as a socket would
            return Read(buffer.Span);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
