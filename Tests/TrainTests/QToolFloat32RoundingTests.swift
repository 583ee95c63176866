import Foundation
import Tensors
import TestSupport
import Testing

@testable import Train

/// The evidence behind ``TrainStepGoldenTests/float32Rounding``: where our step differs from
/// `after_step.pth` by more than the tolerance, PyTorch's own float32 arithmetic is what
/// differs from the exact gradient, not ours.
@Suite struct QToolFloat32RoundingTests {
    /// `resnet20_dorefa_a2w2`, `layer1.1.conv2.0.weight`: from our tape (the conv's input
    /// after its activation quantizer, the conv output and the gradient at the BN output),
    /// torch recomputes BN backward -> conv weight gradient -> DoReFa weight backward
    /// (1 thread, deterministic) in float32 and in float64. QTool's gradient (implied by
    /// `after_step.pth`: `p' = p − 0.1·1.9·(g + 1e-4·p)`, Nesterov's first step) is the float32
    /// one in output channel 6; the float64 one, and ours, are 1.7e-5 away from it there.
    @Test(.enabled(if: Python.interpreter != nil || Python.isRequired, "no Python with torch"))
    func doReFaLayer1Block1Conv2IsTorchFloat32Rounding() throws {
        let golden = try TrainGolden("resnet20_dorefa_a2w2")
        let step = try TrainStep(options: golden.options, stateDict: golden.stateDict)
        let f = try step.forward(x: golden.npy("train_x.npy"), labels: golden.labels())
        let graph = try TrainingGraph(step.model.graph)
        let grads = try graph.backward(f.tape, outputGradients: [step.model.output: f.logitsGradient])
        let out = try withTemporaryDirectory { tmp -> [String: Any] in
            func dump(_ file: String, _ v: [Float]?) throws {
                let values = try #require(v, "\(file)")
                try values.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: tmp.appendingPathComponent(file))
            }
            try dump("x", f.tape.values["layer1.1.conv2.0"])
            try dump("dy", grads["layer1.1.bn2.0"])
            try dump("gamma", f.tape.values["layer1.1.bn2.0.weight"])
            try dump("beta", f.tape.values["layer1.1.bn2.0.bias"])
            try dump("xq", f.tape.values["layer1.1.conv2.0.quant_activation"])
            try dump("w", f.tape.values["layer1.1.conv2.0.weight"])
            try dump("dw", grads["layer1.1.conv2.0.weight"])
            let result = try Python.json(
                Self.script,
                [
                    tmp.path, Fixtures.path("golden/resnet20_dorefa_a2w2/checkpoint.pth"),
                    Fixtures.path("golden/resnet20_dorefa_a2w2/after_step.pth"),
                ])
            return try #require(result as? [String: Any])
        }
        let torch32 = try #require(out["torch32"] as? [Double])
        let float64 = try #require(out["float64"] as? [Double])
        let ours = try #require(out["ours_vs_float64"] as? [Double])
        #expect(torch32[6] <= 2e-6, "torch float32 vs QTool, channel 6: \(torch32)")
        #expect(float64[6] >= 1e-5, "float64 vs QTool, channel 6: \(float64)")
        #expect(ours.allSatisfy { $0 <= 5e-7 }, "ours vs float64: \(ours)")
    }

    static let script = #"""
        import json, sys, numpy as np, torch
        torch.set_num_threads(1); torch.use_deterministic_algorithms(True)
        d = sys.argv[1]
        L = lambda n, s: torch.from_numpy(np.fromfile(d + "/" + n, dtype=np.float32).reshape(s))
        x, dy = L("x", (8, 8, 32, 32)), L("dy", (8, 8, 32, 32))
        g, b = L("gamma", (8,)), L("beta", (8,))
        xq, w, dw = L("xq", (8, 8, 34, 34)), L("w", (8, 8, 3, 3)), L("dw", (8, 8, 3, 3))
        key = "layer1.1.conv2.0.weight"
        p0 = torch.load(sys.argv[2], weights_only=True)["state_dict"][key].double()
        p1 = torch.load(sys.argv[3], weights_only=True)[key].double()
        implied = (p0 - p1) / (0.1 * 1.9) - 1e-4 * p0
        class RoundSTE(torch.autograd.Function):
            @staticmethod
            def forward(ctx, v): return torch.round(v)
            @staticmethod
            def backward(ctx, grad): return grad
        def gradient(dt):
            xx = x.to(dt).clone().requires_grad_()
            torch.nn.functional.batch_norm(xx, None, None, g.to(dt), b.to(dt), training=True, eps=1e-5).backward(dy.to(dt))
            ww = w.to(dt).clone().requires_grad_()
            t = torch.tanh(ww); u = t / (2 * t.abs().max()) + 0.5
            wq = 2 * (RoundSTE.apply(u * 3.0) / 3.0) - 1
            torch.nn.functional.conv2d(xq.to(dt), wq).backward(xx.grad)
            return ww.grad.double()
        g32, g64 = gradient(torch.float32), gradient(torch.float64)
        per = lambda t: t.abs().amax((1, 2, 3)).tolist()
        print(json.dumps({"torch32": per(g32 - implied), "float64": per(g64 - implied), "ours_vs_float64": per(dw.double() - g64)}))
        """#
}
