using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;

namespace ConnectRpc.Internal;

/// <summary>Encodes and decodes messages for one wire codec.</summary>
internal abstract class MessageCodec
{
    public static MessageCodec Proto { get; } = new ProtoCodec();

    /// <summary>The JSON codec with the well-known types only; a call uses its method's (<see cref="Method.JsonCodec"/>).</summary>
    public static JsonCodec Json => JsonCodec.WellKnown;

    /// <summary>Whether this is a JSON codec (of any type registry).</summary>
    public bool IsJson => this is JsonCodec;

    /// <summary>The codec's name in content types: <c>proto</c> or <c>json</c>.</summary>
    public abstract string Name { get; }

    public static MessageCodec For(Codec codec) => codec switch
    {
        Codec.Proto => Proto,
        Codec.Json => Json,
        _ => throw new ArgumentOutOfRangeException(nameof(codec), codec, "Unknown codec."),
    };

    /// <summary>
    /// The codec a content-type suffix or a GET <c>encoding</c> parameter names
    /// (<c>proto</c> or <c>json</c>, any case), or null.
    /// </summary>
    public static MessageCodec? Named(ReadOnlySpan<char> name) =>
        name.Equals("proto", StringComparison.OrdinalIgnoreCase) ? Proto
        : name.Equals("json", StringComparison.OrdinalIgnoreCase) ? Json
        : null;

    /// <summary>A media type without its parameters (<c>; charset=utf-8</c> and the like).</summary>
    public static ReadOnlySpan<char> WithoutParameters(ReadOnlySpan<char> mediaType)
    {
        int parameters = mediaType.IndexOf(';');
        return parameters >= 0 ? mediaType[..parameters] : mediaType;
    }

    /// <summary>Appends the encoded message to <paramref name="output"/>.</summary>
    public abstract void Serialize<T>(T message, IBufferWriter<byte> output)
        where T : class, IMessage<T>;

    /// <summary>
    /// Decodes a message. Malformed input throws <see cref="MessageDecodeException"/>; the
    /// caller picks the code, as it depends on the direction (invalid_argument on a server,
    /// internal on a client).
    /// </summary>
    public T Deserialize<T>(MessageParser<T> parser, ReadOnlySequence<byte> data)
        where T : class, IMessage<T>
    {
        try
        {
            return DeserializeCore(parser, data);
        }
        // InvalidOperationException: an Any of a type the registry lacks.
        catch (Exception ex) when (ex is InvalidProtocolBufferException or InvalidJsonException or DecoderFallbackException or InvalidOperationException or JsonException)
        {
            throw new MessageDecodeException($"cannot decode {Name} message: {ex.Message}", ex);
        }
    }

    protected abstract T DeserializeCore<T>(MessageParser<T> parser, ReadOnlySequence<byte> data)
        where T : class, IMessage<T>;

    private sealed class ProtoCodec : MessageCodec
    {
        public override string Name => "proto";

        public override void Serialize<T>(T message, IBufferWriter<byte> output)
        {
            int size = message.CalculateSize();
            if (size > 0)
            {
                message.WriteTo(output.GetSpan(size)[..size]);
                output.Advance(size);
            }
        }

        protected override T DeserializeCore<T>(MessageParser<T> parser, ReadOnlySequence<byte> data) => parser.ParseFrom(data);
    }
}

/// <summary>
/// The JSON codec (protobuf's canonical JSON mapping) with one type registry: the message types it can
/// write and read inside <c>google.protobuf.Any</c>. Formatter and parser are immutable and thread-safe;
/// a codec is made once per service file (<see cref="Method.JsonCodec"/>), or per method and options
/// that add types.
/// </summary>
internal sealed class JsonCodec : MessageCodec
{
    // Strict UTF-8: invalid bytes are an error, not replacement characters.
    private static readonly UTF8Encoding s_utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The well-known types, known to every JSON codec: Google.Protobuf carries them all.</summary>
    private static readonly FileDescriptor[] s_wellKnown =
    [
        AnyReflection.Descriptor, ApiReflection.Descriptor, DurationReflection.Descriptor, EmptyReflection.Descriptor,
        FieldMaskReflection.Descriptor, SourceContextReflection.Descriptor, StructReflection.Descriptor,
        TimestampReflection.Descriptor, TypeReflection.Descriptor, WrappersReflection.Descriptor,
    ];

