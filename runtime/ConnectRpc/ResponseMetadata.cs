namespace ConnectRpc;

/// <summary>
/// A scope that receives the response headers and trailers of the client calls made inside
/// it, so client methods keep simple signatures.
/// </summary>
/// <example>
/// <code>
/// using var meta = new ResponseMetadata();
/// var res = await client.GreetAsync(new GreetRequest(), headers: new() { ["acme-tenant-id"] = "1234" });
/// Console.WriteLine(meta.Headers.Get("greet-version"));
/// Console.WriteLine(meta.Trailers.Get("greet-version"));
/// </code>
/// </example>
/// <remarks>
/// <para>
/// Creating an instance makes it current for the code that follows in the same async flow
/// (it is an <see cref="AsyncLocal{T}"/>); disposing it restores the scope that was current
/// before. A call binds to the scope that is current when the client method is called, so a
/// stream created inside the scope and enumerated later still reports to it.
/// </para>
/// <para>
/// <see cref="Headers"/> are visible once the response headers arrived (for streams, by the
/// time the first message or the end is delivered); <see cref="Trailers"/> once the call
/// completed. On error the scope is filled too, and the <see cref="ConnectException"/>
/// carries the same metadata. With several calls in one scope the last to complete wins;
/// updates are thread-safe. A stream abandoned early leaves empty trailers.
/// </para>
/// </remarks>
public sealed class ResponseMetadata : IDisposable
{
    private static readonly AsyncLocal<ResponseMetadata?> s_current = new();

    private readonly ResponseMetadata? _previous;
    private Snapshot _snapshot = Snapshot.Empty;
    private bool _disposed;

    /// <summary>Creates a scope and makes it current.</summary>
    public ResponseMetadata()
    {
        _previous = s_current.Value;
        s_current.Value = this;
    }

    /// <summary>The scope current in this async flow, or null.</summary>
    public static ResponseMetadata? Current => s_current.Value;

    /// <summary>The response headers of the latest call (empty until they arrive). Read-only.</summary>
    public Headers Headers => Volatile.Read(ref _snapshot).Headers;

    /// <summary>The trailers of the latest completed call (empty until it completes). Read-only.</summary>
    public Headers Trailers => Volatile.Read(ref _snapshot).Trailers;

    /// <summary>Ends the scope: the scope that was current before becomes current again.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (ReferenceEquals(s_current.Value, this))
        {
            s_current.Value = _previous;
        }
    }

    /// <summary>A call's response headers arrived: they replace the scope's, and trailers reset.</summary>
    internal void OnHeaders(Headers headers) =>
        Volatile.Write(ref _snapshot, new Snapshot(headers.MakeReadOnly(), Headers.Empty));

    /// <summary>A call completed (successfully or not) with these headers and trailers.</summary>
    internal void OnCompleted(Headers headers, Headers trailers) =>
        Volatile.Write(ref _snapshot, new Snapshot(headers.MakeReadOnly(), trailers.MakeReadOnly()));

    private sealed record Snapshot(Headers Headers, Headers Trailers)
    {
        public static readonly Snapshot Empty = new(Headers.Empty, Headers.Empty);
    }
}
