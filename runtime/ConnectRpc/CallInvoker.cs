using System.Runtime.CompilerServices;
using ConnectRpc.Internal;
using Google.Protobuf;

namespace ConnectRpc;

/// <summary>
/// Makes RPC calls for generated clients: one base address, one set of options, one
/// <see cref="HttpClient"/>. Several generated clients may share one invoker.
/// </summary>
/// <remarks>
/// Every failure reaches the caller as a <see cref="ConnectException"/>: cancellation through
/// the token is <see cref="Code.Canceled"/>, an expired timeout <see cref="Code.DeadlineExceeded"/>.
/// </remarks>
public sealed class CallInvoker
{
    // The connection pool every invoker made from a URL shares. Calls go straight to it through
    // an HttpMessageInvoker: HttpClient's extra layer (a linked token source and a state machine
    // per call) buys nothing when there are no client-wide defaults to apply.
    private static readonly Lazy<HttpMessageInvoker> s_sharedInvoker = new(CreateSharedInvoker);

    private readonly ConnectClientOptions _options;
    private readonly ClientCallSettings _settings;

    /// <summary>
    /// Creates an invoker for <paramref name="baseUrl"/> (such as <c>https://api.acme.com</c>,
    /// optionally with a path prefix). All invokers made this way share one connection pool
    /// per process, so creating many does not exhaust sockets.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="baseUrl"/> is not an absolute http or https URL.</exception>
#pragma warning disable RS0026 // Two constructors with optional options: the shape docs/architecture.md#the-user-facing-api gives every generated client; the first parameters differ in type.
    public CallInvoker(string baseUrl, ConnectClientOptions? options = null)
    {
        BaseAddress = ParseBaseUrl(baseUrl);
        _options = options?.Clone() ?? new ConnectClientOptions();
        _settings = new ClientCallSettings(ClientTransports.Create(s_sharedInvoker.Value, BaseAddress, _options), BaseAddress, _options, TimeProvider.System);
    }

    /// <summary>
    /// Creates an invoker over an existing <see cref="HttpClient"/> (for example one from
    /// <c>IHttpClientFactory</c>); its <see cref="HttpClient.BaseAddress"/> is the server's base URL.
    /// </summary>
    /// <remarks>
    /// <see cref="HttpClient.Timeout"/> still applies to every call, streams included; set it
    /// to <see cref="Timeout.InfiniteTimeSpan"/> and use <see cref="ConnectClientOptions.Timeout"/>
    /// for per-call deadlines.
    /// </remarks>
    /// <exception cref="ArgumentException">The client has no absolute http or https base address.</exception>
    public CallInvoker(HttpClient httpClient, ConnectClientOptions? options = null)
#pragma warning restore RS0026
    {
        ArgumentNullException.ThrowIfNull(httpClient);
        BaseAddress = httpClient.BaseAddress is { } address
            ? ParseBaseUrl(address.OriginalString, nameof(httpClient))
            : throw new ArgumentException("The HttpClient needs a BaseAddress: the server's base URL.", nameof(httpClient));
        _options = options?.Clone() ?? new ConnectClientOptions();
        _settings = new ClientCallSettings(ClientTransports.Create(httpClient, BaseAddress, _options), BaseAddress, _options, TimeProvider.System);
    }

    internal CallInvoker(IClientTransport transport, Uri baseAddress, ConnectClientOptions? options, TimeProvider? time = null)
    {
        BaseAddress = baseAddress;
        _options = options?.Clone() ?? new ConnectClientOptions();
        _settings = new ClientCallSettings(transport, BaseAddress, _options, time ?? TimeProvider.System);
    }

    /// <summary>The server's base URL; procedure paths are appended to it.</summary>
    public Uri BaseAddress { get; }

