using System.Runtime.CompilerServices;
using Connectrpc.Greet.V1;
using Connectrpc.Jsonany.Payload.V1;
using Connectrpc.Jsonany.V1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// The AnyService of testdata/json_any: every method answers with the items it received, then
/// <see cref="ServerItems"/>. Request header <c>x-pack</c> adds one more item: <c>unknown</c> an
/// Any of a type no registry knows, <c>greet</c> a GreetRequest (known only through
/// <see cref="ConnectServerOptions.JsonTypes"/>); <c>x-pack: lone-surrogate</c> answers with a string
/// JSON cannot hold; <c>x-pack: fail</c> fails with three details (a Note, a Stamp, and an Any of a type no registry knows).
/// </summary>
public sealed class TestAnyService : IAnyService
{
    private int _calls;

    /// <summary>The calls whose handler ran.</summary>
    public int Calls => Volatile.Read(ref _calls);

    /// <summary>The item <c>x-pack: unknown</c> adds: a type URL that names no type anywhere.</summary>
    public static readonly Any UnknownItem = new() { TypeUrl = "type.googleapis.com/connectrpc.jsonany.v1.NotDeclared", Value = ByteString.CopyFromUtf8("\n\u0001x") };

    /// <summary>What the server adds to every answer: this file's, an import's, its import's and a well-known type.</summary>
    public static IReadOnlyList<Any> ServerItems { get; } =
    [
        Any.Pack(new Note { Text = "from the server" }),
        Any.Pack(new Receipt { Id = "r-1", Amount = long.MaxValue, Stamp = new Stamp { By = "server" } }),
        Any.Pack(new Stamp { By = "server" }),
        Any.Pack(Duration.FromTimeSpan(TimeSpan.FromMilliseconds(1500))),
    ];

    public Task<Bag> EchoAsync(Bag request, RequestContext context)
    {
        Interlocked.Increment(ref _calls);
        return Task.FromResult(Answer(request.Items, request, context));
    }

    public async IAsyncEnumerable<Bag> EchoManyAsync(Bag request, RequestContext context)
    {
        Interlocked.Increment(ref _calls);
        await Task.Yield();
        yield return Answer(request.Items, request, context);
        yield return Answer(request.Items, request, context);
    }

    public async Task<Bag> EchoAllAsync(IAsyncEnumerable<Bag> requests, RequestContext context)
    {
        Interlocked.Increment(ref _calls);
        var items = new List<Any>();
        Bag last = new();
        await foreach (Bag request in requests)
        {
            items.AddRange(request.Items);
            last = request;
        }

        return Answer(items, last, context);
    }

    public async IAsyncEnumerable<Bag> EchoChatAsync(IAsyncEnumerable<Bag> requests, RequestContext context)
    {
        Interlocked.Increment(ref _calls);
        await foreach (Bag request in requests)
        {
            yield return Answer(request.Items, request, context);
        }
    }

    private static Bag Answer(IEnumerable<Any> items, Bag request, RequestContext context)
    {
        var answer = new Bag { Scalars = request.Scalars, Receipt = request.Receipt };
        answer.Items.AddRange(items);
        answer.Items.AddRange(ServerItems);
        switch (context.RequestHeaders.Get("x-pack"))
        {
            case "unknown":
                answer.Items.Add(UnknownItem);
                break;
            case "greet":
                answer.Items.Add(Any.Pack(new GreetRequest { Name = "known through JsonTypes" }));
                break;
            case "fail":
                var error = new ConnectException(Code.FailedPrecondition, "failed with details");
                error.AddDetail(new Note { Text = "why" });
                error.AddDetail(new Stamp { By = "two imports away" });
                error.Details.Add(UnknownItem);
                throw error;
            case "lone-surrogate":
                answer.Scalars = new Scalars { StringValue = "half a pair: \ud800" };
                break;
        }

        return answer;
    }
}
