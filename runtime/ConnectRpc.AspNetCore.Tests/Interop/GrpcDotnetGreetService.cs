using System.Collections.Concurrent;
using System.Globalization;
using Connectrpc.Greet.V1;
using ConnectRpc.Internal;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.AspNetCore.Web;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// The greet service on grpc-dotnet, mirroring <see cref="TestGreetService"/> request header for
/// request header, so the shared assertions (<see cref="EveryProtocolCallTests.AssertMetadata"/>) hold
/// against it too. Response headers are always sent explicitly at the start of the call: grpc-dotnet
/// would otherwise send an error before any message as trailers-only (everything, headers included,
/// in one header block), which no client can split back into headers and trailers.
/// </summary>
public sealed class GrpcDotnetGreetService : GreetService.GreetServiceBase
{
    /// <summary>Methods (<c>/connectrpc.greet.v1.GreetService/Greet</c>) whose cancellation token fired.</summary>
    public ConcurrentQueue<string> Canceled { get; } = new();

    /// <summary>The raw HTTP request headers of the latest call of each method (values comma-joined).</summary>
    public ConcurrentDictionary<string, Dictionary<string, string>> RequestHeaders { get; } = new();

    /// <summary>
    /// grpc-dotnet (Grpc.AspNetCore.Server with its gRPC-Web middleware) as a peer server: HTTP/1.1
    /// (gRPC-Web only) and cleartext HTTP/2 (gRPC and gRPC-Web), serving this service.
    /// grpc-dotnet's built-in gzip provider decompresses requests; responses are compressed per call
    /// as the service asks.
    /// </summary>
    public static KestrelHostOptions Host => new()
    {
        Services = services =>
        {
            // A singleton, so the test sees what every call recorded (grpc-dotnet resolves the service from DI first).
            services.AddSingleton<GrpcDotnetGreetService>();
            services.AddGrpc();
        },
        App = app =>
        {
            app.UseGrpcWeb(new GrpcWebOptions { DefaultEnabled = true });
            app.MapGrpcService<GrpcDotnetGreetService>();
        },
    };

    /// <summary>Forgets what earlier calls recorded: a server shared by a test class starts each test afresh.</summary>
    public void Reset()
    {
        Canceled.Clear();
        RequestHeaders.Clear();
    }

    public override async Task<GreetResponse> Greet(GreetRequest request, ServerCallContext context)
    {
        await BeginAsync(context);
        await SleepAsync(context);
        Fail(context);
        return new GreetResponse { Greeting = $"Hello, {request.Name}!" };
    }

    public override async Task GreetMany(GreetRequest request, IServerStreamWriter<GreetResponse> responseStream, ServerCallContext context)
    {
        await BeginAsync(context);
        for (int i = 1; i <= 3; i++)
        {
            await responseStream.WriteAsync(new GreetResponse { Greeting = $"Hello, {request.Name}! ({i})" }, context.CancellationToken);
            await SleepAsync(context);
            Fail(context);
        }
    }

    public override async Task<GreetResponse> GreetEveryone(IAsyncStreamReader<GreetRequest> requestStream, ServerCallContext context)
    {
        await BeginAsync(context);
        var names = new List<string>();
        await foreach (GreetRequest request in requestStream.ReadAllAsync(context.CancellationToken))
        {
            names.Add(request.Name);
        }

        await SleepAsync(context);
        Fail(context);
        return new GreetResponse { Greeting = $"Hello, {string.Join(", ", names)}!" };
    }

    public override async Task Chat(IAsyncStreamReader<GreetRequest> requestStream, IServerStreamWriter<GreetResponse> responseStream, ServerCallContext context)
    {
        await BeginAsync(context);
        await foreach (GreetRequest request in requestStream.ReadAllAsync(context.CancellationToken))
        {
            await responseStream.WriteAsync(new GreetResponse { Greeting = $"Hello, {request.Name}!" }, context.CancellationToken);
            await SleepAsync(context);
            Fail(context);
        }
    }

    private async Task BeginAsync(ServerCallContext context)
    {
        string method = context.Method;
        context.CancellationToken.Register(() => Canceled.Enqueue(method));
        Microsoft.AspNetCore.Http.HttpRequest http = context.GetHttpContext().Request;
        RequestHeaders[method] = http.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);

