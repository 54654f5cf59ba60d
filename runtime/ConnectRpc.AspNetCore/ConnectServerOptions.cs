namespace ConnectRpc.AspNetCore;

/// <summary>How the server handles Connect calls; set with <c>services.AddConnect(options => …)</c>.</summary>
public sealed class ConnectServerOptions
{
    /// <summary>The default <see cref="MaxReceiveMessageSize"/>: 4 MiB, as in gRPC.</summary>
    public const int DefaultMaxReceiveMessageSize = 4 * 1024 * 1024;

    private int _maxReceiveMessageSize = DefaultMaxReceiveMessageSize;
    private int _maxSendMessageSize = int.MaxValue;

    /// <summary>
    /// The largest request message accepted, in bytes, after decompression; larger ones fail
    /// with <see cref="Code.ResourceExhausted"/>. Default: 4 MiB.
    /// </summary>
    public int MaxReceiveMessageSize
    {
        get => _maxReceiveMessageSize;
        set => _maxReceiveMessageSize = Positive(value);
    }

    /// <summary>
    /// The largest response message sent, in bytes; a handler returning a larger one fails the
    /// call with <see cref="Code.ResourceExhausted"/>. Default: no limit (<see cref="int.MaxValue"/>).
    /// </summary>
    public int MaxSendMessageSize
    {
        get => _maxSendMessageSize;
        set => _maxSendMessageSize = Positive(value);
    }

    /// <summary>Interceptors that every call passes through; the first is the outermost.</summary>
    public IList<ServerInterceptor> Interceptors { get; } = new List<ServerInterceptor>();

    private static int Positive(int value, [System.Runtime.CompilerServices.CallerMemberName] string name = "") =>
        value > 0 ? value : throw new ArgumentOutOfRangeException(name, value, "The size must be positive.");
}
