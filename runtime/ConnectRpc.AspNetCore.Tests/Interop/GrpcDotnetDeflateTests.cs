using System.IO.Compression;
using System.Net;
using Connectrpc.Greet.V1;
using ConnectRpc.Tests;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Web;
using Grpc.Net.Compression;
using Microsoft.Extensions.DependencyInjection;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// gRPC's <c>deflate</c> (the zlib format) against grpc-dotnet's own <see cref="DeflateCompressionProvider"/>,
/// both ways and on both of its protocols: its client compressing requests to our server, which
/// answers in deflate; our client compressing requests to its server, which knows deflate only
/// (no gzip to fall back on) and answers in deflate.
/// </summary>
public sealed class GrpcDotnetDeflateTests(GreetServer server, GrpcDotnetDeflateTests.DeflatePeer peer)
    : IClassFixture<GreetServer>, IClassFixture<GrpcDotnetDeflateTests.DeflatePeer>
{
    private static readonly string s_long = "Ada " + new string('d', 3000);

    private readonly KestrelHost _server = server.Host;
    private readonly KestrelHost _peer = peer.Host;

    /// <summary>grpc-dotnet's greet service (<see cref="GrpcDotnetGreetService.Host"/>) with deflate as its only compression.</summary>
    public sealed class DeflatePeer : KestrelFixture
    {
        protected override Task<KestrelHost> StartAsync()
        {
            KestrelHostOptions host = GrpcDotnetGreetService.Host;
            return KestrelHost.StartAsync(new KestrelHostOptions
            {
                Services = services =>
                {
                    host.Services!(services);
                    services.Configure<GrpcServiceOptions>(options =>
                    {
                        options.CompressionProviders.Clear();
                        options.CompressionProviders.Add(new DeflateCompressionProvider(CompressionLevel.Fastest));
                    });
                },
                App = host.App,
            });
        }
    }

    public static TheoryData<Protocol> Protocols() => new(Protocol.Grpc, Protocol.GrpcWeb);

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task GrpcDotnetClient_Deflate_OurServerReadsAndAnswersInDeflate(Protocol protocol)
    {
        var recorder = new CompressionTests.Recorder();
        HttpMessageHandler handler = protocol == Protocol.Grpc ? recorder : new GrpcWebHandler(GrpcWebMode.GrpcWeb, recorder);
        using GrpcChannel channel = GrpcChannel.ForAddress(_server.Http2Url, new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            HttpVersion = HttpVersion.Version20,
            HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            CompressionProviders = [new DeflateCompressionProvider(CompressionLevel.Fastest)],
        });
        var client = new GreetService.GreetServiceClient(channel);
        var headers = new Metadata { { "grpc-internal-encoding-request", "deflate" } }; // grpc-dotnet's per-call request compression

        using (AsyncUnaryCall<GreetResponse> call = client.GreetAsync(new GreetRequest { Name = s_long }, headers, cancellationToken: Bounded.Token))
        {
            Assert.Equal($"Hello, {s_long}!", (await call.ResponseAsync.Within()).Greeting);
        }

        using (AsyncServerStreamingCall<GreetResponse> many = client.GreetMany(new GreetRequest { Name = s_long }, headers, cancellationToken: Bounded.Token))
        {
            List<GreetResponse> responses = await many.ResponseStream.ReadAllAsync().ToListWithin();
            Assert.Equal([$"Hello, {s_long}! (1)", $"Hello, {s_long}! (2)", $"Hello, {s_long}! (3)"], responses.Select(r => r.Greeting));
        }

        Assert.Equal(2, recorder.Exchanges.Count);
        foreach (CompressionTests.Exchange exchange in recorder.Exchanges)
        {
            Assert.Equal("deflate", exchange.Request.GetValueOrDefault("grpc-encoding"));
            Assert.Equal("deflate", exchange.Response.GetValueOrDefault("grpc-encoding"));
        }
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task OurClient_Deflate_GrpcDotnetServerReadsAndAnswersInDeflate(Protocol protocol)
    {
        var recorder = new CompressionTests.Recorder();
        var client = new GreetServiceClient(
            new HttpClient(recorder) { BaseAddress = _peer.Http2Url },
            new ConnectClientOptions { Protocol = protocol, HttpVersion = HttpVersion.Version20, SendCompression = "deflate" });

        Assert.Equal($"Hello, {s_long}!", (await client.GreetAsync(new GreetRequest { Name = s_long }).Within()).Greeting);
        List<GreetResponse> many = await client.GreetManyAsync(new GreetRequest { Name = s_long }).ToListWithin();
        Assert.Equal([$"Hello, {s_long}! (1)", $"Hello, {s_long}! (2)", $"Hello, {s_long}! (3)"], many.Select(r => r.Greeting));
        Assert.Equal($"Hello, {s_long}, Bob!", (await client.GreetEveryoneAsync(EveryProtocolCallTests.Names(s_long, "Bob")).Within()).Greeting);

        Assert.Equal(3, recorder.Exchanges.Count);
        foreach (CompressionTests.Exchange exchange in recorder.Exchanges)
        {
            Assert.Equal("deflate", exchange.Request.GetValueOrDefault("grpc-encoding"));
            Assert.Equal("deflate", exchange.Response.GetValueOrDefault("grpc-encoding"));
        }

        // The peer knows no gzip: deflate went through its DeflateCompressionProvider, nothing else.
        var gzip = new GreetServiceClient(
            new HttpClient { BaseAddress = _peer.Http2Url },
            new ConnectClientOptions { Protocol = protocol, HttpVersion = HttpVersion.Version20, SendCompression = "gzip" });
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => gzip.GreetAsync(new GreetRequest { Name = "Ada" }).Within());
        Assert.Equal(Code.Unimplemented, error.Code);
    }
}
