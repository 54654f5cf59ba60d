using System.Net;

namespace ConnectRpc.Internal;

/// <summary>
/// How a client reads HTTP-level failures as RPC errors, for every protocol: a response with
/// no usable RPC status, a request that could not be sent, a body that broke off, and an
/// HTTP/2 stream reset. The transports apply it where they send and receive, so the rest of
/// the client only ever sees <see cref="ConnectException"/>.
/// </summary>
internal static class HttpFailures
{
    /// <summary>A response with an HTTP status and no usable RPC code (docs/wire/errors.md#http-status-to-code).</summary>
    public static ConnectException FromStatus(int status) =>
        new(
            CodeMapping.FromHttpStatus(status),
            $"HTTP status {status} {(Enum.IsDefined(typeof(HttpStatusCode), status) ? ((HttpStatusCode)status).ToString() : string.Empty)}".TrimEnd());

    /// <summary>
    /// The error of an HTTP failure while a call sends or receives, or null when
    /// <paramref name="ex"/> is not one (or is an I/O failure caused by the call's own
    /// cancellation, which the caller reports by its cause).
    /// </summary>
    public static ConnectException? Map(Exception ex, CancellationToken cancellationToken) => ex switch
    {
        // A stream reset before the response headers maps like one while reading (docs/protocols/grpc.md#stream-resets).
        HttpRequestException { InnerException: HttpProtocolException reset } => FromReset(reset),
        HttpRequestException => new ConnectException(Code.Unavailable, ex.Message, ex),
        IOException io when !cancellationToken.IsCancellationRequested => FromRead(io),
        _ => null,
    };

    /// <summary>Whether <paramref name="error"/> is an HTTP failure that <see cref="Map"/> made, rather than an RPC error.</summary>
    public static bool IsHttpFailure(ConnectException error) => error.InnerException is HttpRequestException or IOException;

    /// <summary>
    /// A failure while reading a response body. An HTTP/2 stream reset maps as the table in
    /// docs/protocols/grpc.md#stream-resets says; anything else means the connection broke (unavailable).
    /// </summary>
    private static ConnectException FromRead(IOException ex) =>
        ex is HttpProtocolException reset
            ? FromReset(reset)
            : new ConnectException(Code.Unavailable, $"reading the response failed: {ex.Message}", ex);

    private static ConnectException FromReset(HttpProtocolException ex)
    {
        Code code = ex.ErrorCode switch
        {
            0x7 => Code.Unavailable, // REFUSED_STREAM
            0x8 => Code.Canceled, // CANCEL; past the deadline, the call reports deadline_exceeded
            0xb => Code.ResourceExhausted, // ENHANCE_YOUR_CALM
            0xc => Code.PermissionDenied, // INADEQUATE_SECURITY
            _ => Code.Internal,
        };
        return new ConnectException(code, $"the server reset the stream: {ex.Message}", ex);
    }
}
