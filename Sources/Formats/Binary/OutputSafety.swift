#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The one check every command runs before it writes a file: the output must not be any file
/// the command reads (the checkpoint, its config, an input array, a mapping file, ONNX external
/// data), whatever path names it: the same path, a symlink to it, a hard link to it, or a
/// relative path to it. Files are compared by device and inode (symlinks followed), so no
/// alias gets past it; a missing file is compared by its path.
///
/// ``OutputFile`` runs it when it is created; commands that learn of more inputs while working
/// (ONNX external data) run it again through ``OutputFile/refuse(reading:)`` before committing.
public enum OutputSafety {
    /// The output names a file the command reads (exit 64 in the CLI: choose another output).
    public struct SameFileError: Error, CustomStringConvertible, Sendable {
        /// The output as given.
        public let output: String
        /// The input it is the same file as, as given.
        public let input: String
        public var description: String {
            input == output
                ? "the output \(output) is the input file; qtools never modifies a file it reads, choose another output"
                : "the output \(output) is the input file \(input) (the same file through a link or another path); qtools never modifies a file it reads, choose another output"
        }
    }

    /// Throws ``SameFileError`` when `output` is the same file as one of `inputs`.
    ///
    /// `-` (standard output) is compared as the file standard output is open on. Inputs that
    /// are nil or empty are skipped.
    public static func refuse(output: String, reading inputs: [String?]) throws(SameFileError) {
        let out = identity(output)
        for case let input? in inputs where !input.isEmpty {
            let same: Bool
            if let out, let inp = identity(input) {
                same = out == inp
            } else {
                same = input == output
            }
            if same { throw SameFileError(output: output, input: input) }
        }
    }

    /// True when writing `path` writes standard output (`-`, `/dev/stdout`, or the file
    /// standard output is open on), so a command's report must go to stderr instead.
    public static func isStandardOutput(_ path: String) -> Bool {
        if path == "-" || path == "/dev/stdout" || path == "/dev/fd/1" || path == "/proc/self/fd/1" { return true }
        guard let out = identity("-"), let p = identity(path) else { return false }
        return out == p
    }

    /// Device and inode of `path` (symlinks followed; `-` is standard output), nil when it
    /// does not exist.
    static func identity(_ path: String) -> FileID? {
        var s = stat()
        if path == "-" {
            guard fstat(1, &s) == 0 else { return nil }
        } else {
            guard unsafe stat(path, &s) == 0 else { return nil }
        }
        return FileID(device: UInt64(s.st_dev), inode: UInt64(s.st_ino))
    }

    /// A file's identity.
    struct FileID: Equatable {
        var device: UInt64
        var inode: UInt64
    }
}
