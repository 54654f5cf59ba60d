using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Connectrpc.Greet.V1;
using ConnectRpc.Tests;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// Every compression (gzip, br, zstd, deflate, and the test-only snappy an application could add)
/// between our client and our server, on every protocol and RPC kind and Connect GET, both ways:
/// the encoding headers on the wire, and each message compressed and decompressed by that
/// compressor (counted on both sides). The limits every compressor shares: bombs stop one byte
/// past the receive limit, <c>CompressMinBytes</c>, corrupt data and failing custom compressors
/// mapped to codes, and a Connect unary request asked to compress that names its encoding even
/// when its message is empty.
/// </summary>
public sealed class CompressionTests(CompressionTests.Server fixture) : IClassFixture<CompressionTests.Server>
{
    /// <summary>The server's receive limit (after decompression).</summary>
    private const int ServerReceive = 64 * 1024;

    /// <summary>The client's receive limit in the tests of the client's limit: below the server's, so a request can ask for a larger response.</summary>
    private const int ClientReceive = 16 * 1024;

    private static readonly string[] s_names = ["gzip", "br", "zstd", "deflate", "snappy"];

    private readonly KestrelHost _server = fixture.Host;

    /// <summary>Our server reading every compression through counting wrappers, and a broken one.</summary>
    public sealed class Server : KestrelFixture
    {
        internal Dictionary<string, CountingCompressor> Counters { get; } = new[] { Compressor.Gzip, Compressor.Brotli, Compressor.Zstd, Compressor.Deflate, SnappyCompressor.Instance }
            .ToDictionary(c => c.Name, c => new CountingCompressor(c));

        protected override Task<KestrelHost> StartAsync() => KestrelHost.StartAsync(options =>
        {
            options.MaxReceiveMessageSize = ServerReceive;
            options.Compressors.Clear();
            foreach (CountingCompressor counter in Counters.Values)
            {
                options.Compressors.Add(counter);
            }

            options.Compressors.Add(new BrokenCompressor());
        });
    }

    private CountingCompressor ServerCounter(string name)
    {
        CountingCompressor counter = fixture.Counters[name];
        return counter;
    }

