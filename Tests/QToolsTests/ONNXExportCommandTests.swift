import Foundation
import TestSupport
import Testing

/// `qtools convert --to onnx` and `.onnx` models in `run`/`verify`, checked with the real onnx
/// and onnxruntime packages against the golden PyTorch logits.
@Suite(.enabled(if: Python.interpreter != nil || Python.isRequired, "needs the reference Python (torch, onnx, onnxruntime)"))
struct ONNXExportCommandTests {
    static let cases = [
        "pytorch_resnet18_fp", "resnet18_lsq_a2w2", "resnet20_bireal_xnor", "resnet20_dorefa_a2w2",
        "resnet20_dorefa_a4w4_varmean", "resnet20_fatnn_a2w2", "resnet20_fixup", "resnet20_fp", "resnet20_lq_a2w2",
        "resnet20_lsq_a2w2", "resnet20_pact_a2w2", "resnet20_ternary_fatnn", "resnet20_xnorpp",
    ]
    static func golden(_ c: String, _ f: String) -> String { Fixtures.path("golden/\(c)/\(f)") }

    /// Checker (full_check), ORT default session (and `session.disable_quant_qdq` for
    /// qdq-native, formats.md C.2.1) vs output.npy: max |ort − golden| / max |golden| per file.
    static let checkScript = """
        import sys, json, numpy as np, onnx, onnxruntime as ort
        res = {}
        a = sys.argv[1:]
        for path, inp, outp in zip(a[0::3], a[1::3], a[2::3]):
            m = onnx.load(path)
            onnx.checker.check_model(m, full_check=True)
            x = np.load(inp); y = np.load(outp)
            errs = []
            for disable in ([False, True] if 'native' in path else [False]):
                so = ort.SessionOptions()
                if disable: so.add_session_config_entry('session.disable_quant_qdq', '1')
                s = ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])
                got = s.run(None, {s.get_inputs()[0].name: x})[0]
                errs.append(float(np.max(np.abs(got - y)) / np.max(np.abs(y))))
            res[path] = {'rel': max(errs), 'ops': sorted({n.op_type for n in m.graph.node}),
                         'opset': m.opset_import[0].version,
                         'meta': {p.key: p.value for p in m.metadata_props}}
        print(json.dumps(res))
        """

    @Test func goldenCasesExportCheckAndMatchInORTAndQTools() throws {
        try withTemporaryDirectory { dir in
            var args: [String] = []
            var files: [(String, String)] = []
            for c in Self.cases {
                var variants = [("qcdq", "\(c).onnx")]
                if ["resnet20_ternary_fatnn", "resnet20_xnorpp", "resnet20_lsq_a2w2"].contains(c) {
                    variants.append(("qdq-native", "\(c).native.onnx"))
                }
                for (format, file) in variants {
                    let out = dir.appendingPathComponent(file).path
                    var cmd = [
                        "convert", Self.golden(c, "checkpoint.pth"), "--config", Self.golden(c, "config.txt"),
                        "--to", "onnx", "--onnx-format", format, "-o", out,
                    ]
                    if c == "pytorch_resnet18_fp" { cmd += ["--", "--width_alpha", "0.125"] }
                    let r = try RunQTools.run(cmd)
                    #expect(r.status == 0, "\(c): \(r.stderr)")
                    args += [out, Self.golden(c, "input.npy"), Self.golden(c, "output.npy")]
                    files.append((c, out))
                }
            }
            let doc = try #require(try Python.json(Self.checkScript, args) as? [String: [String: Any]])
            for (c, out) in files {
                let r = try #require(doc[out], "\(out) missing from the check")
                let rel = try #require(r["rel"] as? Double)
                #expect(rel <= 1e-4, "\(out): ORT max relative error \(rel)")
                // qtools runs its own export and matches PyTorch.
                let v = try RunQTools.run([
                    "verify", out, "--input", Self.golden(c, "input.npy"),
                    "--expect", Self.golden(c, "output.npy"), "--json",
                ])
                #expect(v.status == 0, "\(out): \(v.stdout) \(v.stderr)")
            }
            // Quantized exports carry QCDQ; full-precision ones only the plain vocabulary.
            let lsq = try #require(doc[dir.appendingPathComponent("resnet20_lsq_a2w2.onnx").path])
            let ops = try #require(lsq["ops"] as? [String])
            #expect(ops.contains("QuantizeLinear") && ops.contains("DequantizeLinear") && ops.contains("Clip"))
            let meta = try #require(lsq["meta"] as? [String: String])
            #expect(meta["qtools.layer1.0.conv1.0.activation_bits"] == "2")
            #expect(meta["qtools.layer1.0.conv1.0.quant_weight.storage"]?.hasPrefix("int8 levels") == true)
            let fp = try #require(doc[dir.appendingPathComponent("resnet20_fp.onnx").path]?["ops"] as? [String])
            #expect(Set(fp).isSubset(of: ["Conv", "Relu", "Add", "GlobalAveragePool", "Flatten", "Gemm", "MaxPool"]))
            let native = try #require(doc[dir.appendingPathComponent("resnet20_ternary_fatnn.native.onnx").path])
            #expect(native["opset"] as? Int == 25)
        }
    }

