using System.Collections.ObjectModel;

namespace ConnectRpc.AspNetCore;

/// <summary>
/// What a browser on another origin needs a server's CORS policy to allow so that it can call
/// Connect, gRPC-Web (and, from other clients, gRPC) endpoints: the methods, the request headers
/// the protocols send, and the response headers a client must read. Combine them with the
/// application's own names, or let
/// <see cref="Microsoft.AspNetCore.Builder.ConnectCorsPolicyBuilderExtensions.WithConnectCors(Microsoft.AspNetCore.Cors.Infrastructure.CorsPolicyBuilder)"/>
/// add them all to an ASP.NET Core CORS policy.
/// </summary>
/// <example>
/// <code>
/// policy.WithOrigins("https://app.example.com")
///       .WithMethods([.. ConnectCors.AllowedMethods])
///       .WithHeaders([.. ConnectCors.AllowedRequestHeaders, "Authorization"])
///       .WithExposedHeaders([.. ConnectCors.ExposedResponseHeaders, "Greet-Version", .. ConnectCors.TrailerNames("Greet-Version")])
///       .SetPreflightMaxAge(ConnectCors.PreflightMaxAge);
/// </code>
/// </example>
public static class ConnectCors
{
    /// <summary>
    /// The prefix of the response header that carries a trailer of a Connect unary call
    /// (<c>Trailer-Greet-Version</c> for trailer <c>Greet-Version</c>): a Connect unary response
    /// has no HTTP trailers, so its trailers arrive as headers with this prefix.
    /// </summary>
    public const string TrailerPrefix = "Trailer-";

    /// <summary>
    /// <c>POST</c>, which every protocol uses, and <c>GET</c>, which Connect uses for calls to
    /// methods marked <c>idempotency_level = NO_SIDE_EFFECTS</c> when the client asks for it.
    /// </summary>
    public static IReadOnlyList<string> AllowedMethods { get; } = ReadOnly("POST", "GET");

    /// <summary>
    /// The request headers Connect, gRPC-Web and gRPC clients send: the content type, the
    /// protocol version, deadlines (<c>Connect-Timeout-Ms</c>, <c>Grpc-Timeout</c>), compression
    /// (<c>Connect-Content-Encoding</c>, <c>Connect-Accept-Encoding</c>, <c>Grpc-Encoding</c>,
    /// <c>Grpc-Accept-Encoding</c>, <c>Content-Encoding</c>, <c>Accept-Encoding</c>), and gRPC-Web's
    /// <c>X-Grpc-Web</c> and <c>X-User-Agent</c> (browsers do not let scripts set <c>User-Agent</c>).
    /// Headers the application reads (such as <c>Authorization</c>) are not in it: allow them as well.
    /// </summary>
    public static IReadOnlyList<string> AllowedRequestHeaders { get; } = ReadOnly(
        "Content-Type",
        "Connect-Protocol-Version",
        "Connect-Timeout-Ms",
        "Connect-Content-Encoding",
        "Connect-Accept-Encoding",
        "Content-Encoding",
        "Accept-Encoding",
        "Grpc-Timeout",
        "Grpc-Encoding",
        "Grpc-Accept-Encoding",
        "X-Grpc-Web",
        "X-User-Agent");

    /// <summary>
    /// The response headers a browser client must be able to read: gRPC-Web's status, message and
    /// error details (in the headers of a response without messages), and the compression each
    /// protocol names (<c>Grpc-Encoding</c>, <c>Grpc-Accept-Encoding</c>, <c>Connect-Content-Encoding</c>,
    /// <c>Connect-Accept-Encoding</c>, <c>Content-Encoding</c>, and <c>Accept-Encoding</c>, which a Connect
    /// unary response carries to name the compressions the server accepts). Without them a browser hides these
    /// headers from the script, which then reports a call that failed on the server as a protocol error.
    /// The application's own response headers and trailers are not in it: see <see cref="TrailerNames"/>.
    /// </summary>
    public static IReadOnlyList<string> ExposedResponseHeaders { get; } = ReadOnly(
        "Grpc-Status",
        "Grpc-Message",
        "Grpc-Status-Details-Bin",
        "Grpc-Encoding",
        "Grpc-Accept-Encoding",
        "Connect-Content-Encoding",
        "Connect-Accept-Encoding",
        "Content-Encoding",
        "Accept-Encoding");

    /// <summary>
    /// How long a browser may cache a preflight's answer: two hours. A preflight is cached per
    /// origin and URL, so without a long cache every procedure's first call from a page costs an
    /// extra round trip. Two hours is the most Chromium honours (it caps longer values; Firefox caps
    /// at a day), and the answer only changes when the server's CORS policy does.
    /// </summary>
    public static TimeSpan PreflightMaxAge { get; } = TimeSpan.FromHours(2);

    /// <summary>
    /// The response header names under which the application's trailers <paramref name="trailers"/>
    /// reach a browser, to expose: each name itself (a gRPC-Web response without messages carries
    /// its trailers as headers) and the name with <see cref="TrailerPrefix"/> (a Connect unary
    /// response carries its trailers as prefixed headers). gRPC-Web trailers after messages and
    /// Connect streaming trailers travel in the body and need no exposing.
    /// </summary>
    /// <param name="trailers">Trailer names, such as <c>Greet-Version</c>.</param>
    /// <returns>For <c>Greet-Version</c>: <c>Greet-Version</c> and <c>Trailer-Greet-Version</c>.</returns>
    public static IEnumerable<string> TrailerNames(params IEnumerable<string> trailers)
    {
        ArgumentNullException.ThrowIfNull(trailers);
        return Names(trailers);

        static IEnumerable<string> Names(IEnumerable<string> trailers)
        {
            foreach (string trailer in trailers)
            {
                ArgumentException.ThrowIfNullOrWhiteSpace(trailer);
                yield return trailer;
                yield return TrailerPrefix + trailer;
            }
        }
    }

    private static ReadOnlyCollection<string> ReadOnly(params string[] names) => new(names);
}
