using Connectrpc.Greet.V1;
using Grpc.Core;

namespace ConnectRpc.Benchmarks;

/// <summary>The work every contender does, so only the RPC layer differs.</summary>
internal static class Work
{
    /// <summary>Messages per server-streaming call.</summary>
    public const int StreamMessages = 1000;

    /// <summary>A response of exactly 1 KiB on the wire (tag, two length bytes, 1021 characters).</summary>
    public static readonly GreetResponse Kibibyte = new() { Greeting = new string('x', 1021) };

    public static GreetResponse Greet(GreetRequest request) => new() { Greeting = "Hello, " + request.Name + "!" };
}

/// <summary>The greet service on this runtime.</summary>
internal sealed class ConnectGreetService : IGreetService
{
    public Task<GreetResponse> GreetAsync(GreetRequest request, RequestContext context) => Task.FromResult(Work.Greet(request));

    public async IAsyncEnumerable<GreetResponse> GreetManyAsync(GreetRequest request, RequestContext context)
    {
        for (int i = 0; i < Work.StreamMessages; i++)
        {
            yield return Work.Kibibyte;
        }

        await Task.CompletedTask;
    }

    public Task<GreetResponse> GreetEveryoneAsync(IAsyncEnumerable<GreetRequest> requests, RequestContext context) =>
        throw new ConnectException(Code.Unimplemented);

    public IAsyncEnumerable<GreetResponse> ChatAsync(IAsyncEnumerable<GreetRequest> requests, RequestContext context) =>
        throw new ConnectException(Code.Unimplemented);
}

/// <summary>The same service on grpc-dotnet.</summary>
internal sealed class GrpcDotnetGreetService : GreetService.GreetServiceBase
{
    public override Task<GreetResponse> Greet(GreetRequest request, ServerCallContext context) => Task.FromResult(Work.Greet(request));

    public override async Task GreetMany(GreetRequest request, IServerStreamWriter<GreetResponse> responseStream, ServerCallContext context)
    {
        for (int i = 0; i < Work.StreamMessages; i++)
        {
            await responseStream.WriteAsync(Work.Kibibyte);
        }
    }
}
