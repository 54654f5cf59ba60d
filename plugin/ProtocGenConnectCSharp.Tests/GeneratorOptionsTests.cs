namespace ConnectRpc.Plugin.Tests;

public sealed class GeneratorOptionsTests
{
    [Fact]
    public void Parse_Empty_GeneratesEverythingPublic()
    {
        GeneratorOptions options = GeneratorOptions.Parse("");

        Assert.True(options.GenerateClient);
        Assert.True(options.GenerateServer);
        Assert.True(options.GenerateServiceBase);
        Assert.False(options.InternalAccess);
        Assert.Equal("Connect.cs", options.FileSuffix);
        Assert.Null(options.BaseNamespace);
    }

    [Fact]
    public void Parse_AllOptions_AreApplied()
    {
        GeneratorOptions options = GeneratorOptions.Parse("no_server, no_service_base, internal_access,file_suffix=Rpc.g.cs,base_namespace=Acme");

        Assert.True(options.GenerateClient);
        Assert.False(options.GenerateServer);
        Assert.False(options.GenerateServiceBase);
        Assert.True(options.InternalAccess);
        Assert.Equal("Rpc.g.cs", options.FileSuffix);
        Assert.Equal("Acme", options.BaseNamespace);
    }

    [Fact]
    public void Parse_EmptyBaseNamespace_MeansFoldersForTheWholeNamespace()
    {
        Assert.Equal("", GeneratorOptions.Parse("base_namespace=").BaseNamespace);
    }

    [Theory]
    [InlineData("frobnicate", "unknown option 'frobnicate'")]
    [InlineData("no_client=true", "option 'no_client' takes no value")]
    [InlineData("no_service_base=false", "option 'no_service_base' takes no value")]
    [InlineData("no_client,no_server", "leave nothing to generate")]
    [InlineData("file_suffix=", "option 'file_suffix' needs a value")]
    [InlineData("file_suffix=a/b.cs", "must not contain a path separator")]
    [InlineData("base_namespace", "option 'base_namespace' needs a value")]
    [InlineData("internal_access,internal_access", "given more than once")]
    public void Parse_BadOption_ThrowsNamingIt(string parameter, string message)
    {
        GeneratorException error = Assert.Throws<GeneratorException>(() => GeneratorOptions.Parse(parameter));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }
}
