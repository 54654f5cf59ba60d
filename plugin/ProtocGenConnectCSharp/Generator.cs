using Google.Protobuf.Compiler;
using Google.Protobuf.Reflection;

namespace ConnectRpc.Plugin;

/// <summary>
/// Turns a <see cref="CodeGeneratorRequest"/> into C#: for each .proto file with services,
/// one file holding, per service, the descriptors class, the service interface handlers
/// implement, and the client interface and class.
/// </summary>
internal static class Generator
{
    private const string ToolName = "protoc-gen-connect-csharp";
    private const string GeneratedCode = "[global::System.CodeDom.Compiler.GeneratedCode(\"" + ToolName + "\", null)]";
    private const string Obsolete = "[global::System.ObsoleteAttribute]";
    private const string Task = "global::System.Threading.Tasks.Task";
    private const string AsyncEnumerable = "global::System.Collections.Generic.IAsyncEnumerable";
    private const string Headers = "global::ConnectRpc.Headers";
    private const string CallOptionsParameters =
        Headers + "? headers = null, global::System.TimeSpan? timeout = null, global::System.Threading.CancellationToken cancellationToken = default";
    private const string CallOptionsArguments = "headers, timeout, cancellationToken";

    /// <summary>
    /// The constant of <c>ConnectRpc.VersionCheck</c> that generated code refers to: this plugin's own
    /// version (the one version of every package), so that the code compiles only against a runtime at
    /// least as new as the plugin.
    /// </summary>
    public static string RuntimeVersionCheck { get; } = VersionCheckName(typeof(Generator).Assembly.GetName().Version!);

    /// <summary><c>IsAtLeastVersionX_Y_Z</c> for version X.Y.Z.</summary>
    public static string VersionCheckName(System.Version version) => $"IsAtLeastVersion{version.Major}_{version.Minor}_{version.Build}";

    /// <summary>
    /// Writes the response to <paramref name="response"/>; request and parameter errors become
    /// its <c>error</c>. Every name is decided, and so every such error found, before the first
    /// file is written: files then stream out one by one, and the response is never more than
    /// the file being written.
    /// </summary>
    public static void Generate(CodeGeneratorRequest request, ResponseWriter response)
    {
        const ulong SupportedFeatures = (ulong)(CodeGeneratorResponse.Types.Feature.Proto3Optional | CodeGeneratorResponse.Types.Feature.SupportsEditions);
        const int MinimumEdition = (int)Edition.Proto2;
        const int MaximumEdition = (int)Edition._2024;

        if (request.FileToGenerate.Count == 0)
        {
            // protoc and buf always name at least one file; anything else is not their request.
            throw new InvalidRequestException("the request names no file to generate");
        }

        List<PlannedFile> files;
        GeneratorOptions options;
        try
        {
            options = GeneratorOptions.Parse(request.Parameter);
            files = Plan(request, options);
        }
        catch (GeneratorException ex)
        {
            response.WriteError(ex.Message);
            response.WriteFeatures(SupportedFeatures, MinimumEdition, MaximumEdition);
            return;
        }

        response.WriteFeatures(SupportedFeatures, MinimumEdition, MaximumEdition);
        var writer = new CodeWriter();
        foreach (PlannedFile file in files)
        {
            writer.Clear();
            WriteFile(writer, file, options);
            response.WriteFile(file.Path, writer.Utf8);
        }
    }

    /// <summary>The output path and every generated name of each file that has services.</summary>
    private static List<PlannedFile> Plan(CodeGeneratorRequest request, GeneratorOptions options)
    {
        var files = new Dictionary<string, FileDescriptorProto>(StringComparer.Ordinal);
        foreach (FileDescriptorProto file in request.ProtoFile)
        {
            files[file.Name] = file;
        }

        var types = new TypeResolver(request.ProtoFile);
        var outputs = new HashSet<string>(StringComparer.Ordinal);
        var planned = new List<PlannedFile>(request.FileToGenerate.Count);
        foreach (string name in request.FileToGenerate)
        {
            if (!files.TryGetValue(name, out FileDescriptorProto? file))
            {
                throw new GeneratorException($"file '{name}' is to be generated but its descriptor is not in the request");
            }

            if (file.Service.Count == 0)
            {
                continue;
            }

            string path = OutputPath(file, options);
            if (!outputs.Add(path))
            {
                throw new GeneratorException($"{file.Name}: another file of the request also generates '{path}'; use base_namespace or distinct file names");
            }

            string ns = CSharpNames.FileNamespace(file);
            var comments = new SourceComments(file);
            HashSet<string> taken = types.TypesIn(ns);
            var services = new List<ServiceModel>(file.Service.Count);
            for (int i = 0; i < file.Service.Count; i++)
            {
                services.Add(ServiceModel.Create(file, i, types, taken, comments));
            }

            planned.Add(new PlannedFile(path, file, ns, services));
        }

        return planned;
    }

