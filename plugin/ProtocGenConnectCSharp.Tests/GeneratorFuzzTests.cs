using ConnectRpc.Tests;
using CsCheck;
using Google.Protobuf;
using Google.Protobuf.Compiler;
using Google.Protobuf.Reflection;

namespace ConnectRpc.Plugin.Tests;

/// <summary>
/// <see cref="Generator.Generate"/> on requests protoc would never send: valid requests
/// changed at random, and serialized requests with bytes changed. The plugin must answer
/// with a response (its <c>error</c> set, when the request is unusable) or refuse the request
/// with <see cref="InvalidRequestException"/>, never fail any other way (Program.cs turns
/// anything else into an "internal error").
/// </summary>
public sealed class GeneratorFuzzTests
{
    /// <summary>Names: ordinary, empty, keywords, digits first, dotted, non-ASCII, clashing with generated ones.</summary>
    private static readonly Gen<string> s_name = Gen.OneOf(
        "Greet", "greet_v1", "", "_", "__", "class", "@class", "1abc", "_1abc", "a.b", ".a", "a..b", "Ä", "名前", "GreetRequest",
        "GreetService", "GreetServiceClient", "IGreetService", "GreetServiceConnect", "Procedures", "ToString", "Equals", "Greet_", "GREET",
        "a/b", "x.proto", "x.protodevel", "a b", "\n", "<&>");

    private static readonly Gen<string> s_typeName = Gen.Frequency(
        (2, Gen.OneOf(".greet.v1.GreetRequest", ".greet.v1.GreetResponse", ".greet.v1.Outer.Inner", ".other.Thing", ".Root", ".google.protobuf.Empty")),
        (1, Gen.OneOf("", ".", "..", "GreetRequest", ".greet.v1.", ".greet.v1.Missing", ".greet", "greet.v1.GreetRequest")),
        (1, s_name.Select(name => "." + name)));

    private static readonly Gen<string> s_parameter = Gen.OneOf(
            "no_client", "no_server", "no_service_base", "no_service_base=1", "internal_access", "file_suffix=", "file_suffix=X.cs", "file_suffix=a/b", "file_suffix",
            "base_namespace=", "base_namespace", "base_namespace=Greet", "base_namespace=Greet.V1", "base_namespace=Other", "base_namespace=.",
            "=", "", " ", "frobnicate", "no_client=1", "internal_access=", "file_suffix==", "base_namespace=a=b")
        .Array[0, 4]
        .Select(items => string.Join(",", items));

