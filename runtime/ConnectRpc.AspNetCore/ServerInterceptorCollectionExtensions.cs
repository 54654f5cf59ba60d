using System.Diagnostics.CodeAnalysis;
using ConnectRpc.AspNetCore.Internal;

namespace ConnectRpc.AspNetCore;

/// <summary>Adds server interceptors that dependency injection makes.</summary>
public static class ServerInterceptorCollectionExtensions
{
    /// <summary>
    /// Adds an interceptor of type <typeparamref name="TInterceptor"/>, made for each call from
    /// the request's services: with its registered lifetime when it is registered (a scoped
    /// interceptor lives as long as the request), otherwise a new instance per call whose
    /// constructor gets its arguments from those services, disposed after the call.
    /// </summary>
    /// <typeparam name="TInterceptor">The interceptor type.</typeparam>
    /// <param name="interceptors">The server options' interceptors (or a service's).</param>
    public static void Add<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TInterceptor>(this IList<ServerInterceptor> interceptors)
        where TInterceptor : ServerInterceptor
    {
        ArgumentNullException.ThrowIfNull(interceptors);
        interceptors.Add(new ActivatedServerInterceptor<TInterceptor>());
    }
}
