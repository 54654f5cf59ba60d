using System.Diagnostics.CodeAnalysis;
using ConnectRpc.Internal;

namespace ConnectRpc;

/// <summary>Adds client interceptors that dependency injection makes.</summary>
public static class ClientInterceptorCollectionExtensions
{
    /// <summary>
    /// Adds an interceptor of type <typeparamref name="TInterceptor"/>, made when a client
    /// registered with <c>AddConnectClient</c> is created: from the application's services
    /// when the type is registered there (with its registered lifetime), otherwise a new
    /// instance whose constructor gets its arguments from those services.
    /// </summary>
    /// <remarks>A client made without <c>AddConnectClient</c> has no services to make it from, and refuses such options.</remarks>
    /// <typeparam name="TInterceptor">The interceptor type.</typeparam>
    /// <param name="interceptors">The options' interceptors.</param>
    public static void Add<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TInterceptor>(this IList<ClientInterceptor> interceptors)
        where TInterceptor : ClientInterceptor
    {
        ArgumentNullException.ThrowIfNull(interceptors);
        interceptors.Add(new ActivatedClientInterceptor<TInterceptor>());
    }
}
