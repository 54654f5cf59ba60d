using System.Text.Json;
using CliWrap.Buffered;
using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>curl and buf curl (from @bufbuild/buf) as clients of our server, over Connect, gRPC and gRPC-Web.</summary>
public sealed class CurlInteropTests(GreetServer fixture) : IClassFixture<GreetServer>
{
    private const string Greet = "connectrpc.greet.v1.GreetService/Greet";
    private readonly KestrelHost _server = fixture.Host;

    private string Url(string path, bool http2 = false) => (http2 ? _server.Http2Url : _server.Http1Url) + path;

    [Fact]
    public async Task Curl_UnaryJsonPost_StatusBodyAndTrailerHeaders()
    {
        BufferedCommandResult result = await Peers.RunAsync(
            "curl", "-sS", "-i", "--max-time", "10", "-X", "POST", Url(Greet),
            "-H", "content-type: application/json", "-H", "acme-tenant-id: 1234", "-d", """{"name":"Ada"}""");
        (int status, Dictionary<string, List<string>> headers, string body) = ParseCurl(result);
        Assert.Equal(200, status);
        Assert.Equal("application/json", headers["content-type"].Single());
        Assert.Equal("1234", headers["acme-tenant-id"].Single());
        Assert.Equal("v1", headers["greet-version"].Single());
        Assert.Equal("v1", headers["trailer-greet-version"].Single());
        Assert.Equal("Hello, Ada!", JsonDocument.Parse(body).RootElement.GetProperty("greeting").GetString());
    }

    [Fact]
    public async Task Curl_UnaryGet_StatusBodyAndTrailerHeaders()
    {
        string query = "?encoding=json&message=" + Uri.EscapeDataString("""{"name":"Ada"}""");
        BufferedCommandResult result = await Peers.RunAsync("curl", "-sS", "-i", "--max-time", "10", Url(Greet) + query);
        (int status, Dictionary<string, List<string>> headers, string body) = ParseCurl(result);
        Assert.Equal(200, status);
        Assert.Equal("v1", headers["trailer-greet-version"].Single());
        Assert.Equal("Hello, Ada!", JsonDocument.Parse(body).RootElement.GetProperty("greeting").GetString());
    }

