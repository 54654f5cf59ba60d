using System.Globalization;
using System.Net;

namespace Greet.Server;

/// <summary>The command line, with environment variables as fallbacks.</summary>
internal sealed record Settings(int Http1Port, int Http2Port, string Token, bool Trace)
{
    public const string Usage =
        "usage: Greet.Server [--http1-port N] [--http2-port N] [--token T] [--trace]\n" +
        "  --http1-port  HTTP/1.1 port on 127.0.0.1 (default 8080, env GREET_HTTP1_PORT; 0 picks a free port)\n" +
        "  --http2-port  cleartext HTTP/2 port on 127.0.0.1 (default 8081, env GREET_HTTP2_PORT; 0 picks a free port)\n" +
        "  --token       the bearer token calls must carry (default demo-token, env GREET_TOKEN)\n" +
        "  --trace       write each call's RPC span to the console";

    /// <summary>Parses <paramref name="args"/>; <paramref name="settings"/> is null for --help.</summary>
    public static bool TryParse(string[] args, out Settings? settings, out string? error)
    {
        settings = null;
        error = null;
        string? http1 = Environment.GetEnvironmentVariable("GREET_HTTP1_PORT");
        string? http2 = Environment.GetEnvironmentVariable("GREET_HTTP2_PORT");
        string? token = Environment.GetEnvironmentVariable("GREET_TOKEN");
        bool trace = false;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] is "-h" or "--help")
            {
                return true;
            }

            if (args[i] == "--trace")
            {
                trace = true;
                continue;
            }

            if (i + 1 == args.Length)
            {
                error = $"{args[i]}: unknown option, or a value is missing";
                return false;
            }

            switch (args[i])
            {
                case "--http1-port": http1 = args[++i]; break;
                case "--http2-port": http2 = args[++i]; break;
                case "--token": token = args[++i]; break;
                default:
                    error = $"{args[i]}: unknown option";
                    return false;
            }
        }

        if (!TryPort(http1, 8080, "--http1-port", out int http1Port, ref error) ||
            !TryPort(http2, 8081, "--http2-port", out int http2Port, ref error))
        {
            return false;
        }

        if (token is "")
        {
            error = "--token: must not be empty";
            return false;
        }

        settings = new Settings(http1Port, http2Port, token ?? "demo-token", trace);
        return true;
    }

    private static bool TryPort(string? value, int fallback, string name, out int port, ref string? error)
    {
        port = fallback;
        if (string.IsNullOrEmpty(value))
        {
            return true;
        }

        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port <= IPEndPoint.MaxPort)
        {
            return true;
        }

        error = $"{name}: '{value}' is not a port number";
        return false;
    }
}
