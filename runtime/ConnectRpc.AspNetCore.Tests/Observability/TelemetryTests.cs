using System.Collections;
using System.Diagnostics;
using Connectrpc.Greet.V1;
using ConnectRpc.Tests;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// Traces and metrics as an application sees them through OpenTelemetry's SDK and in-memory
/// exporter: a client call gives one client span and one server span in one trace, linked
/// through the HTTP spans of HttpClient and ASP.NET Core, with the RPC conventions' attributes
/// on success and on each kind of error, and call durations in both histograms.
/// </summary>
/// <remarks>
/// Listeners are process-wide and other tests run alongside, so every assertion picks out
/// this test's server by its port.
/// </remarks>
public sealed class TelemetryTests(GreetServer fixture) : IClassFixture<GreetServer>
{
    private readonly KestrelHost _server = fixture.Host;

    private const string Greet = "connectrpc.greet.v1.GreetService/Greet";

    [Theory]
    [InlineData(Protocol.Connect, "connectrpc", null)]
    [InlineData(Protocol.Grpc, "grpc", "OK")]
    [InlineData(Protocol.GrpcWeb, "grpc", "OK")]
    public async Task Unary_OneClientAndOneServerSpanInOneTrace_ThroughTheHttpSpans(Protocol protocol, string system, string? status)
    {
        using var telemetry = new Recorded();
        KestrelHost server = _server;
        int port = server.Http2Url.Port;

        await server.Client(http2: true, new ConnectClientOptions { Protocol = protocol }).GreetAsync(new GreetRequest { Name = "Ada" }).Within();

        Activity client = await telemetry.SpanAsync("ConnectRpc", port);
        Activity rpcServer = await telemetry.SpanAsync("ConnectRpc.AspNetCore", port);
        Assert.Equal(ActivityKind.Client, client.Kind);
        Assert.Equal(ActivityKind.Server, rpcServer.Kind);
        Assert.Equal(Greet, client.DisplayName);
        Assert.Equal(Greet, rpcServer.DisplayName);
        Assert.Equal(client.TraceId, rpcServer.TraceId);
        foreach (Activity span in new[] { client, rpcServer })
        {
            Assert.Equal(system, span.GetTagItem("rpc.system.name"));
            Assert.Equal(Greet, span.GetTagItem("rpc.method"));
            Assert.Equal("127.0.0.1", span.GetTagItem("server.address"));
            Assert.Equal(port, span.GetTagItem("server.port"));
            Assert.Equal(status, span.GetTagItem("rpc.response.status_code"));
            Assert.Null(span.GetTagItem("error.type"));
            Assert.Equal(ActivityStatusCode.Unset, span.Status);
        }

        // client RPC span → HttpClient's span → ASP.NET Core's span → server RPC span: the
        // trace context travels in HttpClient's own traceparent, not in one of ours.
        Activity httpOut = telemetry.Spans.Single(s => s.Source.Name == "System.Net.Http" && s.TraceId == client.TraceId);
        Activity httpIn = telemetry.Spans.Single(s => s.Source.Name == "Microsoft.AspNetCore" && s.TraceId == client.TraceId);
        Assert.Equal(client.SpanId, httpOut.ParentSpanId);
        Assert.Equal(httpOut.SpanId, httpIn.ParentSpanId);
        Assert.Equal(httpIn.SpanId, rpcServer.ParentSpanId);
        Assert.Equal(4, telemetry.Spans.Count(s => s.TraceId == client.TraceId));
    }

    [Theory]
    [InlineData(Protocol.Connect, "not_found", "not_found", false)]
    [InlineData(Protocol.Grpc, "not_found", "NOT_FOUND", false)]
    [InlineData(Protocol.Connect, "internal", "internal", true)]
    [InlineData(Protocol.Grpc, "internal", "INTERNAL", true)]
    [InlineData(Protocol.GrpcWeb, "unavailable", "UNAVAILABLE", true)]
    [InlineData(Protocol.Connect, "invalid_argument", "invalid_argument", false)]
    public async Task Error_StatusOnBothSpans_ErrorTypeWhereTheSideCountsItAsOne(Protocol protocol, string code, string status, bool serverError)
    {
        using var telemetry = new Recorded();
        KestrelHost server = _server;
        int port = server.Http2Url.Port;

        await Assert.ThrowsAsync<ConnectException>(() => server.Client(http2: true, new ConnectClientOptions { Protocol = protocol })
            .GreetAsync(new GreetRequest(), new Headers { ["x-fail"] = code }).Within());

        Activity client = await telemetry.SpanAsync("ConnectRpc", port);
        Activity rpcServer = await telemetry.SpanAsync("ConnectRpc.AspNetCore", port);
        Assert.Equal(status, client.GetTagItem("rpc.response.status_code"));
        Assert.Equal(status, rpcServer.GetTagItem("rpc.response.status_code"));

        // Every failed call is an error to its client; the server owns only its own failures.
        Assert.Equal(status, client.GetTagItem("error.type"));
        Assert.Equal(ActivityStatusCode.Error, client.Status);
        Assert.Equal(serverError ? status : null, rpcServer.GetTagItem("error.type"));
        Assert.Equal(serverError ? ActivityStatusCode.Error : ActivityStatusCode.Unset, rpcServer.Status);
    }

