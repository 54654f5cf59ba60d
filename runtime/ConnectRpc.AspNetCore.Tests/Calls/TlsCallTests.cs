using System.Net;
using Connectrpc.Greet.V1;
using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// Every protocol over TLS on one Kestrel endpoint that offers HTTP/1.1 and HTTP/2 by ALPN:
/// the client's defaults pick HTTP/2, and HTTP/1.1 still works for Connect and gRPC-Web.
/// </summary>
public sealed class TlsCallTests(TlsCallTests.Server fixture) : IClassFixture<TlsCallTests.Server>
{
    private readonly KestrelHost _server = fixture.Host;

    /// <summary>The server the tests of this class share.</summary>
    public sealed class Server : KestrelFixture
    {
        protected override Task<KestrelHost> StartAsync() => KestrelHost.StartAsync(tls: true);
    }

    [Theory]
    [MemberData(nameof(EveryProtocolCallTests.AllProtocols), MemberType = typeof(EveryProtocolCallTests))]
    public async Task DefaultOptions_Http2ByAlpn_UnaryAndBidiPingPong(Protocol protocol)
    {
        GreetServiceClient client = _server.TlsClient(new ConnectClientOptions { Protocol = protocol });
        using (var meta = new ResponseMetadata())
        {
            GreetResponse response = await client.GreetAsync(new GreetRequest { Name = "Ada" }, EveryProtocolCallTests.RequestHeaders()).Within();
            Assert.Equal("Hello, Ada!", response.Greeting);
            EveryProtocolCallTests.AssertMetadata(meta.Headers, meta.Trailers);
        }

        Assert.Equal($"{protocol} HTTP/2 https", _server.Service.Transports[GreetServiceConnect.Procedures.Greet]);

        using (var meta = new ResponseMetadata())
        {
            await EveryProtocolCallTests.PingPongAsync(client, EveryProtocolCallTests.RequestHeaders(), meta, ["Ada", "Grace"]);
            EveryProtocolCallTests.AssertMetadata(meta.Headers, meta.Trailers);
        }

        Assert.Equal($"{protocol} HTTP/2 https", _server.Service.Transports[GreetServiceConnect.Procedures.Chat]);
    }

    [Theory]
    [InlineData(Protocol.Connect)]
    [InlineData(Protocol.GrpcWeb)]
    [InlineData(Protocol.GrpcWebText)]
    public async Task Http11AskedFor_UnaryAndStreamsOverHttp11(Protocol protocol)
    {
        GreetServiceClient client = _server.TlsClient(new ConnectClientOptions { Protocol = protocol, HttpVersion = HttpVersion.Version11 });
        using var meta = new ResponseMetadata();
        List<GreetResponse> responses = await client.GreetManyAsync(new GreetRequest { Name = "Ada" }, EveryProtocolCallTests.RequestHeaders()).ToListWithin();
        Assert.Equal(3, responses.Count);
        EveryProtocolCallTests.AssertMetadata(meta.Headers, meta.Trailers);
        Assert.Equal($"{protocol} HTTP/1.1 https", _server.Service.Transports[GreetServiceConnect.Procedures.GreetMany]);
    }
}
