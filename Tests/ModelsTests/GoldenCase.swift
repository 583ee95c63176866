import Engine
import Formats
import Models
import QToolConfig
import Tensors
import TestSupport

/// One `fixtures/golden/<case>/` folder: its options (from `config.txt`), its state dict and
/// its `.npy` files.
struct GoldenCase {
    /// The case folder name.
    var name: String
    /// `config.txt` parsed as main.py would.
    var options: QToolOptions
    /// `checkpoint.pth`'s state dict, materialised.
    var tensors: [String: Tensor]

    /// Loads `fixtures/golden/<name>`.
    init(_ name: String) throws {
        self.name = name
        options = try QToolOptions(
            config: ConfigFile(contentsOf: Fixtures.path("golden/\(name)/config.txt")))
        let opened = try ModelFile.open(path: Fixtures.path("golden/\(name)/checkpoint.pth"))
        let entries = opened.checkpoint.stateDict()?.entries ?? []
        tensors = Dictionary(
            entries.map { ($0.name, $0.tensor.materialize()) }, uniquingKeysWith: { a, _ in a })
    }

    /// `fixtures/golden/<case>/<file>` as a tensor.
    func npy(_ file: String) throws -> Tensor {
        try NpyReader.readArray(ByteStore.map(path: Fixtures.path("golden/\(name)/\(file)")).all)
    }

    /// The state-dict tensor `key`, or a test failure.
    func tensor(_ key: String) throws -> Tensor {
        guard let t = tensors[key] else { throw Missing(key: key) }
        return t
    }

    struct Missing: Error, CustomStringConvertible {
        var key: String
        var description: String { "state dict has no '\(key)'" }
    }
}

/// Where two float arrays first differ, for exact comparisons.
struct FirstDifference: CustomStringConvertible {
    var count: Int
    var index: Int
    var got: Float, expected: Float

    /// nil when `a == b` element-wise (`-0 == 0`); precondition: equal counts.
    init?(_ a: [Float], _ b: [Float]) {
        precondition(a.count == b.count, "count \(a.count) vs \(b.count)")
        let diffs = a.indices.filter { a[$0] != b[$0] }
        guard let first = diffs.first else { return nil }
        count = diffs.count
        index = first
        got = a[first]
        expected = b[first]
    }

    var description: String {
        "\(count) elements differ; first at [\(index)]: got \(got), expected \(expected)"
    }
}