    /// <summary>Calls a unary method.</summary>
    public Task<TResponse> UnaryAsync<TRequest, TResponse>(
        Method<TRequest, TResponse> method,
        TRequest request,
        Headers? headers = null,
        TimeSpan? timeout = null,
        CancellationToken cancellationToken = default)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(request);
        return Runner(method, MethodKind.Unary, headers, timeout)
            .RunSingleResponseAsync(RequestSource<TRequest>.One(request), cancellationToken);
    }

    /// <summary>Calls a server-streaming method; the call starts when the result is enumerated.</summary>
    public IAsyncEnumerable<TResponse> ServerStreamingAsync<TRequest, TResponse>(
        Method<TRequest, TResponse> method,
        TRequest request,
        Headers? headers = null,
        TimeSpan? timeout = null,
        CancellationToken cancellationToken = default)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(request);
        return new ResponseStream<TRequest, TResponse>(
            Runner(method, MethodKind.ServerStreaming, headers, timeout), RequestSource<TRequest>.One(request), cancellationToken);
    }

    /// <summary>Calls a client-streaming method, sending every message of <paramref name="requests"/>.</summary>
    public Task<TResponse> ClientStreamingAsync<TRequest, TResponse>(
        Method<TRequest, TResponse> method,
        IAsyncEnumerable<TRequest> requests,
        Headers? headers = null,
        TimeSpan? timeout = null,
        CancellationToken cancellationToken = default)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(requests);
        return Runner(method, MethodKind.ClientStreaming, headers, timeout).RunSingleResponseAsync(RequestSource<TRequest>.Many(requests), cancellationToken);
    }

    /// <summary>
    /// Calls a bidirectional-streaming method: requests are sent as <paramref name="requests"/>
    /// yields them while responses are received (full duplex, over HTTP/2). The call starts
    /// when the result is enumerated.
    /// </summary>
    /// <remarks>
    /// Over HTTP/1.1 (Connect and gRPC-Web, see <see cref="ConnectClientOptions.HttpVersion"/>)
    /// the call is half-duplex: no response is read until <paramref name="requests"/> has ended.
    /// If <paramref name="requests"/> waits for a response before it ends, the call ends only at
    /// its timeout or cancellation, and its <see cref="ConnectException"/> says it was half-duplex.
    /// </remarks>
    public IAsyncEnumerable<TResponse> BidiStreamingAsync<TRequest, TResponse>(
        Method<TRequest, TResponse> method,
        IAsyncEnumerable<TRequest> requests,
        Headers? headers = null,
        TimeSpan? timeout = null,
        CancellationToken cancellationToken = default)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(requests);
        return new ResponseStream<TRequest, TResponse>(
            Runner(method, MethodKind.BidiStreaming, headers, timeout), RequestSource<TRequest>.Many(requests), cancellationToken);
    }

    /// <summary>The options as the invoker copied them at construction.</summary>
    internal ConnectClientOptions Options => _options;

    /// <summary>
    /// Checks the method and binds a call to the <see cref="ResponseMetadata"/> scope current
    /// now, when the client method is called (not when a stream is later enumerated).
    /// </summary>
    private ClientCallRunner<TRequest, TResponse> Runner<TRequest, TResponse>(
        Method<TRequest, TResponse> method, MethodKind expected, Headers? headers, TimeSpan? timeout)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(method);
        if (method.Kind != expected)
        {
            throw new ArgumentException(
                $"{method.Procedure} is a {method.Kind} method and cannot be called as {expected}.", nameof(method));
        }

        return new ClientCallRunner<TRequest, TResponse>(_settings, method, headers, timeout, ResponseMetadata.Current);
    }

    private static Uri ParseBaseUrl(string baseUrl) => ParseBaseUrl(baseUrl, nameof(baseUrl));

    private static Uri ParseBaseUrl(string baseUrl, string paramName)
    {
        ArgumentNullException.ThrowIfNull(baseUrl, paramName);
        if (!Uri.TryCreate(baseUrl, UriKind.Absolute, out Uri? uri) ||
            (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) ||
            !string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment))
        {
            throw new ArgumentException(
                $"'{baseUrl}' is not a base URL: use an absolute http:// or https:// URL without query or fragment.", paramName);
        }

        // Procedures are appended as "/pkg.Service/Method"; keep the prefix without its trailing slash.
        string text = uri.GetLeftPart(UriPartial.Path).TrimEnd('/');
        return new Uri(text, UriKind.Absolute);
    }

    private static HttpMessageInvoker CreateSharedInvoker() => new(
        new SocketsHttpHandler
        {
            // Recycle connections so DNS changes are seen; keep HTTP/2 streams from queueing
            // behind the server's per-connection limit.
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            EnableMultipleHttp2Connections = true,
            AutomaticDecompression = System.Net.DecompressionMethods.None,
            UseCookies = false,
        },
        disposeHandler: false);
}
