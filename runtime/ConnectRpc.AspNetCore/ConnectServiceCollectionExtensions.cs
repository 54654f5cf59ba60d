using ConnectRpc.AspNetCore;
using ConnectRpc.AspNetCore.Internal;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

// In the namespace of IServiceCollection, as ASP.NET Core's own Add* methods are, so
// Program.cs needs no extra using.
#pragma warning disable IDE0130 // Namespace does not match folder structure
namespace Microsoft.Extensions.DependencyInjection;
#pragma warning restore IDE0130

/// <summary>Registers the Connect server.</summary>
public static class ConnectServiceCollectionExtensions
{
    /// <summary>
    /// Adds what <c>MapConnectService</c> needs. Register service implementations as usual
    /// (<c>AddSingleton</c>, <c>AddScoped</c>…); an implementation that is not registered is
    /// created per call.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the server options (size limits, interceptors).</param>
    /// <returns><paramref name="services"/>, for chaining.</returns>
    public static IServiceCollection AddConnect(this IServiceCollection services, Action<ConnectServerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<ConnectServerOptions>();
        services.AddRouting();

        // One shutdown for the whole server, on the server-wide ShutdownTimeout.
        services.TryAddSingleton(provider => new ServerShutdown(
            provider.GetRequiredService<IOptions<ConnectServerOptions>>().Value.ShutdownTimeout,
            provider.GetService<IOptions<HostOptions>>()?.Value.ShutdownTimeout ?? TimeSpan.FromSeconds(30),
            provider.GetService<IHostApplicationLifetime>(),
            provider.GetService<TimeProvider>() ?? TimeProvider.System,
            provider.GetRequiredService<ILoggerFactory>().CreateLogger("ConnectRpc.AspNetCore")));
        if (configure is not null)
        {
            services.Configure(configure);
        }

        return services;
    }
}
