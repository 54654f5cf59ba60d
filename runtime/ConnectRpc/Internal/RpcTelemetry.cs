using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Reflection;

namespace ConnectRpc.Internal;

/// <summary>
/// Traces and metrics of one side of calls (client or server), as OpenTelemetry's RPC
/// semantic conventions describe them (https://opentelemetry.io/docs/specs/semconv/rpc/):
/// a span per call named after its method, and a call-duration histogram in seconds. An
/// <see cref="ActivitySource"/> and a <see cref="Meter"/> named after the assembly; both cost
/// a check and nothing more when nobody listens.
/// </summary>
internal sealed class RpcTelemetry
{
    private const string SystemNameAttribute = "rpc.system.name";
    private const string MethodAttribute = "rpc.method";
    private const string StatusCodeAttribute = "rpc.response.status_code";
    private const string ErrorTypeAttribute = "error.type";
    private const string ServerAddressAttribute = "server.address";
    private const string ServerPortAttribute = "server.port";
    private const string RequestMetadataPrefix = "rpc.request.metadata.";
    private const string ResponseMetadataPrefix = "rpc.response.metadata.";

    // The conventions' advice for RPC call durations, in seconds.
    private static readonly double[] s_buckets = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

    private readonly Histogram<double> _duration;
    private readonly bool _server;

    /// <param name="assembly">The instrumented assembly: it names the source and the meter, and versions them.</param>
    /// <param name="server">Whether this is the server's side (span kind, metric name, which codes are errors).</param>
    public RpcTelemetry(Assembly assembly, bool server)
    {
        string name = assembly.GetName().Name!;
        string? version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0];
        _server = server;
        Source = new ActivitySource(name, version);
        Meter = new Meter(name, version);
        _duration = Meter.CreateHistogram(
            server ? "rpc.server.call.duration" : "rpc.client.call.duration",
            unit: "s",
            description: server ? "The duration of incoming RPCs." : "The duration of outgoing RPCs.",
            tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = s_buckets });
    }

    public ActivitySource Source { get; }

    public Meter Meter { get; }

    /// <summary>Whether anyone listens: when not, a call records nothing and reads no clock.</summary>
    public bool Enabled => Source.HasListeners() || _duration.Enabled;

    /// <summary>
    /// Starts a call's span (null when nobody samples it), a child of the current activity: on
    /// the server the HTTP request's, on the client the caller's (HttpClient's own span then
    /// becomes the RPC span's child and carries the trace context to the server).
    /// </summary>
    public Activity? StartCall(Method method, Protocol protocol, string? serverAddress, int? serverPort, Headers requestHeaders, IList<string> tracedHeaders)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        string methodName = MethodName(method);
        Activity? activity = Source.StartActivity(
            methodName,
            _server ? ActivityKind.Server : ActivityKind.Client,
            parentContext: default,
            tags: [new(SystemNameAttribute, SystemName(protocol)), new(MethodAttribute, methodName)]);
        if (activity is { IsAllDataRequested: true })
        {
            if (serverAddress is not null)
            {
                activity.SetTag(ServerAddressAttribute, serverAddress);
                activity.SetTag(ServerPortAttribute, serverPort);
            }

            AddMetadata(activity, RequestMetadataPrefix, tracedHeaders, requestHeaders, null);
        }

        return activity;
    }

    /// <summary>
    /// Ends a call: the span's status, code and response metadata, and the duration measured
    /// from <paramref name="startTimestamp"/> (a <see cref="Stopwatch"/> timestamp).
    /// </summary>
    public void EndCall(
        Activity? activity,
        long startTimestamp,
        Method method,
        Protocol protocol,
        string? serverAddress,
        int? serverPort,
        ConnectException? error,
        Headers? responseHeaders,
        Headers? responseTrailers,
        IList<string> tracedHeaders)
    {
        string? status = StatusCode(protocol, error?.Code);
        string? errorType = error is not null && IsError(error.Code) ? status : null;
        if (activity is not null)
        {
            if (activity.IsAllDataRequested)
            {
                if (status is not null)
                {
                    activity.SetTag(StatusCodeAttribute, status);
                }

                if (errorType is not null)
                {
                    activity.SetTag(ErrorTypeAttribute, errorType);
                    activity.SetStatus(ActivityStatusCode.Error, error!.Message);
                }

                AddMetadata(activity, ResponseMetadataPrefix, tracedHeaders, responseHeaders, responseTrailers);
            }

            activity.Stop();
        }

        if (_duration.Enabled)
        {
            var tags = new TagList
            {
                { SystemNameAttribute, SystemName(protocol) },
                { MethodAttribute, MethodName(method) },
            };
            if (status is not null)
            {
                tags.Add(StatusCodeAttribute, status);
            }

            if (errorType is not null)
            {
                tags.Add(ErrorTypeAttribute, errorType);
            }

            if (serverAddress is not null)
            {
                tags.Add(ServerAddressAttribute, serverAddress);
                tags.Add(ServerPortAttribute, serverPort);
            }

            _duration.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds, tags);
        }
    }

    /// <summary>How a call ended, for the debug logs of either side: <c>ok</c> or the error's code.</summary>
    public static string Outcome(ConnectException? error) => error is null ? "ok" : error.Code.ToWireName();

    /// <summary><c>connectrpc</c> for Connect, <c>grpc</c> for gRPC and gRPC-Web.</summary>
    public static string SystemName(Protocol protocol) => protocol == Protocol.Connect ? "connectrpc" : "grpc";

    /// <summary>The method as the conventions name it: <c>package.Service/Method</c>.</summary>
    public static string MethodName(Method method) => method.Procedure[1..];

    /// <summary>
    /// The call's status in its protocol's form: gRPC's upper-case status name (<c>OK</c>,
    /// <c>DEADLINE_EXCEEDED</c>), or Connect's error code (<c>deadline_exceeded</c>; a Connect
    /// success has no code, so null).
    /// </summary>
    public static string? StatusCode(Protocol protocol, Code? code)
    {
        if (protocol == Protocol.Connect)
        {
            return code?.ToWireName();
        }

        // gRPC's names are Connect's in upper case, but for the spelling of CANCELLED.
        return code switch
        {
            null => "OK",
            Code.Canceled => "CANCELLED",
            { } failed => failed.ToWireName().ToUpperInvariant(),
        };
    }

    /// <summary>
    /// Whether a code is an error for this side: every code for a client; for a server only
    /// those that say the server failed, not the client's own mistakes.
    /// </summary>
    private bool IsError(Code code) =>
        !_server || code is Code.Unknown or Code.DeadlineExceeded or Code.Unimplemented or Code.Internal or Code.Unavailable or Code.DataLoss;

    /// <summary>The configured metadata keys only, never all of them (they may hold secrets).</summary>
    private static void AddMetadata(Activity activity, string prefix, IList<string> keys, Headers? first, Headers? second)
    {
        foreach (string key in keys)
        {
            string[] values = [.. first?.GetAll(key) ?? [], .. second?.GetAll(key) ?? []];
            if (values.Length > 0)
            {
                activity.SetTag(prefix + key.ToLowerInvariant(), values);
            }
        }
    }
}
