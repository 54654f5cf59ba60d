using System.Text;

namespace ConnectRpc.Plugin;

/// <summary>
/// Writes indented C# with "\n" line endings on every OS, so output is byte-identical. The text
/// is kept as UTF-8, the encoding of the response, so a file never exists as one large string
/// (a large string lives long enough to be copied by every garbage collection until the
/// response is written). <see cref="Clear"/> lets one writer serve every file of a request.
/// </summary>
internal sealed class CodeWriter
{
    private const int IndentUnitLength = 4;
    private byte[] _utf8 = new byte[16 * 1024];
    private int _length;
    private int _depth;

    /// <summary>The text written since the last <see cref="Clear"/>, as UTF-8.</summary>
    public ReadOnlySpan<byte> Utf8 => _utf8.AsSpan(0, _length);

    public CodeWriter Line(string text = "")
    {
        if (text.Length > 0)
        {
            int indent = _depth * IndentUnitLength;
            Span<byte> free = Reserve(indent + Encoding.UTF8.GetMaxByteCount(text.Length) + 1);
            free[..indent].Fill((byte)' ');
            int written = Encoding.UTF8.GetBytes(text, free[indent..]);
            free[indent + written] = (byte)'\n';
            _length += indent + written + 1;
        }
        else
        {
            Reserve(1)[0] = (byte)'\n';
            _length++;
        }

        return this;
    }

    /// <summary>Writes <paramref name="header"/> (if any) and an opening brace, then indents.</summary>
    public CodeWriter Open(string? header = null)
    {
        if (header is not null)
        {
            Line(header);
        }

        Line("{");
        _depth++;
        return this;
    }

    public CodeWriter Close(string suffix = "")
    {
        _depth--;
        return Line("}" + suffix);
    }

    public CodeWriter Indent()
    {
        _depth++;
        return this;
    }

    public CodeWriter Outdent()
    {
        _depth--;
        return this;
    }

    /// <summary>Forgets the text and the indentation, keeping the buffer for the next file.</summary>
    public void Clear()
    {
        _length = 0;
        _depth = 0;
    }

    public override string ToString() => Encoding.UTF8.GetString(Utf8);

    /// <summary>The free end of the buffer, at least <paramref name="count"/> bytes long.</summary>
    private Span<byte> Reserve(int count)
    {
        if (_utf8.Length - _length < count)
        {
            // Uninitialized: every byte up to the length is written before it is read.
            byte[] larger = GC.AllocateUninitializedArray<byte>(Math.Max(_utf8.Length * 2, _length + count));
            Utf8.CopyTo(larger);
            _utf8 = larger;
        }

        return _utf8.AsSpan(_length);
    }
}
