using Google.Protobuf.Reflection;

namespace ConnectRpc.Plugin;

/// <summary>The RPC kinds, named as the runtime's <c>MethodKind</c> names them.</summary>
internal enum RpcKind
{
    Unary,
    ServerStreaming,
    ClientStreaming,
    BidiStreaming,
}

/// <summary>Every identifier generated for one method.</summary>
internal sealed record MethodModel(
    string ProtoName,
    string CSharpName,
    string AsyncName,
    string DescriptorField,
    string ProcedureConstant,
    string Procedure,
    string RequestType,
    string ResponseType,
    RpcKind Kind,
    string Idempotency,
    bool Deprecated,
    string? Comment);

/// <summary>Every identifier generated for one service: the one place names are decided.</summary>
internal sealed record ServiceModel(
    string FullName,
    int Index,
    string ConnectClass,
    string ServerInterface,
    string ServiceBase,
    string ClientInterface,
    string ClientClass,
    bool Deprecated,
    string? Comment,
    IReadOnlyList<MethodModel> Methods)
{
    /// <summary>The name of the nested class holding procedure constants (a constant may not share it).</summary>
    public const string ProceduresClass = "Procedures";

    /// <summary>
    /// Names a procedure constant may not take: its class's own name, and the members of
    /// <see cref="object"/> it would hide (CS0108).
    /// </summary>
    private static readonly HashSet<string> s_reservedConstants =
        [ProceduresClass, "Equals", "Finalize", "GetHashCode", "GetType", "MemberwiseClone", "ReferenceEquals", "ToString"];

    public static ServiceModel Create(
        FileDescriptorProto file,
        int index,
        TypeResolver types,
        HashSet<string> takenTypeNames,
        SourceComments comments)
    {
        ServiceDescriptorProto service = file.Service[index];
        string fullName = file.Package.Length == 0 ? service.Name : file.Package + "." + service.Name;
        string baseName = CSharpNames.UnderscoresToPascalCase(service.Name);

        var methods = new List<MethodModel>(service.Method.Count);
        var methodNames = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < service.Method.Count; i++)
        {
            MethodDescriptorProto method = service.Method[i];
            string csharpName = CSharpNames.UnderscoresToPascalCase(method.Name);
            if (!methodNames.TryAdd(csharpName, method.Name))
            {
                throw new GeneratorException(
                    $"{file.Name}: methods '{methodNames[csharpName]}' and '{method.Name}' of service {fullName} both map to the C# name '{csharpName}'; rename one of them");
            }

            RpcKind kind = (method.ClientStreaming, method.ServerStreaming) switch
            {
                (false, false) => RpcKind.Unary,
                (false, true) => RpcKind.ServerStreaming,
                (true, false) => RpcKind.ClientStreaming,
                (true, true) => RpcKind.BidiStreaming,
            };
            string idempotency = (method.Options?.IdempotencyLevel ?? MethodOptions.Types.IdempotencyLevel.IdempotencyUnknown) switch
            {
                MethodOptions.Types.IdempotencyLevel.NoSideEffects => "NoSideEffects",
                MethodOptions.Types.IdempotencyLevel.Idempotent => "Idempotent",
                _ => "Unknown",
            };
            methods.Add(new MethodModel(
                ProtoName: method.Name,
                CSharpName: csharpName,
                AsyncName: csharpName + "Async",
                DescriptorField: csharpName + "Method",
                ProcedureConstant: s_reservedConstants.Contains(csharpName) ? csharpName + "_" : csharpName,
                Procedure: "/" + fullName + "/" + method.Name,
                RequestType: types.Resolve(method.InputType),
                ResponseType: types.Resolve(method.OutputType),
                Kind: kind,
                Idempotency: idempotency,
                Deprecated: method.Options?.Deprecated == true,
                Comment: comments.Method(index, i)));
        }

        return new ServiceModel(
            FullName: fullName,
            Index: index,
            ConnectClass: Claim(takenTypeNames, baseName + "Connect"),
            ServerInterface: Claim(takenTypeNames, "I" + baseName),
            ClientInterface: Claim(takenTypeNames, "I" + baseName + "Client"),
            ClientClass: Claim(takenTypeNames, baseName + "Client"),

            // Claimed last, so the base class never moves a name that existed before it.
            ServiceBase: Claim(takenTypeNames, baseName + "Base"),
            Deprecated: service.Options?.Deprecated == true,
            Comment: comments.Service(index),
            Methods: methods);
    }

    /// <summary>
    /// Takes a type name in the namespace; a name protoc or another service already declares
    /// gets underscores appended (protoc's own way out of a clash) until it is free.
    /// </summary>
    private static string Claim(HashSet<string> taken, string name)
    {
        while (!taken.Add(name))
        {
            name += "_";
        }

        return name;
    }
}
