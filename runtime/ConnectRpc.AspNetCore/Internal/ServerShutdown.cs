using System.Diagnostics;
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

    /// <summary>The error of a call refused, or ended, by the shutdown: <c>unavailable</c>, safe to retry elsewhere when no message was sent.</summary>
    public static ConnectException Refusal(Exception? inner = null) => new(Code.Unavailable, Message, inner);

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
