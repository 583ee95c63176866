import Formats
import QToolConfig
import Tensors
import TestSupport

/// The training-step files of one `fixtures/golden/<case>/` folder (made by running QTool's
/// `main.py` for one step; see `../shared/golden/README.md`).
struct TrainGolden {
    var name: String
    /// `config.txt` as main.py parses it.
    var options: QToolOptions
    /// `checkpoint.pth`'s state dict, in file order.
    var stateDict: [(name: String, tensor: Tensor)]

    init(_ name: String) throws {
        self.name = name
        options = try QToolOptions(config: ConfigFile(contentsOf: Fixtures.path("golden/\(name)/config.txt")))
        stateDict = try Self.entries(Fixtures.path("golden/\(name)/checkpoint.pth"))
    }

    /// The state dict of a checkpoint, materialised, in file order.
    static func entries(_ path: String) throws -> [(name: String, tensor: Tensor)] {
        let opened = try ModelFile.open(path: path)
        return (opened.checkpoint.stateDict()?.entries ?? []).map { ($0.name, $0.tensor.materialize()) }
    }

    /// `fixtures/golden/<case>/<file>` as a tensor.
    func npy(_ file: String) throws -> Tensor {
        try NpyReader.readArray(ByteStore.map(path: Fixtures.path("golden/\(name)/\(file)")).all)
    }

    /// `after_step.pth`: the state dict right after `optimizer.step()`.
    func afterStep() throws -> [(name: String, tensor: Tensor)] {
        try Self.entries(Fixtures.path("golden/\(name)/after_step.pth"))
    }

    /// `train_y.npy` (int64 labels).
    func labels() throws -> [Int] {
        try npy("train_y.npy").doubles().map { Int($0) }
    }
}
