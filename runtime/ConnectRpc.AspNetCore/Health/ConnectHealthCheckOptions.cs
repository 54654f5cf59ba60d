using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace ConnectRpc.AspNetCore;

/// <summary>
/// Which of the application's health checks decide the status that <c>grpc.health.v1.Health</c>
/// reports for each service name. Set with <c>AddConnectHealthChecks(options =&gt; …)</c>.
/// </summary>
public sealed class ConnectHealthCheckOptions
{
    /// <summary>
    /// Service name, as clients ask for it (such as <c>greet.v1.GreetService</c>), to the checks
    /// that decide its status: <c>SERVING</c> unless one of them is unhealthy (degraded counts as
    /// serving). A name not listed is unknown: <c>Check</c> answers <c>not_found</c> and
    /// <c>Watch</c> reports <c>SERVICE_UNKNOWN</c>. Holds <c>""</c> (the server as a whole, what
    /// probes ask by default) mapped to every check; remove it to make that name unknown.
    /// </summary>
    /// <example><c>options.Services["greet.v1.GreetService"] = check =&gt; check.Tags.Contains("greet");</c></example>
    public IDictionary<string, Func<HealthCheckRegistration, bool>> Services { get; } =
        new Dictionary<string, Func<HealthCheckRegistration, bool>>(StringComparer.Ordinal) { [""] = static _ => true };
}
