using System.ComponentModel;
using System.Diagnostics.CodeAnalysis;

namespace ConnectRpc;

/// <summary>
/// Compile-time version check for generated code. Code written by protoc-gen-connect-csharp (or
/// ConnectRpc.Tools) version X.Y.Z refers to <c>IsAtLeastVersionX_Y_Z</c>, so it compiles only against
/// this package at version X.Y.Z or later: an older runtime fails the build with error CS0117 naming
/// the missing constant, instead of failing at run time. The fix is to update the ConnectRpc package
/// (or to generate with the older plugin).
/// </summary>
/// <remarks>
/// Every release adds the constant of its own version and keeps all earlier ones, so code generated
/// by an older plugin keeps compiling.
/// </remarks>
[EditorBrowsable(EditorBrowsableState.Never)]
[SuppressMessage("Naming", "CA1707", Justification = "The version's parts are separated by underscores so that the missing name reads as a version.")]
public static class VersionCheck
{
    /// <summary>Present from ConnectRpc 0.1.0.</summary>
    public const bool IsAtLeastVersion0_1_0 = true;
}
