using System.Collections.Concurrent;
using Connectrpc.Greet.V1;
using ConnectRpc.Internal;
using Google.Protobuf;

namespace ConnectRpc.Tests;

/// <summary>
/// The generated BindService, through ServiceBinder, to the handler, with the cardinality
/// rules every protocol shares (docs/wire/framing.md#cardinality).
/// </summary>
public sealed class ServiceBinderTests
{
    [Fact]
    public void BindService_Generated_BindsEveryMethodWithItsKind()
    {
        var binder = new ServiceBinder<GreetHandler>();

        IGreetService.BindService(binder);

        Assert.Equal(
            [
                ("/connectrpc.greet.v1.GreetService/Greet", MethodKind.Unary, IdempotencyLevel.NoSideEffects),
                ("/connectrpc.greet.v1.GreetService/GreetMany", MethodKind.ServerStreaming, IdempotencyLevel.Idempotent),
                ("/connectrpc.greet.v1.GreetService/GreetEveryone", MethodKind.ClientStreaming, IdempotencyLevel.Unknown),
                ("/connectrpc.greet.v1.GreetService/Chat", MethodKind.BidiStreaming, IdempotencyLevel.Unknown),
            ],
            binder.Methods.Select(m => (m.Method.Procedure, m.Method.Kind, m.Method.Idempotency)));
        Assert.Equal(GreetServiceConnect.Procedures.Greet, GreetServiceConnect.GreetMethod.Procedure);
        Assert.Equal("connectrpc.greet.v1.GreetService", GreetServiceConnect.Descriptor.FullName);
        Assert.Same(GreetServiceConnect.Descriptor, binder.Descriptor); // what server reflection serves
    }

