using ConnectRpc.Internal;

namespace ConnectRpc.Tests;

public sealed class CodeTests
{
    public static TheoryData<Code, int, string, int> Table() => new()
    {
        { Code.Canceled, 1, "canceled", 499 },
        { Code.Unknown, 2, "unknown", 500 },
        { Code.InvalidArgument, 3, "invalid_argument", 400 },
        { Code.DeadlineExceeded, 4, "deadline_exceeded", 504 },
        { Code.NotFound, 5, "not_found", 404 },
        { Code.AlreadyExists, 6, "already_exists", 409 },
        { Code.PermissionDenied, 7, "permission_denied", 403 },
        { Code.ResourceExhausted, 8, "resource_exhausted", 429 },
        { Code.FailedPrecondition, 9, "failed_precondition", 400 },
        { Code.Aborted, 10, "aborted", 409 },
        { Code.OutOfRange, 11, "out_of_range", 400 },
        { Code.Unimplemented, 12, "unimplemented", 501 },
        { Code.Internal, 13, "internal", 500 },
        { Code.Unavailable, 14, "unavailable", 503 },
        { Code.DataLoss, 15, "data_loss", 500 },
        { Code.Unauthenticated, 16, "unauthenticated", 401 },
    };

    [Theory]
    [MemberData(nameof(Table))]
    public void Code_Table_MatchesSpec(Code code, int number, string wireName, int httpStatus)
    {
        Assert.Equal(number, (int)code);
        Assert.Equal(wireName, code.ToWireName());
        Assert.True(CodeMapping.TryParseWireName(wireName, out Code parsed));
        Assert.Equal(code, parsed);
        Assert.Equal(httpStatus, CodeMapping.ToHttpStatus(code));
        Assert.Equal(code, CodeMapping.FromWireNumber(number));
    }

    [Fact]
    public void Code_EnumHasExactlySixteenCodes()
    {
        Assert.Equal(16, Enum.GetValues<Code>().Length);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(17)]
    [InlineData(-1)]
    [InlineData(int.MaxValue)]
    public void FromWireNumber_OutsideRange_IsUnknown(int number)
    {
        Assert.Equal(Code.Unknown, CodeMapping.FromWireNumber(number));
    }

    [Theory]
    [InlineData("")]
    [InlineData("ok")]
    [InlineData("Canceled")]
    [InlineData("cancelled")]
    [InlineData("INVALID_ARGUMENT")]
    [InlineData("invalid_argument ")]
    [InlineData("code_17")]
    public void TryParseWireName_NotAnExactName_Fails(string name)
    {
        Assert.False(CodeMapping.TryParseWireName(name, out _));
    }

    [Fact]
    public void Code_OutsideEnum_HasFallbackNameAndStatus500()
    {
        Assert.Equal("code_99", ((Code)99).ToWireName());
        Assert.Equal(500, CodeMapping.ToHttpStatus((Code)99));
    }

    [Theory]
    [InlineData(400, Code.Internal)]
    [InlineData(401, Code.Unauthenticated)]
    [InlineData(403, Code.PermissionDenied)]
    [InlineData(404, Code.Unimplemented)]
    [InlineData(429, Code.Unavailable)]
    [InlineData(502, Code.Unavailable)]
    [InlineData(503, Code.Unavailable)]
    [InlineData(504, Code.Unavailable)]
    [InlineData(409, Code.Unknown)]
    [InlineData(412, Code.Unknown)]
    [InlineData(413, Code.Unknown)]
    [InlineData(415, Code.Unknown)]
    [InlineData(418, Code.Unknown)]
    [InlineData(431, Code.Unknown)]
    [InlineData(500, Code.Unknown)]
    [InlineData(505, Code.Unknown)]
    [InlineData(800, Code.Unknown)]
    public void FromHttpStatus_Status_MapsPerSpec(int status, Code expected)
    {
        Assert.Equal(expected, CodeMapping.FromHttpStatus(status));
    }
}
