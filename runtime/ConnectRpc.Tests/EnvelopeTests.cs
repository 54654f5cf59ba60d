using System.Buffers;
using System.IO.Pipelines;
using ConnectRpc.Internal;

namespace ConnectRpc.Tests;

public sealed class EnvelopeTests
{
    [Theory]
    [InlineData(0x00, 0)]
    [InlineData(0x01, 1)]
    [InlineData(0x02, 0x01020304)]
    [InlineData(0x81, int.MaxValue)]
    public void Prefix_WriteThenRead_RoundTrips(byte flagBits, int length)
    {
        var flags = (EnvelopeFlags)flagBits;
        byte[] prefix = new byte[Envelope.PrefixLength];
        Envelope.WritePrefix(prefix, flags, length);

        Assert.True(Envelope.TryReadPrefix(new ReadOnlySequence<byte>(prefix), out EnvelopeFlags readFlags, out uint readLength));
        Assert.Equal(flags, readFlags);
        Assert.Equal((uint)length, readLength);
        Assert.Equal((byte)flags, prefix[0]);
    }

    [Fact]
    public void TryReadPrefix_PrefixStraddlesSegments_Reads()
    {
        byte[] frame = Frame(EnvelopeFlags.Compressed, [9, 9, 9]);
        for (int split = 1; split < Envelope.PrefixLength; split++)
        {
            ReadOnlySequence<byte> sequence = Sequences.TwoSegments(frame[..split], frame[split..]);

            Assert.True(Envelope.TryReadPrefix(sequence, out EnvelopeFlags flags, out uint length));
            Assert.Equal(EnvelopeFlags.Compressed, flags);
            Assert.Equal(3u, length);
        }
    }

    [Fact]
    public void TryReadPrefix_FewerThanFiveBytes_ReturnsFalse()
    {
        Assert.False(Envelope.TryReadPrefix(new ReadOnlySequence<byte>(new byte[4]), out _, out _));
    }

    [Fact]
    public async Task Reader_FramesWrittenByteByByte_AreReassembled()
    {
        var pipe = new Pipe();
        var reader = new EnvelopeReader(pipe.Reader, maxMessageSize: 100, Code.InvalidArgument);
        byte[] bytes = [.. Frame(EnvelopeFlags.None, [1, 2, 3]), .. Frame(EnvelopeFlags.None, []), .. Frame(EnvelopeFlags.EndStream, [4])];

        Task writing = Task.Run(
            async () =>
        {
            foreach (byte b in bytes)
            {
                await pipe.Writer.WriteAsync(new[] { b }, Bounded.Token);
            }

            await pipe.Writer.CompleteAsync();
        },
            Bounded.Token);

        EnvelopeFrame? first = await reader.ReadAsync(Bounded.Token).Within();
        Assert.Equal([1, 2, 3], first!.Value.Payload.ToArray());
        EnvelopeFrame? empty = await reader.ReadAsync(Bounded.Token).Within();
        Assert.Equal(0, empty!.Value.Payload.Length); // a zero-length frame is a valid empty message
        EnvelopeFrame? last = await reader.ReadAsync(Bounded.Token).Within();
        Assert.Equal(EnvelopeFlags.EndStream, last!.Value.Flags);
        Assert.Equal([4], last.Value.Payload.ToArray());
        Assert.Null(await reader.ReadAsync(Bounded.Token).Within());
        await writing.Within();
    }

    [Fact]
    public async Task Reader_MessageExactlyAtLimit_IsRead()
    {
        EnvelopeReader reader = ReaderOver(Frame(EnvelopeFlags.None, new byte[64]), maxMessageSize: 64);

        EnvelopeFrame? frame = await reader.ReadAsync(Bounded.Token).Within();

        Assert.Equal(64, frame!.Value.Payload.Length);
    }

    [Fact]
    public async Task Reader_OneByteOverLimit_IsResourceExhaustedBeforeThePayloadArrives()
    {
        var pipe = new Pipe();
        var reader = new EnvelopeReader(pipe.Reader, maxMessageSize: 64, Code.InvalidArgument);
        byte[] prefix = new byte[Envelope.PrefixLength];
        Envelope.WritePrefix(prefix, EnvelopeFlags.None, 65);
        await pipe.Writer.WriteAsync(prefix, Bounded.Token); // the payload never comes: the prefix alone must decide

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => reader.ReadAsync(Bounded.Token).Within());

