import Foundation
import Tensors
import TestSupport
import Testing

@testable import Formats

private func hex(_ s: ByteSlice) -> String {
    s.toArray().map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

/// Checks qtools' reading of `path` against `describe(path)` from the onnx package: every
/// initializer (name, type, dims, bytes), the I/O, op histogram, opsets and metadata.
func expectMatchesPython(_ path: String, _ py: [String: Any]) throws {
    let bytes = try ByteStore.map(path: path).all
    let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
    let m = try ONNXReader.model(bytes, baseDirectory: dir)
    let s = m.summary
    #expect(s.irVersion == (py["irVersion"] as? Int).map(Int64.init))
    let opsets = try #require(py["opsets"] as? [[Any]])
    #expect(s.opsets.map { [$0.domain, String($0.version)] } == opsets.map { ["\($0[0])", "\($0[1])"] })
    #expect(s.producerName == py["producerName"] as? String)
    #expect(s.producerVersion == py["producerVersion"] as? String)
    #expect(s.graphName == py["graphName"] as? String)
    #expect(s.nodeCount == py["nodeCount"] as? Int)
    let ops = try #require(py["ops"] as? [String: Int])
    #expect(
        Dictionary(
            uniqueKeysWithValues: s.ops.map { (($0.domain.isEmpty ? "" : $0.domain + ".") + $0.op, $0.count) }
        )
            == ops)
    for (mine, key) in [(s.inputs, "inputs"), (s.outputs, "outputs")] {
        let theirs = try #require(py[key] as? [[String: Any]])
        #expect(mine.map(\.name) == theirs.map { $0["name"] as? String ?? "" }, "\(key)")
        #expect(mine.map(\.type) == theirs.map { $0["type"] as? String ?? "" }, "\(key)")
        #expect(
            mine.map { $0.shape?.map(\.description) } == theirs.map { $0["shape"] as? [String] }, "\(key)")
    }
    let metadata = try #require(py["metadata"] as? [[String]])
    #expect(s.metadata.map { [$0.key, $0.value] } == metadata)

    let inits = try #require(py["initializers"] as? [[String: Any]])
    #expect(m.initializers.map(\.name) == inits.map { $0["name"] as? String ?? "" })
    #expect(s.initializers.map(\.dataType) == inits.map { $0["dataType"] as? String ?? "" })
    for (mine, theirs) in zip(m.initializers, inits) {
        let t = mine.tensor.materialize()
        #expect(t.shape == theirs["shape"] as? [Int], "\(mine.name)")
        #expect(hex(t.data) == theirs["hex"] as? String, "\(mine.name) \(t.dtype)")
    }
    // The Checkpoint view lists the same tensors and the summary's facts.
    let c = m.checkpoint
    #expect(c.format == .onnx)
    #expect(c.root.dict?.entries.count == inits.count)
    #expect(c.facts.contains { $0.key == "IR version" && $0.value == "\(s.irVersion)" })
    #expect(c.facts.contains { $0.key == "initializers" && $0.value == "\(inits.count)" })
}

