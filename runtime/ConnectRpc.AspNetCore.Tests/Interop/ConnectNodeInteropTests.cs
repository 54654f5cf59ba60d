using System.Net;
using System.Text.Json;
using Connectrpc.Greet.V1;
using ConnectRpc.Internal;
using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// connect-node (interop/) as the peer, both ways and over its three transports (Connect, gRPC,
/// gRPC-Web): its client against our server, and our client against its server; every RPC
/// kind, headers, trailers and errors. The class shares our server and the two node servers.
/// Bidi over HTTP/1.1: connect-node's client sends it (Node's HTTP/1.1 client reads the response
/// while it still sends, so even ping-pong works against our server); connect-node's HTTP/1.1
/// server refuses it with 505, which our client reports.
/// </summary>
public sealed class ConnectNodeInteropTests(GreetServer fixture, NodeServers nodes) : IClassFixture<GreetServer>, IClassFixture<NodeServers>
{
    private static readonly byte[] s_echoBytes = [0, 1, 2, 254, 255];
    private readonly KestrelHost _server = fixture.Host;

    [Theory]
    [InlineData("connect", false)]
    [InlineData("connect", true, "--json")]
    [InlineData("connect", true, "--gzip")]
    [InlineData("connect", false, "--json", "--gzip")]
    [InlineData("grpc", true)]
    [InlineData("grpc", true, "--json", "--gzip")]
    [InlineData("grpcweb", false)]
    [InlineData("grpcweb", false, "--json")]
    [InlineData("grpcweb", true, "--gzip")]
    public async Task NodeClient_OurServer_AllKindsWithMetadata(string protocol, bool http2, params string[] options)
    {
        string[] kinds = ["unary", "server", "client", "bidi"];
        JsonElement report = await Peers.NodeClientAsync(
            http2 ? _server.Http2Url : _server.Http1Url,
            [.. options, "--protocol", protocol, .. http2 ? ["--http2"] : Array.Empty<string>(), "--kinds", string.Join(',', kinds)]);

        AssertSuccess(report, "unary", "Hello, Ada!");
        AssertSuccess(report, "server", "Hello, Ada! (1)", "Hello, Ada! (2)", "Hello, Ada! (3)");
        AssertSuccess(report, "client", "Hello, Ada, Grace, Linus!");
        AssertSuccess(report, "bidi", "Hello, Ada!", "Hello, Grace!", "Hello, Linus!");
    }

    [Theory]
    [InlineData("connect")]
    [InlineData("grpcweb")]
    public async Task NodeClient_OurServerFails_BidiOverHttp11_CodeMessageAndMetadata(string protocol)
    {
        JsonElement report = await Peers.NodeClientAsync(_server.Http1Url, "--protocol", protocol, "--fail", "permission_denied", "--kinds", "bidi");
        JsonElement error = report.GetProperty("bidi").GetProperty("error");
        Assert.Equal("permission_denied", error.GetProperty("code").GetString());
        Assert.Equal("failed as asked", error.GetProperty("message").GetString());
        Assert.Equal(["yes"], Values(error.GetProperty("metadata"), "x-error-meta"));
        Assert.Equal(["Hello, Ada!"], Strings(report.GetProperty("bidi").GetProperty("messages")));
    }

    [Theory]
    [InlineData("connect")]
    [InlineData("grpc")]
    [InlineData("grpcweb")]
    public async Task NodeClient_OurServerFails_CodeMessageAndMetadata(string protocol)
    {
        JsonElement report = await Peers.NodeClientAsync(_server.Http2Url, "--protocol", protocol, "--http2", "--fail", "permission_denied");
        foreach (string kind in new[] { "unary", "server", "client", "bidi" })
        {
            JsonElement error = report.GetProperty(kind).GetProperty("error");
            Assert.Equal("permission_denied", error.GetProperty("code").GetString());
            Assert.Equal("failed as asked", error.GetProperty("message").GetString());
            JsonElement metadata = error.GetProperty("metadata");
            Assert.Equal(["yes"], Values(metadata, "x-error-meta"));
            Assert.Contains("v1", Values(metadata, "greet-version"));
        }

        Assert.Equal(["Hello, Ada! (1)"], Strings(report.GetProperty("server").GetProperty("messages")));
        Assert.Equal(["Hello, Ada!"], Strings(report.GetProperty("bidi").GetProperty("messages")));
    }

