namespace ConnectRpc;

/// <summary>
/// The error codes shared by Connect and gRPC. The numeric values are the wire numbers;
/// success has no code because a successful call raises no error.
/// </summary>
public enum Code
{
    /// <summary>The operation was canceled, typically by the caller (<c>canceled</c>, gRPC CANCELLED).</summary>
    Canceled = 1,

    /// <summary>An unknown error, including errors with no better code (<c>unknown</c>).</summary>
    Unknown = 2,

    /// <summary>The client sent an invalid argument, regardless of system state (<c>invalid_argument</c>).</summary>
    InvalidArgument = 3,

    /// <summary>The deadline passed before the operation completed (<c>deadline_exceeded</c>).</summary>
    DeadlineExceeded = 4,

    /// <summary>A requested entity was not found (<c>not_found</c>).</summary>
    NotFound = 5,

    /// <summary>The entity the client tried to create already exists (<c>already_exists</c>).</summary>
    AlreadyExists = 6,

    /// <summary>The caller may not perform the operation (<c>permission_denied</c>).</summary>
    PermissionDenied = 7,

    /// <summary>A resource, such as a quota or a size limit, is exhausted (<c>resource_exhausted</c>).</summary>
    ResourceExhausted = 8,

    /// <summary>The system is not in a state the operation requires (<c>failed_precondition</c>).</summary>
    FailedPrecondition = 9,

    /// <summary>The operation was aborted, often by a concurrency conflict (<c>aborted</c>).</summary>
    Aborted = 10,

    /// <summary>The operation went past the valid range (<c>out_of_range</c>).</summary>
    OutOfRange = 11,

    /// <summary>The operation is not implemented or not supported (<c>unimplemented</c>).</summary>
    Unimplemented = 12,

    /// <summary>An invariant of the underlying system is broken (<c>internal</c>).</summary>
    Internal = 13,

    /// <summary>The service is unavailable right now; retrying may help (<c>unavailable</c>).</summary>
    Unavailable = 14,

    /// <summary>Unrecoverable data loss or corruption (<c>data_loss</c>).</summary>
    DataLoss = 15,

    /// <summary>The request has no valid authentication credentials (<c>unauthenticated</c>).</summary>
    Unauthenticated = 16,
}

/// <summary>Conversions of <see cref="Code"/> to its protocol forms.</summary>
public static class CodeExtensions
{
    /// <summary>
    /// The code's Connect wire name, such as <c>invalid_argument</c>; a value outside the
    /// enum becomes <c>code_N</c>.
    /// </summary>
    public static string ToWireName(this Code code) => Internal.CodeMapping.ToWireName(code);
}
