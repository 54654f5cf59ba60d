using System.Net;
using System.Text;
using Connectrpc.Greet.V1;
using ConnectRpc.Tests;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>Our greet service behind a <c>WithConnectCors</c> policy for <see cref="CorsTests.Origin"/>.</summary>
public sealed class CorsGreetServer : KestrelFixture
{
    protected override Task<KestrelHost> StartAsync() => CorsServer.StartAsync([CorsTests.Origin]);
}

/// <summary>
/// A <c>WithConnectCors</c> policy on real Kestrel, asked as a browser asks: preflights for what
/// each protocol's client sends, and actual responses of each protocol, whose headers a browser
/// script may read only when they are exposed (or CORS-safelisted). The browser itself calls in
/// <see cref="BrowserInteropTests"/>.
/// </summary>
public sealed class CorsTests(CorsGreetServer server) : IClassFixture<CorsGreetServer>
{
    public const string Origin = "http://app.example";

    /// <summary>Response headers every script may read (the Fetch standard's CORS-safelisted response header names).</summary>
    private static readonly string[] s_safelisted = ["cache-control", "content-language", "content-length", "content-type", "expires", "last-modified", "pragma"];

    /// <summary>Headers of the transport and of CORS itself, which carry nothing a client library reads.</summary>
    private static readonly string[] s_transport = ["date", "server", "vary", "transfer-encoding", "access-control-allow-origin", "access-control-expose-headers"];

    private readonly KestrelHost _host = server.Host;

    [Fact]
    public void The_constants_hold_what_each_protocol_needs()
    {
        Assert.Equal(["POST", "GET"], ConnectCors.AllowedMethods);
        Assert.Subset(Lower(ConnectCors.AllowedRequestHeaders), Lower(["content-type", "connect-protocol-version", "connect-timeout-ms", "grpc-timeout", "x-grpc-web", "x-user-agent", "connect-accept-encoding", "grpc-accept-encoding"]));
        Assert.Subset(Lower(ConnectCors.ExposedResponseHeaders), Lower(["grpc-status", "grpc-message", "grpc-status-details-bin", "grpc-encoding", "connect-content-encoding", "content-encoding", "accept-encoding"]));
        Assert.Equal(["Greet-Version", "Trailer-Greet-Version"], ConnectCors.TrailerNames("Greet-Version"));
        Assert.Equal(7200, ConnectCors.PreflightMaxAge.TotalSeconds);
        Assert.Throws<NotSupportedException>(() => ((IList<string>)ConnectCors.AllowedMethods).Add("PUT"));
    }

    [Fact]
    public void The_policy_adds_to_what_the_application_allows()
    {
        CorsPolicy policy = new CorsPolicyBuilder()
            .WithOrigins(Origin)
            .WithHeaders("Authorization")
            .WithConnectCors(["Greet-Version"], ["Greet-Version"])
            .WithExposedHeaders("X-Mine")
            .Build();
        Assert.Equal(["POST", "GET"], policy.Methods);
        Assert.Equal(["Authorization", .. ConnectCors.AllowedRequestHeaders], policy.Headers);
        Assert.Equal([.. ConnectCors.ExposedResponseHeaders, "Greet-Version", "Trailer-Greet-Version", "X-Mine"], policy.ExposedHeaders);
        Assert.Equal(ConnectCors.PreflightMaxAge, policy.PreflightMaxAge);
        Assert.False(policy.AllowAnyOrigin);
    }

    /// <summary>What each protocol's client asks a preflight for (browsers ask in lower case, sorted).</summary>
    public static TheoryData<string, string, string> Preflights => new()
    {
        { "Connect unary", "POST", "connect-protocol-version,connect-timeout-ms,content-type" },
        { "Connect GET", "GET", "connect-protocol-version,connect-timeout-ms" },
        { "Connect stream", "POST", "connect-accept-encoding,connect-content-encoding,connect-protocol-version,connect-timeout-ms,content-type" },
        { "gRPC-Web", "POST", "content-type,grpc-accept-encoding,grpc-timeout,x-grpc-web,x-user-agent" },
        { "gRPC", "POST", "content-encoding,content-type,grpc-accept-encoding,grpc-encoding,grpc-timeout" },
        { "application headers", "POST", "acme-tenant-id,content-type,x-echo,x-grpc-web" },
    };

