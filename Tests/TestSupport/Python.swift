import Foundation

/// Runs the reference Python (torch, numpy, safetensors, onnx, onnxruntime) for interop tests.
///
/// The interpreter is `$QTOOLS_PYTHON`, else the virtualenv `.ci/run` builds
/// (`~/.cache/qtools-venv`), else `python3`. Under CI (`CI` set) a missing interpreter or
/// package is a failure; locally the interop tests are skipped with a message.
public enum Python {
    /// The interpreter path, if one with torch is available.
    public static let interpreter: String? = {
        var candidates: [String] = []
        if let p = ProcessInfo.processInfo.environment["QTOOLS_PYTHON"] { candidates.append(p) }
        candidates.append(NSHomeDirectory() + "/.cache/qtools-venv/bin/python")
        candidates.append("/usr/bin/python3")
        for c in candidates where FileManager.default.isExecutableFile(atPath: c) {
            if let r = try? runProcess(c, ["-c", "import torch, numpy"]), r.status == 0 { return c }
        }
        return nil
    }()

    /// True when interop tests must run (CI) or can run (interpreter found).
    public static var isRequired: Bool { ProcessInfo.processInfo.environment["CI"] != nil }

    /// Result of a process run.
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Runs `script` (Python source) with `args`; throws if no interpreter is available.
    public static func run(_ script: String, _ args: [String] = []) throws -> Result {
        guard let py = interpreter else { throw Missing() }
        return try runProcess(py, ["-c", script] + args)
    }

    /// Runs `script` and parses its stdout as JSON; a non-zero exit throws with Python's stderr.
    public static func json(_ script: String, _ args: [String] = []) throws -> Any {
        let r = try run(script, args)
        guard r.status == 0 else { throw Failed(status: r.status, stderr: r.stderr) }
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
    }

    /// A script that exited non-zero.
    public struct Failed: Error, CustomStringConvertible {
        public var status: Int32
        public var stderr: String
        public var description: String { "python exited \(status): \(stderr)" }
    }

    /// Thrown when no interpreter with torch exists.
    public struct Missing: Error, CustomStringConvertible {
        public var description: String {
            "no Python with torch+numpy (set QTOOLS_PYTHON or run .ci/run once to build ~/.cache/qtools-venv)"
        }
    }

    /// Runs a process, draining stdout and stderr before waiting (no pipe deadlock).
    public static func runProcess(_ exe: String, _ args: [String], cwd: String? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        // stderr goes to a temporary file, stdout through a pipe drained before waiting.
        let errURL = FileManager.default.temporaryDirectory
            .appendingPathComponent("qtools-stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errURL) }
        let errHandle = try FileHandle(forWritingTo: errURL)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = errHandle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        try? errHandle.close()
        let errData = (try? Data(contentsOf: errURL)) ?? Data()
        return Result(
            status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }
}

/// Lower-case hex without separators (the form Python's `bytes.hex()` prints).
public enum Hex {
    public static func string(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
