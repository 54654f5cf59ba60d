using System.Collections.Concurrent;
using System.Threading.Channels;
using ConnectRpc.Internal;
using Google.Protobuf;

namespace ConnectRpc.Tests;

/// <summary>
/// A test-only transport standing in for a server at the internal seam protocols implement:
/// it answers each request only after it arrives (so a half-duplex client would deadlock),
/// sends the configured headers with the first response and trailers or an error at the end.
/// </summary>
internal sealed class EchoTransport : IClientTransport
{
    /// <summary>Maps a request to its response; the default greets GreetRequest names.</summary>
    public Func<IMessage, IMessage> Respond { get; init; } = DefaultRespond;

    public Dictionary<string, string> ResponseHeaders { get; init; } = [];

    public Dictionary<string, string> ResponseTrailers { get; init; } = [];

    /// <summary>Thrown at the end of the response stream, after the trailers arrived.</summary>
    public Func<ConnectException>? FailAtEnd { get; init; }

    /// <summary>How many responses each request gets (0 or 2 break unary cardinality).</summary>
    public int ResponsesPerRequest { get; init; } = 1;

    /// <summary>How long the server "works" before each response.</summary>
    public TimeSpan ResponseDelay { get; init; }

    /// <summary>Never answers: the call ends only by cancellation.</summary>
    public bool Hang { get; init; }

    /// <summary>
    /// Thrown from SendAsync, as a transport refusing a message (over the size limit, say) would;
    /// an HTTP failure is mapped first, as the real transports map theirs.
    /// </summary>
    public Func<Exception>? FailOnSend { get; init; }

    /// <summary>Thrown from CreateCall, as a transport failing to connect would (HTTP failures mapped, as the real transports do).</summary>
    public Exception? FailToStart { get; init; }

    public ConcurrentQueue<ClientCallInfo> Infos { get; } = new();

    public ConcurrentQueue<IEchoCall> Calls { get; } = new();

    public ClientCall<TRequest, TResponse> CreateCall<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientCallInfo info)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        if (FailToStart is not null)
        {
            throw HttpFailures.Map(FailToStart, default) ?? FailToStart;
        }

        Infos.Enqueue(info);
        var call = new EchoCall<TRequest, TResponse>(this, method, info);
        Calls.Enqueue(call);
        return call;
    }

    private static IMessage DefaultRespond(IMessage request) => request switch
    {
        Connectrpc.Greet.V1.GreetRequest greet => new Connectrpc.Greet.V1.GreetResponse { Greeting = "Hello, " + greet.Name },
        _ => throw new InvalidOperationException($"No response for {request.Descriptor.FullName}."),
    };

    internal interface IEchoCall
    {
        IReadOnlyCollection<IMessage> Received { get; }

        bool SawCancellation { get; }

        bool Disposed { get; }
    }

    private sealed class EchoCall<TRequest, TResponse>(EchoTransport transport, Method<TRequest, TResponse> method, ClientCallInfo info)
        : ClientCall<TRequest, TResponse>(method, info.RequestHeaders, info.Deadline), IEchoCall
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        private readonly Channel<TRequest> _requests = Channel.CreateUnbounded<TRequest>();
        private readonly ConcurrentQueue<IMessage> _received = new();
        private readonly Queue<TResponse> _pending = new();
        private Headers _headers = Headers.CreateReceived(0);
        private Headers _trailers = Headers.CreateReceived(0);
        private bool _ended;

        public override Headers ResponseHeaders => _headers;

        public override Headers ResponseTrailers => _trailers;

        public IReadOnlyCollection<IMessage> Received => _received;

        public bool SawCancellation { get; private set; }

        public bool Disposed { get; private set; }

        public override async ValueTask SendAsync(TRequest message, CancellationToken cancellationToken)
        {
            if (transport.FailOnSend is { } fail)
            {
                Exception failure = fail();
                throw HttpFailures.Map(failure, default) ?? failure;
            }

            _received.Enqueue(message);
            try
            {
                await _requests.Writer.WriteAsync(message, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // A slow machine may reach the cancellation while still sending.
                SawCancellation = true;
                throw;
            }
        }

        public override ValueTask CompleteSendAsync(CancellationToken cancellationToken)
        {
            _requests.Writer.TryComplete();
            return ValueTask.CompletedTask;
        }

        public override async ValueTask<TResponse?> ReceiveAsync(CancellationToken cancellationToken)
        {
            try
            {
                if (transport.Hang)
                {
                    await Task.Delay(Timeout.Infinite, cancellationToken);
                }

                if (_headers.Count == 0)
                {
                    _headers = ToHeaders(transport.ResponseHeaders);
                }

                if (_pending.TryDequeue(out TResponse? queued))
                {
                    return queued;
                }

                // Answer each request as it arrives; a request may get no response at all.
                while (!_ended && await _requests.Reader.WaitToReadAsync(cancellationToken))
                {
                    if (!_requests.Reader.TryRead(out TRequest? request))
                    {
                        continue;
                    }

                    if (transport.ResponseDelay > TimeSpan.Zero)
                    {
                        await Task.Delay(transport.ResponseDelay, cancellationToken);
                    }

                    for (int i = 0; i < transport.ResponsesPerRequest; i++)
                    {
                        _pending.Enqueue((TResponse)transport.Respond(request));
                    }

                    if (_pending.TryDequeue(out TResponse? response))
                    {
                        return response;
                    }
                }

                _ended = true;
                _trailers = ToHeaders(transport.ResponseTrailers);
                if (transport.FailAtEnd is { } fail)
                {
                    throw fail();
                }

                return null;
            }
            catch (OperationCanceledException)
            {
                SawCancellation = true;
                throw;
            }
        }

        public override ValueTask DisposeAsync()
        {
            Disposed = true;
            _requests.Writer.TryComplete();
            return ValueTask.CompletedTask;
        }

        private static Headers ToHeaders(Dictionary<string, string> values)
        {
            Headers headers = Headers.CreateReceived();
            foreach ((string key, string value) in values)
            {
                headers.AddReceived(key, value);
            }

            return headers;
        }
    }
}