    /// <summary>One random change to a request.</summary>
    private static readonly Gen<Mutation> s_mutation = Gen.OneOf<Mutation>(
        Gen.Int[0, 99].Select(i => new Mutation($"remove message {i}", r => RemoveAt(AnyFile(r, i)?.MessageType, i))),
        Gen.Select(Gen.Int[0, 99], s_name).Select((i, name) => new Mutation($"rename message {i} to '{name}'", r =>
        {
            if (Pick(AnyFile(r, i)?.MessageType, i) is { } message)
            {
                message.Name = name;
            }
        })),
        Gen.Select(Gen.Int[0, 99], s_typeName, Gen.Bool).Select((i, type, input) => new Mutation($"method {i} {(input ? "input" : "output")} type '{type}'", r =>
        {
            if (AnyMethod(r, i) is { } method)
            {
                _ = input ? method.InputType = type : method.OutputType = type;
            }
        })),
        Gen.Select(Gen.Int[0, 99], s_name).Select((i, name) => new Mutation($"rename method {i} to '{name}'", r =>
        {
            if (AnyMethod(r, i) is { } method)
            {
                method.Name = name;
            }
        })),
        Gen.Select(Gen.Int[0, 99], s_name).Select((i, name) => new Mutation($"rename service {i} to '{name}'", r =>
        {
            if (Pick(AnyFile(r, i)?.Service, i) is { } service)
            {
                service.Name = name;
            }
        })),
        Gen.Int[0, 99].Select(i => new Mutation($"remove service {i}", r => RemoveAt(AnyFile(r, i)?.Service, i))),
        Gen.Int[0, 99].Select(i => new Mutation($"copy service {i}", r =>
        {
            if (Pick(AnyFile(r, i)?.Service, i) is { } service)
            {
                AnyFile(r, i + 1)!.Service.Add(service.Clone()); // a twin service, maybe in another file
            }
        })),
        s_parameter.Select(parameter => new Mutation($"parameter '{parameter}'", r => r.Parameter = parameter)),
        Gen.Int[0, 99].Select(i => new Mutation($"remove file {i}", r => RemoveAt(r.ProtoFile, i))),
        Gen.Select(Gen.Int[0, 99], Gen.Frequency((3, Gen.Const((string?)null)), (1, s_name.Select(n => (string?)n))))
            .Select((i, name) => new Mutation($"generate file {(object?)name ?? i}", r =>
            {
                if (name is not null)
                {
                    r.FileToGenerate.Add(name);
                }
                else if (r.ProtoFile.Count > 0)
                {
                    r.FileToGenerate.Add(r.ProtoFile[i % r.ProtoFile.Count].Name); // maybe twice
                }
            })),
        Gen.Int[0, 99].Select(i => new Mutation($"do not generate file {i}", r => RemoveAt(r.FileToGenerate, i))),
        Gen.Select(Gen.Int[0, 99], s_name).Select((i, name) => new Mutation($"file {i} package '{name}'", r =>
        {
            if (AnyFile(r, i) is { } file)
            {
                file.Package = name;
            }
        })),
        Gen.Select(Gen.Int[0, 99], s_name).Select((i, name) => new Mutation($"file {i} csharp_namespace '{name}'", r =>
        {
            if (AnyFile(r, i) is { } file)
            {
                (file.Options ??= new Google.Protobuf.Reflection.FileOptions()).CsharpNamespace = name;
            }
        })),
        Gen.Select(Gen.Int[0, 99], s_name).Select((i, name) => new Mutation($"file {i} name '{name}'", r =>
        {
            if (AnyFile(r, i) is { } file)
            {
                file.Name = name; // file_to_generate may no longer find it
            }
        })),
        Gen.Select(Gen.Int[0, 99], Gen.Int[-2, 8].Array[0, 5], s_name).Select((i, path, comment) => new Mutation($"file {i} comment '{comment}' at [{string.Join(",", path)}]", r =>
        {
            if (AnyFile(r, i) is { } file)
            {
                var location = new SourceCodeInfo.Types.Location { LeadingComments = comment + "\r\n x <y> & z\n" };
                location.Path.AddRange(path);
                (file.SourceCodeInfo ??= new SourceCodeInfo()).Location.Add(location);
            }
        })),
        Gen.Select(Gen.Int[0, 99], Gen.Int[0, 3], Gen.Bool).Select((i, level, deprecated) => new Mutation($"method {i} options {level} {deprecated}", r =>
        {
            if (AnyMethod(r, i) is { } method)
            {
                method.Options = new MethodOptions { IdempotencyLevel = (MethodOptions.Types.IdempotencyLevel)level, Deprecated = deprecated };
                method.ClientStreaming = level % 2 == 1;
                method.ServerStreaming = level >= 2;
            }
        })));

    [Fact]
    public void Generate_BaseRequest_GeneratesBothFiles()
    {
        CodeGeneratorResponse response = Generate(BaseRequest());

        Assert.False(response.HasError, response.Error);
        Assert.Equal(["GreetConnect.cs", "RootConnect.cs"], response.File.Select(file => file.Name));
    }

    [Fact]
    public void Generate_RandomlyChangedRequest_AnswersOrRefusesCleanly()
    {
        s_mutation.Array[1, 6].Check(
            mutations =>
            {
                CodeGeneratorRequest request = BaseRequest();
                foreach (Mutation mutation in mutations)
                {
                    mutation.Apply(request);
                }

                AssertAnswersOrRefuses(request);
            },
            iterations: 500);
    }

    [Fact]
    public void Generate_SerializedRequestWithBytesChanged_ParsesAndAnswersOrRefusesCleanly()
    {
        byte[] whole = BaseRequest().ToByteArray();
        Gen.Select(Gen.Int[0, whole.Length - 1], Gen.Byte).Array[1, 4].Check(
            changes =>
            {
                byte[] bytes = (byte[])whole.Clone();
                foreach ((int at, byte value) in changes)
                {
                    bytes[at] = value;
                }

                CodeGeneratorRequest request;
                try
                {
                    request = CodeGeneratorRequest.Parser.ParseFrom(bytes);
                }
                catch (InvalidProtocolBufferException)
                {
                    return; // Program.cs reports it and exits 1
                }

                AssertAnswersOrRefuses(request);
            },
            iterations: 500);
    }

