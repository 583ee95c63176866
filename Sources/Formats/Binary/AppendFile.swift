#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// At file scope `write`/`close` are the C functions, not the methods below.
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { unsafe write(fd, p, n) }
private func posixClose(_ fd: Int32) -> Int32 { close(fd) }

/// A file written as a run goes (a log, an event file): every ``write(_:)`` is one `write(2)`
/// straight to the file, so what was written survives a crash or a kill of the process.
///
/// Opened with `append: true` the existing content is kept (Python's `open(path, 'a')`);
/// otherwise the file is truncated (`'w'`). Unlike ``OutputFile`` this is not atomic: it is for
/// files that grow, where a reader should see every complete line so far.
public final class AppendFile {
    /// The path.
    public let path: String
    private var fd: Int32

    /// Opens (creating) `path`, keeping its content when `append`, else truncating it.
    ///
    /// - Throws: ``OutputFile/WriteError`` when it cannot be opened.
    public init(path: String, append: Bool) throws(OutputFile.WriteError) {
        self.path = path
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC)
        fd = unsafe open(path, flags, 0o644)
        guard fd >= 0 else { throw OutputFile.WriteError(path: path, reason: Self.errorText(errno)) }
    }

    deinit { close() }

    /// Appends `bytes` (retrying short writes and `EINTR`).
    ///
    /// - Throws: ``OutputFile/WriteError`` when the bytes cannot be written.
    public func write(_ bytes: [UInt8]) throws(OutputFile.WriteError) {
        guard fd >= 0 else { throw OutputFile.WriteError(path: path, reason: "closed") }
        var done = 0
        while done < bytes.count {
            let n = unsafe bytes.withUnsafeBytes { raw in
                unsafe posixWrite(fd, raw.baseAddress! + done, raw.count - done)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw OutputFile.WriteError(path: path, reason: Self.errorText(errno))
            }
            done += n
        }
    }

    /// Appends `text` as UTF-8.
    public func write(_ text: String) throws(OutputFile.WriteError) { try write(Array(text.utf8)) }

    /// Closes the file (later writes fail).
    public func close() {
        if fd >= 0 { _ = posixClose(fd) }
        fd = -1
    }

    private static func errorText(_ code: Int32) -> String { unsafe String(cString: strerror(code)) }
}
