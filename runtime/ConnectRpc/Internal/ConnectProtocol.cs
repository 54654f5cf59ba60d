using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace ConnectRpc.Internal;

/// <summary>Wire facts of the Connect protocol (docs/protocols/connect.md) shared by client and server.</summary>
internal static class ConnectProtocol
{
    public const string ProtocolVersionHeader = "connect-protocol-version";
    public const string ProtocolVersion = "1";
    public const string TimeoutHeader = "connect-timeout-ms";
    public const string StreamContentEncodingHeader = "connect-content-encoding";
    public const string StreamAcceptEncodingHeader = "connect-accept-encoding";
    public const string TrailerPrefix = "trailer-";

    public const string UnaryProto = "application/proto";
    public const string UnaryJson = "application/json";
    public const string StreamProto = "application/connect+proto";
    public const string StreamJson = "application/connect+json";

    /// <summary>GET query parameters (docs/protocols/connect.md#unary-get).</summary>
    public const string QueryMessage = "message";
    public const string QueryEncoding = "encoding";
    public const string QueryBase64 = "base64";
    public const string QueryCompression = "compression";
    public const string QueryConnect = "connect";
    public const string QueryConnectValue = "v1";

    private const string TypeUrlPrefix = "type.googleapis.com/";

    private static readonly SearchValues<char> s_base64UrlChars =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
    private const int MaxTimeoutDigits = 10;

    public static string UnaryContentType(MessageCodec codec) => codec.IsJson ? UnaryJson : UnaryProto;

    public static string StreamContentType(MessageCodec codec) => codec.IsJson ? StreamJson : StreamProto;

    /// <summary>
    /// The codec of a unary content type (<c>application/proto</c>, <c>application/json</c>,
    /// parameters such as <c>charset=utf-8</c> allowed), or null.
    /// </summary>
    public static MessageCodec? UnaryCodec(string? contentType) => CodecAfter(contentType, "application/");

    /// <summary>The codec of a streaming content type (<c>application/connect+proto|json</c>), or null.</summary>
    public static MessageCodec? StreamCodec(string? contentType) => CodecAfter(contentType, "application/connect+");

