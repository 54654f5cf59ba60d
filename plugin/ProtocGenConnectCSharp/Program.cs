using System.Reflection;
using Google.Protobuf;
using Google.Protobuf.Compiler;

namespace ConnectRpc.Plugin;

/// <summary>
/// protoc-gen-connect-csharp: reads a <c>CodeGeneratorRequest</c> on stdin and writes a
/// <c>CodeGeneratorResponse</c> on stdout. protoc and buf run it; people run it for
/// <c>--help</c> and <c>--version</c>.
/// </summary>
internal static class Program
{
    private const string Name = "protoc-gen-connect-csharp";

    private const string Help =
        "Usage: " + Name + " [--help | --version]\n\n" +
        "protoc plugin that generates Connect RPC service interfaces, base classes and clients for C#.\n\n" +
        "It reads a CodeGeneratorRequest on stdin and writes a CodeGeneratorResponse on stdout; run it\n" +
        "through protoc or buf:\n" +
        "  protoc --plugin=protoc-gen-connect-csharp=bin/protoc-gen-connect-csharp \\\n" +
        "         --csharp_out=gen --connect-csharp_out=gen greet.proto\n\n" +
        "Options (--connect-csharp_opt=a,b=c, or opt: in buf.gen.yaml):\n" +
        "  no_client          do not generate the client interface and class\n" +
        "  no_server          do not generate the service interface (nor its base class)\n" +
        "  no_service_base    do not generate the base class whose methods answer unimplemented\n" +
        "  internal_access    declare the generated types internal\n" +
        "  file_suffix=X      output file name ending (default: Connect.cs)\n" +
        "  base_namespace=X   put files in folders that follow the namespace below X, as protoc's C# option does\n\n" +
        "Arguments:\n" +
        "  -h, -?, --help     show this help\n" +
        "  --version          show the version\n";

    /// <summary>
    /// protoc and buf run the plugin with no arguments; people, with <c>--help</c> or
    /// <c>--version</c>. The arguments are matched by hand: a command-line library costs the
    /// plugin's every run a few milliseconds of start-up (its own code and resources), for two
    /// flags.
    /// </summary>
    public static int Main(string[] args)
    {
        switch (args)
        {
            case []:
                return Run();
            case ["--help" or "-h" or "-?"]:
                Console.Out.Write(Help);
                return 0;
            case ["--version"]:
                Console.Out.WriteLine(typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion);
                return 0;
            default:
                Console.Error.WriteLine($"{Name}: unknown arguments '{string.Join(' ', args)}'; protoc and buf pass none (see --help).");
                return 2;
        }
    }

    private static int Run()
    {
        if (!Console.IsInputRedirected)
        {
            Console.Error.WriteLine($"{Name}: reads a CodeGeneratorRequest on stdin; run it through protoc or buf (see --help).");
            return 2;
        }

        CodeGeneratorRequest request;
        try
        {
            // Parsed from one array rather than the stream: no refills of a small buffer.
            using var input = new MemoryStream();
            using (Stream stdin = Console.OpenStandardInput())
            {
                stdin.CopyTo(input);
            }

            request = CodeGeneratorRequest.Parser.ParseFrom(input.GetBuffer().AsSpan(0, (int)input.Length));
        }
        catch (Exception ex) when (ex is InvalidProtocolBufferException or IOException)
        {
            Console.Error.WriteLine($"{Name}: stdin is not a CodeGeneratorRequest: {OneLine(ex.Message)}");
            return 1;
        }

        using Stream stdout = Console.OpenStandardOutput();
        var response = new ResponseWriter(stdout);
        try
        {
            Generator.Generate(request, response);
        }
        catch (InvalidRequestException ex)
        {
            Console.Error.WriteLine($"{Name}: stdin is not a CodeGeneratorRequest: {OneLine(ex.Message)}");
            return 1;
        }
#pragma warning disable CA1031 // Any failure must reach protoc as an error, never as a stack trace.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            string error = $"{Name}: internal error: {OneLine(ex.Message)}";
            if (response.HasWrittenOutput)
            {
                // Part of the response is out: protoc reports the exit status and this line.
                Console.Error.WriteLine(error);
                return 1;
            }

            response.Reset();
            response.WriteError(error);
        }

        response.Flush();
        return 0;
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");
}
