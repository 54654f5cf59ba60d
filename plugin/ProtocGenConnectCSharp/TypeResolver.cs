using Google.Protobuf.Reflection;

namespace ConnectRpc.Plugin;

/// <summary>
/// Maps fully-qualified protobuf type names (<c>.greet.v1.GreetRequest</c>) to the C# names
/// protoc's generator gives them, across every file of the request.
/// </summary>
/// <remarks>
/// A request carries every file its files import, and so far more types than its methods
/// use: names are looked up when asked for, and only the files of a package asked about are
/// indexed. protoc and buf never send two definitions of one name; should a request do so
/// anyway, the later file of a package (and the later message of a file) wins.
/// </remarks>
internal sealed class TypeResolver
{
    private readonly List<PackageFile> _files = [];
    private readonly Dictionary<string, List<PackageFile>> _filesByPackage = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _resolved = new(StringComparer.Ordinal);

    /// <summary>C# top-level type names per namespace, to keep generated names from colliding.</summary>
    private readonly Dictionary<string, HashSet<string>> _typesByNamespace = new(StringComparer.Ordinal);

    public TypeResolver(IEnumerable<FileDescriptorProto> files)
    {
        foreach (FileDescriptorProto file in files)
        {
            var packageFile = new PackageFile(file, CSharpNames.FileNamespace(file));
            _files.Add(packageFile);
            if (!_filesByPackage.TryGetValue(file.Package, out List<PackageFile>? inPackage))
            {
                inPackage = [];
                _filesByPackage.Add(file.Package, inPackage);
            }

            inPackage.Add(packageFile);
        }
    }

    /// <summary>The <c>global::</c>-qualified C# name of a message type.</summary>
    public string Resolve(string protoTypeName)
    {
        if (!_resolved.TryGetValue(protoTypeName, out string? name))
        {
            name = Find(protoTypeName)
                ?? throw new GeneratorException($"type '{protoTypeName.TrimStart('.')}' is not defined in any file of the request");
            _resolved.Add(protoTypeName, name);
        }

        return name;
    }

    /// <summary>The C# type names protoc declares in <paramref name="ns"/> (mutable: callers add theirs).</summary>
    public HashSet<string> TypesIn(string ns)
    {
        if (!_typesByNamespace.TryGetValue(ns, out HashSet<string>? set))
        {
            set = new HashSet<string>(StringComparer.Ordinal);
            foreach (PackageFile packageFile in _files)
            {
                if (packageFile.Namespace != ns)
                {
                    continue;
                }

                FileDescriptorProto file = packageFile.File;
                set.Add(CSharpNames.ReflectionClassName(file));
                foreach (DescriptorProto message in file.MessageType)
                {
                    set.Add(message.Name);
                }

                foreach (EnumDescriptorProto enumType in file.EnumType)
                {
                    set.Add(enumType.Name);
                }
            }

            _typesByNamespace.Add(ns, set);
        }

        return set;
    }

    /// <summary>
    /// Splits <c>.package.Outer.Inner</c> at each dot in turn, longest package first, and
    /// looks for the message path in that package's files.
    /// </summary>
    private string? Find(string protoTypeName)
    {
        if (!protoTypeName.StartsWith('.'))
        {
            return null;
        }

        ReadOnlySpan<char> name = protoTypeName.AsSpan(1);
        Dictionary<string, List<PackageFile>>.AlternateLookup<ReadOnlySpan<char>> packages = _filesByPackage.GetAlternateLookup<ReadOnlySpan<char>>();
        for (int dot = name.LastIndexOf('.'); ; dot = name[..dot].LastIndexOf('.'))
        {
            // dot < 0: the package is empty and the whole name is the message path.
            ReadOnlySpan<char> package = dot < 0 ? [] : name[..dot];
            if (packages.TryGetValue(package, out List<PackageFile>? files))
            {
                ReadOnlySpan<char> path = name[(dot + 1)..];
                for (int i = files.Count - 1; i >= 0; i--)
                {
                    if (files[i].Find(path) is { } csharpName)
                    {
                        return csharpName;
                    }
                }
            }

            if (dot < 0)
            {
                return null;
            }
        }
    }

    /// <summary>One file of the request, its C# namespace, and (once asked) its messages by name.</summary>
    private sealed class PackageFile(FileDescriptorProto file, string ns)
    {
        private Dictionary<string, DescriptorProto>.AlternateLookup<ReadOnlySpan<char>>? _messages;
        private string? _qualifiedPrefix;

        public FileDescriptorProto File { get; } = file;

        public string Namespace { get; } = ns;

        /// <summary>The C# name of the message at <paramref name="path"/> (<c>Outer.Inner</c>), if the file declares it.</summary>
        public string? Find(ReadOnlySpan<char> path)
        {
            int dot = path.IndexOf('.');
            if (!Messages().TryGetValue(dot < 0 ? path : path[..dot], out DescriptorProto? message))
            {
                return null;
            }

            // global::Namespace. with keywords escaped, worked out once per file.
            _qualifiedPrefix ??= CSharpNames.Qualify(Namespace, "");
            string csharpName = _qualifiedPrefix + CSharpNames.EscapeIdentifier(message.Name);
            while (dot >= 0)
            {
                path = path[(dot + 1)..];
                dot = path.IndexOf('.');
                message = LastNested(message, dot < 0 ? path : path[..dot]);
                if (message is null)
                {
                    return null;
                }

                // Nested types live in the parent's "Types" class: Outer.Types.Inner.
                csharpName += ".Types." + CSharpNames.EscapeIdentifier(message.Name);
            }

            return csharpName;
        }

        private static DescriptorProto? LastNested(DescriptorProto parent, ReadOnlySpan<char> name)
        {
            for (int i = parent.NestedType.Count - 1; i >= 0; i--)
            {
                if (name.SequenceEqual(parent.NestedType[i].Name))
                {
                    return parent.NestedType[i];
                }
            }

            return null;
        }

        private Dictionary<string, DescriptorProto>.AlternateLookup<ReadOnlySpan<char>> Messages()
        {
            if (_messages is not { } messages)
            {
                var byName = new Dictionary<string, DescriptorProto>(File.MessageType.Count, StringComparer.Ordinal);
                foreach (DescriptorProto message in File.MessageType)
                {
                    byName[message.Name] = message; // the later of two, as for files
                }

                messages = byName.GetAlternateLookup<ReadOnlySpan<char>>();
                _messages = messages;
            }

            return messages;
        }
    }
}