    [Theory]
    [InlineData(Protocol.Connect, false, Codec.Proto, null)]
    [InlineData(Protocol.Connect, true, Codec.Proto, "gzip")]
    [InlineData(Protocol.Connect, true, Codec.Json, null)]
    [InlineData(Protocol.Connect, false, Codec.Json, "gzip")]
    [InlineData(Protocol.Grpc, true, Codec.Proto, "gzip")]
    [InlineData(Protocol.Grpc, true, Codec.Json, null)]
    [InlineData(Protocol.GrpcWeb, false, Codec.Proto, null)]
    [InlineData(Protocol.GrpcWeb, true, Codec.Json, "gzip")]
    public async Task OurClient_NodeServer_AllKindsWithMetadata(Protocol protocol, bool http2, Codec codec, string? compression)
    {
        NodeServer node = nodes.Server(h2c: http2);
        var options = new ConnectClientOptions { Protocol = protocol, Codec = codec, SendCompression = compression };
        if (http2)
        {
            options.HttpVersion = HttpVersion.Version20;
        }

        var client = new GreetServiceClient(node.Url.ToString(), options);
        using (var meta = new ResponseMetadata())
        {
            GreetResponse response = await client.GreetAsync(new GreetRequest { Name = "Ada" }, EveryProtocolCallTests.RequestHeaders()).Within();
            Assert.Equal("Hello, Ada!", response.Greeting);
            EveryProtocolCallTests.AssertMetadata(meta.Headers, meta.Trailers);
        }

        using (var meta = new ResponseMetadata())
        {
            List<GreetResponse> responses = await client.GreetManyAsync(new GreetRequest { Name = "Ada" }, EveryProtocolCallTests.RequestHeaders()).ToListWithin();
            Assert.Equal(["Hello, Ada! (1)", "Hello, Ada! (2)", "Hello, Ada! (3)"], responses.Select(r => r.Greeting));
            EveryProtocolCallTests.AssertMetadata(meta.Headers, meta.Trailers);
        }

        using (var meta = new ResponseMetadata())
        {
            GreetResponse response = await client.GreetEveryoneAsync(EveryProtocolCallTests.Names("Ada", "Grace", "Linus"), EveryProtocolCallTests.RequestHeaders()).Within();
            Assert.Equal("Hello, Ada, Grace, Linus!", response.Greeting);
            EveryProtocolCallTests.AssertMetadata(meta.Headers, meta.Trailers);
        }

        if (http2)
        {
            using var meta = new ResponseMetadata();
            await EveryProtocolCallTests.PingPongAsync(client, EveryProtocolCallTests.RequestHeaders(), meta, ["Ada", "Grace", "Linus"]);
            EveryProtocolCallTests.AssertMetadata(meta.Headers, meta.Trailers);
        }
        else
        {
            // connect-node's HTTP/1.1 server refuses bidi with HTTP 505 and closes the connection
            // without reading the request body. Our half-duplex call reports the 505 when it reads
            // the answer first, or unavailable when the closed connection breaks its request body
            // first (which one depends on timing); it never waits for its deadline.
            ConnectException refused = await Assert.ThrowsAsync<ConnectException>(
                () => client.ChatAsync(EveryProtocolCallTests.Names("Ada", "Grace"), EveryProtocolCallTests.RequestHeaders()).ToListWithin());
            Assert.True(
                (refused.Code == Code.Unknown && refused.Message.Contains("505", StringComparison.Ordinal)) || refused.Code == Code.Unavailable,
                $"expected the 505 as unknown, or unavailable; got {refused.Code}: {refused.Message}");
        }
    }

    [Theory]
    [InlineData(Protocol.Connect)]
    [InlineData(Protocol.Grpc)]
    [InlineData(Protocol.GrpcWeb)]
    public async Task OurClient_NodeServerFails_CodeMessageAndMetadata(Protocol protocol)
    {
        NodeServer node = nodes.Server(h2c: true);
        var client = new GreetServiceClient(node.Url.ToString(), new ConnectClientOptions { Protocol = protocol, HttpVersion = HttpVersion.Version20 });
        Headers headers = EveryProtocolCallTests.RequestHeaders();
        headers["x-fail"] = "permission_denied";

        using var meta = new ResponseMetadata();
        ConnectException unary = await Assert.ThrowsAsync<ConnectException>(() => client.GreetAsync(new GreetRequest { Name = "Ada" }, headers).Within());
        AssertError(unary, meta);

        ConnectException stream = await Assert.ThrowsAsync<ConnectException>(() => client.GreetManyAsync(new GreetRequest { Name = "Ada" }, headers).ToListWithin());
        AssertError(stream, meta);

        ConnectException bidi = await Assert.ThrowsAsync<ConnectException>(() => EveryProtocolCallTests.PingPongAsync(client, headers, meta, ["Ada", "Grace"]));
        AssertError(bidi, meta);
    }

    private static void AssertError(ConnectException error, ResponseMetadata meta)
    {
        Assert.Equal(Code.PermissionDenied, error.Code);
        Assert.Equal("failed as asked", error.Message);
        Assert.Equal("yes", error.Metadata.Get("x-error-meta"));
        Assert.Equal("v1", error.Metadata.Get("greet-version"));
        Assert.Equal("v1", meta.Headers.Get("greet-version") ?? meta.Trailers.Get("greet-version"));
    }

    private static void AssertSuccess(JsonElement report, string kind, params string[] messages)
    {
        JsonElement result = report.GetProperty(kind);
        Assert.Equal(JsonValueKind.Null, result.GetProperty("error").ValueKind);
        Assert.Equal(messages, Strings(result.GetProperty("messages")));
        JsonElement headers = result.GetProperty("headers");
        JsonElement trailers = result.GetProperty("trailers");
        Assert.Equal(["1234"], Values(headers, "acme-tenant-id"));
        Assert.Equal(["v1"], Values(headers, "greet-version"));
        Assert.Equal(["a", "b"], Values(headers, "x-echo"));
        Assert.Equal(["v1"], Values(trailers, "greet-version"));
        Assert.Equal(s_echoBytes, HeaderRules.DecodeBinary(Assert.Single(Values(trailers, "x-echo-bin"))));
    }

    /// <summary>The values of a metadata key, split on commas as the conformance runner does.</summary>
    private static string[] Values(JsonElement metadata, string key) =>
        metadata.TryGetProperty(key, out JsonElement values) ? EveryProtocolCallTests.Split(Strings(values)) : [];

    private static string[] Strings(JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetString()!)];
}