    internal static string OutputPath(FileDescriptorProto file, GeneratorOptions options)
    {
        string fileName = CSharpNames.FileNameBase(file) + options.FileSuffix;
        if (options.BaseNamespace is not { } baseNamespace)
        {
            return fileName;
        }

        // As protoc's C# generator: folders follow the namespace below base_namespace.
        string ns = CSharpNames.FileNamespace(file);
        if (baseNamespace.Length > 0 && !(ns + ".").StartsWith(baseNamespace + ".", StringComparison.Ordinal))
        {
            throw new GeneratorException($"{file.Name}: namespace '{ns}' is not inside base_namespace '{baseNamespace}'");
        }

        string suffix = ns[baseNamespace.Length..].TrimStart('.');
        return suffix.Length == 0 ? fileName : suffix.Replace('.', '/') + "/" + fileName;
    }

    private static void WriteFile(CodeWriter w, PlannedFile planned, GeneratorOptions options)
    {
        (_, FileDescriptorProto file, string ns, List<ServiceModel> services) = planned;
        w.Line("// <auto-generated>");
        w.Line("//     Generated by " + ToolName + ". DO NOT EDIT!");
        w.Line("//     source: " + file.Name);
        w.Line("// </auto-generated>");
        w.Line("#nullable enable");
        w.Line("#pragma warning disable 0612, 0618, 1591, 3021, 8981");
        w.Line("#region Designer generated code");
        w.Line();
        bool hasNamespace = ns.Length > 0;
        if (hasNamespace)
        {
            w.Open("namespace " + CSharpNames.EscapeNamespace(ns));
        }

        string access = options.InternalAccess ? "internal" : "public";
        string reflectionClass = CSharpNames.Qualify(ns, CSharpNames.ReflectionClassName(file));
        for (int i = 0; i < services.Count; i++)
        {
            if (i > 0)
            {
                w.Line();
            }

            ServiceModel service = services[i];
            var scope = new ServiceScope(service, access, ns, reflectionClass);
            WriteConnectClass(w, scope);
            if (options.GenerateServer)
            {
                w.Line();
                WriteServerInterface(w, scope);
                if (options.GenerateServiceBase)
                {
                    w.Line();
                    WriteServiceBase(w, scope);
                }
            }

            if (options.GenerateClient)
            {
                w.Line();
                WriteClientInterface(w, scope);
                w.Line();
                WriteClientClass(w, scope);
            }
        }

        if (hasNamespace)
        {
            w.Close();
        }

        w.Line();
        w.Line("#endregion");
    }

    /// <summary>A file to write: where, from which .proto file, in which namespace, with which services.</summary>
    private sealed record PlannedFile(string Path, FileDescriptorProto File, string Namespace, List<ServiceModel> Services);

    private sealed record ServiceScope(ServiceModel Service, string Access, string Namespace, string ReflectionClass)
    {
        /// <summary>The class holding the method descriptors, as the other types refer to it.</summary>
        public string QualifiedConnectClass { get; } = CSharpNames.Qualify(Namespace, Service.ConnectClass);

        public string Qualified(string typeName) => CSharpNames.Qualify(Namespace, typeName);
    }

    /// <summary>The proto comment when there is one, else a summary of our own (already XML).</summary>
    private static void WriteSummary(CodeWriter w, string? comment, string fallbackXml)
    {
        if (comment is null)
        {
            w.Line($"/// <summary>{fallbackXml}</summary>");
        }
        else
        {
            SourceComments.WriteSummary(w, comment);
        }
    }

