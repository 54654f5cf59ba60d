using System.Reflection;
using System.Text.RegularExpressions;

namespace ConnectRpc.Tests;

/// <summary>
/// The repository explains itself, and its structure stays as docs/architecture.md describes
/// it: every owning file the rule table names exists, a protocol's files never use another
/// protocol's, and no file cites a document that is not in the repository.
/// </summary>
public sealed partial class ArchitectureTests
{
    private static readonly string s_root = typeof(ArchitectureTests).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "RepoRoot").Value!;

    // The protocols' own files; everything else under Internal/ is shared.
    private static readonly string[] s_connectFiles =
    [
        "runtime/ConnectRpc/Internal/ConnectProtocol.cs",
        "runtime/ConnectRpc/Internal/ConnectClientTransport.cs",
        "runtime/ConnectRpc.AspNetCore/Internal/ConnectServerCall.cs",
    ];

    private static readonly string[] s_grpcFiles =
    [
        "runtime/ConnectRpc/Internal/GrpcProtocol.cs",
        "runtime/ConnectRpc/Internal/GrpcClientTransport.cs",
        "runtime/ConnectRpc.AspNetCore/Internal/GrpcServerCall.cs",
    ];

    [Fact]
    public void RuleTable_EveryOwningFileExists()
    {
        string table = File.ReadAllText(Path.Combine(s_root, "docs", "architecture.md"));
        string[] rows = table[table.IndexOf("## Wire rule", StringComparison.Ordinal)..]
            .Split('\n')
            .Where(line => line.StartsWith("| ", StringComparison.Ordinal) && line.Contains("`runtime/", StringComparison.Ordinal))
            .ToArray();

        Assert.True(rows.Length >= 40, $"expected the rule table, found {rows.Length} rows");
        foreach (string row in rows)
        {
            string owner = row.Split('|')[2].Trim().Trim('`');
            Assert.True(File.Exists(Path.Combine(s_root, owner)), $"docs/architecture.md names {owner}, which does not exist");
        }
    }

    [Fact]
    public void ProtocolFiles_UseNoOtherProtocolsFile()
    {
        foreach (string file in s_connectFiles)
        {
            Assert.DoesNotMatch(GrpcName(), Code(file));
        }

        foreach (string file in s_grpcFiles)
        {
            Assert.DoesNotMatch(ConnectName(), Code(file));
        }
    }

    [Fact]
    public void NoFile_CitesADocumentOutsideTheRepository()
    {
        // Built from parts, so this file does not cite them itself.
        string[] outside = ["protocol" + ".md", "design" + ".md", "style" + ".md", "../" + "shared"];
        var offenders = new List<string>();
        foreach (string file in SourceAndDocs(s_root))
        {
            string text = File.ReadAllText(file);
            offenders.AddRange(outside.Where(name => text.Contains(name, StringComparison.Ordinal)).Select(name => $"{Path.GetRelativePath(s_root, file)} cites {name}"));
        }

        Assert.Empty(offenders);
    }

    private static IEnumerable<string> SourceAndDocs(string directory)
    {
        foreach (string file in Directory.EnumerateFiles(directory))
        {
            if (file.EndsWith(".cs", StringComparison.Ordinal) || file.EndsWith(".md", StringComparison.Ordinal))
            {
                yield return file;
            }
        }

        foreach (string sub in Directory.EnumerateDirectories(directory))
        {
            string name = Path.GetFileName(sub);
            if (name is "bin" or "obj" or "node_modules" or ".git" || name.StartsWith('.'))
            {
                continue;
            }

            foreach (string file in SourceAndDocs(sub))
            {
                yield return file;
            }
        }
    }

    /// <summary>A file's code without its comments, so a comment may still compare protocols.</summary>
    private static string Code(string relativePath) =>
        CommentLine().Replace(File.ReadAllText(Path.Combine(s_root, relativePath)), string.Empty);

    [GeneratedRegex(@"\b(GrpcProtocol|GrpcClientTransport|GrpcServerCall)\b")]
    private static partial Regex GrpcName();

    [GeneratedRegex(@"\b(ConnectProtocol|ConnectClientTransport|ConnectServerCall)\b")]
    private static partial Regex ConnectName();

    [GeneratedRegex(@"^\s*//.*$", RegexOptions.Multiline)]
    private static partial Regex CommentLine();
}
