using Google.Protobuf.Reflection;

namespace ConnectRpc.Plugin.Tests;

/// <summary>Proto type names to the C# names protoc's generator declares.</summary>
public sealed class TypeResolverTests
{
    public static TheoryData<string, string> Names() => new()
    {
        { ".greet.v1.GreetRequest", "global::Greet.V1.GreetRequest" },
        { ".greet.v1.Outer.Inner", "global::Greet.V1.Outer.Types.Inner" },
        { ".greet.v1.Outer.Inner.Deepest", "global::Greet.V1.Outer.Types.Inner.Types.Deepest" },
        { ".greet.v1.class", "global::Greet.V1.@class" },
        { ".Root", "global::Root" },
        { ".my.ns.Thing", "global::My.@class.Ns.Thing" },
        { ".greet.Sub", "global::Greet.Sub" },
        { ".greet.v1.Twice", "global::Greet.V1.Later.Twice" },
    };

    [Theory]
    [MemberData(nameof(Names))]
    public void Resolve_DefinedType_ProtocCSharpName(string protoName, string expected)
    {
        var types = new TypeResolver(Files());

        Assert.Equal(expected, types.Resolve(protoName));
        Assert.Equal(expected, types.Resolve(protoName)); // and again, from what it remembers
    }

    [Theory]
    [InlineData(".greet.v1.Missing")]
    [InlineData(".greet.v1.Outer.Missing")]
    [InlineData("greet.v1.GreetRequest")]
    [InlineData(".greet.v1")]
    [InlineData(".other.GreetRequest")]
    [InlineData("")]
    public void Resolve_UndefinedType_ThrowsGeneratorException(string protoName)
    {
        var types = new TypeResolver(Files());

        Assert.Throws<GeneratorException>(() => types.Resolve(protoName));
    }

    [Fact]
    public void TypesIn_Namespace_EveryFilesTopLevelTypesAndReflectionClass()
    {
        var types = new TypeResolver(Files());

        string[] expected = ["GreetReflection", "GreetRequest", "Outer", "class", "Kind", "TwiceReflection", "Twice"];
        HashSet<string> actual = types.TypesIn("Greet.V1");
        Assert.True(actual.SetEquals(expected), string.Join(", ", actual));
        Assert.Empty(types.TypesIn("Nowhere"));
    }

    private static FileDescriptorProto[] Files() =>
    [
        new()
        {
            Name = "greet.proto",
            Package = "greet.v1",
            MessageType =
            {
                new DescriptorProto { Name = "GreetRequest" },
                new DescriptorProto { Name = "Outer", NestedType = { new DescriptorProto { Name = "Inner", NestedType = { new DescriptorProto { Name = "Deepest" } } } } },
                new DescriptorProto { Name = "class" },
            },
            EnumType = { new EnumDescriptorProto { Name = "Kind" } },
        },
        new() { Name = "root.proto", MessageType = { new DescriptorProto { Name = "Root" } } },
        new()
        {
            Name = "ns.proto",
            Package = "my.ns",
            Options = new Google.Protobuf.Reflection.FileOptions { CsharpNamespace = "My.class.Ns" },
            MessageType = { new DescriptorProto { Name = "Thing" } },
        },
        new() { Name = "sub.proto", Package = "greet", MessageType = { new DescriptorProto { Name = "Sub" } } },

        // Two definitions of one name (protoc never sends them): the later file's is used.
        new() { Name = "twice.proto", Package = "greet.v1", MessageType = { new DescriptorProto { Name = "Twice" } } },
        new()
        {
            Name = "later.proto",
            Package = "greet.v1",
            Options = new Google.Protobuf.Reflection.FileOptions { CsharpNamespace = "Greet.V1.Later" },
            MessageType = { new DescriptorProto { Name = "Twice" } },
        },
    ];
}
