using System.Globalization;

namespace ConnectRpc.Internal;

/// <summary>The code tables of docs/wire/errors.md: wire names, numbers and HTTP statuses.</summary>
internal static class CodeMapping
{
    private static readonly string[] s_names =
    [
        "", // 0 is success and has no Connect name
        "canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists",
        "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range",
        "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated",
    ];

    // Connect unary HTTP status per code (docs/wire/errors.md, last column).
    private static readonly int[] s_httpStatus =
    [
        200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401,
    ];

    public const int MinCode = 1;
    public const int MaxCode = 16;

    public static bool IsDefined(Code code) => (int)code is >= MinCode and <= MaxCode;

    public static string ToWireName(Code code) =>
        IsDefined(code) ? s_names[(int)code] : string.Create(CultureInfo.InvariantCulture, $"code_{(int)code}");

    /// <summary>Parses a Connect wire name; only the 16 exact lower-case names are accepted.</summary>
    public static bool TryParseWireName(ReadOnlySpan<char> name, out Code code)
    {
        for (int i = MinCode; i <= MaxCode; i++)
        {
            if (name.SequenceEqual(s_names[i]))
            {
                code = (Code)i;
                return true;
            }
        }

        code = Code.Unknown;
        return false;
    }

    /// <summary>
    /// The code for a gRPC status number received from a peer. 0 is success and is not a
    /// code; any number outside 1–16 becomes <see cref="Code.Unknown"/>.
    /// </summary>
    public static Code FromWireNumber(int number) => number is >= MinCode and <= MaxCode ? (Code)number : Code.Unknown;

    /// <summary>The HTTP status a Connect unary error carries; codes outside the table get 500.</summary>
    public static int ToHttpStatus(Code code) => IsDefined(code) ? s_httpStatus[(int)code] : 500;

    /// <summary>
    /// The code for an HTTP response that carries no usable RPC code. This is not the inverse
    /// of <see cref="ToHttpStatus"/>: it is the table every Connect implementation and the
    /// conformance suite share.
    /// </summary>
    public static Code FromHttpStatus(int status) => status switch
    {
        400 => Code.Internal,
        401 => Code.Unauthenticated,
        403 => Code.PermissionDenied,
        404 => Code.Unimplemented,
        429 or 502 or 503 or 504 => Code.Unavailable,
        _ => Code.Unknown,
    };
}
