using System.Security.Cryptography;
using System.Text;
using ConnectRpc;

namespace Greet.Server;

/// <summary>
/// An example server interceptor: every call must carry <c>authorization: Bearer &lt;token&gt;</c>
/// with the expected token, or it ends with <see cref="Code.Unauthenticated"/> before the
/// handler runs (except health checks and reflection, see below). Register it with
/// <c>builder.Services.AddConnect(options =&gt; options.Interceptors.Add(new BearerTokenInterceptor(token)))</c>.
/// </summary>
/// <remarks>
/// Interceptors see every RPC kind the same way, through <see cref="ServerCall"/>. A real
/// service would validate a signed token here (or use ASP.NET Core authentication and
/// <c>.RequireAuthorization()</c> on <c>MapConnectService</c>); a fixed token keeps the demo small.
/// </remarks>
internal sealed class BearerTokenInterceptor(string token) : ServerInterceptor
{
    private const string Scheme = "Bearer ";

    private readonly byte[] _expected = Encoding.UTF8.GetBytes(token);

    /// <summary>
    /// Services anyone may call. Health probes (Kubernetes, load balancers) carry no credentials.
    /// Reflection reveals the API's shape, which this demo publishes anyway, so <c>buf curl</c>
    /// works without a schema or a header; a private API would keep reflection behind the token
    /// (<c>buf curl --reflect-header</c> sends one).
    /// </summary>
    private static readonly HashSet<string> s_open = new(StringComparer.Ordinal)
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    };

    public override Task InterceptAsync(ServerCall call, ServerCallHandler next)
    {
        if (s_open.Contains(call.Method.ServiceName))
        {
            return next(call);
        }

        string? authorization = call.Context.RequestHeaders.Get("authorization");
        if (authorization is null || !authorization.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            // Thrown before next(call): the handler never runs, and the client gets this code
            // and message (and any response trailers written so far).
            throw new ConnectException(Code.Unauthenticated, "missing bearer token");
        }

        // Compare in constant time, so response timing reveals nothing about the token.
        byte[] presented = Encoding.UTF8.GetBytes(authorization[Scheme.Length..].Trim());
        if (!CryptographicOperations.FixedTimeEquals(presented, _expected))
        {
            throw new ConnectException(Code.Unauthenticated, "invalid bearer token");
        }

        return next(call);
    }
}
