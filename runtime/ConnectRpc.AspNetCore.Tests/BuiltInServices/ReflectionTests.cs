extern alias GrpcDotnet;

using System.Text.Json;
using Acme.Orders.V1;
using CliWrap.Buffered;
using Connectrpc.Greet.V1;
using ConnectRpc.Tests;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using DotnetV1 = GrpcDotnet::Grpc.Reflection.V1;
using DotnetV1Alpha = GrpcDotnet::Grpc.Reflection.V1Alpha;
using V1 = Grpc.Reflection.V1;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// Server reflection from <c>MapConnectReflectionService</c>, on a server mapping the Greet service
/// and <c>acme.orders.v1.order_service</c> (whose messages come from another file it imports):
/// <c>buf curl</c> with no schema lists, resolves and calls them over every protocol and both
/// reflection versions; grpc-dotnet's reflection client (Grpc.Reflection) and ours read the
/// descriptors, which must build into usable <see cref="FileDescriptor"/>s.
/// </summary>
public sealed class ReflectionTests : IAsyncLifetime
{
    private const string GreetService = "connectrpc.greet.v1.GreetService";
    private const string OrderService = "acme.orders.v1.order_service";
    private const string OrderFile = "acme/orders/v1/order_service.proto";
    private const string MoneyFile = "acme/common/v1/money.proto";

    private KestrelHost _server = null!;

