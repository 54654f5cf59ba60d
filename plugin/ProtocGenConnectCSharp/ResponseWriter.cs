using System.Text;

namespace ConnectRpc.Plugin;

/// <summary>
/// Encodes a <c>CodeGeneratorResponse</c> (google/protobuf/compiler/plugin.proto) by hand, so
/// each file's UTF-8 text goes from its <see cref="CodeWriter"/> into the response without
/// becoming a string. Fields are written in field-number order, as Google.Protobuf writes the
/// message, so the bytes are the ones the message would serialize to.
/// </summary>
/// <remarks>
/// The bytes are kept in segments that are never copied to grow, and are only written out at
/// the end: a failure part-way through must still leave a response with nothing but its error.
/// </remarks>
internal sealed class ResponseWriter
{
    // Tags, (field number << 3) | wire type; wire type 0 is a varint, 2 is length-delimited.
    private const byte ErrorTag = (1 << 3) | 2;                 // string error = 1
    private const byte SupportedFeaturesTag = (2 << 3) | 0;     // uint64 supported_features = 2
    private const byte MinimumEditionTag = (3 << 3) | 0;        // int32 minimum_edition = 3
    private const byte MaximumEditionTag = (4 << 3) | 0;        // int32 maximum_edition = 4
    private const byte FileTag = (15 << 3) | 2;                 // repeated File file = 15
    private const byte FileNameTag = (1 << 3) | 2;              // File: string name = 1
    private const byte FileContentTag = (15 << 3) | 2;          // File: string content = 15

    private const int FirstSegmentSize = 16 * 1024;
    private const int MaxSegmentSize = 1024 * 1024;

    private readonly List<(byte[] Bytes, int Length)> _fullSegments = [];
    private readonly ulong _supportedFeatures;
    private readonly int _minimumEdition;
    private readonly int _maximumEdition;
    private byte[] _segment = GC.AllocateUninitializedArray<byte>(FirstSegmentSize);
    private int _position;

    public ResponseWriter(ulong supportedFeatures, int minimumEdition, int maximumEdition)
    {
        _supportedFeatures = supportedFeatures;
        _minimumEdition = minimumEdition;
        _maximumEdition = maximumEdition;
        WriteFeatures();
    }

    /// <summary>The number of bytes of the response so far.</summary>
    public long Length
    {
        get
        {
            long length = _position;
            foreach ((byte[] _, int segmentLength) in _fullSegments)
            {
                length += segmentLength;
            }

            return length;
        }
    }

    /// <summary>Adds a generated file: its path, relative to the output folder, and its text.</summary>
    public void AddFile(string name, ReadOnlySpan<byte> utf8Content)
    {
        int nameLength = Encoding.UTF8.GetByteCount(name);
        int fileLength = 1 + VarintLength((uint)nameLength) + nameLength + 1 + VarintLength((uint)utf8Content.Length) + utf8Content.Length;
        WriteByte(FileTag);
        WriteVarint((uint)fileLength);
        WriteByte(FileNameTag);
        WriteVarint((uint)nameLength);
        WriteUtf8(name, nameLength);
        WriteByte(FileContentTag);
        WriteVarint((uint)utf8Content.Length);
        Write(utf8Content);
    }

    /// <summary>Drops every file added so far; the response is <paramref name="error"/> alone.</summary>
    public void Fail(string error)
    {
        _fullSegments.Clear();
        _position = 0;
        int length = Encoding.UTF8.GetByteCount(error);
        WriteByte(ErrorTag);
        WriteVarint((uint)length);
        WriteUtf8(error, length);
        WriteFeatures();
    }

    public void WriteTo(Stream stream)
    {
        foreach ((byte[] bytes, int length) in _fullSegments)
        {
            stream.Write(bytes, 0, length);
        }

        stream.Write(_segment, 0, _position);
    }

    public byte[] ToArray()
    {
        using var stream = new MemoryStream(checked((int)Length));
        WriteTo(stream);
        return stream.ToArray();
    }

    private static int VarintLength(ulong value)
    {
        int length = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            length++;
        }

        return length;
    }

    private void WriteFeatures()
    {
        WriteByte(SupportedFeaturesTag);
        WriteVarint(_supportedFeatures);
        WriteByte(MinimumEditionTag);
        WriteVarint((ulong)(long)_minimumEdition); // int32: a negative value is sign-extended to 64 bits
        WriteByte(MaximumEditionTag);
        WriteVarint((ulong)(long)_maximumEdition);
    }

    private void WriteVarint(ulong value)
    {
        Span<byte> bytes = stackalloc byte[10];
        int length = 0;
        while (value >= 0x80)
        {
            bytes[length++] = (byte)(value | 0x80);
            value >>= 7;
        }

        bytes[length++] = (byte)value;
        Write(bytes[..length]);
    }

    private void WriteUtf8(string text, int byteCount)
    {
        if (byteCount <= _segment.Length - _position)
        {
            _position += Encoding.UTF8.GetBytes(text, _segment.AsSpan(_position));
        }
        else
        {
            Write(Encoding.UTF8.GetBytes(text));
        }
    }

    private void WriteByte(byte value)
    {
        if (_position == _segment.Length)
        {
            NextSegment();
        }

        _segment[_position++] = value;
    }

    private void Write(ReadOnlySpan<byte> bytes)
    {
        while (true)
        {
            int count = Math.Min(bytes.Length, _segment.Length - _position);
            bytes[..count].CopyTo(_segment.AsSpan(_position));
            _position += count;
            bytes = bytes[count..];
            if (bytes.IsEmpty)
            {
                return;
            }

            NextSegment();
        }
    }

    private void NextSegment()
    {
        _fullSegments.Add((_segment, _position));

        // Each segment doubles the last, up to a size past which doubling saves nothing.
        // Uninitialized: only the bytes up to the position are ever read.
        _segment = GC.AllocateUninitializedArray<byte>(Math.Min(_segment.Length * 2, MaxSegmentSize));
        _position = 0;
    }
}