@Suite(.enabled(if: ONNXPython.enabled, "needs the reference Python (torch, onnx, onnxruntime)"))
struct ONNXInteropTests {
    @Test func torchExportedModelsMatchOnnxPackage() throws {
        try withTemporaryDirectory { dir in
            let py = try ONNXPython.run(ONNXPython.torchExport, [dir.path])
            for name in ["static", "dynamic"] {
                let path = dir.appendingPathComponent("\(name).onnx").path
                let expected = try #require(py[name] as? [String: Any])
                try expectMatchesPython(path, expected)
                // The sniffer recognises torch's output (it starts 08 07 12 07 "pytorch").
                let (kind, c) = try ModelFile.read(ByteStore.map(path: path).all)
                #expect(kind == .onnx)
                #expect(c.format == .onnx)
            }
            let dynamic = try ONNXReader.model(
                ByteStore.map(path: dir.appendingPathComponent("dynamic.onnx").path).all)
            #expect(dynamic.summary.inputs.first?.shape?.first?.param == "batch")
            #expect(
                dynamic.summary.facts.contains {
                    $0.key == "input" && $0.value == "x: FLOAT [batch, 3, 16, 16]"
                })
        }
    }

    @Test func everyStorageFormMatchesOnnxPackage() throws {
        try withTemporaryDirectory { dir in
            let py = try ONNXPython.run(ONNXPython.storageForms, [dir.path])
            let path = dir.appendingPathComponent("forms.onnx").path
            try expectMatchesPython(path, py)
            let m = try ONNXReader.model(ByteStore.map(path: path).all, baseDirectory: dir.path)
            let storage = Dictionary(
                uniqueKeysWithValues: m.summary.initializers.map { ($0.name, $0.storage) })
            #expect(storage["w_q"] == "raw_data")
            #expect(storage["f_typed"] == "float_data")
            #expect(storage["i64_typed"] == "int64_data")
            #expect(storage["f16_typed"] == "int32_data")
            #expect(storage["f64_typed"] == "double_data")
            #expect(storage["u32_typed"] == "uint64_data")
            #expect(storage["ext_f32"] == "external")
            #expect(m.summary.initializers.first { $0.name == "int4_raw" }?.storedBytes == 3)
            #expect(m.checkpoint.facts.contains { $0.key == "external data" && $0.value == "weights.bin" })
            #expect(m.checkpoint.facts.contains { $0.key == "metadata author" && $0.value == "qtools tests" })

            // Without the model's directory, external data is refused, naming tensor and file.
            let e = try #require(throws: FormatError.self) {
                try ONNXReader.model(ByteStore.map(path: path).all)
            }
            #expect(e.tensor == "ext_f32")
            #expect(e.description.contains("weights.bin"))
            // Through ModelFile.open the directory comes from the path.
            let opened = try ModelFile.open(path: path)
            #expect(opened.checkpoint.root.dict?["ext_i64"] != nil)
        }
    }

    @Test func missingExternalFileNamesTensorAndLocation() throws {
        try withTemporaryDirectory { dir in
            _ = try ONNXPython.run(ONNXPython.storageForms, [dir.path])
            try FileManager.default.removeItem(at: dir.appendingPathComponent("weights.bin"))
            let path = dir.appendingPathComponent("forms.onnx").path
            let e = try #require(throws: FormatError.self) { try ModelFile.open(path: path) }
            #expect(e.reason == .missing("external data file \"weights.bin\" (No such file or directory)"))
            #expect(e.tensor == "ext_f32")
            #expect(e.file == path)
        }
    }

    @Test func writerOutputPassesCheckerAndRunsInOnnxruntime() throws {
        try withTemporaryDirectory { dir in
            var rng = SplitMix64(seed: 3)
            let c = Tensor(floats: rng.floats(6), shape: [2, 3])
            let model = ONNXBuild.model(
                graph: "add",
                nodes: [
                    ONNXBuild.node("Add", inputs: ["x", "c"], outputs: ["y"], name: "add"),
                    ONNXBuild.node("Identity", inputs: ["y"], outputs: ["z"], name: "id"),
                ],
                initializers: [ONNXBuild.tensor("c", c)],
                inputs: [ONNXBuild.value("x", .float32, [2, 3])],
                outputs: [
                    ONNXBuild.value("y", .float32, [2, 3]), ONNXBuild.value("z", .float32, [2, "n"]),
                ],
                irVersion: 7, opsets: [("", 13)], metadata: [("qtools.c.bits", "32")])
            let path = dir.appendingPathComponent("add.onnx").path
            let out = try OutputFile(path: path)
            try ONNXWriter.write(model, to: out)
            try out.commit()
            let py = try ONNXPython.run(ONNXPython.checkWritten, [path])
            #expect(py["y"] as? [[Double]] == py["expected"] as? [[Double]])
            #expect(py["z"] as? [[Double]] == py["expected"] as? [[Double]])
            let d = try #require(py["describe"] as? [String: Any])
            let inits = try #require(d["initializers"] as? [[String: Any]])
            #expect(inits.first?["hex"] as? String == hex(c.data))
            #expect((d["metadata"] as? [[String]]) == [["qtools.c.bits", "32"]])
            try expectMatchesPython(path, d)
        }
    }
}
