import Foundation
import TestSupport
import Testing

/// An imported ONNX graph whose input is not 3-channel: `run`, `bench` and `verify` take the
/// channel count from the graph's declared input (reference: onnxruntime on the same file).
@Suite(
    .enabled(if: Python.interpreter != nil || Python.isRequired, "needs the reference Python (torch, onnxruntime)"))
struct ONNXInputShapeTests {
    static let script = """
        import os, sys
        import numpy as np, torch, onnxruntime as ort
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(16, 8, 3, padding=1), torch.nn.ReLU(),
                                  torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
        d = sys.argv[1]
        x = torch.randn(2, 16, 12, 12)
        torch.onnx.export(net, (x,), os.path.join(d, "c16.onnx"), dynamo=False, opset_version=13,
                          input_names=["input"], output_names=["out"], dynamic_axes={"input": {0: "n"}, "out": {0: "n"}})
        np.save(os.path.join(d, "x.npy"), x.numpy())
        np.save(os.path.join(d, "x3.npy"), np.zeros((2, 3, 12, 12), np.float32))
        s = ort.InferenceSession(os.path.join(d, "c16.onnx"), providers=["CPUExecutionProvider"])
        np.save(os.path.join(d, "ort.npy"), s.run(None, {"input": x.numpy()})[0])
        """

    @Test func sixteenChannelInputRunsAndMatchesOnnxruntime() throws {
        try withTemporaryDirectory { dir in
            let py = try Python.run(Self.script, [dir.path])
            try #require(py.status == 0, "python failed: \(py.stderr)")
            let model = dir.appendingPathComponent("c16.onnx").path
            let bench = try RunQTools.run(["bench", model, "--runs", "1", "--warmup", "0", "--json"])
            #expect(bench.status == 0, "\(bench.stderr)")
            let doc = try #require(JSONSerialization.jsonObject(with: Data(bench.stdout.utf8)) as? [String: Any])
            #expect(doc["input_shape"] as? [Int] == [1, 16, 12, 12])
            let run = try RunQTools.run(["run", model])
            #expect(run.status == 0, "\(run.stderr)")
            let verify = try RunQTools.run([
                "verify", model, "--input", dir.appendingPathComponent("x.npy").path, "--expect",
                dir.appendingPathComponent("ort.npy").path, "--atol", "1e-5",
            ])
            #expect(verify.status == 0, "\(verify.stdout) \(verify.stderr)")
            // A 3-channel input for this 16-channel graph is a usage error naming both shapes.
            let wrong = try RunQTools.run([
                "verify", model, "--input", dir.appendingPathComponent("x3.npy").path, "--expect",
                dir.appendingPathComponent("ort.npy").path,
            ])
            #expect(wrong.status == 64, "\(wrong.stdout) \(wrong.stderr)")
            #expect(wrong.stderr.contains("[N, 16, H, W]") && wrong.stderr.contains("[2, 3, 12, 12]"), "\(wrong.stderr)")
        }
    }
}
