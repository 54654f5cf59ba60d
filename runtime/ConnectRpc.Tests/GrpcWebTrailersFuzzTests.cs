using System.Buffers;
using ConnectRpc.Internal;
using CsCheck;

namespace ConnectRpc.Tests;

/// <summary>
/// The gRPC-Web trailer block (docs/protocols/grpc-web.md#the-trailer-frame): any bytes either
/// parse or fail as a protocol error (<see cref="ConnectException"/>, internal), and what the
/// writer writes reads back.
/// </summary>
public sealed class GrpcWebTrailersFuzzTests
{
    /// <summary>Bytes that look like header blocks: names, colons, line ends, blanks, controls and high bytes.</summary>
    private static readonly Gen<byte[]> s_block = Gen.Frequency(
            (6, Gen.Byte[(byte)'a', (byte)'z']),
            (3, Gen.OneOf((byte)':', (byte)'\r', (byte)'\n', (byte)' ', (byte)'\t', (byte)'-')),
            (1, Gen.Byte))
        .Array[0, 60];

    private static readonly Gen<string> s_name = Gen.Char["abcxyzABCXYZ0189-_."].Array[1, 12].Select(chars => new string(chars));

    /// <summary>Printable ASCII without a space at either end (colons included): what the metadata rules let through.</summary>
    private static readonly Gen<string> s_value = Gen.Char[' ', '~'].Array[0, 16]
        .Select(chars => new string(chars).Trim(' '));

    [Fact]
    public void ReadWebTrailers_AnyBytes_ParsesOrIsInternal()
    {
        Gen.Select(s_block, Gen.Int[0, 60]).Check(sample =>
        {
            (byte[] block, int split) = sample;
            split = Math.Min(split, block.Length);
            Headers trailers = Headers.CreateReceived();
            try
            {
                GrpcProtocol.ReadWebTrailers(Sequences.TwoSegments(block[..split], block[split..]), trailers);
            }
            catch (ConnectException ex)
            {
                Assert.Equal(Code.Internal, ex.Code);
                Assert.DoesNotContain('\n', ex.Message);
                return;
            }

            // One entry per non-blank line: a trimmed, lower-case name before the first colon.
            int lines = System.Text.Encoding.ASCII.GetString(block).Split('\n').Count(line => !string.IsNullOrWhiteSpace(line));
            Assert.Equal(lines, trailers.Count);
            foreach ((string name, string value) in trailers)
            {
                Assert.NotEmpty(name);
                Assert.Equal(name.Trim().ToLowerInvariant(), name);
                Assert.DoesNotContain(':', name);
                Assert.Equal(value.Trim(), value);
                Assert.DoesNotContain('\n', value);
            }
        });
    }

    [Fact]
    public void WriteWebTrailers_AnyValidHeaders_ReadBackEqual()
    {
        Gen.Select(Gen.Select(s_name, s_value).Array[0, 8], Gen.Int[0, 200]).Check(sample =>
        {
            ((string Name, string Value)[] entries, int split) = sample;
            Headers written = Headers.CreateReceived();
            foreach ((string name, string value) in entries)
            {
                written.AddReceived(name, value);
            }

            var output = new ArrayBufferWriter<byte>();
            GrpcProtocol.WriteWebTrailers(output, written);
            byte[] block = output.WrittenSpan.ToArray();
            split = Math.Min(split, block.Length);
            Headers read = Headers.CreateReceived();

            GrpcProtocol.ReadWebTrailers(Sequences.TwoSegments(block[..split], block[split..]), read);

            Assert.Equal(entries.Select(e => (e.Name.ToLowerInvariant(), e.Value)), read.Select(e => (e.Key, e.Value)));
        });
    }
}
