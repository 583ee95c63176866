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

    /// The project's shared reference folder (`../shared` beside the checkout, or
    /// `QTOOLS_SHARED`): large golden data that is not copied into `fixtures/`. Tests that
    /// need it run only when it exists.
    public static let shared: URL = {
        if let s = ProcessInfo.processInfo.environment["QTOOLS_SHARED"] { return URL(fileURLWithPath: s) }
        return root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared")
    }()
}

/// A fresh UUID-named directory per call, removed afterwards. Tests never write into the working directory.
public func withTemporaryDirectory<R>(_ body: (URL) throws -> R) throws -> R {
    let dir = FileManager.default.temporaryDirectory
        .appendingPathComponent("qtools-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    return try body(dir)
}

/// The raw little-endian float32 values of the file at `url` (the `.f32` files the Python
/// reference scripts write).
public func readFloat32(_ url: URL) throws -> [Float] {
    let d = [UInt8](try Data(contentsOf: url))
    return (0..<(d.count / 4)).map { i in
        var bits = UInt32(d[4 * i])
        bits |= UInt32(d[4 * i + 1]) << 8
        bits |= UInt32(d[4 * i + 2]) << 16
        bits |= UInt32(d[4 * i + 3]) << 24
        return Float(bitPattern: bits)
    }
}
