using Google.Protobuf.Reflection;

namespace ConnectRpc.Plugin;

/// <summary>
/// Maps fully-qualified protobuf type names (<c>.greet.v1.GreetRequest</c>) to the C# names
/// protoc's generator gives them, across every file of the request.
/// </summary>
internal sealed class TypeResolver
{
    private readonly Dictionary<string, string> _csharpNames = new(StringComparer.Ordinal);

    /// <summary>C# top-level type names per namespace, to keep generated names from colliding.</summary>
    private readonly Dictionary<string, HashSet<string>> _typesByNamespace = new(StringComparer.Ordinal);

    public TypeResolver(IEnumerable<FileDescriptorProto> files)
    {
        foreach (FileDescriptorProto file in files)
        {
            string ns = CSharpNames.FileNamespace(file);
            string protoPrefix = file.Package.Length == 0 ? "." : "." + file.Package + ".";
            string csharpPrefix = CSharpNames.Qualify(ns, ""); // global::Namespace. (escaped once per file)
            HashSet<string> declared = TypesIn(ns);
            declared.Add(CSharpNames.ReflectionClassName(file));
            foreach (DescriptorProto message in file.MessageType)
            {
                declared.Add(message.Name);
                AddMessage(csharpPrefix, protoPrefix, message);
            }

            foreach (EnumDescriptorProto enumType in file.EnumType)
            {
                declared.Add(enumType.Name);
            }
        }
    }

    /// <summary>The <c>global::</c>-qualified C# name of a message type.</summary>
    public string Resolve(string protoTypeName) =>
        _csharpNames.TryGetValue(protoTypeName, out string? name)
            ? name
            : throw new GeneratorException($"type '{protoTypeName.TrimStart('.')}' is not defined in any file of the request");

    /// <summary>The C# type names protoc declares in <paramref name="ns"/> (mutable: callers add theirs).</summary>
    public HashSet<string> TypesIn(string ns)
    {
        if (!_typesByNamespace.TryGetValue(ns, out HashSet<string>? set))
        {
            set = new HashSet<string>(StringComparer.Ordinal);
            _typesByNamespace.Add(ns, set);
        }

        return set;
    }

    private void AddMessage(string csharpPrefix, string protoPrefix, DescriptorProto message)
    {
        string csharpName = csharpPrefix + CSharpNames.EscapeIdentifier(message.Name);
        string protoName = protoPrefix + message.Name;
        _csharpNames[protoName] = csharpName;
        foreach (DescriptorProto nested in message.NestedType)
        {
            // Nested types live in the parent's "Types" class: Outer.Types.Inner.
            AddMessage(csharpName + ".Types.", protoName + ".", nested);
        }
    }
}
