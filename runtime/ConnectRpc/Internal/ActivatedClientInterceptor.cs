using System.Diagnostics.CodeAnalysis;
using Google.Protobuf;
using Microsoft.Extensions.DependencyInjection;

namespace ConnectRpc.Internal;

/// <summary>A client interceptor that stands for one dependency injection makes when the client is created.</summary>
internal interface IActivatedClientInterceptor
{
    ClientInterceptor Activate(IServiceProvider services);
}

/// <summary>The place of a <typeparamref name="TInterceptor"/> in the options, until the client factory makes it.</summary>
internal sealed class ActivatedClientInterceptor<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TInterceptor>
    : ClientInterceptor, IActivatedClientInterceptor
    where TInterceptor : ClientInterceptor
{
    public ClientInterceptor Activate(IServiceProvider services) =>
        services.GetService<TInterceptor>() ?? ActivatorUtilities.CreateInstance<TInterceptor>(services);

    public override ClientCall<TRequest, TResponse> Intercept<TRequest, TResponse>(ClientCall<TRequest, TResponse> call) =>
        throw new InvalidOperationException($"{typeof(TInterceptor)} was added with Interceptors.Add<T>(), which needs a client made by AddConnectClient.");
}
