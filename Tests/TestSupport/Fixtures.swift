import Foundation

/// Paths of committed test fixtures, resolved from this file's location (no working-directory assumptions).
public enum Fixtures {
    /// The repository's `fixtures/` folder.
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures")

    /// `fixtures/<relative>`.
    public static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    /// `fixtures/<relative>` as a path string.
    public static func path(_ relative: String) -> String { url(relative).path }
}

/// A fresh UUID-named directory per call, removed afterwards. Tests never write into the working directory.
public func withTemporaryDirectory<R>(_ body: (URL) throws -> R) throws -> R {
    let dir = FileManager.default.temporaryDirectory
        .appendingPathComponent("qtools-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    return try body(dir)
}
