// The Greet demo's client: one call of each RPC kind against the demo server, the unary call
// again over gRPC and gRPC-Web, then one call without the bearer token. Exits 0 when every
// call behaved as expected, 1 otherwise.
//
//   dotnet run --project examples/greet/client -- [--url U] [--http2-url U] [--token T]
//
// --url        the server's HTTP/1.1 base URL (default http://127.0.0.1:8080; env GREET_URL)
// --http2-url  the server's cleartext HTTP/2 base URL, for bidi and gRPC (default http://127.0.0.1:8081; env GREET_HTTP2_URL)
// --token      the bearer token to send (default demo-token; env GREET_TOKEN)
using System.Net;
using System.Threading.Channels;
using ConnectRpc;
using Greet.Client;
using Greet.V1;
using Microsoft.Extensions.DependencyInjection;

if (!Settings.TryParse(args, out Settings? settings, out string? error))
{
    Console.Error.WriteLine(error);
    Console.Error.WriteLine(Settings.Usage);
    return 2;
}

if (settings is null)
{
    Console.WriteLine(Settings.Usage);
    return 0;
}

// Every call is bounded: the timeout goes to the server as the call's deadline, and the
// client gives up with deadline_exceeded when it passes.
TimeSpan timeout = TimeSpan.FromSeconds(10);

// The clients come from dependency injection, as in an ASP.NET Core app or a worker: each name
// is a named HttpClient of IHttpClientFactory with its own options. Over cleartext the client
// speaks HTTP/1.1 unless told otherwise; bidi is half-duplex there, and the ping-pong Chat
// below needs full duplex: HTTP/2 (prior knowledge).
var services = new ServiceCollection();
services.AddConnectClient<GreetServiceClient>("greet", (_, o) => Configure(o, settings.Url));
services.AddConnectClient<GreetServiceClient>("greet-http2", (_, o) =>
{
    Configure(o, settings.Http2Url);
    o.HttpVersion = HttpVersion.Version20;
});
foreach ((Protocol protocol, string url) in OtherProtocols())
{
    services.AddConnectClient<GreetServiceClient>("greet-" + protocol, (_, o) =>
    {
        Configure(o, url);
        o.Protocol = protocol;
    });
}

services.AddConnectClient<GreetServiceClient>("greet-anonymous", (_, o) =>
{
    o.BaseAddress = new Uri(settings.Url);
    o.Timeout = timeout;
});
await using ServiceProvider provider = services.BuildServiceProvider();
ConnectClientFactory clients = provider.GetRequiredService<ConnectClientFactory>();
GreetServiceClient client = clients.CreateClient<GreetServiceClient>("greet");
GreetServiceClient http2Client = clients.CreateClient<GreetServiceClient>("greet-http2");
GreetServiceClient anonymousClient = clients.CreateClient<GreetServiceClient>("greet-anonymous");

string[] names = ["Ada", "Grace", "Linus"];
int steps = 0;
int failed = 0;

await Step($"Greet (unary, {settings.Url})", () => GreetAsync(client));

await Step($"GreetMany (server streaming, {settings.Url})", async () =>
{
    int received = 0;
    await foreach (GreetManyResponse response in client.GreetManyAsync(
        new GreetManyRequest { Name = "Grace", Times = 3 },
        headers: new() { ["acme-tenant-id"] = "1234" }))
    {
        Console.WriteLine($"received: {response.Greeting}");
        received++;
    }

    Expect(received == 3, "3 responses");
});

await Step($"GreetEveryone (client streaming, {settings.Url})", async () =>
{
    GreetEveryoneResponse response = await client.GreetEveryoneAsync(
        Requests(names),
        headers: new() { ["acme-tenant-id"] = "1234" });
    Console.WriteLine($"greeting: {response.Greeting}");
    Expect(response.Greeting == "Hello, Ada, Grace, Linus!", "one greeting for everyone");

    static async IAsyncEnumerable<GreetEveryoneRequest> Requests(string[] names)
    {
        foreach (string name in names)
        {
            Console.WriteLine($"sent: {name}");
            yield return new GreetEveryoneRequest { Name = name };
            await Task.Yield();
        }
    }
});

