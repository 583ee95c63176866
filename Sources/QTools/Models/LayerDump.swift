import Engine
import Formats
import Foundation
import Models
import Tensors

/// A dump directory: every layer value of one run as `<name>.npy`, plus `index.json`.
///
/// `index.json` (written by `qtools run --dump`; optional for dumps written by other tools):
/// ```json
/// {"format": "qtools-layer-dump", "model": "...", "engine": "fast", "input_shape": [2, 3, 32, 32],
///  "values": {"layer1.0.conv1.0.quant_activation": {"file": "layer1.0.conv1.0.quant_activation.npy",
///             "shape": [2, 8, 34, 34], "op": "quantize", "order": 5, "inputs": ["layer1.0.conv1.0.pad"]},
///             "layer1.0.conv1.0": {"fused_into": "layer1.0.relu1.0", "op": "conv2d", "order": 6, ...}}}
/// ```
/// Every key but `values` is optional, and so is every field of a value (`file` defaults to
/// `<name>.npy`, `order` to file-name order). A directory without `index.json` is read as one
/// value per `*.npy` file, named by the file name without `.npy` (a PyTorch forward-hook dump).
enum LayerDump {
    /// One entry of `index.json`.
    struct Entry: Codable {
        var file: String?
        var shape: [Int]?
        var op: String?
        var order: Int?
        var inputs: [String]?
        var fusedInto: String?
        /// The module whose output this is, when named otherwise (`logits`: module `fc`).
        var module: String?

        enum CodingKeys: String, CodingKey { case file, shape, op, order, inputs, fusedInto = "fused_into", module }
    }

    struct Index: Codable {
        var format: String? = "qtools-layer-dump"
        var model: String?
        var engine: String?
        var inputShape: [Int]?
        var values: [String: Entry]

        enum CodingKeys: String, CodingKey { case format, model, engine, inputShape = "input_shape", values }
    }

    /// A file name for value `name`: `/` and other characters a path cannot hold safely become `_`.
    static func fileName(_ name: String, taken: inout Set<String>) -> String {
        var stem = String(name.map { $0 == "/" || $0 == "\\" || $0 == "\0" || $0 == ":" ? "_" : $0 })
        if stem.isEmpty || stem.hasPrefix(".") { stem = "_" + stem }
        var file = stem + ".npy", k = 2
        while taken.contains(file) || file == "index.json" {
            file = "\(stem)~\(k).npy"
            k += 1
        }
        taken.insert(file)
        return file
    }

    /// Writes the run's input (`input`, op `input`, order 0) and every `captured` value into
    /// `dir` (created; an existing non-empty directory only with `force`); no file written may
    /// be one of `protected` (the run's input files). The one place the dump writes files.
    static func write(
        input: (name: String, tensor: Tensor), _ captured: [CapturedValue], to dir: String, force: Bool,
        protected: [String], model: String, engine: String, modules: [String: String] = [:]
    ) throws -> Index {
        var isDir: ObjCBool = false
        let fm = FileManager.default
        if unsafe fm.fileExists(atPath: dir, isDirectory: &isDir) {
            guard isDir.boolValue else { throw LayerDumpError(.cannotWrite, path: dir, reason: "exists and is not a directory") }
            let contents = (try? fm.contentsOfDirectory(atPath: dir)) ?? []
            if !contents.isEmpty && !force {
                throw LayerDumpError(.cannotWrite, path: dir, reason: "directory is not empty (use --force to write into it)")
            }
        } else {
            do {
                try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            } catch {
                throw LayerDumpError(.cannotWrite, path: dir, reason: "cannot create the directory (\(error.localizedDescription))")
            }
        }
        var taken = Set<String>()
        var index = Index(model: model, engine: engine, inputShape: input.tensor.shape, values: [:])
        let inputFile = fileName(input.name, taken: &taken)
        index.values[input.name] = Entry(file: inputFile, shape: input.tensor.shape, op: "input", order: 0, inputs: [])
        var files: [(path: String, tensor: Tensor)] = [((dir as NSString).appendingPathComponent(inputFile), input.tensor)]
        for (k, c) in captured.enumerated() {
            var e = Entry(
                shape: c.shape, op: c.op.typeName, order: k + 1, inputs: c.inputs, fusedInto: c.fusedInto,
                module: modules[c.name])
            if let v = c.values {
                let file = fileName(c.name, taken: &taken)
                e.file = file
                files.append(((dir as NSString).appendingPathComponent(file), Tensor(floats: v, shape: c.shape)))
            }
            index.values[c.name] = e
        }
        let indexPath = (dir as NSString).appendingPathComponent("index.json")
        // Every file through the shared output rule (OutputSafety): never one of the run's inputs.
        let reading = protected.map { Optional($0) }
        for path in files.map(\.path) + [indexPath] {
            do {
                try OutputSafety.refuse(output: path, reading: reading)
            } catch {
                throw LayerDumpError(.cannotWrite, path: path, reason: "is an input of this run; not overwritten")
            }
        }
        for (path, t) in files {
            try ModelIO.write(t, to: OutputFile(path: path, overwrite: force, reading: reading))
        }
        let f = try OutputFile(path: indexPath, overwrite: force, reading: reading)
        try f.write(Array((try JSONOutput.render(index) + "\n").utf8))
        try f.commit()
        return index
    }