    private static readonly ConditionalWeakTable<FileDescriptor, JsonCodec> s_byFile = new();

    /// <summary>
    /// Well-known types whose JSON is an ordinary message's. In an Any, protojson (and every peer
    /// following it) writes their fields beside <c>@type</c>; Google.Protobuf nests them under
    /// <c>value</c>, as for the types with a JSON form of their own, and requires that when it reads.
    /// </summary>
    private static readonly string[] s_plainWellKnownNames =
        [.. new[] { "Empty", "Api", "Method", "Mixin", "Type", "Field", "Enum", "EnumValue", "Option", "SourceContext" }
            .Select(name => "google.protobuf." + name)];

    /// <summary>How each of <see cref="s_plainWellKnownNames"/> ends a type URL in JSON text: <c>/google.protobuf.Empty"</c>.</summary>
    private static readonly byte[][] s_plainWellKnown = [.. s_plainWellKnownNames.Select(name => Encoding.UTF8.GetBytes($"/{name}\""))];

    [ThreadStatic]
    private static CompactUtf8Writer? t_writer;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_scratch;

    private readonly JsonFormatter _formatter;
    private readonly JsonParser _parser;

    private JsonCodec(IEnumerable<FileDescriptor> files)
    {
        Files = [.. s_wellKnown.Concat(files).Distinct()];
        Registry = TypeRegistry.FromFiles(Files);
        _formatter = new JsonFormatter(JsonFormatter.Settings.Default.WithTypeRegistry(Registry));
        // Unknown fields are skipped, so a peer built from a newer schema can still talk to
        // this one (connect-go does the same); everything else in the JSON must be valid.
        _parser = new JsonParser(JsonParser.Settings.Default.WithIgnoreUnknownFields(true).WithTypeRegistry(Registry));
    }

    /// <summary>The codec that knows the well-known types only.</summary>
    public static JsonCodec WellKnown { get; } = new([]);

    /// <summary>The files whose messages (and their imports' messages) the registry holds.</summary>
    public IReadOnlyList<FileDescriptor> Files { get; }

    public TypeRegistry Registry { get; }

    public override string Name => "json";

    /// <summary>The codec of <paramref name="files"/>: one per file when there is one (a service's), shared.</summary>
    public static JsonCodec ForFiles(IReadOnlyList<FileDescriptor> files) =>
        files.Count == 1 ? s_byFile.GetValue(files[0], static file => new JsonCodec([file])) : new JsonCodec(files);

    /// <summary>This codec's types and those of <paramref name="extra"/> (each with its whole file and imports).</summary>
    public JsonCodec With(IReadOnlyList<MessageDescriptor> extra) =>
        extra.Count == 0 ? this : new JsonCodec(Files.Concat(extra.Select(static m => m.File)));

    /// <summary>
    /// Writes compact JSON (no spaces between tokens) as UTF-8 straight into <paramref name="output"/>.
    /// A message the formatter cannot write (an <c>Any</c> of a type the registry lacks, a
    /// <c>Value</c> with no kind, a string with a lone surrogate) throws <see cref="MessageEncodeException"/>.
    /// </summary>
    public override void Serialize<T>(T message, IBufferWriter<byte> output) => Write(message, output);

    /// <summary>
    /// The JSON of the message packed in <paramref name="any"/> (an error detail's <c>debug</c>), or
    /// null when its type is not in the registry or it cannot be read or written.
    /// </summary>
    public byte[]? TryFormat(Any any)
    {
        if (Registry.Find(Any.GetTypeName(any.TypeUrl)) is not { Parser: { } parser })
        {
            return null;
        }

        try
        {
            var output = new ArrayBufferWriter<byte>();
            Write(parser.ParseFrom(any.Value), output);
            return output.WrittenSpan.ToArray();
        }
        catch (Exception ex) when (ex is MessageEncodeException or InvalidProtocolBufferException)
        {
            return null;
        }
    }