    [Fact]
    public async Task Curl_UnaryError_StatusFromCodeTableAndJsonError()
    {
        BufferedCommandResult result = await Peers.RunAsync(
            "curl", "-sS", "-i", "--max-time", "10", "-X", "POST", Url(Greet, http2: true), "--http2-prior-knowledge",
            "-H", "content-type: application/json", "-H", "x-fail: not_found", "-d", "{}");
        (int status, Dictionary<string, List<string>> headers, string body) = ParseCurl(result);
        Assert.Equal(404, status);
        Assert.Equal("application/json", headers["content-type"].Single());
        Assert.Equal("v1", headers["trailer-greet-version"].Single());
        Assert.Equal("yes", headers["x-error-meta"].Single());
        JsonElement error = JsonDocument.Parse(body).RootElement;
        Assert.Equal("not_found", error.GetProperty("code").GetString());
        Assert.Equal("failed as asked", error.GetProperty("message").GetString());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task BufCurl_Unary_HeadersTrailersAndResponse(bool http2)
    {
        BufferedCommandResult result = await BufCurlAsync(http2, Greet, """{"name":"Ada"}""");
        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Equal("Hello, Ada!", JsonDocument.Parse(result.StandardOutput).RootElement.GetProperty("greeting").GetString());
        Assert.Contains("< (#1) Acme-Tenant-Id: 1234", result.StandardError, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("< (#1) Greet-Version: v1", result.StandardError, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("< (#1) Trailer-Greet-Version: v1", result.StandardError, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task BufCurl_ServerStreaming_MessagesAndEndStreamTrailers()
    {
        BufferedCommandResult result = await BufCurlAsync(false, "connectrpc.greet.v1.GreetService/GreetMany", """{"name":"Ada"}""");
        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Equal(["Hello, Ada! (1)", "Hello, Ada! (2)", "Hello, Ada! (3)"], Greetings(result.StandardOutput));
        Assert.Contains("< (#1) Greet-Version: v1", result.StandardError, StringComparison.OrdinalIgnoreCase);
        // buf curl prints the end-stream metadata as trailers, marked [*].
        Assert.Contains("< (#1) [*] Greet-Version: v1", result.StandardError, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task BufCurl_ClientAndBidiStreaming_OverHttp2()
    {
        BufferedCommandResult client = await BufCurlAsync(true, "connectrpc.greet.v1.GreetService/GreetEveryone", """{"name":"Ada"} {"name":"Grace"}""");
        Assert.True(client.ExitCode == 0, client.StandardError);
        Assert.Equal(["Hello, Ada, Grace!"], Greetings(client.StandardOutput));

        BufferedCommandResult bidi = await BufCurlAsync(true, "connectrpc.greet.v1.GreetService/Chat", """{"name":"Ada"} {"name":"Grace"}""");
        Assert.True(bidi.ExitCode == 0, bidi.StandardError);
        Assert.Equal(["Hello, Ada!", "Hello, Grace!"], Greetings(bidi.StandardOutput));
        Assert.Contains("< (#1) Greet-Version: v1", bidi.StandardError, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("< (#1) [*] Greet-Version: v1", bidi.StandardError, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task BufCurl_Error_ReportsCodeAndMessage()
    {
        BufferedCommandResult result = await BufCurlAsync(true, Greet, "{}", "-H", "x-fail: already_exists");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("already_exists", result.StandardError, StringComparison.Ordinal);
        Assert.Contains("failed as asked", result.StandardError, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("grpc", true, "connectrpc.greet.v1.GreetService/Greet")]
    [InlineData("grpc", true, "connectrpc.greet.v1.GreetService/GreetMany")]
    [InlineData("grpcweb", false, "connectrpc.greet.v1.GreetService/Greet")]
    [InlineData("grpcweb", false, "connectrpc.greet.v1.GreetService/GreetMany")]
    [InlineData("grpcweb", true, "connectrpc.greet.v1.GreetService/Greet")]
    public async Task BufCurl_GrpcProtocols_HeadersTrailersAndResponses(string protocol, bool http2, string path)
    {
        BufferedCommandResult result = await BufCurlAsync(protocol, http2, path, """{"name":"Ada"}""", "-H", "x-echo: a", "-H", "x-echo: b");
        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Equal(path.EndsWith("Many", StringComparison.Ordinal) ? ["Hello, Ada! (1)", "Hello, Ada! (2)", "Hello, Ada! (3)"] : ["Hello, Ada!"], Greetings(result.StandardOutput));
        (List<string> headers, List<string> trailers) = BufCurlMetadata(result.StandardError);
        Assert.Contains("acme-tenant-id: 1234", headers);
        Assert.Contains("greet-version: v1", headers);
        Assert.Equal(["a", "b"], EveryProtocolCallTests.Split(headers.Where(h => h.StartsWith("x-echo:", StringComparison.Ordinal)).Select(h => h["x-echo:".Length..])));
        if (protocol == "grpc")
        {
            // buf curl prints HTTP trailers only; gRPC-Web trailers travel in the body.
            Assert.Contains("greet-version: v1", trailers);
            Assert.Contains("grpc-status: 0", trailers);
            Assert.DoesNotContain(trailers, t => t.StartsWith("acme-tenant-id", StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData("grpc", true)]
    [InlineData("grpcweb", false)]
    public async Task BufCurl_GrpcProtocolsError_CodeMessageAndMetadata(string protocol, bool http2)
    {
        BufferedCommandResult result = await BufCurlAsync(protocol, http2, Greet, "{}", "-H", "x-fail: already_exists");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("already_exists", result.StandardError, StringComparison.Ordinal);
        Assert.Contains("failed as asked", result.StandardError, StringComparison.Ordinal);
        (List<string> headers, List<string> trailers) = BufCurlMetadata(result.StandardError);
        Assert.Contains("greet-version: v1", headers);
        Assert.Contains("x-error-meta: yes", headers);
        if (protocol == "grpc")
        {
            Assert.Contains("greet-version: v1", trailers);
            Assert.Contains("grpc-status: 6", trailers);
            Assert.Contains("grpc-message: failed as asked", trailers);
        }
    }

    /// <summary>
    /// The response headers and trailers in buf curl's -v output, lower-cased: headers until the
    /// first empty <c>&lt; (#1)</c> line, trailers after the second.
    /// </summary>
    private static (List<string> Headers, List<string> Trailers) BufCurlMetadata(string verbose)
    {
        var sections = new List<List<string>> { new() };
        foreach (string line in verbose.Split('\n'))
        {
            int mark = line.IndexOf("< (#1)", StringComparison.Ordinal);
            if (mark < 0 || line.Contains("HTTP/", StringComparison.Ordinal))
            {
                continue;
            }

            string field = line[(mark + "< (#1)".Length)..].Trim();
            if (field.Length == 0)
            {
                sections.Add([]);
            }
            else
            {
                sections[^1].Add(field.ToLowerInvariant());
            }
        }

        return (sections[0], sections.Count > 2 ? sections[2] : []);
    }

    private Task<BufferedCommandResult> BufCurlAsync(bool http2, string path, string data, params string[] extra) =>
        BufCurlAsync("connect", http2, path, data, extra);

    private Task<BufferedCommandResult> BufCurlAsync(string protocol, bool http2, string path, string data, params string[] extra) =>
        Peers.RunAsync(Peers.Buf, [
            "curl", "--protocol", protocol, "--schema", Peers.TestProtos, "-v", "--timeout", "10s",
            .. http2 ? ["--http2-prior-knowledge"] : Array.Empty<string>(),
            "-H", "acme-tenant-id: 1234", .. extra, "--data", data, Url(path, http2)]);

    /// <summary>The greetings of the messages buf curl printed: one pretty-printed JSON object each.</summary>
    private static string[] Greetings(string output)
    {
        var greetings = new List<string>();
        var current = new System.Text.StringBuilder();
        foreach (string line in output.Split('\n'))
        {
            current.Append(line).Append('\n');
            if (line.TrimEnd() == "}")
            {
                greetings.Add(JsonDocument.Parse(current.ToString()).RootElement.GetProperty("greeting").GetString()!);
                current.Clear();
            }
        }

        return [.. greetings];
    }

    /// <summary>Splits curl -i output into status, lower-cased headers and body.</summary>
    private static (int Status, Dictionary<string, List<string>> Headers, string Body) ParseCurl(BufferedCommandResult result)
    {
        Assert.True(result.ExitCode == 0, $"curl exited with {result.ExitCode}: {result.StandardError}");
        string output = result.StandardOutput.Replace("\r\n", "\n", StringComparison.Ordinal);
        int split = output.IndexOf("\n\n", StringComparison.Ordinal);
        string[] lines = output[..split].Split('\n');
        int status = int.Parse(lines[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        var headers = new Dictionary<string, List<string>>(StringComparer.OrdinalIgnoreCase);
        foreach (string line in lines.Skip(1))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            string key = line[..colon].Trim().ToLowerInvariant();
            if (!headers.TryGetValue(key, out List<string>? values))
            {
                headers[key] = values = [];
            }

            values.Add(line[(colon + 1)..].Trim());
        }

        return (status, headers, output[(split + 2)..]);
    }
}
