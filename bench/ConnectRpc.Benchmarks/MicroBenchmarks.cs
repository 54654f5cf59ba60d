using System.Buffers;
using System.IO.Pipelines;
using BenchmarkDotNet.Attributes;
using Connectrpc.Greet.V1;
using ConnectRpc.Internal;

namespace ConnectRpc.Benchmarks;

/// <summary>Header validation: what every header write by application code costs.</summary>
[MemoryDiagnoser]
public class HeaderBenchmarks
{
    private static readonly (string Key, string Value)[] s_headers =
    [
        ("acme-tenant-id", "1234"), ("x-request-id", "3f2b9c1e-6a7d-4e0b-9a51-2c8f0d3b7e64"),
        ("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl"),
        ("greet-version", "v1"), ("accept-language", "en-GB, en;q=0.8"), ("x-forwarded-for", "127.0.0.1"),
        ("cache-control", "no-cache"), ("x-trace.span_id", "00f067aa0ba902b7"),
    ];

    /// <summary>Eight typical headers set, each key and value validated.</summary>
    [Benchmark]
    public Headers SetEightHeaders()
    {
        var headers = new Headers();
        foreach ((string key, string value) in s_headers)
        {
            headers[key] = value;
        }

        return headers;
    }

    /// <summary>One binary header: validated key, unpadded base64 value.</summary>
    [Benchmark]
    public Headers SetBinaryHeader()
    {
        var headers = new Headers();
        headers.SetBinary("x-trace-bin", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
        return headers;
    }
}

/// <summary>Envelope framing: writing a frame, and reading frames back from a pipe.</summary>
[MemoryDiagnoser]
public class EnvelopeBenchmarks
{
    private readonly byte[] _payload = new byte[1024];
    private readonly PooledBufferWriter _output = new(64 * 1024);
    private byte[] _frames = [];

    [GlobalSetup]
    public void Setup()
    {
        var frames = new ArrayBufferWriter<byte>();
        for (int i = 0; i < 16; i++)
        {
            Envelope.WriteFrame(frames, EnvelopeFlags.None, _payload);
        }

        _frames = frames.WrittenSpan.ToArray();
    }

    [GlobalCleanup]
    public void Cleanup() => _output.Dispose();

    /// <summary>One 1 KiB frame written.</summary>
    [Benchmark]
    public int WriteFrame()
    {
        _output.Clear();
        Envelope.WriteFrame(_output, EnvelopeFlags.None, _payload);
        return _output.WrittenCount;
    }

    /// <summary>Sixteen 1 KiB frames read from a pipe.</summary>
    [Benchmark]
    public async Task<int> ReadSixteenFrames()
    {
        var reader = new EnvelopeReader(PipeReader.Create(new ReadOnlySequence<byte>(_frames)), int.MaxValue, Code.InvalidArgument);
        int count = 0;
        while (await reader.ReadAsync(CancellationToken.None) is not null)
        {
            count++;
        }

        return count;
    }
}

/// <summary>The codec paths: one message encoded and decoded, as proto, JSON and gzip-compressed proto.</summary>
[MemoryDiagnoser]
public class CodecBenchmarks
{
    private readonly GreetRequest _message = new() { Name = "A name of some length, as real requests have" };
    private byte[] _proto = [];
    private byte[] _json = [];
    private byte[] _gzip = [];

    [GlobalSetup]
    public void Setup()
    {
        _proto = Encode(MessageCodec.Proto, null);
        _json = Encode(MessageCodec.Json, null);
        _gzip = Encode(MessageCodec.Proto, Compressor.Gzip);
    }

    private byte[] Encode(MessageCodec codec, Compressor? compressor)
    {
        using PooledBufferWriter encoded = MessageFraming.Encode(_message, codec, compressor, int.MaxValue, out _);
        return encoded.WrittenSpan.ToArray();
    }

    [Benchmark]
    public int EncodeProto()
    {
        using PooledBufferWriter encoded = MessageFraming.Encode(_message, MessageCodec.Proto, null, int.MaxValue, out _);
        return encoded.WrittenCount;
    }

    [Benchmark]
    public GreetRequest DecodeProto() => MessageFraming.Decode(GreetRequest.Parser, MessageCodec.Proto, new ReadOnlySequence<byte>(_proto), null, int.MaxValue);

    [Benchmark]
    public int EncodeJson()
    {
        using PooledBufferWriter encoded = MessageFraming.Encode(_message, MessageCodec.Json, null, int.MaxValue, out _);
        return encoded.WrittenCount;
    }

    [Benchmark]
    public GreetRequest DecodeJson() => MessageFraming.Decode(GreetRequest.Parser, MessageCodec.Json, new ReadOnlySequence<byte>(_json), null, int.MaxValue);

    [Benchmark]
    public GreetRequest DecodeGzipProto() => MessageFraming.Decode(GreetRequest.Parser, MessageCodec.Proto, new ReadOnlySequence<byte>(_gzip), Compressor.Gzip, int.MaxValue);
}