    private static Compressor BuiltIn(string name) => name switch
    {
        "gzip" => Compressor.Gzip,
        "br" => Compressor.Brotli,
        "zstd" => Compressor.Zstd,
        "deflate" => Compressor.Deflate,
        "snappy" => SnappyCompressor.Instance,
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    public static TheoryData<string, Protocol> NamesAndProtocols()
    {
        var data = new TheoryData<string, Protocol>();
        foreach (string name in s_names)
        {
            foreach (Protocol protocol in EveryProtocolCallTests.Protocols)
            {
                data.Add(name, protocol);
            }
        }

        return data;
    }

    public static TheoryData<string> Names() => new(s_names);

    /// <summary>
    /// A client over HTTP/2 that sends with <paramref name="name"/> and lists it first among what it
    /// reads, through a counting wrapper; its exchanges are recorded.
    /// </summary>
    private (GreetServiceClient Client, Recorder Recorder, CountingCompressor Counter) Client(
        string name, Protocol protocol, bool useGet = false, int maxReceive = ConnectClientOptions.DefaultMaxReceiveMessageSize, bool counted = true)
    {
        foreach (CountingCompressor server in fixture.Counters.Values)
        {
            server.Reset();
        }

        var counter = new CountingCompressor(BuiltIn(name));
        var options = new ConnectClientOptions
        {
            Protocol = protocol,
            HttpVersion = HttpVersion.Version20,
            SendCompression = name.ToUpperInvariant(), // names compare without regard to case
            UseHttpGet = useGet,
            MaxReceiveMessageSize = maxReceive,
        };
        options.Compressors.Clear();
        options.Compressors.Add(counted ? counter : counter.Inner);
        foreach (Compressor other in new[] { Compressor.Gzip, Compressor.Brotli, Compressor.Zstd, Compressor.Deflate }.Where(c => c.Name != name))
        {
            options.Compressors.Add(other);
        }

        var recorder = new Recorder();
        return (new GreetServiceClient(new HttpClient(recorder) { BaseAddress = _server.Http2Url }, options), recorder, counter);
    }

    private static string RequestEncodingHeader(Protocol protocol, bool streaming) =>
        protocol != Protocol.Connect ? "grpc-encoding" : streaming ? "Connect-Content-Encoding" : "Content-Encoding";

    /// <summary>Long enough to pass the server's CompressMinBytes (1 KiB), and very compressible.</summary>
    private static readonly string s_long = "Ada " + new string('a', 3000);

    [Theory]
    [MemberData(nameof(NamesAndProtocols))]
    public async Task EachCompression_EveryRpcKind_MessagesCompressedBothWays(string name, Protocol protocol)
    {
        (GreetServiceClient client, Recorder recorder, CountingCompressor counter) = Client(name, protocol);
        CountingCompressor server = ServerCounter(name);

        Assert.Equal($"Hello, {s_long}!", (await client.GreetAsync(new GreetRequest { Name = s_long }).Within()).Greeting);
        List<GreetResponse> many = await client.GreetManyAsync(new GreetRequest { Name = s_long }).ToListWithin();
        Assert.Equal([$"Hello, {s_long}! (1)", $"Hello, {s_long}! (2)", $"Hello, {s_long}! (3)"], many.Select(r => r.Greeting));
        Assert.Equal($"Hello, {s_long}, {s_long}!", (await client.GreetEveryoneAsync(EveryProtocolCallTests.Names(s_long, s_long)).Within()).Greeting);
        List<GreetResponse> chat = await client.ChatAsync(EveryProtocolCallTests.Names(s_long, s_long)).ToListWithin();
        Assert.Equal([$"Hello, {s_long}!", $"Hello, {s_long}!"], chat.Select(r => r.Greeting));

        // Requests: 1 + 1 + 2 + 2 messages; responses: 1 + 3 + 1 + 2. Each one through the named compressor.
        Assert.Equal(6, counter.Compressions);
        Assert.Equal(6, server.Decompressions);
        Assert.Equal(7, server.Compressions);
        Assert.Equal(7, counter.Decompressions);
        Assert.All(fixture.Counters.Values.Where(c => c.Name != name), other => Assert.Equal(0, other.Compressions + other.Decompressions));

        Assert.Equal(4, recorder.Exchanges.Count);
        foreach (Exchange exchange in recorder.Exchanges)
        {
            bool streaming = exchange.Path != GreetServiceConnect.Procedures.Greet;
            string header = RequestEncodingHeader(protocol, streaming);
            Assert.Equal(name, exchange.Request.GetValueOrDefault(header.ToLowerInvariant()), ignoreCase: true);
            Assert.Equal(name, exchange.Response.GetValueOrDefault(header.ToLowerInvariant()));
        }
    }

    [Theory]
    [MemberData(nameof(NamesAndProtocols))]
    public async Task EachCompression_ResponseUnderCompressMinBytes_SentUncompressed(string name, Protocol protocol)
    {
        (GreetServiceClient client, Recorder recorder, CountingCompressor counter) = Client(name, protocol);

        Assert.Equal("Hello, Ada!", (await client.GreetAsync(new GreetRequest { Name = "Ada" }).Within()).Greeting);

        // The client has no minimum: its request is compressed; the server's short response is not.
        Assert.Equal(1, counter.Compressions);
        Assert.Equal(1, ServerCounter(name).Decompressions);
        Assert.Equal(0, ServerCounter(name).Compressions);
        Assert.Equal(0, counter.Decompressions);
        if (protocol == Protocol.Connect)
        {
            Assert.Null(Assert.Single(recorder.Exchanges).Response.GetValueOrDefault("content-encoding"));
        }
    }

    [Theory]
    [MemberData(nameof(Names))]
    public async Task EachCompression_ConnectGet_QueryNamesItAndResponseCompressed(string name)
    {
        (GreetServiceClient client, Recorder recorder, CountingCompressor counter) = Client(name, Protocol.Connect, useGet: true);

        Assert.Equal($"Hello, {s_long}!", (await client.GreetAsync(new GreetRequest { Name = s_long }).Within()).Greeting);

        Exchange exchange = Assert.Single(recorder.Exchanges);
        Assert.Equal("GET", exchange.Method);
        Assert.Contains($"&compression={name}&", exchange.Query, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(name, exchange.Response.GetValueOrDefault("content-encoding"));
        Assert.Equal((1, 1, 1, 1), (counter.Compressions, ServerCounter(name).Decompressions, ServerCounter(name).Compressions, counter.Decompressions));
    }

    /// <summary>
    /// The edge case: a Connect unary request asked to compress whose message is empty still says
    /// its encoding (Content-Encoding, or GET's compression parameter); its body is that
    /// compression of nothing, which the server reads.
    /// </summary>
    [Theory]
    [MemberData(nameof(Names))]
    public async Task EachCompression_ConnectUnaryEmptyRequest_StillNamesItsEncoding(string name)
    {
        foreach (bool get in new[] { false, true })
        {
            // The compressor itself, not a counting wrapper: for gzip and deflate the runtime writes the whole empty stream
            // that .NET's own streams leave out.
            (GreetServiceClient client, Recorder recorder, _) = Client(name, Protocol.Connect, useGet: get, counted: false);

            Assert.Equal("Hello, !", (await client.GreetAsync(new GreetRequest()).Within()).Greeting);

            Exchange exchange = Assert.Single(recorder.Exchanges);
            if (get)
            {
                Assert.Contains($"&compression={name}&", exchange.Query, StringComparison.OrdinalIgnoreCase);
            }
            else
            {
                Assert.Equal(name, exchange.Request.GetValueOrDefault("content-encoding"), ignoreCase: true);
                Assert.True(exchange.RequestBodyLength > 0, $"the body ({exchange.RequestBodyLength} bytes) is the compressed form of the empty message");
            }

            Assert.Equal(1, ServerCounter(name).Decompressions);
            Assert.Equal(0, ServerCounter(name).LastDecompressedBytes);
        }
    }

    /// <summary>The request message of exactly <paramref name="size"/> encoded bytes.</summary>
    private static GreetRequest RequestOfSize(int size)
    {
        for (int length = Math.Max(0, size - 8); length <= size; length++)
        {
            var request = new GreetRequest { Name = new string('x', length) };
            if (request.CalculateSize() == size)
            {
                return request;
            }
        }

        throw new InvalidOperationException($"no request of {size} bytes");
    }

    /// <summary>The request whose greeting ("Hello, NAME!") encodes to exactly <paramref name="size"/> bytes.</summary>
    private static GreetRequest RequestForResponseOfSize(int size)
    {
        for (int length = Math.Max(0, size - 16); length <= size; length++)
        {
            string name = new('x', length);
            if (new GreetResponse { Greeting = $"Hello, {name}!" }.CalculateSize() == size)
            {
                return new GreetRequest { Name = name };
            }
        }

        throw new InvalidOperationException($"no response of {size} bytes");
    }

    public static TheoryData<string, Protocol> BombCases()
    {
        var data = new TheoryData<string, Protocol>();
        foreach (string name in s_names)
        {
            data.Add(name, Protocol.Connect);
            data.Add(name, Protocol.Grpc);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(BombCases))]
    public async Task EachCompression_ServerReceiveLimit_AtLimitPassesBombStopsOneBytePast(string name, Protocol protocol)
    {
        (GreetServiceClient client, _, _) = Client(name, protocol);
        CountingCompressor server = ServerCounter(name);

        await client.GreetAsync(RequestOfSize(ServerReceive)).Within();
        Assert.Equal(ServerReceive, server.LastDecompressedBytes);

        // One byte over, then a bomb: 1 MiB that compresses to a few KiB (snappy: about 50). Either way decompression stops one byte past the limit.
        foreach (GreetRequest request in new[] { RequestOfSize(ServerReceive + 1), new GreetRequest { Name = new string('x', 1024 * 1024) } })
        {
            server.Reset();
            ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => client.GreetAsync(request).Within());
            Assert.Equal(Code.ResourceExhausted, error.Code);
            Assert.Contains($"{ServerReceive} bytes after {name} decompression", error.Message, StringComparison.Ordinal);
            Assert.Equal(1, server.Decompressions);
            Assert.Equal(ServerReceive + 1, server.LastDecompressedBytes);
        }

        // A stream's messages are limited one by one the same way.
        server.Reset();
        ConnectException streamError = await Assert.ThrowsAsync<ConnectException>(
            () => client.GreetEveryoneAsync(EveryProtocolCallTests.Names("a", new string('x', 1024 * 1024))).Within());
        Assert.Equal(Code.ResourceExhausted, streamError.Code);
        Assert.Equal(2, server.Decompressions);
        Assert.Equal(ServerReceive + 1, server.LastDecompressedBytes);
    }

    [Theory]
    [MemberData(nameof(BombCases))]
    public async Task EachCompression_ClientReceiveLimit_AtLimitPassesBombStopsOneBytePast(string name, Protocol protocol)
    {
        (GreetServiceClient client, _, CountingCompressor counter) = Client(name, protocol, maxReceive: ClientReceive);

        await client.GreetAsync(RequestForResponseOfSize(ClientReceive)).Within();
        Assert.Equal(ClientReceive, counter.LastDecompressedBytes);

        // One byte over, then a response of 60 KiB that compresses to a few hundred bytes.
        foreach (GreetRequest request in new[] { RequestForResponseOfSize(ClientReceive + 1), new GreetRequest { Name = new string('x', 60 * 1024) } })
        {
            counter.Reset();
            ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => client.GreetAsync(request).Within());
            Assert.Equal(Code.ResourceExhausted, error.Code);
            Assert.Equal(1, counter.Decompressions);
            Assert.Equal(ClientReceive + 1, counter.LastDecompressedBytes);
        }
    }

