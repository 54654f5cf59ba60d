using System.Diagnostics.CodeAnalysis;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace ConnectRpc.AspNetCore.Internal;

/// <summary>
/// Gets the service implementation for a call: from DI when it is registered (with its
/// registered lifetime), otherwise a new instance per call made by a factory compiled once.
/// </summary>
internal sealed class ServiceActivator<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TService>
    where TService : class
{
    private readonly ObjectFactory<TService>? _factory;

    private ServiceActivator(ObjectFactory<TService>? factory) => _factory = factory;

    public static ServiceActivator<TService> Create(IServiceProvider services)
    {
        bool registered = services.GetService<IServiceProviderIsService>()?.IsService(typeof(TService)) == true;
        return new ServiceActivator<TService>(registered ? null : ActivatorUtilities.CreateFactory<TService>([]));
    }

    /// <summary>
    /// Whether an instance this activator makes must be disposed after the call: DI disposes
    /// what it made, and an instance of a type that is not disposable needs nothing.
    /// </summary>
    public bool NeedsRelease => _factory is not null &&
        (typeof(IDisposable).IsAssignableFrom(typeof(TService)) || typeof(IAsyncDisposable).IsAssignableFrom(typeof(TService)));

    /// <summary>The instance for this call, and whether the caller must dispose it.</summary>
    public TService Get(HttpContext http, out bool created)
    {
        created = _factory is not null;
        return _factory is null ? http.RequestServices.GetRequiredService<TService>() : _factory(http.RequestServices, null);
    }

    public static ValueTask ReleaseAsync(TService service)
    {
        if (service is IAsyncDisposable asyncDisposable)
        {
            return asyncDisposable.DisposeAsync();
        }

        (service as IDisposable)?.Dispose();
        return ValueTask.CompletedTask;
    }
}
