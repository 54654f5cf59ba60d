using ConnectRpc.AspNetCore.Reflection;
using Microsoft.AspNetCore.Routing;
using V1 = Grpc.Reflection.V1;
using V1Alpha = Grpc.Reflection.V1Alpha;

// In the namespace of IEndpointRouteBuilder, as ASP.NET Core's own Map* methods are.
#pragma warning disable IDE0130 // Namespace does not match folder structure
namespace Microsoft.AspNetCore.Builder;
#pragma warning restore IDE0130

/// <summary>Serves gRPC server reflection.</summary>
public static class ConnectReflectionEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Serves <c>grpc.reflection.v1.ServerReflection</c> and <c>grpc.reflection.v1alpha.ServerReflection</c>
    /// over Connect, gRPC and gRPC-Web (a bidirectional stream, so over HTTP/2), so that
    /// <c>buf curl</c>, grpcurl and other reflection clients can list, describe and call the
    /// application's services without a schema. Every service mapped with <c>MapConnectService</c>
    /// (whenever it is mapped) is listed, and the .proto files declaring it, with all they import,
    /// can be fetched by name or by any symbol they declare.
    /// </summary>
    /// <remarks>
    /// Reflection reveals the whole API: require authorization on the builder returned, or in an
    /// interceptor, where that matters. Services generated before <c>BindService</c> set
    /// <c>ServiceBinder.Descriptor</c> are listed by name only.
    /// </remarks>
    /// <param name="endpoints">The application or a route group.</param>
    /// <returns>A builder for the endpoints of both versions.</returns>
    /// <exception cref="InvalidOperationException"><c>AddConnect()</c> was not called.</exception>
    public static IEndpointConventionBuilder MapConnectReflectionService(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        return new ConnectEndpointRouteBuilderExtensions.CompositeConventionBuilder(
        [
            endpoints.MapConnectService<ReflectionV1Service>(V1.IServerReflection.BindService),
            endpoints.MapConnectService<ReflectionV1AlphaService>(V1Alpha.IServerReflection.BindService),
        ]);
    }
}