    /// <summary>Doc comment, attributes and opening brace of a service-level type.</summary>
    private static void OpenType(CodeWriter w, ServiceScope s, string fallbackSummaryXml, string declaration)
    {
        WriteSummary(w, s.Service.Comment, fallbackSummaryXml);
        WriteTypeAttributes(w, s);
        w.Open($"{s.Access} {declaration}");
    }

    private static void WriteTypeAttributes(CodeWriter w, ServiceScope s)
    {
        w.Line(GeneratedCode);
        if (s.Service.Deprecated)
        {
            w.Line(Obsolete);
        }
    }

    private static void WriteConnectClass(CodeWriter w, ServiceScope s)
    {
        ServiceModel service = s.Service;
        w.Line($"/// <summary>Names and method descriptors of the <c>{service.FullName}</c> service.</summary>");
        WriteTypeAttributes(w, s);
        w.Open($"{s.Access} static partial class {service.ConnectClass}");
        w.Line("/// <summary>The fully-qualified name of the service.</summary>");
        w.Line($"public const string ServiceName = \"{service.FullName}\";");
        w.Line();
        w.Line("// An error here means the ConnectRpc package is older than the protoc-gen-connect-csharp (or ConnectRpc.Tools)");
        w.Line("// that generated this file: update ConnectRpc to at least the generator's version.");
        w.Line($"private const bool RuntimeVersionCheck = global::ConnectRpc.VersionCheck.{RuntimeVersionCheck};");
        w.Line();
        w.Line("/// <summary>The protobuf descriptor of the service.</summary>");
        w.Line($"public static global::Google.Protobuf.Reflection.ServiceDescriptor Descriptor => {s.ReflectionClass}.Descriptor.Services[{service.Index}];");
        w.Line();
        w.Line("/// <summary>The URL path of each method, as routed by servers.</summary>");
        w.Open($"public static partial class {ServiceModel.ProceduresClass}");
        for (int i = 0; i < service.Methods.Count; i++)
        {
            MethodModel m = service.Methods[i];
            if (i > 0)
            {
                w.Line();
            }

            w.Line($"/// <summary><c>{m.Procedure}</c></summary>");
            w.Line($"public const string {m.ProcedureConstant} = \"{m.Procedure}\";");
        }

        w.Close();
        foreach (MethodModel m in service.Methods)
        {
            w.Line();
            w.Line($"/// <summary>Describes the <c>{m.ProtoName}</c> method.</summary>");
            if (m.Deprecated)
            {
                w.Line(Obsolete);
            }

            w.Line($"public static readonly global::ConnectRpc.Method<{m.RequestType}, {m.ResponseType}> {m.DescriptorField} = new(");
            w.Indent();
            w.Line("ServiceName,");
            w.Line($"\"{m.ProtoName}\",");
            w.Line($"global::ConnectRpc.MethodKind.{KindName(m.Kind)},");
            w.Line($"{m.RequestType}.Parser,");
            w.Line($"{m.ResponseType}.Parser,");
            w.Line($"global::ConnectRpc.IdempotencyLevel.{m.Idempotency},");
            // Read on first use: the JSON codec learns the message types of the service's file and its imports.
            w.Line("static () => Descriptor);");
            w.Outdent();
        }

        w.Close();
    }

    private static void WriteServerInterface(CodeWriter w, ServiceScope s)
    {
        ServiceModel service = s.Service;
        OpenType(w, s, $"Implement this interface to serve <c>{service.FullName}</c>.", $"partial interface {service.ServerInterface}");
        foreach (MethodModel m in service.Methods)
        {
            SourceComments.WriteSummary(w, m.Comment);
            if (m.Deprecated)
            {
                w.Line(Obsolete);
            }

            WriteSignature(w, "", m, "global::ConnectRpc.RequestContext context", ";");
            w.Line();
        }

        w.Line($"/// <summary>Binds the methods of <see cref=\"{service.ServerInterface}\"/>, as implemented by <typeparamref name=\"TService\"/>, to a server.</summary>");
        w.Line("/// <typeparam name=\"TService\">The implementation; the server resolves it for each call.</typeparam>");
        w.Line("/// <param name=\"binder\">Receives one handler per method.</param>");
        w.Line("public static void BindService<TService>(global::ConnectRpc.ServiceBinder<TService> binder)");
        w.Indent().Line($"where TService : class, {s.Qualified(service.ServerInterface)}").Outdent();
        w.Open();
        w.Line("global::System.ArgumentNullException.ThrowIfNull(binder);");
        w.Line($"binder.Descriptor = {s.QualifiedConnectClass}.Descriptor;");
        foreach (MethodModel m in service.Methods)
        {
            string input = InputName(m.Kind);
            w.Line($"binder.Add{KindName(m.Kind)}({s.QualifiedConnectClass}.{m.DescriptorField}, static (service, {input}, context) => service.{m.AsyncName}({input}, context));");
        }

        w.Close();
        w.Close();
    }