    /// A BasicBlock ResNet-18 exported by torch.onnx (TorchScript exporter) runs in qtools and
    /// matches onnxruntime; an unknown op is an error naming the node and op type.
    static let torchScript = """
        import sys, torch, torch.nn as nn, numpy as np, onnx, onnxruntime as ort
        from onnx import helper, TensorProto
        d = sys.argv[1]
        torch.manual_seed(0)
        class Block(nn.Module):
            def __init__(s, i, o, st):
                super().__init__()
                s.conv1 = nn.Conv2d(i, o, 3, st, 1, bias=False); s.bn1 = nn.BatchNorm2d(o)
                s.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); s.bn2 = nn.BatchNorm2d(o)
                s.down = None if st == 1 and i == o else nn.Sequential(nn.Conv2d(i, o, 1, st, bias=False), nn.BatchNorm2d(o))
            def forward(s, x):
                y = torch.relu(s.bn1(s.conv1(x))); y = s.bn2(s.conv2(y))
                return torch.relu(y + (x if s.down is None else s.down(x)))
        class ResNet18(nn.Module):
            def __init__(s, w=16, classes=10):
                super().__init__()
                s.conv1 = nn.Conv2d(3, w, 7, 2, 3, bias=False); s.bn1 = nn.BatchNorm2d(w)
                s.pool = nn.MaxPool2d(3, 2, 1)
                chans = [w, 2 * w, 4 * w, 8 * w]; layers = []; i = w
                for k, o in enumerate(chans):
                    layers += [Block(i, o, 1 if k == 0 else 2), Block(o, o, 1)]; i = o
                s.layers = nn.Sequential(*layers)
                s.gap = nn.AdaptiveAvgPool2d(1); s.fc = nn.Linear(i, classes)
            def forward(s, x):
                x = s.pool(torch.relu(s.bn1(s.conv1(x))))
                return s.fc(torch.flatten(s.gap(s.layers(x)), 1))
        m = ResNet18()
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5); mod.running_var.uniform_(0.5, 2); mod.weight.data.uniform_(0.5, 1.5)
        m.eval()
        x = torch.randn(2, 3, 64, 64)
        torch.onnx.export(m, (x,), d + '/r18.onnx', input_names=['input'], output_names=['logits'], dynamo=False,
                          dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}})
        s = ort.InferenceSession(d + '/r18.onnx', providers=['CPUExecutionProvider'])
        np.save(d + '/x.npy', x.numpy()); np.save(d + '/ort.npy', s.run(None, {'input': x.numpy()})[0])
        np.save(d + '/torch.npy', m(x).detach().numpy())
        g = helper.make_graph([helper.make_node('Relu', ['input'], ['r'], name='first'),
                               helper.make_node('Erf', ['r'], ['out'], name='strange_node')], 'g',
                              [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info('out', TensorProto.FLOAT, [1, 3, 8, 8])])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), d + '/erf.onnx')
        print('{}')
        """

