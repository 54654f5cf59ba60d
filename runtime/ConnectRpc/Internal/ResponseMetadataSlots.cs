namespace ConnectRpc.Internal;

/// <summary>
/// The response headers and trailers of one call on the server. A handler writes them through
/// its <see cref="RequestContext"/>; the server keeps this object itself, reads what was
/// written and freezes the headers once they are sent. Nothing public reaches it.
/// </summary>
internal sealed class ResponseMetadataSlots
{
    private const string HeadersSentReason = "Response headers were already sent; set them before the first response message.";

    private Headers? _headers;
    private Headers? _trailers;
    private bool _headersSent;

    /// <summary>The response headers, made on first use (read-only once sent).</summary>
    public Headers Headers => _headers ?? Created(ref _headers, _headersSent ? Headers.CreateReceived(0).MakeReadOnly(HeadersSentReason) : new());

    /// <summary>The response trailers, made on first use.</summary>
    public Headers Trailers => _trailers ?? Created(ref _trailers, new());

    /// <summary>The headers written so far, or null when the handler wrote none (nothing is allocated).</summary>
    public Headers? HeadersOrNull => _headers;

    /// <summary>The trailers written so far, or null when the handler wrote none.</summary>
    public Headers? TrailersOrNull => _trailers;

    /// <summary>The headers are on their way: later writes to them throw.</summary>
    public void MarkHeadersSent()
    {
        _headersSent = true;
        _headers?.MakeReadOnly(HeadersSentReason);
    }

    // Both are made on first use: most handlers set no metadata, and a call then allocates none.
    // The first of two threads that race to make one wins, so no write is lost.
    private static Headers Created(ref Headers? field, Headers made) => Interlocked.CompareExchange(ref field, made, null) ?? made;
}
