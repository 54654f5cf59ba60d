using System.Buffers;
using System.Text;
using System.Text.Json;
using ConnectRpc.Internal;
using CsCheck;

namespace ConnectRpc.Tests;

/// <summary>
/// The Connect error JSON (docs/protocols/connect.md#error-json): a unary error body and an
/// end-stream message read from any bytes or any JSON never fail but the documented way, and
/// always give a valid code.
/// </summary>
public sealed class ConnectErrorFuzzTests
{
    private static readonly string[] s_codeNames =
    [
        "canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists",
        "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range",
        "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated",
    ];

    private static readonly string[] s_keys = ["code", "message", "details", "metadata", "error", "type", "value", "debug", "x", "Code", ""];

    /// <summary>JSON made only of valid text, for the properties that check the result exactly.</summary>
    private static readonly JsonGens s_valid = new(lonelySurrogates: false);

    /// <summary>JSON that may hold escaped lone surrogates: strings that are not text.</summary>
    private static readonly JsonGens s_any = new(lonelySurrogates: true);

    /// <summary>Generated JSON as UTF-8, sometimes with one byte changed, cut short or given garbage.</summary>
    private static Gen<byte[]> Mangled(Gen<string> json) =>
        Gen.Select(json, Gen.Int[0, 3], Gen.Int[0, 1000], Gen.Byte).Select((text, how, at, b) =>
        {
            byte[] bytes = Encoding.UTF8.GetBytes(text);
            if (bytes.Length == 0 || how == 0)
            {
                return bytes;
            }

            at %= bytes.Length;
            return how switch
            {
                1 => [.. bytes[..at], b, .. bytes[(at + 1)..]],
                2 => bytes[..at],
                _ => [.. bytes, b],
            };
        });

    [Fact]
    public void ReadErrorBody_AnyBytes_IsNullOrAnErrorWithAValidCode()
    {
        Gen.Frequency((3, Mangled(Gen.Frequency((3, s_any.ErrorObject), (1, s_any.Value)))), (1, Gen.Byte.Array[0, 40])).Check(body =>
        {
            ConnectException? error = ConnectProtocol.ReadErrorBody(new ReadOnlySequence<byte>(body), Fallback);

            if (error is not null)
            {
                Assert.True(CodeMapping.IsDefined(error.Code), $"code {error.Code}");
            }
        });
    }

