using ConnectRpc.Internal;

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
    private readonly TimeProvider _time;
    private readonly ResponseMetadataSlots _response;

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
        : this(procedure, requestHeaders, protocol, deadline, timeProvider, new ResponseMetadataSlots(), transport: null, cancellationToken)
    {
    }

    /// <summary>The server's context for a call, writing into the server's own slots.</summary>
    internal RequestContext(
        string procedure,
        Headers? requestHeaders,
        Protocol protocol,
        DateTimeOffset? deadline,
        TimeProvider? timeProvider,
        ResponseMetadataSlots response,
        object? transport,
        CancellationToken cancellationToken)
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
        _response = response;
        Transport = transport;
    }

    /// <summary>The procedure path, such as <c>/greet.v1.GreetService/Greet</c>.</summary>
    public string Procedure { get; }

    /// <summary>The protocol the call arrived on.</summary>
    public Protocol Protocol { get; }

    /// <summary>The request headers, as received (read-only).</summary>
    public Headers RequestHeaders { get; }

    /// <summary>Headers to send before the first response message. Writes are checked.</summary>
    public Headers ResponseHeaders => _response.Headers;

    /// <summary>Trailers to send at the end of the call, on success or error. Writes are checked.</summary>
    public Headers ResponseTrailers => _response.Trailers;

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

    /// <summary>
    /// The transport's own object for the call (the ASP.NET Core HttpContext on the server), for
    /// applications that ask for it; the server itself never reads it back.
    /// </summary>
    internal object? Transport { get; }
}
