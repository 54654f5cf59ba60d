using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.DependencyInjection;

namespace ConnectRpc;

/// <summary>
/// Creates clients registered with <c>AddConnectClient</c> by name: for one client type
/// registered under several names (another server, another protocol), where injecting the type
/// can give only one of them. Registered by <c>AddConnectClient</c>.
/// </summary>
public sealed class ConnectClientFactory
{
    private readonly IServiceProvider _services;

    internal ConnectClientFactory(IServiceProvider services) => _services = services;

    /// <summary>A new <typeparamref name="TClient"/> on the HttpClient and options named <paramref name="name"/>.</summary>
    /// <typeparam name="TClient">The client type; it has a constructor that takes a <see cref="CallInvoker"/>.</typeparam>
    /// <param name="name">The name given to <c>AddConnectClient</c>.</param>
    /// <returns>The client.</returns>
    /// <exception cref="InvalidOperationException">No base address was configured under <paramref name="name"/>.</exception>
    public TClient CreateClient<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TClient>(string name)
        where TClient : class
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return ConnectClientServiceCollectionExtensions.Create<TClient>(_services, name);
    }
}
