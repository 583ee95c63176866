import Foundation

/// Runs the built `qtools` binary end to end (stdout and stderr drained before waiting).
///
/// The binary sits next to the test bundle (`.build/<config>/qtools`); `swift build
/// --build-tests` (what `./test.sh` runs) builds it.
public enum RunQTools {
    /// Path of the binary.
    public static var binary: String {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var candidates = [dir.appendingPathComponent("qtools").path]
        // swift-testing may run from inside the .xctest bundle on some layouts.
        candidates.append(dir.deletingLastPathComponent().appendingPathComponent("qtools").path)
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    /// Runs `qtools args...`.
    public static func run(_ args: [String], cwd: String? = nil) throws -> Python.Result {
        try Python.runProcess(binary, args, cwd: cwd)
    }
}
