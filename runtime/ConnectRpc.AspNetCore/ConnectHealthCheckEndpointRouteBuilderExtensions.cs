using ConnectRpc.AspNetCore.Health;
using Grpc.Health.V1;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

// In the namespace of IEndpointRouteBuilder, as ASP.NET Core's own Map* methods are.
#pragma warning disable IDE0130 // Namespace does not match folder structure
namespace Microsoft.AspNetCore.Builder;
#pragma warning restore IDE0130

/// <summary>Serves <c>grpc.health.v1.Health</c>, fed by ASP.NET Core health checks.</summary>
public static class ConnectHealthCheckEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Serves <c>grpc.health.v1.Health</c> (<c>Check</c> and <c>Watch</c>) over Connect, gRPC and
    /// gRPC-Web, as Kubernetes gRPC probes, grpc-health-probe and <c>buf curl</c> call it.
    /// <c>Check</c> runs the service's checks when asked; <c>Watch</c> streams the status, then each
    /// change the health-check publisher finds (every <see cref="HealthCheckPublisherOptions.Period"/>,
    /// 30 s by default), until the client leaves or the application stops.
    /// </summary>
    /// <remarks>
    /// The server's interceptors (<c>ConnectServerOptions.Interceptors</c>) see these calls too:
    /// an interceptor that demands credentials must let probes through
    /// (<c>call.Method.ServiceName == "grpc.health.v1.Health"</c>).
    /// </remarks>
    /// <param name="endpoints">The application or a route group.</param>
    /// <returns>A builder for the service's endpoints.</returns>
    /// <exception cref="InvalidOperationException"><c>AddConnectHealthChecks()</c> or <c>AddConnect()</c> was not called.</exception>
    public static IEndpointConventionBuilder MapConnectHealthService(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        if (endpoints.ServiceProvider.GetService<HealthReports>() is null)
        {
            throw new InvalidOperationException(
                "The Connect health service is not registered: call builder.Services.AddConnectHealthChecks() before MapConnectHealthService.");
        }

        return endpoints.MapConnectService<HealthService>(IHealth.BindService);
    }
}