    [Fact]
    public async Task Deadline_ClientSpanSaysDeadlineExceeded()
    {
        using var telemetry = new Recorded();
        KestrelHost server = _server;
        int port = server.Http2Url.Port;

        await Assert.ThrowsAsync<ConnectException>(() => server.Client(http2: true, new ConnectClientOptions { Protocol = Protocol.Grpc })
            .GreetAsync(new GreetRequest(), new Headers { ["x-sleep-ms"] = "5000" }, timeout: TimeSpan.FromMilliseconds(200)).Within());

        Activity client = await telemetry.SpanAsync("ConnectRpc", port);
        Assert.Equal("DEADLINE_EXCEEDED", client.GetTagItem("rpc.response.status_code"));
        Assert.Equal("DEADLINE_EXCEEDED", client.GetTagItem("error.type"));
        // The server's timer and the client's reset race: whichever comes first names the end.
        Activity rpcServer = await telemetry.SpanAsync("ConnectRpc.AspNetCore", port);
        Assert.Contains(rpcServer.GetTagItem("rpc.response.status_code") as string, new[] { "DEADLINE_EXCEEDED", "CANCELLED" });
    }

    [Fact]
    public async Task ServerStream_SpanEndsWithTheStream()
    {
        using var telemetry = new Recorded();
        KestrelHost server = _server;
        int port = server.Http2Url.Port;

        List<GreetResponse> responses = await server.Client(http2: true, new ConnectClientOptions { Protocol = Protocol.Grpc })
            .GreetManyAsync(new GreetRequest { Name = "Ada" }).ToListWithin();

        Assert.Equal(3, responses.Count);
        Activity client = await telemetry.SpanAsync("ConnectRpc", port);
        Assert.Equal("connectrpc.greet.v1.GreetService/GreetMany", client.DisplayName);
        Assert.Equal("OK", client.GetTagItem("rpc.response.status_code"));
        Assert.Equal(client.TraceId, (await telemetry.SpanAsync("ConnectRpc.AspNetCore", port)).TraceId);
    }

