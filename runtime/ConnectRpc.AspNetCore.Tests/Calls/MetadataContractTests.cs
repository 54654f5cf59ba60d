using System.Text;
using System.Threading.Channels;
using Connectrpc.Greet.V1;
using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// One contract across protocols: a table of headers and trailers (single, multi-valued,
/// binary, on the error path) runs over every protocol and RPC kind, and each protocol must
/// give exactly what Connect gives, which in turn must be the expected snapshot.
/// </summary>
public sealed class MetadataContractTests(GreetServer fixture) : IClassFixture<GreetServer>
{
    // The application's keys; transport headers (content-type, date, grpc-status...) differ by protocol by design.
    private static readonly string[] s_keys = ["acme-tenant-id", "greet-version", "x-echo", "x-echo-bin", "x-error-meta"];

    private readonly KestrelHost _server = fixture.Host;

    public static TheoryData<string, string, string> Table()
    {
        // case, kind, expected snapshot
        var data = new TheoryData<string, string, string>();
        const string Ok = "| error: none";
        foreach (string kind in new[] { "unary", "server", "client", "bidi" })
        {
            data.Add("single", kind, "headers: acme-tenant-id=1234; greet-version=v1 | trailers: greet-version=v1 " + Ok);
            data.Add("multi", kind, "headers: greet-version=v1; x-echo=a,b,c | trailers: greet-version=v1 " + Ok);
            data.Add("binary", kind, "headers: greet-version=v1 | trailers: greet-version=v1; x-echo-bin=AAEC/v8 " + Ok);
        }

        // A unary or client-streaming failure happens before any response was sent, so the
        // error's headers travel as headers; a stream fails after its first message, so they
        // join the trailers. Either way the error exposes headers and trailers alike.
        const string Early = "headers: acme-tenant-id=1234; greet-version=v1; x-error-meta=yes | trailers: greet-version=v1; x-echo-bin=AAEC/v8 | error: not_found failed as asked; headers: acme-tenant-id=1234; greet-version=v1; x-error-meta=yes; trailers: greet-version=v1; x-echo-bin=AAEC/v8";
        const string Late = "headers: acme-tenant-id=1234; greet-version=v1 | trailers: greet-version=v1; x-echo-bin=AAEC/v8; x-error-meta=yes | error: not_found failed as asked; headers: acme-tenant-id=1234; greet-version=v1; trailers: greet-version=v1; x-echo-bin=AAEC/v8; x-error-meta=yes";
        data.Add("error", "unary", Early);
        data.Add("error", "client", Early);
        data.Add("error", "server", Late);
        data.Add("error", "bidi", Late);
        return data;
    }

    private static Headers RequestHeaders(string testCase)
    {
        var headers = new Headers();
        switch (testCase)
        {
            case "single":
                headers["acme-tenant-id"] = "1234";
                break;
            case "multi":
                headers.Add("x-echo", "a");
                headers.Add("x-echo", "b,c");
                break;
            case "binary":
                headers.SetBinary("x-echo-bin", [0, 1, 2, 254, 255]);
                break;
            default:
                headers["acme-tenant-id"] = "1234";
                headers.SetBinary("x-echo-bin", [0, 1, 2, 254, 255]);
                headers["x-fail"] = "not_found";
                break;
        }

        return headers;
    }

    [Theory]
    [MemberData(nameof(Table))]
    public async Task EveryProtocol_SameHeadersAndTrailersAsConnect(string testCase, string kind, string expected)
    {
        var snapshots = new Dictionary<Protocol, string>();
        foreach (Protocol protocol in EveryProtocolCallTests.Protocols)
        {
            GreetServiceClient client = _server.Client(http2: true, new ConnectClientOptions { Protocol = protocol });
            snapshots[protocol] = await RunAsync(client, kind, RequestHeaders(testCase));
        }

        Assert.Equal(expected, snapshots[Protocol.Connect]);
        foreach ((Protocol protocol, string snapshot) in snapshots)
        {
            Assert.True(snapshot == snapshots[Protocol.Connect], $"{protocol} differs from Connect:\n  {protocol}: {snapshot}\n  Connect: {snapshots[Protocol.Connect]}");
        }
    }

    private static async Task<string> RunAsync(GreetServiceClient client, string kind, Headers headers)
    {
        using var meta = new ResponseMetadata();
        string error = "none";
        try
        {
            switch (kind)
            {
                case "unary":
                    await client.GreetAsync(new GreetRequest { Name = "Ada" }, headers).Within();
                    break;
                case "server":
                    await client.GreetManyAsync(new GreetRequest { Name = "Ada" }, headers).ToListWithin();
                    break;
                case "client":
                    await client.GreetEveryoneAsync(EveryProtocolCallTests.Names("Ada", "Grace"), headers).Within();
                    break;
                default:
                    var requests = Channel.CreateUnbounded<GreetRequest>();
                    await requests.Writer.WriteAsync(new GreetRequest { Name = "Ada" });
                    requests.Writer.Complete();
                    await client.ChatAsync(requests.Reader.ReadAllAsync(), headers).ToListWithin();
                    break;
            }
        }
        catch (ConnectException ex)
        {
            error = $"{ex.Code.ToWireName()} {ex.Message}; headers: {Describe(ex.Headers)}; trailers: {Describe(ex.Trailers)}";
        }

        return $"headers: {Describe(meta.Headers)} | trailers: {Describe(meta.Trailers)} | error: {error}";
    }

    /// <summary>The application's keys in a fixed order, values split on commas and joined again.</summary>
    private static string Describe(Headers headers)
    {
        var text = new StringBuilder();
        foreach (string key in s_keys)
        {
            string[] values = EveryProtocolCallTests.Split(headers.GetAll(key));
            if (values.Length > 0)
            {
                text.Append(text.Length > 0 ? "; " : "").Append(key).Append('=').Append(string.Join(',', values));
            }
        }

        return text.ToString();
    }
}
