import Engine
import Foundation
import Tensors
import TestSupport
import Testing

/// Builds a small ResNet-like network in Swift and the same one in torch (functional API),
/// feeds both the same weights and input (raw little-endian float32 files in a temp dir),
/// and compares the outputs. Covers the QTool quantized-conv ordering (explicit zero pad,
/// then an unpadded conv), a strided block with a 1x1 downsample, BN, PReLU, hardtanh,
/// dilated depthwise conv with bias, avg pool with ceil mode / count_include_pad=False,
/// non-divisible adaptive pooling, flatten, linear and softmax; batch 2, non-square input.
@Suite(.enabled(if: Python.interpreter != nil || Python.isRequired))
struct TorchAgreementTests {
    static let script = """
        import sys, json, numpy as np, torch, torch.nn.functional as F
        d = sys.argv[1]
        m = json.load(open(d + "/manifest.json"))
        W = {k: torch.from_numpy(np.fromfile(f"{d}/{k}.f32", dtype="<f4").reshape(s)) for k, s in m.items()}
        def bn(x, p):
            return F.batch_norm(x, W[p + ".mean"], W[p + ".var"], W[p + ".gamma"], W[p + ".beta"], False, 0.0, 1e-5)
        with torch.no_grad():
            y = F.relu(bn(F.conv2d(W["input"], W["stem.w"], W["stem.b"], stride=1, padding=1), "stem.bn"))
            y = F.max_pool2d(y, 3, 2, 1)
            idt = bn(F.conv2d(y, W["ds.w"], stride=2), "ds.bn")
            o = F.relu(bn(F.conv2d(y, W["c1.w"], stride=2, padding=1), "bn1"))
            o = bn(F.conv2d(F.pad(o, (1, 1, 1, 1)), W["c2.w"]), "bn2")
            y = F.relu(o + idt)
            o = F.prelu(bn(F.conv2d(y, W["c3.w"], padding=1), "bn3"), W["prelu"])
            o = F.hardtanh(bn(F.conv2d(o, W["c4.w"], padding=1), "bn4"), -1.0, 1.0)
            y = o + y
            y = F.conv2d(y, W["dw.w"], W["dw.b"], stride=1, padding=2, dilation=2, groups=16)
            y = F.avg_pool2d(y, 3, 2, 1, ceil_mode=True, count_include_pad=False)
            y = F.adaptive_avg_pool2d(y, (3, 2))
            logits = F.linear(torch.flatten(y, 1), W["fc.w"], W["fc.b"])
            prob = torch.softmax(logits, 1)
        logits.numpy().astype("<f4").tofile(d + "/logits.f32")
        prob.numpy().astype("<f4").tofile(d + "/prob.f32")
        """

    static func build(seed: UInt64) -> (Graph, [String: Tensor]) {
        var rng = SplitMix64(seed: seed)
        var g = Graph()
        var tensors: [String: Tensor] = [:]
        func c(_ name: String, _ shape: [Int], _ lo: Float = -0.3, _ hi: Float = 0.3) {
            let t = Tensor(floats: rng.floats(shape.reduce(1, *), lo, hi), shape: shape)
            g.addConstant(name, t)
            tensors[name] = t
        }
        func bn(_ p: String, _ ch: Int, _ x: String) -> String {
            c("\(p).gamma", [ch], 0.5, 1.5); c("\(p).beta", [ch]); c("\(p).mean", [ch]); c("\(p).var", [ch], 0.5, 1.5)
            return g.add(.batchNorm(epsilon: 1e-5), name: p, inputs: [x] + ["gamma", "beta", "mean", "var"].map { "\(p).\($0)" })
        }
        func conv(_ name: String, _ x: String, _ w: String, bias: String? = nil, _ a: Conv2dAttributes) -> String {
            g.add(.conv2d(a), name: name, inputs: [x, w] + (bias.map { [$0] } ?? []))
        }
        g.addInput("input")
        c("stem.w", [8, 3, 3, 3]); c("stem.b", [8])
        var y = g.add(
            .relu, name: "stem.relu", inputs: [bn("stem.bn", 8, conv("stem", "input", "stem.w", bias: "stem.b", .init(padding: 1)))])
        y = g.add(.maxPool2d(.init(kernel: 3, stride: 2, padding: 1)), name: "pool", inputs: [y])
        c("ds.w", [16, 8, 1, 1]); c("c1.w", [16, 8, 3, 3]); c("c2.w", [16, 16, 3, 3])
        let idt = bn("ds.bn", 16, conv("ds", y, "ds.w", .init(stride: 2)))
        var o = g.add(.relu, name: "relu1", inputs: [bn("bn1", 16, conv("c1", y, "c1.w", .init(stride: 2, padding: 1)))])
        o = g.add(.pad(.init(Padding2d(1))), name: "c2.pad", inputs: [o])
        o = bn("bn2", 16, conv("c2", o, "c2.w", .init()))
        y = g.add(.relu, name: "relu2", inputs: [g.add(.add, name: "add1", inputs: [o, idt])])
        c("c3.w", [16, 16, 3, 3]); c("prelu", [16], 0, 0.3); c("c4.w", [16, 16, 3, 3])
        o = g.add(.prelu, name: "prelu", inputs: [bn("bn3", 16, conv("c3", y, "c3.w", .init(padding: 1))), "prelu"], output: "prelu.out")
        o = g.add(.hardtanh(min: -1, max: 1), name: "ht", inputs: [bn("bn4", 16, conv("c4", o, "c4.w", .init(padding: 1)))])
        y = g.add(.add, name: "add2", inputs: [o, y])
        c("dw.w", [16, 1, 3, 3]); c("dw.b", [16])
        y = conv("dw", y, "dw.w", bias: "dw.b", .init(stride: 1, padding: 2, dilation: 2, groups: 16))
        y = g.add(.avgPool2d(.init(kernel: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false)), name: "apool", inputs: [y])
        y = g.add(.adaptiveAvgPool2d(outputHeight: 3, outputWidth: 2), name: "adapt", inputs: [y])
        y = g.add(.flatten(startDim: 1), name: "flat", inputs: [y])
        c("fc.w", [7, 96]); c("fc.b", [7])
        let logits = g.add(.linear, name: "fc", inputs: [y, "fc.w", "fc.b"], output: "logits")
        g.add(.softmax(axis: 1), name: "softmax", inputs: [logits], output: "prob")
        g.markOutput("logits")
        g.markOutput("prob")
        tensors["input"] = Tensor(floats: rng.floats(2 * 3 * 29 * 23), shape: [2, 3, 29, 23])
        return (g, tensors)
    }