    /// <summary>The response as protoc reads it: the plugin's bytes, parsed.</summary>
    private static CodeGeneratorResponse Generate(CodeGeneratorRequest request)
    {
        using var output = new MemoryStream();
        var response = new ResponseWriter(output);
        Generator.Generate(request, response);
        response.Flush();
        return CodeGeneratorResponse.Parser.ParseFrom(output.ToArray());
    }

    private static void AssertAnswersOrRefuses(CodeGeneratorRequest request)
    {
        CodeGeneratorResponse response;
        try
        {
            response = Generate(request);
        }
        catch (InvalidRequestException ex)
        {
            Assert.NotEmpty(ex.Message);
            return;
        }

        if (response.HasError)
        {
            Assert.NotEmpty(response.Error);
            Assert.Empty(response.File);
        }
        else
        {
            Assert.All(response.File, file => Assert.NotNull(file.Content));
        }
    }

    /// <summary>
    /// A request with something of everything: two files (one imported, one with no package),
    /// nested types, every kind of method, options and comments.
    /// </summary>
    private static CodeGeneratorRequest BaseRequest()
    {
        CodeGeneratorRequest request = PluginProcessTests.GreetRequest("internal_access");
        FileDescriptorProto greet = request.ProtoFile[0];
        greet.MessageType.Add(new DescriptorProto { Name = "Outer", NestedType = { new DescriptorProto { Name = "Inner" } } });
        greet.Service[0].Method.Add(new MethodDescriptorProto { Name = "greet_many", InputType = ".greet.v1.Outer.Inner", OutputType = ".Root", ServerStreaming = true });
        greet.Service[0].Method.Add(new MethodDescriptorProto { Name = "Chat", InputType = ".Root", OutputType = ".greet.v1.GreetResponse", ClientStreaming = true, ServerStreaming = true });
        greet.Service.Add(new ServiceDescriptorProto
        {
            Name = "other_service",
            Method = { new MethodDescriptorProto { Name = "Get", InputType = ".greet.v1.GreetRequest", OutputType = ".greet.v1.GreetRequest", Options = new MethodOptions { IdempotencyLevel = MethodOptions.Types.IdempotencyLevel.NoSideEffects } } },
        });
        greet.Dependency.Add("root.proto");
        greet.SourceCodeInfo = new SourceCodeInfo { Location = { new SourceCodeInfo.Types.Location { Path = { 6, 0 }, LeadingComments = " Greets.\n" } } };

        var root = new FileDescriptorProto
        {
            Name = "root.proto",
            Syntax = "proto3",
            Options = new Google.Protobuf.Reflection.FileOptions { CsharpNamespace = "Root.Space" },
            MessageType = { new DescriptorProto { Name = "Root" } },
            Service = { new ServiceDescriptorProto { Name = "RootService", Method = { new MethodDescriptorProto { Name = "Do", InputType = ".Root", OutputType = ".Root" } } } },
        };
        request.ProtoFile.Insert(0, root);
        request.FileToGenerate.Add(root.Name);
        return request;
    }

    private static FileDescriptorProto? AnyFile(CodeGeneratorRequest request, int i) =>
        request.ProtoFile.Count == 0 ? null : request.ProtoFile[i % request.ProtoFile.Count];

    private static MethodDescriptorProto? AnyMethod(CodeGeneratorRequest request, int i) =>
        Pick(AnyFile(request, i)?.Service, i) is { Method.Count: > 0 } service ? service.Method[i % service.Method.Count] : null;

    private static T? Pick<T>(IList<T>? list, int i)
        where T : class => list is null || list.Count == 0 ? null : list[i % list.Count];

    private static void RemoveAt<T>(IList<T>? list, int i)
    {
        if (list is { Count: > 0 })
        {
            list.RemoveAt(i % list.Count);
        }
    }

    /// <summary>A change to a request, printed by what it does when CsCheck reports a failure.</summary>
    private sealed record Mutation(string Description, Action<CodeGeneratorRequest> Apply)
    {
        public override string ToString() => Description;
    }
}
