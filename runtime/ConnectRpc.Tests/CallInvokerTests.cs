using System.Threading.Channels;
using Connectrpc.Greet.V1;

namespace ConnectRpc.Tests;

/// <summary>
/// What every protocol shares on the client: the generated client's entry points,
/// ResponseMetadata binding, deadlines, cancellation, cardinality and error mapping.
/// </summary>
public sealed class CallInvokerTests
{
    private static readonly Uri s_base = new("http://127.0.0.1:1");

    private static GreetServiceClient Client(EchoTransport transport, ConnectClientOptions? options = null) =>
        new(new CallInvoker(transport, s_base, options));

    [Fact]
    public async Task Unary_Success_ScopeReceivesHeadersAndTrailers()
    {
        var transport = new EchoTransport
        {
            ResponseHeaders = { ["greet-version"] = "v1" },
            ResponseTrailers = { ["greet-version"] = "v1-trailer" },
        };

        using var meta = new ResponseMetadata();
        GreetResponse res = await Client(transport).GreetAsync(
            new GreetRequest { Name = "Ada" }, headers: new() { ["acme-tenant-id"] = "1234" }).Within();

        Assert.Equal("Hello, Ada", res.Greeting);
        Assert.Equal("v1", meta.Headers.Get("greet-version"));
        Assert.Equal("v1-trailer", meta.Trailers.Get("greet-version"));
        Assert.True(meta.Headers.IsReadOnly);
        Assert.True(meta.Trailers.IsReadOnly);
        Assert.True(transport.Infos.TryPeek(out var info));
        Assert.Equal("1234", info.RequestHeaders["acme-tenant-id"]);
        Assert.Null(info.Deadline);
    }

    [Fact]
    public async Task Unary_Error_ScopeAndExceptionCarryTheSameMetadata()
    {
        var transport = new EchoTransport
        {
            ResponseHeaders = { ["h"] = "1" },
            ResponseTrailers = { ["t"] = "2" },
            FailAtEnd = () => new ConnectException(Code.PermissionDenied, "no"),
        };

        using var meta = new ResponseMetadata();
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(transport).GreetAsync(new GreetRequest()).Within());

