using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.DependencyInjection;

namespace ConnectRpc.AspNetCore.Internal;

/// <summary>Runs a <typeparamref name="TInterceptor"/> made for each call from the request's services.</summary>
internal sealed class ActivatedServerInterceptor<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TInterceptor> : ServerInterceptor
    where TInterceptor : ServerInterceptor
{
    private ObjectFactory<TInterceptor>? _factory;

    public override async Task InterceptAsync(ServerCall call, ServerCallHandler next)
    {
        IServiceProvider services = HttpServerCall.Of(call).Http.RequestServices;
        if (services.GetService<TInterceptor>() is { } registered)
        {
            await registered.InterceptAsync(call, next).ConfigureAwait(false);
            return;
        }

        // Not registered: made for this call, and disposed after it, as MVC does with its filters.
        _factory ??= ActivatorUtilities.CreateFactory<TInterceptor>([]);
        TInterceptor made = _factory(services, null);
        try
        {
            await made.InterceptAsync(call, next).ConfigureAwait(false);
        }
        finally
        {
            switch (made)
            {
                case IAsyncDisposable asyncDisposable:
                    await asyncDisposable.DisposeAsync().ConfigureAwait(false);
                    break;
                case IDisposable disposable:
                    disposable.Dispose();
                    break;
            }
        }
    }
}
