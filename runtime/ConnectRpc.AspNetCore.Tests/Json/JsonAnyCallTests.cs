using System.Net;
using System.Text;
using System.Text.Json;
using Connectrpc.Greet.V1;
using Connectrpc.Jsonany.Payload.V1;
using Connectrpc.Jsonany.V1;
using ConnectRpc.Tests;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// JSON with <c>google.protobuf.Any</c> between our client and our server over real sockets:
/// Connect, gRPC and gRPC-Web, every RPC kind, Any of the service file's types, of its import
/// and its import's import, and well-known types, both ways; GET; and the failures (an Any of a
/// type one side does not know), each with its code and, on the server, its log.
/// </summary>
public sealed class JsonAnyCallTests(JsonAnyCallTests.Server fixture) : IClassFixture<JsonAnyCallTests.Server>, IDisposable
{
    private const string Echo = "connectrpc.jsonany.v1.AnyService/Echo";
    private readonly KestrelHost _server = fixture.Host;
    private readonly HttpClient _http = new(new SocketsHttpHandler()) { Timeout = Bounded.Timeout };

    /// <summary>AnyService, its server knowing GreetRequest too (<see cref="ConnectServerOptions.JsonTypes"/>).</summary>
    public sealed class Server : KestrelFixture
    {
        protected override Task<KestrelHost> StartAsync() => KestrelHost.StartAsync(new KestrelHostOptions
        {
            Services = services =>
            {
                services.AddSingleton<TestAnyService>();
                services.AddConnect(options => options.JsonTypes.Add(GreetRequest.Descriptor));
            },
            App = app => app.MapConnectService<TestAnyService>(IAnyService.BindService),
        });
    }

    public void Dispose() => _http.Dispose();

    private TestAnyService Service => _server.Services.GetRequiredService<TestAnyService>();

    /// <summary>
    /// Items of every origin: this file, the import, the import's import, and well-known types
    /// (Empty is not imported by the service's file). The same as interop/anyjson.mjs's clientBag.
    /// </summary>
    internal static Bag ClientBag(string text)
    {
        var bag = new Bag
        {
            Items =
            {
                Any.Pack(new Note { Text = text }),
                Any.Pack(new Receipt { Id = "c-1", Amount = -42, Stamp = new Stamp { By = "client" } }),
                Any.Pack(new Stamp { By = "client" }),
                Any.Pack(Timestamp.FromDateTimeOffset(new DateTimeOffset(2026, 12, 3, 15, 0, 0, TimeSpan.Zero))),
                Any.Pack(new Struct { Fields = { ["n"] = Value.ForNumber(1.5), ["s"] = Value.ForString("a b") } }),
                Any.Pack(new StringValue { Value = "wrapped" }),
                Any.Pack(FieldMask.FromString("items,scalars")),
            },
            Scalars = new Scalars { Int64Value = long.MinValue, Color = Color.Green, DoubleValue = double.PositiveInfinity, CustomName = "json_name" },
            Receipt = new Receipt { Id = "field", Amount = 1 },
        };
        bag.Items.Add(Any.Pack(new Empty()));
        return bag;
    }

    internal static void AssertEcho(Bag sent, Bag received, params Bag[] more)
    {
        Assert.Equal([.. sent.Items, .. more.SelectMany(b => b.Items), .. TestAnyService.ServerItems], received.Items);
        Assert.Equal(more.Length > 0 ? more[^1].Scalars : sent.Scalars, received.Scalars);
        Assert.Equal(more.Length > 0 ? more[^1].Receipt : sent.Receipt, received.Receipt);
    }

    private AnyServiceClient Client(Protocol protocol, bool http2, ConnectClientOptions? options = null, HttpMessageHandler? handler = null)
    {
        options ??= new ConnectClientOptions();
        options.Protocol = protocol;
        options.Codec = Codec.Json;
        if (http2)
        {
            options.HttpVersion = HttpVersion.Version20;
        }

        Uri url = http2 ? _server.Http2Url : _server.Http1Url;
        return handler is null
            ? new AnyServiceClient(url.ToString(), options)
            : new AnyServiceClient(new HttpClient(handler) { BaseAddress = url }, options);
    }

    public static TheoryData<Protocol, bool> JsonProtocols() => new()
    {
        { Protocol.Connect, false },
        { Protocol.Connect, true },
        { Protocol.Grpc, true },
        { Protocol.GrpcWeb, false },
        { Protocol.GrpcWeb, true },
    };

