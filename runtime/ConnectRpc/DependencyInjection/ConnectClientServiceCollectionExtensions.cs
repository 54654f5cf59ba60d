using System.Diagnostics.CodeAnalysis;
using ConnectRpc;
using ConnectRpc.Internal;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

// In the namespace of IServiceCollection, as the framework's own Add* methods are.
#pragma warning disable IDE0130 // Namespace does not match folder structure
namespace Microsoft.Extensions.DependencyInjection;
#pragma warning restore IDE0130

/// <summary>Registers generated Connect clients with dependency injection, on <see cref="System.Net.Http.IHttpClientFactory"/>.</summary>
public static class ConnectClientServiceCollectionExtensions
{
    /// <summary>
    /// Registers <typeparamref name="TClient"/> (a generated client) as a transient service,
    /// sending through a named <see cref="HttpClient"/> of <see cref="System.Net.Http.IHttpClientFactory"/>,
    /// so handlers are pooled and recycled (DNS changes are seen) and the returned builder adds
    /// delegating handlers. The name is <typeparamref name="TClient"/>'s full name.
    /// </summary>
    /// <example><c>services.AddConnectClient&lt;GreetServiceClient&gt;(o =&gt; o.BaseAddress = new("https://api.acme.com"));</c></example>
    /// <typeparam name="TClient">The client type; it has a constructor that takes a <see cref="CallInvoker"/>.</typeparam>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the base address and the client options.</param>
    /// <returns>The builder of the named HttpClient, for handlers and further configuration.</returns>
    public static IHttpClientBuilder AddConnectClient<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TClient>(
        this IServiceCollection services,
        Action<ConnectClientFactoryOptions> configure)
        where TClient : class
    {
        ArgumentNullException.ThrowIfNull(configure);
        return services.AddConnectClient<TClient>(typeof(TClient).FullName!, (_, options) => configure(options));
    }

    /// <summary>
    /// Registers <typeparamref name="TClient"/> as <see cref="AddConnectClient{TClient}(IServiceCollection, Action{ConnectClientFactoryOptions})"/>
    /// does, with options configured from the application's services (its configuration, say).
    /// </summary>
    /// <typeparam name="TClient">The client type; it has a constructor that takes a <see cref="CallInvoker"/>.</typeparam>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the base address and the client options.</param>
    /// <returns>The builder of the named HttpClient.</returns>
    public static IHttpClientBuilder AddConnectClient<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TClient>(
        this IServiceCollection services,
        Action<IServiceProvider, ConnectClientFactoryOptions> configure)
        where TClient : class
    {
        ArgumentNullException.ThrowIfNull(configure);
        return services.AddConnectClient<TClient>(typeof(TClient).FullName!, configure);
    }

    /// <summary>
    /// Registers <typeparamref name="TClient"/> on the HttpClient and options named
    /// <paramref name="name"/>. Clients registered under one name share its HttpClient
    /// (handlers included) and its options; each registration's <paramref name="configure"/> adds to them.
    /// </summary>
    /// <typeparam name="TClient">The client type; it has a constructor that takes a <see cref="CallInvoker"/>.</typeparam>
    /// <param name="services">The service collection.</param>
    /// <param name="name">The name of the HttpClient and of the options.</param>
    /// <param name="configure">Sets the base address and the client options; null when another registration of the name does.</param>
    /// <returns>The builder of the named HttpClient.</returns>
    public static IHttpClientBuilder AddConnectClient<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TClient>(
        this IServiceCollection services,
        string name,
        Action<IServiceProvider, ConnectClientFactoryOptions>? configure = null)
        where TClient : class
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrEmpty(name);
        IHttpClientBuilder builder = services.AddHttpClient(name);
        OptionsBuilder<ConnectClientFactoryOptions> options = services.AddOptions<ConnectClientFactoryOptions>(name);
        if (configure is not null)
        {
            options.Configure<IServiceProvider>((o, provider) => configure(provider, o));
        }

        services.TryAddTransient(provider => Create<TClient>(provider, name));
        services.TryAddSingleton(provider => new ConnectClientFactory(provider));
        return builder;
    }

    internal static TClient Create<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TClient>(IServiceProvider services, string name)
        where TClient : class
    {
        ConnectClientFactoryOptions options = services.GetRequiredService<IOptionsMonitor<ConnectClientFactoryOptions>>().Get(name);
        Uri baseAddress = options.BaseAddress ?? throw new InvalidOperationException(
            $"The Connect client '{name}' has no BaseAddress: set it in AddConnectClient's options.");

        HttpClient http = services.GetRequiredService<IHttpClientFactory>().CreateClient(name);
        http.BaseAddress = baseAddress;
        // Deadlines are per call (ConnectClientOptions.Timeout); HttpClient's would cut streams short.
        http.Timeout = Timeout.InfiniteTimeSpan;

        ConnectClientOptions callOptions = options.Clone();
        callOptions.LoggerFactory ??= services.GetService<ILoggerFactory>();
        IList<ClientInterceptor> interceptors = callOptions.Interceptors;
        for (int i = 0; i < interceptors.Count; i++)
        {
            if (interceptors[i] is IActivatedClientInterceptor activated)
            {
                interceptors[i] = activated.Activate(services);
            }
        }

        return ActivatorUtilities.CreateInstance<TClient>(services, new CallInvoker(http, callOptions));
    }
}