    [Fact]
    public void Add_SameProcedureTwice_Throws()
    {
        var binder = new ServiceBinder<GreetHandler>();
        IGreetService.BindService(binder);

        InvalidOperationException error = Assert.Throws<InvalidOperationException>(() => IGreetService.BindService(binder));

        Assert.Contains("/connectrpc.greet.v1.GreetService/Greet is already bound", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Add_KindMismatch_Throws()
    {
        var binder = new ServiceBinder<GreetHandler>();

        Assert.Throws<ArgumentException>(() =>
            binder.AddUnary(GreetServiceConnect.ChatMethod, static (s, r, c) => s.GreetAsync(r, c)));
    }

    [Fact]
    public async Task Unary_OneRequest_HandlerAnswersWithMetadata()
    {
        var call = new ScriptedServerCall(
            "/connectrpc.greet.v1.GreetService/Greet", new Headers { ["acme-tenant-id"] = "1234" }, new GreetRequest { Name = "Ada" });

        await Invoke("Greet", call).Within();

        GreetResponse response = Assert.IsType<GreetResponse>(Assert.Single(call.Written));
        Assert.Equal("Hello, Ada (tenant 1234)", response.Greeting);
        Assert.Equal("v1", call.Context.ResponseHeaders["greet-version"]);
        Assert.Equal("v1", call.Context.ResponseTrailers["greet-version"]);
    }

    [Theory]
    [InlineData("Greet", 0, "no request message")]
    [InlineData("Greet", 2, "more than one request message")]
    [InlineData("GreetMany", 0, "no request message")]
    [InlineData("GreetMany", 2, "more than one request message")]
    public async Task SingleRequestMethods_WrongRequestCount_AreUnimplemented(string method, int count, string message)
    {
        var call = new ScriptedServerCall("/x/y", Enumerable.Range(0, count).Select(_ => new GreetRequest()).ToArray());

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => Invoke(method, call).Within());

        Assert.Equal(Code.Unimplemented, error.Code);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.Empty(call.Written);
    }

    [Fact]
    public async Task ClientStreaming_EveryRequest_ReachesTheHandler()
    {
        var call = new ScriptedServerCall("/x/y", new GreetRequest { Name = "a" }, new GreetRequest { Name = "b" }, new GreetRequest { Name = "c" });

        await Invoke("GreetEveryone", call).Within();

        Assert.Equal("Hello, a, b, c", Assert.IsType<GreetResponse>(Assert.Single(call.Written)).Greeting);
    }

    [Fact]
    public async Task ServerStreaming_Responses_AreWrittenOneByOne()
    {
        var call = new ScriptedServerCall("/x/y", new GreetRequest { Name = "z" });

        await Invoke("GreetMany", call).Within();

        Assert.Equal(["Hello, z #0", "Hello, z #1", "Hello, z #2"], call.Written.Cast<GreetResponse>().Select(r => r.Greeting));
    }

    [Fact]
    public async Task Bidi_ResponsesInterleaveWithRequests()
    {
        var call = new ScriptedServerCall("/x/y", new GreetRequest { Name = "1" }, new GreetRequest { Name = "2" });

        await Invoke("Chat", call).Within();

        // Each response is written before the next request is read: no buffering of the input.
        Assert.Equal(["read", "write Hello, 1", "read", "write Hello, 2", "read"], call.Log);
    }

    [Fact]
    public async Task Handler_ReturnsNull_IsAnError()
    {
        var binder = new ServiceBinder<GreetHandler>();
        binder.AddUnary(GreetServiceConnect.GreetMethod, static (_, _, _) => Task.FromResult<GreetResponse>(null!));
        var call = new ScriptedServerCall("/x/y", new GreetRequest());

        await Assert.ThrowsAsync<InvalidOperationException>(() => binder.Methods[0].InvokeAsync(new GreetHandler(), call).Within());
    }

    private static Task Invoke(string name, ScriptedServerCall call)
    {
        var binder = new ServiceBinder<GreetHandler>();
        IGreetService.BindService(binder);
        return binder.Methods.Single(m => m.Method.Name == name).InvokeAsync(new GreetHandler(), call);
    }

    /// <summary>The seed's handler, in the four shapes.</summary>
    private sealed class GreetHandler : IGreetService
    {
        public Task<GreetResponse> GreetAsync(GreetRequest request, RequestContext context)
        {
            context.ResponseHeaders["greet-version"] = "v1";
            context.ResponseTrailers["greet-version"] = "v1";
            return Task.FromResult(new GreetResponse { Greeting = $"Hello, {request.Name} (tenant {context.RequestHeaders.Get("acme-tenant-id")})" });
        }

        public async IAsyncEnumerable<GreetResponse> GreetManyAsync(GreetRequest request, RequestContext context)
        {
            for (int i = 0; i < 3; i++)
            {
                await Task.Yield();
                yield return new GreetResponse { Greeting = $"Hello, {request.Name} #{i}" };
            }
        }

        public async Task<GreetResponse> GreetEveryoneAsync(IAsyncEnumerable<GreetRequest> requests, RequestContext context)
        {
            var names = new List<string>();
            await foreach (GreetRequest request in requests.WithCancellation(context.CancellationToken))
            {
                names.Add(request.Name);
            }

            return new GreetResponse { Greeting = "Hello, " + string.Join(", ", names) };
        }

        public async IAsyncEnumerable<GreetResponse> ChatAsync(IAsyncEnumerable<GreetRequest> requests, RequestContext context)
        {
            await foreach (GreetRequest request in requests)
            {
                yield return new GreetResponse { Greeting = "Hello, " + request.Name };
            }
        }
    }

    /// <summary>A test-only server call: scripted requests in, written responses recorded.</summary>
    private sealed class ScriptedServerCall : ServerCall
    {
        private readonly Queue<IMessage> _requests;

        public ScriptedServerCall(string procedure, params IMessage[] requests)
            : this(procedure, new Headers(), requests)
        {
        }

        public ScriptedServerCall(string procedure, Headers headers, params IMessage[] requests)
            : base(new RequestContext(procedure, headers, cancellationToken: Bounded.Token))
        {
            _requests = new Queue<IMessage>(requests);
        }

        public override Method Method => throw new NotSupportedException();

        public ConcurrentQueue<IMessage> Written { get; } = new();

        public List<string> Log { get; } = [];

        public override ValueTask<T?> ReadAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
            where T : class
        {
            Log.Add("read");
            return ValueTask.FromResult(_requests.TryDequeue(out IMessage? next) ? (T)next : null);
        }

        public override ValueTask WriteAsync<T>(T message, CancellationToken cancellationToken)
            where T : class
        {
            Log.Add("write " + ((GreetResponse)(object)message).Greeting);
            Written.Enqueue(message);
            return ValueTask.CompletedTask;
        }
    }
}
