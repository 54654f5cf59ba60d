namespace ConnectRpc;

/// <summary>The wire protocols a client can speak. A server answers all of them on the same endpoints.</summary>
public enum Protocol
{
    /// <summary>The Connect protocol: plain HTTP for unary calls (POST or GET), enveloped streams.</summary>
    Connect,

    /// <summary>gRPC over HTTP/2, with HTTP trailers.</summary>
    Grpc,

    /// <summary>gRPC-Web: gRPC framing with trailers in the body, over HTTP/1.1 or HTTP/2.</summary>
    GrpcWeb,

    /// <summary>
    /// gRPC-Web with base64 bodies (<c>application/grpc-web-text</c>), for proxies and browsers
    /// that only pass text. Proto codec only.
    /// </summary>
    GrpcWebText,
}

/// <summary>How messages are encoded on the wire.</summary>
public enum Codec
{
    /// <summary>Binary protobuf (<c>application/proto</c>, <c>application/grpc+proto</c>).</summary>
    Proto,

    /// <summary>The protobuf JSON mapping (<c>application/json</c>, <c>application/grpc+json</c>).</summary>
    Json,
}
