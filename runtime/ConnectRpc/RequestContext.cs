namespace ConnectRpc;

/// <summary>
/// What a handler knows about the call it serves, and where it writes response metadata.
/// </summary>
/// <remarks>
/// Response headers go out with the first response message (or with the end of the call
/// when there is none); writing them after that throws <see cref="InvalidOperationException"/>.
/// Trailers go out at the end, on success and on error alike.
/// </remarks>
public sealed class RequestContext
{
    private const string HeadersSentReason = "Response headers were already sent; set them before the first response message.";

    private readonly TimeProvider _time;
    private Headers? _responseHeaders;
    private Headers? _responseTrailers;
    private bool _headersSent;

    /// <summary>
    /// Creates a context. The server creates one per call; tests create their own to call a
    /// handler directly.
    /// </summary>
    /// <param name="procedure">The procedure path, such as <c>/greet.v1.GreetService/Greet</c>.</param>
    /// <param name="requestHeaders">The request headers (copied when writable, so the context's stay read-only). Null means none.</param>
    /// <param name="protocol">The protocol the call arrived on.</param>
    /// <param name="deadline">When the call must end; null means no deadline.</param>
    /// <param name="timeProvider">The clock for <see cref="Timeout"/>; null means the system clock.</param>
    /// <param name="cancellationToken">Fires on client cancellation, disconnect or deadline.</param>
    public RequestContext(
        string procedure,
        Headers? requestHeaders = null,
        Protocol protocol = Protocol.Connect,
        DateTimeOffset? deadline = null,
        TimeProvider? timeProvider = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(procedure);
        Procedure = procedure;
        RequestHeaders = requestHeaders switch
        {
            null => Headers.Empty,
            { IsReadOnly: true } => requestHeaders,
            _ => requestHeaders.CopyReadOnly(),
        };
        Protocol = protocol;
        Deadline = deadline;
        CancellationToken = cancellationToken;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>The procedure path, such as <c>/greet.v1.GreetService/Greet</c>.</summary>
    public string Procedure { get; }

    /// <summary>The protocol the call arrived on.</summary>
    public Protocol Protocol { get; }

    /// <summary>The request headers, as received (read-only).</summary>
    public Headers RequestHeaders { get; }

    /// <summary>Headers to send before the first response message. Writes are checked.</summary>
    public Headers ResponseHeaders =>
        _responseHeaders ?? Created(ref _responseHeaders, _headersSent ? Headers.CreateReceived(0).MakeReadOnly(HeadersSentReason) : new());

    /// <summary>Trailers to send at the end of the call, on success or error. Writes are checked.</summary>
    public Headers ResponseTrailers => _responseTrailers ?? Created(ref _responseTrailers, new());

    // Both are made on first use: most handlers set no metadata, and a call then allocates none.
    // The first of two threads that race to make one wins, so no write is lost.
    private static Headers Created(ref Headers? field, Headers made) => Interlocked.CompareExchange(ref field, made, null) ?? made;

    internal Headers? ResponseHeadersOrNull => _responseHeaders;

    internal Headers? ResponseTrailersOrNull => _responseTrailers;

    /// <summary>When the call must end, from the client's timeout; null when it has none.</summary>
    public DateTimeOffset? Deadline { get; }

    /// <summary>The time left until <see cref="Deadline"/> (never negative); null when there is no deadline.</summary>
    public TimeSpan? Timeout
    {
        get
        {
            if (Deadline is not { } deadline)
            {
                return null;
            }

            TimeSpan left = deadline - _time.GetUtcNow();
            return left > TimeSpan.Zero ? left : TimeSpan.Zero;
        }
    }

    /// <summary>Fires when the client cancels, disconnects, or the deadline passes.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>The transport's own object for the call (the ASP.NET Core HttpContext on the server).</summary>
    internal object? TransportContext { get; init; }

    /// <summary>Called by the server once the response headers are on their way.</summary>
    internal void MarkHeadersSent()
    {
        _headersSent = true;
        _responseHeaders?.MakeReadOnly(HeadersSentReason);
    }
}
