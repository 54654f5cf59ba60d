using System.Text;

namespace ConnectRpc.Plugin;

/// <summary>
/// Encodes a <c>CodeGeneratorResponse</c> (google/protobuf/compiler/plugin.proto) by hand onto a
/// stream, so each file's UTF-8 text goes from its <see cref="CodeWriter"/> to the output without
/// becoming a string, and the response is never held whole. Callers write the fields in
/// field-number order (error, features, files), as Google.Protobuf serializes the message, so
/// the bytes are the ones the message would give.
/// </summary>
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

    private const int MaxVarintLength = 10;

    private readonly Stream _output;
    private readonly byte[] _buffer = new byte[16 * 1024];
    private int _position;

    public ResponseWriter(Stream output)
    {
        _output = output;
    }

    /// <summary>
    /// Whether part of the response has gone to the stream. Until then <see cref="Reset"/> can
    /// start it again (to answer with an error instead).
    /// </summary>
    public bool HasWrittenOutput { get; private set; }

    /// <summary>Forgets everything written, which must not have reached the stream yet.</summary>
    public void Reset()
    {
        if (HasWrittenOutput)
        {
            throw new InvalidOperationException("part of the response is already written");
        }

        _position = 0;
    }

    public void WriteError(string error)
    {
        WriteByte(ErrorTag);
        WriteString(error);
    }

    public void WriteFeatures(ulong supportedFeatures, int minimumEdition, int maximumEdition)
    {
        WriteByte(SupportedFeaturesTag);
        WriteVarint(supportedFeatures);
        WriteByte(MinimumEditionTag);
        WriteVarint((ulong)(long)minimumEdition); // int32: a negative value is sign-extended to 64 bits
        WriteByte(MaximumEditionTag);
        WriteVarint((ulong)(long)maximumEdition);
    }

    /// <summary>Writes a generated file: its path, relative to the output folder, and its text.</summary>
    public void WriteFile(string name, ReadOnlySpan<byte> utf8Content)
    {
        int nameLength = Encoding.UTF8.GetByteCount(name);
        int fileLength = 1 + VarintLength((uint)nameLength) + nameLength + 1 + VarintLength((uint)utf8Content.Length) + utf8Content.Length;
        WriteByte(FileTag);
        WriteVarint((uint)fileLength);
        WriteByte(FileNameTag);
        WriteString(name);
        WriteByte(FileContentTag);
        WriteVarint((uint)utf8Content.Length);
        Write(utf8Content);
    }

    /// <summary>Sends what is buffered to the stream, and flushes it.</summary>
    public void Flush()
    {
        Drain();
        _output.Flush();
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

    private void WriteString(string text)
    {
        int length = Encoding.UTF8.GetByteCount(text);
        WriteVarint((uint)length);
        if (length > _buffer.Length - _position)
        {
            Drain();
        }

        if (length <= _buffer.Length)
        {
            _position += Encoding.UTF8.GetBytes(text, _buffer.AsSpan(_position));
        }
        else
        {
            Write(Encoding.UTF8.GetBytes(text));
        }
    }

    private void WriteVarint(ulong value)
    {
        if (_buffer.Length - _position < MaxVarintLength)
        {
            Drain();
        }

        while (value >= 0x80)
        {
            _buffer[_position++] = (byte)(value | 0x80);
            value >>= 7;
        }

        _buffer[_position++] = (byte)value;
    }

    private void WriteByte(byte value)
    {
        if (_position == _buffer.Length)
        {
            Drain();
        }

        _buffer[_position++] = value;
    }

    private void Write(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > _buffer.Length - _position)
        {
            Drain();
            if (bytes.Length > _buffer.Length)
            {
                // Longer than the buffer: straight to the stream, not copied first.
                HasWrittenOutput = true;
                _output.Write(bytes);
                return;
            }
        }

        bytes.CopyTo(_buffer.AsSpan(_position));
        _position += bytes.Length;
    }

    private void Drain()
    {
        if (_position > 0)
        {
            HasWrittenOutput = true;
            _output.Write(_buffer, 0, _position);
            _position = 0;
        }
    }
}
