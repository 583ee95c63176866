#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Tensors

/// Where writers put bytes: a file written atomically, or memory (tests).
public protocol ByteSink: AnyObject {
    /// Bytes written so far (the offset the next write lands at).
    var position: Int { get }
    /// Appends bytes.
    func write(_ bytes: ByteSlice) throws
    /// Appends bytes.
    func write(_ bytes: [UInt8]) throws
}

/// An in-memory sink.
public final class MemorySink: ByteSink {
    /// Everything written.
    public private(set) var bytes: [UInt8] = []
    /// Empty sink.
    public init() {}
    public var position: Int { bytes.count }
    public func write(_ b: ByteSlice) throws { unsafe b.withUnsafeBytes { unsafe bytes.append(contentsOf: $0) } }
    public func write(_ b: [UInt8]) throws { bytes.append(contentsOf: b) }
}

/// Writes a file atomically: into a temporary file beside the target, renamed over it by
/// ``commit()``. If the writer is dropped without commit, the temporary file is removed and the
/// target is untouched, so a failed conversion never leaves a half-written model.
public final class OutputFile: ByteSink {
    /// The final path.
    public let path: String
    /// The temporary path being written.
    public let temporaryPath: String
    private var fd: Int32
    private var committed = false
    private var buffer: [UInt8] = []
    public private(set) var position: Int = 0

    /// Why the output could not be written (exit 73 in the CLI).
    public struct WriteError: Error, CustomStringConvertible, Sendable {
        /// Path involved.
        public let path: String
        /// What failed.
        public let reason: String
        public var description: String { "cannot write \(path): \(reason)" }
    }

    /// Creates the temporary file. With `overwrite: false` an existing target is an error.
    public init(path: String, overwrite: Bool = false) throws(WriteError) {
        self.path = path
        if !overwrite, unsafe access(path, F_OK) == 0 {
            throw WriteError(path: path, reason: "file exists (use --force to replace it)")
        }
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        var template = Array("\(dir.isEmpty ? "/" : dir)/.\(base).qtools-XXXXXX".utf8CString)
        let f = unsafe template.withUnsafeMutableBufferPointer { unsafe mkstemp($0.baseAddress!) }
        guard f >= 0 else {
            throw WriteError(path: path, reason: Self.errorText(errno))
        }
        fd = f
        temporaryPath = unsafe template.withUnsafeBufferPointer { unsafe String(cString: $0.baseAddress!) }
        _ = fchmod(fd, 0o644)
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !committed { unsafe _ = unlink(temporaryPath) }
    }

    private static func errorText(_ code: Int32) -> String { unsafe String(cString: strerror(code)) }

    public func write(_ b: [UInt8]) throws { try write(ByteSlice(b)) }

    public func write(_ b: ByteSlice) throws {
        if b.count < 1 << 16 {
            unsafe b.withUnsafeBytes { unsafe buffer.append(contentsOf: $0) }
            position += b.count
            if buffer.count >= 1 << 20 { try flush() }
            return
        }
        try flush()
        try unsafe b.withUnsafeBytes { raw in try unsafe writeAll(raw) }
        position += b.count
    }

    /// Writes buffered bytes to the temporary file, so it can be read back before ``commit()``.
    public func flush() throws {
        guard !buffer.isEmpty else { return }
        let chunk = buffer
        buffer.removeAll(keepingCapacity: true)
        try unsafe chunk.withUnsafeBytes { raw in try unsafe writeAll(raw) }
    }

    private func writeAll(_ raw: UnsafeRawBufferPointer) throws(WriteError) {
        var done = 0
        while done < raw.count {
            let n = unsafe Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw WriteError(path: temporaryPath, reason: Self.errorText(errno))
            }
            done += n
        }
    }

    /// Flushes, syncs and renames the temporary file onto the target.
    public func commit() throws {
        try flush()
        guard fsync(fd) == 0 else { throw WriteError(path: temporaryPath, reason: Self.errorText(errno)) }
        close(fd)
        fd = -1
        guard unsafe rename(temporaryPath, path) == 0 else {
            throw WriteError(path: path, reason: Self.errorText(errno))
        }
        committed = true
    }
}
