namespace ConnectRpc;

/// <summary>
/// The options of a client registered with <c>AddConnectClient</c>: the server's base
/// address, and every <see cref="ConnectClientOptions"/> setting.
/// </summary>
public sealed class ConnectClientFactoryOptions : ConnectClientOptions
{
    /// <summary>The server's base URL, such as <c>https://api.acme.com</c>. Required.</summary>
    public Uri? BaseAddress { get; set; }
}
