using Google.Protobuf;
using Microsoft.AspNetCore.Routing;
using V1 = Grpc.Reflection.V1;
using V1Alpha = Grpc.Reflection.V1Alpha;

namespace ConnectRpc.AspNetCore.Reflection;

/// <summary><c>grpc.reflection.v1.ServerReflection</c>: one answer per request, in order, from an index of the mapped services.</summary>
internal sealed class ReflectionV1Service(EndpointDataSource endpoints) : V1.ServerReflectionBase
{
    public override async IAsyncEnumerable<V1.ServerReflectionResponse> ServerReflectionInfoAsync(
        IAsyncEnumerable<V1.ServerReflectionRequest> requests,
        RequestContext context)
    {
        ReflectionIndex index = ReflectionIndex.Create(endpoints);
        var sent = new HashSet<string>(StringComparer.Ordinal);
        await foreach (V1.ServerReflectionRequest request in requests.WithCancellation(context.CancellationToken).ConfigureAwait(false))
        {
            yield return index.Answer(request, sent);
        }
    }
}

/// <summary>
/// <c>grpc.reflection.v1alpha.ServerReflection</c>, which older clients (grpcurl, grpc-dotnet's
/// own) still call. Its messages are v1's under another package, field for field, so each
/// request is read as v1 and each answer written back through the wire format.
/// </summary>
internal sealed class ReflectionV1AlphaService(EndpointDataSource endpoints) : V1Alpha.ServerReflectionBase
{
    public override async IAsyncEnumerable<V1Alpha.ServerReflectionResponse> ServerReflectionInfoAsync(
        IAsyncEnumerable<V1Alpha.ServerReflectionRequest> requests,
        RequestContext context)
    {
        ReflectionIndex index = ReflectionIndex.Create(endpoints);
        var sent = new HashSet<string>(StringComparer.Ordinal);
        await foreach (V1Alpha.ServerReflectionRequest request in requests.WithCancellation(context.CancellationToken).ConfigureAwait(false))
        {
            V1.ServerReflectionResponse answer = index.Answer(V1.ServerReflectionRequest.Parser.ParseFrom(request.ToByteString()), sent);
            yield return V1Alpha.ServerReflectionResponse.Parser.ParseFrom(answer.ToByteString());
        }
    }
}
