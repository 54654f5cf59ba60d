namespace ConnectRpc.Internal;

/// <summary>
/// The compressors of one options object (<c>Compressors</c>), checked once: looked up by name
/// without allocating, with the accept header made once rather than per call.
/// </summary>
internal sealed class CompressorSet
{
    private readonly Compressor[] _compressors;
    private readonly string[] _names;

    private CompressorSet(Compressor[] compressors, string[] names)
    {
        _compressors = compressors;
        _names = names;
        AcceptHeader = names.Length == 0 ? Compressor.Identity : string.Join(", ", names);
        Description = names.Length == 0 ? "none" : string.Join(", ", names);
    }

    /// <summary>The accept header's value: the names in order, or <c>identity</c> when there are none.</summary>
    public string AcceptHeader { get; }

    /// <summary>The names for an error message: listed, or <c>none</c>.</summary>
    public string Description { get; }

    public bool IsEmpty => _compressors.Length == 0;

    /// <summary>
    /// The set of <paramref name="compressors"/>, in order. A null entry, a name that is not an
    /// HTTP token or is <c>identity</c>, and a name listed twice (in any case) are refused.
    /// </summary>
    /// <param name="compressors">The options' list.</param>
    /// <param name="option">The option's name, for the message (<c>ConnectClientOptions.Compressors</c>).</param>
    /// <param name="paramName">The parameter named by the <see cref="ArgumentException"/>.</param>
    public static CompressorSet Create(IList<Compressor> compressors, string option, string paramName)
    {
        var list = new Compressor[compressors.Count];
        var names = new string[list.Length];
        for (int i = 0; i < list.Length; i++)
        {
            Compressor compressor = compressors[i] ?? throw new ArgumentException($"{option} contains null.", paramName);
            string name = compressor.Name;
            if (string.IsNullOrEmpty(name) || !IsToken(name) || Compressor.IsIdentity(name))
            {
                throw new ArgumentException(
                    $"{option} has a {compressor.GetType()} named '{HeaderRules.Printable(name ?? "")}': a compressor's name is an HTTP token other than identity.",
                    paramName);
            }

            for (int j = 0; j < i; j++)
            {
                if (string.Equals(names[j], name, StringComparison.OrdinalIgnoreCase))
                {
                    throw new ArgumentException($"{option} names '{name}' twice: each compression is listed once.", paramName);
                }
            }

            list[i] = compressor;
            names[i] = name;
        }

        return new CompressorSet(list, names);
    }

    /// <summary>The compressor named <paramref name="name"/> (without regard to case or surrounding spaces), or null.</summary>
    public Compressor? Find(ReadOnlySpan<char> name)
    {
        name = name.Trim();
        for (int i = 0; i < _names.Length; i++)
        {
            if (name.Equals(_names[i], StringComparison.OrdinalIgnoreCase))
            {
                return _compressors[i];
            }
        }

        return null;
    }

    // RFC 9110's tchar.
    private static bool IsToken(string name)
    {
        foreach (char c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c)))
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>The outcome of <see cref="Compressor.Negotiate"/>: how the peer's messages are compressed, and how to compress ours.</summary>
/// <param name="Received">The compressor of the peer's messages, or null for none.</param>
/// <param name="Send">The compressor of the messages sent back, or null for none.</param>
internal readonly record struct NegotiatedCompression(Compressor? Received, Compressor? Send);
