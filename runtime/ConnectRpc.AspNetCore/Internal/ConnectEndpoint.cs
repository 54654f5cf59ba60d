using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using ConnectRpc.Internal;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.Extensions.Logging;

namespace ConnectRpc.AspNetCore.Internal;

/// <summary>
/// The endpoint of one procedure for every protocol: the content type picks Connect, gRPC or
/// gRPC-Web. It checks the HTTP request in connect-go's order (docs/protocols/connect.md "Server
/// rejection order"), then runs the interceptors and the handler and writes the end of the
/// call, error or not, in the protocol's form.
/// </summary>
internal sealed class ConnectEndpoint<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TService>
    where TService : class
{
    private readonly ServerMethod<TService> _method;
    private readonly ServiceActivator<TService> _activator;
    private readonly ServerMethodSettings _settings;
    private readonly ILogger _logger;
    private readonly ServerCallHandler _handler;

    public ConnectEndpoint(ServerMethod<TService> method, ServiceActivator<TService> activator, ConnectServerOptions options, TimeProvider time, ServerShutdown shutdown, ILogger logger)
    {
        _method = method;
        _activator = activator;
        _settings = new ServerMethodSettings(method.Method, options, time, shutdown);
        _logger = logger;

        // The interceptor chain is composed once; a call allocates no delegates. A service that
        // is not disposable needs no step after the method: the method's task is the call's.
        ServerCallHandler handler = activator.NeedsRelease ? InvokeServiceAsync : InvokeService;
        for (int i = options.Interceptors.Count - 1; i >= 0; i--)
        {
            ServerInterceptor interceptor = options.Interceptors[i]
                ?? throw new InvalidOperationException("ConnectServerOptions.Interceptors contains null.");
            ServerCallHandler next = handler;
            handler = call => interceptor.InterceptAsync(call, next);
        }

        _handler = handler;
    }

    public async Task HandleAsync(HttpContext http)
    {
        HttpRequest request = http.Request;
        Method method = _method.Method;

        // Routing matches paths case-insensitively; procedures are case-sensitive (docs/protocols/connect.md#server-rejection-order).
        if (!string.Equals(request.Path.Value, method.Procedure, StringComparison.Ordinal))
        {
            http.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        // The content type decides the protocol, and each protocol reads its own; a rejected
        // request already has its status.
        HttpServerCall? call = GrpcServerCall.Claims(request.ContentType, out GrpcWire wire, out MessageCodec? grpcCodec)
            ? GrpcServerCall.Create(http, _settings, wire, grpcCodec)
            : ConnectServerCall.Create(http, _settings);
        if (call is null)
        {
            return;
        }

        // Once the application stops, a call that still arrives is refused before its handler
        // runs, with HTTP 503: unavailable, which proxies and clients may retry on another
        // instance (ConnectServerOptions.ShutdownTimeout).
        ServerShutdown shutdown = _settings.Shutdown;
        if (!shutdown.TryEnter())
        {
            call.Dispose();
            await ServerShutdown.RefuseAsync(http, grpc: call is GrpcServerCall).ConfigureAwait(false);
            return;
        }

        // The receive limit governs the body instead of Kestrel's (30,000,000 bytes by default):
        // a stream's limit is per message, a unary body may carry one message plus framing and
        // compression overhead. A stream may also idle legitimately: deadlines bound it instead
        // of Kestrel's minimum data rate, which still guards unary bodies.
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = _settings.Streaming ? null : (long)_settings.MaxReceive + MessageFraming.UnaryBodySlack;
        }

        if (_settings.Streaming && http.Features.Get<IHttpMinRequestBodyDataRateFeature>() is { } rate)
        {
            rate.MinDataRate = null;
        }

        // The call's span is a child of the HTTP request's (the current activity), and the
        // current activity of the handler.
        RpcTelemetry telemetry = ServerMethodSettings.Telemetry;
        bool traced = telemetry.Enabled;
        bool logged = _logger.IsEnabled(LogLevel.Debug);
        long start = traced || logged ? Stopwatch.GetTimestamp() : 0;
        if (logged)
        {
            ServerLog.CallStarted(_logger, method.Procedure, call.Context.Protocol);
        }

        // Where a client propagating call context finds this call (EnableCallContextPropagation).
        http.Features.Set(call);

        // The Host header is parsed (and its host name cut out) only for a traced call, and once.
        string? serverAddress = null;
        int? serverPort = null;
        Activity? activity = null;
        if (traced)
        {
            HostString host = request.Host;
            serverAddress = host.Host;
            serverPort = host.Port;
            activity = telemetry.StartCall(method, call.Context.Protocol, serverAddress, serverPort, call.Context.RequestHeaders, _settings.TracedRequestMetadata);
        }

        ConnectException? error = null;
        try
        {
            Task<ConnectException?> handling = RunHandlerAsync(call, http);
            if (!handling.IsCompleted && call.DeadlineToken.CanBeCanceled && await DeadlineFirstAsync(handling, call.DeadlineToken).ConfigureAwait(false))
            {
                // Answered at once, as grpc-dotnet does; the handler's token is canceled by now.
                error = new ConnectException(Code.DeadlineExceeded, "the call exceeded its deadline");
                try
                {
                    await call.AnswerDeadlineAsync(error).ConfigureAwait(false);
                }
                finally
                {
                    await LateHandlerAsync(handling).ConfigureAwait(false);
                }
            }
            else
            {
                error = await handling.ConfigureAwait(false);
                await call.FinishAsync(error).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (http.RequestAborted.IsCancellationRequested || ex is OperationCanceledException or IOException)
        {
            // The client is gone; there is no one to tell.
            ServerLog.ResponseAbandoned(_logger, method.Procedure, ex);
        }
        finally
        {
            if (logged)
            {
                ServerLog.CallEnded(_logger, method.Procedure, RpcTelemetry.Outcome(error), Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }

            if (traced)
            {
                telemetry.EndCall(
                    activity,
                    start,
                    method,
                    call.Context.Protocol,
                    serverAddress,
                    serverPort,
                    error,
                    call.ResponseSlots.HeadersOrNull,
                    call.ResponseSlots.TrailersOrNull,
                    _settings.TracedResponseMetadata);
            }

            call.Dispose();
            shutdown.Exit();
        }
    }

    /// <summary>Runs the interceptors and the handler: the call's error, or null.</summary>
    private async Task<ConnectException?> RunHandlerAsync(HttpServerCall call, HttpContext http)
    {
        try
        {
            call.Start();
            await _handler(call).ConfigureAwait(false);
            return null;
        }
        catch (Exception ex)
        {
            return ToConnectException(ex, call, http);
        }
    }

    /// <summary>Whether the deadline passes before the handler ends.</summary>
    private static async Task<bool> DeadlineFirstAsync(Task<ConnectException?> handling, CancellationToken deadline)
    {
        var passed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (deadline.UnsafeRegister(static state => ((TaskCompletionSource)state!).TrySetResult(), passed))
        {
            await Task.WhenAny(handling, passed.Task).ConfigureAwait(false);
        }

        return !handling.IsCompleted;
    }

    /// <summary>
    /// Waits for a handler whose call was answered at its deadline: the request lasts until it
    /// returns (the HttpContext and the call stay its), and its own end is only logged, at debug.
    /// </summary>
    private async Task LateHandlerAsync(Task<ConnectException?> handling)
    {
        if (await handling.ConfigureAwait(false) is { } late)
        {
            ServerLog.HandlerEndedAfterDeadline(_logger, _method.Method.Procedure, late.Code.ToString(), late);
        }
    }

    private Task InvokeService(ServerCall call) =>
        _method.InvokeAsync(_activator.Get(HttpServerCall.Of(call).Http, out _), call);

    private async Task InvokeServiceAsync(ServerCall call)
    {
        TService service = _activator.Get(HttpServerCall.Of(call).Http, out bool created);
        try
        {
            await _method.InvokeAsync(service, call).ConfigureAwait(false);
        }
        finally
        {
            if (created)
            {
                await ServiceActivator<TService>.ReleaseAsync(service).ConfigureAwait(false);
            }
        }
    }

    private ConnectException ToConnectException(Exception ex, HttpServerCall call, HttpContext http)
    {
        switch (ex)
        {
            case ConnectException { IsReceived: true } received:
                // Rethrown from another call: forward its status, not that call's metadata (as connect-go does).
                return received.WithoutReceivedMetadata();
            case MessageEncodeException encode:
                // The runtime could not encode the handler's response (JSON: an Any of a type it does not know).
                ServerLog.ResponseEncodeFailed(_logger, _method.Method.Procedure, encode);
                return encode;
            case ConnectException connect:
                return connect;
            case BadHttpRequestException bad:
                // Kestrel refused the request body (framing, size, data rate): the client's fault, not the handler's.
                ServerLog.BadRequestBody(_logger, _method.Method.Procedure, bad);
                return new ConnectException(
                    bad.StatusCode switch
                    {
                        StatusCodes.Status413PayloadTooLarge => Code.ResourceExhausted,
                        StatusCodes.Status408RequestTimeout => Code.DeadlineExceeded,
                        _ => Code.InvalidArgument,
                    },
                    "the HTTP server refused the request: " + bad.Message,
                    ex);
            case OperationCanceledException when call.DeadlineExpired:
                return new ConnectException(Code.DeadlineExceeded, "the call exceeded its deadline", ex);
            case OperationCanceledException when _settings.Shutdown.HasExpired && !http.RequestAborted.IsCancellationRequested:
                // The shutdown timeout passed (ConnectServerOptions.ShutdownTimeout).
                return ServerShutdown.Refusal(ex);
            case OperationCanceledException when http.RequestAborted.IsCancellationRequested:
                return new ConnectException(Code.Canceled, "the client canceled the call", ex);
            default:
                // Never on the wire: the exception's text may hold anything. A call answered at
                // its deadline already told its client; the handler's failure is still a bug.
                if (call.AnsweredAtDeadline)
                {
                    ServerLog.HandlerFailedAfterDeadline(_logger, _method.Method.Procedure, ex);
                }
                else
                {
                    ServerLog.HandlerFailed(_logger, _method.Method.Procedure, ex);
                }

                return new ConnectException(Code.Unknown, "the handler failed with an unexpected error", ex);
        }
    }
}

/// <summary>Log messages of the server, with stable event ids.</summary>
internal static partial class ServerLog
{
    [LoggerMessage(1, LogLevel.Error, "The handler of {Procedure} threw an unexpected exception; the client gets 'unknown'.")]
    public static partial void HandlerFailed(ILogger logger, string procedure, Exception exception);

    [LoggerMessage(2, LogLevel.Debug, "The response of {Procedure} could not be completed: the client is gone.")]
    public static partial void ResponseAbandoned(ILogger logger, string procedure, Exception exception);

    [LoggerMessage(3, LogLevel.Debug, "The request body of {Procedure} was refused by the HTTP server.")]
    public static partial void BadRequestBody(ILogger logger, string procedure, Exception exception);

    [LoggerMessage(4, LogLevel.Debug, "Call {Procedure} started over {Protocol}.")]
    public static partial void CallStarted(ILogger logger, string procedure, Protocol protocol);

    [LoggerMessage(5, LogLevel.Debug, "Call {Procedure} ended: {Code} after {ElapsedMilliseconds:0.0} ms.")]
    public static partial void CallEnded(ILogger logger, string procedure, string code, double elapsedMilliseconds);

    [LoggerMessage(6, LogLevel.Debug, "The handler of {Procedure} ended with {Code} after the call was answered with deadline_exceeded; nothing more was sent.")]
    public static partial void HandlerEndedAfterDeadline(ILogger logger, string procedure, string code, Exception exception);

    [LoggerMessage(7, LogLevel.Error, "The server could not encode a response message of {Procedure}; the client gets 'internal'. Is a type packed in google.protobuf.Any missing from ConnectServerOptions.JsonTypes?")]
    public static partial void ResponseEncodeFailed(ILogger logger, string procedure, Exception exception);

    [LoggerMessage(8, LogLevel.Error, "The handler of {Procedure} threw an unexpected exception after its call was answered with deadline_exceeded.")]
    public static partial void HandlerFailedAfterDeadline(ILogger logger, string procedure, Exception exception);
}
