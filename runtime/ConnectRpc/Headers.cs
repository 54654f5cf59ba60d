using System.Collections;
using System.Diagnostics.CodeAnalysis;
using ConnectRpc.Internal;

namespace ConnectRpc;

/// <summary>
/// RPC metadata: an ordered, case-insensitive multimap of header keys to values, used for
/// request headers, response headers and trailers alike, whatever the wire protocol.
/// </summary>
/// <remarks>
/// <para>
/// Every write is checked against the metadata rules: keys are ASCII letters, digits,
/// <c>-</c>, <c>_</c> and <c>.</c> (stored lower case); values are printable ASCII without
/// leading or trailing spaces; keys starting <c>connect-</c>, <c>grpc-</c> or <c>trailer-</c>
/// and the names the transport owns (<c>content-type</c>, <c>te</c>, …) are refused. A
/// violation throws <see cref="ArgumentException"/> naming the key and the rule.
/// </para>
/// <para>
/// Keys ending in <c>-bin</c> carry bytes: use <see cref="SetBinary"/>, <see cref="AddBinary"/>
/// and <see cref="GetBinary"/>, which encode unpadded base64 and decode padded or unpadded.
/// </para>
/// <para>
/// Headers received from the network are exposed exactly as they came and are read-only.
/// A repeated field and one comma-joined field are equivalent on the wire; values are kept
/// as received and never split. Instances are not thread-safe.
/// </para>
/// </remarks>
public sealed class Headers : IEnumerable<KeyValuePair<string, string>>
{
    private readonly List<KeyValuePair<string, string>> _entries;
    private string? _readOnlyReason;

    /// <summary>Creates an empty, writable set of headers.</summary>
    public Headers()
    {
        _entries = [];
    }

    private Headers(int capacity, string? readOnlyReason)
    {
        _entries = new List<KeyValuePair<string, string>>(capacity);
        _readOnlyReason = readOnlyReason;
    }

    /// <summary>An empty, read-only instance.</summary>
    internal static Headers Empty { get; } = new(0, "These headers are read-only.");

    /// <summary>The number of values (a key with two values counts twice).</summary>
    public int Count => _entries.Count;

    /// <summary>True when writes throw: received headers, and headers already sent.</summary>
    public bool IsReadOnly => _readOnlyReason is not null;

    /// <summary>
    /// Gets the first value of <paramref name="key"/> (null when absent), or replaces all of
    /// its values with one.
    /// </summary>
    /// <param name="key">The header key, in any case.</param>
    [DisallowNull]
    public string? this[string key]
    {
        get => Get(key);
        set => Set(key, value);
    }

    /// <summary>The first value of <paramref name="key"/>, or null when there is none.</summary>
    public string? Get(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        foreach (KeyValuePair<string, string> entry in _entries)
        {
            if (KeyEquals(entry.Key, key))
            {
                return entry.Value;
            }
        }

        return null;
    }

    /// <summary>Every value of <paramref name="key"/>, in the order they were added or received.</summary>
    public IReadOnlyList<string> GetAll(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        List<string>? values = null;
        foreach (KeyValuePair<string, string> entry in _entries)
        {
            if (KeyEquals(entry.Key, key))
            {
                (values ??= []).Add(entry.Value);
            }
        }

        return values is null ? [] : values;
    }

    /// <summary>True when <paramref name="key"/> has at least one value.</summary>
    public bool ContainsKey(string key) => Get(key) is not null;

    /// <summary>Replaces every value of <paramref name="key"/> with <paramref name="value"/>.</summary>
    /// <exception cref="ArgumentException">The key or value breaks a metadata rule.</exception>
    public void Set(string key, string value)
    {
        string stored = CheckWrite(key, value);
        int index = RemoveAllAndGetFirstIndex(stored);
        _entries.Insert(index < 0 ? _entries.Count : index, new(stored, value));
    }

    /// <summary>Appends a value to <paramref name="key"/>, keeping any it already has.</summary>
    /// <exception cref="ArgumentException">The key or value breaks a metadata rule.</exception>
    public void Add(string key, string value)
    {
        string stored = CheckWrite(key, value);
        _entries.Add(new(stored, value));
    }

    /// <summary>Removes every value of <paramref name="key"/>; true when there was one.</summary>
    public bool Remove(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        ThrowIfReadOnly();
        return RemoveAllAndGetFirstIndex(key) >= 0;
    }

    /// <summary>Removes every key and value.</summary>
    public void Clear()
    {
        ThrowIfReadOnly();
        _entries.Clear();
    }

    /// <summary>Replaces every value of a binary key (ending in <c>-bin</c>) with the given bytes.</summary>
    /// <exception cref="ArgumentException">The key breaks a metadata rule or does not end in <c>-bin</c>.</exception>
    public void SetBinary(string key, ReadOnlySpan<byte> value)
    {
        CheckBinaryKey(key);
        Set(key, HeaderRules.EncodeBinary(value));
    }

    /// <summary>Appends bytes to a binary key (ending in <c>-bin</c>).</summary>
    /// <exception cref="ArgumentException">The key breaks a metadata rule or does not end in <c>-bin</c>.</exception>
    public void AddBinary(string key, ReadOnlySpan<byte> value)
    {
        CheckBinaryKey(key);
        Add(key, HeaderRules.EncodeBinary(value));
    }

