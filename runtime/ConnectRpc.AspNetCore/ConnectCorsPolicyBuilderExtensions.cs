using ConnectRpc.AspNetCore;
using Microsoft.AspNetCore.Cors.Infrastructure;

// In the namespace of MapConnectService and UseCors, which web projects import implicitly: no using needed.
#pragma warning disable IDE0130 // Namespace does not match folder structure
namespace Microsoft.AspNetCore.Builder;
#pragma warning restore IDE0130

/// <summary>Adds what Connect, gRPC-Web and gRPC need to an ASP.NET Core CORS policy (see <see cref="ConnectCors"/>).</summary>
public static class ConnectCorsPolicyBuilderExtensions
{
    /// <summary>
    /// Allows <see cref="ConnectCors.AllowedMethods"/> and <see cref="ConnectCors.AllowedRequestHeaders"/>,
    /// exposes <see cref="ConnectCors.ExposedResponseHeaders"/>, and lets browsers cache the preflight
    /// for <see cref="ConnectCors.PreflightMaxAge"/>. It adds to what the policy already allows, so
    /// the application's own headers can be allowed or exposed before or after; the origins are the
    /// application's to choose. Do not combine it with <c>AllowAnyHeader()</c> or <c>AllowAnyMethod()</c>:
    /// a list with more than <c>*</c> in it is no longer "any".
    /// </summary>
    /// <example>
    /// <code>
    /// builder.Services.AddCors(cors =&gt; cors.AddDefaultPolicy(policy =&gt; policy
    ///     .WithOrigins("https://app.example.com")
    ///     .WithConnectCors()
    ///     .WithHeaders("Authorization")));
    /// // ...
    /// app.UseCors();
    /// </code>
    /// </example>
    /// <param name="policy">The policy being built.</param>
    /// <returns><paramref name="policy"/>, for chaining.</returns>
    public static CorsPolicyBuilder WithConnectCors(this CorsPolicyBuilder policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        return policy
            .WithMethods([.. ConnectCors.AllowedMethods])
            .WithHeaders([.. ConnectCors.AllowedRequestHeaders])
            .WithExposedHeaders([.. ConnectCors.ExposedResponseHeaders])
            .SetPreflightMaxAge(ConnectCors.PreflightMaxAge);
    }

    /// <summary>
    /// Does what <see cref="WithConnectCors(CorsPolicyBuilder)"/> does, and also exposes the
    /// application's own response headers <paramref name="responseHeaders"/> and its trailers
    /// <paramref name="responseTrailers"/> (under both names a browser can receive a trailer by:
    /// see <see cref="ConnectCors.TrailerNames"/>), so that browser code can read them.
    /// </summary>
    /// <example><c>policy.WithOrigins(origin).WithConnectCors(responseHeaders: ["Greet-Version"], responseTrailers: ["Greet-Version"])</c></example>
    /// <param name="policy">The policy being built.</param>
    /// <param name="responseHeaders">The application's response header names.</param>
    /// <param name="responseTrailers">The application's response trailer names, without any prefix.</param>
    /// <returns><paramref name="policy"/>, for chaining.</returns>
    public static CorsPolicyBuilder WithConnectCors(this CorsPolicyBuilder policy, IEnumerable<string> responseHeaders, IEnumerable<string> responseTrailers)
    {
        ArgumentNullException.ThrowIfNull(responseHeaders);
        ArgumentNullException.ThrowIfNull(responseTrailers);
        // Once each: a name can be both a header and a trailer (the trailer's own name).
        string[] exposed = [.. responseHeaders.Concat(ConnectCors.TrailerNames(responseTrailers)).Distinct(StringComparer.OrdinalIgnoreCase)];
        return policy.WithConnectCors().WithExposedHeaders(exposed);
    }
}
