import Foundation
import Tensors
import TestSupport
import Testing

@testable import Formats

/// Runs a script with the reference Python and returns its stdout parsed as a JSON object.
private func pythonJSON(_ script: String, _ args: [String]) throws -> [String: Any] {
    try #require(Python.json(script, args) as? [String: Any])
}

private func hex(_ s: ByteSlice) -> String { Hex.string(s.toArray()) }

/// Python helper shared by the scripts: a tensor's raw little-endian C-order bytes as hex.
private let pyPrelude = """
    import json, struct, sys
    import numpy as np
    def raw(t):
        if isinstance(t, np.ndarray):
            return np.ascontiguousarray(t).tobytes().hex()
        import torch
        return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes().hex()
    def header(path):
        b = open(path, 'rb').read()
        n = struct.unpack('<Q', b[:8])[0]
        return json.loads(b[8:8 + n])

    """

/// The tensors of a file read by qtools, by name.
private func readTensors(_ path: String) throws -> (Checkpoint, [String: Tensor], [String]) {
    let c = try SafeTensorsReader.read(ByteStore.map(path: path).all)
    let entries = try #require(c.root.dict).entries
    var out: [String: Tensor] = [:]
    var order: [String] = []
    for e in entries {
        guard case .string(let k) = e.key, case .tensor(let t) = e.value else {
            Issue.record("non-tensor entry")
            continue
        }
        out[k] = t.materialize()
        order.append(k)
    }
    return (c, out, order)
}

/// Random tensors of every dtype safetensors and torch share, with scalars and empty tensors.
private func sampleTensors(seed: UInt64) throws -> [(name: String, tensor: Tensor)] {
    var rng = SplitMix64(seed: seed)
    var out: [(name: String, tensor: Tensor)] = []
    let shapes: [[Int]] = [[], [3], [2, 3], [0], [2, 0, 4], [1, 2, 2]]
    for (i, d) in DType.allCases.enumerated() where d != .complex128 {
        let shape = shapes[(i + Int(seed)) % shapes.count]
        let n = try Shapes.byteCount(shape, d)
        var bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
        if d == .bool { bytes = bytes.map { $0 & 1 } }
        out.append(
            (
                "\(["w", "layer.b", "Z", "é.x", "a\"q", "m/n"][i % 6])\(i)_\(d.rawValue)",
                try Tensor(dtype: d, shape: shape, data: ByteSlice(bytes))
            ))
    }
    return out
}

@Suite(
    .enabled(
        if: Python.interpreter != nil || Python.isRequired,
        "needs the reference Python (torch, safetensors)"))
