using System.Reflection;
using Xunit.v3;

[assembly: ConnectRpc.AspNetCore.Tests.ServerLogCheck]

namespace ConnectRpc.AspNetCore.Tests;

/// <summary>
/// Applied to every test of the assembly: a test fails when a server it used (a
/// <see cref="KestrelHost"/> it started, or one its class holds in a field, such as a
/// <see cref="KestrelFixture"/>'s) logged a warning or an error while it ran, unless the test
/// expected that entry with <see cref="KestrelHost.ExpectLogs(string, Func{LogEntry, bool})"/>.
/// Before each test, the hosts its class holds start a new window (log and service state).
/// </summary>
[AttributeUsage(AttributeTargets.Assembly)]
public sealed class ServerLogCheckAttribute : BeforeAfterTestAttribute
{
    public override void Before(MethodInfo methodUnderTest, IXunitTest test)
    {
        foreach (KestrelHost host in HeldBy(TestContext.Current.TestClassInstance))
        {
            host.BeginTest();
        }
    }

    public override void After(MethodInfo methodUnderTest, IXunitTest test)
    {
        KestrelHost[] hosts = [.. HeldBy(TestContext.Current.TestClassInstance).Union(KestrelHost.TakeStartedBy(test.UniqueID))];
        foreach (KestrelHost host in hosts)
        {
            host.AssertNoUnexpectedLogs(test.TestDisplayName);
        }
    }

    /// <summary>The hosts a test class instance holds in its fields, directly or through a fixture.</summary>
    private static IEnumerable<KestrelHost> HeldBy(object? instance)
    {
        if (instance is null)
        {
            yield break;
        }

        foreach (FieldInfo field in instance.GetType().GetFields(BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public))
        {
            switch (field.GetValue(instance))
            {
                case KestrelHost host:
                    yield return host;
                    break;
                case KestrelFixture { Host: { } fixtureHost }:
                    yield return fixtureHost;
                    break;
            }
        }
    }
}
