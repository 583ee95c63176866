import Foundation
import TestSupport
import Testing

/// End-to-end tests of `qtools convert` and `qtools mapping` through the built binary; files
/// are checked with torch / safetensors / numpy.
@Suite struct ConvertCommandTests {
    static let golden = Fixtures.path("golden/pytorch_resnet18_fp/checkpoint.pth")
    static let nameMap = Fixtures.path("golden/pytorch_resnet18_fp/name_map.txt")

    /// Splits name_map.txt ("<pytorch key> <resnet18 key>" per line) into tools.py-style
    /// mapping files, with quotes, a comment and a blank line to exercise the reader.
    static func writeMappingFiles(_ dir: URL) throws -> (from: String, to: String, pairs: [(String, String)]) {
        let pairs = try String(contentsOfFile: nameMap, encoding: .utf8).split(separator: "\n").map { line in
            let p = line.split(separator: " ")
            return (String(p[0]), String(p[1]))
        }
        let from = "# pytorch-resnet18 names\n" + pairs.map { "'\($0.0)'\n" }.joined()
        let to = "# resnet18 names\n" + pairs.map { "\"\($0.1)\"\n\n" }.joined()
        let mf = dir.appendingPathComponent("mf.txt").path
        let mt = dir.appendingPathComponent("mt.txt").path
        try from.write(toFile: mf, atomically: true, encoding: .utf8)
        try to.write(toFile: mt, atomically: true, encoding: .utf8)
        return (mf, mt, pairs)
    }

    static func files(_ dir: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
    }

