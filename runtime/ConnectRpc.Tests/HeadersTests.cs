namespace ConnectRpc.Tests;

public sealed class HeadersTests
{
    public static TheoryData<string, string> BadKeys() => new()
    {
        { "", "must not be empty" },
        { " ", "a space at index 0" },
        { "acme tenant", "a space at index 4" },
        { "acme:tenant", "the character ':' at index 4" },
        { ":path", "the character ':' at index 0" },
        { "acme/tenant", "the character '/' at index 4" },
        { "tenant\t", "a tab at index 6" },
        { "ten\r\nant", "a carriage return (CR) at index 3" },
        { "ten\0ant", "a NUL character at index 3" },
        { "schlüssel", "the non-ASCII character U+00FC at index 4" },
        { "ключ", "the non-ASCII character U+043A at index 0" },
        { "emoji-\U0001F600", "the non-ASCII character U+D83D at index 6" },
        { "quote\"d", "the character '\"' at index 5" },
    };

    [Theory]
    [MemberData(nameof(BadKeys))]
    public void Set_BadKey_ThrowsNamingKeyAndRule(string key, string rule)
    {
        var headers = new Headers();

        ArgumentException error = Assert.Throws<ArgumentException>(() => headers.Set(key, "v"));

        Assert.Contains(rule, error.Message, StringComparison.Ordinal);
        Assert.Equal("key", error.ParamName);
        if (key.Length > 0)
        {
            Assert.Contains("Header key '", error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain('\r', error.Message); // control characters are escaped in messages
            Assert.DoesNotContain('\n', error.Message);
        }

        Assert.Equal(0, headers.Count);
    }

    public static TheoryData<string, string> BadValues() => new()
    {
        { "a\rb", "a carriage return (CR) at index 1" },
        { "a\nb", "a line feed (LF) at index 1" },
        { "a\r\nInjected: yes", "a carriage return (CR) at index 1" },
        { "a\0b", "a NUL character at index 1" },
        { "a\u007Fb", "a DEL character at index 1" },
        { "a\tb", "a tab at index 1" },
        { "caf\u00E9", "the non-ASCII character U+00E9 at index 3" },
        { "\u0001", "the control character U+0001 at index 0" },
        { " leading", "must not start or end with a space" },
        { "trailing ", "must not start or end with a space" },
        { " ", "must not start or end with a space" },
    };

    [Theory]
    [MemberData(nameof(BadValues))]
    public void Set_BadValue_ThrowsNamingKeyAndRule(string value, string rule)
    {
        var headers = new Headers();

        ArgumentException error = Assert.Throws<ArgumentException>(() => headers.Set("acme-tenant-id", value));

        Assert.Contains("Header 'acme-tenant-id'", error.Message, StringComparison.Ordinal);
        Assert.Contains(rule, error.Message, StringComparison.Ordinal);
        Assert.Equal(0, headers.Count);
    }

    [Theory]
    [InlineData("connect-timeout-ms", "'connect-'")]
    [InlineData("Connect-Protocol-Version", "'connect-'")]
    [InlineData("CONNECT-ANYTHING", "'connect-'")]
    [InlineData("cOnNeCt-x", "'connect-'")]
    [InlineData("grpc-status", "'grpc-'")]
    [InlineData("Grpc-Message", "'grpc-'")]
    [InlineData("GRPC-STATUS-DETAILS-BIN", "'grpc-'")]
    [InlineData("gRPC-custom", "'grpc-'")]
    [InlineData("trailer-greet-version", "'trailer-'")]
    [InlineData("Trailer-X", "'trailer-'")]
    [InlineData("TRAILER-", "'trailer-'")]
    [InlineData("content-type", "set by the transport")]
    [InlineData("Content-Type", "set by the transport")]
    [InlineData("CONTENT-LENGTH", "set by the transport")]
    [InlineData("Content-Encoding", "set by the transport")]
    [InlineData("Accept-Encoding", "set by the transport")]
    [InlineData("Transfer-Encoding", "set by the transport")]
    [InlineData("te", "set by the transport")]
    [InlineData("TE", "set by the transport")]
    [InlineData("Trailer", "set by the transport")]
    [InlineData("Connection", "set by the transport")]
    [InlineData("Keep-Alive", "set by the transport")]
    [InlineData("Upgrade", "set by the transport")]
    [InlineData("Host", "set by the transport")]
    public void Write_ReservedKey_IsRefusedInAnyCase(string key, string rule)
    {
        var headers = new Headers();

        ArgumentException set = Assert.Throws<ArgumentException>(() => headers.Set(key, "v"));
        ArgumentException add = Assert.Throws<ArgumentException>(() => headers.Add(key, "v"));
        ArgumentException indexer = Assert.Throws<ArgumentException>(() => headers[key] = "v");

        foreach (ArgumentException error in new[] { set, add, indexer })
        {
            Assert.Contains($"Header key '{key}' is reserved", error.Message, StringComparison.Ordinal);
            Assert.Contains(rule, error.Message, StringComparison.Ordinal);
        }

        Assert.Equal(0, headers.Count);
    }

    [Theory]
    [InlineData("acme-tenant-id")]
    [InlineData("a")]
    [InlineData("0")]
    [InlineData("x_y.z-1")]
    [InlineData("connect")] // only the prefixes with a dash are reserved
    [InlineData("grpc")]
    [InlineData("trailers")]
    [InlineData("content-typed")]
    [InlineData("x-connect-foo")]
    [InlineData("user-agent")]
    [InlineData("authorization")]
    public void Set_ValidKey_IsAccepted(string key)
    {
        var headers = new Headers { [key] = "value" };

        Assert.Equal("value", headers.Get(key));
    }

    [Theory]
    [InlineData("")]
    [InlineData("v1")]
    [InlineData("Bearer abc.def-ghi")]
    [InlineData("a b")]
    [InlineData("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")]
    public void Set_PrintableValue_IsKeptExactly(string value)
    {
        var headers = new Headers { ["x"] = value };

        Assert.Equal(value, headers["x"]);
    }

    [Fact]
    public void Set_UpperCaseKey_IsStoredLowerCaseAndFoundInAnyCase()
    {
        var headers = new Headers { ["Acme-Tenant-ID"] = "1234" };

        KeyValuePair<string, string> entry = Assert.Single(headers);
        Assert.Equal("acme-tenant-id", entry.Key);
        Assert.Equal("1234", headers.Get("ACME-TENANT-ID"));
        Assert.True(headers.ContainsKey("acme-tenant-id"));
    }

    [Fact]
    public void Add_SameKey_KeepsEveryValueInOrder()
    {
        var headers = new Headers();
        headers.Add("x", "1");
        headers.Add("y", "a");
        headers.Add("X", "2");

        Assert.Equal(["1", "2"], headers.GetAll("x"));
        Assert.Equal("1", headers.Get("x"));
        Assert.Equal(3, headers.Count);
        Assert.Equal(["x", "y", "x"], headers.Select(e => e.Key));
    }

    [Fact]
    public void Set_ExistingKey_ReplacesAllValuesAtTheFirstPosition()
    {
        var headers = new Headers();
        headers.Add("a", "1");
        headers.Add("b", "2");
        headers.Add("a", "3");

        headers["A"] = "4";

        Assert.Equal([new("a", "4"), new KeyValuePair<string, string>("b", "2")], headers);
    }

    [Fact]
    public void Remove_Key_RemovesEveryValue()
    {
        var headers = new Headers();
        headers.Add("a", "1");
        headers.Add("a", "2");

        Assert.True(headers.Remove("A"));
        Assert.False(headers.Remove("a"));
        Assert.Empty(headers.GetAll("a"));
        Assert.Null(headers["a"]);
    }

    [Fact]
    public void CollectionInitializer_AddPairs_Works()
    {
        var headers = new Headers { { "a", "1" }, { "a", "2" } };

        Assert.Equal(["1", "2"], headers.GetAll("a"));
    }

    [Fact]
    public void ImplicitConversion_Dictionary_CopiesAndChecksEveryEntry()
    {
        Headers headers = new Dictionary<string, string> { ["Acme-Tenant-Id"] = "1234", ["b"] = "2" };

        Assert.Equal("1234", headers["acme-tenant-id"]);
        Assert.Equal("2", headers["b"]);
        Assert.Throws<ArgumentException>(() => { Headers bad = new Dictionary<string, string> { ["grpc-status"] = "0" }; });
        Headers? none = (Dictionary<string, string>?)null;
        Assert.Null(none);
    }

    [Fact]
    public void Indexer_NullValue_Throws()
    {
        var headers = new Headers();

        Assert.Throws<ArgumentNullException>(() => headers["x"] = null!);
        Assert.Throws<ArgumentNullException>(() => headers.Get(null!));
    }

    public static TheoryData<byte[]> BinaryValues() => new()
    {
        Array.Empty<byte>(),
        new byte[] { 0 },
        new byte[] { 0xFF, 0xFE },
        new byte[] { 1, 2, 3 },
        new byte[] { 0, 1, 2, 3, 4 },
        Enumerable.Range(0, 256).Select(i => (byte)i).ToArray(),
    };

    [Theory]
    [MemberData(nameof(BinaryValues))]
    public void SetBinary_Bytes_RoundTripAsUnpaddedBase64(byte[] bytes)
    {
        var headers = new Headers();
        headers.SetBinary("trace-Bin", bytes);

        string wire = headers["trace-bin"]!;
        Assert.DoesNotContain('=', wire);
        Assert.Equal(Convert.ToBase64String(bytes).TrimEnd('='), wire);
        Assert.Equal(bytes, headers.GetBinary("trace-bin"));
    }

    [Theory]
    [InlineData("AQID", new byte[] { 1, 2, 3 })]
    [InlineData("AQIDBA==", new byte[] { 1, 2, 3, 4 })]
    [InlineData("AQIDBA", new byte[] { 1, 2, 3, 4 })]
    [InlineData("AQIDBAU=", new byte[] { 1, 2, 3, 4, 5 })]
    [InlineData("AQIDBAU", new byte[] { 1, 2, 3, 4, 5 })]
    [InlineData("", new byte[0])]
    public void GetBinary_PaddedOrUnpadded_Decodes(string value, byte[] expected)
    {
        var headers = new Headers { ["x-bin"] = value };

        Assert.Equal(expected, headers.GetBinary("x-bin"));
    }

    [Fact]
    public void GetAllBinary_RepeatedOrCommaJoined_GivesTheSameValues()
    {
        var repeated = new Headers();
        repeated.AddBinary("x-bin", [1]);
        repeated.AddBinary("x-bin", [2, 3]);
        var joined = new Headers { ["x-bin"] = "AQ, AgM=" };

        Assert.Equal(repeated.GetAllBinary("x-bin"), joined.GetAllBinary("x-bin"));
        Assert.Equal([[1], [2, 3]], joined.GetAllBinary("x-bin"));
    }

    [Theory]
    [InlineData("not base64!")]
    [InlineData("A")]
    [InlineData("AQ=")]
    [InlineData("AQ===")]
    [InlineData("AQ==AQ")]
    [InlineData("AQ,*")]
    public void Set_BinaryKeyWithInvalidBase64_Throws(string value)
    {
        var headers = new Headers();

        ArgumentException error = Assert.Throws<ArgumentException>(() => headers["x-bin"] = value);

        Assert.Contains("must be base64", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SetBinary_KeyWithoutBinSuffix_Throws()
    {
        var headers = new Headers();

        ArgumentException error = Assert.Throws<ArgumentException>(() => headers.SetBinary("trace", [1]));

        Assert.Contains("ending in '-bin'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SetBinary_ReservedBinaryKey_IsRefused()
    {
        var headers = new Headers();

        Assert.Throws<ArgumentException>(() => headers.SetBinary("grpc-status-details-bin", [1]));
    }

    [Fact]
    public void GetBinary_ReceivedGarbage_ThrowsFormatException()
    {
        Headers received = Headers.CreateReceived();
        received.AddReceived("x-bin", "***");

        Assert.Throws<FormatException>(() => received.GetBinary("x-bin"));
    }

    [Fact]
    public void Received_KeptAsTheyCame_AndReadOnly()
    {
        Headers received = Headers.CreateReceived();
        received.AddReceived("Grpc-Custom", "anything\u00FF");
        received.MakeReadOnly();

        Assert.Equal("anything\u00FF", received.Get("grpc-custom"));
        Assert.Equal("Grpc-Custom", Assert.Single(received).Key);
        Assert.True(received.IsReadOnly);
        InvalidOperationException error = Assert.Throws<InvalidOperationException>(() => received["x"] = "y");
        Assert.Contains("read-only", error.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => received.Remove("grpc-custom"));
        Assert.Throws<InvalidOperationException>(received.Clear);
    }
}
