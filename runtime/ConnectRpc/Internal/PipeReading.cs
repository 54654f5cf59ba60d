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
    public static async ValueTask<ReadResult> ReadOrThrowAsync(this PipeReader reader, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ReadResult result;
        using (cancellationToken.CanBeCanceled ? cancellationToken.UnsafeRegister(static state => CancelPendingRead((PipeReader)state!), reader) : default)
        {
            result = await reader.ReadAsync(CancellationToken.None).ConfigureAwait(false);
        }

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
