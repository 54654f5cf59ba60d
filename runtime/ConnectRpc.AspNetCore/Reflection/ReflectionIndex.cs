using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Reflection.V1;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace ConnectRpc.AspNetCore.Reflection;

/// <summary>
/// What server reflection answers from: the services mapped in the application (the
/// <see cref="Method"/> and <see cref="ServiceDescriptor"/> metadata of its endpoints), the files
/// declaring them with every file they import, and each symbol those files declare.
/// </summary>
internal sealed class ReflectionIndex
{
    private readonly SortedSet<string> _services = new(StringComparer.Ordinal);
    private readonly Dictionary<string, FileDescriptor> _files = new(StringComparer.Ordinal);
    private readonly Dictionary<string, FileDescriptor> _symbols = new(StringComparer.Ordinal);
    private readonly HashSet<string> _messages = new(StringComparer.Ordinal);
    private readonly List<FieldDescriptor> _extensions = [];

    private ReflectionIndex()
    {
    }

    /// <summary>Indexes the endpoints as they are now (built per reflection stream: cheap, and never stale).</summary>
    public static ReflectionIndex Create(EndpointDataSource endpoints)
    {
        var index = new ReflectionIndex();
        foreach (Endpoint endpoint in endpoints.Endpoints)
        {
            if (endpoint.Metadata.GetMetadata<Method>() is { } method)
            {
                index._services.Add(method.ServiceName);
            }

            if (endpoint.Metadata.GetMetadata<ServiceDescriptor>() is { } service)
            {
                index.Add(service.File);
            }
        }

        return index;
    }

    /// <summary>
    /// The answer to one request. <paramref name="sent"/> holds the files already sent on this
    /// stream: a file's imports are sent with it once, the file asked for every time.
    /// </summary>
    public ServerReflectionResponse Answer(ServerReflectionRequest request, HashSet<string> sent)
    {
        var response = new ServerReflectionResponse { ValidHost = request.Host, OriginalRequest = request };
        switch (request.MessageRequestCase)
        {
            case ServerReflectionRequest.MessageRequestOneofCase.FileByFilename:
                return _files.TryGetValue(request.FileByFilename, out FileDescriptor? file)
                    ? WithFile(response, file, sent)
                    : WithError(response, Code.NotFound, $"file '{request.FileByFilename}' not found");
            case ServerReflectionRequest.MessageRequestOneofCase.FileContainingSymbol:
                string symbol = request.FileContainingSymbol.TrimStart('.');
                return _symbols.TryGetValue(symbol, out FileDescriptor? declaring)
                    ? WithFile(response, declaring, sent)
                    : WithError(response, Code.NotFound, $"symbol '{symbol}' not found");
            case ServerReflectionRequest.MessageRequestOneofCase.FileContainingExtension:
                ExtensionRequest asked = request.FileContainingExtension;
                string extended = asked.ContainingType.TrimStart('.');
                FieldDescriptor? extension = _extensions.Find(e => e.ExtendeeType.FullName == extended && e.FieldNumber == asked.ExtensionNumber);
                return extension is not null
                    ? WithFile(response, extension.File, sent)
                    : WithError(response, Code.NotFound, $"extension {asked.ExtensionNumber} of '{extended}' not found");
            case ServerReflectionRequest.MessageRequestOneofCase.AllExtensionNumbersOfType:
                string type = request.AllExtensionNumbersOfType.TrimStart('.');
                if (!_messages.Contains(type))
                {
                    return WithError(response, Code.NotFound, $"message type '{type}' not found");
                }

                var numbers = new ExtensionNumberResponse { BaseTypeName = type };
                numbers.ExtensionNumber.AddRange(_extensions.Where(e => e.ExtendeeType.FullName == type).Select(e => e.FieldNumber).Order());
                response.AllExtensionNumbersResponse = numbers;
                return response;
            case ServerReflectionRequest.MessageRequestOneofCase.ListServices:
                var list = new ListServiceResponse();
                list.Service.AddRange(_services.Select(name => new ServiceResponse { Name = name }));
                response.ListServicesResponse = list;
                return response;
            default:
                return WithError(response, Code.InvalidArgument, "the request asks nothing: set one of its message_request fields");
        }
    }

    private static ServerReflectionResponse WithFile(ServerReflectionResponse response, FileDescriptor file, HashSet<string> sent)
    {
        var files = new FileDescriptorResponse();
        files.FileDescriptorProto.Add(file.SerializedData);
        sent.Add(file.Name);
        AddImports(files.FileDescriptorProto, file, sent);
        response.FileDescriptorResponse = files;
        return response;
    }

    /// <summary>Every file <paramref name="file"/> imports, directly or not, that this stream has not sent yet.</summary>
    private static void AddImports(Google.Protobuf.Collections.RepeatedField<ByteString> into, FileDescriptor file, HashSet<string> sent)
    {
        foreach (FileDescriptor import in file.Dependencies)
        {
            if (sent.Add(import.Name))
            {
                into.Add(import.SerializedData);
                AddImports(into, import, sent);
            }
        }
    }

    private static ServerReflectionResponse WithError(ServerReflectionResponse response, Code code, string message)
    {
        response.ErrorResponse = new ErrorResponse { ErrorCode = (int)code, ErrorMessage = message };
        return response;
    }

    private void Add(FileDescriptor file)
    {
        if (!_files.TryAdd(file.Name, file))
        {
            return;
        }

        foreach (FileDescriptor import in file.Dependencies)
        {
            Add(import);
        }

        foreach (ServiceDescriptor service in file.Services)
        {
            Declare(service.FullName, file);
            foreach (MethodDescriptor method in service.Methods)
            {
                Declare(method.FullName, file);
            }
        }

        foreach (MessageDescriptor message in file.MessageTypes)
        {
            AddMessage(message, file);
        }

        foreach (EnumDescriptor enumType in file.EnumTypes)
        {
            Declare(enumType.FullName, file);
        }

        AddExtensions(file.Extensions, file);
    }

    private void AddMessage(MessageDescriptor message, FileDescriptor file)
    {
        Declare(message.FullName, file);
        _messages.Add(message.FullName);
        foreach (MessageDescriptor nested in message.NestedTypes)
        {
            AddMessage(nested, file);
        }

        foreach (EnumDescriptor enumType in message.EnumTypes)
        {
            Declare(enumType.FullName, file);
        }

        AddExtensions(message.Extensions, file);
    }

    private void AddExtensions(ExtensionCollection extensions, FileDescriptor file)
    {
        foreach (FieldDescriptor extension in extensions.UnorderedExtensions)
        {
            Declare(extension.FullName, file);
            _extensions.Add(extension);
        }
    }

    private void Declare(string symbol, FileDescriptor file) => _symbols.TryAdd(symbol, file);
}
