using Connectrpc.Greet.V1;
using Google.Protobuf.WellKnownTypes;

namespace ConnectRpc.Tests;

public sealed class ConnectExceptionTests
{
    [Fact]
    public void Message_IsTheBareWireMessage()
    {
        var error = new ConnectException(Code.NotFound, "no such user");

        Assert.Equal(Code.NotFound, error.Code);
        Assert.Equal("no such user", error.Message);
        Assert.Equal("", new ConnectException(Code.Internal).Message);
    }

    [Fact]
    public void ToString_IncludesWireCodeMessageAndCause()
    {
        var error = new ConnectException(Code.InvalidArgument, "bad name", new FormatException("inner"));

        string text = error.ToString();

        Assert.StartsWith("ConnectRpc.ConnectException: [invalid_argument] bad name ---> System.FormatException: inner", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Details_PackedMessages_UnpackByType()
    {
        var error = new ConnectException(Code.FailedPrecondition, "nope");
        error.AddDetail(new GreetRequest { Name = "first" });
        error.Details.Add(Any.Pack(new StringValue { Value = "other" }));
        error.AddDetail(new GreetRequest { Name = "second" });

        Assert.Equal("type.googleapis.com/connectrpc.greet.v1.GreetRequest", error.Details[0].TypeUrl);
        Assert.Equal("first", error.GetDetail<GreetRequest>()?.Name);
        Assert.Equal(["first", "second"], error.GetDetails<GreetRequest>().Select(d => d.Name));
        Assert.Equal("other", error.GetDetail<StringValue>()?.Value);
        Assert.Null(error.GetDetail<GreetResponse>());
    }

    [Fact]
    public void Metadata_HeadersAndTrailersKeptApart_MergedViewHasBoth()
    {
        var error = new ConnectException(Code.Aborted);
        error.Headers["x-retry"] = "later";
        error.Trailers.Add("x-retry", "never");
        error.Trailers["x-other"] = "1";

        Assert.Equal(["later"], error.Headers.GetAll("x-retry"));
        Assert.Equal(["never"], error.Trailers.GetAll("x-retry"));
        Headers merged = error.Metadata;
        Assert.Equal(["later", "never"], merged.GetAll("x-retry"));
        Assert.Equal("1", merged["x-other"]);
        Assert.Throws<InvalidOperationException>(() => merged["x"] = "y");
    }

    [Fact]
    public void Metadata_ApplicationWrites_AreChecked()
    {
        var error = new ConnectException(Code.Aborted);

        Assert.Throws<ArgumentException>(() => error.Headers["grpc-status"] = "0");
        Assert.Throws<ArgumentException>(() => error.Trailers["connect-x"] = "0");
        Assert.Throws<ArgumentException>(() => error.Trailers["x"] = "a\r\nb");
    }
}