    private static MessageCodec? CodecAfter(string? contentType, string prefix)
    {
        if (contentType is null || !contentType.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        return MessageCodec.Named(MessageCodec.WithoutParameters(contentType.AsSpan(prefix.Length)).Trim());
    }

    /// <summary>Parses <c>Connect-Timeout-Ms</c>: a positive integer of at most 10 digits (docs/wire/timeouts.md).</summary>
    public static bool TryParseTimeout(ReadOnlySpan<char> value, out TimeSpan timeout)
    {
        timeout = default;
        if (value.IsEmpty || value.Length > MaxTimeoutDigits || value.ContainsAnyExceptInRange('0', '9'))
        {
            return false;
        }

        long ms = long.Parse(value, NumberStyles.None, CultureInfo.InvariantCulture);
        timeout = TimeSpan.FromMilliseconds(ms);
        return true;
    }

    /// <summary>
    /// The <c>Connect-Timeout-Ms</c> value for the time left (rounded up to whole milliseconds),
    /// or null when it would need more than 10 digits.
    /// </summary>
    public static string? FormatTimeout(TimeSpan timeout)
    {
        long ms = Math.Max(1, (long)Math.Ceiling(timeout.TotalMilliseconds));
        return ms < 10_000_000_000 ? ms.ToString(CultureInfo.InvariantCulture) : null;
    }

    /// <summary>
    /// Writes the JSON error object of a unary error body or an end-stream message. Each detail
    /// is its type name and base64 binary; with <paramref name="debug"/>, a detail of a type it
    /// knows also gets <c>debug</c>, the detail's JSON, for people reading the error (readers ignore it).
    /// </summary>
    public static void WriteError(Utf8JsonWriter writer, ConnectException error, JsonCodec? debug = null)
    {
        writer.WriteStartObject();
        writer.WriteString("code", error.Code.ToWireName());
        if (error.Message.Length > 0)
        {
            writer.WriteString("message", error.Message);
        }

        if (error.Details.Count > 0)
        {
            writer.WriteStartArray("details");
            foreach (Any detail in error.Details)
            {
                writer.WriteStartObject();
                string typeUrl = detail.TypeUrl;
                writer.WriteString("type", typeUrl.AsSpan(typeUrl.LastIndexOf('/') + 1));
                writer.WriteString("value", HeaderRules.EncodeBinary(detail.Value.Span));
                if (debug?.TryFormat(detail) is { } json)
                {
                    writer.WritePropertyName("debug");
                    writer.WriteRawValue(json, skipInputValidation: true);
                }

                writer.WriteEndObject();
            }

            writer.WriteEndArray();
        }

        writer.WriteEndObject();
    }

    /// <summary>The body of a unary error response.</summary>
    public static void WriteErrorBody(IBufferWriter<byte> output, ConnectException error, JsonCodec? debug = null)
    {
        using var writer = new Utf8JsonWriter(output);
        WriteError(writer, error, debug);
    }

    /// <summary>
    /// The end-stream message: the error, if any, and the trailers as metadata (docs/protocols/connect.md#streaming).
    /// </summary>
    public static void WriteEndStream(IBufferWriter<byte> output, ConnectException? error, Headers trailers, Headers? errorMetadata, JsonCodec? debug = null)
    {
        using var writer = new Utf8JsonWriter(output);
        writer.WriteStartObject();
        if (error is not null)
        {
            writer.WritePropertyName("error");
            WriteError(writer, error, debug);
        }

        if (trailers.Count > 0 || errorMetadata?.Count > 0)
        {
            Headers metadata = trailers;
            if (errorMetadata?.Count > 0)
            {
                metadata = Headers.CreateReceived(trailers.Count + errorMetadata.Count);
                metadata.AddRangeUnchecked(trailers);
                metadata.AddRangeUnchecked(errorMetadata);
            }

            // Each key once, at its first position, with all its values in order.
            writer.WriteStartObject("metadata");
            var written = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (KeyValuePair<string, string> entry in metadata)
            {
                if (written.Add(entry.Key))
                {
                    writer.WriteStartArray(entry.Key);
                    foreach (string value in metadata.GetAll(entry.Key))
                    {
                        writer.WriteStringValue(value);
                    }

                    writer.WriteEndArray();
                }
            }

            writer.WriteEndObject();
        }

        writer.WriteEndObject();
    }

    /// <summary>
    /// Reads a Connect error object as a client does (docs/protocols/connect.md#client-validation): lenient about
    /// unknown keys. Without a known <c>code</c>, <paramref name="fallback"/> (the HTTP status's
    /// code, or unknown in an end-stream message) applies and the message is kept, as
    /// conformance expects; null when it is not an object, or has neither code nor message.
    /// </summary>
    public static ConnectException? ReadError(JsonElement element, Code fallback)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        string? message = element.TryGetProperty("message", out JsonElement m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
        if (!element.TryGetProperty("code", out JsonElement codeElement) ||
            codeElement.ValueKind != JsonValueKind.String ||
            !CodeMapping.TryParseWireName(codeElement.GetString(), out Code code))
        {
            if (message is null)
            {
                return null;
            }

            code = fallback;
        }

        var error = new ConnectException(code, message);
        if (element.TryGetProperty("details", out JsonElement details) && details.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement detail in details.EnumerateArray())
            {
                if (detail.ValueKind == JsonValueKind.Object &&
                    detail.TryGetProperty("type", out JsonElement type) && type.ValueKind == JsonValueKind.String &&
                    detail.TryGetProperty("value", out JsonElement value) && value.ValueKind == JsonValueKind.String &&
                    TryDecodeBase64(value.GetString()!, out byte[] bytes))
                {
                    error.Details.Add(new Any { TypeUrl = TypeUrlPrefix + type.GetString(), Value = ByteString.CopyFrom(bytes) });
                }
            }
        }

        return error;
    }

