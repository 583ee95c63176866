import Foundation

/// The resident memory of this process, as the kernel reports it.
public enum ProcessMemory {
    /// The peak resident set size so far in bytes (`VmHWM` of `/proc/self/status`; what
    /// `getrusage`'s `ru_maxrss` reports too), or nil where there is no `/proc` (not Linux).
    public static func peakResidentBytes() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        return kilobytes(field: "VmHWM", in: status).map { $0 * 1024 }
    }

    /// The value of a `Name:   123 kB` line of a `/proc` status file.
    static func kilobytes(field: String, in status: String) -> Int? {
        for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
            let words = line.dropFirst(field.count + 1).split { $0 == " " || $0 == "\t" }
            return words.first.flatMap { Int($0) }
        }
        return nil
    }
}
