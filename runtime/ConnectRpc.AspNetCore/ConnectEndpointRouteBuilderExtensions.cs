using System.Diagnostics.CodeAnalysis;
using ConnectRpc;
using ConnectRpc.AspNetCore;
using ConnectRpc.AspNetCore.Internal;
using ConnectRpc.Internal;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

// In the namespace of IEndpointRouteBuilder, as ASP.NET Core's own Map* methods are.
#pragma warning disable IDE0130 // Namespace does not match folder structure
namespace Microsoft.AspNetCore.Builder;
#pragma warning restore IDE0130

/// <summary>Maps generated Connect services to endpoints.</summary>
public static class ConnectEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Serves every method that <paramref name="bind"/> binds, one endpoint per procedure
    /// path (such as <c>/greet.v1.GreetService/Greet</c>).
    /// </summary>
    /// <example><c>app.MapConnectService&lt;GreetService&gt;(IGreetService.BindService);</c></example>
    /// <typeparam name="TService">
    /// The implementation. It is resolved from the request's services with the lifetime it
    /// was registered with; when it is not registered, one is created per call (and disposed after).
    /// </typeparam>
    /// <param name="endpoints">The application or a route group.</param>
    /// <param name="bind">The generated <c>BindService</c> method of a service interface.</param>
    /// <returns>A builder for all the service's endpoints, for <c>RequireAuthorization()</c>, CORS and the like.</returns>
    /// <exception cref="InvalidOperationException"><c>AddConnect()</c> was not called.</exception>
    public static IEndpointConventionBuilder MapConnectService<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TService>(
        this IEndpointRouteBuilder endpoints,
        Action<ServiceBinder<TService>> bind)
        where TService : class
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        return Map(endpoints, bind, ServerOptions(endpoints.ServiceProvider));
    }

    /// <summary>
    /// Serves a service as <see cref="MapConnectService{TService}(IEndpointRouteBuilder, Action{ServiceBinder{TService}})"/>
    /// does, with options of its own: they start as a copy of the server's (<c>AddConnect</c>),
    /// and <paramref name="configure"/> changes them for this service alone. Interceptors added
    /// here run inside the server's.
    /// </summary>
    /// <example><c>app.MapConnectService&lt;GreetService&gt;(IGreetService.BindService, o =&gt; o.Interceptors.Add&lt;AuditInterceptor&gt;());</c></example>
    /// <typeparam name="TService">The implementation, resolved as for the other overload.</typeparam>
    /// <param name="endpoints">The application or a route group.</param>
    /// <param name="bind">The generated <c>BindService</c> method of a service interface.</param>
    /// <param name="configure">Changes this service's copy of the server options.</param>
    /// <returns>A builder for all the service's endpoints.</returns>
    /// <exception cref="InvalidOperationException"><c>AddConnect()</c> was not called.</exception>
    public static IEndpointConventionBuilder MapConnectService<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TService>(
        this IEndpointRouteBuilder endpoints,
        Action<ServiceBinder<TService>> bind,
        Action<ConnectServerOptions> configure)
        where TService : class
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(configure);
        ConnectServerOptions options = ServerOptions(endpoints.ServiceProvider).Clone();
        configure(options);
        return Map(endpoints, bind, options);
    }

    private static ConnectServerOptions ServerOptions(IServiceProvider services) =>
        services.GetService<IOptions<ConnectServerOptions>>()?.Value
            ?? throw new InvalidOperationException(
                "The Connect server is not registered: call builder.Services.AddConnect() before MapConnectService.");

    private static CompositeConventionBuilder Map<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TService>(
        IEndpointRouteBuilder endpoints,
        Action<ServiceBinder<TService>> bind,
        ConnectServerOptions options)
        where TService : class
    {
        ArgumentNullException.ThrowIfNull(bind);
        IServiceProvider services = endpoints.ServiceProvider;
        ILogger logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("ConnectRpc.AspNetCore");
        // The one clock of every deadline: the application's TimeProvider when it registers one.
        TimeProvider time = services.GetService<TimeProvider>() ?? TimeProvider.System;
        ServerShutdown shutdown = services.GetRequiredService<ServerShutdown>();

        var binder = new ServiceBinder<TService>();
        bind(binder);
        if (binder.Methods.Count == 0)
        {
            throw new InvalidOperationException($"{typeof(TService)} binds no methods.");
        }

        ServiceActivator<TService> activator = ServiceActivator<TService>.Create(services);
        var builders = new List<IEndpointConventionBuilder>(binder.Methods.Count);
        foreach (ServerMethod<TService> method in binder.Methods)
        {
            var endpoint = new ConnectEndpoint<TService>(method, activator, options, time, shutdown, logger);
            IEndpointConventionBuilder builder = endpoints
                .Map(method.Method.Procedure, endpoint.HandleAsync)
                .WithDisplayName("Connect " + method.Method.Procedure)
                .WithMetadata(method.Method);
            if (binder.Descriptor is { } descriptor)
            {
                builder.WithMetadata(descriptor); // what MapConnectReflectionService serves
            }

            builders.Add(builder);
        }

        return new CompositeConventionBuilder(builders);
    }

    /// <summary>Applies conventions to every endpoint of a service.</summary>
    internal sealed class CompositeConventionBuilder(List<IEndpointConventionBuilder> builders) : IEndpointConventionBuilder
    {
        public void Add(Action<EndpointBuilder> convention)
        {
            foreach (IEndpointConventionBuilder builder in builders)
            {
                builder.Add(convention);
            }
        }

        public void Finally(Action<EndpointBuilder> finallyConvention)
        {
            foreach (IEndpointConventionBuilder builder in builders)
            {
                builder.Finally(finallyConvention);
            }
        }
    }
}
