using System.Globalization;
using System.Text;

namespace ConnectRpc.Plugin.Tests;

/// <summary>The UTF-8 code writer: interpolated lines write what the same string would.</summary>
public sealed class CodeWriterTests
{
    public static TheoryData<int, string> Parts() => new()
    {
        { 0, "Greet" },
        { 1, "Grüße 名前 🙂" },
        { 3, "" },
        { 2, "<&>" },
    };

    [Theory]
    [MemberData(nameof(Parts))]
    public void Line_Interpolated_WritesWhatTheStringWould(int depth, string part)
    {
        int number = -42;
        CodeWriter interpolated = Indented(depth).Line($"{part}.{number}:{part}{part}");
        CodeWriter concatenated = Indented(depth).Line(part + "." + number + ":" + part + part);

        Assert.Equal(concatenated.ToString(), interpolated.ToString());
        Assert.Equal(new string(' ', depth * 4) + part + ".-42:" + part + part + "\n", interpolated.ToString());
    }

    [Fact]
    public void Line_EmptyInterpolation_WritesNoIndentation()
    {
        string empty = "";
        CodeWriter writer = Indented(2).Line($"{empty}").Line();

        Assert.Equal("\n\n", writer.ToString());
    }

    [Fact]
    public void Line_PastTheFirstBuffer_KeepsEveryLine()
    {
        var writer = new CodeWriter();
        var expected = new StringBuilder();
        for (int i = 0; i < 5_000; i++)
        {
            writer.Open($"class C{i} // é").Close();
            expected.Append(CultureInfo.InvariantCulture, $"class C{i} // é\n{{\n}}\n");
        }

        Assert.Equal(expected.ToString(), writer.ToString());
        Assert.Equal(Encoding.UTF8.GetBytes(expected.ToString()), writer.Utf8.ToArray());
    }

    [Fact]
    public void Clear_AfterText_StartsAgainUnindented()
    {
        CodeWriter writer = Indented(2).Line("x");
        writer.Clear();

        Assert.Equal("y\n", writer.Line("y").ToString());
    }

    private static CodeWriter Indented(int depth)
    {
        var writer = new CodeWriter();
        for (int i = 0; i < depth; i++)
        {
            writer.Indent();
        }

        return writer;
    }
}
