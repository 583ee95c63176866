import Formats
import Foundation
import QToolConfig
import Tensors
import TestSupport
import Testing

@testable import Engine
@testable import Models

/// The model-zoo networks beyond ResNet (seed-reference §6, §9.1-9.4): MobileNet v1/v2,
/// VGG-small and NIN. Random-weight builds check output shapes and parameter counts; the
/// torch tests write each net in torch with QTool's module names, `torch.save` its state dict,
/// and require qtools' build of that file (every key bound, none left over) to reproduce
/// torch's logits.
@Suite struct ZooModelTests {
    static func options(_ model: String, _ keyword: String, alpha: Double? = nil) throws -> QToolOptions {
        var args = ["--model", model, "--keyword", keyword]
        if let alpha { args += ["--width_alpha", "\(alpha)"] }
        return try QToolOptions(arguments: .commandLine(args))
    }

    /// FP parameter counts: MobileNetV2 = torchvision's 3,504,872; MobileNetV1 4,231,976
    /// (§9.1: 864 + 64 stem, 13 depth-wise/point-wise blocks with their BNs, 1024·1000 + 1000
    /// classifier); VGG-small (bac) 4,660,106 = 4,574,592 conv + 3,584 BN + 81,930 linear;
    /// NIN 968,606 (as torch counts the same structure).
    @Test(arguments: [
        ("mobilenetv2", "imagenet,cbas", 3_504_872), ("mobilenetv1", "imagenet,cbas", 4_231_976),
        ("vgg_small", "cifar10,bac", 4_660_106), ("nin", "cifar10", 968_606),
    ])
    func parameterCounts(model: String, keyword: String, expected: Int) throws {
        let m = try ModelBuilder.buildRandom(options: Self.options(model, keyword), seed: nil)
        let t = try ModelTrace(model: m, inputShape: m.inputShape())
        #expect(t.parameters == expected)
        #expect(t.rows.last?.outputShape == [1, m.numClasses])
    }

    /// Random-weight builds at the default input size run and give `[batch, classes]` logits.
    @Test(arguments: [
        ("mobilenetv1", "cifar10,cbas", 0.25), ("mobilenetv2", "cifar100,bacs", 0.25),
        ("vgg_small", "cifar10,cba", 1.0), ("nin", "cifar10", 1.0),
        ("mobilenetv2", "imagenet,cbas", 0.25),
    ])
    func randomBuildRuns(model: String, keyword: String, alpha: Double) throws {
        let m = try ModelBuilder.buildRandom(options: Self.options(model, keyword, alpha: alpha), seed: 1)
        #expect(m.inputSize == (keyword.hasPrefix("cifar") ? 32 : 224))
        let x = Tensor(floats: [Float](repeating: 0.5, count: 2 * 3 * m.inputSize * m.inputSize), shape: m.inputShape(batch: 2))
        let y = try #require(try Executor(graph: m.graph, threads: 2).run([m.input: x])[m.output])
        #expect(y.shape == [2, m.numClasses])
        #expect(y.floats().allSatisfy { $0.isFinite })
    }

    /// With quantization enabled (LSQ, 2 bits) the quantized wrappers of §10.1 get their
    /// quantizers (including the depth-wise convs, whose weight quantizer sees the full `in`)
    /// and the FP layers (VGG conv1, NIN body.0/body.26, stems, classifiers) none.
    @Test(arguments: [
        ("mobilenetv1", "cifar10,cbas,dorefa,lsq", 0.25, 26), ("mobilenetv2", "cifar10,bacs,dorefa,lsq", 0.25, 51),
        ("vgg_small", "cifar10,bac,dorefa,lsq", 1.0, 5), ("nin", "cifar10,dorefa,lsq", 1.0, 7),
    ])
    func quantizedRandomBuildRuns(model: String, keyword: String, alpha: Double, quantizedConvs: Int) throws {
        let o = try QToolOptions().applying(arguments: [
            "--model", model, "--keyword", keyword, "--width_alpha", "\(alpha)", "--fm_enable", "--wt_enable",
            "--fm_bit", "2", "--wt_bit", "2",
        ])
        let m = try ModelBuilder.buildRandom(options: o, seed: 2)
        #expect(m.layers.filter { $0.weightBits == 2 }.count == quantizedConvs)
        let x = Tensor(floats: [Float](repeating: 0.5, count: 3 * 32 * 32), shape: m.inputShape())
        let y = try #require(try Executor(graph: m.graph, threads: 2).run([m.input: x])[m.output])
        #expect(y.shape == [1, m.numClasses])
    }