    private void Write(IMessage message, IBufferWriter<byte> output)
    {
        CompactUtf8Writer writer = t_writer ??= new CompactUtf8Writer();
        ArrayBufferWriter<byte> scratch = t_scratch ??= new ArrayBufferWriter<byte>(256);
        scratch.ResetWrittenCount();
        writer.Start(scratch);
        try
        {
            _formatter.Format(message, writer);
            writer.Finish();
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or InvalidProtocolBufferException)
        {
            throw new MessageEncodeException($"cannot encode {Name} message: {ex.Message}", ex);
        }
        finally
        {
            writer.Start(null);
        }

        ReadOnlySpan<byte> json = scratch.WrittenSpan;
        if (HasPlainWellKnownAny(json))
        {
            JsonNode root;
            try
            {
                root = JsonNode.Parse(json)!;
            }
            catch (JsonException ex)
            {
                // Nested deeper than System.Text.Json's default limit (64) where a well-known type's Any is rewritten.
                throw new MessageEncodeException($"cannot encode {Name} message: {ex.Message}", ex);
            }

            MovePlainWellKnownValues(root, inline: true);
            using var rewriter = new Utf8JsonWriter(output, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
            root.WriteTo(rewriter);
        }
        else
        {
            output.Write(json);
        }

        if (scratch.Capacity > 64 * 1024)
        {
            t_scratch = null; // a large message's buffer is not kept for the thread's life
        }
    }

    /// <summary>Whether the JSON has an Any of a well-known type that protojson writes as an ordinary message.</summary>
    private static bool HasPlainWellKnownAny(ReadOnlySpan<byte> json)
    {
        if (json.IndexOf("/google.protobuf."u8) < 0)
        {
            return false;
        }

        foreach (byte[] name in s_plainWellKnown)
        {
            if (json.IndexOf(name) >= 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Rewrites every Any of a well-known type that protojson writes as an ordinary message:
    /// <paramref name="inline"/>, its fields out of <c>value</c> beside <c>@type</c> (as protojson writes
    /// them); otherwise into <c>value</c> (as Google.Protobuf reads them).
    /// </summary>
    private static void MovePlainWellKnownValues(JsonNode? node, bool inline)
    {
        switch (node)
        {
            case JsonArray array:
                foreach (JsonNode? item in array)
                {
                    MovePlainWellKnownValues(item, inline);
                }

                break;
            case JsonObject obj:
                foreach (KeyValuePair<string, JsonNode?> property in obj.ToArray())
                {
                    MovePlainWellKnownValues(property.Value, inline);
                }

                if (obj["@type"] is JsonValue type && type.TryGetValue(out string? url) && IsPlainWellKnown(url))
                {
                    if (inline && obj["value"] is JsonObject value)
                    {
                        obj.Remove("value");
                        foreach (KeyValuePair<string, JsonNode?> field in value.ToArray())
                        {
                            value.Remove(field.Key);
                            obj[field.Key] = field.Value;
                        }
                    }
                    else if (!inline && !obj.ContainsKey("value"))
                    {
                        var wrapped = new JsonObject();
                        foreach (KeyValuePair<string, JsonNode?> field in obj.ToArray())
                        {
                            if (field.Key != "@type")
                            {
                                obj.Remove(field.Key);
                                wrapped[field.Key] = field.Value;
                            }
                        }

                        obj["value"] = wrapped;
                    }
                }

                break;
        }
    }

    private static bool IsPlainWellKnown(string typeUrl)
    {
        // Read in place: a type URL comes from the peer and may be of any length.
        int slash = typeUrl.LastIndexOf('/');
        return slash >= 0 && Array.IndexOf(s_plainWellKnownNames, typeUrl[(slash + 1)..]) >= 0;
    }

    protected override T DeserializeCore<T>(MessageParser<T> parser, ReadOnlySequence<byte> data)
    {
        string json = s_utf8.GetString(data);
        if (json.Contains("/google.protobuf.", StringComparison.Ordinal) &&
            HasPlainWellKnownAny(data.IsSingleSegment ? data.FirstSpan : Encoding.UTF8.GetBytes(json)))
        {
            JsonNode? root = JsonNode.Parse(json);
            MovePlainWellKnownValues(root, inline: false);
            json = root?.ToJsonString() ?? json;
        }

        // An empty body is the empty message, as for the binary codec.
        return json.Length == 0 ? parser.ParseFrom(ReadOnlySequence<byte>.Empty) : (T)_parser.Parse(json, DescriptorOf(parser));
    }

    private static MessageDescriptor DescriptorOf<T>(MessageParser<T> parser)
        where T : class, IMessage<T> =>
        DescriptorCache<T>.Value ??= parser.ParseFrom(ReadOnlySequence<byte>.Empty).Descriptor;

    private static class DescriptorCache<T>
    {
        public static MessageDescriptor? Value;
    }

    /// <summary>
    /// The formatter's text as compact UTF-8: the spaces it puts between tokens are dropped,
    /// those inside strings kept. It tracks strings and escapes across writes, so it does not
    /// depend on how the formatter splits its output.
    /// </summary>
    private sealed class CompactUtf8Writer : TextWriter
    {
        private IBufferWriter<byte>? _output;
        private bool _inString;
        private bool _escaped;
        private char _highSurrogate;

        public override Encoding Encoding => s_utf8;

        public void Start(IBufferWriter<byte>? output)
        {
            _output = output;
            _inString = false;
            _escaped = false;
            _highSurrogate = '\0';
        }

        public void Finish()
        {
            if (_highSurrogate != '\0')
            {
                throw new ArgumentException("The JSON text ends with a lone high surrogate.");
            }
        }

        public override void Write(char value) => Append(new ReadOnlySpan<char>(in value));

        public override void Write(string? value) => Append(value);

        public override void Write(char[] buffer, int index, int count) => Append(buffer.AsSpan(index, count));

        public override void Write(ReadOnlySpan<char> buffer) => Append(buffer);

        private void Append(ReadOnlySpan<char> chars)
        {
            IBufferWriter<byte> output = _output!;
            // Worst case three bytes a char (a surrogate pair is four bytes for two chars).
            Span<byte> span = output.GetSpan(chars.Length * 3 + 4);
            int written = 0;
            foreach (char c in chars)
            {
                if (c < 0x80)
                {
                    if (_highSurrogate != '\0')
                    {
                        throw new ArgumentException("The JSON text has a lone high surrogate.");
                    }

                    if (_inString)
                    {
                        if (_escaped)
                        {
                            _escaped = false;
                        }
                        else if (c == '\\')
                        {
                            _escaped = true;
                        }
                        else if (c == '"')
                        {
                            _inString = false;
                        }
                    }
                    else if (c == '"')
                    {
                        _inString = true;
                    }
                    else if (c is ' ' or '\n' or '\r' or '\t')
                    {
                        continue;
                    }

                    span[written++] = (byte)c;
                    continue;
                }

                _escaped = false;
                if (char.IsHighSurrogate(c))
                {
                    _highSurrogate = _highSurrogate == '\0' ? c : throw new ArgumentException("The JSON text has a lone high surrogate.");
                    continue;
                }

                Rune rune;
                if (char.IsLowSurrogate(c))
                {
                    rune = _highSurrogate != '\0' ? new Rune(_highSurrogate, c) : throw new ArgumentException("The JSON text has a lone low surrogate.");
                    _highSurrogate = '\0';
                }
                else
                {
                    rune = new Rune(c);
                }

                written += rune.EncodeToUtf8(span[written..]);
            }

            output.Advance(written);
        }
    }
}

/// <summary>
/// A message the runtime cannot encode (JSON: an <c>Any</c> of an unknown type, a malformed
/// well-known type): internal, the runtime's failure rather than the handler's. A client fails
/// the call with it before the message is sent; a server logs it and sends internal.
/// </summary>
internal sealed class MessageEncodeException(string message, Exception inner) : ConnectException(Code.Internal, message, inner);

/// <summary>A message could not be decoded; the caller turns it into the code of its direction.</summary>
internal sealed class MessageDecodeException(string message, Exception inner) : Exception(message, inner);
