using System.Buffers.Binary;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;

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

    /// <summary>
    /// A hand-made request to <paramref name="url"/>: HTTP/2 by prior knowledge when asked
    /// (cleartext HTTP/2 needs it), the body when there is one with its content type, and the
    /// headers as given, unvalidated (<c>content-</c> ones on the content).
    /// </summary>
    public static HttpRequestMessage Request(HttpMethod method, string url, bool http2, byte[]? body, string? contentType, params (string Key, string Value)[] headers)
    {
        var request = new HttpRequestMessage(method, url);
        if (http2)
        {
            request.Version = HttpVersion.Version20;
            request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
        }

        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = contentType is null ? null : MediaTypeHeaderValue.Parse(contentType);
        }

        foreach ((string key, string value) in headers)
        {
            Assert.True(key.StartsWith("content-", StringComparison.Ordinal)
                ? request.Content!.Headers.TryAddWithoutValidation(key, value)
                : request.Headers.TryAddWithoutValidation(key, value));
        }

        return request;
    }
}
