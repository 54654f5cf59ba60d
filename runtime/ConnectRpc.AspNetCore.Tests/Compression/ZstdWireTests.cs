using System.Net;
using System.Net.Http.Headers;
using CliWrap;
using CliWrap.Buffered;
using Connectrpc.Greet.V1;
using ConnectRpc.Tests;
using Google.Protobuf;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// zstd on the wire, checked by an implementation nobody here wrote: the reference <c>zstd</c>
/// command (Debian's package, which <c>make test</c> installs) decodes what our server and client
/// send, and our server reads a request that the command compressed and curl sent.
/// </summary>
public sealed class ZstdWireTests(GreetServer fixture) : IClassFixture<GreetServer>
{
    private static readonly string s_long = "Ada " + new string('z', 3000);

    private readonly KestrelHost _server = fixture.Host;

    private static string ZstdCommand
    {
        get
        {
            string? path = Environment.GetEnvironmentVariable("PATH")?.Split(':').Select(dir => Path.Combine(dir, "zstd")).FirstOrDefault(File.Exists);
            Assert.True(path is not null, "the zstd command is missing: run `make test` (or `apt-get install zstd`) first.");
            return path!;
        }
    }

    /// <summary>Runs the zstd command on <paramref name="input"/>, bounded; returns what it wrote.</summary>
    private static async Task<byte[]> ZstdAsync(byte[] input, params string[] arguments)
    {
        using CancellationTokenSource timeout = CancellationTokenSource.CreateLinkedTokenSource(Bounded.Token);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        using var output = new MemoryStream();
        var errors = new System.Text.StringBuilder();
        CommandResult result = await Cli.Wrap(ZstdCommand)
            .WithArguments(arguments)
            .WithStandardInputPipe(PipeSource.FromBytes(input))
            .WithStandardOutputPipe(PipeTarget.ToStream(output))
            .WithStandardErrorPipe(PipeTarget.ToStringBuilder(errors))
            .WithValidation(CommandResultValidation.None)
            .ExecuteAsync(timeout.Token);
        Assert.True(result.ExitCode == 0, $"zstd {string.Join(' ', arguments)} exited with {result.ExitCode}: {errors}");
        return output.ToArray();
    }

    private static Task<byte[]> ZstdDecodeAsync(byte[] frame) => ZstdAsync(frame, "-d", "-c", "-q");

