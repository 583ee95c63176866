import Tensors

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

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

/// Writes a file safely.
///
/// A regular file (or a path that does not exist yet) is written atomically: into a temporary
/// file beside the target (`.NAME.qtools-PID-XXXXXX`, same directory so the rename cannot
/// cross file systems), flushed, fsynced and renamed over it by ``commit()``. If the writer is
/// dropped without commit (an error), the temporary file is removed and the target is
/// untouched, so a failed command never leaves a half-written file; a temporary file left by a
/// killed process is removed by the next writer into that directory once its process is gone.
/// Without `overwrite` the target must not exist, checked again atomically at commit (a
/// hard link, not a rename), so of two writers racing for a new path one wins and the other
/// fails cleanly.
///
/// A symlink is followed: the file it points to is written atomically (its temporary file
/// beside that file), and the link stays a link, as `torch.save` or `np.save` through the link
/// would leave it; a dangling link gets its target created.
///
/// Special files (character and block devices, FIFOs, sockets), `-` (standard output) and the
/// descriptor aliases `/dev/stdout`, `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N` are
/// written in place: opened for writing (never replaced, never renamed over, no `overwrite`
/// needed), with the bytes staged in an unlinked temporary file and copied in by ``commit()``,
/// so a reader of a FIFO or pipe sees the whole file or nothing.
///
/// Before anything is created the target is checked against every file the command reads
/// (``OutputSafety``).
public final class OutputFile: ByteSink {
    /// The final path.
    public let path: String
    /// The regular file replaced at commit: ``path`` with symlinks followed.
    private var destination: String = ""
    /// A path the bytes written so far can be read back from before ``commit()`` (the
    /// temporary file; `/proc/self/fd/N` for a staged in-place write).
    public let temporaryPath: String
    /// True when the target is a special file or standard output, written in place.
    public let inPlace: Bool
    /// The staging file (the temporary file of an atomic write).
    private var fd: Int32
    /// The special file opened for writing (in place only).
    private var target: Int32 = -1
    private let overwrite: Bool
    private var committed = false
    private var buffer: [UInt8] = []
    public private(set) var position: Int = 0

    /// Why the output could not be written (exit 73 in the CLI).
    public struct WriteError: Error, CustomStringConvertible, Sendable {
        /// Path involved.
        public let path: String
        /// What failed.
        public let reason: String
        public init(path: String, reason: String) {
            self.path = path
            self.reason = reason
        }
        public var description: String { "cannot write \(path): \(reason)" }
    }

