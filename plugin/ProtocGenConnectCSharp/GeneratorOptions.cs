namespace ConnectRpc.Plugin;

/// <summary>
/// The plugin's parameters, as protoc passes them (<c>--connect-csharp_opt=a,b=c</c>) and
/// buf passes <c>opt:</c>. The names follow grpc's C# plugin, which .NET users know.
/// </summary>
internal sealed record GeneratorOptions
{
    public const string DefaultFileSuffix = "Connect.cs";

    private static readonly string[] s_known = ["no_client", "no_server", "no_service_base", "internal_access", "file_suffix", "base_namespace"];

    /// <summary>Options that are switches: present or absent, never given a value.</summary>
    private static readonly string[] s_flags = ["no_client", "no_server", "no_service_base", "internal_access"];

    /// <summary>Generate the client interface and class.</summary>
    public bool GenerateClient { get; init; } = true;

    /// <summary>Generate the service interface that handlers implement.</summary>
    public bool GenerateServer { get; init; } = true;

    /// <summary>
    /// Generate, beside the service interface, an abstract base class whose virtual methods
    /// answer <c>unimplemented</c>, so an implementation deriving from it keeps compiling when
    /// the service gains a method. On unless <c>no_service_base</c>; never without the interface.
    /// </summary>
    public bool GenerateServiceBase { get; init; } = true;

    /// <summary>Declare every generated type <c>internal</c> instead of <c>public</c>.</summary>
    public bool InternalAccess { get; init; }

    /// <summary>Appended to the file's base name: <c>greet.proto</c> gives <c>GreetConnect.cs</c>.</summary>
    public string FileSuffix { get; init; } = DefaultFileSuffix;

    /// <summary>
    /// Like protoc's C# option: when set (even empty), files go in folders that follow the
    /// namespace, less this prefix.
    /// </summary>
    public string? BaseNamespace { get; init; }

    /// <summary>Parses the parameter string strictly; throws <see cref="GeneratorException"/> naming what is wrong.</summary>
    public static GeneratorOptions Parse(string? parameter)
    {
        var options = new GeneratorOptions();
        if (string.IsNullOrEmpty(parameter))
        {
            return options;
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string raw in parameter.Split(','))
        {
            string item = raw.Trim();
            if (item.Length == 0)
            {
                continue;
            }

            int eq = item.IndexOf('=', StringComparison.Ordinal);
            string name = eq < 0 ? item : item[..eq].Trim();
            string? value = eq < 0 ? null : item[(eq + 1)..].Trim();
            if (!seen.Add(name))
            {
                throw new GeneratorException($"option '{name}' is given more than once");
            }

            if (value is not null && s_flags.Contains(name))
            {
                throw new GeneratorException($"option '{name}' takes no value (got '{name}={value}')");
            }

            options = name switch
            {
                "no_client" => options with { GenerateClient = false },
                "no_server" => options with { GenerateServer = false },
                "no_service_base" => options with { GenerateServiceBase = false },
                "internal_access" => options with { InternalAccess = true },
                "file_suffix" => options with { FileSuffix = FileSuffixValue(value) },
                "base_namespace" => options with { BaseNamespace = value ?? throw Needs(name, "a namespace (it may be empty: base_namespace=)") },
                _ => throw new GeneratorException($"unknown option '{name}'; known options: {string.Join(", ", s_known)}"),
            };
        }

        if (!options.GenerateClient && !options.GenerateServer)
        {
            throw new GeneratorException("options 'no_client' and 'no_server' together leave nothing to generate");
        }

        return options;
    }

    private static string FileSuffixValue(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw Needs("file_suffix", "a file name ending such as Connect.cs");
        }

        if (value.IndexOfAny(['/', '\\']) >= 0)
        {
            throw new GeneratorException($"option 'file_suffix' must not contain a path separator (got '{value}')");
        }

        return value;
    }

    private static GeneratorException Needs(string name, string what) => new($"option '{name}' needs a value: {what}");
}

/// <summary>An error in the request or its parameters, reported through <c>CodeGeneratorResponse.error</c>.</summary>
internal sealed class GeneratorException(string message) : Exception(message);

/// <summary>The input is not a request protoc or buf would send; the plugin exits non-zero.</summary>
internal sealed class InvalidRequestException(string message) : Exception(message);
