using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace ConnectRpc.Plugin.Tests;

/// <summary>
/// Generated code refers to <c>ConnectRpc.VersionCheck.IsAtLeastVersionX_Y_Z</c> of the plugin's version, so
/// that it compiles against that runtime or a newer one, and against an older one fails to compile with an
/// error that names the version (not at run time).
/// </summary>
public sealed class VersionCheckTests
{
    [Fact]
    public void Runtime_DeclaresTheConstantOfThePluginsVersion()
    {
        Assert.Equal($"IsAtLeastVersion{PackageFixture.Version.Split('-')[0].Replace('.', '_')}", Generator.RuntimeVersionCheck);
        FieldInfo? field = typeof(VersionCheck).GetField(Generator.RuntimeVersionCheck, BindingFlags.Public | BindingFlags.Static);
        Assert.NotNull(field);
        Assert.True(field.IsLiteral);
        Assert.Equal(true, field.GetRawConstantValue());
    }

    [Fact]
    public async Task GeneratedCode_AgainstAnOlderRuntime_FailsToCompileNamingTheVersion()
    {
        // Code from a plugin newer than this runtime: its version's constant is one the runtime lacks.
        string output = await GoldenCase.Load("greet").GenerateWithProtocAsync(withMessages: true);
        string connect = Path.Combine(output, "GreetConnect.cs");
        string newer = File.ReadAllText(connect).Replace(Generator.RuntimeVersionCheck, "IsAtLeastVersion99_0_0", StringComparison.Ordinal);
        Assert.Contains("IsAtLeastVersion99_0_0", newer, StringComparison.Ordinal);
        CSharpParseOptions parse = CSharpParseOptions.Default.WithLanguageVersion(LanguageVersion.Latest);
        SyntaxTree[] trees =
        [
            CSharpSyntaxTree.ParseText(newer, parse, "GreetConnect.cs", cancellationToken: TestContext.Current.CancellationToken),
            CSharpSyntaxTree.ParseText(File.ReadAllText(Path.Combine(output, "Greet.cs")), parse, "Greet.cs", cancellationToken: TestContext.Current.CancellationToken),
        ];
        string tpa = (string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!;
        CSharpCompilation compilation = CSharpCompilation.Create(
            "VersionCheck",
            trees,
            tpa.Split(Path.PathSeparator).Where(p => p.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)).Select(p => MetadataReference.CreateFromFile(p)),
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));

        Diagnostic[] errors = [.. compilation.GetDiagnostics(TestContext.Current.CancellationToken).Where(d => d.Severity == DiagnosticSeverity.Error)];

        Diagnostic error = Assert.Single(errors);
        Assert.Equal("CS0117", error.Id);
        Assert.Contains("'VersionCheck' does not contain a definition for 'IsAtLeastVersion99_0_0'", error.GetMessage(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);

        // The lines above the failing one say what it means and what to do.
        string[] lines = newer.ReplaceLineEndings("\n").Split('\n');
        int line = error.Location.GetLineSpan().StartLinePosition.Line;
        Assert.Contains("IsAtLeastVersion99_0_0", lines[line], StringComparison.Ordinal);
        Assert.Contains("the ConnectRpc package is older than the protoc-gen-connect-csharp", lines[line - 2], StringComparison.Ordinal);
        Assert.Contains("update ConnectRpc", lines[line - 1], StringComparison.Ordinal);
    }
}