    [Fact]
    public async Task Metadata_RecordedOnlyForConfiguredKeys()
    {
        using var telemetry = new Recorded();
        await using KestrelHost server = await KestrelHost.StartAsync(o =>
        {
            o.TracedRequestMetadata.Add("acme-tenant-id");
            o.TracedResponseMetadata.Add("greet-version");
        });
        int port = server.Http2Url.Port;
        var options = new ConnectClientOptions { TracedResponseMetadata = { "greet-version" } };

        await server.Client(http2: true, options).GreetAsync(new GreetRequest(), new Headers { ["acme-tenant-id"] = "42", ["x-echo"] = "secret" }).Within();

        Activity client = await telemetry.SpanAsync("ConnectRpc", port);
        Activity rpcServer = await telemetry.SpanAsync("ConnectRpc.AspNetCore", port);
        Assert.Equal(["42"], (string[])rpcServer.GetTagItem("rpc.request.metadata.acme-tenant-id")!);
        Assert.Equal(["v1", "v1"], (string[])rpcServer.GetTagItem("rpc.response.metadata.greet-version")!);
        Assert.Equal(["v1", "v1"], (string[])client.GetTagItem("rpc.response.metadata.greet-version")!);
        Assert.Null(client.GetTagItem("rpc.request.metadata.acme-tenant-id"));
        Assert.DoesNotContain(rpcServer.TagObjects, tag => tag.Key.Contains("x-echo", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Durations_RecordedInSecondsOnBothSides()
    {
        using var telemetry = new Recorded();
        KestrelHost server = _server;
        int port = server.Http2Url.Port;
        GreetServiceClient client = server.Client(http2: true, new ConnectClientOptions { Protocol = Protocol.Grpc });

        await client.GreetAsync(new GreetRequest()).Within();
        await Assert.ThrowsAsync<ConnectException>(() => client.GreetAsync(new GreetRequest(), new Headers { ["x-fail"] = "internal" }).Within());
        await telemetry.SpanAsync("ConnectRpc.AspNetCore", port, count: 2);

        foreach (string name in new[] { "rpc.client.call.duration", "rpc.server.call.duration" })
        {
            List<MetricPoint> points = telemetry.Points(name, port);
            Assert.Equal("s", telemetry.Metrics.First(m => m.Name == name).Unit);
            MetricPoint ok = Assert.Single(points, p => Tag(p, "rpc.response.status_code") as string == "OK");
            MetricPoint failed = Assert.Single(points, p => Tag(p, "rpc.response.status_code") as string == "INTERNAL");
            Assert.Equal(1, ok.GetHistogramCount());
            Assert.Equal(1, failed.GetHistogramCount());
            Assert.InRange(ok.GetHistogramSum(), 0, 10);
            Assert.Equal("grpc", Tag(ok, "rpc.system.name"));
            Assert.Equal(Greet, Tag(ok, "rpc.method"));
            Assert.Equal("INTERNAL", Tag(failed, "error.type"));
        }
    }

    private static object? Tag(MetricPoint point, string key)
    {
        foreach (KeyValuePair<string, object?> tag in point.Tags)
        {
            if (tag.Key == key)
            {
                return tag.Value;
            }
        }

        return null;
    }

    /// <summary>An OpenTelemetry tracer and meter over our sources and the HTTP stack's, exporting to memory.</summary>
    private sealed class Recorded : IDisposable
    {
        private readonly TracerProvider _tracing;
        private readonly MeterProvider _metering;
        private readonly List<Metric> _metrics = [];

        public Recorded()
        {
            _tracing = Sdk.CreateTracerProviderBuilder()
                .AddSource("ConnectRpc", "ConnectRpc.AspNetCore", "Microsoft.AspNetCore", "System.Net.Http")
                .SetSampler(new AlwaysOnSampler())
                .AddInMemoryExporter(Spans)
                .Build();
            _metering = Sdk.CreateMeterProviderBuilder()
                .AddMeter("ConnectRpc", "ConnectRpc.AspNetCore")
                .AddInMemoryExporter(_metrics)
                .Build();
        }

        public LockedList<Activity> Spans { get; } = new();

        public IReadOnlyList<Metric> Metrics => _metrics;

        /// <summary>The first span of <paramref name="source"/> for the server on <paramref name="port"/>, waiting (bounded) for it to end.</summary>
        public async Task<Activity> SpanAsync(string source, int port, int count = 1)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Bounded.Token);
            timeout.CancelAfter(Bounded.Timeout);
            while (true)
            {
                Activity[] found = [.. Spans.Where(s => s.Source.Name == source && s.GetTagItem("server.port") is int p && p == port)];
                if (found.Length >= count)
                {
                    return found[0];
                }

                await Task.Delay(20, timeout.Token);
            }
        }

        public List<MetricPoint> Points(string name, int port)
        {
            // Each flush exports every metric again (cumulative): read only the latest export.
            _metrics.Clear();
            _metering.ForceFlush();
            var points = new List<MetricPoint>();
            foreach (Metric metric in _metrics.Where(m => m.Name == name))
            {
                foreach (ref readonly MetricPoint point in metric.GetMetricPoints())
                {
                    if (Tag(point, "server.port") is int p && p == port)
                    {
                        points.Add(point);
                    }
                }
            }

            return points;
        }

        public void Dispose()
        {
            _tracing.Dispose();
            _metering.Dispose();
        }
    }

    /// <summary>A list that spans from several threads can be added to while a test reads it.</summary>
    private sealed class LockedList<T> : ICollection<T>
    {
        private readonly List<T> _items = [];

        public int Count
        {
            get
            {
                lock (_items)
                {
                    return _items.Count;
                }
            }
        }

        public bool IsReadOnly => false;

        public void Add(T item)
        {
            lock (_items)
            {
                _items.Add(item);
            }
        }

        public void Clear()
        {
            lock (_items)
            {
                _items.Clear();
            }
        }

        public bool Contains(T item)
        {
            lock (_items)
            {
                return _items.Contains(item);
            }
        }

        public void CopyTo(T[] array, int arrayIndex)
        {
            lock (_items)
            {
                _items.CopyTo(array, arrayIndex);
            }
        }

        public bool Remove(T item)
        {
            lock (_items)
            {
                return _items.Remove(item);
            }
        }

        public IEnumerator<T> GetEnumerator()
        {
            lock (_items)
            {
                return _items.ToList().GetEnumerator();
            }
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
