using System.IO.Pipelines;

namespace ConnectRpc.Internal;

/// <summary>Reads from a <see cref="PipeReader"/> whose owner uses it again after the call.</summary>
internal static class PipeReading
{
    /// <summary>
    /// <see cref="PipeReader.ReadAsync"/> that honours <paramref name="cancellationToken"/> through
    /// <see cref="PipeReader.CancelPendingRead"/> and ends the read before throwing. A read
    /// cancelled by its token leaves some readers (Kestrel's HTTP/1.1 request body) marked as
    /// reading, and the server's drain of the rest of the body then fails.
    /// </summary>
    public static ValueTask<ReadResult> ReadOrThrowAsync(this PipeReader reader, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ValueTask<ReadResult> read = reader.ReadAsync(CancellationToken.None);
        // Data already there (most reads of small messages): no registration, no state machine.
        return read.IsCompletedSuccessfully
            ? new ValueTask<ReadResult>(Checked(reader, read.Result, cancellationToken))
            : WaitAsync(reader, read, cancellationToken);
    }

    private static async ValueTask<ReadResult> WaitAsync(PipeReader reader, ValueTask<ReadResult> read, CancellationToken cancellationToken)
    {
        ReadResult result;
        using (cancellationToken.CanBeCanceled ? cancellationToken.UnsafeRegister(static state => CancelPendingRead((PipeReader)state!), reader) : default)
        {
            result = await read.ConfigureAwait(false);
        }

        return Checked(reader, result, cancellationToken);
    }

    /// <summary>The result, or for a cancelled read the read ended and the cancellation thrown.</summary>
    private static ReadResult Checked(PipeReader reader, ReadResult result, CancellationToken cancellationToken)
    {
        if (result.IsCanceled)
        {
            reader.AdvanceTo(result.Buffer.Start);
            cancellationToken.ThrowIfCancellationRequested();
            throw new OperationCanceledException("The read was cancelled.");
        }

        return result;
    }

    /// <summary>
    /// Ends a pending read. A reader that already failed (Kestrel's request body of a reset
    /// stream or connection) throws its error here; the pending read ends with that error
    /// anyway, and thrown from this callback it would reach whoever cancels the token: Kestrel,
    /// which logs it as the application's unhandled exception.
    /// </summary>
    private static void CancelPendingRead(PipeReader reader)
    {
        try
        {
            reader.CancelPendingRead();
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException)
        {
            // The read fails or has ended on its own.
        }
    }
}