    /// Checks the target against `inputs` (``OutputSafety``), then opens it (see the type's
    /// summary). With `overwrite: false` an existing regular target is an error.
    ///
    /// - Throws: ``OutputSafety/SameFileError`` when the target is one of `inputs`;
    ///   ``WriteError`` when it cannot be written.
    public init(path: String, overwrite: Bool = false, reading inputs: [String?] = []) throws {
        self.path = path
        self.overwrite = overwrite
        Self.ignoreFileSizeSignal()
        try OutputSafety.refuse(output: path, reading: inputs)
        if let special = try Self.openSpecial(path) {
            target = special
            inPlace = true
            // Staged in an unlinked file, copied in at commit.
            let dir = Self.stagingDirectory()
            var template = Array("\(dir)/.qtools-stage-XXXXXX".utf8CString)
            let f = unsafe template.withUnsafeMutableBufferPointer { unsafe mkstemp($0.baseAddress!) }
            guard f >= 0 else {
                let reason = Self.errorText(errno)
                close(special)
                throw WriteError(path: path, reason: "cannot create a staging file in \(dir): \(reason)")
            }
            unsafe template.withUnsafeBufferPointer { _ = unsafe unlink($0.baseAddress!) }
            fd = f
            temporaryPath = "/proc/self/fd/\(f)"
            return
        }
        inPlace = false
        var info = stat()
        if unsafe stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
            throw WriteError(path: path, reason: "is a directory; give a file path (e.g. \(path.hasSuffix("/") ? path : path + "/")FILE)")
        }
        if !overwrite, unsafe access(path, F_OK) == 0 {
            throw WriteError(path: path, reason: "file exists (use --force to replace it)")
        }
        let destination = try Self.followingSymlinks(path)
        self.destination = destination
        let slash = destination.lastIndex(of: "/")
        let dir = slash.map { String(destination[..<$0]) } ?? "."
        let base = slash.map { String(destination[destination.index(after: $0)...]) } ?? destination
        let directory = dir.isEmpty ? "/" : dir
        Self.removeStaleTemporaries(in: directory, base: base)
        var template = Array("\(directory)/.\(base).qtools-\(getpid())-XXXXXX".utf8CString)
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
        if target >= 0 { close(target) }
        if !committed && !inPlace { unsafe _ = unlink(temporaryPath) }
    }

    /// Runs ``OutputSafety`` again for inputs found while working (ONNX external data).
    public func refuse(reading inputs: [String?]) throws {
        try OutputSafety.refuse(output: path, reading: inputs)
    }

    private static func errorText(_ code: Int32) -> String { unsafe String(cString: strerror(code)) }

    /// A file-size limit (RLIMIT_FSIZE) makes write(2) fail with EFBIG instead of killing the
    /// process with SIGXFSZ, so the error is reported and the temporary file removed.
    private static func ignoreFileSizeSignal() {
        _ = signal(SIGXFSZ, SIG_IGN)
    }

    /// Where in-place writes are staged: `$TMPDIR`, else `/tmp`.
    private static func stagingDirectory() -> String {
        if let t = unsafe getenv("TMPDIR"), let s = Optional(unsafe String(cString: t)), !s.isEmpty { return s }
        return "/tmp"
    }

    /// `path` with every symlink in its last component followed (relative targets resolved
    /// against the link's directory): the file an atomic write replaces.
    private static func followingSymlinks(_ path: String) throws(WriteError) -> String {
        var current = path
        for _ in 0..<40 {
            var s = stat()
            guard unsafe lstat(current, &s) == 0, s.st_mode & S_IFMT == S_IFLNK else { return current }
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = unsafe readlink(current, &buf, buf.count - 1)
            guard n > 0 else { throw WriteError(path: path, reason: "cannot read symlink \(current): \(errorText(errno))") }
            let target = String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if target.hasPrefix("/") {
                current = target
            } else {
                let slash = current.lastIndex(of: "/")
                current = (slash.map { String(current[...$0]) } ?? "") + target
            }
        }
        throw WriteError(path: path, reason: "too many levels of symbolic links")
    }

    /// The descriptor for a target written in place, or nil for a regular (atomic) target.
    private static func openSpecial(_ path: String) throws(WriteError) -> Int32? {
        if path == "-" { return try duplicate(1, path) }
        // Descriptor aliases: reuse the descriptor itself (keeps append mode, never truncates
        // a file the shell opened).
        let aliases: [String: Int32] = ["/dev/stdout": 1, "/dev/stderr": 2]
        if let n = aliases[path] { return try duplicate(n, path) }
        for prefix in ["/dev/fd/", "/proc/self/fd/"] where path.hasPrefix(prefix) {
            if let n = Int32(path.dropFirst(prefix.count)), n >= 0 { return try duplicate(n, path) }
        }
        var s = stat()
        guard unsafe stat(path, &s) == 0 else { return nil }  // missing: created atomically
        let type = s.st_mode & S_IFMT
        if type == S_IFREG { return nil }
        if type == S_IFDIR {
            throw WriteError(path: path, reason: "is a directory; give a file path (e.g. \(path.hasSuffix("/") ? path : path + "/")FILE)")
        }
        let f = unsafe open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY)
        guard f >= 0 else { throw WriteError(path: path, reason: errorText(errno)) }
        return f
    }

    private static func duplicate(_ n: Int32, _ path: String) throws(WriteError) -> Int32 {
        let f = fcntl(n, F_DUPFD_CLOEXEC, 0)
        guard f >= 0 else { throw WriteError(path: path, reason: errorText(errno)) }
        return f
    }

    /// Removes `.BASE.qtools-PID-XXXXXX` files in `dir` whose process no longer exists (a
    /// writer killed before it could clean up).
    private static func removeStaleTemporaries(in dir: String, base: String) {
        let prefix = ".\(base).qtools-"
        guard let d = unsafe opendir(dir) else { return }
        defer { unsafe _ = closedir(d) }
        var stale: [String] = []
        while let e = unsafe readdir(d) {
            let name = unsafe withUnsafeBytes(of: e.pointee.d_name) { raw in
                unsafe String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            guard name.hasPrefix(prefix) else { continue }
            let rest = name.dropFirst(prefix.count).split(separator: "-", maxSplits: 1)
            guard rest.count == 2, rest[1].count == 6, let pid = Int32(rest[0]), pid > 0 else { continue }
            if pid == getpid() { continue }
            if kill(pid, 0) == -1 && errno == ESRCH { stale.append(name) }
        }
        for name in stale { unsafe _ = unlink("\(dir)/\(name)") }
    }

    public func write(_ b: [UInt8]) throws { try write(ByteSlice(b)) }

    public func write(_ b: ByteSlice) throws {
        if b.count < 1 << 16 {
            unsafe b.withUnsafeBytes { unsafe buffer.append(contentsOf: $0) }
            position += b.count
            if buffer.count >= 1 << 20 { try flush() }
            return
        }
        try flush()
        try unsafe b.withUnsafeBytes { raw in try unsafe writeAll(raw, to: fd) }
        position += b.count
    }

    /// Writes buffered bytes to the temporary file, so it can be read back before ``commit()``.
    public func flush() throws {
        guard !buffer.isEmpty else { return }
        let chunk = buffer
        buffer.removeAll(keepingCapacity: true)
        try unsafe chunk.withUnsafeBytes { raw in try unsafe writeAll(raw, to: fd) }
    }

    private func writeAll(_ raw: UnsafeRawBufferPointer, to f: Int32) throws(WriteError) {
        var done = 0
        while done < raw.count {
            let n = unsafe Glibc.write(f, raw.baseAddress! + done, raw.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw failure(errno)
            }
            if n == 0 { throw failure(EIO) }
            done += n
        }
    }

    /// A write error naming the target; an atomic target is untouched.
    private func failure(_ code: Int32) -> WriteError {
        WriteError(
            path: path,
            reason: Self.errorText(code) + (inPlace ? "" : " (nothing written; \(path) is unchanged)"))
    }

    /// Flushes and syncs the staged bytes, then renames them onto the target (a regular
    /// file) or copies them into it (written in place).
    public func commit() throws {
        try flush()
        if inPlace { return try copyIntoTarget() }
        guard fsync(fd) == 0 else { throw failure(errno) }
        close(fd)
        fd = -1
        if overwrite {
            guard unsafe rename(temporaryPath, destination) == 0 else { throw failure(errno) }
        } else {
            // link(2) fails if the target appeared since init (another writer): no clobbering.
            if unsafe link(temporaryPath, destination) == 0 {
                unsafe _ = unlink(temporaryPath)
            } else if errno == EEXIST {
                throw WriteError(path: path, reason: "file exists (created while qtools was writing; use --force to replace it)")
            } else if unsafe access(destination, F_OK) != 0, unsafe rename(temporaryPath, destination) == 0 {
                // A file system without hard links.
            } else {
                throw failure(errno)
            }
        }
        committed = true
        Self.syncDirectory(of: destination)
    }

    private func copyIntoTarget() throws {
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var offset = 0
        while offset < position {
            let n = unsafe chunk.withUnsafeMutableBytes { unsafe pread(fd, $0.baseAddress!, $0.count, off_t(offset)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure(errno)
            }
            if n == 0 { throw failure(EIO) }
            try unsafe chunk.withUnsafeBytes { raw in try unsafe writeAll(UnsafeRawBufferPointer(rebasing: raw[0..<n]), to: target) }
            offset += n
        }
        close(target)
        target = -1
        committed = true
    }

    /// fsync of the directory, so the rename itself survives a crash.
    private static func syncDirectory(of path: String) {
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) }.map { $0.isEmpty ? "/" : $0 } ?? "."
        let d = unsafe open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard d >= 0 else { return }
        _ = fsync(d)
        close(d)
    }
}
