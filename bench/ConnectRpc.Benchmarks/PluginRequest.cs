using Google.Protobuf.Compiler;
using Google.Protobuf.Reflection;

namespace ConnectRpc.Benchmarks;

/// <summary>
/// A synthetic <c>CodeGeneratorRequest</c> of the size the benchmark asks for: <c>files</c>
/// proto3 files, each with one service of <c>methodsPerFile</c> methods (the four RPC kinds in
/// turn) over messages of its own, as protoc would send it.
/// </summary>
internal static class PluginRequest
{
    public static CodeGeneratorRequest Create(int files, int methodsPerFile)
    {
        var request = new CodeGeneratorRequest
        {
            CompilerVersion = new Google.Protobuf.Compiler.Version { Major = 31, Minor = 1 },
        };
        for (int f = 0; f < files; f++)
        {
            string package = $"bench.area{f}.v1";
            var file = new FileDescriptorProto
            {
                Name = $"bench/area{f}/v1/area{f}.proto",
                Package = package,
                Syntax = "proto3",
                Options = new Google.Protobuf.Reflection.FileOptions { CsharpNamespace = $"Bench.Area{f}.V1" },
            };
            var service = new ServiceDescriptorProto { Name = $"Area{f}Service" };
            for (int m = 0; m < methodsPerFile; m++)
            {
                string input = $"Get{m}Request";
                string output = $"Get{m}Response";
                file.MessageType.Add(Message(input));
                file.MessageType.Add(Message(output));
                service.Method.Add(new MethodDescriptorProto
                {
                    Name = $"Get{m}",
                    InputType = $".{package}.{input}",
                    OutputType = $".{package}.{output}",
                    ClientStreaming = m % 4 is 2 or 3,
                    ServerStreaming = m % 4 is 1 or 3,
                });
            }

            file.Service.Add(service);
            request.ProtoFile.Add(file);
            request.FileToGenerate.Add(file.Name);
        }

        return request;
    }

    private static DescriptorProto Message(string name) => new()
    {
        Name = name,
        Field =
        {
            new FieldDescriptorProto { Name = "id", Number = 1, Type = FieldDescriptorProto.Types.Type.String, Label = FieldDescriptorProto.Types.Label.Optional, JsonName = "id" },
        },
    };
}
