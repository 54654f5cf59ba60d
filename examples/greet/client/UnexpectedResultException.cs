namespace Greet.Client;

/// <summary>A call succeeded, but not with what the demo expected.</summary>
internal sealed class UnexpectedResultException : Exception
{
    public UnexpectedResultException()
    {
    }

    public UnexpectedResultException(string expected)
        : base(expected)
    {
    }

    public UnexpectedResultException(string expected, Exception inner)
        : base(expected, inner)
    {
    }
}
