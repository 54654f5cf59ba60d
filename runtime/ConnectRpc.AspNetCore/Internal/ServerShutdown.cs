using System.Diagnostics;
using ConnectRpc.Internal;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ConnectRpc.AspNetCore.Internal;

/// <summary>
/// What the server does when the application stops (SIGTERM, Ctrl-C, <c>StopApplication</c>):
/// from <see cref="IHostApplicationLifetime.ApplicationStopping"/> on, calls that arrive are
/// refused with <see cref="Code.Unavailable"/> before their handler runs; calls in flight go on
/// for <see cref="ConnectServerOptions.ShutdownTimeout"/>, then their tokens fire and they end
/// with <see cref="Code.Unavailable"/> too. One per server, shared by every endpoint.
/// </summary>
internal sealed class ServerShutdown : IDisposable
{
    /// <summary>The message of every call refused or ended by the shutdown.</summary>
    public const string Message = "the server is shutting down";

    /// <summary><see cref="Message"/> percent-encoded, as grpc-message carries it.</summary>
    private const string EncodedMessage = "the%20server%20is%20shutting%20down";

    /// <summary>A Connect error body with <see cref="Message"/>.</summary>
    private static readonly ReadOnlyMemory<byte> s_connectError = "{\"code\":\"unavailable\",\"message\":\"the server is shutting down\"}"u8.ToArray();

    private readonly CancellationTokenSource _expired = new();
    private readonly TimeSpan _timeout;
    private readonly TimeSpan _hostTimeout;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenRegistration _stopping;
    private ITimer? _timer;
    private long _stoppingSince;
    private int _inFlight;
    private int _drainedLogged;
    private volatile bool _isStopping;

    public ServerShutdown(TimeSpan timeout, TimeSpan hostTimeout, IHostApplicationLifetime? lifetime, TimeProvider time, ILogger logger)
    {
        _timeout = timeout;
        _hostTimeout = hostTimeout;
        _time = time;
        _logger = logger;
        _stopping = lifetime?.ApplicationStopping.Register(static state => ((ServerShutdown)state!).Begin(), this) ?? default;
    }

    /// <summary>Fires when the shutdown timeout has passed: the token every call's handler token is linked to.</summary>
    public CancellationToken Expired => _expired.Token;

    /// <summary>Whether the calls still running were cancelled by the shutdown timeout.</summary>
    public bool HasExpired => _expired.IsCancellationRequested;

    /// <summary>Whether the application is stopping: new calls are refused.</summary>
    public bool IsStopping => _isStopping;

    /// <summary>Calls whose handler runs or whose response is being written.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>A call begins; false (and nothing counted) when the server is stopping and refuses it.</summary>
    public bool TryEnter()
    {
        Interlocked.Increment(ref _inFlight);
        if (!_isStopping)
        {
            return true;
        }

        Exit();
        return false;
    }

    /// <summary>A call that <see cref="TryEnter"/> admitted has ended.</summary>
    public void Exit()
    {
        if (Interlocked.Decrement(ref _inFlight) == 0 && _isStopping)
        {
            Drained();
        }
    }

    /// <summary>Logs, once, that no call is left.</summary>
    private void Drained()
    {
        if (!HasExpired && Interlocked.Exchange(ref _drainedLogged, 1) == 0)
        {
            ShutdownLog.Drained(_logger, Stopwatch.GetElapsedTime(Volatile.Read(ref _stoppingSince)).TotalMilliseconds);
        }
    }

    /// <summary>The error of a call ended by the shutdown timeout: <c>unavailable</c>.</summary>
    public static ConnectException Refusal(Exception? inner = null) => new(Code.Unavailable, Message, inner);

    /// <summary>
    /// Refuses a call that arrived while the server stops, before anything of it ran: HTTP 503
    /// on every protocol, so a proxy may retry it on another instance (HAProxy's
    /// <c>retry-on 503</c>, nginx's <c>proxy_next_upstream http_503</c>). Connect clients read
    /// <c>unavailable</c> from the status (a unary call also from the JSON error body), gRPC and
    /// gRPC-Web clients from the status too (HTTP 503 is unavailable), or from the
    /// <c>grpc-status</c> header when they read it first. HTTP/1.1 connections are closed after it.
    /// </summary>
    public static Task RefuseAsync(HttpContext http, bool grpc)
    {
        HttpResponse response = http.Response;
        response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        if (HttpProtocol.IsHttp10(http.Request.Protocol) || HttpProtocol.IsHttp11(http.Request.Protocol))
        {
            response.Headers.Connection = "close";
        }

        if (grpc)
        {
            response.Headers[GrpcProtocol.StatusHeader] = "14";
            response.Headers[GrpcProtocol.MessageHeader] = EncodedMessage;
            return Task.CompletedTask;
        }

        response.ContentType = "application/json";
        return response.Body.WriteAsync(s_connectError, http.RequestAborted).AsTask();
    }

    private void Begin()
    {
        Volatile.Write(ref _stoppingSince, Stopwatch.GetTimestamp());
        _isStopping = true;
        int inFlight = InFlight;
        ShutdownLog.Stopping(_logger, inFlight, _timeout.TotalSeconds);
        if (_timeout != Timeout.InfiniteTimeSpan && _timeout >= _hostTimeout)
        {
            ShutdownLog.TimeoutNotBelowHost(_logger, _timeout.TotalSeconds, _hostTimeout.TotalSeconds);
        }

        if (inFlight == 0)
        {
            Drained();
        }

        if (_timeout == TimeSpan.Zero)
        {
            Expire();
        }
        else if (_timeout != Timeout.InfiniteTimeSpan)
        {
            _timer = _time.CreateTimer(static state => ((ServerShutdown)state!).Expire(), this, _timeout, Timeout.InfiniteTimeSpan);
        }
    }

    private void Expire()
    {
        int left = InFlight;
        if (left > 0)
        {
            ShutdownLog.Cancelling(_logger, left, _timeout.TotalSeconds);
        }

        _expired.Cancel();
    }

    public void Dispose()
    {
        _stopping.Dispose();
        _timer?.Dispose();
        _expired.Dispose();
    }
}

/// <summary>The shutdown's log messages (event ids 20 on, beside <see cref="ServerLog"/>'s).</summary>
internal static partial class ShutdownLog
{
    [LoggerMessage(20, LogLevel.Information, "The application is stopping: new calls are refused with 'unavailable'; {InFlight} call(s) in flight get up to {TimeoutSeconds} s to finish.")]
    public static partial void Stopping(ILogger logger, int inFlight, double timeoutSeconds);

    [LoggerMessage(21, LogLevel.Information, "Every call in flight has finished, {ElapsedMilliseconds:0} ms after the application began to stop.")]
    public static partial void Drained(ILogger logger, double elapsedMilliseconds);

    [LoggerMessage(22, LogLevel.Warning, "The shutdown timeout ({TimeoutSeconds} s) passed with {Left} call(s) in flight: they are cancelled and end with 'unavailable'.")]
    public static partial void Cancelling(ILogger logger, int left, double timeoutSeconds);

    [LoggerMessage(23, LogLevel.Warning, "ConnectServerOptions.ShutdownTimeout ({TimeoutSeconds} s) is not below HostOptions.ShutdownTimeout ({HostSeconds} s): Kestrel may abort calls before they are ended with 'unavailable'.")]
    public static partial void TimeoutNotBelowHost(ILogger logger, double timeoutSeconds, double hostSeconds);
}
