using Connectrpc.Greet.V1;
using Google.Protobuf;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// The four message size limits (server receive and send, client receive and send) over every
/// protocol, compressed or not (docs/wire/limits.md): a message exactly at a limit passes and one
/// byte over fails with resource_exhausted; compressed messages are measured after
/// decompression, so a small compressed body cannot smuggle in a large message.
/// </summary>
public sealed class MessageSizeLimitTests(MessageSizeLimitTests.Server fixture, MessageSizeLimitTests.SendLimitServer sendLimited)
    : IClassFixture<MessageSizeLimitTests.Server>, IClassFixture<MessageSizeLimitTests.SendLimitServer>
{
    private const int ServerReceive = 1024;
    private const int ServerSend = 512;
    private const int ClientReceive = 256;
    private const int ClientSend = 128;

    private readonly KestrelHost _server = fixture.Host;
    private readonly KestrelHost _sendLimited = sendLimited.Host;

    /// <summary>The server of the receive limit, which the tests of this class share.</summary>
    public sealed class Server : KestrelFixture
    {
        protected override Task<KestrelHost> StartAsync() => KestrelHost.StartAsync(options => options.MaxReceiveMessageSize = ServerReceive);
    }

    /// <summary>The send limit has a server of its own (shared by its cases): a response at it needs a request over the receive limit.</summary>
    public sealed class SendLimitServer : KestrelFixture
    {
        protected override Task<KestrelHost> StartAsync() => KestrelHost.StartAsync(options => options.MaxSendMessageSize = ServerSend);
    }

    public static TheoryData<Protocol, string?, bool> Wires()
    {
        var data = new TheoryData<Protocol, string?, bool>();
        foreach (Protocol protocol in EveryProtocolCallTests.Protocols)
        {
            foreach (string? compression in new[] { null, "gzip" })
            {
                data.Add(protocol, compression, true);
                if (protocol != Protocol.Grpc)
                {
                    data.Add(protocol, compression, false);
                }
            }
        }

        return data;
    }

    /// <summary>A request whose encoded size is exactly <paramref name="size"/> bytes.</summary>
    private static GreetRequest RequestOfSize(int size) => RequestWhere(name => new GreetRequest { Name = name }.CalculateSize(), size);

    /// <summary>A request whose Greet response ("Hello, NAME!") encodes to exactly <paramref name="size"/> bytes.</summary>
    private static GreetRequest RequestForResponseOfSize(int size) => RequestWhere(name => new GreetResponse { Greeting = $"Hello, {name}!" }.CalculateSize(), size);

    /// <summary>The request with the shortest name for which <paramref name="measure"/> gives <paramref name="size"/>.</summary>
    private static GreetRequest RequestWhere(Func<string, int> measure, int size)
    {
        // A string field costs its length, a tag byte and up to five length bytes.
        for (int length = Math.Max(0, size - 16); length <= size; length++)
        {
            string name = new('x', length);
            if (measure(name) == size)
            {
                return new GreetRequest { Name = name };
            }
        }

        throw new InvalidOperationException($"no name gives size {size}");
    }

    private GreetServiceClient Client(Protocol protocol, string? compression, bool http2, int maxReceive = ConnectClientOptions.DefaultMaxReceiveMessageSize, int maxSend = int.MaxValue) =>
        _server.Client(http2, new ConnectClientOptions
        {
            Protocol = protocol,
            SendCompression = compression,
            MaxReceiveMessageSize = maxReceive,
            MaxSendMessageSize = maxSend,
        });

    private static async Task AssertAtLimitPassesAndOverFailsAsync(Func<int, Task> call, int limit)
    {
        await call(limit).Within();
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => call(limit + 1).Within());
        Assert.Equal(Code.ResourceExhausted, error.Code);
        Assert.Contains(limit.ToString(System.Globalization.CultureInfo.InvariantCulture), error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Wires))]
    public async Task ServerReceiveLimit_AtLimitPassesOneOverResourceExhausted(Protocol protocol, string? compression, bool http2)
    {
        GreetServiceClient client = Client(protocol, compression, http2);
        await AssertAtLimitPassesAndOverFailsAsync(size => client.GreetAsync(RequestOfSize(size)), ServerReceive);
    }

    [Theory]
    [MemberData(nameof(Wires))]
    public async Task ServerReceiveLimit_ClientStreamMessageOver_ResourceExhausted(Protocol protocol, string? compression, bool http2)
    {
        GreetServiceClient client = Client(protocol, compression, http2);
        await AssertAtLimitPassesAndOverFailsAsync(
            size => client.GreetEveryoneAsync(EveryProtocolCallTests.Names("a", new string('x', size - 3), "b")), ServerReceive);
    }

    [Theory]
    [MemberData(nameof(Wires))]
    public async Task ServerSendLimit_AtLimitPassesOneOverResourceExhausted(Protocol protocol, string? compression, bool http2)
    {
        GreetServiceClient client = _sendLimited.Client(http2, new ConnectClientOptions { Protocol = protocol, SendCompression = compression });
        await AssertAtLimitPassesAndOverFailsAsync(size => client.GreetAsync(RequestForResponseOfSize(size)), ServerSend);
    }

    [Theory]
    [MemberData(nameof(Wires))]
    public async Task ClientReceiveLimit_AtLimitPassesOneOverResourceExhausted(Protocol protocol, string? compression, bool http2)
    {
        GreetServiceClient client = Client(protocol, compression, http2, maxReceive: ClientReceive);
        await AssertAtLimitPassesAndOverFailsAsync(size => client.GreetAsync(RequestForResponseOfSize(size)), ClientReceive);
    }

    [Theory]
    [MemberData(nameof(Wires))]
    public async Task ClientSendLimit_AtLimitPassesOneOverResourceExhausted(Protocol protocol, string? compression, bool http2)
    {
        GreetServiceClient client = Client(protocol, compression, http2, maxSend: ClientSend);
        await AssertAtLimitPassesAndOverFailsAsync(size => client.GreetAsync(RequestOfSize(size)), ClientSend);
    }

    [Fact]
    public async Task UnaryLimitAboveKestrelsBodyLimit_OptionGoverns()
    {
        // Kestrel refuses request bodies over 30,000,000 bytes by default; a Connect endpoint's
        // own receive limit decides instead, so a larger limit is honoured.
        const int large = 40_000_000;
        await using KestrelHost server = await KestrelHost.StartAsync(options => options.MaxReceiveMessageSize = large);
        GreetServiceClient client = server.Client(http2: true, new ConnectClientOptions { MaxReceiveMessageSize = 2 * large });
        GreetRequest request = RequestOfSize(large);
        GreetResponse response = await client.GreetAsync(request).WaitAsync(TimeSpan.FromSeconds(30), Bounded.Token);
        Assert.Equal(request.Name.Length + 8, response.Greeting.Length);
    }

    [Fact]
    public void CompressMinBytes_DefaultOneKibibyteZeroAllowedNegativeRefused()
    {
        var options = new ConnectServerOptions();
        Assert.Equal(1024, options.CompressMinBytes);

        options.CompressMinBytes = 0;

        Assert.Equal(0, options.CompressMinBytes);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.CompressMinBytes = -1);
    }

    [Fact]
    public void KestrelLimits_AreTheOnesTheReadmeDocuments()
    {
        // README.md "Reliability" lists the Kestrel limits that still apply to Connect calls;
        // this pins them, so a Kestrel that changes a default fails here before the docs go stale.
        KestrelServerLimits limits = new KestrelServerOptions().Limits;
        Assert.Equal(32 * 1024, limits.MaxRequestHeadersTotalSize);
        Assert.Equal(100, limits.MaxRequestHeaderCount);
        Assert.Equal(8 * 1024, limits.MaxRequestLineSize);
        Assert.Equal(30_000_000, limits.MaxRequestBodySize);
        Assert.Equal(240, limits.MinRequestBodyDataRate!.BytesPerSecond);
        Assert.Equal(TimeSpan.FromSeconds(5), limits.MinRequestBodyDataRate.GracePeriod);
        Assert.Equal(240, limits.MinResponseDataRate!.BytesPerSecond);
        Assert.Equal(TimeSpan.FromSeconds(30), limits.RequestHeadersTimeout);
        Assert.Equal(TimeSpan.FromSeconds(130), limits.KeepAliveTimeout);
        Assert.Null(limits.MaxConcurrentConnections);
        Assert.Equal(100, limits.Http2.MaxStreamsPerConnection);
        Assert.Equal(32 * 1024, limits.Http2.MaxRequestHeaderFieldSize);
        Assert.Equal(16 * 1024, limits.Http2.MaxFrameSize);
    }
}