    // ---- raw requests: what a client that is not ours may send ----

    private async Task<(HttpStatusCode Status, HttpResponseMessage Response, byte[] Body)> PostAsync(
        string procedure, string contentType, byte[] body, params (string Key, string Value)[] headers)
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_server.Http2Url, procedure))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(body),
        };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        foreach ((string key, string value) in headers)
        {
            if (!request.Headers.TryAddWithoutValidation(key, value))
            {
                request.Content.Headers.TryAddWithoutValidation(key, value);
            }
        }

        HttpResponseMessage response = await http.SendAsync(request, Bounded.Token).Within();
        byte[] bytes = await response.Content.ReadAsByteArrayAsync(Bounded.Token).Within();
        return (response.StatusCode, response, bytes);
    }

    private static readonly string s_greet = GreetServiceConnect.Procedures.Greet.TrimStart('/');

    private static (string Code, string Message) ConnectError(byte[] body)
    {
        JsonElement error = JsonDocument.Parse(body).RootElement;
        return (error.GetProperty("code").GetString()!, error.GetProperty("message").GetString()!);
    }

    [Fact]
    public async Task UnknownRequestEncoding_Unimplemented_ListsTheServersCompressors()
    {
        (HttpStatusCode status, _, byte[] body) = await PostAsync(
            s_greet, "application/proto", new GreetRequest { Name = "Ada" }.ToByteArray(), ("Content-Encoding", "lz4"));

        Assert.Equal(HttpStatusCode.NotImplemented, status);
        (string code, string message) = ConnectError(body);
        Assert.Equal("unimplemented", code);
        Assert.Equal("unknown compression 'lz4': supported encodings are gzip, br, zstd, deflate, snappy, broken", message);
    }

    public static TheoryData<string, string> CorruptBodies() => new()
    {
        { "zstd", "not zstd at all" },
        { "zstd", "truncated" },
        { "deflate", "not zlib at all" },
        { "snappy", "not snappy at all" },
        { "gzip", "not gzip at all" },
        { "broken", "anything" },
    };

    /// <summary>
    /// Whatever a compressor throws on bad input (ZstdSharp's own exceptions, a truncated frame's
    /// EndOfStreamException, a custom compressor's bug) is the request's fault: invalid_argument,
    /// and the server goes on serving.
    /// </summary>
    [Theory]
    [MemberData(nameof(CorruptBodies))]
    public async Task CorruptCompressedRequest_InvalidArgument(string name, string body)
    {
        byte[] bytes = body == "truncated"
            ? Compress(Compressor.Zstd, new GreetRequest { Name = s_long }.ToByteArray())[..20]
            : System.Text.Encoding.UTF8.GetBytes(body);

        (HttpStatusCode status, _, byte[] answer) = await PostAsync(s_greet, "application/proto", bytes, ("Content-Encoding", name));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        (string code, string message) = ConnectError(answer);
        Assert.Equal("invalid_argument", code);
        Assert.StartsWith($"cannot decompress {name} data: ", message, StringComparison.Ordinal);

        // gRPC: the same code, in the trailers.
        (status, HttpResponseMessage response, _) = await PostAsync(s_greet, "application/grpc", WireBytes.Frame(bytes, 1), ("grpc-encoding", name), ("TE", "trailers"));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("3", response.Headers.TryGetValues("grpc-status", out IEnumerable<string>? inHeaders)
            ? string.Join(",", inHeaders)
            : string.Join(",", response.TrailingHeaders.GetValues("grpc-status")));

        Assert.Equal("Hello, Ada!", (await _server.Client().GreetAsync(new GreetRequest { Name = "Ada" }).Within()).Greeting);
    }

    [Fact]
    public async Task CustomCompressorFailing_OnResponse_Internal_OnRequest_ClientInternalBeforeSending()
    {
        // The server compresses its response with the broken compressor the client asks for.
        (HttpStatusCode status, _, byte[] body) = await PostAsync(
            s_greet, "application/proto", new GreetRequest { Name = s_long }.ToByteArray(), ("Accept-Encoding", "broken"));
        Assert.Equal(HttpStatusCode.InternalServerError, status);
        (string code, string message) = ConnectError(body);
        Assert.Equal("internal", code);
        Assert.Equal("cannot compress a message with broken: broken on purpose", message);

        // Our client with the broken compressor fails its own call with internal, and nothing is sent.
        var options = new ConnectClientOptions { SendCompression = "broken", HttpVersion = HttpVersion.Version20 };
        options.Compressors.Add(new BrokenCompressor());
        var recorder = new Recorder();
        var client = new GreetServiceClient(new HttpClient(recorder) { BaseAddress = _server.Http2Url }, options);
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => client.GreetAsync(new GreetRequest { Name = "Ada" }).Within());
        Assert.Equal(Code.Internal, error.Code);
        Assert.Empty(recorder.Exchanges);
    }

    [Fact]
    public async Task ResponseInAnEncodingTheClientDoesNotList_Internal()
    {
        // The client reads gzip only; a request asking for zstd responses by hand gets them, and the client refuses them.
        var options = new ConnectClientOptions { HttpVersion = HttpVersion.Version20 };
        options.Compressors.Clear();
        options.Compressors.Add(Compressor.Gzip);
        var client = new GreetServiceClient(new HttpClient(new AcceptEncodingOverride("zstd")) { BaseAddress = _server.Http2Url }, options);

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => client.GreetAsync(new GreetRequest { Name = s_long }).Within());

        Assert.Equal(Code.Internal, error.Code);
        Assert.Equal("protocol error: unknown compression 'zstd': supported encodings are gzip", error.Message);
    }

    [Fact]
    public async Task PerServiceCompressors_CarriedByTheServicesOptions()
    {
        await using KestrelHost host = await KestrelHost.StartAsync(
            null,
            false,
            null,
            app => app.MapConnectService<TestGreetService>(IGreetService.BindService, o =>
            {
                o.Compressors.Clear();
                o.Compressors.Add(Compressor.Zstd);
            }));

        var zstd = host.Client(options: new ConnectClientOptions { SendCompression = "zstd" });
        Assert.Equal("Hello, Ada!", (await zstd.GreetAsync(new GreetRequest { Name = "Ada" }).Within()).Greeting);
        var gzip = host.Client(options: new ConnectClientOptions { SendCompression = "gzip" });
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => gzip.GreetAsync(new GreetRequest { Name = "Ada" }).Within());
        Assert.Equal(Code.Unimplemented, error.Code);
        Assert.Equal("unknown compression 'gzip': supported encodings are zstd", error.Message);
    }

    [Fact]
    public void ServerCompressors_NullOrTwice_MapConnectServiceThrows()
    {
        foreach (Compressor? added in new[] { null, new SnappyCompressor(), Compressor.Gzip })
        {
            WebApplicationBuilder builder = WebApplication.CreateBuilder();
            builder.Services.AddSingleton<TestGreetService>();
            builder.Services.AddConnect(o =>
            {
                o.Compressors.Add(SnappyCompressor.Instance);
                o.Compressors.Add(added!);
            });
            using WebApplication app = builder.Build();
            ArgumentException error = Assert.Throws<ArgumentException>(() => app.MapConnectService<TestGreetService>(IGreetService.BindService));
            Assert.Contains("ConnectServerOptions.Compressors", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void ServerCompressors_DefaultOrder()
    {
        Assert.Equal(["gzip", "br", "zstd", "deflate"], new ConnectServerOptions().Compressors.Select(c => c.Name));
    }

    internal static byte[] Compress(Compressor compressor, byte[] plain)
    {
        using var output = new MemoryStream();
        using (Stream stream = compressor.CreateCompressionStream(output))
        {
            stream.Write(plain);
        }

        return output.ToArray();
    }

    /// <summary>One recorded call: the request line, both sides' headers (lower-case keys, values comma-joined).</summary>
    internal sealed record Exchange(string Method, string Path, string Query, Dictionary<string, string> Request, long RequestBodyLength, Dictionary<string, string> Response);

    /// <summary>Records every exchange of a client.</summary>
    internal sealed class Recorder() : DelegatingHandler(new SocketsHttpHandler())
    {
        public System.Collections.Concurrent.ConcurrentQueue<Exchange> Exchanges { get; } = new();

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            long length = request.Content is ByteArrayContent or ReadOnlyMemoryContent ? (await request.Content.ReadAsByteArrayAsync(cancellationToken)).Length : -1;
            HttpResponseMessage response = await base.SendAsync(request, cancellationToken);
            Exchanges.Enqueue(new Exchange(
                request.Method.Method,
                request.RequestUri!.AbsolutePath,
                request.RequestUri.Query,
                Flatten(request.Headers, request.Content?.Headers),
                length,
                Flatten(response.Headers, response.Content.Headers)));
            return response;
        }

        private static Dictionary<string, string> Flatten(HttpHeaders headers, HttpHeaders? content)
        {
            var all = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (HttpHeaders source in content is null ? [headers] : new[] { headers, content })
            {
                foreach (KeyValuePair<string, HeaderStringValues> header in source.NonValidated)
                {
                    all[header.Key.ToLowerInvariant()] = string.Join(",", header.Value);
                }
            }

            return all;
        }
    }

    /// <summary>Replaces a request's Accept-Encoding, as a client other than ours might send it.</summary>
    private sealed class AcceptEncodingOverride(string value) : DelegatingHandler(new SocketsHttpHandler())
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.Remove("Accept-Encoding");
            request.Headers.TryAddWithoutValidation("Accept-Encoding", value);
            return base.SendAsync(request, cancellationToken);
        }
    }
}
