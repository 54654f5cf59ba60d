namespace Greet.Client;

/// <summary>The command line, with environment variables as fallbacks.</summary>
internal sealed record Settings(string Url, string Http2Url, string Token)
{
    public const string Usage =
        "usage: Greet.Client [--url U] [--http2-url U] [--token T]\n" +
        "  --url        the server's HTTP/1.1 base URL (default http://127.0.0.1:8080, env GREET_URL)\n" +
        "  --http2-url  the server's cleartext HTTP/2 base URL, for bidi and gRPC (default http://127.0.0.1:8081, env GREET_HTTP2_URL)\n" +
        "  --token      the bearer token to send (default demo-token, env GREET_TOKEN)";

    /// <summary>Parses <paramref name="args"/>; <paramref name="settings"/> is null for --help.</summary>
    public static bool TryParse(string[] args, out Settings? settings, out string? error)
    {
        settings = null;
        error = null;
        string? url = Environment.GetEnvironmentVariable("GREET_URL");
        string? http2Url = Environment.GetEnvironmentVariable("GREET_HTTP2_URL");
        string? token = Environment.GetEnvironmentVariable("GREET_TOKEN");
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] is "-h" or "--help")
            {
                return true;
            }

            if (i + 1 == args.Length)
            {
                error = $"{args[i]}: unknown option, or a value is missing";
                return false;
            }

            switch (args[i])
            {
                case "--url": url = args[++i]; break;
                case "--http2-url": http2Url = args[++i]; break;
                case "--token": token = args[++i]; break;
                default:
                    error = $"{args[i]}: unknown option";
                    return false;
            }
        }

        url = string.IsNullOrEmpty(url) ? "http://127.0.0.1:8080" : url;
        http2Url = string.IsNullOrEmpty(http2Url) ? "http://127.0.0.1:8081" : http2Url;
        foreach ((string name, string value) in new[] { ("--url", url), ("--http2-url", http2Url) })
        {
            if (!Uri.TryCreate(value, UriKind.Absolute, out Uri? uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            {
                error = $"{name}: '{value}' is not an http or https URL";
                return false;
            }
        }

        if (token is "")
        {
            error = "--token: must not be empty";
            return false;
        }

        settings = new Settings(url, http2Url, token ?? "demo-token");
        return true;
    }
}
