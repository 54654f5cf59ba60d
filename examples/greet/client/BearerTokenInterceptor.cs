using ConnectRpc;

namespace Greet.Client;

/// <summary>
/// An example client interceptor: adds <c>authorization: Bearer &lt;token&gt;</c> to every call
/// of a client, whatever its RPC kind. Register it in
/// <see cref="ConnectClientOptions.Interceptors"/>.
/// </summary>
internal sealed class BearerTokenInterceptor(string token) : ClientInterceptor
{
    public override ClientCall<TRequest, TResponse> Intercept<TRequest, TResponse>(ClientCall<TRequest, TResponse> call)
    {
        // Request headers may change until the request starts; returning the call unchanged
        // is all an interceptor that only adds headers needs.
        call.RequestHeaders["authorization"] = "Bearer " + token;
        return call;
    }
}