struct SafeTensorsInteropTests {
    @Test func readsWhatTorchSaveFileWrites() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("torch.safetensors").path
            let expected = try pythonJSON(
                pyPrelude + """
                    import torch
                    from safetensors.torch import save_file
                    g = torch.Generator().manual_seed(0)
                    dts = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.uint16, torch.int32,
                           torch.uint32, torch.int64, torch.uint64, torch.float16, torch.bfloat16,
                           torch.float32, torch.float64, torch.complex64, torch.float8_e4m3fn,
                           torch.float8_e5m2, torch.float8_e8m0fnu, torch.float8_e4m3fnuz, torch.float8_e5m2fnuz]
                    ts = {}
                    for i, dt in enumerate(dts):
                        x = torch.randn(2, 3, generator=g) * 10
                        if dt == torch.complex64:
                            x = torch.complex(x, -x)
                        name = str(dt).split('.')[1]
                        ts['m.' + name] = x.to(dt)
                        ts['scalar.' + name] = x[0, 0].to(dt).clone()
                        ts['empty.' + name] = torch.zeros(0, 2, dtype=dt)
                    save_file(ts, sys.argv[1], metadata={'format': 'pt', 'note': 'q"\\u00e9'})
                    h = header(sys.argv[1])
                    meta = h.pop('__metadata__')
                    print(json.dumps({'meta': meta, 'tensors': {k: {'dtype': v['dtype'], 'shape': v['shape'],
                        'offsets': v['data_offsets'], 'hex': raw(ts[k])} for k, v in h.items()}}))
                    """, [path])
            let (c, got, order) = try readTensors(path)
            let want = try #require(expected["tensors"] as? [String: [String: Any]])
            #expect(got.count == want.count && want.count == 19 * 3)
            for (name, w) in want {
                let t = try #require(got[name], "\(name)")
                #expect(t.dtype.safeTensorsName == w["dtype"] as? String, "\(name)")
                #expect(t.shape == w["shape"] as? [Int], "\(name)")
                #expect(hex(t.data) == w["hex"] as? String, "\(name)")
            }
            let byOffset = want.sorted { (a, b) in
                let x = a.value["offsets"] as? [Int] ?? [], y = b.value["offsets"] as? [Int] ?? []
                return x.lexicographicallyPrecedes(y) || (x == y && a.key < b.key)
            }
            // Empty tensors share offsets, so compare only the non-empty order.
            let nonEmpty = Set(want.filter { ($0.value["hex"] as? String)?.isEmpty == false }.keys)
            #expect(
                order.filter(nonEmpty.contains) == byOffset.map(\.key).filter(nonEmpty.contains))
            let meta = Dictionary(
                uniqueKeysWithValues: c.safeTensorsMetadata.map { ($0.key, $0.value) })
            #expect(meta == expected["meta"] as? [String: String])
        }
    }

    @Test func readsWhatNumpySaveFileWrites() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("np.safetensors").path
            let expected = try pythonJSON(
                pyPrelude + """
                    from safetensors.numpy import save_file
                    rng = np.random.default_rng(1)
                    ts = {}
                    for dt in ['bool', 'uint8', 'int8', 'int16', 'uint16', 'int32', 'uint32', 'int64',
                               'uint64', 'float16', 'float32', 'float64', 'complex64']:
                        ts[dt] = (rng.standard_normal((3, 2)) * 50).astype(dt)
                        ts[dt + '.scalar'] = np.array(7, dtype=dt)
                    save_file(ts, sys.argv[1])
                    h = header(sys.argv[1])
                    h.pop('__metadata__', None)
                    print(json.dumps({k: {'dtype': v['dtype'], 'shape': v['shape'], 'hex': raw(ts[k])}
                        for k, v in h.items()}))
                    """, [path])
            let (_, got, _) = try readTensors(path)
            #expect(got.count == expected.count && got.count == 26)
            for (name, any) in expected {
                let w = try #require(any as? [String: Any])
                let t = try #require(got[name], "\(name)")
                #expect(t.dtype.safeTensorsName == w["dtype"] as? String, "\(name)")
                #expect(t.shape == w["shape"] as? [Int], "\(name)")
                #expect(hex(t.data) == w["hex"] as? String, "\(name)")
            }
        }
    }

    /// qtools writes; torch's `load_file`/`safe_open` read the same values and metadata; and the
    /// reference writer, given those tensors and metadata, produces the very same bytes. (One
    /// Python run per seed: importing torch is the slow part.)
    @Test(arguments: [0, 3] as [UInt64])
    func torchReadsQToolsOutputAndTheReferenceWriterMatchesIt(seed: UInt64) throws {
        try withTemporaryDirectory { dir in
            let ours = dir.appendingPathComponent("ours.safetensors").path
            let theirs = dir.appendingPathComponent("theirs.safetensors").path
            let input = try sampleTensors(seed: seed)
            // One metadata key, with escapes: the reference writer orders several keys by hash.
            let metadata = ["format": "p\"t\\/\n\u{1}é"]
            let out = try OutputFile(path: ours)
            try SafeTensorsWriter.write(input, metadata: metadata, to: out)
            try out.commit()
            let got = try pythonJSON(
                pyPrelude + """
                    import torch
                    from safetensors.torch import load_file, save_file
                    from safetensors import safe_open
                    ts = load_file(sys.argv[1])
                    with safe_open(sys.argv[1], framework='pt') as f:
                        meta = f.metadata()
                    save_file(ts, sys.argv[2], metadata=meta)
                    print(json.dumps({'meta': meta, 'tensors': {k: {'dtype': str(t.dtype).split('.')[1],
                        'shape': list(t.shape), 'hex': raw(t)} for k, t in ts.items()}}))
                    """, [ours, theirs])
            let ts = try #require(got["tensors"] as? [String: [String: Any]])
            #expect(ts.count == input.count)
            for (name, t) in input {
                let w = try #require(ts[name], "\(name)")
                #expect(w["dtype"] as? String == t.dtype.rawValue, "\(name)")
                #expect(w["shape"] as? [Int] == t.shape, "\(name)")
                #expect(w["hex"] as? String == hex(t.data), "\(name)")
            }
            #expect(got["meta"] as? [String: String] == metadata)
            let a = [UInt8](try Data(contentsOf: URL(fileURLWithPath: ours)))
            let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: theirs)))
            #expect(a.count == b.count)
            if a != b {
                let i = a.indices.first { $0 >= b.count || a[$0] != b[$0] } ?? a.count
                Issue.record(
                    "first difference at byte \(i): \(String(decoding: a.prefix(i + 40).suffix(80), as: UTF8.self)) vs \(String(decoding: b.prefix(i + 40).suffix(80), as: UTF8.self))"
                )
            }
        }
    }

    @Test func metadataWithSeveralKeysRoundTrips() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("m.safetensors").path
            let out = try OutputFile(path: path)
            try SafeTensorsWriter.write(
                [("x", Tensor(floats: [1], shape: [1]))],
                metadata: ["source": "qtools", "é": "\n\"\\"], to: out)
            try out.commit()
            let got = try pythonJSON(
                """
                import json, sys
                from safetensors import safe_open
                with safe_open(sys.argv[1], framework='np') as f:
                    print(json.dumps({'meta': f.metadata(), 'x': f.get_tensor('x').tolist()}))
                """, [path])
            #expect(
                got["meta"] as? [String: String] == [
                    "format": "pt", "source": "qtools", "é": "\n\"\\",
                ])
            #expect(got["x"] as? [Double] == [1])
        }
    }
}
