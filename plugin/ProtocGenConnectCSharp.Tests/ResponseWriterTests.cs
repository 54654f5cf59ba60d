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

    /// <summary>File contents: empty, one line, non-ASCII, and longer than the writer's buffer.</summary>
    public static TheoryData<string, int> Contents() => new()
    {
        { "", 1 },
        { "namespace A;\n", 1 },
        { "// Grüße, 名前, 🙂\n", 3 },
        { new string('x', 40 * 1024), 3 },
        { string.Concat(Enumerable.Repeat("// é 🙂 abc\n", 200_000)), 2 },
    };

    [Theory]
    [MemberData(nameof(Contents))]
    public void WriteFile_Files_BytesEqualTheMessage(string content, int files)
    {
        using var output = new MemoryStream();
        var writer = new ResponseWriter(output);
        writer.WriteFeatures(Features, MinimumEdition, MaximumEdition);
        CodeGeneratorResponse expected = NewMessage();
        for (int i = 0; i < files; i++)
        {
            string name = $"dir/Fü{i}Connect.cs";
            writer.WriteFile(name, Encoding.UTF8.GetBytes(content));
            expected.File.Add(new CodeGeneratorResponse.Types.File { Name = name, Content = content });
        }

        writer.Flush();

        Assert.Equal(expected.ToByteArray(), output.ToArray());
    }

    [Fact]
    public void WriteError_LongerThanTheBuffer_BytesEqualTheMessage()
    {
        string error = "a.proto: " + string.Concat(Enumerable.Repeat("type 'Ä' is not defined; ", 5_000));
        using var output = new MemoryStream();
        var writer = new ResponseWriter(output);
        writer.WriteError(error);
        writer.WriteFeatures(Features, MinimumEdition, MaximumEdition);
        writer.Flush();

        CodeGeneratorResponse expected = NewMessage();
        expected.Error = error;
        Assert.Equal(expected.ToByteArray(), output.ToArray());
    }

    [Fact]
    public void Reset_BeforeOutput_LeavesOnlyWhatFollows()
    {
        using var output = new MemoryStream();
        var writer = new ResponseWriter(output);
        writer.WriteFeatures(Features, MinimumEdition, MaximumEdition);
        writer.WriteFile("AConnect.cs", "class A {}\n"u8);

        Assert.False(writer.HasWrittenOutput);
        writer.Reset();
        writer.WriteError("internal error");
        writer.Flush();

        Assert.Equal(new CodeGeneratorResponse { Error = "internal error" }.ToByteArray(), output.ToArray());
    }

    [Fact]
    public void Reset_AfterOutput_Throws()
    {
        using var output = new MemoryStream();
        var writer = new ResponseWriter(output);
        writer.WriteFile("AConnect.cs", Encoding.UTF8.GetBytes(new string('x', 100_000)));

        Assert.True(writer.HasWrittenOutput);
        Assert.Throws<InvalidOperationException>(writer.Reset);
    }

    [Fact]
    public void WriteFeatures_NegativeEdition_BytesEqualTheMessage()
    {
        using var output = new MemoryStream();
        var writer = new ResponseWriter(output);
        writer.WriteFeatures(0, -1, int.MaxValue);
        writer.Flush();

        var expected = new CodeGeneratorResponse { SupportedFeatures = 0, MinimumEdition = -1, MaximumEdition = int.MaxValue };
        Assert.Equal(expected.ToByteArray(), output.ToArray());
    }

    private static CodeGeneratorResponse NewMessage() => new()
    {
        SupportedFeatures = Features,
        MinimumEdition = MinimumEdition,
        MaximumEdition = MaximumEdition,
    };
}
