using ConnectRpc.AspNetCore;
using ConnectRpc.AspNetCore.Health;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;

// In the namespace of IServiceCollection, as ASP.NET Core's own Add* methods are.
#pragma warning disable IDE0130 // Namespace does not match folder structure
namespace Microsoft.Extensions.DependencyInjection;
#pragma warning restore IDE0130

/// <summary>Registers <c>grpc.health.v1.Health</c> on ASP.NET Core health checks.</summary>
public static class ConnectHealthCheckServiceCollectionExtensions
{
    /// <summary>
    /// Registers ASP.NET Core health checks (<c>AddHealthChecks()</c>) and what
    /// <c>MapConnectHealthService()</c> needs. Add checks to the builder returned.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Maps service names to the checks that decide their status; by default only <c>""</c>, decided by every check.</param>
    /// <returns>The health checks builder, for <c>AddCheck</c>.</returns>
    public static IHealthChecksBuilder AddConnectHealthChecks(this IServiceCollection services, Action<ConnectHealthCheckOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        IHealthChecksBuilder builder = services.AddHealthChecks();
        services.AddOptions<ConnectHealthCheckOptions>();
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.TryAddSingleton<HealthReports>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHealthCheckPublisher, HealthReports>(static s => s.GetRequiredService<HealthReports>()));
        services.TryAddSingleton<HealthService>();
        return builder;
    }
}