    /// <summary>
    /// The abstract class implementations may derive from instead of implementing the
    /// interface: each method is virtual and answers <c>unimplemented</c> until overridden, so
    /// a method added to the .proto file later leaves existing implementations compiling.
    /// </summary>
    private static void WriteServiceBase(CodeWriter w, ServiceScope s)
    {
        ServiceModel service = s.Service;
        w.Line($"/// <summary>A base for implementations of <c>{service.FullName}</c>: every method not overridden answers <c>unimplemented</c>, so methods added to the service later do not break the build.</summary>");
        w.Line($"/// <remarks>Map it as the interface: <c>MapConnectService&lt;TImplementation&gt;({service.ServerInterface}.BindService)</c>. Implement <see cref=\"{service.ServerInterface}\"/> directly instead to have the compiler list every method.</remarks>");
        WriteTypeAttributes(w, s);
        w.Open($"{s.Access} abstract partial class {service.ServiceBase} : {s.Qualified(service.ServerInterface)}");
        for (int i = 0; i < service.Methods.Count; i++)
        {
            MethodModel m = service.Methods[i];
            if (i > 0)
            {
                w.Line();
            }

            WriteSummary(w, m.Comment, $"Serves <c>{m.ProtoName}</c>: unless overridden, fails with <c>unimplemented</c>.");
            if (m.Comment is not null)
            {
                w.Line("/// <remarks>Unless overridden, fails with <c>unimplemented</c>.</remarks>");
            }

            if (m.Deprecated)
            {
                w.Line(Obsolete);
            }

            WriteSignature(w, "public virtual ", m, "global::ConnectRpc.RequestContext context", "");
            w.Indent().Line($"=> throw new global::ConnectRpc.ConnectException(global::ConnectRpc.Code.Unimplemented, \"{m.Procedure} is not implemented\");").Outdent();
        }

        w.Close();
    }

    private static void WriteClientInterface(CodeWriter w, ServiceScope s)
    {
        ServiceModel service = s.Service;
        OpenType(w, s, $"A client for <c>{service.FullName}</c>.", $"partial interface {service.ClientInterface}");
        for (int i = 0; i < service.Methods.Count; i++)
        {
            MethodModel m = service.Methods[i];
            if (i > 0)
            {
                w.Line();
            }

            SourceComments.WriteSummary(w, m.Comment);
            if (m.Deprecated)
            {
                w.Line(Obsolete);
            }

            WriteSignature(w, "", m, CallOptionsParameters, ";");
        }

        w.Close();
    }