    [Theory]
    [MemberData(nameof(JsonProtocols))]
    public async Task EveryKind_AnyOfEveryOrigin_BothWays(Protocol protocol, bool http2)
    {
        AnyServiceClient client = Client(protocol, http2);
        Bag first = ClientBag("first");
        Bag second = ClientBag("second");

        AssertEcho(first, await client.EchoAsync(first).Within());

        List<Bag> many = await client.EchoManyAsync(first).ToListWithin();
        Assert.Equal(2, many.Count);
        AssertEcho(first, many[0]);
        AssertEcho(first, many[1]);

        AssertEcho(first, await client.EchoAllAsync(Bags(first, second)).Within(), second);

        if (http2)
        {
            List<Bag> chat = await client.EchoChatAsync(Bags(first, second)).ToListWithin();
            Assert.Equal(2, chat.Count);
            AssertEcho(first, chat[0]);
            AssertEcho(second, chat[1]);
        }
    }

    [Fact]
    public async Task ConnectGet_CompactJsonInTheUrl()
    {
        using var recorder = new UrlRecorder();
        AnyServiceClient client = Client(Protocol.Connect, http2: false, new ConnectClientOptions { UseHttpGet = true }, recorder);
        var bag = new Bag { Items = { Any.Pack(new Note { Text = "a b" }), Any.Pack(Duration.FromTimeSpan(TimeSpan.FromSeconds(1))) } };

        AssertEcho(bag, await client.EchoAsync(bag).Within());

        Uri url = Assert.Single(recorder.Urls);
        string query = url.Query;
        Assert.Contains("encoding=json", query, StringComparison.Ordinal);
        string message = Uri.UnescapeDataString(query[(query.IndexOf("message=", StringComparison.Ordinal) + "message=".Length)..]);
        Assert.Equal(
            """{"items":[{"@type":"type.googleapis.com/connectrpc.jsonany.v1.Note","text":"a b"},{"@type":"type.googleapis.com/google.protobuf.Duration","value":"1s"}]}""",
            message);
        Assert.DoesNotContain("%20%22", query, StringComparison.Ordinal);
    }

    public static TheoryData<string, string, bool> UnknownTypeRequests() => new()
    {
        { "POST", "application/json", false },
        { "POST", "application/connect+json", true },
        { "POST", "application/grpc-web+json", true },
        { "GET", "", false },
    };

    [Theory]
    [MemberData(nameof(UnknownTypeRequests))]
    public async Task Request_AnyOfAnUnknownType_InvalidArgument(string method, string contentType, bool enveloped)
    {
        const string Json = """{"items":[{"@type":"type.googleapis.com/not.Known","x":1}]}""";
        string path = enveloped ? "connectrpc.jsonany.v1.AnyService/EchoMany" : Echo;
        if (method == "GET")
        {
            path += "?connect=v1&encoding=json&message=" + Uri.EscapeDataString(Json);
        }

        byte[]? body = method == "GET" ? null : enveloped ? WireBytes.Frame(Encoding.UTF8.GetBytes(Json)) : Encoding.UTF8.GetBytes(Json);
        using HttpRequestMessage request = WireBytes.Request(new HttpMethod(method), _server.Http1Url + path, false, body, contentType.Length == 0 ? null : contentType);
        int calls = Service.Calls;
        using HttpResponseMessage response = await _http.SendAsync(request, Bounded.Token).Within();
        byte[] answer = await response.Content.ReadAsByteArrayAsync(Bounded.Token).Within();

        (string code, string message) = contentType switch
        {
            "application/grpc-web+json" => GrpcWebStatus(response, answer),
            "application/connect+json" => ConnectError(JsonDocument.Parse(WireBytes.Frames(answer).Single().Payload).RootElement.GetProperty("error")),
            _ => ConnectError(JsonDocument.Parse(answer).RootElement),
        };
        Assert.Equal("invalid_argument", code);
        Assert.Contains("not.Known", message, StringComparison.Ordinal);
        // The handler ran (it reads its request itself) but never got the message: nothing echoed.
        Assert.True(Service.Calls - calls <= 1);
    }

    private static (string Code, string Message) ConnectError(JsonElement error) =>
        (error.GetProperty("code").GetString()!, error.GetProperty("message").GetString()!);

