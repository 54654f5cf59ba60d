using System.Globalization;
using System.Runtime.CompilerServices;
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
    private byte[] _utf8 = new byte[4 * 1024];
    private int _length;
    private int _depth;
    private int _lineStart;

    /// <summary>The text written since the last <see cref="Clear"/>, as UTF-8.</summary>
    public ReadOnlySpan<byte> Utf8 => _utf8.AsSpan(0, _length);

    public CodeWriter Line(string text = "")
    {
        BeginLine();
        Append(text);
        return EndLine();
    }

    /// <summary>
    /// Writes an interpolated line, <c>w.Line($"...")</c>, with each part encoded straight into
    /// the buffer: no string is made for the line.
    /// </summary>
    public CodeWriter Line([InterpolatedStringHandlerArgument("")] ref LineHandler line) => EndLine();

    /// <summary>Writes <paramref name="header"/> (if any) and an opening brace, then indents.</summary>
    public CodeWriter Open(string? header = null)
    {
        if (header is not null)
        {
            Line(header);
        }

        return OpenBrace();
    }

    /// <summary>Writes an interpolated header line and an opening brace, then indents.</summary>
    public CodeWriter Open([InterpolatedStringHandlerArgument("")] ref LineHandler header)
    {
        EndLine();
        return OpenBrace();
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

    private CodeWriter OpenBrace()
    {
        Line("{");
        _depth++;
        return this;
    }

    /// <summary>Starts a line: the indentation, taken back by <see cref="EndLine"/> if the line stays empty.</summary>
    private void BeginLine()
    {
        int indent = _depth * IndentUnitLength;
        Reserve(indent)[..indent].Fill((byte)' ');
        _length += indent;
        _lineStart = _length;
    }

    private CodeWriter EndLine()
    {
        if (_length == _lineStart)
        {
            _length -= _depth * IndentUnitLength; // an empty line has no trailing spaces
        }

        Reserve(1)[0] = (byte)'\n';
        _length++;
        return this;
    }

    private void Append(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return;
        }

        _length += Encoding.UTF8.GetBytes(text, Reserve(Encoding.UTF8.GetMaxByteCount(text.Length)));
    }

    /// <summary>Appends a value that formats itself as UTF-8, such as a number.</summary>
    private void Append<T>(T value)
        where T : IUtf8SpanFormattable
    {
        int size = 32;
        int written;
        while (!value.TryFormat(Reserve(size), out written, default, CultureInfo.InvariantCulture))
        {
            size *= 2; // too little room for the value: try again with more
        }

        _length += written;
    }

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

    /// <summary>The parts of an interpolated line, appended to the writer as they come.</summary>
    [InterpolatedStringHandler]
    public readonly ref struct LineHandler
    {
        private readonly CodeWriter _writer;

        public LineHandler(int literalLength, int formattedCount, CodeWriter writer)
        {
            _ = literalLength;
            _ = formattedCount;
            _writer = writer;
            writer.BeginLine();
        }

        public void AppendLiteral(string value) => _writer.Append(value);

        public void AppendFormatted(string? value) => _writer.Append(value);

        public void AppendFormatted<T>(T value)
            where T : IUtf8SpanFormattable => _writer.Append(value);
    }
}
