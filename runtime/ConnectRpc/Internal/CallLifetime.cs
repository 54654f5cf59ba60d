namespace ConnectRpc.Internal;

/// <summary>
/// The cancellation of one client call and why it ended: the caller's token, the deadline,
/// a failed request source, or the caller abandoning a stream.
/// </summary>
internal sealed class CallLifetime : IDisposable
{
    // How much earlier than this client's clock a server may cancel a call at its deadline.
    private static readonly TimeSpan s_deadlineSlack = TimeSpan.FromMilliseconds(10);

    // The longest delay a timer takes; longer deadlines are left to the server to enforce.
    private static readonly TimeSpan s_maxTimer = TimeSpan.FromMilliseconds(int.MaxValue - 1);

    private readonly TimeProvider _time;
    private readonly CancellationToken _callerToken;
    private readonly CancellationToken _parentToken;
    // The call's one token source: the HTTP request, every read and wait of the call use its
    // token, so the caller's token, the deadline and abandoning the call all cancel the same way.
    private readonly CancellationTokenSource _source;
    private readonly ITimer? _deadlineTimer;
    private volatile bool _deadlineReached;

    private SendFailure? _sendFailure;
    private volatile string? _waiting;

    /// <param name="time">The call's clock.</param>
    /// <param name="timeout">The call's timeout, or null.</param>
    /// <param name="callerToken">The caller's cancellation.</param>
    /// <param name="parentToken">
    /// The cancellation of the server call this call is made inside of, when the client
    /// propagates call context: it cancels the call as the caller's token does.
    /// </param>
    public CallLifetime(TimeProvider time, TimeSpan? timeout, CancellationToken callerToken, CancellationToken parentToken = default)
    {
        _time = time;
        _callerToken = callerToken;
        _parentToken = parentToken;
        _source = (callerToken.CanBeCanceled, parentToken.CanBeCanceled) switch
        {
            (true, true) => CancellationTokenSource.CreateLinkedTokenSource(callerToken, parentToken),
            (true, false) => CancellationTokenSource.CreateLinkedTokenSource(callerToken),
            (false, true) => CancellationTokenSource.CreateLinkedTokenSource(parentToken),
            _ => new CancellationTokenSource(),
        };
        if (timeout is { } t && t != System.Threading.Timeout.InfiniteTimeSpan)
        {
            Timeout = t > TimeSpan.Zero ? t : TimeSpan.Zero;
            Deadline = time.GetUtcNow() + Timeout;
            if (Timeout <= s_maxTimer)
            {
                // A timer of our own rather than a second token source: it records that the
                // deadline, not the caller, ended the call, then cancels.
                _deadlineTimer = time.CreateTimer(
                    static state => ((CallLifetime)state!).ReachDeadline(),
                    this,
                    Timeout.Value > TimeSpan.Zero ? Timeout.Value : TimeSpan.FromTicks(1),
                    System.Threading.Timeout.InfiniteTimeSpan);
            }
        }
    }

    public CancellationToken Token => _source.Token;

    /// <summary>
    /// What the call is waiting for that may never come, if anything: added to the error of a
    /// call canceled or out of time while it waits (a half-duplex bidi call waiting for its
    /// request stream to end).
    /// </summary>
    public string? Waiting
    {
        get => _waiting;
        set => _waiting = value;
    }

    public DateTimeOffset? Deadline { get; }

    public TimeSpan? Timeout { get; }

    /// <summary>
    /// The time left until the deadline by the call's clock (negative once it passed), for
    /// timeout headers; null without a deadline.
    /// </summary>
    public TimeSpan? TimeLeft => Deadline is { } deadline ? deadline - _time.GetUtcNow() : null;

    /// <summary>
    /// Whether the deadline passed: its timer fired, or the clock says so. The clock matters when
    /// the server's cancellation (an HTTP/2 RST_STREAM with CANCEL at its own deadline) arrives
    /// before this call's timer callback runs: the call then reports deadline_exceeded, not canceled.
    /// </summary>
    private bool DeadlinePassed => _deadlineReached || Timeout == TimeSpan.Zero || (Deadline is { } deadline && _time.GetUtcNow() >= deadline);