    private static void WriteClientClass(CodeWriter w, ServiceScope s)
    {
        ServiceModel service = s.Service;
        string invoker = "global::ConnectRpc.CallInvoker";
        string options = "global::ConnectRpc.ConnectClientOptions? options = null";
        OpenType(w, s, $"A client for <c>{service.FullName}</c>.", $"sealed partial class {service.ClientClass} : {s.Qualified(service.ClientInterface)}");
        w.Line($"private readonly {invoker} _invoker;");
        w.Line();
        w.Line("/// <summary>Creates a client for the server at <paramref name=\"baseUrl\"/>, such as <c>https://api.example.com</c>.</summary>");
        w.Line("/// <remarks>Clients made this way share one connection pool per process.</remarks>");
        w.Line("/// <param name=\"baseUrl\">The server's base URL; procedure paths are appended to it.</param>");
        w.Line("/// <param name=\"options\">Protocol, codec, compression, limits and timeout; null uses the defaults.</param>");
        w.Line($"public {service.ClientClass}(string baseUrl, {options})");
        w.Indent().Line($": this(new {invoker}(baseUrl, options))").Outdent();
        w.Open().Close();
        w.Line();
        w.Line("/// <summary>Creates a client that sends its calls through <paramref name=\"httpClient\"/>, whose <c>BaseAddress</c> is the server's base URL.</summary>");
        w.Line("/// <param name=\"httpClient\">The HTTP client, for example from <c>IHttpClientFactory</c>.</param>");
        w.Line("/// <param name=\"options\">Protocol, codec, compression, limits and timeout; null uses the defaults.</param>");
        w.Line($"public {service.ClientClass}(global::System.Net.Http.HttpClient httpClient, {options})");
        w.Indent().Line($": this(new {invoker}(httpClient, options))").Outdent();
        w.Open().Close();
        w.Line();
        w.Line("/// <summary>Creates a client that makes its calls through <paramref name=\"invoker\"/>, which several clients may share.</summary>");
        w.Line("/// <param name=\"invoker\">The invoker that holds the base URL, HTTP client and options.</param>");
        w.Line($"public {service.ClientClass}({invoker} invoker)");
        w.Open();
        w.Line("global::System.ArgumentNullException.ThrowIfNull(invoker);");
        w.Line("_invoker = invoker;");
        w.Close();
        foreach (MethodModel m in service.Methods)
        {
            w.Line();
            SourceComments.WriteSummary(w, m.Comment);
            if (m.Deprecated)
            {
                w.Line(Obsolete);
            }

            WriteSignature(w, "public ", m, CallOptionsParameters, "");
            w.Open();
            w.Line($"return _invoker.{KindName(m.Kind)}Async({s.QualifiedConnectClass}.{m.DescriptorField}, {InputName(m.Kind)}, {CallOptionsArguments});");
            w.Close();
        }

        w.Close();
    }

    /// <summary>
    /// The kind as the runtime names it: <c>MethodKind.X</c>, <c>ServiceBinder.AddX</c> and
    /// <c>CallInvoker.XAsync</c> (a switch, not <c>ToString</c>, which needs reflection data).
    /// </summary>
    private static string KindName(RpcKind kind) => kind switch
    {
        RpcKind.Unary => nameof(RpcKind.Unary),
        RpcKind.ServerStreaming => nameof(RpcKind.ServerStreaming),
        RpcKind.ClientStreaming => nameof(RpcKind.ClientStreaming),
        _ => nameof(RpcKind.BidiStreaming),
    };

    /// <summary>The name of the request parameter: one request, or a stream of them.</summary>
    private static string InputName(RpcKind kind) => kind is RpcKind.Unary or RpcKind.ServerStreaming ? "request" : "requests";

    /// <summary>
    /// One line declaring a method in the shape of its kind: it returns a task of one response or
    /// a stream of responses, and takes one request or a stream of requests, then
    /// <paramref name="lastParameters"/>.
    /// </summary>
    private static void WriteSignature(CodeWriter w, string prefix, MethodModel m, string lastParameters, string suffix)
    {
        switch (m.Kind)
        {
            case RpcKind.Unary:
                w.Line($"{prefix}{Task}<{m.ResponseType}> {m.AsyncName}({m.RequestType} request, {lastParameters}){suffix}");
                break;
            case RpcKind.ServerStreaming:
                w.Line($"{prefix}{AsyncEnumerable}<{m.ResponseType}> {m.AsyncName}({m.RequestType} request, {lastParameters}){suffix}");
                break;
            case RpcKind.ClientStreaming:
                w.Line($"{prefix}{Task}<{m.ResponseType}> {m.AsyncName}({AsyncEnumerable}<{m.RequestType}> requests, {lastParameters}){suffix}");
                break;
            default:
                w.Line($"{prefix}{AsyncEnumerable}<{m.ResponseType}> {m.AsyncName}({AsyncEnumerable}<{m.RequestType}> requests, {lastParameters}){suffix}");
                break;
        }
    }
}