    public async ValueTask InitializeAsync() =>
        _server = await KestrelHost.StartAsync(
            configure: null,
            tls: false,
            services: null,
            map: static app =>
            {
                app.MapConnectService<TestGreetService>(IGreetService.BindService);
                app.MapConnectReflectionService();
                app.MapConnectService<Orders>(IOrderService.BindService); // mapped after reflection: still found
            });

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    public static TheoryData<string, string> BufTransports()
    {
        var data = new TheoryData<string, string>();
        foreach (string protocol in new[] { "connect", "grpc", "grpcweb" })
        {
            foreach (string reflection in new[] { "grpc-v1", "grpc-v1alpha" })
            {
                data.Add(protocol, reflection);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(BufTransports))]
    public async Task BufCurl_NoSchema_ListsServicesAndMethods(string protocol, string reflection)
    {
        string[] services = Lines(await BufCurlAsync(protocol, reflection, "--list-services", _server.Http2Url.ToString()));
        Assert.Equal(
            [OrderService, GreetService, "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"],
            services);

        // Listing methods fetches each service's file: it describes every service.
        string[] methods = Lines(await BufCurlAsync(protocol, reflection, "--list-methods", _server.Http2Url.ToString()));
        Assert.Contains(GreetService + "/Greet", methods);
        Assert.Contains(GreetService + "/GreetMany", methods);
        Assert.Contains(GreetService + "/Chat", methods);
        Assert.Contains(OrderService + "/quote_range", methods);
        Assert.Contains("grpc.reflection.v1.ServerReflection/ServerReflectionInfo", methods);
    }

    [Theory]
    [MemberData(nameof(BufTransports))]
    public async Task BufCurl_NoSchema_CallsUnaryAndStreaming(string protocol, string reflection)
    {
        string unary = await BufCurlAsync(protocol, reflection, "--data", """{"name":"Ada"}""", Url("Greet"));
        Assert.Equal("Hello, Ada!", JsonDocument.Parse(unary).RootElement.GetProperty("greeting").GetString());

        string stream = await BufCurlAsync(protocol, reflection, "--data", """{"name":"Ada"}""", Url("GreetMany"));
        Assert.Equal(3, Responses(stream).Count(r => r.GetProperty("greeting").GetString()!.StartsWith("Hello, Ada!", StringComparison.Ordinal)));

        string bidi = await BufCurlAsync(protocol, reflection, "--data", """{"name":"Ada"} {"name":"Grace"}""", Url("Chat"));
        Assert.Equal(["Hello, Ada!", "Hello, Grace!"], Responses(bidi).Select(r => r.GetProperty("greeting").GetString()));

        // The request type is declared in an imported file: buf curl resolved it from the imports
        // reflection sent, encoded the request, and got the base class's unimplemented.
        BufferedCommandResult quote = await Peers.RunAsync(
            Peers.Buf, "curl", "--protocol", protocol, "--reflect-protocol", reflection, "--http2-prior-knowledge",
            "--data", """{"low":{"units":1}}""", _server.Http2Url + OrderService + "/quote_range");
        Assert.NotEqual(0, quote.ExitCode);
        Assert.Contains("unimplemented", quote.StandardError + quote.StandardOutput, StringComparison.Ordinal);
        Assert.Contains(OrderService + "/quote_range is not implemented", quote.StandardError + quote.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GrpcDotnetClient_V1_ListsAndResolvesSymbolsWithImportsOnce()
    {
        using GrpcChannel channel = GrpcChannel.ForAddress(_server.Http2Url);
        using CancellationTokenSource bounded = Bounded.TimeoutSource();
        using AsyncDuplexStreamingCall<DotnetV1::ServerReflectionRequest, DotnetV1::ServerReflectionResponse> call =
            new DotnetV1::ServerReflection.ServerReflectionClient(channel).ServerReflectionInfo(cancellationToken: bounded.Token);

        async Task<DotnetV1::ServerReflectionResponse> AskAsync(DotnetV1::ServerReflectionRequest request)
        {
            await call.RequestStream.WriteAsync(request, bounded.Token);
            Assert.True(await call.ResponseStream.MoveNext(bounded.Token));
            Assert.Equal(request, call.ResponseStream.Current.OriginalRequest);
            return call.ResponseStream.Current;
        }

        DotnetV1::ServerReflectionResponse list = await AskAsync(new() { ListServices = "", Host = "example" });
        Assert.Equal("example", list.ValidHost);
        Assert.Contains(OrderService, list.ListServicesResponse.Service.Select(s => s.Name));

        // The service's file comes with the file it imports; the files build into descriptors.
        DotnetV1::ServerReflectionResponse order = await AskAsync(new() { FileContainingSymbol = OrderService + ".quote_range" });
        IReadOnlyList<FileDescriptor> built = Build(order.FileDescriptorResponse.FileDescriptorProto);
        Assert.Equal([OrderFile, MoneyFile], built.Select(f => f.Name).Order(StringComparer.Ordinal).Reverse());
        FileDescriptor orderFile = built.Single(f => f.Name == OrderFile);
        Assert.Equal("acme.common.v1.Money.Range", orderFile.FindTypeByName<ServiceDescriptor>("order_service").FindMethodByName("quote_range").InputType.FullName);

        // Asked for by a nested symbol, the imported file comes alone, and only once per stream as an import.
        DotnetV1::ServerReflectionResponse money = await AskAsync(new() { FileContainingSymbol = "acme.common.v1.Money.Range.Bound" });
        Assert.Equal([MoneyFile], money.FileDescriptorResponse.FileDescriptorProto.Select(b => FileDescriptorProto.Parser.ParseFrom(b).Name));
        DotnetV1::ServerReflectionResponse again = await AskAsync(new() { FileByFilename = OrderFile });
        Assert.Equal([OrderFile], again.FileDescriptorResponse.FileDescriptorProto.Select(b => FileDescriptorProto.Parser.ParseFrom(b).Name));

        DotnetV1::ServerReflectionResponse numbers = await AskAsync(new() { AllExtensionNumbersOfType = "acme.common.v1.Money" });
        Assert.Equal("acme.common.v1.Money", numbers.AllExtensionNumbersResponse.BaseTypeName);
        Assert.Empty(numbers.AllExtensionNumbersResponse.ExtensionNumber);

        DotnetV1::ServerReflectionResponse missing = await AskAsync(new() { FileContainingSymbol = "no.such.Symbol" });
        Assert.Equal((int)StatusCode.NotFound, missing.ErrorResponse.ErrorCode);
        DotnetV1::ServerReflectionResponse noFile = await AskAsync(new() { FileByFilename = "no/such.proto" });
        Assert.Equal((int)StatusCode.NotFound, noFile.ErrorResponse.ErrorCode);
        DotnetV1::ServerReflectionResponse noExtension = await AskAsync(new() { FileContainingExtension = new() { ContainingType = "acme.common.v1.Money", ExtensionNumber = 100 } });
        Assert.Equal((int)StatusCode.NotFound, noExtension.ErrorResponse.ErrorCode);
        DotnetV1::ServerReflectionResponse empty = await AskAsync(new());
        Assert.Equal((int)StatusCode.InvalidArgument, empty.ErrorResponse.ErrorCode);

        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext(bounded.Token));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task GrpcDotnetClient_V1Alpha_ListsAndDescribesGreet()
    {
        using GrpcChannel channel = GrpcChannel.ForAddress(_server.Http2Url);
        using CancellationTokenSource bounded = Bounded.TimeoutSource();
        using AsyncDuplexStreamingCall<DotnetV1Alpha::ServerReflectionRequest, DotnetV1Alpha::ServerReflectionResponse> call =
            new DotnetV1Alpha::ServerReflection.ServerReflectionClient(channel).ServerReflectionInfo(cancellationToken: bounded.Token);
        await call.RequestStream.WriteAsync(new() { ListServices = "*" }, bounded.Token);
        await call.RequestStream.WriteAsync(new() { FileContainingSymbol = GreetService }, bounded.Token);
        await call.RequestStream.CompleteAsync();

        Assert.True(await call.ResponseStream.MoveNext(bounded.Token));
        Assert.Contains(GreetService, call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name));
        Assert.True(await call.ResponseStream.MoveNext(bounded.Token));
        FileDescriptor greet = Assert.Single(Build(call.ResponseStream.Current.FileDescriptorResponse.FileDescriptorProto));
        Assert.Equal(
            ["Greet", "GreetMany", "GreetEveryone", "Chat"],
            greet.FindTypeByName<ServiceDescriptor>("GreetService").Methods.Select(m => m.Name));
        Assert.False(await call.ResponseStream.MoveNext(bounded.Token));
    }

    [Theory]
    [MemberData(nameof(EveryProtocolCallTests.AllProtocols), MemberType = typeof(EveryProtocolCallTests))]
    public async Task OurClient_EveryProtocol_ListsServices(Protocol protocol)
    {
        var client = new V1.ServerReflectionClient(
            _server.Http2Url.ToString(),
            new ConnectClientOptions { Protocol = protocol, HttpVersion = System.Net.HttpVersion.Version20 });
        List<V1.ServerReflectionResponse> responses = await client
            .ServerReflectionInfoAsync(Requests(new V1.ServerReflectionRequest { ListServices = "" }, new V1.ServerReflectionRequest { FileByFilename = MoneyFile }))
            .ToListWithin();
        Assert.Equal(2, responses.Count);
        Assert.Contains(GreetService, responses[0].ListServicesResponse.Service.Select(s => s.Name));
        Assert.Equal(MoneyFile, FileDescriptorProto.Parser.ParseFrom(Assert.Single(responses[1].FileDescriptorResponse.FileDescriptorProto)).Name);
    }

    private static async IAsyncEnumerable<V1.ServerReflectionRequest> Requests(params V1.ServerReflectionRequest[] requests)
    {
        foreach (V1.ServerReflectionRequest request in requests)
        {
            await Task.Yield();
            yield return request;
        }
    }

    /// <summary>Builds descriptors from the bytes a response carries, imports first (as a reflection client must).</summary>
    private static IReadOnlyList<FileDescriptor> Build(IEnumerable<ByteString> files)
    {
        List<ByteString> all = [.. files];
        var names = all.Select(b => FileDescriptorProto.Parser.ParseFrom(b)).ToList();
        List<ByteString> ordered = [.. all.Select((b, i) => (b, names[i])).OrderBy(p => p.Item2.Dependency.Count).Select(p => p.b)];
        return FileDescriptor.BuildFromByteStrings(ordered);
    }

    private string Url(string method) => _server.Http2Url + GreetService + "/" + method;

    private static async Task<string> BufCurlAsync(string protocol, string reflection, params string[] arguments)
    {
        BufferedCommandResult result = await Peers.RunAsync(
            Peers.Buf, ["curl", "--protocol", protocol, "--reflect-protocol", reflection, "--http2-prior-knowledge", .. arguments]);
        Assert.True(result.ExitCode == 0, $"buf curl exited with {result.ExitCode}: {result.StandardError}");
        return result.StandardOutput;
    }

    private static string[] Lines(string output) => output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>The JSON objects buf curl prints one after the other for a stream.</summary>
    private static List<JsonElement> Responses(string output)
    {
        var responses = new List<JsonElement>();
        var reader = new Utf8JsonReader(System.Text.Encoding.UTF8.GetBytes(output), new JsonReaderOptions { AllowMultipleValues = true });
        while (reader.Read())
        {
            using JsonDocument document = JsonDocument.ParseValue(ref reader);
            responses.Add(document.RootElement.Clone());
        }

        return responses;
    }

    /// <summary>Serves none of its methods: each answers unimplemented (the generated base class).</summary>
    private sealed class Orders : OrderServiceBase;
}