    @Test func nameDispatchAndRefusals() throws {
        for name in ["mobilenetv1", "mobilenetv2", "vgg_small", "nin"] {
            #expect(ModelBuilder.supportedModels.contains(name))
        }
        // No layer-order keyword; V2 does not support cbsa; NIN is 10-class only.
        for (model, kw) in [("mobilenetv1", "cifar10"), ("mobilenetv2", "cifar10,cbsa"), ("vgg_small", "cifar10"), ("nin", "cifar100")] {
            #expect(throws: InferenceError.self) { try ModelBuilder.buildRandom(options: Self.options(model, kw), seed: nil) }
        }
    }

    static let torchScript = """
        import os, sys, json, numpy as np, torch, torch.nn as nn
        I = nn.Identity
        def act(): return nn.PReLU() if "PReLU" in kw else nn.ReLU6() if "ReLU6" in kw else nn.ReLU()
        def w(c): return int(c * alpha)
        def conv_bn(i, o, s):
            if "preBN" in kw: return nn.Conv2d(i, o, 3, s, 1, bias=False)
            return nn.Sequential(nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), act())
        def seq(x, c, r, b): return c(r(b(x))) if bacs else r(b(c(x)))
        class ConvDW(nn.Module):
            def __init__(s, i, o, st):
                super().__init__()
                s.relu1 = nn.ModuleList([act()]); s.relu2 = nn.ModuleList([act()])
                s.bn1 = nn.ModuleList([nn.BatchNorm2d(i)]); s.bn2 = nn.ModuleList([nn.BatchNorm2d(i if bacs else o)])
                s.depth_conv = nn.ModuleList([nn.Conv2d(i, i, 3, st, 1, groups=1 if "normal3x3" in kw else i, bias=False)])
                s.point_conv = nn.ModuleList([nn.Conv2d(i, o, 1, bias=False)])
            def forward(s, x):
                x = seq(x, s.depth_conv[0], s.relu1[0], s.bn1[0])
                return seq(x, s.point_conv[0], s.relu2[0], s.bn2[0])
        class V1(nn.Module):
            def __init__(s):
                super().__init__()
                s.root = conv_bn(3, w(32), 1 if cifar else 2)
                s.pooling = nn.Sequential(nn.BatchNorm2d(1024), act(), nn.AdaptiveAvgPool2d(1)) if "preBN" in kw else nn.AdaptiveAvgPool2d(1)
                cfg = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2)] + [(512, 512, 1)] * 5 + [(512, 1024, 2), (1024, 1024, 1)]
                s.model = nn.Sequential(*[ConvDW(w(i), w(o), st) for i, o, st in cfg])
                s.classifier = nn.Sequential(nn.Linear(w(1024), nc))
            def forward(s, x): return s.classifier(s.pooling(s.model(s.root(x))).flatten(1))
        class IR(nn.Module):
            def __init__(s, i, o, st, t):
                super().__init__()
                h = int(round(i * t)); s.res = st == 1 and i == o
                if t == 1:
                    s.conv1 = nn.Conv2d(h, h, 3, st, 1, groups=h, bias=False); s.conv2 = nn.Conv2d(h, o, 1, bias=False); s.conv3 = I()
                    s.bn1 = nn.BatchNorm2d(h); s.bn2 = nn.BatchNorm2d(h if bacs else o); s.bn3 = I()
                    s.relu1 = act(); s.relu2 = act() if bacs else I(); s.relu3 = I()
                else:
                    s.conv1 = nn.Conv2d(i, h, 1, bias=False); s.conv2 = nn.Conv2d(h, h, 3, st, 1, groups=h, bias=False)
                    s.conv3 = nn.Conv2d(h, o, 1, bias=False)
                    s.bn2 = nn.BatchNorm2d(h); s.bn1 = nn.BatchNorm2d(i if bacs else h); s.bn3 = nn.BatchNorm2d(h if bacs else o)
                    s.relu1 = act(); s.relu2 = act(); s.relu3 = act() if bacs else I()
                if bacs and s.res: s.skip_bn = nn.BatchNorm2d(i); s.stem_bn = nn.BatchNorm2d(o)
            def forward(s, x):
                y = x
                for c, b, r in [(s.conv1, s.bn1, s.relu1), (s.conv2, s.bn2, s.relu2), (s.conv3, s.bn3, s.relu3)]:
                    y = seq(y, c, r, b)
                if not s.res: return y
                return s.skip_bn(x) + s.stem_bn(y) if bacs else x + y
        class V2(nn.Module):
            def __init__(s):
                super().__init__()
                st = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
                if cifar: st[1][3] = 1
                i = w(32); f = [conv_bn(3, i, 1 if cifar else 2)]
                for t, c, n, sd in st:
                    for k in range(n):
                        f.append(IR(i, w(c), sd if k == 0 else 1, t)); i = w(c)
                last = int(1280 * alpha) if alpha > 1 else 1280
                f.append(nn.Sequential(nn.Conv2d(i, last, 1, bias=False), nn.BatchNorm2d(last), act()))
                s.features = nn.Sequential(*f)
                s.classifier = nn.Sequential(nn.Linear(last, nc))
            def forward(s, x): return s.classifier(s.features(x).mean([2, 3]))
        class VGG(nn.Module):
            def __init__(s):
                super().__init__()
                s.o = next(k for k in ["bac", "cba", "abc"] if k in kw)
                ch = [(3, 128), (128, 128), (128, 256), (256, 256), (256, 512), (512, 512)]
                bnc = [128, 128, 256, 256, 512, 512] if s.o == "cba" else [None, 128, 128, 256, 256, 512]
                for k in range(1, 7):
                    setattr(s, f"conv{k}", nn.Conv2d(*ch[k - 1], 3, padding=1, bias=False))
                    setattr(s, f"bn{k}", I() if bnc[k - 1] is None else nn.BatchNorm2d(bnc[k - 1]))
                    setattr(s, f"relu{k}", I() if k == 1 and s.o != "cba" else nn.ReLU())
                s.bn7 = nn.BatchNorm2d(512); s.relu7 = nn.ReLU(); s.pool = nn.MaxPool2d(2, 2)
                s.classifier = nn.Linear(512 * 16, nc)
            def forward(s, x):
                for k in range(1, 7):
                    c, b, r = getattr(s, f"conv{k}"), getattr(s, f"bn{k}"), getattr(s, f"relu{k}")
                    x = c(r(b(x))) if s.o == "bac" else c(b(r(x))) if s.o == "abc" else r(b(c(x)))
                    if k % 2 == 0: x = s.pool(x)
                return s.classifier(s.relu7(s.bn7(x)).flatten(1))
        class NIN(nn.Module):
            def __init__(s):
                super().__init__()
                L = []
                def cba(i, o, k, bias=False): L.extend([nn.Conv2d(i, o, k, padding=k // 2, bias=bias), nn.BatchNorm2d(o), act()])
                cba(3, 192, 5, True); cba(192, 160, 1); cba(160, 96, 1); L.append(nn.MaxPool2d(3, 2, 1))
                cba(96, 192, 5); cba(192, 192, 1); cba(192, 192, 1); L.append(nn.AvgPool2d(3, 2, 1))
                cba(192, 192, 3); cba(192, 192, 1); cba(192, 10, 1, True); L.append(nn.AvgPool2d(8))
                s.body = nn.Sequential(*L)
            def forward(s, x): return s.body(x).view(x.size(0), nc)
        def run(d, name, keyword, a, seed):
            global kw, alpha, cifar, nc, bacs
            kw, alpha = keyword.split(","), a
            cifar = "cifar10" in kw or "cifar100" in kw
            nc = 100 if "cifar100" in kw else 10 if "cifar10" in kw else 1000
            bacs = "bacs" in kw
            torch.manual_seed(seed)
            os.makedirs(d, exist_ok=True)
            model = {"mobilenetv1": V1, "mobilenetv2": V2, "vgg_small": VGG, "nin": NIN}[name]()
            size = 32 if cifar else 224
            x = torch.randn(2, 3, size, size)
            # Realistic BN statistics: one training-mode pass with momentum 1, then random affines.
            bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
            for m in bns: m.momentum = 1.0
            with torch.no_grad():
                model.train(); model(x)
                # (a variance floor keeps near-dead channels from amplifying float rounding)
                for m in bns: m.weight.uniform_(0.5, 1.5); m.bias.uniform_(-0.3, 0.3); m.running_var.clamp_(min=0.05)
                for m in model.modules():
                    if isinstance(m, nn.PReLU): m.weight.uniform_(0.05, 0.4)
                model.eval(); y = model(x)
            torch.save(model.state_dict(), d + "/model.pth")
            x.numpy().astype("<f4").tofile(d + "/input.f32")
            y.numpy().astype("<f4").tofile(d + "/logits.f32")
            return {"parameters": sum(p.numel() for p in model.parameters()), "keys": len(model.state_dict()), "shape": list(y.shape)}
        cases = json.loads(sys.argv[2])
        print(json.dumps([run(f"{sys.argv[1]}/{k}", *c, 0) for k, c in enumerate(cases)]))
        """