    static func json(_ stdout: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any])
    }

    @Test(.enabled(if: Python.interpreter != nil || Python.isRequired, "no Python with torch"))
    func nameMapGivesExactlyTheResnet18KeysWithBitIdenticalTensors() throws {
        try withTemporaryDirectory { dir in
            let (mf, mt, pairs) = try Self.writeMappingFiles(dir)
            let out = dir.appendingPathComponent("resnet18.pth").path
            let r = try RunQTools.run(["convert", Self.golden, "-o", out, "--map-from", mf, "--map-to", mt, "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            let doc = try Self.json(r.stdout)
            let changed = pairs.filter { $0.0 != $0.1 }
            #expect((doc["renamed"] as? [[String: Any]])?.count == changed.count)
            #expect((doc["unchanged"] as? [String])?.sorted() == pairs.filter { $0.0 == $0.1 }.map(\.0).sorted())
            #expect((doc["unusedRules"] as? [String]) == [])
            // torch: the output's keys are the input's keys mapped by name_map.txt (read by
            // Python here), in order, and equal to the case's documented resnet18 rule; every
            // tensor is bit-identical to its source; the other entries are untouched.
            let script = #"""
                import sys, json, re, torch
                src = torch.load(sys.argv[1], weights_only=True)
                dst = torch.load(sys.argv[2], weights_only=True)
                m = dict(l.split() for l in open(sys.argv[3]) if l.strip())
                def rule(k):  # case.json "resnet18_equivalent.rule"
                    k = re.sub(r'^bn1\.', 'bn1.0.', k)
                    k = re.sub(r'^(layer\d\.\d)\.(conv1|conv2|bn1|bn2)\.', r'\1.\2.0.', k)
                    k = re.sub(r'^(layer\d\.\d)\.downsample\.0\.', r'\1.skip.1.', k)
                    return re.sub(r'^(layer\d\.\d)\.downsample\.1\.', r'\1.skip.2.', k)
                s, d = src['state_dict'], dst['state_dict']
                same = all(torch.equal(s[k], d[m[k]]) and s[k].dtype == d[m[k]].dtype for k in s)
                print(json.dumps({
                    "keys": list(d.keys()) == [m[k] for k in s],
                    "rule": list(d.keys()) == [rule(k) for k in s],
                    "tensors": same, "count": len(d),
                    "entries": [k for k in src if k != 'state_dict' and repr(src[k]) != repr(dst[k])],
                    "top": list(dst.keys()) == list(src.keys())}))
                """#
            let check = try #require(try Python.json(script, [Self.golden, out, Self.nameMap]) as? [String: Any])
            #expect(check["keys"] as? Bool == true)
            #expect(check["rule"] as? Bool == true)
            #expect(check["tensors"] as? Bool == true)
            #expect(check["count"] as? Int == 122)
            #expect(check["entries"] as? [String] == [])
            #expect(check["top"] as? Bool == true)
        }
    }

    @Test(.enabled(if: Python.interpreter != nil || Python.isRequired, "no Python with torch"))
    func formatChainKeepsEveryTensorBitIdentical() throws {
        try withTemporaryDirectory { dir in
            func path(_ n: String) -> String { dir.appendingPathComponent(n).path }
            let steps: [[String]] = [
                ["convert", Self.golden, "-o", path("a.safetensors"), "--drop-extra"],
                ["convert", path("a.safetensors"), "-o", path("b.pth"), "--wrap", "state_dict"],
                ["convert", path("b.pth"), "-o", path("c.pth"), "--format", "pt-legacy"],
                ["convert", path("c.pth"), "-o", path("d.npz"), "--drop-extra"],
            ]
            for args in steps {
                let r = try RunQTools.run(args)
                #expect(r.status == 0, "\(args): \(r.stderr)")
            }
            let script = #"""
                import sys, json, torch, numpy as np
                from safetensors.torch import load_file
                from safetensors import safe_open
                src = torch.load(sys.argv[1], weights_only=True)['state_dict']
                def raw(t): return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
                a = load_file(sys.argv[2])
                meta = safe_open(sys.argv[2], 'pt').metadata()
                b = torch.load(sys.argv[3], weights_only=True)
                c = torch.load(sys.argv[4], weights_only=True)
                with open(sys.argv[4], 'rb') as f: legacy = f.read(2) != b'PK'
                d = np.load(sys.argv[5])
                def same(get): return all(k_ok for k_ok in ((get(k) is not None and raw(get(k)) == raw(v) and get(k).dtype == v.dtype and tuple(get(k).shape) == tuple(v.shape)) for k, v in src.items()))
                print(json.dumps({
                    "safetensors": same(a.get) and len(a) == len(src),
                    "meta": meta,
                    "pt": same(b['state_dict'].get) and len(b['state_dict']) == len(src),
                    "pt_entries": {k: [type(v).__name__, repr(v)] for k, v in b.items() if k != 'state_dict'},
                    "legacy": legacy and same(c['state_dict'].get),
                    "npz": same(lambda k: torch.from_numpy(d[k]) if k in d.files else None),
                    "npz_extra": sorted(set(d.files) - set(src.keys()))}))
                """#
            let doc = try #require(
                try Python.json(script, [Self.golden, path("a.safetensors"), path("b.pth"), path("c.pth"), path("d.npz")])
                    as? [String: Any])
            #expect(doc["safetensors"] as? Bool == true)
            #expect(doc["pt"] as? Bool == true)
            #expect(doc["legacy"] as? Bool == true)
            #expect(doc["npz"] as? Bool == true)
            // epoch/best_acc/... went to safetensors metadata (with their types recorded), came
            // back typed with --wrap, and the numbers went to npz as 0-d arrays (None dropped).
            #expect(doc["npz_extra"] as? [String] == ["best_acc", "epoch", "learning_rate"])
            let meta = try #require(doc["meta"] as? [String: String])
            #expect(meta["epoch"] == "0" && meta["best_acc"] == "0.0" && meta["scheduler"] == "None" && meta["format"] == "pt")
            let entries = try #require(doc["pt_entries"] as? [String: [String]])
            #expect(
                entries == [
                    "epoch": ["int", "0"], "best_acc": ["float", "0.0"], "learning_rate": ["float", "0.1"],
                    "scheduler": ["NoneType", "None"], "amp": ["NoneType", "None"],
                ])
        }
    }

    @Test(.enabled(if: Python.interpreter != nil || Python.isRequired, "no Python with torch"))
    func float16EqualsTorchHalfAndTheReportedErrorsMatchTorch() throws {
        try withTemporaryDirectory { dir in
            let out = dir.appendingPathComponent("half.pth").path
            let r = try RunQTools.run(["convert", Self.golden, "-o", out, "--dtype", "float16", "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            let cast = try #require(try Self.json(r.stdout)["cast"] as? [String: Any])
            let script = #"""
                import sys, json, torch
                src = torch.load(sys.argv[1], weights_only=True)
                dst = torch.load(sys.argv[2], weights_only=True)
                s, d = src['state_dict'], dst['state_dict']
                errs, ok = {}, True
                for k, v in s.items():
                    if v.is_floating_point():
                        ok = ok and d[k].dtype == torch.float16 and torch.equal(d[k], v.half())
                        errs[k] = float((v.half().double() - v.double()).abs().max())
                    else:
                        ok = ok and d[k].dtype == v.dtype and torch.equal(d[k], v)
                print(json.dumps({"ok": ok, "errs": errs, "max": max(errs.values()),
                                  "optimizer": repr(src['optimizer']) == repr(dst['optimizer'])}))
                """#
            let doc = try #require(try Python.json(script, [Self.golden, out]) as? [String: Any])
            #expect(doc["ok"] as? Bool == true)
            #expect(doc["optimizer"] as? Bool == true)
            let errs = try #require(doc["errs"] as? [String: Double])
            let tensors = try #require(cast["tensors"] as? [[String: Any]])
            #expect(tensors.count == errs.count)
            for t in tensors {
                let name = t["name"] as? String ?? ""
                #expect(t["maxAbsError"] as? Double == errs[name], "\(name)")
            }
            #expect(cast["maxAbsError"] as? Double == doc["max"] as? Double)
            let kept = (cast["kept"] as? [[String: Any]])?.compactMap { $0["dtype"] as? String }
            #expect(kept == Array(repeating: "int64", count: 20))  // num_batches_tracked of 20 BN layers
        }
    }

    @Test func refusesTheInputAsOutputEvenWithForce() throws {
        try withTemporaryDirectory { dir in
            let input = dir.appendingPathComponent("in.pth").path
            try FileManager.default.copyItem(atPath: Self.golden, toPath: input)
            let before = try Data(contentsOf: URL(fileURLWithPath: input))
            let link = dir.appendingPathComponent("same.pth").path
            try FileManager.default.linkItem(atPath: input, toPath: link)
            for out in [input, link] {
                let r = try RunQTools.run(["convert", input, "-o", out, "--force", "--dtype", "float16"])
                #expect(r.status == 64, "\(r.stderr)")
                #expect(r.stderr.hasPrefix("qtools: error: ") && r.stderr.contains("is the input file"))
            }
            #expect(try Data(contentsOf: URL(fileURLWithPath: input)) == before)
            #expect(try Self.files(dir) == ["in.pth", "same.pth"])
        }
    }

    @Test func existingOutputNeedsForce() throws {
        try withTemporaryDirectory { dir in
            let out = dir.appendingPathComponent("out.pth").path
            try Data("keep".utf8).write(to: URL(fileURLWithPath: out))
            let r = try RunQTools.run(["convert", Self.golden, "-o", out])
            #expect(r.status == 73)
            #expect(r.stderr.contains("--force"))
            #expect(try String(contentsOfFile: out, encoding: .utf8) == "keep")
            let forced = try RunQTools.run(["convert", Self.golden, "-o", out, "--force"])
            #expect(forced.status == 0, "\(forced.stderr)")
            #expect(try Self.files(dir) == ["out.pth"])
        }
    }

    @Test func collisionExits65NamingTheKeysAndLeavesNothing() throws {
        try withTemporaryDirectory { dir in
            let out = dir.appendingPathComponent("out.pth").path
            // Found after the temporary output was created: it must be removed.
            let r = try RunQTools.run(["convert", Self.golden, "-o", out, "--rename", #"^layer1\.1\.=layer1.0."#])
            #expect(r.status == 65)
            #expect(r.stderr.contains("'layer1.0.conv1.weight' <- 'layer1.0.conv1.weight', 'layer1.1.conv1.weight'"))
            #expect(r.stderr.components(separatedBy: "qtools: error:").count == 2)  // printed once
            #expect(try Self.files(dir) == [])
        }
    }

    @Test func missingMappingFileExits66() throws {
        try withTemporaryDirectory { dir in
            let out = dir.appendingPathComponent("out.pth").path
            let r = try RunQTools.run([
                "convert", Self.golden, "-o", out, "--map-from", dir.appendingPathComponent("none.txt").path,
                "--map-to", Self.nameMap,
            ])
            #expect(r.status == 66)
            #expect(r.stderr.contains("none.txt"))
            #expect(try Self.files(dir) == [])
        }
    }

    @Test func unwritableDirectoryExits73AndMissingInputExits66() throws {
        try withTemporaryDirectory { dir in
            let file = dir.appendingPathComponent("plain").path
            try Data().write(to: URL(fileURLWithPath: file))
            let r = try RunQTools.run(["convert", Self.golden, "-o", file + "/out.pth"])
            #expect(r.status == 73)
            let missing = try RunQTools.run([
                "convert", dir.appendingPathComponent("nope.pth").path, "-o", dir.appendingPathComponent("o.pth").path,
            ])
            #expect(missing.status == 66)
            #expect(try Self.files(dir) == ["plain"])
        }
    }

    @Test func usageErrorsExit64() throws {
        try withTemporaryDirectory { dir in
            let o = dir.appendingPathComponent("o.pth").path
            for args in [
                ["-o", dir.appendingPathComponent("o.weird").path],
                ["-o", o, "--map-from", Self.nameMap],
                ["-o", o, "--wrap", "state_dict", "--unwrap"],
                ["-o", o, "--dtype", "int8"],
                ["-o", o, "--rename", "(bad=x"],
                ["-o", o, "--unwrap", "--config", Fixtures.path("golden/pytorch_resnet18_fp/config.txt")],
            ] {
                let r = try RunQTools.run(["convert", Self.golden] + args)
                #expect(r.status == 64, "\(args): \(r.stderr)")
            }
            #expect(try Self.files(dir) == [])
        }
    }

    @Test(.enabled(if: Python.interpreter != nil || Python.isRequired, "no Python with torch"))
    func configIsRecordedAsAStringTorchAcceptsAndInSafetensorsMetadata() throws {
        try withTemporaryDirectory { dir in
            let config = Fixtures.path("golden/pytorch_resnet18_fp/config.txt")
            let pt = dir.appendingPathComponent("c.pth").path
            let r = try RunQTools.run(["convert", Self.golden, "-o", pt, "--config", config, "--json", "--", "--fm_bit", "4"])
            #expect(r.status == 0, "\(r.stderr)")
            let summary = try #require(try Self.json(r.stdout)["config"] as? [String: Any])
            #expect(summary["model"] as? String == "pytorch-resnet18")
            let st = dir.appendingPathComponent("c.safetensors").path
            let s = try RunQTools.run(["convert", pt, "-o", st, "--drop-extra"])
            #expect(s.status == 0, "\(s.stderr)")
            let script = #"""
                import sys, json, torch
                from safetensors import safe_open
                ck = torch.load(sys.argv[1], weights_only=True)
                rec = json.loads(ck['qtools_config'])
                meta = json.loads(safe_open(sys.argv[2], 'pt').metadata()['qtools_config'])
                print(json.dumps({"type": type(ck['qtools_config']).__name__, "text": rec['text'] == open(sys.argv[3]).read(),
                                  "overrides": rec['overrides'], "schema": rec['schema'], "same": meta == rec}))
                """#
            let doc = try #require(try Python.json(script, [pt, st, config]) as? [String: Any])
            #expect(doc["type"] as? String == "str")
            #expect(doc["text"] as? Bool == true)
            #expect(doc["overrides"] as? [String] == ["--fm_bit", "4"])
            #expect(doc["schema"] as? String == "qtools-config/1")
            #expect(doc["same"] as? Bool == true)
            let bad = try RunQTools.run([
                "convert", Self.golden, "-o", dir.appendingPathComponent("x.pth").path, "--config", config, "--", "--no_such_option",
            ])
            #expect(bad.status == 65)
            let missing = try RunQTools.run([
                "convert", Self.golden, "-o", dir.appendingPathComponent("x.pth").path, "--config", "/nonexistent/cfg",
            ])
            #expect(missing.status == 66)
        }
    }

    @Test func mappingSortAndSwapWriteStdoutOrAFile() throws {
        try withTemporaryDirectory { dir in
            let f = dir.appendingPathComponent("m.txt").path
            try "b\n'c'\n# x\na".write(toFile: f, atomically: true, encoding: .utf8)
            let s = try RunQTools.run(["mapping", "sort", f])
            #expect(s.status == 0)
            #expect(s.stdout == "# x\n'c'\nab\n")
            let w = try RunQTools.run(["mapping", "swap", f, "--interval", "3", "--order", "2-0"])
            #expect(w.status == 0, "\(w.stderr)")
            #expect(w.stdout == "a\nb\na\n")  // cleaned: [b, c, a]; slot0 <- line 2, slot1 <- line 0, slot2 stays
            let out = dir.appendingPathComponent("sorted.txt").path
            #expect(try RunQTools.run(["mapping", "sort", f, "-o", out]).status == 0)
            #expect(try String(contentsOfFile: out, encoding: .utf8) == "# x\n'c'\nab\n")
            #expect(try RunQTools.run(["mapping", "sort", f, "-o", out]).status == 73)
            #expect(try RunQTools.run(["mapping", "sort", f, "-o", f, "--force"]).status == 64)
            #expect(try RunQTools.run(["mapping", "swap", f, "--interval", "2", "--order", "1-0"]).status == 64)
            #expect(try RunQTools.run(["mapping", "sort", dir.appendingPathComponent("no").path]).status == 66)
        }
    }
}