    /// <summary>The status of a gRPC-Web response: in its trailer frame, or in its headers (trailers-only).</summary>
    private static (string Code, string Message) GrpcWebStatus(HttpResponseMessage response, byte[] body)
    {
        Dictionary<string, string> fields = body.Length == 0
            ? response.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => string.Join(",", h.Value))
            : Encoding.ASCII.GetString(WireBytes.Frames(body).Single(f => (f.Flags & 0x80) != 0).Payload)
                .Split("\r\n", StringSplitOptions.RemoveEmptyEntries)
                .Select(line => line.Split(':', 2))
                .ToDictionary(parts => parts[0].Trim(), parts => parts[1].Trim());
        return (fields["grpc-status"] == "3" ? "invalid_argument" : "grpc-status " + fields["grpc-status"], Uri.UnescapeDataString(fields["grpc-message"]));
    }

    [Theory]
    [MemberData(nameof(JsonProtocols))]
    public async Task Response_AnyOfAnUnknownType_InternalLoggedAsTheServersFailure(Protocol protocol, bool http2)
    {
        _server.ExpectLogs("the server cannot encode its response: an Any of a type it does not know", "could not encode a response message");
        AnyServiceClient client = Client(protocol, http2);
        var headers = new Headers { ["x-pack"] = "unknown" };

        ConnectException unary = await Assert.ThrowsAsync<ConnectException>(() => client.EchoAsync(ClientBag("u"), headers).Within());
        ConnectException stream = await Assert.ThrowsAsync<ConnectException>(() => client.EchoManyAsync(ClientBag("s"), headers).ToListWithin());

        foreach (ConnectException error in new[] { unary, stream })
        {
            Assert.Equal(Code.Internal, error.Code);
            Assert.Contains("connectrpc.jsonany.v1.NotDeclared", error.Message, StringComparison.Ordinal);
        }

        await Wait.UntilAsync(() => _server.Logs.Count >= 2);
        Assert.All(_server.Logs, log => Assert.Contains("could not encode a response message of /connectrpc.jsonany.v1.AnyService/Echo", log, StringComparison.Ordinal));
        Assert.DoesNotContain(_server.Logs, log => log.Contains("The handler of", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("application/json", false)]
    [InlineData("application/proto", false)]
    [InlineData("application/connect+json", true)]
    public async Task ConnectErrorDetails_BinaryValueAndDebugJson(string contentType, bool enveloped)
    {
        // Details travel as binary whatever the codec; a detail of a type the method knows also gets
        // "debug", its JSON (as connect-go writes it), and one the server does not know goes without.
        string path = enveloped ? "connectrpc.jsonany.v1.AnyService/EchoMany" : Echo;
        byte[] body = contentType.EndsWith("json", StringComparison.Ordinal) ? "{}"u8.ToArray() : [];
        using HttpRequestMessage request = WireBytes.Request(
            HttpMethod.Post, _server.Http1Url + path, false, enveloped ? WireBytes.Frame(body) : body, contentType, ("x-pack", "fail"));
        using HttpResponseMessage response = await _http.SendAsync(request, Bounded.Token).Within();
        byte[] answer = await response.Content.ReadAsByteArrayAsync(Bounded.Token).Within();

        JsonElement error = enveloped
            ? JsonDocument.Parse(WireBytes.Frames(answer).Single().Payload).RootElement.GetProperty("error")
            : JsonDocument.Parse(answer).RootElement;
        JsonElement[] details = [.. error.GetProperty("details").EnumerateArray()];
        Assert.Equal("failed_precondition", error.GetProperty("code").GetString());
        Assert.Equal(["connectrpc.jsonany.v1.Note", "connectrpc.jsonany.payload.v1.Stamp", "connectrpc.jsonany.v1.NotDeclared"], details.Select(d => d.GetProperty("type").GetString()));
        Assert.Equal(new Note { Text = "why" }, Note.Parser.ParseFrom(Convert.FromBase64String(Padded(details[0].GetProperty("value").GetString()!))));
        Assert.Equal("""{"text":"why"}""", details[0].GetProperty("debug").GetRawText());
        Assert.Equal("""{"by":"two imports away"}""", details[1].GetProperty("debug").GetRawText());
        Assert.False(details[2].TryGetProperty("debug", out _));

        // Our client reads all three, debug or not.
        ConnectException received = await Assert.ThrowsAsync<ConnectException>(
            () => Client(Protocol.Connect, false).EchoAsync(new Bag(), new Headers { ["x-pack"] = "fail" }).Within());
        Assert.Equal(3, received.Details.Count);
        Assert.Equal("why", received.GetDetail<Note>()!.Text);
    }

    private static string Padded(string base64) => base64.PadRight((base64.Length + 3) / 4 * 4, '=');

    [Theory]
    [InlineData(Protocol.Connect, false)]
    [InlineData(Protocol.Grpc, true)]
    [InlineData(Protocol.GrpcWeb, false)]
    public async Task Response_TheServerCannotWriteAsJson_InternalLoggedAsTheServersFailure(Protocol protocol, bool http2)
    {
        // A lone surrogate: the proto codec writes it, JSON cannot. The runtime's failure, not the handler's.
        _server.ExpectLogs("the server cannot encode its response: a string with a lone surrogate", "could not encode a response message");
        var headers = new Headers { ["x-pack"] = "lone-surrogate" };

        ConnectException unary = await Assert.ThrowsAsync<ConnectException>(() => Client(protocol, http2).EchoAsync(new Bag(), headers).Within());
        ConnectException stream = await Assert.ThrowsAsync<ConnectException>(() => Client(protocol, http2).EchoManyAsync(new Bag(), headers).ToListWithin());

        Assert.Equal(Code.Internal, unary.Code);
        Assert.Equal(Code.Internal, stream.Code);
        Assert.StartsWith("cannot encode json message", unary.Message, StringComparison.Ordinal);
        await Wait.UntilAsync(() => _server.Logs.Count >= 2);
        Assert.DoesNotContain(_server.Logs, log => log.Contains("The handler of", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(Protocol.Connect, false)]
    [InlineData(Protocol.Grpc, true)]
    [InlineData(Protocol.GrpcWeb, false)]
    public async Task Response_TypeOnlyInTheServersJsonTypes_ClientNeedsItInItsOwn(Protocol protocol, bool http2)
    {
        var headers = new Headers { ["x-pack"] = "greet" };
        int calls = Service.Calls;

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => Client(protocol, http2).EchoAsync(new Bag(), headers).Within());
        Assert.Equal(Code.Internal, error.Code);
        Assert.Contains("connectrpc.greet.v1.GreetRequest", error.Message, StringComparison.Ordinal);

        var options = new ConnectClientOptions();
        options.JsonTypes.Add(GreetRequest.Descriptor);
        Bag answer = await Client(protocol, http2, options).EchoAsync(new Bag(), headers).Within();
        Assert.Equal("known through JsonTypes", answer.Items[^1].Unpack<GreetRequest>().Name);
        Assert.Equal(2, Service.Calls - calls);
    }

    [Theory]
    [MemberData(nameof(JsonProtocols))]
    public async Task Request_AnyOfATypeTheClientDoesNotKnow_InternalBeforeAnythingIsSent(Protocol protocol, bool http2)
    {
        using var recorder = new UrlRecorder();
        AnyServiceClient client = Client(protocol, http2, handler: recorder);
        Bag unknown = ClientBag("x");
        unknown.Items.Add(TestAnyService.UnknownItem);

        ConnectException unary = await Assert.ThrowsAsync<ConnectException>(() => client.EchoAsync(unknown).Within());
        ConnectException stream = await Assert.ThrowsAsync<ConnectException>(() => client.EchoManyAsync(unknown).ToListWithin());
        Assert.Empty(recorder.Urls);

        // A request stream's headers may be on their way when a later message cannot be encoded: the call still fails so.
        ConnectException clientStream = await Assert.ThrowsAsync<ConnectException>(() => client.EchoAllAsync(Bags(ClientBag("ok"), unknown)).Within());
        foreach (ConnectException error in new[] { unary, stream, clientStream })
        {
            Assert.Equal(Code.Internal, error.Code);
            Assert.Contains("connectrpc.jsonany.v1.NotDeclared", error.Message, StringComparison.Ordinal);
        }
    }

    internal static async IAsyncEnumerable<Bag> Bags(params Bag[] bags)
    {
        foreach (Bag bag in bags)
        {
            await Task.Yield();
            yield return bag;
        }
    }

    /// <summary>Records the URL of every request a client sends.</summary>
    private sealed class UrlRecorder() : DelegatingHandler(new SocketsHttpHandler())
    {
        public System.Collections.Concurrent.ConcurrentQueue<Uri> Urls { get; } = new();

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Urls.Enqueue(request.RequestUri!);
            return base.SendAsync(request, cancellationToken);
        }
    }
}