    [Theory]
    [MemberData(nameof(Preflights))]
    public async Task A_preflight_for_what_a_protocol_sends_is_allowed_and_cached_for_two_hours(string protocol, string method, string headers)
    {
        using HttpResponseMessage response = await PreflightAsync(Origin, method, headers);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(Origin, Single(response, "Access-Control-Allow-Origin"));
        Assert.Contains(method, List(response, "Access-Control-Allow-Methods"));
        Assert.True(headers.Split(',').All(List(response, "Access-Control-Allow-Headers").Select(h => h.ToLowerInvariant()).Contains),
            $"{protocol}: asked for {headers}, allowed {string.Join(",", List(response, "Access-Control-Allow-Headers"))}");
        Assert.Equal("7200", Single(response, "Access-Control-Max-Age"));
        Assert.Empty(_host.Service.Timeouts); // a preflight never reaches the service
    }

    [Fact]
    public async Task A_preflight_from_another_origin_is_not_allowed()
    {
        using HttpResponseMessage response = await PreflightAsync("http://elsewhere.example", "POST", "connect-protocol-version,content-type");

        Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));
        Assert.False(response.Headers.Contains("Access-Control-Allow-Headers"));
    }

    [Fact]
    public async Task A_preflight_for_a_header_nobody_allowed_is_not_allowed()
    {
        using HttpResponseMessage response = await PreflightAsync(Origin, "POST", "content-type,x-unknown");

        Assert.DoesNotContain("x-unknown", List(response, "Access-Control-Allow-Headers").Select(h => h.ToLowerInvariant()));
    }

    [Fact]
    public async Task A_preflight_for_a_method_no_protocol_uses_is_not_allowed()
    {
        using HttpResponseMessage response = await PreflightAsync(Origin, "PUT", "content-type");

        Assert.DoesNotContain("PUT", List(response, "Access-Control-Allow-Methods"));
    }

    /// <summary>A call of each protocol and outcome, and the response headers a browser client must read from it.</summary>
    public static TheoryData<string, string[]> Calls => new()
    {
        { "Connect unary", ["content-type", "accept-encoding", "greet-version", "acme-tenant-id", "trailer-greet-version", "trailer-x-echo-bin"] },
        { "Connect unary error", ["content-type", "greet-version", "x-error-meta", "trailer-greet-version"] },
        { "Connect GET", ["content-type", "greet-version", "trailer-greet-version"] },
        { "Connect server stream", ["content-type", "greet-version", "acme-tenant-id"] },
        { "gRPC-Web unary", ["content-type", "greet-version", "acme-tenant-id"] },
        { "gRPC-Web error", ["content-type", "grpc-accept-encoding", "greet-version", "x-error-meta"] }, // its status in the body's trailer frame
        { "gRPC-Web server stream", ["content-type", "greet-version"] },
        { "gRPC unary over HTTP/2", ["content-type", "greet-version", "acme-tenant-id"] },
    };

    [Theory]
    [MemberData(nameof(Calls))]
    public async Task Every_response_header_a_client_reads_is_exposed_to_the_allowed_origin(string call, string[] needed)
    {
        using HttpRequestMessage request = Request(call);
        request.Headers.Add("Origin", Origin);
        using var client = new HttpClient();
        using HttpResponseMessage response = await client.SendAsync(request, Bounded.Token).Within();
        await response.Content.ReadAsByteArrayAsync(Bounded.Token).Within();

        Assert.Equal(call == "Connect unary error" ? HttpStatusCode.NotFound : HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Origin, Single(response, "Access-Control-Allow-Origin"));
        HashSet<string> readable = [.. s_safelisted, .. Lower(List(response, "Access-Control-Expose-Headers"))];
        string[] sent = [.. response.Headers.Concat(response.Content.Headers).Select(h => h.Key.ToLowerInvariant()).Except(s_transport)];
        Assert.Subset(sent.ToHashSet(), needed.ToHashSet()); // the call did produce them
        Assert.True(sent.All(readable.Contains), $"{call}: sent {string.Join(", ", sent)}; a browser may read only {string.Join(", ", readable)}");
    }

    [Fact]
    public async Task A_named_policy_required_by_one_service_answers_that_services_preflights()
    {
        await using KestrelHost host = await KestrelHost.StartAsync(
            configure: null,
            tls: false,
            services => services.AddCors(cors => cors.AddPolicy("browsers", policy => policy.WithOrigins(Origin).WithConnectCors())),
            app =>
            {
                app.UseCors();
                app.MapConnectService<TestGreetService>(IGreetService.BindService).RequireCors("browsers");
            });

        using HttpResponseMessage response = await PreflightAsync(host, Origin, "POST", "connect-protocol-version,content-type");

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(Origin, Single(response, "Access-Control-Allow-Origin"));
        Assert.Equal("7200", Single(response, "Access-Control-Max-Age"));
    }

    [Fact]
    public async Task A_response_to_another_origin_carries_no_CORS_headers()
    {
        using HttpRequestMessage request = Request("Connect unary");
        request.Headers.Add("Origin", "http://elsewhere.example");
        using var client = new HttpClient();
        using HttpResponseMessage response = await client.SendAsync(request, Bounded.Token).Within();

        // The server still answers (CORS is the browser's to enforce); the browser hides the answer.
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));
        Assert.False(response.Headers.Contains("Access-Control-Expose-Headers"));
    }

    private Task<HttpResponseMessage> PreflightAsync(string origin, string method, string headers) => PreflightAsync(_host, origin, method, headers);

    private static async Task<HttpResponseMessage> PreflightAsync(KestrelHost host, string origin, string method, string headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Options, new Uri(host.Http1Url, "/connectrpc.greet.v1.GreetService/Greet"));
        request.Headers.Add("Origin", origin);
        request.Headers.Add("Access-Control-Request-Method", method);
        request.Headers.Add("Access-Control-Request-Headers", headers);
        using var client = new HttpClient();
        return await client.SendAsync(request, Bounded.Token).Within();
    }

    private HttpRequestMessage Request(string call)
    {
        const string Service = "/connectrpc.greet.v1.GreetService/";
        string http1 = _host.Http1Url.ToString().TrimEnd('/');
        byte[] json = Encoding.UTF8.GetBytes("""{"name":"Ada"}""");
        byte[] proto = new GreetRequest { Name = "Ada" }.ToByteArray();
        (string, string)[] app = [("acme-tenant-id", "1234"), ("x-echo-bin", "AAEC")];
        return call switch
        {
            "Connect unary" => WireBytes.Request(HttpMethod.Post, http1 + Service + "Greet", false, json, "application/json", [("connect-protocol-version", "1"), .. app]),
            "Connect unary error" => WireBytes.Request(HttpMethod.Post, http1 + Service + "Greet", false, json, "application/json", ("connect-protocol-version", "1"), ("x-fail", "not_found")),
            "Connect GET" => WireBytes.Request(HttpMethod.Get, http1 + Service + "Greet?connect=v1&encoding=json&message=" + Uri.EscapeDataString("""{"name":"Ada"}"""), false, null, null),
            "Connect server stream" => WireBytes.Request(HttpMethod.Post, http1 + Service + "GreetMany", false, WireBytes.Frame(json), "application/connect+json", [("connect-protocol-version", "1"), .. app]),
            "gRPC-Web unary" => WireBytes.Request(HttpMethod.Post, http1 + Service + "Greet", false, WireBytes.Frame(proto), "application/grpc-web+proto", [("x-grpc-web", "1"), .. app]),
            "gRPC-Web error" => WireBytes.Request(HttpMethod.Post, http1 + Service + "Greet", false, WireBytes.Frame(proto), "application/grpc-web+proto", ("x-grpc-web", "1"), ("x-fail", "not_found"), ("x-detail", "why")),
            "gRPC-Web server stream" => WireBytes.Request(HttpMethod.Post, http1 + Service + "GreetMany", false, WireBytes.Frame(proto), "application/grpc-web+proto", ("x-grpc-web", "1")),
            "gRPC unary over HTTP/2" => WireBytes.Request(HttpMethod.Post, _host.Http2Url.ToString().TrimEnd('/') + Service + "Greet", true, WireBytes.Frame(proto), "application/grpc", [("te", "trailers"), .. app]),
            _ => throw new ArgumentOutOfRangeException(nameof(call), call, null),
        };
    }

    private static string Single(HttpResponseMessage response, string name) =>
        Assert.Single(response.Headers.TryGetValues(name, out IEnumerable<string>? values) ? values : []);

    /// <summary>A comma-separated list header's items, over all its fields.</summary>
    private static string[] List(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out IEnumerable<string>? values)
            ? [.. values.SelectMany(v => v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))]
            : [];

    private static HashSet<string> Lower(IEnumerable<string> names) => [.. names.Select(n => n.ToLowerInvariant())];
}