await Step($"Chat (bidi streaming, {settings.Http2Url})", async () =>
{
    // Ping-pong over one HTTP/2 stream: each name is sent only after the previous answer came.
    var requests = Channel.CreateUnbounded<ChatRequest>();
    int sent = 0;
    int received = 0;
    await requests.Writer.WriteAsync(new ChatRequest { Name = names[sent++] });
    await foreach (ChatResponse response in http2Client.ChatAsync(
        requests.Reader.ReadAllAsync(),
        headers: new() { ["acme-tenant-id"] = "1234" }))
    {
        Console.WriteLine($"sent: {names[received]}, received: {response.Greeting}");
        received++;
        if (sent < names.Length)
        {
            await requests.Writer.WriteAsync(new ChatRequest { Name = names[sent++] });
        }
        else
        {
            requests.Writer.Complete();
        }
    }

    Expect(received == names.Length, $"{names.Length} responses");
});

// The same contract over the other protocols: only the client option changes. gRPC is always
// HTTP/2 (prior knowledge over cleartext); gRPC-Web works over HTTP/1.1, as browsers need.
foreach ((Protocol protocol, string url) in OtherProtocols())
{
    GreetServiceClient protocolClient = clients.CreateClient<GreetServiceClient>("greet-" + protocol);
    await Step($"Greet over {protocol} (unary, {url})", () => GreetAsync(protocolClient));
}

await Step($"Greet without a token (unary, {settings.Url})", async () =>
{
    try
    {
        GreetResponse response = await anonymousClient.GreetAsync(new GreetRequest { Name = "Mallory" });
        Console.WriteLine($"greeting: {response.Greeting}");
    }
    catch (ConnectException ex) when (ex.Code == Code.Unauthenticated)
    {
        Console.WriteLine($"error: {ex.Code.ToWireName()}: {ex.Message} (as expected)");
        return;
    }

    Expect(false, "unauthenticated");
});

Console.WriteLine();
Console.WriteLine(failed == 0 ? $"All {steps} calls behaved as expected." : $"{failed} of {steps} calls did not behave as expected.");
return failed == 0 ? 0 : 1;

// The unary call, with the response headers and trailers it brings.
// Every client of the demo: a deadline on each call and the bearer token.
void Configure(ConnectClientFactoryOptions options, string url)
{
    options.BaseAddress = new Uri(url);
    options.Timeout = timeout;
    options.Interceptors.Add(new BearerTokenInterceptor(settings.Token));
}

// gRPC is always HTTP/2 (prior knowledge over cleartext); gRPC-Web works over HTTP/1.1, as browsers need.
(Protocol Protocol, string Url)[] OtherProtocols() =>
    [(Protocol.Grpc, settings.Http2Url), (Protocol.GrpcWeb, settings.Url), (Protocol.GrpcWebText, settings.Url)];

static async Task GreetAsync(GreetServiceClient client)
{
    // Response headers and trailers arrive beside the message, in the current ResponseMetadata.
    using var meta = new ResponseMetadata();
    GreetResponse response = await client.GreetAsync(
        new GreetRequest { Name = "Ada" },
        headers: new() { ["acme-tenant-id"] = "1234" });
    Console.WriteLine($"greeting: {response.Greeting}");
    Console.WriteLine($"header  greet-version: {meta.Headers.Get("greet-version")}");
    Console.WriteLine($"trailer greet-version: {meta.Trailers.Get("greet-version")}");
    Expect(meta.Headers.Get("greet-version") == "v1", "greet-version: v1 in the response headers");
    Expect(meta.Trailers.Get("greet-version") == "v1", "greet-version: v1 in the response trailers");
}

// Runs one call, reporting an error instead of stopping the demo.
async Task Step(string title, Func<Task> call)
{
    steps++;
    Console.WriteLine();
    Console.WriteLine($"== {title}");
    try
    {
        await call();
    }
    catch (ConnectException ex)
    {
        Console.WriteLine($"FAILED: {ex.Code.ToWireName()}: {ex.Message}");
        failed++;
    }
    catch (UnexpectedResultException ex)
    {
        Console.WriteLine($"FAILED: expected {ex.Message}");
        failed++;
    }
}

static void Expect(bool condition, string expected)
{
    if (!condition)
    {
        throw new UnexpectedResultException(expected);
    }
}
