using Google.Protobuf.Reflection;

namespace ConnectRpc.Plugin;

/// <summary>
/// protoc's own C# naming (csharp_helpers.cc), reproduced exactly so that every type this
/// plugin names matches the type protoc's C# generator declares.
/// </summary>
internal static class CSharpNames
{
    private static readonly HashSet<string> s_keywords =
    [
        "abstract", "as", "base", "bool", "break", "byte", "case", "catch", "char", "checked", "class", "const",
        "continue", "decimal", "default", "delegate", "do", "double", "else", "enum", "event", "explicit", "extern",
        "false", "finally", "fixed", "float", "for", "foreach", "goto", "if", "implicit", "in", "int", "interface",
        "internal", "is", "lock", "long", "namespace", "new", "null", "object", "operator", "out", "override",
        "params", "private", "protected", "public", "readonly", "ref", "return", "sbyte", "sealed", "short",
        "sizeof", "stackalloc", "static", "string", "struct", "switch", "this", "throw", "true", "try", "typeof",
        "uint", "ulong", "unchecked", "unsafe", "ushort", "using", "virtual", "void", "volatile", "while",
    ];

    /// <summary>
    /// protoc's <c>UnderscoresToCamelCase</c>: letters after an underscore, a digit or (when
    /// kept) a period are capitalised; the first letter is lowered unless
    /// <paramref name="capitalizeFirst"/>; underscores disappear.
    /// </summary>
    public static string UnderscoresToCamelCase(string input, bool capitalizeFirst, bool preservePeriod = false)
    {
        // One character of room at the front, for the underscore protoc may keep (below).
        Span<char> result = input.Length < 256 ? stackalloc char[input.Length + 1] : new char[input.Length + 1];
        int length = 1;
        bool capitalizeNext = capitalizeFirst;
        for (int i = 0; i < input.Length; i++)
        {
            char c = input[i];
            if (c is >= 'a' and <= 'z')
            {
                result[length++] = capitalizeNext ? (char)(c - 'a' + 'A') : c;
                capitalizeNext = false;
            }
            else if (c is >= 'A' and <= 'Z')
            {
                result[length++] = i == 0 && !capitalizeNext ? (char)(c - 'A' + 'a') : c;
                capitalizeNext = false;
            }
            else if (c is >= '0' and <= '9')
            {
                result[length++] = c;
                capitalizeNext = true;
            }
            else
            {
                capitalizeNext = true;
                if (c == '.' && preservePeriod)
                {
                    result[length++] = '.';
                }
            }
        }

        // An identifier may not start with a digit: protoc keeps one underscore then.
        int start = 1;
        if (length > 1 && char.IsAsciiDigit(result[1]) && input.Length > 0 && input[0] == '_')
        {
            result[0] = '_';
            start = 0;
        }

        return new string(result[start..length]);
    }

    public static string UnderscoresToPascalCase(string input) => UnderscoresToCamelCase(input, capitalizeFirst: true);

    /// <summary>The C# namespace of a file: <c>csharp_namespace</c>, else the package in PascalCase.</summary>
    public static string FileNamespace(FileDescriptorProto file) =>
        file.Options?.HasCsharpNamespace == true
            ? file.Options.CsharpNamespace
            : UnderscoresToCamelCase(file.Package, capitalizeFirst: true, preservePeriod: true);

    /// <summary>The base of the file's generated names: <c>greet/v1/greet_api.proto</c> gives <c>GreetApi</c>.</summary>
    public static string FileNameBase(FileDescriptorProto file)
    {
        string name = file.Name;
        int slash = name.LastIndexOf('/');
        if (slash >= 0)
        {
            name = name[(slash + 1)..];
        }

        if (name.EndsWith(".protodevel", StringComparison.Ordinal))
        {
            name = name[..^".protodevel".Length];
        }
        else if (name.EndsWith(".proto", StringComparison.Ordinal))
        {
            name = name[..^".proto".Length];
        }

        return UnderscoresToPascalCase(name);
    }

    /// <summary>The class protoc's C# generator declares for a file's descriptor.</summary>
    public static string ReflectionClassName(FileDescriptorProto file) => FileNameBase(file) + "Reflection";

    /// <summary>
    /// <c>global::</c>-qualified name of a type declared in the namespace <paramref name="ns"/>,
    /// escaping C# keywords in the namespace.
    /// </summary>
    public static string Qualify(string ns, string relativeName) =>
        ns.Length == 0 ? "global::" + relativeName : "global::" + EscapeNamespace(ns) + "." + relativeName;

    /// <summary>A namespace with each keyword segment escaped (<c>My.@class</c>).</summary>
    public static string EscapeNamespace(string ns)
    {
        if (ns.Length == 0)
        {
            return ns;
        }

        string[] parts = ns.Split('.');
        for (int i = 0; i < parts.Length; i++)
        {
            parts[i] = EscapeIdentifier(parts[i]);
        }

        return string.Join('.', parts);
    }

    public static string EscapeIdentifier(string name) => s_keywords.Contains(name) ? "@" + name : name;
}
