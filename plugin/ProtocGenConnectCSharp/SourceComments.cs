using System.Text;
using Google.Protobuf.Reflection;

namespace ConnectRpc.Plugin;

/// <summary>Leading comments of a file's services and methods, from its <c>source_code_info</c>.</summary>
internal sealed class SourceComments
{
    // Field numbers in descriptor.proto: FileDescriptorProto.service = 6, ServiceDescriptorProto.method = 2.
    private const int ServiceField = 6;
    private const int MethodField = 2;

    private readonly Dictionary<string, string> _leading = new(StringComparer.Ordinal);

    public SourceComments(FileDescriptorProto file)
    {
        if (file.SourceCodeInfo is null)
        {
            return;
        }

        foreach (SourceCodeInfo.Types.Location location in file.SourceCodeInfo.Location)
        {
            if (location.HasLeadingComments && location.LeadingComments.Trim().Length > 0)
            {
                _leading.TryAdd(Key(location.Path), location.LeadingComments);
            }
        }
    }

    public static int[] ServicePath(int service) => [ServiceField, service];

    public static int[] MethodPath(int service, int method) => [ServiceField, service, MethodField, method];

    public string? Leading(int[] path) => _leading.GetValueOrDefault(Key(path));

    /// <summary>
    /// Writes a comment as an XML doc <c>summary</c>, escaping <c>&amp;</c>, <c>&lt;</c> and
    /// <c>&gt;</c> so any text in a .proto comment stays well-formed.
    /// </summary>
    public static void WriteSummary(CodeWriter writer, string? comment)
    {
        if (comment is null)
        {
            return;
        }

        string[] lines = comment.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        int count = lines.Length;
        while (count > 0 && lines[count - 1].Trim().Length == 0)
        {
            count--;
        }

        int start = 0;
        while (start < count && lines[start].Trim().Length == 0)
        {
            start++;
        }

        writer.Line("/// <summary>");
        for (int i = start; i < count; i++)
        {
            string line = Escape(lines[i].TrimEnd());
            writer.Line(line.Length == 0 ? "///" : "///" + (line[0] == ' ' ? line : " " + line));
        }

        writer.Line("/// </summary>");
    }

    public static string Escape(string text)
    {
        if (text.AsSpan().IndexOfAny("&<>") < 0)
        {
            return text;
        }

        var builder = new StringBuilder(text.Length + 16);
        foreach (char c in text)
        {
            _ = c switch
            {
                '&' => builder.Append("&amp;"),
                '<' => builder.Append("&lt;"),
                '>' => builder.Append("&gt;"),
                _ => builder.Append(c),
            };
        }

        return builder.ToString();
    }

    private static string Key(IEnumerable<int> path) => string.Join(',', path);
}
