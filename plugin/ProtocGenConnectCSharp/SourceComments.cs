using System.Text;
using Google.Protobuf.Collections;
using Google.Protobuf.Reflection;

namespace ConnectRpc.Plugin;

/// <summary>Leading comments of a file's services and methods, from its <c>source_code_info</c>.</summary>
internal sealed class SourceComments
{
    // Field numbers in descriptor.proto: FileDescriptorProto.service = 6, ServiceDescriptorProto.method = 2.
    private const int ServiceField = 6;
    private const int MethodField = 2;

    /// <summary>Leading comments by service and method index; a service's own has method index -1.</summary>
    private readonly Dictionary<(int Service, int Method), string> _leading = [];

    public SourceComments(FileDescriptorProto file)
    {
        if (file.SourceCodeInfo is null)
        {
            return;
        }

        foreach (SourceCodeInfo.Types.Location location in file.SourceCodeInfo.Location)
        {
            if (!location.HasLeadingComments || string.IsNullOrWhiteSpace(location.LeadingComments))
            {
                continue;
            }

            // The paths of a service, [6, s], and of one of its methods, [6, s, 2, m].
            RepeatedField<int> path = location.Path;
            if (path.Count == 2 && path[0] == ServiceField)
            {
                _leading.TryAdd((path[1], -1), location.LeadingComments);
            }
            else if (path.Count == 4 && path[0] == ServiceField && path[2] == MethodField)
            {
                _leading.TryAdd((path[1], path[3]), location.LeadingComments);
            }
        }
    }

    public string? Service(int service) => _leading.GetValueOrDefault((service, -1));

    public string? Method(int service, int method) => _leading.GetValueOrDefault((service, method));

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
}
