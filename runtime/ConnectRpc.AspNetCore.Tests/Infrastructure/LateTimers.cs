using Connectrpc.Greet.V1;
using ConnectRpc.Internal;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// The system clock, with every timer firing <paramref name="late"/> after it is due: a client
/// whose deadline timer has not run yet although the clock says the deadline passed.
/// </summary>
internal sealed class LateTimers(TimeSpan late) : TimeProvider
{
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        System.CreateTimer(callback, state, dueTime + late, period);

    /// <summary>A client on <paramref name="http"/> whose call timers run 30 s late: only the server ends a call at its deadline.</summary>
    public static GreetServiceClient Client(HttpClient http, Uri baseAddress, ConnectClientOptions options) =>
        new(new CallInvoker(ClientTransports.Create(http, baseAddress, options), baseAddress, options, new LateTimers(TimeSpan.FromSeconds(30))));
}