    @Test func torchExportedResNet18RunsInQToolsAndMatchesORT() throws {
        try withTemporaryDirectory { dir in
            let d = dir.path
            _ = try Python.json(Self.torchScript, [d])
            let v = try RunQTools.run([
                "verify", d + "/r18.onnx", "--input", d + "/x.npy", "--expect", d + "/ort.npy",
                "--atol", "1e-4", "--rtol", "1e-4", "--json",
            ])
            #expect(v.status == 0, "\(v.stdout) \(v.stderr)")
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(v.stdout.utf8)) as? [String: Any])
            #expect(doc["top1_agree"] as? Int == 2)
            let t = try RunQTools.run([
                "verify", d + "/r18.onnx", "--input", d + "/x.npy", "--expect", d + "/torch.npy",
                "--atol", "1e-4", "--rtol", "1e-4",
            ])
            #expect(t.status == 0, "\(t.stdout) \(t.stderr)")
            let bad = try RunQTools.run(["run", d + "/erf.onnx"])
            #expect(bad.status != 0)
            #expect(bad.stderr.contains("strange_node") && bad.stderr.contains("Erf"), "\(bad.stderr)")
        }
    }

    /// torchvision's ResNet-50 (Bottleneck blocks; Benchmarks/torch_resnets.py has its layout,
    /// torchvision itself is not installed) exported by the TorchScript exporter at opset 13,
    /// random weights and batch-norm statistics, 64x64 inputs to keep the debug build quick.
    static let resnet50Script = """
        import sys, json, torch, numpy as np, onnx, onnxruntime as ort
        d, bench = sys.argv[1], sys.argv[2]
        sys.path.insert(0, bench)
        from torch_resnets import resnet50
        torch.manual_seed(0)
        m = resnet50()
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5); mod.running_var.uniform_(0.5, 2)
                mod.weight.data.uniform_(0.5, 1.5); mod.bias.data.uniform_(-0.2, 0.2)
        m.eval()
        x = torch.randn(2, 3, 64, 64)
        torch.onnx.export(m, (x,), d + '/r50.onnx', input_names=['input'], output_names=['logits'], dynamo=False,
                          opset_version=13, dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}})
        s = ort.InferenceSession(d + '/r50.onnx', providers=['CPUExecutionProvider'])
        np.save(d + '/x.npy', x.numpy()); np.save(d + '/ort.npy', s.run(None, {'input': x.numpy()})[0])
        with torch.no_grad(): np.save(d + '/torch.npy', m(x).numpy())
        print(json.dumps(sorted({n.op_type for n in onnx.load(d + '/r50.onnx').graph.node})))
        """

    @Test func torchExportedResNet50RunsInQToolsAndMatchesORT() throws {
        try withTemporaryDirectory { dir in
            let d = dir.path
            let bench = Fixtures.root.deletingLastPathComponent().appendingPathComponent("Benchmarks").path
            let ops = try #require(try Python.json(Self.resnet50Script, [d, bench]) as? [String])
            #expect(ops == ["Add", "Conv", "Flatten", "Gemm", "GlobalAveragePool", "MaxPool", "Relu"], "\(ops)")
            for reference in ["ort", "torch"] {
                let v = try RunQTools.run([
                    "verify", d + "/r50.onnx", "--input", d + "/x.npy", "--expect", d + "/\(reference).npy",
                    "--atol", "1e-4", "--rtol", "1e-4", "--json",
                ])
                #expect(v.status == 0, "\(reference): \(v.stdout) \(v.stderr)")
                let doc = try #require(try JSONSerialization.jsonObject(with: Data(v.stdout.utf8)) as? [String: Any])
                #expect(doc["top1_agree"] as? Int == 2)
            }
            let r = try RunQTools.run(["run", d + "/r50.onnx", "--input", d + "/x.npy"])
            #expect(r.status == 0 && r.stdout.contains("[2, 3, 64, 64]"), "\(r.stdout) \(r.stderr)")
        }
    }
}