    static func writeF32(_ values: [Float], to url: URL) throws {
        var bytes = [UInt8]()
        bytes.reserveCapacity(values.count * 4)
        for v in values {
            let b = v.bitPattern
            bytes += [UInt8(b & 0xff), UInt8((b >> 8) & 0xff), UInt8((b >> 16) & 0xff), UInt8(b >> 24)]
        }
        try Data(bytes).write(to: url)
    }

    static func readF32(_ url: URL) throws -> [Float] { try readFloat32(url) }

    @Test(arguments: [0, 1] as [UInt64])
    func resnetLikeBlockMatchesTorch(seed: UInt64) throws {
        let (graph, tensors) = Self.build(seed: seed)
        try withTemporaryDirectory { dir in
            var manifest: [String: [Int]] = [:]
            for (name, t) in tensors {
                try Self.writeF32(t.floats(), to: dir.appendingPathComponent("\(name).f32"))
                manifest[name] = t.shape
            }
            try JSONEncoder().encode(manifest).write(to: dir.appendingPathComponent("manifest.json"))
            let r = try Python.run(Self.script, [dir.path])
            try #require(r.status == 0, "python failed: \(r.stderr)")
            let exec = try Executor(graph: graph, threads: 2)
            let out = try exec.run(["input": try #require(tensors["input"])])
            let reference = try ReferenceExecutor.run(graph, inputs: ["input": try #require(tensors["input"])])
            for name in ["logits", "prob"] {
                let torch = try Self.readF32(dir.appendingPathComponent("\(name).f32"))
                let fast = try #require(out[name]).floats()
                let slow = try #require(reference[name]).floats()
                #expect(try #require(out[name]).shape == [2, 7])
                let df = Difference(fast, torch), ds = Difference(slow, torch)
                #expect(df.maxAbs <= 1e-4, "fast \(name) vs torch: \(df)")
                #expect(ds.maxAbs <= 1e-4, "reference \(name) vs torch: \(ds)")
            }
        }
    }

    /// QTool's TResNetStem / Prone layouts: space-to-depth, 1x1 conv, depth-to-space.
    @Test func spaceToDepthRoundTripMatchesTorch() throws {
        var rng = SplitMix64(seed: 5)
        let x = Tensor(floats: rng.floats(2 * 3 * 12 * 8), shape: [2, 3, 12, 8])
        let w = Tensor(floats: rng.floats(8 * 12), shape: [8, 12, 1, 1])
        var g = Graph()
        g.addInput("input")
        g.addConstant("w", w)
        let s2d = g.add(.spaceToDepth(blockSize: 2), name: "s2d", inputs: ["input"])
        let c = g.add(.conv2d(.init()), name: "conv", inputs: [s2d, "w"])
        g.add(.depthToSpace(blockSize: 2), name: "d2s", inputs: [c])
        g.markOutput("s2d")
        g.markOutput("d2s")
        let script = """
            import sys, json, numpy as np, torch, torch.nn.functional as F
            d = sys.argv[1]
            x = torch.from_numpy(np.fromfile(d + "/input.f32", dtype="<f4").reshape(2, 3, 12, 8))
            w = torch.from_numpy(np.fromfile(d + "/w.f32", dtype="<f4").reshape(8, 12, 1, 1))
            s2d = F.pixel_unshuffle(x, 2)
            F.pixel_shuffle(F.conv2d(s2d, w), 2).numpy().astype("<f4").tofile(d + "/d2s.f32")
            s2d.numpy().astype("<f4").tofile(d + "/s2d.f32")
            """
        try withTemporaryDirectory { dir in
            try Self.writeF32(x.floats(), to: dir.appendingPathComponent("input.f32"))
            try Self.writeF32(w.floats(), to: dir.appendingPathComponent("w.f32"))
            let r = try Python.run(script, [dir.path])
            try #require(r.status == 0, "python failed: \(r.stderr)")
            let out = try Executor(graph: g, threads: 2).run(["input": x])
            #expect(out["s2d"]?.shape == [2, 12, 6, 4])
            #expect(out["d2s"]?.shape == [2, 2, 12, 8])
            for name in ["s2d", "d2s"] {
                let torch = try Self.readF32(dir.appendingPathComponent("\(name).f32"))
                let d = Difference(try #require(out[name]).floats(), torch)
                #expect(d.maxAbs <= 1e-5, "\(name): \(d)")
            }
        }
    }
}