        Assert.Equal(Code.ResourceExhausted, error.Code);
        Assert.Contains("65", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reader_HugeDeclaredLength_IsResourceExhausted()
    {
        EnvelopeReader reader = ReaderOver([0, 0xFF, 0xFF, 0xFF, 0xFF], maxMessageSize: int.MaxValue);

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => reader.ReadAsync(Bounded.Token).Within());

        Assert.Equal(Code.ResourceExhausted, error.Code);
    }

    [Theory]
    [InlineData(new byte[] { 0, 0, 0 }, "prefix bytes")]
    [InlineData(new byte[] { 0, 0, 0, 0, 5, 1, 2 }, "3 bytes short")]
    public async Task Reader_InputEndsInsideAFrame_IsTheMalformedCode(byte[] input, string message)
    {
        EnvelopeReader reader = ReaderOver(input, maxMessageSize: 100, malformed: Code.Internal);

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => reader.ReadAsync(Bounded.Token).Within());

        Assert.Equal(Code.Internal, error.Code);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reader_EmptyInput_IsCleanEnd()
    {
        EnvelopeReader reader = ReaderOver([], maxMessageSize: 100);

        Assert.Null(await reader.ReadAsync(Bounded.Token).Within());
    }

    [Fact]
    public async Task Reader_LastFrameReadTogetherWithTheEnd_EndsWithoutAnotherPipeRead()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(Frame(EnvelopeFlags.None, [1, 2]), Bounded.Token);
        await pipe.Writer.CompleteAsync();
        var counting = new CountingReader(pipe.Reader);
        var reader = new EnvelopeReader(counting, maxMessageSize: 100, Code.InvalidArgument);

        EnvelopeFrame? only = await reader.ReadAsync(Bounded.Token).Within();
        Assert.Equal([1, 2], only!.Value.Payload.ToArray());
        Assert.Null(await reader.ReadAsync(Bounded.Token).Within());
        Assert.Null(await reader.ReadAsync(Bounded.Token).Within());

        Assert.Equal(1, counting.Reads);
        // The frame's bytes were handed back all the same: the pipe has nothing left to read.
        Assert.True(pipe.Reader.TryRead(out ReadResult rest));
        Assert.True(rest.IsCompleted);
        Assert.True(rest.Buffer.IsEmpty);
    }

    [Fact]
    public async Task Reader_LastFrameReadBeforeTheEnd_ReadsThePipeForTheEnd()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(Frame(EnvelopeFlags.None, [1, 2]), Bounded.Token);
        var counting = new CountingReader(pipe.Reader);
        var reader = new EnvelopeReader(counting, maxMessageSize: 100, Code.InvalidArgument);

        EnvelopeFrame? only = await reader.ReadAsync(Bounded.Token).Within();
        Assert.Equal([1, 2], only!.Value.Payload.ToArray());
        ValueTask<EnvelopeFrame?> next = reader.ReadAsync(Bounded.Token);
        Assert.False(next.IsCompleted); // the end has not come: the reader waits for it
        await pipe.Writer.CompleteAsync();

        Assert.Null(await next.AsTask().Within());
        Assert.Equal(2, counting.Reads);
    }

    [Fact]
    public void WriteFrame_Payload_WritesPrefixAndBytes()
    {
        var output = new ArrayBufferWriter<byte>();

        Envelope.WriteFrame(output, EnvelopeFlags.EndStream, [7, 8]);

        Assert.Equal([2, 0, 0, 0, 2, 7, 8], output.WrittenSpan.ToArray());
    }

    internal static byte[] Frame(EnvelopeFlags flags, byte[] payload)
    {
        var output = new ArrayBufferWriter<byte>();
        Envelope.WriteFrame(output, flags, payload);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>A reader that counts the reads that reach the pipe.</summary>
    private sealed class CountingReader(PipeReader inner) : PipeReader
    {
        public int Reads { get; private set; }

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            Reads++;
            return inner.ReadAsync(cancellationToken);
        }

        public override bool TryRead(out ReadResult result)
        {
            Reads++;
            return inner.TryRead(out result);
        }

        public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);
    }

    private static EnvelopeReader ReaderOver(byte[] input, int maxMessageSize, Code malformed = Code.InvalidArgument) =>
        new(PipeReader.Create(new MemoryStream(input)), maxMessageSize, malformed);
}