    /// <summary>
    /// Whether a cancellation that arrived now is the deadline's: it passed, or is due within
    /// <see cref="s_deadlineSlack"/>. A server's timer may fire that much before the client's
    /// clock reaches the deadline (the timeout header's rounding, millisecond timers), and its
    /// cancellation then stands for the deadline.
    /// </summary>
    private bool DeadlineDue => DeadlinePassed || (Deadline is { } deadline && _time.GetUtcNow() + s_deadlineSlack >= deadline);

    private bool CallerCanceled => _callerToken.IsCancellationRequested || _parentToken.IsCancellationRequested;

    /// <summary>Fails before any I/O when the call is already canceled or out of time.</summary>
    public void ThrowIfExpired()
    {
        if (CallerCanceled)
        {
            throw new ConnectException(Code.Canceled, "The call was canceled before it started.");
        }

        if (DeadlinePassed)
        {
            throw new ConnectException(Code.DeadlineExceeded, "The deadline passed before the call started.");
        }
    }

    /// <summary>The application's request stream threw: the call is canceled with that cause.</summary>
    public void FailRequestSource(Exception failure)
    {
        Interlocked.CompareExchange(ref _sendFailure, new SendFailure(failure, FromRequestSource: true), null);
        Abandon();
    }

    /// <summary>A request message could not be sent (this side's failure): the call is canceled with it as its error.</summary>
    public void FailSend(ConnectException failure)
    {
        RecordSendFailure(failure);
        Abandon();
    }

    /// <summary>The transport failed to send; reported only if the receive side has nothing better.</summary>
    public void RecordSendFailure(Exception failure) =>
        Interlocked.CompareExchange(ref _sendFailure, new SendFailure(failure, FromRequestSource: false), null);

    public void ThrowIfSendFailed(Method method)
    {
        if (Volatile.Read(ref _sendFailure) is { } failure)
        {
            throw ToException(failure, method);
        }
    }

    private void ReachDeadline()
    {
        _deadlineReached = true;
        Abandon();
    }

    public void Abandon()
    {
        try
        {
            _source.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Turns whatever ended the call into the <see cref="ConnectException"/> the caller sees.</summary>
    public ConnectException Translate(Exception ex, Method method)
    {
        // A cancellation is reported by its cause: the caller's token first, then the deadline
        // (a canceled status that arrives after the deadline is deadline_exceeded), then a
        // failed request source. Any other error stands as it is.
        bool canceled = ex is OperationCanceledException or ConnectException { Code: Code.Canceled };
        string waiting = _waiting is { } note ? " " + note : string.Empty;
        if (canceled && CallerCanceled)
        {
            return new ConnectException(Code.Canceled, $"The call to {method.Procedure} was canceled.{waiting}", ex);
        }

        if (canceled && DeadlineDue)
        {
            return new ConnectException(
                Code.DeadlineExceeded,
                $"The call to {method.Procedure} exceeded its deadline of {Timeout?.TotalMilliseconds:0} ms.{waiting}",
                ex);
        }

        if (Volatile.Read(ref _sendFailure) is { } failure && (canceled || ReferenceEquals(ex, failure.Exception)))
        {
            return ToException(failure, method);
        }

        return Classify(ex, method);
    }

    private static ConnectException Classify(Exception ex, Method method) =>
        ex switch
        {
            // The runtime's own encoding failure, reported as a plain error of its code.
            MessageEncodeException encode => new ConnectException(encode.Code, encode.Message, encode.InnerException),
            ConnectException connect => connect,
            OperationCanceledException => new ConnectException(Code.Canceled, $"The call to {method.Procedure} was canceled.", ex),
            _ => new ConnectException(Code.Unknown, $"The call to {method.Procedure} failed: {ex.Message}", ex),
        };

    private static ConnectException ToException(SendFailure failure, Method method) =>
        failure.FromRequestSource
            ? new ConnectException(Code.Canceled, $"The request stream failed, so the call was canceled: {failure.Exception.Message}", failure.Exception)
            : Classify(failure.Exception, method);

    public void Dispose()
    {
        _deadlineTimer?.Dispose();
        _source.Dispose();
    }

    private sealed record SendFailure(Exception Exception, bool FromRequestSource);
}