    [Fact]
    public void ReadErrorBody_GeneratedErrorObject_TakesTheCodeOnlyWhenItIsAKnownName()
    {
        s_valid.ErrorObject.Check(json =>
        {
            ConnectException? error = ConnectProtocol.ReadErrorBody(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(json)), Fallback);

            // An unknown, missing or non-string code takes the HTTP status's code, keeping the
            // message (docs/protocols/connect.md#client-validation); with no message either, the
            // body is not a usable error.
            Assert.Equal(KnownCode(json) ?? (HasMessage(json) ? Fallback : null), error?.Code);
        });
    }

    [Fact]
    public void ReadEndStream_AnyBytes_IsSuccessAnErrorWithAValidCodeOrInternal()
    {
        Gen.Frequency((3, Mangled(Gen.Frequency((3, s_any.EndStream), (1, s_any.Value)))), (1, Gen.Byte.Array[0, 40])).Check(payload =>
        {
            ConnectException? error;
            try
            {
                error = ConnectProtocol.ReadEndStream(new ReadOnlySequence<byte>(payload), Headers.CreateReceived());
            }
            catch (ConnectException ex)
            {
                Assert.Equal(Code.Internal, ex.Code);
                Assert.StartsWith("protocol error: invalid end-of-stream message", ex.Message, StringComparison.Ordinal);
                return;
            }

            if (error is not null)
            {
                Assert.True(CodeMapping.IsDefined(error.Code), $"code {error.Code}");
            }
        });
    }

    [Fact]
    public void ReadEndStream_GeneratedMessage_HasTheSpecsCodeAndMetadata()
    {
        s_valid.EndStream.Check(json =>
        {
            using var document = JsonDocument.Parse(json);
            JsonElement root = document.RootElement;
            Headers metadata = Headers.CreateReceived();
            ConnectException? error;
            try
            {
                error = ConnectProtocol.ReadEndStream(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(json)), metadata);
            }
            catch (ConnectException ex)
            {
                Assert.Equal(Code.Internal, ex.Code);
                Assert.False(MetadataIsValid(root), "valid metadata was refused: " + ex.Message);
                return;
            }

            Assert.True(MetadataIsValid(root), "invalid metadata was accepted");
            if (!root.TryGetProperty("error", out JsonElement errorElement) || errorElement.ValueKind == JsonValueKind.Null)
            {
                Assert.Null(error); // {"error": null} and {} are success
            }
            else
            {
                // A missing, null or unknown code is unknown
                // (docs/protocols/connect.md#client-validation).
                Assert.Equal(KnownCode(errorElement.GetRawText()) ?? Code.Unknown, error?.Code);
            }
        });
    }

    // Found by the properties above: strings that are not text made GetString throw InvalidOperationException.
    [Theory]
    [InlineData("{\"code\":\"\u00A9\"}")] // a lone 0xA9 byte: invalid UTF-8
    [InlineData("{\"code\":\"\\udc00\"}")] // an escaped lone low surrogate
    [InlineData("{\"code\":\"internal\",\"message\":\"\\ud800\"}")]
    [InlineData("{\"code\":\"internal\",\"details\":[{\"type\":\"\\ud800\",\"value\":\"\"}]}")]
    public void ReadErrorBody_StringThatIsNotText_IsNotAUsableError(string body)
    {
        // Latin-1: one byte per character, so U+00A9 is the raw byte 0xA9.
        Assert.Null(ConnectProtocol.ReadErrorBody(new ReadOnlySequence<byte>(Encoding.Latin1.GetBytes(body)), Fallback));
    }

    [Theory]
    [InlineData("{\"metadata\":{\"a\":[\"\\udc00\"]}}")]
    [InlineData("{\"error\":{\"code\":\"\\udc00\"}}")]
    [InlineData("{\"error\":{\"code\":\"internal\",\"message\":\"\\ud800\"}}")]
    [InlineData("{\"error\":{\"message\":\"\\ud800\"}}")]
    public void ReadEndStream_StringThatIsNotText_IsInternal(string payload)
    {
        ConnectException error = Assert.Throws<ConnectException>(
            () => ConnectProtocol.ReadEndStream(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(payload)), Headers.CreateReceived()));

        Assert.Equal(Code.Internal, error.Code);
        Assert.StartsWith("protocol error: invalid end-of-stream message", error.Message, StringComparison.Ordinal);
    }

    /// <summary>The code an unusable <c>code</c> falls back to: the HTTP status's (503 here).</summary>
    private const Code Fallback = Code.Unavailable;

    /// <summary>Reference: whether an error object has a string <c>message</c>.</summary>
    private static bool HasMessage(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.ValueKind == JsonValueKind.Object &&
            document.RootElement.TryGetProperty("message", out JsonElement message) &&
            message.ValueKind == JsonValueKind.String;
    }

    /// <summary>Reference: the code of an error object whose <c>code</c> is one of the 16 names, as its raw JSON spells it.</summary>
    private static Code? KnownCode(string json)
    {
        using var document = JsonDocument.Parse(json);
        if (document.RootElement.ValueKind != JsonValueKind.Object ||
            !document.RootElement.TryGetProperty("code", out JsonElement code) ||
            code.ValueKind != JsonValueKind.String)
        {
            return null;
        }

        // The generator never spells a code name with escapes, so the raw literal is the name.
        string raw = code.GetRawText()[1..^1];
        int index = Array.IndexOf(s_codeNames, raw);
        return index >= 0 ? (Code)(index + 1) : null;
    }

    private static bool MetadataIsValid(JsonElement root) =>
        !root.TryGetProperty("metadata", out JsonElement metadata)
        || metadata.ValueKind == JsonValueKind.Null
        || (metadata.ValueKind == JsonValueKind.Object && metadata.EnumerateObject().All(p =>
            p.Value.ValueKind == JsonValueKind.Array && p.Value.EnumerateArray().All(v => v.ValueKind == JsonValueKind.String)));

    /// <summary>Generators of the JSON the tests read: values, error objects and end-stream messages.</summary>
    private sealed class JsonGens
    {
        public JsonGens(bool lonelySurrogates)
        {
            string[] pieces = ["a", "é", "\\n", "\\\"", "\\u0041", "\\ud83d\\ude00", "\\u0000", "AAAA", "QQ", "QQ==", "Q", "=", "\\/"];
            if (lonelySurrogates)
            {
                pieces = [.. pieces, "\\ud800", "\\udc00"];
            }

            // String literals: code names, near misses, and text of escapes, non-ASCII and base64.
            Gen<string> text = Gen.Frequency(
                    (4, Gen.OneOf(s_codeNames)),
                    (1, Gen.OneOf("ok", "OK", "Canceled", "cancelled", "NOT_FOUND", "code_99", "", " internal")),
                    (4, Gen.OneOf(pieces).Array[0, 4].Select(string.Concat)))
                .Select(t => "\"" + t + "\"");
            Gen<string> scalar = Gen.Frequency(
                (4, text),
                (2, Gen.OneOf("0", "-1", "13", "1e400", "0.5", "true", "false", "null", "9999999999999999999999")),
                (1, Gen.Int.Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture))));

            // Any JSON value, with objects keyed mostly by the names the parsers look for.
            Value = Gen.Recursive<string>((depth, json) => depth >= 3
                ? scalar
                : Gen.Frequency(
                    (3, scalar),
                    (1, json.Array[0, 3].Select(items => "[" + string.Join(",", items) + "]")),
                    (2, Gen.Select(Gen.OneOf(s_keys).Select(key => "\"" + key + "\""), json).Array[0, 4]
                        .Select(members => "{" + string.Join(",", members.Select(m => m.Item1 + ":" + m.Item2)) + "}"))));

            // An error object with the fields of the spec, each of a random type (or left out).
            ErrorObject = Gen.Select(Field("code", text), Field("message", Value), Field("details", Value), Field("debug", Value))
                .Select((a, b, c, d) => Object(a, b, c, d));

            // An end-stream message: error and metadata of random shape, metadata usually as the spec has it.
            EndStream = Gen.Select(
                    Field("error", Gen.Frequency((3, ErrorObject), (1, Value))),
                    Field("metadata", Gen.Frequency(
                        (3, Gen.Select(text, text.Array[0, 3]).Array[0, 3]
                            .Select(entries => "{" + string.Join(",", entries.Select(e => e.Item1 + ":[" + string.Join(",", e.Item2) + "]")) + "}")),
                        (1, Value))))
                .Select((a, b) => Object(a, b));
        }

        public Gen<string> Value { get; }

        public Gen<string> ErrorObject { get; }

        public Gen<string> EndStream { get; }

        private static Gen<string?> Field(string name, Gen<string> value) =>
            Gen.Frequency((3, value.Select(v => (string?)("\"" + name + "\":" + v))), (1, Gen.Const((string?)null)));

        private static string Object(params string?[] fields) => "{" + string.Join(",", fields.Where(f => f is not null)) + "}";
    }
}
