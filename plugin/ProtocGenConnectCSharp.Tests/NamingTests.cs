using Google.Protobuf.Reflection;

namespace ConnectRpc.Plugin.Tests;

/// <summary>protoc's C# naming, reproduced; checked against tables and against protoc itself.</summary>
public sealed class NamingTests
{
    private static readonly (string Package, string Namespace)[] s_packages =
    [
        ("greet.v1", "Greet.V1"),
        ("foo_bar.v1_2x.a3b.HTTPServer._x", "FooBar.V12X.A3B.HTTPServer.X"),
        ("acme.orders.v1beta1", "Acme.Orders.V1Beta1"),
        ("a.b_c_d.e2e", "A.BCD.E2E"),
        ("lower.UPPER.mIxEd", "Lower.UPPER.MIxEd"),
        ("", ""),
    ];

    public static TheoryData<string, string> Packages()
    {
        var data = new TheoryData<string, string>();
        foreach ((string package, string ns) in s_packages)
        {
            data.Add(package, ns);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Packages))]
    public void FileNamespace_Package_MatchesProtocRule(string package, string expected)
    {
        var file = new FileDescriptorProto { Name = "x.proto", Package = package };
        Assert.Equal(expected, CSharpNames.FileNamespace(file));
    }

    [Fact]
    public void FileNamespace_CsharpNamespaceOption_Wins()
    {
        var file = new FileDescriptorProto { Name = "x.proto", Package = "a.b", Options = new Google.Protobuf.Reflection.FileOptions { CsharpNamespace = "Custom.Space" } };
        Assert.Equal("Custom.Space", CSharpNames.FileNamespace(file));
    }

    [Theory]
    [InlineData("greet.proto", "Greet")]
    [InlineData("greet/v1/greet_api.proto", "GreetApi")]
    [InlineData("my_file2x.proto", "MyFile2X")]
    [InlineData("dir/some.thing.proto", "SomeThing")]
    [InlineData("legacy.protodevel", "Legacy")]
    public void FileNameBase_FileName_MatchesProtocRule(string fileName, string expected)
    {
        Assert.Equal(expected, CSharpNames.FileNameBase(new FileDescriptorProto { Name = fileName }));
    }

    [Theory]
    [InlineData("Greet", "Greet")]
    [InlineData("get_user", "GetUser")]
    [InlineData("getUser", "GetUser")]
    [InlineData("get_user_v2x", "GetUserV2X")]
    [InlineData("_3d", "_3D")]
    [InlineData("__private", "Private")]
    [InlineData("HTTPGet", "HTTPGet")]
    [InlineData("", "")]
    [InlineData("_", "")]
    [InlineData("3d", "3D")]
    [InlineData("a.b-c", "ABC")]
    public void UnderscoresToPascalCase_Name_MatchesProtocRule(string input, string expected)
    {
        Assert.Equal(expected, CSharpNames.UnderscoresToPascalCase(input));
    }

    [Fact]
    public void UnderscoresToPascalCase_LongName_SameRuleAsShortOnes()
    {
        // Past the length the conversion does on the stack.
        string input = "_1" + string.Concat(Enumerable.Repeat("get_user_", 60));
        string expected = "_1" + string.Concat(Enumerable.Repeat("GetUser", 60));

        Assert.Equal(expected, CSharpNames.UnderscoresToPascalCase(input));
    }

    [Theory]
    [InlineData("My.class.Ns", "My.@class.Ns")]
    [InlineData("Plain.Name", "Plain.Name")]
    public void EscapeNamespace_Keyword_IsEscaped(string ns, string expected)
    {
        Assert.Equal(expected, CSharpNames.EscapeNamespace(ns));
    }

    [Fact]
    public async Task PackageTable_AgreesWithProtocOutput()
    {
        // The oracle for the table above is protoc's own C# generator: the namespace it declares.
        string root = TestEnvironment.CreateTempDirectory();
        string output = TestEnvironment.CreateTempDirectory();
        var expectations = new List<(string File, string Namespace)>();
        foreach ((string package, string expectedNamespace) in s_packages)
        {
            if (package.Length == 0)
            {
                continue;
            }

            string name = $"ns_check_{expectations.Count}.proto";
            File.WriteAllText(Path.Combine(root, name), $"syntax = \"proto3\";\npackage {package};\nmessage M {{}}\n");
            expectations.Add((name, expectedNamespace));
        }

        await TestEnvironment.RunCheckedAsync(
            TestEnvironment.Protoc, ["-I", root, $"--csharp_out={output}", .. expectations.Select(e => e.File)], root);

        foreach ((string file, string expectedNamespace) in expectations)
        {
            string generated = File.ReadAllText(Path.Combine(output, CSharpNames.FileNameBase(new FileDescriptorProto { Name = file }) + ".cs"));
            Assert.Contains($"namespace {expectedNamespace} {{", generated, StringComparison.Ordinal);
        }
    }
}