        Assert.Equal(Code.PermissionDenied, error.Code);
        Assert.Equal("1", error.Headers["h"]);
        Assert.Equal("2", error.Trailers["t"]);
        Assert.Null(error.Headers["t"]);
        Assert.Equal(["1"], error.Metadata.GetAll("h"));
        Assert.Equal(["2"], error.Metadata.GetAll("t"));
        Assert.Equal("1", meta.Headers["h"]);
        Assert.Equal("2", meta.Trailers["t"]);
    }

    [Fact]
    public async Task Unary_WithoutScope_Succeeds()
    {
        Assert.Null(ResponseMetadata.Current);

        GreetResponse res = await Client(new EchoTransport()).GreetAsync(new GreetRequest { Name = "x" }).Within();

        Assert.Equal("Hello, x", res.Greeting);
    }

    [Theory]
    [InlineData(0, "no response message")]
    [InlineData(2, "more than one response message")]
    public async Task Unary_WrongResponseCount_IsUnimplemented(int responses, string message)
    {
        var transport = new EchoTransport { ResponsesPerRequest = responses };

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(transport).GreetAsync(new GreetRequest()).Within());

        Assert.Equal(Code.Unimplemented, error.Code);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ServerStream_CreatedInScope_ReportsToThatScopeWhenEnumeratedLater()
    {
        var transport = new EchoTransport { ResponseHeaders = { ["h"] = "stream" }, ResponseTrailers = { ["t"] = "end" }, ResponsesPerRequest = 3 };
        GreetServiceClient client = Client(transport);
        IAsyncEnumerable<GreetResponse> stream;
        ResponseMetadata meta;
        using (meta = new ResponseMetadata())
        {
            stream = client.GreetManyAsync(new GreetRequest { Name = "Bo" });
        }

        Assert.Null(ResponseMetadata.Current);
        using var later = new ResponseMetadata(); // current while enumerating, but not bound
        List<GreetResponse> responses = await stream.ToListWithin();

        Assert.Equal(3, responses.Count);
        Assert.Equal("stream", meta.Headers["h"]);
        Assert.Equal("end", meta.Trailers["t"]);
        Assert.Equal(0, later.Headers.Count);
        Assert.Equal(0, later.Trailers.Count);
    }

    [Fact]
    public async Task ServerStream_HeadersVisibleWithFirstMessage_TrailersOnlyAtTheEnd()
    {
        var transport = new EchoTransport { ResponseHeaders = { ["h"] = "1" }, ResponseTrailers = { ["t"] = "2" }, ResponsesPerRequest = 2 };
        using var meta = new ResponseMetadata();
        IAsyncEnumerable<GreetResponse> stream = Client(transport).GreetManyAsync(new GreetRequest());

        await using IAsyncEnumerator<GreetResponse> e = stream.GetAsyncEnumerator(Bounded.Token);
        Assert.Equal(0, meta.Headers.Count); // nothing before the call starts

        Assert.True(await e.MoveNextAsync().Within());
        Assert.Equal("1", meta.Headers["h"]);
        Assert.Equal(0, meta.Trailers.Count);

        Assert.True(await e.MoveNextAsync().Within());
        Assert.Equal(0, meta.Trailers.Count);

        Assert.False(await e.MoveNextAsync().Within());
        Assert.Equal("2", meta.Trailers["t"]);
    }

    [Fact]
    public async Task Bidi_PingPong_SendsEachRequestOnlyAfterThePreviousResponse()
    {
        var transport = new EchoTransport { ResponseHeaders = { ["h"] = "bidi" }, ResponseTrailers = { ["t"] = "done" } };
        using var meta = new ResponseMetadata();
        var turn = Channel.CreateUnbounded<int>();
        var log = new List<string>();

        async IAsyncEnumerable<GreetRequest> Requests()
        {
            for (int i = 0; i < 5; i++)
            {
                log.Add($"send {i}");
                yield return new GreetRequest { Name = i.ToString(System.Globalization.CultureInfo.InvariantCulture) };
                await turn.Reader.ReadAsync(Bounded.Token).Within(); // wait for response i
            }
        }

        int received = 0;
        await foreach (GreetResponse response in Client(transport).ChatAsync(Requests()).WithCancellation(Bounded.Token))
        {
            log.Add($"recv {received}");
            Assert.Equal($"Hello, {received}", response.Greeting);
            Assert.Equal("bidi", meta.Headers["h"]); // headers visible from the first response on
            Assert.Equal(0, meta.Trailers.Count);
            received++;
            await turn.Writer.WriteAsync(received, Bounded.Token);
        }

        Assert.Equal(5, received);
        Assert.Equal(Enumerable.Range(0, 5).SelectMany(i => new[] { $"send {i}", $"recv {i}" }), log);
        Assert.Equal("done", meta.Trailers["t"]);
    }

    [Fact]
    public async Task Bidi_ErrorAtEnd_FillsScopeAndException()
    {
        var transport = new EchoTransport
        {
            ResponseHeaders = { ["h"] = "1" },
            ResponseTrailers = { ["t"] = "2" },
            FailAtEnd = () => new ConnectException(Code.DataLoss, "lost"),
        };
        using var meta = new ResponseMetadata();

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(transport).ChatAsync(Requests(2)).ToListWithin());

        Assert.Equal(Code.DataLoss, error.Code);
        Assert.Equal("1", error.Headers["h"]);
        Assert.Equal("2", error.Trailers["t"]);
        Assert.Equal("1", meta.Headers["h"]);
        Assert.Equal("2", meta.Trailers["t"]);
    }

    [Fact]
    public async Task ClientStream_OneResponse_IsReturned()
    {
        GreetResponse res = await Client(new EchoTransport()).GreetEveryoneAsync(Requests(1)).Within();

        Assert.Equal("Hello, 0", res.Greeting);
    }

    [Fact]
    public async Task ClientStream_NoResponse_IsUnimplementedAfterEveryRequestWasSent()
    {
        var transport = new EchoTransport { ResponsesPerRequest = 0 };

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => Client(transport).GreetEveryoneAsync(Requests(3)).Within());

        Assert.Equal(Code.Unimplemented, error.Code);
        Assert.True(transport.Calls.TryPeek(out var call));
        Assert.Equal(3, call.Received.Count);
    }

    [Fact]
    public async Task Stream_AbandonedEarly_CancelsTheCallAndLeavesEmptyTrailers()
    {
        var transport = new EchoTransport { ResponseHeaders = { ["h"] = "1" }, ResponseTrailers = { ["t"] = "never seen" }, ResponsesPerRequest = 1 };
        using var meta = new ResponseMetadata();
        var requests = Channel.CreateUnbounded<GreetRequest>();
        await requests.Writer.WriteAsync(new GreetRequest(), Bounded.Token);

        await foreach (GreetResponse response in Client(transport).ChatAsync(requests.Reader.ReadAllAsync(Bounded.Token)).WithCancellation(Bounded.Token))
        {
            break;
        }

        Assert.True(transport.Calls.TryPeek(out var call));
        Assert.True(call.Disposed);
        Assert.Equal("1", meta.Headers["h"]);
        Assert.Equal(0, meta.Trailers.Count);
    }

    [Fact]
    public async Task Timeout_Expires_DeadlineExceeded()
    {
        var transport = new EchoTransport { Hang = true };
        using var meta = new ResponseMetadata();

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(transport).GreetAsync(new GreetRequest(), timeout: TimeSpan.FromMilliseconds(100)).Within());

        Assert.Equal(Code.DeadlineExceeded, error.Code);
        Assert.True(transport.Calls.TryPeek(out var call));
        Assert.True(call.SawCancellation);
        Assert.True(transport.Infos.TryPeek(out var info));
        Assert.Equal(TimeSpan.FromMilliseconds(100), info.Timeout);
        Assert.NotNull(info.Deadline);
    }

    [Fact]
    public async Task Timeout_FromOptions_AppliesWhenTheCallPassesNone()
    {
        var transport = new EchoTransport { Hang = true };
        var options = new ConnectClientOptions { Timeout = TimeSpan.FromMilliseconds(50) };

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(transport, options).GreetManyAsync(new GreetRequest()).ToListWithin());

        Assert.Equal(Code.DeadlineExceeded, error.Code);
    }

    [Fact]
    public async Task Timeout_ZeroOrNegative_FailsWithoutStartingTheCall()
    {
        var transport = new EchoTransport();

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(transport).GreetAsync(new GreetRequest(), timeout: TimeSpan.Zero).Within());
        ConnectException negative = await Assert.ThrowsAsync<ConnectException>(
            () => Client(transport).GreetAsync(new GreetRequest(), timeout: TimeSpan.FromSeconds(-1)).Within());

        Assert.Equal(Code.DeadlineExceeded, error.Code);
        Assert.Equal(Code.DeadlineExceeded, negative.Code);
        Assert.Empty(transport.Calls);
    }

    [Fact]
    public async Task Timeout_LongerThanATimerTakes_IsSentButNotArmedLocally()
    {
        var transport = new EchoTransport();

        GreetResponse res = await Client(transport).GreetAsync(new GreetRequest { Name = "x" }, timeout: TimeSpan.FromDays(60)).Within();

        Assert.Equal("Hello, x", res.Greeting);
        Assert.True(transport.Infos.TryPeek(out var info));
        Assert.Equal(TimeSpan.FromDays(60), info.Timeout);
    }

    [Fact]
    public async Task Cancellation_ByCaller_Canceled()
    {
        var transport = new EchoTransport { Hang = true };
        using var cts = new CancellationTokenSource();

        // Canceled once the call is under way (not on a timer, which a busy machine may beat to the start).
        Task<GreetResponse> pending = Client(transport).GreetAsync(new GreetRequest(), timeout: TimeSpan.FromMinutes(1), cancellationToken: cts.Token);
        for (int waited = 0; transport.Calls.IsEmpty && waited < 2_000; waited++)
        {
            await Task.Delay(5, Bounded.Token);
        }

        await cts.CancelAsync();
        ConnectException error = await Assert.ThrowsAsync<ConnectException>(() => pending.Within());

        Assert.Equal(Code.Canceled, error.Code);
        Assert.True(transport.Calls.TryPeek(out var call));
        Assert.True(call.SawCancellation);
    }

    [Fact]
    public async Task Cancellation_BeforeTheCall_CanceledWithoutStarting()
    {
        var transport = new EchoTransport();

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(transport).GreetAsync(new GreetRequest(), cancellationToken: new CancellationToken(canceled: true)).Within());

        Assert.Equal(Code.Canceled, error.Code);
        Assert.Empty(transport.Calls);
    }

    [Fact]
    public async Task Cancellation_OfTheEnumerator_CancelsTheStream()
    {
        var transport = new EchoTransport { Hang = true };
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(async () =>
        {
            await foreach (GreetResponse _ in Client(transport).GreetManyAsync(new GreetRequest()).WithCancellation(cts.Token))
            {
            }
        });

        Assert.Equal(Code.Canceled, error.Code);
    }

    [Fact]
    public async Task RequestStream_Throws_CallIsCanceledWithTheCause()
    {
        var transport = new EchoTransport { Hang = true };

        async IAsyncEnumerable<GreetRequest> Failing()
        {
            yield return new GreetRequest();
            await Task.Yield();
            throw new InvalidDataException("source broke");
        }

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(transport).GreetEveryoneAsync(Failing()).Within());

        Assert.Equal(Code.Canceled, error.Code);
        Assert.IsType<InvalidDataException>(error.InnerException);
        Assert.Contains("source broke", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unary_SendFails_TheSendErrorIsTheCallsErrorWithoutWaitingForAResponse()
    {
        var transport = new EchoTransport { FailOnSend = () => new ConnectException(Code.ResourceExhausted, "message too large") };

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(transport).GreetAsync(new GreetRequest()).Within());

        Assert.Equal(Code.ResourceExhausted, error.Code);
        Assert.Equal("message too large", error.Message);
    }

    [Fact]
    public async Task ServerStream_SendFails_TheSendErrorIsTheCallsError()
    {
        var transport = new EchoTransport { FailOnSend = () => new HttpRequestException("connection reset") };

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(transport).GreetManyAsync(new GreetRequest()).ToListWithin());

        Assert.Equal(Code.Unavailable, error.Code);
    }

    [Fact]
    public async Task Transport_HttpFailure_IsUnavailable()
    {
        var transport = new EchoTransport { FailToStart = new HttpRequestException("connection refused") };

        ConnectException error = await Assert.ThrowsAsync<ConnectException>(
            () => Client(transport).GreetAsync(new GreetRequest()).Within());

        Assert.Equal(Code.Unavailable, error.Code);
    }

    [Fact]
    public async Task SeveralCalls_OneScope_LastToCompleteWins()
    {
        var slow = new EchoTransport { ResponseDelay = TimeSpan.FromMilliseconds(300), ResponseTrailers = { ["who"] = "slow" } };
        var fast = new EchoTransport { ResponseTrailers = { ["who"] = "fast" } };
        using var meta = new ResponseMetadata();

        Task<GreetResponse> first = Client(slow).GreetAsync(new GreetRequest());
        await Client(fast).GreetAsync(new GreetRequest()).Within();
        Assert.Equal("fast", meta.Trailers["who"]);
        await first.Within();

        Assert.Equal("slow", meta.Trailers["who"]);
    }

    [Fact]
    public async Task ManyConcurrentCalls_OneScope_AlwaysSeeOneCallsWholeSnapshot()
    {
        using var meta = new ResponseMetadata();
        Task[] calls = Enumerable.Range(0, 50).Select(i =>
        {
            var transport = new EchoTransport { ResponseHeaders = { ["n"] = $"{i}" }, ResponseTrailers = { ["n"] = $"{i}" } };
            return Client(transport).GreetAsync(new GreetRequest());
        }).ToArray();

        await Task.WhenAll(calls).Within();

        Assert.Equal(meta.Headers["n"], meta.Trailers["n"]);
    }

    [Fact]
    public async Task Scope_Nested_InnerReceives_DisposeRestoresOuter()
    {
        var transport = new EchoTransport { ResponseHeaders = { ["h"] = "x" } };
        using var outer = new ResponseMetadata();
        using (var inner = new ResponseMetadata())
        {
            Assert.Same(inner, ResponseMetadata.Current);
            await Client(transport).GreetAsync(new GreetRequest()).Within();
            Assert.Equal("x", inner.Headers["h"]);
        }

        Assert.Same(outer, ResponseMetadata.Current);
        Assert.Equal(0, outer.Headers.Count);
    }

    [Fact]
    public void ResponseStream_EnumeratedTwice_Throws()
    {
        IAsyncEnumerable<GreetResponse> stream = Client(new EchoTransport()).GreetManyAsync(new GreetRequest());
        _ = stream.GetAsyncEnumerator(Bounded.Token);

        Assert.Throws<InvalidOperationException>(() => stream.GetAsyncEnumerator(Bounded.Token));
    }

    [Fact]
    public async Task Invoker_KindMismatchOrNullArguments_ThrowBeforeAnyCall()
    {
        var invoker = new CallInvoker(new EchoTransport(), s_base, null);

        await Assert.ThrowsAsync<ArgumentException>(() => invoker.UnaryAsync(GreetServiceConnect.GreetManyMethod, new GreetRequest()));
        await Assert.ThrowsAsync<ArgumentNullException>(() => invoker.UnaryAsync(GreetServiceConnect.GreetMethod, null!));
        Assert.Throws<ArgumentNullException>(() => invoker.BidiStreamingAsync(GreetServiceConnect.ChatMethod, null!));
    }

    [Theory]
    [InlineData("https://api.acme.com", "https://api.acme.com/")]
    [InlineData("https://api.acme.com/", "https://api.acme.com/")]
    [InlineData("http://127.0.0.1:8080/prefix/", "http://127.0.0.1:8080/prefix")]
    public void Invoker_BaseUrl_IsNormalized(string baseUrl, string expected)
    {
        Assert.Equal(expected, new CallInvoker(baseUrl).BaseAddress.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("api.acme.com")]
    [InlineData("/relative")]
    [InlineData("ftp://api.acme.com")]
    [InlineData("https://api.acme.com/?q=1")]
    [InlineData("https://api.acme.com/#frag")]
    public void Invoker_BadBaseUrl_ThrowsArgumentException(string baseUrl)
    {
        ArgumentException error = Assert.Throws<ArgumentException>(() => new GreetServiceClient(baseUrl));

        Assert.Equal("baseUrl", error.ParamName);
    }

    [Theory]
    [InlineData("snappy", false)]
    [InlineData("gzip, br", false)]
    [InlineData("zstd", true)]
    public void Invoker_SendCompressionNotInCompressors_ThrowsArgumentException(string name, bool removeIt)
    {
        var options = new ConnectClientOptions { SendCompression = name };
        if (removeIt)
        {
            options.Compressors.Remove(Compressor.Zstd);
        }

        ArgumentException error = Assert.Throws<ArgumentException>(() => new GreetServiceClient("http://127.0.0.1:1", options));

        Assert.Equal("options", error.ParamName);
        Assert.Contains("SendCompression", error.Message, StringComparison.Ordinal);
        Assert.Contains("Compressors (gzip, br", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("gzip")]
    [InlineData("ZSTD")]
    [InlineData("Deflate")]
    [InlineData("identity")]
    public void Invoker_SendCompressionInCompressors_AnyCase_IsAccepted(string name)
    {
        var options = new ConnectClientOptions { SendCompression = name };

        _ = new GreetServiceClient("http://127.0.0.1:1", options);
    }

    public static TheoryData<string, Compressor?> BadCompressorLists => new()
    {
        { "contains null", null },
        { "names 'GZip' twice", new NamedCompressor("GZip") },
        { "named 'identity'", new NamedCompressor("identity") },
        { "named 'a b'", new NamedCompressor("a b") },
        { "named ''", new NamedCompressor("") },
    };

    [Theory]
    [MemberData(nameof(BadCompressorLists))]
    public void Invoker_BadCompressors_ThrowsArgumentException(string expected, Compressor? added)
    {
        var options = new ConnectClientOptions();
        options.Compressors.Add(added!);

        ArgumentException error = Assert.Throws<ArgumentException>(() => new GreetServiceClient("http://127.0.0.1:1", options));

        Assert.Equal("options", error.ParamName);
        Assert.Contains("ConnectClientOptions.Compressors", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_Compressors_DefaultOrderAndCopiedPerClient()
    {
        var options = new ConnectClientOptions();

        Assert.Equal(["gzip", "br", "zstd", "deflate"], options.Compressors.Select(c => c.Name));
        Assert.Equal(["gzip", "br", "zstd", "deflate"], options.Clone().Compressors.Select(c => c.Name));
        Assert.NotSame(options.Compressors, options.Clone().Compressors);
    }

    /// <summary>A compressor with a given name, which never compresses anything.</summary>
    private sealed class NamedCompressor(string name) : Compressor
    {
        public override string Name => name;

        public override Stream CreateCompressionStream(Stream output) => throw new NotSupportedException();

        public override Stream CreateDecompressionStream(Stream input) => throw new NotSupportedException();
    }

    [Fact]
    public void Invoker_HttpClientWithoutBaseAddress_Throws()
    {
        using var http = new HttpClient();

        ArgumentException error = Assert.Throws<ArgumentException>(() => new GreetServiceClient(http));

        Assert.Contains("BaseAddress", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_Invalid_AreRefused()
    {
        var options = new ConnectClientOptions();

        Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxReceiveMessageSize = 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxSendMessageSize = -1);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.Timeout = TimeSpan.Zero);
        options.Timeout = Timeout.InfiniteTimeSpan;
        Assert.Null(options.Timeout);
        Assert.Equal(4 * 1024 * 1024, options.MaxReceiveMessageSize);
    }

    private static async IAsyncEnumerable<GreetRequest> Requests(int count)
    {
        for (int i = 0; i < count; i++)
        {
            await Task.Yield();
            yield return new GreetRequest { Name = i.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        }
    }
}
