using System.IO.Compression;
using System.Reflection;
using System.Xml.Linq;
using CliWrap.Buffered;

namespace ConnectRpc.Plugin.Tests;

/// <summary>
/// The four packages, packed once for the package tests (<see cref="PackageTests"/>) into a local feed in a
/// temporary folder, beside a <c>nuget.config</c> that makes that feed the only source of these packages
/// (package source mapping) and a folder of its own the global packages folder: projects restored there see
/// exactly these packages, never an older copy of the same version. Every other package (Google.Protobuf,
/// Grpc.Tools, Microsoft.Extensions.*) comes from this machine's NuGet cache, where the repository's own restore
/// put it, as a package source; nuget.org serves only what that lacks (the quick start's test packages).
/// </summary>
public sealed class PackageFixture : IAsyncLifetime
{
    /// <summary>Packing, restoring and building are bounded by this, each process.</summary>
    public static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(5);

    /// <summary>The projects <c>make pack</c> packs, and so these tests.</summary>
    public static readonly string[] PackedProjects =
        ["runtime/ConnectRpc", "runtime/ConnectRpc.AspNetCore", "plugin/ConnectRpc.Tools", "plugin/ProtocGenConnectCSharp"];

    public static readonly string[] PackageIds = ["ConnectRpc", "ConnectRpc.AspNetCore", "ConnectRpc.Tools", "protoc-gen-connect-csharp"];

    /// <summary>The one version of every package: the plugin's, as its --version prints it.</summary>
    public static string Version { get; } =
        typeof(Generator).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion;

    public string Root { get; } = TestEnvironment.CreateTempDirectory();

    public string Feed => Path.Combine(Root, "feed");

    public string NuGetConfig => Path.Combine(Root, "nuget.config");

    /// <summary>Restores in the fixture's folder extract packages here, never into the machine's cache.</summary>
    public string PackagesFolder => Path.Combine(Root, "packages");

    /// <summary>The environment of every dotnet process the package tests start.</summary>
    public IReadOnlyDictionary<string, string?> DotnetEnvironment { get; private set; } = new Dictionary<string, string?>();

    public string PackagePath(string id) => Path.Combine(Feed, $"{id}.{Version}.nupkg");

    public async ValueTask InitializeAsync()
    {
        DotnetEnvironment = new Dictionary<string, string?>
        {
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            ["DOTNET_NOLOGO"] = "1",
            ["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1",
            // No build server, MSBuild node or compiler server outlives the process that started it.
            ["MSBUILDDISABLENODEREUSE"] = "1",
            ["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0",
            ["UseSharedCompilation"] = "false",
            // The test host's own MSBuild settings are not the child's.
            ["MSBuildExtensionsPath"] = null,
            ["MSBuildSDKsPath"] = null,
            ["MSBUILD_EXE_PATH"] = null,
        };

        Directory.CreateDirectory(Feed);
        foreach (string project in PackedProjects)
        {
            // As `make pack` does, so that after it this only packs again.
            await TestEnvironment.RunCheckedAsync(
                Dotnet,
                ["pack", Path.Combine(TestEnvironment.RepoRoot, project), "-c", "Release", "-o", Feed, "--nologo", "-v:q"],
                TestEnvironment.RepoRoot,
                BuildTimeout,
                DotnetEnvironment);
        }

        File.WriteAllText(NuGetConfig, $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config>
                <add key="globalPackagesFolder" value="{PackagesFolder}" />
              </config>
              <packageSources>
                <clear />
                <add key="local" value="{Feed}" />
                <add key="machine" value="{MachineCache}" />
                <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
              </packageSources>
              <packageSourceMapping>
                <packageSource key="local">
                  <package pattern="ConnectRpc*" />
                  <package pattern="protoc-gen-connect-csharp" />
                </packageSource>
                <packageSource key="machine">
                  <package pattern="*" />
                </packageSource>
                <packageSource key="nuget.org">
                  <package pattern="*" />
                </packageSource>
              </packageSourceMapping>
            </configuration>
            """);
        DotnetEnvironment = new Dictionary<string, string?>(DotnetEnvironment) { ["NUGET_PACKAGES"] = PackagesFolder };
    }

    public ValueTask DisposeAsync()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temporary folder is not a failure.
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>The nuspec of a package in the feed.</summary>
    public XElement Nuspec(string id)
    {
        using ZipArchive zip = ZipFile.OpenRead(PackagePath(id));
        ZipArchiveEntry entry = zip.Entries.Single(e => e.FullName == $"{id}.nuspec");
        using Stream stream = entry.Open();
        return XElement.Load(stream);
    }

    /// <summary>A package's dependencies, at their lowest version.</summary>
    public IEnumerable<(string Id, string Version)> Dependencies(string id) =>
        Nuspec(id).Descendants().Where(e => e.Name.LocalName == "dependency")
            .Select(e => ((string)e.Attribute("id")!, ((string)e.Attribute("version")!).Trim('[', '(', ']', ')').Split(',')[0].Trim()));

    /// <summary>What a project's package depends on: its package references that are not private, at their versions.</summary>
    public static IEnumerable<(string Id, string Version)> ProjectPackageReferences(string project) =>
        XDocument.Load(Path.Combine(TestEnvironment.RepoRoot, project)).Descendants("PackageReference")
            .Where(e => (string?)e.Attribute("PrivateAssets") != "all")
            .Select(e => ((string)e.Attribute("Include")!, CentralVersion((string)e.Attribute("Include")!)));

    /// <summary>The grpc-dotnet packages of the test beside Grpc.Tools, at the repository's versions.</summary>
    public static readonly string[] GrpcPackages = ["Grpc.Tools", "Grpc.AspNetCore.Server"];

    /// <summary>A package's version in Directory.Packages.props.</summary>
    public static string CentralVersion(string id) =>
        (string)XDocument.Load(Path.Combine(TestEnvironment.RepoRoot, "Directory.Packages.props")).Descendants("PackageVersion")
            .Single(e => (string?)e.Attribute("Include") == id).Attribute("Version")!;

    /// <summary>This machine's NuGet cache, where the repository's restore put every package it uses.</summary>
    private static string MachineCache { get; } = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } packages
        ? packages
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    /// <summary>dotnet, as the test host was started by it, else from the PATH.</summary>
    public static string Dotnet { get; } = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host)
        ? host
        : "dotnet";

    public Task<BufferedCommandResult> DotnetAsync(IEnumerable<string> arguments, string workingDirectory) =>
        TestEnvironment.RunAsync(Dotnet, arguments, workingDirectory, timeout: BuildTimeout, environment: DotnetEnvironment);

    public async Task<BufferedCommandResult> DotnetCheckedAsync(IEnumerable<string> arguments, string workingDirectory) =>
        await TestEnvironment.RunCheckedAsync(Dotnet, arguments, workingDirectory, BuildTimeout, DotnetEnvironment);
}

[CollectionDefinition(Name)]
public sealed class PackageTestGroup : ICollectionFixture<PackageFixture>
{
    public const string Name = "packages";
}