    /// <summary>A unary error body, or null when it is not a usable Connect error (see <see cref="ReadError"/>).</summary>
    public static ConnectException? ReadErrorBody(ReadOnlySequence<byte> body, Code fallback)
    {
        try
        {
            var reader = new Utf8JsonReader(body);
            using JsonDocument document = JsonDocument.ParseValue(ref reader);
            return ReadError(document.RootElement, fallback);
        }
        catch (Exception ex) when (IsInvalidJson(ex))
        {
            return null;
        }
    }

    /// <summary>
    /// Reads an end-stream message into its error (null on success) and metadata. Throws
    /// <see cref="ConnectException"/> (internal) when it is not the JSON the spec describes.
    /// </summary>
    public static ConnectException? ReadEndStream(ReadOnlySequence<byte> payload, Headers metadata)
    {
        try
        {
            var reader = new Utf8JsonReader(payload);
            using JsonDocument document = JsonDocument.ParseValue(ref reader);
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Malformed("it is not a JSON object");
            }

            if (root.TryGetProperty("metadata", out JsonElement meta) && meta.ValueKind != JsonValueKind.Null)
            {
                if (meta.ValueKind != JsonValueKind.Object)
                {
                    throw Malformed("metadata is not an object");
                }

                foreach (JsonProperty property in meta.EnumerateObject())
                {
                    if (property.Value.ValueKind != JsonValueKind.Array)
                    {
                        throw Malformed($"metadata value of '{HeaderRules.Printable(property.Name)}' is not an array");
                    }

                    foreach (JsonElement value in property.Value.EnumerateArray())
                    {
                        if (value.ValueKind != JsonValueKind.String)
                        {
                            throw Malformed($"metadata value of '{HeaderRules.Printable(property.Name)}' is not a string");
                        }

                        metadata.AddReceived(property.Name, value.GetString()!);
                    }
                }
            }

            if (!root.TryGetProperty("error", out JsonElement errorElement) || errorElement.ValueKind == JsonValueKind.Null)
            {
                return null;
            }

            // An error without a usable code is still an error (docs/protocols/connect.md#client-validation): unknown.
            return ReadError(errorElement, Code.Unknown) ?? new ConnectException(Code.Unknown, "the server's end-of-stream error has no valid code");
        }
        catch (Exception ex) when (IsInvalidJson(ex))
        {
            throw new ConnectException(Code.Internal, $"protocol error: invalid end-of-stream message: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Invalid JSON: a syntax error, or a string that is not text (invalid UTF-8, or an escaped
    /// lone surrogate such as <c>"\ud800"</c>), which the parser lets through and
    /// <see cref="JsonElement.GetString"/> refuses with <see cref="InvalidOperationException"/>.
    /// </summary>
    private static bool IsInvalidJson(Exception ex) => ex is JsonException or InvalidOperationException;

    private static ConnectException Malformed(string why) =>
        new(Code.Internal, $"protocol error: invalid end-of-stream message: {why}");

    private static bool TryDecodeBase64(string value, out byte[] bytes)
    {
        try
        {
            bytes = HeaderRules.DecodeBinary(value);
            return true;
        }
        catch (FormatException)
        {
            bytes = [];
            return false;
        }
    }

    /// <summary>Decodes the URL-safe base64 of a GET request's <c>message</c> parameter, padded or not.</summary>
    public static bool TryDecodeBase64Url(string value, PooledBufferWriter output)
    {
        // Padding is optional, but when present it only completes the last group of four:
        // "QQ==" decodes, "QQ=====" and "=" do not. Nothing outside the URL-safe alphabet is
        // skipped, whitespace included (the decoder below would ignore it).
        ReadOnlySpan<char> chars = value;
        if (chars.Length % 4 == 0 && chars.EndsWith('='))
        {
            chars = chars[..^(chars.EndsWith("==") ? 2 : 1)];
        }

        if (chars.ContainsAnyExcept(s_base64UrlChars))
        {
            return false;
        }

        int max = Base64Url.GetMaxDecodedLength(chars.Length);
        OperationStatus status = Base64Url.DecodeFromChars(chars, output.GetSpan(max), out _, out int written);
        if (status != OperationStatus.Done)
        {
            return false;
        }

        output.Advance(written);
        return true;
    }
}