    private async Task<(HttpResponseMessage Response, byte[] Body)> PostAsync(string procedure, string contentType, byte[] body, params (string Key, string Value)[] headers)
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_server.Http1Url, procedure.TrimStart('/'))) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        foreach ((string key, string value) in headers)
        {
            if (!request.Headers.TryAddWithoutValidation(key, value))
            {
                request.Content.Headers.TryAddWithoutValidation(key, value);
            }
        }

        HttpResponseMessage response = await http.SendAsync(request, Bounded.Token).Within();
        return (response, await response.Content.ReadAsByteArrayAsync(Bounded.Token).Within());
    }

    [Fact]
    public async Task ServerUnaryResponse_DecodedByTheZstdCommand()
    {
        (HttpResponseMessage response, byte[] body) = await PostAsync(
            GreetServiceConnect.Procedures.Greet, "application/proto", new GreetRequest { Name = s_long }.ToByteArray(), ("Accept-Encoding", "zstd"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["zstd"], response.Content.Headers.ContentEncoding);
        Assert.True(body.Length < 200, $"{body.Length} bytes for a response of over 3,000");
        Assert.Equal($"Hello, {s_long}!", GreetResponse.Parser.ParseFrom(await ZstdDecodeAsync(body)).Greeting);
    }

    [Fact]
    public async Task ServerStreamFrames_EachDecodedByTheZstdCommand()
    {
        (HttpResponseMessage response, byte[] body) = await PostAsync(
            GreetServiceConnect.Procedures.GreetMany,
            "application/connect+proto",
            WireBytes.Frame(new GreetRequest { Name = s_long }.ToByteArray()),
            ("Connect-Protocol-Version", "1"),
            ("Connect-Accept-Encoding", "zstd"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("zstd", string.Join(",", response.Headers.GetValues("Connect-Content-Encoding")));
        List<(byte Flags, byte[] Payload)> frames = WireBytes.Frames(body);
        Assert.Equal([1, 1, 1, 2], frames.Select(f => f.Flags));
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal($"Hello, {s_long}! ({i + 1})", GreetResponse.Parser.ParseFrom(await ZstdDecodeAsync(frames[i].Payload)).Greeting);
        }
    }

    [Fact]
    public async Task ClientRequest_DecodedByTheZstdCommand()
    {
        var capture = new BodyCapture();
        var client = new GreetServiceClient(
            new HttpClient(capture) { BaseAddress = _server.Http1Url },
            new ConnectClientOptions { SendCompression = "zstd" });

        Assert.Equal($"Hello, {s_long}!", (await client.GreetAsync(new GreetRequest { Name = s_long }).Within()).Greeting);

        Assert.Equal("zstd", capture.Encoding);
        Assert.Equal(s_long, GreetRequest.Parser.ParseFrom(await ZstdDecodeAsync(capture.Body!)).Name);
    }

    [Theory]
    [InlineData("1")]
    [InlineData("19")]
    public async Task RequestCompressedByTheZstdCommand_SentWithCurl_Accepted(string level)
    {
        byte[] compressed = await ZstdAsync(new GreetRequest { Name = s_long }.ToByteArray(), "-c", "-q", "-" + level);
        string file = Path.Combine(Path.GetTempPath(), $"connect-zstd-{Guid.NewGuid():N}.zst");
        await File.WriteAllBytesAsync(file, compressed, Bounded.Token);
        string output = file + ".out";
        try
        {
            BufferedCommandResult result = await Peers.RunAsync(
                "curl", "-sS", "--max-time", "10", "-o", output, "-w", "%{http_code} %header{content-encoding}", "-X", "POST",
                _server.Http1Url + GreetServiceConnect.Procedures.Greet.TrimStart('/'),
                "-H", "content-type: application/proto", "-H", "content-encoding: zstd",
                "--data-binary", "@" + file);
            Assert.True(result.ExitCode == 0, result.StandardError);
            // The server answers in the request's encoding; the command decodes that too.
            Assert.Equal("200 zstd", result.StandardOutput);
            byte[] response = await ZstdDecodeAsync(await File.ReadAllBytesAsync(output, Bounded.Token));
            Assert.Equal($"Hello, {s_long}!", GreetResponse.Parser.ParseFrom(response).Greeting);
        }
        finally
        {
            File.Delete(file);
            File.Delete(output);
        }
    }

    /// <summary>
    /// A frame that asks for a 128 MiB window (level 22 of a stream of unknown size) is refused
    /// before the server allocates it: zstd windows are limited to 8 MiB, as for HTTP's zstd coding.
    /// </summary>
    [Fact]
    public async Task RequestNeedingAWindowOver8MiB_InvalidArgument()
    {
        byte[] compressed = await ZstdAsync(new GreetRequest { Name = s_long }.ToByteArray(), "-c", "-q", "--ultra", "-22");

        (HttpResponseMessage response, byte[] body) = await PostAsync(
            GreetServiceConnect.Procedures.Greet, "application/proto", compressed, ("Content-Encoding", "zstd"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("cannot decompress zstd data: Frame requires too much memory", System.Text.Encoding.UTF8.GetString(body), StringComparison.Ordinal);
    }

    /// <summary>Keeps the body and Content-Encoding of the request a client sends.</summary>
    private sealed class BodyCapture() : DelegatingHandler(new SocketsHttpHandler())
    {
        public byte[]? Body { get; private set; }

        public string? Encoding { get; private set; }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Body = await request.Content!.ReadAsByteArrayAsync(cancellationToken);
            Encoding = string.Join(",", request.Content.Headers.ContentEncoding);
            return await base.SendAsync(request, cancellationToken);
        }
    }
}
