using System.Buffers.Binary;
using System.IO.Compression;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>Bytes made by hand for the raw-HTTP tests, independently of the runtime's own writers.</summary>
internal static class WireBytes
{
    /// <summary>One envelope: the flags byte, the big-endian length, the payload.</summary>
    public static byte[] Frame(byte[] payload, byte flags = 0)
    {
        byte[] frame = new byte[5 + payload.Length];
        frame[0] = flags;
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(1), payload.Length);
        payload.CopyTo(frame, 5);
        return frame;
    }

    public static byte[] Gzip(byte[] bytes) => Gzip(CompressionLevel.Fastest, gzip => gzip.Write(bytes));

    /// <summary>A compression bomb: <paramref name="mebibytes"/> MiB of zeros, gzipped to about a thousandth of that.</summary>
    public static byte[] GzipZeros(int mebibytes)
    {
        byte[] zeros = new byte[1024 * 1024];
        return Gzip(CompressionLevel.SmallestSize, gzip =>
        {
            for (int i = 0; i < mebibytes; i++)
            {
                gzip.Write(zeros);
            }
        });
    }

    private static byte[] Gzip(CompressionLevel level, Action<Stream> write)
    {
        using var packed = new MemoryStream();
        using (var gzip = new GZipStream(packed, level, leaveOpen: true))
        {
            write(gzip);
        }

        return packed.ToArray();
    }

    /// <summary>Splits a body into its envelopes; it must end exactly after the last one.</summary>
    public static List<(byte Flags, byte[] Payload)> Frames(byte[] body)
    {
        var frames = new List<(byte, byte[])>();
        int offset = 0;
        while (offset < body.Length)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(body.AsSpan(offset + 1));
            frames.Add((body[offset], body.AsSpan(offset + 5, length).ToArray()));
            offset += 5 + length;
        }

        Assert.Equal(body.Length, offset);
        return frames;
    }
}
