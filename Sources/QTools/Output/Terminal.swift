#if canImport(Glibc)
    import Glibc
#endif

/// stdout carries results only; errors, warnings and progress go to stderr (colour only on a TTY).
enum Terminal {
    /// Writes to stdout.
    static func out(_ s: String) {
        print(s)
    }

    /// `qtools: error: <message>` on stderr.
    static func error(_ message: String) {
        writeErr(style("qtools: error: ", code: "1;31") + message + "\n")
    }

    /// `qtools: warning: <message>` on stderr (silenced by `--quiet`).
    static func warning(_ message: String, quiet: Bool = false) {
        guard !quiet else { return }
        writeErr(style("qtools: warning: ", code: "1;33") + message + "\n")
    }

    /// A progress line on stderr (only when stderr is a terminal, overwritten in place).
    static func progress(_ message: String, quiet: Bool = false) {
        guard !quiet, isatty(2) != 0 else { return }
        writeErr("\r\u{1b}[2K" + message)
    }

    /// Ends a progress line.
    static func endProgress(quiet: Bool = false) {
        guard !quiet, isatty(2) != 0 else { return }
        writeErr("\r\u{1b}[2K")
    }

    static func style(_ s: String, code: String) -> String {
        let noColor = unsafe getenv("NO_COLOR") != nil
        return isatty(2) != 0 && !noColor ? "\u{1b}[\(code)m\(s)\u{1b}[0m" : s
    }

    static func writeErr(_ s: String) {
        var bytes = Array(s.utf8)
        _ = unsafe bytes.withUnsafeMutableBytes { unsafe write(2, $0.baseAddress, $0.count) }
    }
}