    /// <summary>
    /// The first value of a binary key, decoded (padded or unpadded base64; of a comma-joined
    /// field, the first element); null when absent.
    /// </summary>
    /// <exception cref="FormatException">The value is not base64.</exception>
    public byte[]? GetBinary(string key)
    {
        string? value = Get(key);
        if (value is null)
        {
            return null;
        }

        int comma = value.IndexOf(',', StringComparison.Ordinal);
        return HeaderRules.DecodeBinary(comma < 0 ? value : value.AsSpan(0, comma));
    }

    /// <summary>
    /// Every value of a binary key, decoded; comma-joined fields are split first, so the
    /// result is the same whether the peer repeated the field or joined it.
    /// </summary>
    /// <exception cref="FormatException">A value is not base64.</exception>
    public IReadOnlyList<byte[]> GetAllBinary(string key)
    {
        var result = new List<byte[]>();
        foreach (string value in GetAll(key))
        {
            ReadOnlySpan<char> span = value;
            foreach (Range part in span.Split(','))
            {
                result.Add(HeaderRules.DecodeBinary(span[part]));
            }
        }

        return result;
    }

    /// <summary>Enumerates every (key, value) pair in order; a key appears once per value.</summary>
    public Enumerator GetEnumerator() => new(_entries.GetEnumerator());

    IEnumerator<KeyValuePair<string, string>> IEnumerable<KeyValuePair<string, string>>.GetEnumerator() => GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>
    /// Copies a dictionary into new headers, checking every entry, so a call site can write
    /// <c>headers: new() { ["acme-tenant-id"] = "1234" }</c> or pass an existing dictionary.
    /// </summary>
    /// <exception cref="ArgumentException">An entry breaks a metadata rule.</exception>
    [return: NotNullIfNotNull(nameof(values))]
    public static implicit operator Headers?(Dictionary<string, string>? values)
    {
        if (values is null)
        {
            return null;
        }

        var headers = new Headers(values.Count, readOnlyReason: null);
        foreach (KeyValuePair<string, string> entry in values)
        {
            headers.Add(entry.Key, entry.Value);
        }

        return headers;
    }

    /// <summary>Creates headers the runtime fills from the network, bypassing the write rules.</summary>
    internal static Headers CreateReceived(int capacity = 8) => new(capacity, readOnlyReason: null);

    /// <summary>Appends a received value as it came. Only the runtime calls this.</summary>
    internal void AddReceived(string key, string value) => _entries.Add(new(key, value));

    /// <summary>Makes further writes throw <see cref="InvalidOperationException"/> with <paramref name="reason"/>.</summary>
    internal Headers MakeReadOnly(string reason = "These headers were received from the peer and are read-only.")
    {
        _readOnlyReason ??= reason;
        return this;
    }

    /// <summary>A read-only copy of these headers.</summary>
    internal Headers CopyReadOnly()
    {
        Headers copy = CreateReceived(_entries.Count);
        copy.AddRangeUnchecked(this);
        return copy.MakeReadOnly();
    }

    /// <summary>Copies every entry of <paramref name="other"/> after this instance's own.</summary>
    internal void AddRangeUnchecked(Headers other) => _entries.AddRange(other._entries);

    private string CheckWrite(string key, string value)
    {
        ThrowIfReadOnly();
        string stored = HeaderRules.ValidateKey(key);
        HeaderRules.ValidateValue(stored, value);
        return stored;
    }

    private static void CheckBinaryKey(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (!HeaderRules.IsBinaryKey(key))
        {
            throw new ArgumentException(
                $"Header key '{HeaderRules.Printable(key)}' cannot take bytes: binary values need a key ending in '-bin'.",
                nameof(key));
        }
    }

    private void ThrowIfReadOnly()
    {
        if (_readOnlyReason is not null)
        {
            throw new InvalidOperationException(_readOnlyReason);
        }
    }

    private int RemoveAllAndGetFirstIndex(string key)
    {
        int first = -1;
        for (int i = _entries.Count - 1; i >= 0; i--)
        {
            if (KeyEquals(_entries[i].Key, key))
            {
                _entries.RemoveAt(i);
                first = i;
            }
        }

        return first;
    }

    private static bool KeyEquals(string a, string b) =>
        a.Length == b.Length && string.Equals(a, b, StringComparison.OrdinalIgnoreCase);

    /// <summary>Enumerates the (key, value) pairs of <see cref="Headers"/> without allocating.</summary>
    public struct Enumerator : IEnumerator<KeyValuePair<string, string>>
    {
        private List<KeyValuePair<string, string>>.Enumerator _inner;

        internal Enumerator(List<KeyValuePair<string, string>>.Enumerator inner) => _inner = inner;

        /// <summary>The current (key, value) pair.</summary>
        public readonly KeyValuePair<string, string> Current => _inner.Current;

        readonly object IEnumerator.Current => Current;

        /// <summary>Moves to the next pair; false at the end.</summary>
        public bool MoveNext() => _inner.MoveNext();

        /// <summary>Releases nothing; present for <see cref="IDisposable"/>.</summary>
        public void Dispose() => _inner.Dispose();

        void IEnumerator.Reset() => ((IEnumerator)_inner).Reset();
    }
}
