using ConnectRpc;
using ConnectRpc.AspNetCore.Internal;
using Microsoft.AspNetCore.Http;

// In the namespace of IHttpClientBuilder, beside AddConnectClient.
#pragma warning disable IDE0130 // Namespace does not match folder structure
namespace Microsoft.Extensions.DependencyInjection;
#pragma warning restore IDE0130

/// <summary>Call-context propagation for clients registered with <c>AddConnectClient</c>.</summary>
public static class ConnectCallContextPropagationExtensions
{
    /// <summary>
    /// Makes every call of the client that is made inside a Connect server call (in a handler
    /// or an interceptor) inherit that call's deadline (the earlier of the two wins) and its
    /// cancellation (the client disconnecting, say). Calls made elsewhere are unaffected.
    /// Registers <see cref="IHttpContextAccessor"/>, through which the server call is found.
    /// </summary>
    /// <example><c>services.AddConnectClient&lt;GreetServiceClient&gt;(o =&gt; …).EnableCallContextPropagation();</c></example>
    /// <param name="builder">The builder <c>AddConnectClient</c> returned.</param>
    /// <returns><paramref name="builder"/>, for chaining.</returns>
    public static IHttpClientBuilder EnableCallContextPropagation(this IHttpClientBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddHttpContextAccessor();
        builder.Services.AddOptions<ConnectClientFactoryOptions>(builder.Name)
            .Configure<IHttpContextAccessor>((options, accessor) =>
                options.ParentContext = () => accessor.HttpContext?.Features.Get<HttpServerCall>()?.Context);
        return builder;
    }
}
