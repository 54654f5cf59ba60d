using System.Diagnostics;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Google.Protobuf;

namespace ConnectRpc.Internal;

/// <summary>
/// Runs one client call over a protocol's <see cref="ClientCall{TRequest, TResponse}"/>:
/// deadline and cancellation, request pumping, response cardinality, error mapping and
/// <see cref="ResponseMetadata"/> reporting. Every protocol shares this code.
/// </summary>
internal sealed class ClientCallRunner<TRequest, TResponse>
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    private readonly ClientCallSettings _settings;
    private readonly Method<TRequest, TResponse> _method;
    private readonly Headers _headers;
    private readonly TimeSpan? _timeout;
    private readonly ResponseMetadata? _scope;

    public ClientCallRunner(ClientCallSettings settings, Method<TRequest, TResponse> method, Headers? headers, TimeSpan? timeout, ResponseMetadata? scope)
    {
        _settings = settings;
        _method = method;
        _headers = headers ?? Headers.Empty;
        _timeout = timeout ?? settings.DefaultTimeout;
        _scope = scope;
    }

    /// <summary>Unary and client streaming: exactly one response message.</summary>
    public async Task<TResponse> RunSingleResponseAsync(RequestSource<TRequest> requests, CancellationToken cancellationToken)
    {
        using CallLifetime lifetime = _settings.StartLifetime(_timeout, cancellationToken);
        ObservedCall trace = ObservedCall.Start(_settings, _method, _headers);
        ClientCall<TRequest, TResponse>? call = null;
        Task sending = Task.CompletedTask;
        ConnectException? failure = null;
        try
        {
            call = await StartAsync(lifetime).ConfigureAwait(false);
            sending = await SendAsync(call, requests, lifetime).ConfigureAwait(false);
            TResponse response = await call.ReceiveAsync(lifetime.Token).ConfigureAwait(false)
                ?? throw new ConnectException(Code.Unimplemented, $"protocol error: no response message for {_method.Kind} method {_method.Procedure}");
            if (await call.ReceiveAsync(lifetime.Token).ConfigureAwait(false) is not null)
            {
                throw new ConnectException(Code.Unimplemented, $"protocol error: more than one response message for {_method.Kind} method {_method.Procedure}");
            }

            lifetime.ThrowIfSendFailed(_method);
            _scope?.OnCompleted(call.ResponseHeaders, call.ResponseTrailers);
            return response;
        }
        catch (Exception ex)
        {
            failure = Fail(call, ex, lifetime);
            throw failure;
        }
        finally
        {
            await EndAsync(call, sending, lifetime).ConfigureAwait(false);
            trace.End(_settings, _method, failure, call);
        }
    }

    /// <summary>Server and bidi streaming: zero or more response messages.</summary>
    public async IAsyncEnumerable<TResponse> RunStreamAsync(
        RequestSource<TRequest> requests,
        CancellationToken callToken,
        [EnumeratorCancellation] CancellationToken enumeratorToken = default)
    {
        using CancellationTokenSource? both = enumeratorToken.CanBeCanceled && callToken.CanBeCanceled
            ? CancellationTokenSource.CreateLinkedTokenSource(callToken, enumeratorToken)
            : null;
        using CallLifetime lifetime = _settings.StartLifetime(
            _timeout, both?.Token ?? (enumeratorToken.CanBeCanceled ? enumeratorToken : callToken));
        ObservedCall trace = ObservedCall.Start(_settings, _method, _headers);
        ClientCall<TRequest, TResponse>? call = null;
        Task sending = Task.CompletedTask;
        ConnectException? failure = null;
        bool headersReported = false;
        bool ended = false;
        try
        {
            while (true)
            {
                TResponse? message;
                try
                {
                    if (call is null)
                    {
                        call = await StartAsync(lifetime).ConfigureAwait(false);
                        sending = await SendAsync(call, requests, lifetime).ConfigureAwait(false);
                    }

                    message = await call.ReceiveAsync(lifetime.Token).ConfigureAwait(false);
                    if (message is null)
                    {
                        lifetime.ThrowIfSendFailed(_method);
                    }
                }
                catch (Exception ex)
                {
                    ended = true;
                    failure = Fail(call, ex, lifetime);
                    throw failure;
                }

                if (!headersReported)
                {
                    headersReported = true;
                    _scope?.OnHeaders(call.ResponseHeaders);
                }

                if (message is null)
                {
                    ended = true;
                    _scope?.OnCompleted(call.ResponseHeaders, call.ResponseTrailers);
                    yield break;
                }

                yield return message;
            }
        }
        finally
        {
            if (!ended)
            {
                // Abandoned early (break or dispose): cancel the call; trailers stay empty.
                lifetime.Abandon();
                _scope?.OnCompleted(call?.ResponseHeaders ?? Headers.Empty, Headers.Empty);
                failure = new ConnectException(Code.Canceled, "The caller stopped reading the responses.");
            }

            await EndAsync(call, sending, lifetime).ConfigureAwait(false);
            trace.End(_settings, _method, failure, call);
        }
    }

    private async ValueTask<ClientCall<TRequest, TResponse>> StartAsync(CallLifetime lifetime)
    {
        lifetime.ThrowIfExpired();
        // Each call gets its own copy of the headers, so interceptors can change them freely.
        var headers = new Headers();
        headers.AddRangeUnchecked(_headers);
        ClientCall<TRequest, TResponse> transportCall = _settings.Transport.CreateCall(_method, new ClientCallInfo(headers, lifetime));
        ClientCall<TRequest, TResponse> call = transportCall;
        try
        {
            IReadOnlyList<ClientInterceptor> interceptors = _settings.Interceptors;
            for (int i = interceptors.Count - 1; i >= 0; i--)
            {
                call = interceptors[i].Intercept(call) ?? throw new InvalidOperationException($"{interceptors[i].GetType()}.Intercept returned null.");
            }

            return call;
        }
        catch
        {
            await transportCall.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Starts sending. A single request is sent before anything is received, so a failure to
    /// send (a message over the size limit, say) is the call's error; a stream is pumped
    /// concurrently with receiving (full duplex), and the returned task is the pump.
    /// </summary>
    private static async ValueTask<Task> SendAsync(ClientCall<TRequest, TResponse> call, RequestSource<TRequest> requests, CallLifetime lifetime)
    {
        if (requests.Stream is { } stream)
        {
            return PumpAsync(call, stream, lifetime);
        }

        await call.SendAsync(requests.Single!, lifetime.Token).ConfigureAwait(false);
        await call.CompleteSendAsync(lifetime.Token).ConfigureAwait(false);
        return Task.CompletedTask;
    }

    private static async Task PumpAsync(ClientCall<TRequest, TResponse> call, IAsyncEnumerable<TRequest> requests, CallLifetime lifetime)
    {
        await Task.Yield(); // let the receive side start: responses may come before the first request
        IAsyncEnumerator<TRequest> source = requests.GetAsyncEnumerator(lifetime.Token);
        try
        {
            while (true)
            {
                TRequest? next;
                try
                {
                    if (!await source.MoveNextAsync().ConfigureAwait(false))
                    {
                        break;
                    }

                    next = source.Current ?? throw new InvalidOperationException("The request stream yielded a null message.");
                }
                catch (Exception ex) when (!lifetime.Token.IsCancellationRequested)
                {
                    // The application's own request source failed: the call cannot go on.
                    lifetime.FailRequestSource(ex);
                    return;
                }

                await call.SendAsync(next, lifetime.Token).ConfigureAwait(false);
            }

            await call.CompleteSendAsync(lifetime.Token).ConfigureAwait(false);
        }
        catch (Exception) when (lifetime.Token.IsCancellationRequested)
        {
            // The call ended first; the receive side reports why.
        }
        catch (MessageEncodeException ex)
        {
            // This client cannot encode a request message: the call fails with that (internal).
            lifetime.FailSend(ex);
        }
        catch (ConnectException ex) when (!HttpFailures.IsHttpFailure(ex))
        {
            // The server closed the request stream; its status arrives on the receive side.
        }
        catch (Exception ex)
        {
            // The transport failed to send. The receive side normally fails too, with the
            // server's status if there is one; if it ends cleanly instead, this is the error.
            lifetime.RecordSendFailure(ex);
        }
        finally
        {
            await source.DisposeAsync().ConfigureAwait(false);
        }
    }

    private ConnectException Fail(ClientCall<TRequest, TResponse>? call, Exception ex, CallLifetime lifetime)
    {
        ConnectException error = lifetime.Translate(ex, _method);
        // The call's own view of the metadata is the truth, whoever created the exception.
        error.SetReceivedMetadata(
            call?.ResponseHeaders ?? Headers.CreateReceived(0),
            call?.ResponseTrailers ?? Headers.CreateReceived(0));

        _scope?.OnCompleted(error.Headers, error.Trailers);
        return error;
    }

    private static async Task EndAsync(ClientCall<TRequest, TResponse>? call, Task sending, CallLifetime lifetime)
    {
        lifetime.Abandon();
        try
        {
            await sending.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Send failures were already reported through the receive side or FailSend.
        }

        if (call is not null)
        {
            await call.DisposeAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>
/// What every call of one <see cref="CallInvoker"/> shares, fixed when the invoker is made:
/// the protocol's transport, the interceptors, the default timeout and the one clock of
/// every deadline and timeout header.
/// </summary>
internal sealed class ClientCallSettings(IClientTransport transport, Uri baseAddress, ConnectClientOptions options, TimeProvider time)
{
    /// <summary>The client side's spans and call durations.</summary>
    public static RpcTelemetry Telemetry { get; } = new(typeof(ClientCallSettings).Assembly, server: false);

    public IClientTransport Transport { get; } = transport;

    /// <summary>The interceptors, the first outermost.</summary>
    public IReadOnlyList<ClientInterceptor> Interceptors { get; } = options.Interceptors.Any(i => i is IActivatedClientInterceptor)
        ? throw new ArgumentException("Interceptors.Add<T>() needs a client made by AddConnectClient, which makes the interceptor from the application's services.", nameof(options))
        : [.. options.Interceptors];

    /// <summary>The timeout of a call that names none, or null.</summary>
    public TimeSpan? DefaultTimeout { get; } = options.Timeout;

    public TimeProvider Time { get; } = time;

    public Protocol Protocol { get; } = options.Protocol;

    /// <summary>The server's host, as the conventions' <c>server.address</c>.</summary>
    public string ServerAddress { get; } = baseAddress.IdnHost;

    public int ServerPort { get; } = baseAddress.Port;

    public IList<string> TracedRequestMetadata { get; } = options.TracedRequestMetadata;

    public IList<string> TracedResponseMetadata { get; } = options.TracedResponseMetadata;

    /// <summary>The per-call debug logger, or null.</summary>
    public ILogger? Logger { get; } = options.LoggerFactory?.CreateLogger("ConnectRpc.Client");

    private Func<RequestContext?>? ParentContext { get; } = options.ParentContext;

    /// <summary>
    /// The lifetime of a call: its timeout and the caller's token, bounded by the server call it
    /// is made inside of when the client propagates call context (the earlier deadline wins, and
    /// the server call's cancellation cancels this call too).
    /// </summary>
    public CallLifetime StartLifetime(TimeSpan? timeout, CancellationToken callerToken)
    {
        if (ParentContext?.Invoke() is not { } parent)
        {
            return new CallLifetime(Time, timeout, callerToken);
        }

        if (parent.Timeout is { } left && (timeout is null || left < timeout))
        {
            timeout = left;
        }

        return new CallLifetime(Time, timeout, callerToken, parent.CancellationToken);
    }
}

/// <summary>
/// What the client observes of a call: its span and call duration when anyone listens, and
/// its debug logs when the logger asks for them. A default value records nothing.
/// </summary>
internal readonly struct ObservedCall
{
    private readonly Activity? _activity;
    private readonly long _start;

    private ObservedCall(Activity? activity, long start)
    {
        _activity = activity;
        _start = start;
    }

    public static ObservedCall Start(ClientCallSettings settings, Method method, Headers requestHeaders)
    {
        RpcTelemetry telemetry = ClientCallSettings.Telemetry;
        bool traced = telemetry.Enabled;
        bool logged = settings.Logger?.IsEnabled(LogLevel.Debug) == true;
        if (!traced && !logged)
        {
            return default;
        }

        if (logged)
        {
            ClientLog.CallStarted(settings.Logger!, method.Procedure, settings.Protocol);
        }

        Activity? activity = traced
            ? telemetry.StartCall(method, settings.Protocol, settings.ServerAddress, settings.ServerPort, requestHeaders, settings.TracedRequestMetadata)
            : null;
        return new ObservedCall(activity, Stopwatch.GetTimestamp());
    }

    /// <summary>Ends the span, records the duration and logs the end: the call's outcome and what the server sent back.</summary>
    public void End<TRequest, TResponse>(ClientCallSettings settings, Method method, ConnectException? failure, ClientCall<TRequest, TResponse>? call)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        if (_start == 0)
        {
            return;
        }

        if (settings.Logger is { } logger && logger.IsEnabled(LogLevel.Debug))
        {
            ClientLog.CallEnded(logger, method.Procedure, RpcTelemetry.Outcome(failure), Stopwatch.GetElapsedTime(_start).TotalMilliseconds);
        }

        ClientCallSettings.Telemetry.EndCall(
            _activity,
            _start,
            method,
            settings.Protocol,
            settings.ServerAddress,
            settings.ServerPort,
            failure,
            failure?.Headers ?? call?.ResponseHeaders,
            failure?.Trailers ?? call?.ResponseTrailers,
            settings.TracedResponseMetadata);
    }
}

/// <summary>The client's per-call debug logs, with stable event ids.</summary>
internal static partial class ClientLog
{
    [LoggerMessage(1, LogLevel.Debug, "Starting call {Procedure} over {Protocol}.")]
    public static partial void CallStarted(ILogger logger, string procedure, Protocol protocol);

    [LoggerMessage(2, LogLevel.Debug, "Call {Procedure} ended: {Code} after {ElapsedMilliseconds:0.0} ms.")]
    public static partial void CallEnded(ILogger logger, string procedure, string code, double elapsedMilliseconds);
}

/// <summary>
/// What a call sends: the one request of a unary or server-streaming call, or the request
/// stream of a client-streaming or bidi call.
/// </summary>
internal readonly struct RequestSource<T>
    where T : class
{
    private RequestSource(T? single, IAsyncEnumerable<T>? stream)
    {
        Single = single;
        Stream = stream;
    }

    public T? Single { get; }

    public IAsyncEnumerable<T>? Stream { get; }

    public static RequestSource<T> One(T message) => new(message, null);

    public static RequestSource<T> Many(IAsyncEnumerable<T> messages) => new(null, messages);
}

/// <summary>The responses of a streaming call; enumerating starts the call, once.</summary>
internal sealed class ResponseStream<TRequest, TResponse>(
    ClientCallRunner<TRequest, TResponse> runner,
    RequestSource<TRequest> requests,
    CancellationToken cancellationToken) : IAsyncEnumerable<TResponse>
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    private int _started;

    public IAsyncEnumerator<TResponse> GetAsyncEnumerator(CancellationToken enumeratorToken = default)
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("The responses of a streaming call can be enumerated only once; call the method again for a new call.");
        }

        return runner.RunStreamAsync(requests, cancellationToken, enumeratorToken).GetAsyncEnumerator(enumeratorToken);
    }
}
