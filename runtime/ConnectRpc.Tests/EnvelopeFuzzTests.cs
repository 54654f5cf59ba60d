using System.Buffers.Binary;
using System.IO.Pipelines;
using ConnectRpc.Internal;
using CsCheck;

namespace ConnectRpc.Tests;

/// <summary>
/// <see cref="EnvelopeReader"/> on arbitrary bytes delivered in arbitrary chunks: it yields
/// exactly the frames at the start of the input, then ends cleanly or fails the documented
/// way, whatever the chunking and the limit.
/// </summary>
public sealed class EnvelopeFuzzTests
{
    private const Code Malformed = Code.DataLoss; // any code: the reader must report the one it was given

    /// <summary>A frame as bytes: a prefix whose length is right, off by a little, or anything.</summary>
    private static readonly Gen<byte[]> s_frame =
        Gen.Select(Gen.Byte, Gen.Byte.Array[0, 24], Gen.Frequency((6, Gen.Const(0L)), (2, Gen.Long[-3, 3]), (1, Gen.Long[0, uint.MaxValue])))
            .Select((flags, payload, skew) =>
            {
                byte[] frame = new byte[Envelope.PrefixLength + payload.Length];
                frame[0] = flags;
                BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), unchecked((uint)(payload.Length + skew)));
                payload.CopyTo(frame, Envelope.PrefixLength);
                return frame;
            });

    /// <summary>Mostly well-formed frame sequences (maybe cut short), sometimes plain noise.</summary>
    private static readonly Gen<byte[]> s_input = Gen.Frequency(
        (4, Gen.Select(s_frame.Array[0, 6], Gen.Int[0, 6]).Select((frames, cut) =>
        {
            byte[] whole = [.. frames.SelectMany(f => f)];
            return whole[..Math.Max(0, whole.Length - cut)];
        })),
        (1, Gen.Byte.Array[0, 40]));

    private static readonly Gen<int> s_limit = Gen.Frequency((3, Gen.Int[0, 30]), (1, Gen.Const(int.MaxValue)), (1, Gen.Int[0, int.MaxValue]));

    [Fact]
    public async Task ReadAsync_AnyBytesInAnyChunks_YieldsTheLeadingFramesThenEndsOrFailsAsDocumented()
    {
        await Gen.Select(s_input, Gen.Int[1, 12].Array[1, 8], s_limit).CheckAsync(async sample =>
        {
            (byte[] input, int[] chunks, int limit) = sample;
            (List<byte> frames, Exception? failure) = await ReadAllAsync(input, chunks, limit);
            (int framed, Code? expected) = Expected(input, limit);

            Assert.Equal(input[..framed], frames); // every frame re-serializes to exactly what was consumed
            if (expected is null)
            {
                Assert.Null(failure);
            }
            else
            {
                ConnectException error = Assert.IsType<ConnectException>(failure);
                Assert.Equal(expected, error.Code);
            }
        });
    }

    /// <summary>
    /// Reads every frame of <paramref name="input"/>, written chunk by chunk only while the
    /// reader waits for more, on one thread (inline schedulers), so a sample replays exactly.
    /// </summary>
    private static async Task<(List<byte> Frames, Exception? Failure)> ReadAllAsync(byte[] input, int[] chunks, int limit)
    {
        var pipe = new Pipe(new PipeOptions(
            readerScheduler: PipeScheduler.Inline,
            writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: 0,
            useSynchronizationContext: false));
        var reader = new EnvelopeReader(pipe.Reader, limit, Malformed);
        using CancellationTokenSource timeout = Bounded.TimeoutSource();
        var frames = new List<byte>();
        int written = 0;
        int chunk = 0;
        bool completed = false;
        try
        {
            while (true)
            {
                ValueTask<EnvelopeFrame?> pending = reader.ReadAsync(timeout.Token);
                while (!pending.IsCompleted && !completed)
                {
                    if (written == input.Length)
                    {
                        await pipe.Writer.CompleteAsync();
                        completed = true;
                        break;
                    }

                    int size = Math.Min(chunks[chunk++ % chunks.Length], input.Length - written);
                    await pipe.Writer.WriteAsync(input.AsMemory(written, size), timeout.Token).AsTask().WaitAsync(timeout.Token);
                    written += size;
                }

                // A reader that still waits when all input is in and the writer is done hangs: the bound fails it.
                if (await pending.AsTask().WaitAsync(timeout.Token) is not { } frame)
                {
                    return (frames, null);
                }

                byte[] prefix = new byte[Envelope.PrefixLength];
                Envelope.WritePrefix(prefix, frame.Flags, checked((int)frame.Payload.Length));
                frames.AddRange(prefix);
                foreach (ReadOnlyMemory<byte> segment in frame.Payload)
                {
                    frames.AddRange(segment.ToArray());
                }
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not TimeoutException)
        {
            return (frames, ex);
        }
    }

    /// <summary>The reference: how many bytes are whole frames, and the code the input must end with (null: a clean end).</summary>
    private static (int Framed, Code? Error) Expected(byte[] input, int limit)
    {
        int at = 0;
        while (true)
        {
            int left = input.Length - at;
            if (left == 0)
            {
                return (at, null);
            }

            if (left < Envelope.PrefixLength)
            {
                return (at, Malformed);
            }

            uint length = BinaryPrimitives.ReadUInt32BigEndian(input.AsSpan(at + 1));
            if (length > (uint)limit)
            {
                return (at, Code.ResourceExhausted);
            }

            if (left - Envelope.PrefixLength < length)
            {
                return (at, Malformed);
            }

            at += Envelope.PrefixLength + (int)length;
        }
    }
}
