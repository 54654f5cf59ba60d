using ConnectRpc.Internal;

namespace ConnectRpc.Tests;

public sealed class RequestContextTests
{
    [Fact]
    public void Timeout_WithDeadline_IsTheTimeLeftNeverNegative()
    {
        var clock = new ManualClock(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var context = new RequestContext("/a.B/C", deadline: clock.GetUtcNow().AddSeconds(5), timeProvider: clock);

        Assert.Equal(TimeSpan.FromSeconds(5), context.Timeout);
        clock.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(TimeSpan.FromSeconds(2), context.Timeout);
        clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(TimeSpan.Zero, context.Timeout);
    }

    [Fact]
    public void Timeout_WithoutDeadline_IsNull()
    {
        var context = new RequestContext("/a.B/C");

        Assert.Null(context.Timeout);
        Assert.Null(context.Deadline);
        Assert.Equal(Protocol.Connect, context.Protocol);
        Assert.Equal("/a.B/C", context.Procedure);
    }

    [Fact]
    public void RequestHeaders_AreReadOnly_ResponseMetadataIsChecked()
    {
        var context = new RequestContext("/a.B/C", new Headers { ["acme-tenant-id"] = "1" });

        Assert.Equal("1", context.RequestHeaders["acme-tenant-id"]);
        Assert.Throws<InvalidOperationException>(() => context.RequestHeaders["x"] = "y");
        Assert.Throws<ArgumentException>(() => context.ResponseHeaders["Connect-Foo"] = "y");
        Assert.Throws<ArgumentException>(() => context.ResponseTrailers["grpc-status"] = "0");
        context.ResponseHeaders["greet-version"] = "v1";
        context.ResponseTrailers["greet-version"] = "v1";
    }

    [Fact]
    public void RequestHeaders_CallersInstance_IsCopiedNotFrozen()
    {
        var headers = new Headers { ["a"] = "1" };
        var context = new RequestContext("/a.B/C", headers);

        headers["a"] = "2";

        Assert.Equal("1", context.RequestHeaders["a"]);
        Assert.False(headers.IsReadOnly);
    }

    [Fact]
    public void ResponseHeaders_AfterTheyWereSent_ThrowWithAClearMessage()
    {
        var slots = new ResponseMetadataSlots();
        RequestContext context = ServerContext(slots);
        slots.MarkHeadersSent();

        InvalidOperationException error = Assert.Throws<InvalidOperationException>(() => context.ResponseHeaders["late"] = "x");

        Assert.Contains("already sent", error.Message, StringComparison.Ordinal);
        context.ResponseTrailers["still"] = "fine";
    }

    [Fact]
    public void ResponseMetadata_MadeOnFirstUse_KeptAndFrozenWhenSent()
    {
        var slots = new ResponseMetadataSlots();
        RequestContext context = ServerContext(slots);
        Assert.Null(slots.HeadersOrNull);
        Assert.Null(slots.TrailersOrNull);

        Headers headers = context.ResponseHeaders;
        headers["early"] = "x";
        Assert.Same(headers, context.ResponseHeaders);
        Assert.Same(headers, slots.HeadersOrNull);
        slots.MarkHeadersSent();

        Assert.Throws<InvalidOperationException>(() => context.ResponseHeaders["late"] = "x");
        Assert.Equal("x", context.ResponseHeaders.Get("early"));
    }

    /// <summary>A context as the server makes one: its response metadata goes into slots the server keeps.</summary>
    private static RequestContext ServerContext(ResponseMetadataSlots slots) =>
        new("/a.B/C", null, Protocol.Connect, null, null, slots, transport: null, default);

    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        private DateTimeOffset _now = now;

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }
}