    /// The torch-agreement cases: (model, keywords, width_alpha).
    static let torchCases: [(String, String, Double)] = [
        ("mobilenetv1", "cifar10,cbas", 0.25),
        ("mobilenetv1", "cifar100,cbsa,normal3x3", 0.125), ("mobilenetv1", "cifar10,bacs,preBN,PReLU", 1.0),
        ("mobilenetv2", "cifar10,cbas", 0.25), ("mobilenetv2", "cifar100,bacs,ReLU6", 0.25),
        ("vgg_small", "cifar10,bac", 1.0), ("vgg_small", "cifar10,cba", 1.0), ("vgg_small", "cifar10,abc", 1.0),
        ("nin", "cifar10,PReLU", 1.0),
    ]

    /// Same net in torch and qtools, same weights (through a `torch.save` file) and input.
    /// One Python process writes every case (torch's import dominates a per-case process).
    @Test(.enabled(if: Python.interpreter != nil || Python.isRequired))
    func matchesTorch() throws {
        try withTemporaryDirectory { dir in
            let cases = try JSONSerialization.data(withJSONObject: Self.torchCases.map { [$0.0, $0.1, $0.2] as [Any] })
            let infos = try #require(
                try Python.json(Self.torchScript, [dir.path, String(decoding: cases, as: UTF8.self)]) as? [[String: Any]])
            try #require(infos.count == Self.torchCases.count)
            for (k, (model, keyword, alpha)) in Self.torchCases.enumerated() {
                let info = infos[k]
                let caseDir = dir.appendingPathComponent("\(k)")
                let opened = try ModelFile.open(path: caseDir.appendingPathComponent("model.pth").path)
                let entries = try #require(opened.checkpoint.stateDict()?.entries).map { ($0.name, $0.tensor.materialize()) }
                #expect(entries.count == info["keys"] as? Int)
                let m = try ModelBuilder.build(options: Self.options(model, keyword, alpha: alpha), stateDict: entries)
                #expect(Set(m.boundKeys) == Set(entries.map(\.0)))
                let shape = m.inputShape(batch: 2)
                let x = Tensor(floats: try readFloat32(caseDir.appendingPathComponent("input.f32")), shape: shape)
                let y = try #require(try Executor(graph: m.graph, threads: 2).run([m.input: x])[m.output])
                #expect(y.shape == (info["shape"] as? [Int]), "\(model) \(keyword)")
                let torch = try readFloat32(caseDir.appendingPathComponent("logits.f32"))
                let d = Difference(y.floats(), torch)
                // 1e-4 absolute, relative to the logit scale when logits exceed 1 in magnitude.
                let scale = max(1, torch.map { abs($0) }.max() ?? 0)
                #expect(d.maxAbs <= 1e-4 * scale, "\(model) \(keyword): \(d), scale \(scale)")
                let t = try ModelTrace(model: m, inputShape: shape)
                #expect(t.parameters == info["parameters"] as? Int, "\(model) \(keyword)")
            }
        }
    }
}
