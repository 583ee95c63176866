import Foundation
import Tensors
import TestSupport
import Testing

@testable import Formats

/// Interop with real torch: files written by torch are read by qtools and compared with the
/// values torch dumps; files written by qtools are loaded by torch (`weights_only=True`,
/// `mmap=True`) and compared bit for bit with what was written.
@Suite(.enabled(if: Python.interpreter != nil || Python.isRequired, "no Python with torch (set CI to require it)"))
struct TorchInteropTests {
    /// Writes the torch-made files into `dir` and prints a JSON dump of every tensor:
    /// `{file: {path: [dtype, shape, strides, hex bytes, requires_grad, is_parameter]}}`.
    static let generate = #"""
        import sys, json, argparse, collections
        import numpy as np, torch, torch.nn as nn
        d = sys.argv[1]
        torch.manual_seed(0)
        def walk(v, path, out):
            if isinstance(v, torch.Tensor):
                t = v.detach()
                raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes().hex()
                out[path] = [str(t.dtype)[6:], list(t.shape), list(t.stride()), raw, bool(v.requires_grad), isinstance(v, nn.Parameter)]
            elif isinstance(v, dict):
                for k, x in v.items(): walk(x, (path + "." if path else "") + str(k), out)
            elif isinstance(v, (list, tuple)):
                for i, x in enumerate(v): walk(x, (path + "." if path else "") + str(i), out)
        dtypes = {}
        for name in ["float32","float64","float16","bfloat16","int8","int16","int32","int64","uint8","bool","complex64","complex128","uint16","uint32","uint64","float8_e4m3fn","float8_e5m2"]:
            dt = getattr(torch, name)
            x = torch.randn(2, 3) * 50
            if name == "bool": t = x > 0
            elif name.startswith("complex"): t = torch.complex(x, -x).to(dt)
            elif name.startswith("uint") and name != "uint8": t = (x.abs() * 100).to(torch.int64).to(dt)
            else: t = x.to(dt)
            dtypes[name] = t
        base = torch.arange(12.).reshape(3, 4)
        shared = torch.randn(10)
        views = {"base": base, "t": base.t(), "slice": base[1:, 2:], "cl": torch.randn(2, 3, 4, 4).to(memory_format=torch.channels_last),
                 "shared_a": shared, "shared_b": shared[2:5], "scalar": torch.tensor(3.5), "empty": torch.zeros(0, 4), "expand_src": torch.randn(3)}
        params = {"w": nn.Parameter(torch.randn(3, 2)), "b": nn.Parameter(torch.randn(2), requires_grad=False), "g": torch.randn(2).requires_grad_()}
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        model(torch.randn(2, 3, 8, 8)).sum().backward(); opt.step()
        ckpt = {"epoch": 3, "state_dict": model.state_dict(), "optimizer": opt.state_dict(), "best_acc": 71.5, "arch": "tiny",
                "nested": [torch.ones(2), (torch.zeros(1, dtype=torch.int64), 7)], "big": 2**70, "neg": -5}
        misc = {"size": torch.Size([2, 3]), "dev": torch.device("cpu"), "dt": torch.float16, "bytes": b"\x00\xffab", "set": {1, 2}, "w": torch.randn(2)}
        torch.save(dtypes, d + "/dtypes.pt")
        torch.save(views, d + "/views.pt")
        torch.save(params, d + "/params.pt")
        torch.save(ckpt, d + "/ckpt.pt")
        torch.save(misc, d + "/misc.pt")
        torch.save(ckpt, d + "/legacy.pt", _use_new_zipfile_serialization=False)
        torch.save({k: v for k, v in dtypes.items() if not k.startswith(("uint1", "uint3", "uint6", "float8")) or k == "uint8"}, d + "/legacy_dtypes.pt", _use_new_zipfile_serialization=False)
        torch.save(ckpt, d + "/proto4.pt", pickle_protocol=4)
        torch.save({"best_acc": np.float64(0.5), "args": argparse.Namespace(lr=0.1, arch="r20"), "w": torch.randn(2, 2)}, d + "/unsafe.pt")
        dump = {}
        for f, obj in [("dtypes.pt", dtypes), ("views.pt", views), ("params.pt", params), ("ckpt.pt", ckpt), ("misc.pt", misc), ("legacy.pt", ckpt),
                       ("legacy_dtypes.pt", torch.load(d + "/legacy_dtypes.pt", weights_only=True)), ("proto4.pt", ckpt)]:
            out = {}; walk(obj, "", out); dump[f] = out
        print(json.dumps(dump))
        """#

    /// Loads `<dir>/<qtools file>` with torch and compares with `<dir>/<torch file>`.
    static let verify = #"""
        import sys, zipfile, collections, torch, torch.nn as nn
        import torch.utils.serialization as ser
        def same(a, b, path):
            if isinstance(b, torch.Tensor):
                assert isinstance(a, torch.Tensor), path
                assert type(a) is type(b), (path, type(a), type(b))
                assert a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride() and a.storage_offset() == b.storage_offset(), path
                assert a.requires_grad == b.requires_grad, path
                x = a.detach().contiguous().reshape(-1).view(torch.uint8); y = b.detach().contiguous().reshape(-1).view(torch.uint8)
                assert torch.equal(x, y), path
            elif isinstance(b, dict):
                assert type(a) is type(b), (path, type(a), type(b))
                assert list(a.keys()) == list(b.keys()), path
                assert getattr(a, "_metadata", None) == getattr(b, "_metadata", None), path
                for k in b: same(a[k], b[k], path + "." + str(k))
            elif isinstance(b, (list, tuple)):
                assert type(a) is type(b) and len(a) == len(b), (path, type(a), type(b))
                for i, (x, y) in enumerate(zip(a, b)): same(x, y, path + "." + str(i))
            else:
                assert type(a) is type(b) and a == b, (path, a, b)
        def sharing(obj):
            seen = {}
            def w(v, p):
                if isinstance(v, torch.Tensor): seen[p] = v.untyped_storage().data_ptr()
                elif isinstance(v, dict): [w(x, p + "." + str(k)) for k, x in v.items()]
                elif isinstance(v, (list, tuple)): [w(x, p + "." + str(i)) for i, x in enumerate(v)]
            w(obj, "")
            ptrs = list(seen.values()); return [[ptrs.index(x) for x in ptrs]]
        failed = 0
        for i in range(1, len(sys.argv), 3):
            ours, ref, kind = sys.argv[i:i + 3]
            try:
                orig = torch.load(ref, weights_only=False)
                ser.config.load.calculate_storage_offsets = False
                loads = [torch.load(ours, weights_only=True)]
                if kind == "zip":
                    assert zipfile.ZipFile(ours).testzip() is None
                    loads.append(torch.load(ours, weights_only=True, mmap=True))
                    ser.config.load.calculate_storage_offsets = True
                    loads.append(torch.load(ours, weights_only=True, mmap=True))
                for got in loads:
                    same(got, orig, "")
                    assert sharing(got) == sharing(orig), "storage sharing differs"
                print("OK", ours)
            except Exception as e:
                failed += 1
                print("FAIL", ours, repr(e)[:400])
        sys.exit(1 if failed else 0)
        """#

    static func dump(_ dir: URL) throws -> [String: [String: [Any]]] {
        let r = try Python.run(generate, [dir.path])
        try #require(r.status == 0, "python failed: \(r.stderr)")
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        return try #require(obj as? [String: [String: [Any]]])
    }

    static func hex(_ s: ByteSlice) -> String {
        s.toArray().map { String(format: "%02x", $0) }.joined()
    }

    @Test func torchFilesReadExactly() throws {
        try withTemporaryDirectory { dir in
            let expected = try Self.dump(dir)
            #expect(expected.count == 8)
            for (file, tensors) in expected.sorted(by: { $0.key < $1.key }) {
                let ckpt = try TorchCheckpointReader.read(ByteStore.map(path: dir.appendingPathComponent(file).path).all)
                let got = Dictionary(ckpt.allTensors().map { ($0.path, $0.tensor) }, uniquingKeysWith: { a, _ in a })
                #expect(got.count == tensors.count, "\(file): \(got.keys.sorted()) vs \(tensors.keys.sorted())")
                #expect(ckpt.unsafeGlobals.isEmpty, "\(file): \(ckpt.unsafeGlobals)")
                for (path, info) in tensors {
                    guard let t = got[path] else { Issue.record("\(file): missing \(path)"); continue }
                    #expect(t.dtype.rawValue == info[0] as? String, "\(file) \(path)")
                    #expect(t.shape == info[1] as? [Int], "\(file) \(path)")
                    #expect(t.strides == info[2] as? [Int], "\(file) \(path)")
                    #expect(Self.hex(t.materialize().data) == info[3] as? String, "\(file) \(path)")
                    #expect(t.requiresGrad == info[4] as? Bool, "\(file) \(path)")
                    #expect(t.isParameter == info[5] as? Bool, "\(file) \(path)")
                }
                if file == "legacy.pt" || file == "legacy_dtypes.pt" { #expect(ckpt.format == .torchLegacy) }
                if file == "proto4.pt" {
                    #expect(ckpt.facts.contains { $0.key == "pickle protocol" && $0.value == "4" })
                    #expect(ckpt.facts.contains { $0.key == "opcodes weights_only rejects" })
                }
                if file == "views.pt" {
                    #expect(got["base"]?.storageKey == got["t"]?.storageKey)
                    #expect(got["base"]?.storageKey == got["slice"]?.storageKey)
                    #expect(got["shared_a"]?.storageKey == got["shared_b"]?.storageKey)
                    #expect(got["base"]?.storageKey != got["shared_a"]?.storageKey)
                }
                if file == "misc.pt" {
                    let d = try #require(ckpt.root.dict)
                    guard case .object(let size)? = d["size"], case .bytes(let b)? = d["bytes"], case .set(let s)? = d["set"],
                        case .global("torch.float16")? = d["dt"], case .object(let dev)? = d["dev"]
                    else { Issue.record("misc values: \(d.entries.map { ($0.key.typeName, $0.value.typeName) })"); continue }
                    #expect(size.global == "torch.Size")
                    guard case .tuple(let dims)? = size.args.first else { Issue.record("Size args"); continue }
                    #expect(dims.count == 2)
                    #expect(b == [0, 0xff, 0x61, 0x62])
                    #expect(s.count == 2)
                    #expect(dev.global == "torch.device")
                }
            }
            try Self.checkUnsafe(dir)
        }
    }

    static func checkUnsafe(_ dir: URL) throws {
        do {
            let ckpt = try TorchCheckpointReader.read(ByteStore.map(path: dir.appendingPathComponent("unsafe.pt").path).all)
            #expect(ckpt.unsafeGlobals.contains("argparse.Namespace"))
            #expect(ckpt.unsafeGlobals.contains { $0.hasSuffix("multiarray.scalar") })
            #expect(ckpt.facts.contains { $0.key == "weights_only" && $0.value.hasPrefix("no") })
            let d = try #require(ckpt.root.dict)
            guard case .object(let ns)? = d["args"], case .object(let acc)? = d["best_acc"] else {
                Issue.record("expected placeholders"); return
            }
            #expect(ns.global == "argparse.Namespace")
            #expect(acc.global.hasSuffix("multiarray.scalar"))
            #expect(ckpt.allTensors().map(\.path) == ["w"])
            // The writer refuses the placeholders, naming where they are.
            let e = try #require(throws: FormatError.self) { try TorchZipWriter.write(ckpt.root, to: MemorySink()) }
            #expect(e.description.contains("best_acc") || e.description.contains("args"))
        }
    }

    @Test func qtoolsFilesLoadInTorch() throws {
        try withTemporaryDirectory { dir in
            _ = try Self.dump(dir)
            var jobs: [String] = []
            for file in ["dtypes.pt", "views.pt", "params.pt", "ckpt.pt", "misc.pt", "legacy.pt", "proto4.pt"] {
                let ckpt = try TorchCheckpointReader.read(ByteStore.map(path: dir.appendingPathComponent(file).path).all)
                let outPath = dir.appendingPathComponent("q-" + file).path
                let out = try OutputFile(path: outPath)
                try TorchZipWriter.write(ckpt, to: out, archiveName: TorchZipWriter.archiveName(forOutputPath: outPath))
                try out.commit()
                jobs += [outPath, dir.appendingPathComponent(file).path, "zip"]
                if file == "dtypes.pt" { continue }  // v3 dtypes have no legacy storage class
                let legacyPath = dir.appendingPathComponent("ql-" + file).path
                let lo = try OutputFile(path: legacyPath)
                try LegacyWriter.write(ckpt, to: lo)
                try lo.commit()
                jobs += [legacyPath, dir.appendingPathComponent(file).path, "legacy"]
            }
            let r = try Python.run(Self.verify, jobs)
            #expect(r.status == 0, "\(r.stdout)\n\(r.stderr.suffix(1500))")
            #expect(r.stdout.split(separator: "\n").filter { $0.hasPrefix("OK ") }.count == jobs.count / 3)
        }
    }
}
