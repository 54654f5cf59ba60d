using System.Text;

namespace ConnectRpc.Plugin.Tests;

/// <summary>
/// The real plugin, run by real protoc and real buf, must reproduce testdata/*/golden byte
/// for byte. Set UPDATE_GOLDEN=1 to regenerate the golden files instead.
/// </summary>
public sealed class GoldenTests
{
    [Theory]
    [MemberData(nameof(GoldenCase.All), MemberType = typeof(GoldenCase))]
    public async Task Protoc_Case_MatchesGolden(string name)
    {
        GoldenCase testCase = GoldenCase.Load(name);
        string output = await testCase.GenerateWithProtocAsync();
        AssertMatchesGolden(testCase, output, "protoc");
    }

    [Theory]
    [MemberData(nameof(GoldenCase.All), MemberType = typeof(GoldenCase))]
    public async Task Buf_Case_MatchesGolden(string name)
    {
        GoldenCase testCase = GoldenCase.Load(name);
        string output = await testCase.GenerateWithBufAsync();
        if (GoldenCase.UpdateRequested)
        {
            return; // the protoc test rewrites; buf must then agree on the next run
        }

        AssertMatchesGolden(testCase, output, "buf generate");
    }

    /// <summary>The runtime's checked-in health and reflection code is what protoc and the plugin write now.</summary>
    [Fact]
    public async Task Protoc_RuntimeProtos_MatchCheckedInCode()
    {
        GoldenCase runtime = GoldenCase.RuntimeProtos();
        string output = await runtime.GenerateWithProtocAsync(withMessages: true);
        AssertMatchesGolden(runtime, output, "protoc");
    }

    [Fact]
    public async Task Protoc_TwoRuns_ByteIdentical()
    {
        foreach (string name in new[] { "greet", "collisions", "comments" })
        {
            GoldenCase testCase = GoldenCase.Load(name);
            SortedDictionary<string, string> first = GoldenCase.ReadTree(await testCase.GenerateWithProtocAsync());
            SortedDictionary<string, string> second = GoldenCase.ReadTree(await testCase.GenerateWithProtocAsync());
            Assert.Equal(first, second);
        }
    }

    [Fact]
    public void Golden_EveryCase_HasInputsAndOutput()
    {
        foreach (string name in GoldenCase.Names())
        {
            GoldenCase testCase = GoldenCase.Load(name);
            Assert.True(testCase.ProtoFiles.Count > 0, $"testdata/{name}/proto has no .proto file");
            Assert.True(GoldenCase.ReadTree(testCase.GoldenRoot).Count > 0, $"testdata/{name}/golden is empty: run the tests with UPDATE_GOLDEN=1");
        }
    }

    private static void AssertMatchesGolden(GoldenCase testCase, string output, string tool)
    {
        SortedDictionary<string, string> actual = GoldenCase.ReadTree(output);
        if (GoldenCase.UpdateRequested)
        {
            if (Directory.Exists(testCase.GoldenRoot))
            {
                Directory.Delete(testCase.GoldenRoot, recursive: true);
            }

            foreach ((string path, string content) in actual)
            {
                string target = Path.Combine(testCase.GoldenRoot, path);
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.WriteAllText(target, content, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
            }

            return;
        }

        SortedDictionary<string, string> expected = GoldenCase.ReadTree(testCase.GoldenRoot);
        Assert.True(
            expected.Keys.SequenceEqual(actual.Keys),
            $"{tool} on {testCase.Directory} wrote [{string.Join(", ", actual.Keys)}], golden has [{string.Join(", ", expected.Keys)}]");
        foreach ((string path, string want) in expected)
        {
            string? difference = FirstDifference(want, actual[path]);
            Assert.True(
                difference is null,
                $"{tool} on {testCase.Directory}: {path} differs from golden (regenerate with UPDATE_GOLDEN=1 if intended). {difference}");
        }
    }

    /// <summary>The first line where two texts differ, described; null when they are equal.</summary>
    internal static string? FirstDifference(string expected, string actual)
    {
        if (string.Equals(expected, actual, StringComparison.Ordinal))
        {
            return null;
        }

        string[] want = expected.Split('\n');
        string[] got = actual.Split('\n');
        for (int i = 0; i < Math.Max(want.Length, got.Length); i++)
        {
            string? w = i < want.Length ? want[i] : null;
            string? g = i < got.Length ? got[i] : null;
            if (!string.Equals(w, g, StringComparison.Ordinal))
            {
                return $"First difference at line {i + 1}:\n  golden: {w ?? "<end of file>"}\n  actual: {g ?? "<end of file>"}";
            }
        }

        return "The files differ only in line endings.";
    }
}
