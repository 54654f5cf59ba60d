using System.Buffers;
using System.IO.Pipelines;
using ConnectRpc.Internal;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace ConnectRpc.AspNetCore.Internal;

/// <summary>
/// What a call on the server shares whatever the protocol: the request headers and the
/// deadline, the handler's context, compression, enveloped reading and the size limits.
/// A protocol adds how the call starts (<see cref="Start"/>), how messages are written and
/// how the call ends (<see cref="FinishAsync"/>).
/// </summary>
internal abstract class HttpServerCall : ServerCall, IDisposable
{
    // Timers cannot run longer than this; a longer deadline is reported but not enforced.
    private static readonly TimeSpan s_maxTimer = TimeSpan.FromMilliseconds(int.MaxValue - 1);

    private readonly Method _method;
    private RequestContext? _context;
    private CancellationTokenSource? _deadline;
    private CancellationTokenSource? _linked;
    private EnvelopeReader? _envelopes;

    protected HttpServerCall(HttpContext http, Method method, MessageCodec codec, ConnectServerOptions options)
    {
        Http = http;
        _method = method;
        Codec = codec;
        MaxReceive = options.MaxReceiveMessageSize;
        MaxSend = options.MaxSendMessageSize;
    }

    public override Method Method => _method;

    public override RequestContext Context => _context ?? throw new InvalidOperationException("The call has not started.");

    public bool DeadlineExpired => _deadline?.IsCancellationRequested == true;

    protected HttpContext Http { get; }

    protected MessageCodec Codec { get; }

    protected int MaxReceive { get; }

    protected int MaxSend { get; }

    /// <summary>The encoding of compressed request messages, or null.</summary>
    protected Compressor? RequestCompressor { get; set; }

    /// <summary>The encoding of response messages, or null.</summary>
    protected Compressor? ResponseCompressor { get; set; }

    /// <summary>The context, or null if <see cref="Start"/> failed before making it.</summary>
    protected RequestContext? ContextOrNull => _context;

    /// <summary>
    /// Reads the protocol headers and creates the context. Throws <see cref="ConnectException"/>
    /// for bad ones, after the context exists where the headers allowed it.
    /// </summary>
    public abstract void Start();

    /// <summary>Writes the end of the call: the response or the error, and the trailers.</summary>
    public abstract Task FinishAsync(ConnectException? error);

    /// <summary>The request headers as received (pseudo-headers are not among them).</summary>
    protected Headers ReceivedHeaders()
    {
        IHeaderDictionary headers = Http.Request.Headers;
        Headers received = Headers.CreateReceived(headers.Count);
        foreach (KeyValuePair<string, StringValues> header in headers)
        {
            foreach (string? value in header.Value)
            {
                received.AddReceived(header.Key, value ?? string.Empty);
            }
        }

        return received.MakeReadOnly();
    }

    /// <summary>
    /// Makes the handler's context. The clock starts now (§6): the deadline cancels the
    /// handler's token together with the client going away.
    /// </summary>
    protected void CreateContext(Protocol protocol, Headers received, TimeSpan? timeout)
    {
        DateTimeOffset? deadline = null;
        DateTimeOffset now = DateTimeOffset.UtcNow;
        // A timeout past the end of the calendar (grpc-timeout allows 99,999,999 hours) is no timeout (§6).
        if (timeout is { } t && t < DateTimeOffset.MaxValue - now)
        {
            deadline = now + t;
            if (t <= s_maxTimer)
            {
                _deadline = new CancellationTokenSource(t);
                _linked = CancellationTokenSource.CreateLinkedTokenSource(Http.RequestAborted, _deadline.Token);
            }
        }

        _context = new RequestContext(_method.Procedure, received, protocol, deadline, cancellationToken: _linked?.Token ?? Http.RequestAborted)
        {
            TransportContext = Http,
        };
    }

    /// <summary>The compressor a request names; unknown names are unimplemented (§7).</summary>
    protected static Compressor? FindRequestCompressor(string? name)
    {
        if (name is null || Compressor.IsIdentity(name))
        {
            return null;
        }

        return Compressor.Find(name) ?? throw new ConnectException(
            Code.Unimplemented,
            $"unknown compression '{HeaderRules.Printable(name)}': supported encodings are {Compressor.AcceptList}");
    }

    /// <summary>The next enveloped request message from <paramref name="body"/>, or null at its end.</summary>
    protected async ValueTask<T?> ReadEnvelopeAsync<T>(PipeReader body, MessageParser<T> parser, CancellationToken cancellationToken)
        where T : class, IMessage<T>
    {
        _envelopes ??= new EnvelopeReader(body, MaxReceive, Code.InvalidArgument);
        if (await _envelopes.ReadAsync(cancellationToken).ConfigureAwait(false) is not { } frame)
        {
            return null;
        }

        if ((frame.Flags & ~EnvelopeFlags.Compressed) != 0)
        {
            throw new ConnectException(Code.InvalidArgument, $"protocol error: invalid envelope flags 0x{(byte)frame.Flags:x2} on a request message");
        }

        bool compressed = (frame.Flags & EnvelopeFlags.Compressed) != 0;
        if (compressed && RequestCompressor is null)
        {
            throw new ConnectException(Code.Internal, "protocol error: a message is marked compressed but the request has no compression");
        }

        return Decode(parser, frame.Payload, compressed ? RequestCompressor : null);
    }

    /// <summary>A request message decoded: bad bytes are the client's fault (invalid_argument).</summary>
    protected T Decode<T>(MessageParser<T> parser, ReadOnlySequence<byte> payload, Compressor? compressor)
        where T : class, IMessage<T>
    {
        try
        {
            return MessageFraming.Decode(parser, Codec, payload, compressor, MaxReceive);
        }
        catch (MessageDecodeException ex)
        {
            throw new ConnectException(Code.InvalidArgument, ex.Message, ex);
        }
    }

    /// <summary>Flushes the response body; a client that is gone ends the handler's writes.</summary>
    protected static async ValueTask FlushAsync(PipeWriter body, CancellationToken cancellationToken)
    {
        FlushResult flushed = await body.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (flushed.IsCanceled || flushed.IsCompleted)
        {
            throw new ConnectException(Code.Canceled, "the client is gone");
        }
    }

    protected static void AppendHeaders(IHeaderDictionary target, Headers? source, string? prefix)
    {
        if (source is null)
        {
            return;
        }

        foreach (KeyValuePair<string, string> entry in source)
        {
            target.Append(prefix is null ? entry.Key : prefix + entry.Key, entry.Value);
        }
    }

    public virtual void Dispose()
    {
        _linked?.Dispose();
        _deadline?.Dispose();
    }
}
