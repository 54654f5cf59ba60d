using Grpc.Health.V1;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace ConnectRpc.AspNetCore.Health;

/// <summary>
/// <c>grpc.health.v1.Health</c> on the application's health checks. <c>Check</c> runs the
/// service's checks when asked; <c>Watch</c> sends the status at once, then each change seen in
/// the reports ASP.NET Core's publisher makes, and ends when the application stops.
/// </summary>
internal sealed class HealthService(
    HealthCheckService checks,
    HealthReports reports,
    IOptions<ConnectHealthCheckOptions> options,
    IOptions<HealthCheckServiceOptions> registrations,
    IHostApplicationLifetime lifetime) : HealthBase
{
    private readonly IDictionary<string, Func<HealthCheckRegistration, bool>> _services = options.Value.Services;

    public override async Task<HealthCheckResponse> CheckAsync(HealthCheckRequest request, RequestContext context)
    {
        if (!_services.TryGetValue(request.Service, out Func<HealthCheckRegistration, bool>? selects))
        {
            throw new ConnectException(Code.NotFound, $"unknown service '{request.Service}'");
        }

        HealthReport report = await checks.CheckHealthAsync(selects, context.CancellationToken).ConfigureAwait(false);
        return Response(report.Status == HealthStatus.Unhealthy ? ServingStatus.NotServing : ServingStatus.Serving);
    }

    public override async IAsyncEnumerable<HealthCheckResponse> WatchAsync(HealthCheckRequest request, RequestContext context)
    {
        using var watching = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, lifetime.ApplicationStopping);
        (HealthReport? latest, Task next) = reports.Current;
        ServingStatus status;
        if (!_services.TryGetValue(request.Service, out Func<HealthCheckRegistration, bool>? selects))
        {
            // The names are fixed at start-up: an unknown service stays unknown.
            status = ServingStatus.ServiceUnknown;
        }
        else if (latest is null)
        {
            // No report published yet: run the checks once, so the first answer is not a guess.
            HealthReport now = await checks.CheckHealthAsync(selects, context.CancellationToken).ConfigureAwait(false);
            status = now.Status == HealthStatus.Unhealthy ? ServingStatus.NotServing : ServingStatus.Serving;
        }
        else
        {
            status = StatusIn(latest, selects);
        }

        yield return Response(status);
        while (await ArrivedAsync(next, watching.Token, context.CancellationToken).ConfigureAwait(false))
        {
            (latest, next) = reports.Current;
            if (selects is null || latest is null)
            {
                continue;
            }

            ServingStatus current = StatusIn(latest, selects);
            if (current != status)
            {
                status = current;
                yield return Response(status);
            }
        }
    }

    /// <summary>
    /// Waits for the next report: true when it arrived, false when the application is stopping
    /// (the stream then ends normally); throws when the call itself was cancelled.
    /// </summary>
    private static async Task<bool> ArrivedAsync(Task next, CancellationToken watching, CancellationToken call)
    {
        try
        {
            await next.WaitAsync(watching).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException) when (!call.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>The status of the checks <paramref name="selects"/> picks out of a report of all of them.</summary>
    private ServingStatus StatusIn(HealthReport report, Func<HealthCheckRegistration, bool> selects)
    {
        foreach (HealthCheckRegistration registration in registrations.Value.Registrations)
        {
            if (report.Entries.TryGetValue(registration.Name, out HealthReportEntry entry) &&
                entry.Status == HealthStatus.Unhealthy &&
                selects(registration))
            {
                return ServingStatus.NotServing;
            }
        }

        return ServingStatus.Serving;
    }

    private static HealthCheckResponse Response(ServingStatus status) => new() { Status = status };
}
