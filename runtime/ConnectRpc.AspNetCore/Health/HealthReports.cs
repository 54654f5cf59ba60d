using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace ConnectRpc.AspNetCore.Health;

/// <summary>
/// The latest report of ASP.NET Core's health-check publisher (it runs every check each
/// <see cref="HealthCheckPublisherOptions.Period"/>), and a task that completes when the next
/// arrives: what <c>Watch</c> streams wait on, so watchers cost no checks of their own.
/// </summary>
internal sealed class HealthReports : IHealthCheckPublisher
{
    private readonly Lock _lock = new();
    private HealthReport? _latest;
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The latest report (null before the first), and a task that completes when a newer one arrives.</summary>
    public (HealthReport? Latest, Task Next) Current
    {
        get
        {
            lock (_lock)
            {
                return (_latest, _next.Task);
            }
        }
    }

    public Task PublishAsync(HealthReport report, CancellationToken cancellationToken)
    {
        TaskCompletionSource arrived;
        lock (_lock)
        {
            _latest = report;
            arrived = _next;
            _next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        arrived.SetResult();
        return Task.CompletedTask;
    }
}
