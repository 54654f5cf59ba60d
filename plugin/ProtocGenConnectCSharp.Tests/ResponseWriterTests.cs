using System.Text;
using Google.Protobuf;
using Google.Protobuf.Compiler;

namespace ConnectRpc.Plugin.Tests;

/// <summary>The hand-written <c>CodeGeneratorResponse</c> encoding against Google.Protobuf's.</summary>
public sealed class ResponseWriterTests
{
    private const ulong Features = 3;
    private const int MinimumEdition = 998;
    private const int MaximumEdition = 1001;

    /// <summary>File contents by size: empty, one line, non-ASCII, and past one and several segments.</summary>
    public static TheoryData<string, int> Contents() => new()
    {
        { "", 1 },
        { "namespace A;\n", 1 },
        { "// Grüße, 名前, 🙂\n", 3 },
        { new string('x', 16 * 1024 + 1), 2 },
        { string.Concat(Enumerable.Repeat("// é 🙂 abc\n", 200_000)), 2 },
    };

    [Theory]
    [MemberData(nameof(Contents))]
    public void AddFile_Files_BytesEqualTheMessage(string content, int files)
    {
        var writer = new ResponseWriter(Features, MinimumEdition, MaximumEdition);
        var expected = NewMessage();
        for (int i = 0; i < files; i++)
        {
            string name = $"dir/Fü{i}Connect.cs";
            writer.AddFile(name, Encoding.UTF8.GetBytes(content));
            expected.File.Add(new CodeGeneratorResponse.Types.File { Name = name, Content = content });
        }

        Assert.Equal(expected.ToByteArray(), writer.ToArray());
        Assert.Equal(expected.CalculateSize(), writer.Length);
    }

    [Fact]
    public void Fail_AfterFiles_BytesEqualTheMessageWithOnlyTheError()
    {
        var writer = new ResponseWriter(Features, MinimumEdition, MaximumEdition);
        writer.AddFile("AConnect.cs", Encoding.UTF8.GetBytes(new string('x', 100_000)));
        writer.Fail("a.proto: type 'Ä' is not defined");

        CodeGeneratorResponse expected = NewMessage();
        expected.Error = "a.proto: type 'Ä' is not defined";
        Assert.Equal(expected.ToByteArray(), writer.ToArray());
    }

    [Fact]
    public void Constructor_NegativeEdition_BytesEqualTheMessage()
    {
        var writer = new ResponseWriter(0, -1, int.MaxValue);

        var expected = new CodeGeneratorResponse { SupportedFeatures = 0, MinimumEdition = -1, MaximumEdition = int.MaxValue };
        Assert.Equal(expected.ToByteArray(), writer.ToArray());
    }

    private static CodeGeneratorResponse NewMessage() => new()
    {
        SupportedFeatures = Features,
        MinimumEdition = MinimumEdition,
        MaximumEdition = MaximumEdition,
    };
}
