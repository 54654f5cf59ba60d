using System.Collections.Concurrent;
using System.Net;
using Connectrpc.Greet.V1;
using ConnectRpc.Tests;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// The server answers deadline_exceeded at the deadline, as grpc-dotnet does, without waiting for
/// a handler that ignores its token: the handler's token still fires, and what it writes after
/// the answer is refused (never sent, nothing logged above debug), on every protocol.
/// </summary>
public sealed class DeadlineAnswerTests(DeadlineAnswerTests.Server fixture) : IClassFixture<DeadlineAnswerTests.Server>
{
    private const int StallMs = 2000;
    private readonly KestrelHost _server = fixture.Host;

    /// <summary>A greet server whose interceptor records the writes the server refused.</summary>
    public sealed class Server : KestrelFixture
    {
        public static ConcurrentQueue<(string Procedure, Exception Error)> RefusedWrites { get; } = new();

        protected override Task<KestrelHost> StartAsync() =>
            KestrelHost.StartAsync(options => options.Interceptors.Add(new RecordRefusedWrites()));
    }

    private sealed class RecordRefusedWrites : ServerInterceptor
    {
        public override async Task InterceptAsync(ServerCall call, ServerCallHandler next)
        {
            try
            {
                await next(new Recording(call));
            }
            catch (ConnectException) when (call.Context.RequestHeaders.Get("x-throw-at-end") is not null)
            {
                // The handler's late write was refused; it fails here with an unexpected error instead.
            }

            if (call.Context.RequestHeaders.Get("x-throw-at-end") is not null)
            {
                throw new InvalidOperationException("a bug at the end of the handler");
            }
        }

        private sealed class Recording(ServerCall inner) : DelegatingServerCall(inner)
        {
            public override async ValueTask WriteAsync<T>(T message, CancellationToken cancellationToken)
            {
                try
                {
                    await base.WriteAsync(message, cancellationToken);
                }
                catch (Exception ex)
                {
                    Server.RefusedWrites.Enqueue((Context.Procedure, ex));
                    throw;
                }
            }
        }
    }

    /// <summary>Every protocol, unary over one HTTP version and server streaming over the other (gRPC: HTTP/2 for both).</summary>
    public static TheoryData<Protocol, bool, bool> Cases() => new()
    {
        { Protocol.Connect, false, false },
        { Protocol.Connect, true, true },
        { Protocol.Grpc, true, false },
        { Protocol.Grpc, true, true },
        { Protocol.GrpcWeb, true, false },
        { Protocol.GrpcWeb, false, true },
        { Protocol.GrpcWebText, false, false },
        { Protocol.GrpcWebText, true, true },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task HandlerIgnoresItsToken_AnsweredAtTheDeadline_LateWriteRefused(Protocol protocol, bool http2, bool stream)
    {
        string procedure = stream ? GreetServiceConnect.Procedures.GreetMany : GreetServiceConnect.Procedures.Greet;
        var options = new ConnectClientOptions { Protocol = protocol, HttpVersion = http2 ? HttpVersion.Version20 : HttpVersion.Version11 };
        using var http = new HttpClient(new SocketsHttpHandler()) { Timeout = Bounded.Timeout };
        // The client's own deadline timer runs 30 s late: only the server's answer can end the call in time.
        GreetServiceClient client = LateTimers.Client(http, http2 ? _server.Http2Url : _server.Http1Url, options);
        var headers = new Headers { ["x-stall-ms"] = StallMs.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        // A first call opens the connection and warms up both sides, so the deadline falls in the stall.
        Assert.Equal("Hello, Linus!", (await client.GreetAsync(new GreetRequest { Name = "Linus" }).Within()).Greeting);
        TimeSpan timeout = TimeSpan.FromMilliseconds(500);
        var received = new List<string>();

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(async () =>
        {
            if (stream)
            {
                await foreach (GreetResponse response in client.GreetManyAsync(new GreetRequest { Name = "Ada" }, headers, timeout).WithCancellation(Bounded.Token))
                {
                    received.Add(response.Greeting);
                }
            }
            else
            {
                await client.GreetAsync(new GreetRequest { Name = "Ada" }, headers, timeout).Within();
            }
        });

        // Answered while the handler still waits: not after it.
        Assert.DoesNotContain(procedure, _server.Service.Stalled);
        Assert.Equal(Code.DeadlineExceeded, error.Code);
        Assert.Equal(stream ? ["Hello, Ada! (1)"] : [], received);
        await Wait.UntilAsync(() => _server.Service.Canceled.Contains(procedure));

        // The handler ends later; its next write is refused with deadline_exceeded, and nothing breaks.
        await Wait.UntilAsync(() => _server.Service.Stalled.Contains(procedure));
        await Wait.UntilAsync(() => Server.RefusedWrites.Any(w => w.Procedure == procedure && w.Error is ConnectException { Code: Code.DeadlineExceeded }));
        GreetResponse after = await client.GreetAsync(new GreetRequest { Name = "Grace" }).Within();
        Assert.Equal("Hello, Grace!", after.Greeting);
    }

    [Fact]
    public async Task HandlerThrowsAfterTheDeadlineAnswer_LoggedAsAfterTheAnswer_NotAsUnknown()
    {
        _server.ExpectLogs("the handler throws after its call was answered at the deadline", "after its call was answered with deadline_exceeded");
        var options = new ConnectClientOptions { Protocol = Protocol.Connect, HttpVersion = HttpVersion.Version11 };
        using var http = new HttpClient(new SocketsHttpHandler()) { Timeout = Bounded.Timeout };
        GreetServiceClient client = LateTimers.Client(http, _server.Http1Url, options);
        Assert.Equal("Hello, Linus!", (await client.GreetAsync(new GreetRequest { Name = "Linus" }).Within()).Greeting);
        var headers = new Headers
        {
            ["x-stall-ms"] = StallMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["x-throw-at-end"] = "1",
        };

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => client.GreetAsync(new GreetRequest { Name = "Ada" }, headers, TimeSpan.FromMilliseconds(500)).Within());

        Assert.Equal(Code.DeadlineExceeded, error.Code);
        // The client already has its answer: the bug is logged as the handler's, after the answer.
        await Wait.UntilAsync(() => _server.Logs.Any(log => log.Contains("after its call was answered with deadline_exceeded", StringComparison.Ordinal)));
        Assert.DoesNotContain(_server.Logs, log => log.Contains("the client gets 'unknown'", StringComparison.Ordinal));
    }
}
