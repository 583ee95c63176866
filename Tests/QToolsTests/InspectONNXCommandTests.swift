import Foundation
import TestSupport
import Testing

/// End-to-end `qtools inspect` on ONNX models exported by torch (expected values from `onnx`).
@Suite(
    .enabled(if: Python.interpreter != nil || Python.isRequired, "needs the reference Python (torch, onnx)"))
struct InspectONNXCommandTests {
    /// Exports a conv net with a dynamic batch axis, then a copy whose weights are external;
    /// prints what the onnx package reports.
    static let script = """
        import json, os, sys
        import torch, onnx
        from onnx import TensorProto as T
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                  torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 5)).eval()
        d = sys.argv[1]
        path = os.path.join(d, "net.onnx")
        torch.onnx.export(net, (torch.randn(1, 3, 8, 8),), path, dynamo=False, opset_version=13,
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
        m = onnx.load(path)
        onnx.save(m, os.path.join(d, "ext.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                  location="ext.bin", size_threshold=0)
        print(json.dumps({
            "ir": m.ir_version, "opsets": [[o.domain, o.version] for o in m.opset_import],
            "ops": sorted({n.op_type for n in m.graph.node}),
            "tensors": [[t.name, T.DataType.Name(t.data_type), list(t.dims)] for t in m.graph.initializer],
        }))
        """

    static let dtypeNames = ["FLOAT": "float32", "INT64": "int64"]

    @Test func jsonListsTheInitializersOnnxReports() throws {
        try withTemporaryDirectory { dir in
            let py = try Python.run(Self.script, [dir.path])
            try #require(py.status == 0, "python failed: \(py.stderr)")
            let expected = try #require(
                try JSONSerialization.jsonObject(with: Data(py.stdout.utf8)) as? [String: Any])
            let tensors = try #require(expected["tensors"] as? [[Any]])
            try #require(!tensors.isEmpty)
            for file in ["net.onnx", "ext.onnx"] {
                let r = try RunQTools.run(["inspect", "--json", dir.appendingPathComponent(file).path])
                #expect(r.status == 0, "\(r.stderr)")
                let doc = try #require(
                    JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
                #expect(doc["format"] as? String == "onnx")
                let rows = try #require(doc["tensors"] as? [[String: Any]])
                #expect(rows.map { $0["name"] as? String ?? "" } == tensors.map { $0[0] as? String ?? "" })
                #expect(
                    rows.map { $0["dtype"] as? String ?? "" }
                        == tensors.map { Self.dtypeNames[$0[1] as? String ?? ""] ?? "?" })
                #expect(rows.map { $0["shape"] as? [Int] ?? [] } == tensors.map { $0[2] as? [Int] ?? [] })
                let facts = try #require(doc["facts"] as? [[String: String]])
                func fact(_ k: String) -> String? { facts.first { $0["key"] == k }?["value"] }
                #expect(fact("IR version") == "\(expected["ir"] as? Int ?? -1)")
                let opsets = try #require(expected["opsets"] as? [[Any]])
                #expect(
                    fact("opsets")
                        == opsets.map {
                            "\(($0[0] as? String).flatMap { $0.isEmpty ? nil : $0 } ?? "ai.onnx"):\($0[1])"
                        }.joined(separator: ", "))
                #expect(fact("input") == "image: FLOAT [batch, 3, 8, 8]")
                let ops = try #require(expected["ops"] as? [String])
                #expect(
                    Set((fact("ops") ?? "").split(separator: ",").map { String($0.split(separator: " ")[0]) })
                        == Set(ops))
            }
            let text = try RunQTools.run(["inspect", dir.appendingPathComponent("net.onnx").path])
            #expect(text.status == 0)
            #expect(text.stdout.contains("ONNX model"))
        }
    }

    @Test func missingExternalDataExits65NamingTheFile() throws {
        try withTemporaryDirectory { dir in
            let py = try Python.run(Self.script, [dir.path])
            try #require(py.status == 0, "python failed: \(py.stderr)")
            try FileManager.default.removeItem(at: dir.appendingPathComponent("ext.bin"))
            let r = try RunQTools.run(["inspect", dir.appendingPathComponent("ext.onnx").path])
            #expect(r.status == 65)
            #expect(r.stderr.contains("ext.onnx"))
            #expect(r.stderr.contains("external data file \"ext.bin\""))
            #expect(r.stderr.contains("tensor \""))
        }
    }
}
