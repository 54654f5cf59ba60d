using Microsoft.AspNetCore.Http;

namespace ConnectRpc.AspNetCore;

/// <summary>ASP.NET Core access from a handler's <see cref="RequestContext"/>.</summary>
public static class RequestContextExtensions
{
    /// <summary>The <see cref="HttpContext"/> of the call (user, connection, features).</summary>
    /// <exception cref="InvalidOperationException">The context was not created by the ASP.NET Core server (a test's own context, say).</exception>
    public static HttpContext GetHttpContext(this RequestContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Transport as HttpContext
            ?? throw new InvalidOperationException("This RequestContext does not come from an ASP.NET Core request.");
    }
}
