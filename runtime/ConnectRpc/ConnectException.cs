using System.Text;
using ConnectRpc.Internal;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace ConnectRpc;

/// <summary>
/// An RPC error: a <see cref="Code"/>, a message, optional typed details, and the metadata
/// that travelled with it. Clients see every failure as a <see cref="ConnectException"/>;
/// handlers throw one to send a specific code (anything else a handler throws is sent as
/// <see cref="Code.Unknown"/> with a safe message).
/// </summary>
public class ConnectException : Exception
{
    private readonly string _message;

    /// <summary>Creates an error with a code, an optional message and an optional cause.</summary>
    /// <param name="code">The error code sent on the wire.</param>
    /// <param name="message">The message sent on the wire; null means none.</param>
    /// <param name="inner">The local cause. It is never sent to the peer.</param>
    public ConnectException(Code code, string? message = null, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
        _message = message ?? string.Empty;
    }

    /// <summary>The error code.</summary>
    public Code Code { get; }

    /// <summary>The bare message as it travels on the wire (empty when there is none).</summary>
    public override string Message => _message;

    /// <summary>
    /// Error details: protobuf messages packed in <see cref="Any"/>, with type URLs in the
    /// <c>type.googleapis.com/</c> form. Add to it before throwing; read with
    /// <see cref="GetDetail{T}"/> or <see cref="GetDetails{T}"/>.
    /// </summary>
    public IList<Any> Details { get; } = new List<Any>();

    /// <summary>
    /// Headers of the error. A handler may add to them before throwing (they are sent with
    /// the response headers when those have not gone yet, otherwise with the trailers); on
    /// the client they are the response headers received with the error.
    /// </summary>
    public Headers Headers { get; private set; } = new();

    /// <summary>
    /// Trailers of the error: added by a handler before throwing, or received by the client.
    /// </summary>
    public Headers Trailers { get; private set; } = new();

    /// <summary>The error's headers followed by its trailers, in one read-only view.</summary>
    public Headers Metadata
    {
        get
        {
            Headers merged = Headers.CreateReceived(Headers.Count + Trailers.Count);
            merged.AddRangeUnchecked(Headers);
            merged.AddRangeUnchecked(Trailers);
            return merged.MakeReadOnly("The merged metadata view is read-only; write to Headers or Trailers.");
        }
    }

    /// <summary>Packs <paramref name="detail"/> into an <see cref="Any"/> and appends it to <see cref="Details"/>.</summary>
    public void AddDetail(IMessage detail)
    {
        ArgumentNullException.ThrowIfNull(detail);
        Details.Add(Any.Pack(detail));
    }

    /// <summary>The first detail of type <typeparamref name="T"/>, or null when there is none.</summary>
    public T? GetDetail<T>()
        where T : class, IMessage<T>, new()
    {
        foreach (Any any in Details)
        {
            if (any.TryUnpack(out T detail))
            {
                return detail;
            }
        }

        return null;
    }

    /// <summary>Every detail of type <typeparamref name="T"/>, in order.</summary>
    public IReadOnlyList<T> GetDetails<T>()
        where T : class, IMessage<T>, new()
    {
        var result = new List<T>();
        foreach (Any any in Details)
        {
            if (any.TryUnpack(out T detail))
            {
                result.Add(detail);
            }
        }

        return result;
    }

    /// <summary>Describes the error with its wire code name, for logs.</summary>
    public override string ToString()
    {
        var builder = new StringBuilder();
        builder.Append(GetType().FullName).Append(": [").Append(Code.ToWireName()).Append(']');
        if (_message.Length > 0)
        {
            builder.Append(' ').Append(_message);
        }

        if (InnerException is not null)
        {
            builder.Append(" ---> ").Append(InnerException).AppendLine().Append("   --- End of inner exception stack trace ---");
        }

        if (StackTrace is not null)
        {
            builder.AppendLine().Append(StackTrace);
        }

        return builder.ToString();
    }

    /// <summary>Whether the error came from a peer (its metadata is what that peer sent).</summary>
    internal bool IsReceived { get; private set; }

    /// <summary>Attaches metadata the runtime received with the error; both become read-only.</summary>
    internal void SetReceivedMetadata(Headers headers, Headers trailers)
    {
        Headers = headers.MakeReadOnly();
        Trailers = trailers.MakeReadOnly();
        IsReceived = true;
    }

    /// <summary>
    /// The same code, message and details without the metadata: what a server sends for an
    /// error a handler received from another call and rethrew, whose headers and trailers
    /// (content types, statuses, encodings) belong to that other call.
    /// </summary>
    internal ConnectException WithoutReceivedMetadata()
    {
        var copy = new ConnectException(Code, Message, this);
        foreach (Any detail in Details)
        {
            copy.Details.Add(detail);
        }

        return copy;
    }
}
