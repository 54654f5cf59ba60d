using System.Net;
using System.Text;
using System.Text.Json;
using CliWrap.Buffered;
using Connectrpc.Jsonany.V1;
using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// JSON with <c>google.protobuf.Any</c> against peers nobody here wrote: connect-node
/// (interop/anyjson.mjs) as client of our server and as server of our client, over Connect, gRPC
/// and gRPC-Web, every RPC kind; buf curl (its type registry comes from the schema) and curl
/// (JSON text by hand, POST and GET) against our server.
/// </summary>
public sealed class JsonAnyInteropTests(JsonAnyCallTests.Server fixture, NodeServers nodes)
    : IClassFixture<JsonAnyCallTests.Server>, IClassFixture<NodeServers>
{
    private const string Echo = "connectrpc.jsonany.v1.AnyService/Echo";
    private readonly KestrelHost _server = fixture.Host;

    private static Bag Read(string json) =>
        AnyServiceConnect.EchoMethod.JsonCodec.Deserialize(Bag.Parser, new System.Buffers.ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(json)));

    private static string Write(Bag bag)
    {
        var output = new System.Buffers.ArrayBufferWriter<byte>();
        AnyServiceConnect.EchoMethod.JsonCodec.Serialize(bag, output);
        return Encoding.UTF8.GetString(output.WrittenSpan);
    }

    /// <summary>The bags one kind's messages printed by client.mjs, read back by our codec.</summary>
    private static List<Bag> Messages(JsonElement report, string kind)
    {
        JsonElement result = report.GetProperty(kind);
        Assert.True(result.GetProperty("error").ValueKind == JsonValueKind.Null, $"{kind}: {result.GetProperty("error")}");
        return [.. result.GetProperty("messages").EnumerateArray().Select(m => Read(m.GetRawText()))];
    }

    [Theory]
    [InlineData("connect", false)]
    [InlineData("connect", true)]
    [InlineData("grpc", true)]
    [InlineData("grpcweb", false)]
    [InlineData("grpcweb", true)]
    public async Task NodeClient_OurServer_AnyBothWays(string protocol, bool http2)
    {
        string[] kinds = http2 ? ["unary", "server", "client", "bidi"] : ["unary", "server", "client"];
        JsonElement report = await Peers.NodeClientAsync(
            http2 ? _server.Http2Url : _server.Http1Url,
            ["--any", "--json", "--protocol", protocol, .. http2 ? ["--http2"] : Array.Empty<string>(), "--kinds", string.Join(',', kinds)]);

        Bag node = JsonAnyCallTests.ClientBag("node");
        JsonAnyCallTests.AssertEcho(node, Assert.Single(Messages(report, "unary")));
        List<Bag> many = Messages(report, "server");
        Assert.Equal(2, many.Count);
        Assert.All(many, bag => JsonAnyCallTests.AssertEcho(node, bag));
        Bag first = JsonAnyCallTests.ClientBag("first");
        Bag second = JsonAnyCallTests.ClientBag("second");
        JsonAnyCallTests.AssertEcho(first, Assert.Single(Messages(report, "client")), second);
        if (http2)
        {
            List<Bag> chat = Messages(report, "bidi");
            Assert.Equal(2, chat.Count);
            JsonAnyCallTests.AssertEcho(first, chat[0]);
            JsonAnyCallTests.AssertEcho(second, chat[1]);
        }
    }

    [Theory]
    [InlineData(Protocol.Connect, false)]
    [InlineData(Protocol.Connect, true)]
    [InlineData(Protocol.Grpc, true)]
    [InlineData(Protocol.GrpcWeb, false)]
    [InlineData(Protocol.GrpcWeb, true)]
    public async Task OurClient_NodeServer_AnyBothWays(Protocol protocol, bool http2)
    {
        var options = new ConnectClientOptions { Protocol = protocol, Codec = Codec.Json };
        if (http2)
        {
            options.HttpVersion = HttpVersion.Version20;
        }

        var client = new AnyServiceClient(nodes.Server(h2c: http2).Url.ToString(), options);
        Bag first = JsonAnyCallTests.ClientBag("first");
        Bag second = JsonAnyCallTests.ClientBag("second");

        JsonAnyCallTests.AssertEcho(first, await client.EchoAsync(first).Within());
        List<Bag> many = await client.EchoManyAsync(first).ToListWithin();
        Assert.Equal(2, many.Count);
        Assert.All(many, bag => JsonAnyCallTests.AssertEcho(first, bag));
        JsonAnyCallTests.AssertEcho(first, await client.EchoAllAsync(JsonAnyCallTests.Bags(first, second)).Within(), second);
        if (http2)
        {
            List<Bag> chat = await client.EchoChatAsync(JsonAnyCallTests.Bags(first, second)).ToListWithin();
            Assert.Equal(2, chat.Count);
            JsonAnyCallTests.AssertEcho(first, chat[0]);
            JsonAnyCallTests.AssertEcho(second, chat[1]);
        }
    }

    [Fact]
    public async Task OurClient_NodeServerPacksAnUnknownType_Internal()
    {
        var client = new AnyServiceClient(nodes.Server(h2c: false).Url.ToString(), new ConnectClientOptions { Codec = Codec.Json });

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => client.EchoAsync(new Bag(), new Headers { ["x-pack"] = "greet" }).Within());

        // connect-node writes the GreetRequest it knows; our client, not told of it, cannot read it.
        Assert.Equal(Code.Internal, error.Code);
        Assert.Contains("connectrpc.greet.v1.GreetRequest", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("connect", false)]
    [InlineData("grpc", true)]
    [InlineData("grpcweb", false)]
    public async Task BufCurl_OurServer_AnyOfEveryOrigin(string protocol, bool http2)
    {
        // buf curl reads our JSON with the schema's registry, sends binary, and prints the response as JSON.
        Bag sent = JsonAnyCallTests.ClientBag("buf");
        Uri url = new((http2 ? _server.Http2Url : _server.Http1Url) + Echo);
        BufferedCommandResult result = await Peers.RunAsync(Peers.Buf, [
            "curl", "--protocol", protocol, "--schema", Path.Combine(Peers.RepoRoot, "testdata", "json_any", "proto"), "--timeout", "10s",
            .. http2 ? ["--http2-prior-knowledge"] : Array.Empty<string>(), "--data", Write(sent), url.ToString()]);

        Assert.True(result.ExitCode == 0, $"buf curl exited with {result.ExitCode}: {result.StandardError}");
        JsonAnyCallTests.AssertEcho(sent, Read(result.StandardOutput));
    }

    [Fact]
    public async Task Curl_JsonTextPostAndGet_AnyReadAndCompactJsonWritten()
    {
        const string Json = """{"items":[{"text":"by hand","@type":"type.googleapis.com/connectrpc.jsonany.v1.Note"},{"@type":"type.googleapis.com/google.protobuf.Duration","value":"2.5s"}]}""";
        string url = _server.Http1Url + Echo;

        BufferedCommandResult post = await Peers.RunAsync("curl", "-sS", "--max-time", "10", "-H", "content-type: application/json", "--data", Json, url);
        BufferedCommandResult get = await Peers.RunAsync("curl", "-sS", "--max-time", "10", url + "?connect=v1&encoding=json&message=" + Uri.EscapeDataString(Json));

        foreach (BufferedCommandResult result in new[] { post, get })
        {
            Assert.True(result.ExitCode == 0, $"curl exited with {result.ExitCode}: {result.StandardError}");
            string body = result.StandardOutput;
            Assert.StartsWith(
                """{"items":[{"@type":"type.googleapis.com/connectrpc.jsonany.v1.Note","text":"by hand"},{"@type":"type.googleapis.com/google.protobuf.Duration","value":"2.500s"},""",
                body,
                StringComparison.Ordinal);
            Assert.DoesNotContain("\": ", body, StringComparison.Ordinal);
            Assert.Equal(Read(Json).Items.Concat(TestAnyService.ServerItems), Read(body).Items);
        }
    }
}