        Metadata request = context.RequestHeaders;
        var headers = new Metadata();
        if (request.GetValue("acme-tenant-id") is { } tenant)
        {
            headers.Add("acme-tenant-id", tenant);
        }

        headers.Add("greet-version", "v1");
        context.ResponseTrailers.Add("greet-version", "v1");

        // grpc-dotnet joins repeated request fields with "," into one entry.
        foreach (Metadata.Entry entry in request.GetAll("x-echo"))
        {
            foreach (string part in entry.Value.Split(','))
            {
                headers.Add("x-echo", part.Trim());
            }
        }

        if (request.GetValueBytes("x-echo-bin") is { } bytes)
        {
            context.ResponseTrailers.Add("x-echo-bin", bytes);
        }

        // Compress the responses the way the request came (grpc-dotnet's per-call switch), so a
        // client's gzip is exercised both ways.
        if (http.Headers["grpc-encoding"].ToString() is { Length: > 0 } encoding && encoding != "identity")
        {
            headers.Add("grpc-internal-encoding-request", encoding);
        }

        await context.WriteResponseHeadersAsync(headers);
    }

    private static Task SleepAsync(ServerCallContext context) =>
        context.RequestHeaders.GetValue("x-sleep-ms") is { } ms
            ? Task.Delay(int.Parse(ms, CultureInfo.InvariantCulture), context.CancellationToken)
            : Task.CompletedTask;

    private static void Fail(ServerCallContext context)
    {
        Metadata request = context.RequestHeaders;
        if (request.GetValue("x-throw") is { } secret)
        {
            throw new InvalidOperationException("secret: " + secret);
        }

        if (request.GetValue("x-fail") is not { } name)
        {
            return;
        }

        if (!CodeMapping.TryParseWireName(name, out Code code))
        {
            code = Code.Internal;
        }

        string message = request.GetValue("x-odd-message") is null ? "failed as asked" : TestGreetService.OddMessage;
        var trailers = new Metadata { { "x-error-meta", "yes" } };
        if (request.GetValue("x-detail") is { } detail)
        {
            trailers.Add(RpcStatus.DetailsKey, RpcStatus.Encode((int)code, message, [Any.Pack(new StringValue { Value = detail })]));
        }

        throw new RpcException(new Status((StatusCode)(int)code, message), trailers);
    }
}

/// <summary>
/// <c>google.rpc.Status</c> (code = 1, message = 2, repeated Any details = 3), the payload of
/// <c>grpc-status-details-bin</c>, encoded and decoded by hand to avoid a dependency for one message.
/// </summary>
internal static class RpcStatus
{
    public const string DetailsKey = "grpc-status-details-bin";

    public static byte[] Encode(int code, string message, IEnumerable<Any> details)
    {
        using var buffer = new MemoryStream();
        using (var output = new CodedOutputStream(buffer, leaveOpen: true))
        {
            if (code != 0)
            {
                output.WriteTag(1, WireFormat.WireType.Varint);
                output.WriteInt32(code);
            }

            if (message.Length > 0)
            {
                output.WriteTag(2, WireFormat.WireType.LengthDelimited);
                output.WriteString(message);
            }

            foreach (Any detail in details)
            {
                output.WriteTag(3, WireFormat.WireType.LengthDelimited);
                output.WriteMessage(detail);
            }
        }

        return buffer.ToArray();
    }

    public static (int Code, string Message, List<Any> Details) Decode(byte[] bytes)
    {
        var input = new CodedInputStream(bytes);
        int code = 0;
        string message = string.Empty;
        var details = new List<Any>();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (tag)
            {
                case 8: // 1, varint
                    code = input.ReadInt32();
                    break;
                case 18: // 2, length-delimited
                    message = input.ReadString();
                    break;
                case 26: // 3, length-delimited
                    var any = new Any();
                    input.ReadMessage(any);
                    details.Add(any);
                    break;
                default:
                    input.SkipLastField();
                    break;
            }
        }

        return (code, message, details);
    }
}