    /// The values of dump directory `dir`, in execution order (see the type's summary).
    static func read(_ dir: String) throws -> [LayerValue] {
        var isDir: ObjCBool = false
        guard unsafe FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) else {
            throw LayerDumpError(.missing, path: dir, reason: "no such directory")
        }
        guard isDir.boolValue else { throw LayerDumpError(.malformed, path: dir, reason: "is a file, not a dump directory") }
        let indexPath = (dir as NSString).appendingPathComponent("index.json")
        var entries: [(name: String, entry: Entry)]
        if FileManager.default.fileExists(atPath: indexPath) {
            let index: Index
            do {
                index = try JSONDecoder().decode(Index.self, from: Data(contentsOf: URL(fileURLWithPath: indexPath)))
            } catch {
                throw LayerDumpError(.malformed, path: indexPath, reason: "not a dump index (\(error))")
            }
            entries = index.values.map { ($0.key, $0.value) }
        } else {
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".npy") }
            entries = files.map { (String($0.dropLast(4)), Entry(file: $0)) }
        }
        guard !entries.isEmpty else {
            throw LayerDumpError(.malformed, path: dir, reason: "holds no layer values (no index.json, no .npy files)")
        }
        entries.sort { ($0.entry.order ?? .max, $0.name) < ($1.entry.order ?? .max, $1.name) }
        return try entries.map { name, e in
            var v = try value(name, e, dir: dir, indexPath: indexPath)
            v.module = e.module
            return v
        }
    }

    private static func value(_ name: String, _ e: Entry, dir: String, indexPath: String) throws -> LayerValue {
        if let fused = e.fusedInto {
            return LayerValue(
                name: name, op: e.op ?? "", inputs: e.inputs ?? [], shape: e.shape, fusedInto: fused, source: indexPath,
                load: { ([], []) })
        }
        let path = (dir as NSString).appendingPathComponent(e.file ?? name + ".npy")
        guard FileManager.default.fileExists(atPath: path) else {
            throw LayerDumpError(.missing, path: path, reason: "missing: the dump's index lists it for layer \(name)")
        }
        return LayerValue(
            name: name, op: e.op ?? "", inputs: e.inputs ?? [], shape: e.shape, source: path,
            load: {
                let t = try ModelIO.read(path)
                return (t.shape, t.floats())
            })
    }
}

/// A dump directory that cannot be read (exit 66 when missing, else 65) or written (73).
struct LayerDumpError: Error, CustomStringConvertible {
    enum Kind { case missing, malformed, cannotWrite }
    var kind: Kind
    var path: String
    var reason: String
    init(_ kind: Kind, path: String, reason: String) {
        self.kind = kind
        self.path = path
        self.reason = reason
    }
    var description: String { "\(kind == .cannotWrite ? "cannot write " : "")\(path): \(reason)" }
}
