namespace ConnectRpc.Plugin.Tests;

/// <summary>
/// One folder of testdata/: <c>proto/</c> holds the inputs, <c>golden/</c> the plugin's
/// expected output, and an optional <c>options</c> file the plugin parameter.
/// </summary>
public sealed class GoldenCase
{
    private GoldenCase(string name)
        : this(name, Path.Combine(TestEnvironment.TestDataRoot, name), "proto", "golden", messageOptions: "")
    {
        string optionsFile = Path.Combine(Directory, "options");
        Options = File.Exists(optionsFile) ? File.ReadAllText(optionsFile).Trim() : "";
    }

    private GoldenCase(string name, string directory, string protoFolder, string goldenFolder, string messageOptions)
    {
        Name = name;
        Directory = directory;
        ProtoRoot = Path.Combine(Directory, protoFolder);
        GoldenRoot = Path.Combine(Directory, goldenFolder);
        Options = "";
        MessageOptions = messageOptions;
        ProtoFiles = System.IO.Directory.EnumerateFiles(ProtoRoot, "*.proto", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(ProtoRoot, f).Replace('\\', '/'))
            .Order(StringComparer.Ordinal)
            .ToArray();
    }

    public string Name { get; }

    public string Directory { get; }

    public string ProtoRoot { get; }

    public string GoldenRoot { get; }

    public string Options { get; private init; }

    /// <summary>The parameter of protoc's C# generator, when the case's golden output holds messages too.</summary>
    public string MessageOptions { get; }

    public IReadOnlyList<string> ProtoFiles { get; }

    /// <summary>Set <c>UPDATE_GOLDEN=1</c> to rewrite the golden files from the plugin's output.</summary>
    public static bool UpdateRequested => Environment.GetEnvironmentVariable("UPDATE_GOLDEN") == "1";

    public static IEnumerable<string> Names() =>
        System.IO.Directory.EnumerateDirectories(TestEnvironment.TestDataRoot)
            .Select(Path.GetFileName)
            .OfType<string>()
            .Order(StringComparer.Ordinal);

    public static GoldenCase Load(string name) => new(name);

    /// <summary>
    /// The protocols the server runtime serves itself (health, reflection): their C#, messages
    /// and RPC layer, internal to ConnectRpc.AspNetCore, is checked in under
    /// <c>runtime/ConnectRpc.AspNetCore/Generated</c> and must be what protoc and this plugin write.
    /// </summary>
    public static GoldenCase RuntimeProtos() =>
        new("runtime protos", Path.Combine(TestEnvironment.RepoRoot, "runtime", "ConnectRpc.AspNetCore"), "Protos", "Generated", "internal_access,base_namespace=")
        {
            Options = "internal_access,base_namespace=",
        };

    public static TheoryData<string> All()
    {
        var data = new TheoryData<string>();
        foreach (string name in Names())
        {
            data.Add(name);
        }

        return data;
    }

    /// <summary>Runs protoc with the real plugin; returns the folder holding its output.</summary>
    public async Task<string> GenerateWithProtocAsync(bool withMessages = false, string? outputDirectory = null)
    {
        string output = outputDirectory ?? TestEnvironment.CreateTempDirectory();
        var args = new List<string>
        {
            "-I", ProtoRoot,
            "-I", TestEnvironment.ProtocInclude,
            $"--plugin=protoc-gen-connect-csharp={TestEnvironment.Plugin}",
            Options.Length == 0 ? $"--connect-csharp_out={output}" : $"--connect-csharp_out={Options}:{output}",
        };
        if (withMessages)
        {
            args.Add(MessageOptions.Length == 0 ? $"--csharp_out={output}" : $"--csharp_out={MessageOptions}:{output}");
        }

        args.AddRange(ProtoFiles);
        await TestEnvironment.RunCheckedAsync(TestEnvironment.Protoc, args, ProtoRoot);
        return output;
    }

    /// <summary>Runs <c>buf generate</c> with the real plugin on a copy of the inputs.</summary>
    public async Task<string> GenerateWithBufAsync()
    {
        string work = TestEnvironment.CreateTempDirectory();
        string input = Path.Combine(work, "proto");
        string output = Path.Combine(work, "out");
        foreach (string file in ProtoFiles)
        {
            string target = Path.Combine(input, file);
            System.IO.Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(Path.Combine(ProtoRoot, file), target);
        }

        // A module of its own, so the repository's buf.yaml does not claim the input.
        File.WriteAllText(Path.Combine(input, "buf.yaml"), "version: v2\n");
        string opt = Options.Length == 0 ? "" : $"\n    opt: {Options}";
        File.WriteAllText(
            Path.Combine(work, "buf.gen.yaml"),
            $"version: v2\nplugins:\n  - local: {TestEnvironment.Plugin}\n    out: {output}\n    strategy: all{opt}\n");
        await TestEnvironment.RunCheckedAsync(
            TestEnvironment.Buf, ["generate", input, "--template", Path.Combine(work, "buf.gen.yaml")], work);
        return output;
    }

    /// <summary>Relative path → content of every file under <paramref name="root"/>.</summary>
    public static SortedDictionary<string, string> ReadTree(string root)
    {
        var files = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (!System.IO.Directory.Exists(root))
        {
            return files;
        }

        foreach (string file in System.IO.Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories))
        {
            files[Path.GetRelativePath(root, file).Replace('\\', '/')] = File.ReadAllText(file);
        }

        return files;
    }
}
