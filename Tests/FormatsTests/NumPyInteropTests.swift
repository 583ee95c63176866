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

/// `describe(a)`: numpy's view of an array as qtools should see it (dtype name, shape, and
/// the bytes in C order, little-endian).
private let pyPrelude = """
    import io, json, os, sys, zipfile
    import numpy as np
    def describe(a):
        le = np.ascontiguousarray(a).astype(a.dtype.newbyteorder('<'))
        return {'dtype': a.dtype.name, 'shape': list(a.shape), 'hex': le.tobytes().hex()}

    """

private func expectMatches(_ t: Tensor, _ want: Any?, _ label: String) {
    guard let w = want as? [String: Any] else {
        Issue.record("\(label): python gave nothing")
        return
    }
    #expect(t.dtype.rawValue == w["dtype"] as? String, "\(label)")
    #expect(t.shape == w["shape"] as? [Int], "\(label)")
    #expect(hex(t.data) == w["hex"] as? String, "\(label)")
}

@Suite(
    .enabled(
        if: Python.interpreter != nil || Python.isRequired, "needs the reference Python (numpy)"))
struct NumPyInteropTests {
    @Test func readsWhatNpSaveWrites() throws {
        try withTemporaryDirectory { dir in
            let expected = try pythonJSON(
                pyPrelude + """
                    d = sys.argv[1]
                    rng = np.random.default_rng(0)
                    cases = {}
                    base = rng.standard_normal((3, 4)) * 50
                    for dt in ['bool', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64',
                               'uint64', 'float16', 'float32', 'float64', 'complex64', 'complex128']:
                        cases[dt] = (base + 1j * base if dt.startswith('complex') else base).astype(dt)
                        if np.dtype(dt).itemsize > 1:
                            cases[dt + '.be'] = cases[dt].astype(np.dtype(dt).newbyteorder('>'))
                    cases['fortran'] = np.asfortranarray(np.arange(24, dtype='<f4').reshape(2, 3, 4))
                    cases['fortran.be'] = np.asfortranarray(np.arange(6, dtype='>i4').reshape(3, 2))
                    cases['scalar'] = np.array(3.5)
                    cases['empty'] = np.zeros((0, 3), dtype='<i2')
                    cases['transposed'] = np.arange(12, dtype='<u2').reshape(3, 4).T  # saved as fortran
                    out = {}
                    for name, a in cases.items():
                        np.save(os.path.join(d, name + '.npy'), a)
                        out[name] = describe(a)
                    for v in [(2, 0), (3, 0)]:
                        name = 'v%d' % v[0]
                        with open(os.path.join(d, name + '.npy'), 'wb') as f:
                            np.lib.format.write_array(f, cases['float32'], version=v)
                        out[name] = describe(cases['float32'])
                    print(json.dumps(out))
                    """, [dir.path])
            #expect(expected.count == 14 + 11 + 5 + 2)
            for (name, want) in expected {
                let path = dir.appendingPathComponent(name + ".npy").path
                let c = try NpyReader.read(ByteStore.map(path: path).all)
                guard case .tensor(let t) = c.root else {
                    Issue.record("\(name): root is not a tensor")
                    continue
                }
                expectMatches(t.materialize(), want, name)
                if name.hasPrefix("fortran") || name == "transposed" {
                    #expect(c.facts.first { $0.key == "fortran_order" }?.value == "True", "\(name)")
                }
            }
        }
    }

    @Test(arguments: ["savez", "savez_compressed"])
    func readsWhatNpSavezWrites(function: String) throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("a.npz").path
            let expected = try pythonJSON(
                pyPrelude + """
                    rng = np.random.default_rng(1)
                    arrays = {
                        'conv.weight': rng.standard_normal((4, 3, 3, 3)).astype('<f4'),
                        'bn.num_batches': np.array(17, dtype='<i8'),
                        'mask': rng.standard_normal(10) > 0,
                        'half.be': rng.standard_normal(5).astype('>f2'),
                        'fortran': np.asfortranarray(rng.standard_normal((3, 5))),
                        'empty': np.zeros((2, 0), dtype='<u4'),
                    }
                    getattr(np, sys.argv[2])(sys.argv[1], **arrays)
                    print(json.dumps({'order': [n[:-4] for n in zipfile.ZipFile(sys.argv[1]).namelist()],
                                      'arrays': {k: describe(v) for k, v in arrays.items()}}))
                    """, [path, function])
            let store = try ByteStore.map(path: path)
            let c = try NpzReader.read(store.all, verifyCRC: true)
            let entries = try #require(c.root.dict).entries
            #expect(entries.map { $0.key.string ?? "" } == expected["order"] as? [String])
            let arrays = expected["arrays"] as? [String: Any] ?? [:]
            #expect(entries.count == arrays.count)
            for e in entries {
                guard let name = e.key.string, case .tensor(let t) = e.value else {
                    Issue.record("non-tensor member")
                    continue
                }
                expectMatches(t.materialize(), arrays[name], name)
                if function == "savez" && name == "conv.weight" {
                    #expect(t.storage.store === store, "stored little-endian members are windows")
                }
            }
        }
    }

    @Test func numpyLoadsWhatQToolsWrites() throws {
        try withTemporaryDirectory { dir in
            var rng = SplitMix64(seed: 11)
            var arrays: [(name: String, tensor: Tensor)] = []
            let shapes: [[Int]] = [[], [5], [2, 3], [0, 4], [2, 1, 3]]
            for (i, d) in DType.allCases.enumerated() where NpyHeader.descr(for: d) != nil {
                let shape = shapes[i % shapes.count]
                let n = try Shapes.byteCount(shape, d)
                var bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if d == .bool { bytes = bytes.map { $0 & 1 } }
                arrays.append(
                    (
                        "a\(i)_\(d.rawValue)",
                        try Tensor(dtype: d, shape: shape, data: ByteSlice(bytes))
                    ))
            }
            for (name, t) in arrays {
                let out = try OutputFile(path: dir.appendingPathComponent(name + ".npy").path)
                try NpyWriter.write(t, to: out)
                try out.commit()
            }
            for (file, compression, zip64) in [
                ("stored", NpzWriter.Compression.stored, false), ("deflated", .deflated, false),
                ("zip64", .stored, true),
            ] {
                let out = try OutputFile(path: dir.appendingPathComponent(file + ".npz").path)
                try NpzWriter.write(arrays, compression: compression, forceZip64: zip64, to: out)
                try out.commit()
            }
            let got = try pythonJSON(
                pyPrelude + """
                    d = sys.argv[1]
                    out = {'npy': {}, 'identical': {}, 'npz': {}}
                    for f in sorted(os.listdir(d)):
                        p = os.path.join(d, f)
                        if f.endswith('.npy'):
                            a = np.load(p)
                            out['npy'][f[:-4]] = describe(a)
                            buf = io.BytesIO()
                            np.save(buf, a)
                            out['identical'][f[:-4]] = buf.getvalue() == open(p, 'rb').read()
                        else:
                            with np.load(p) as z:
                                out['npz'][f[:-4]] = {k: describe(z[k]) for k in z.files}
                                with zipfile.ZipFile(p) as zf:
                                    assert zf.testzip() is None
                    print(json.dumps(out))
                    """, [dir.path])
            let npy = got["npy"] as? [String: Any] ?? [:]
            let identical = got["identical"] as? [String: Bool] ?? [:]
            let npz = got["npz"] as? [String: [String: Any]] ?? [:]
            #expect(npy.count == arrays.count && npz.count == 3)
            for (name, t) in arrays {
                expectMatches(t, npy[name], name)
                #expect(identical[name] == true, "\(name).npy differs from np.save's bytes")
                for file in ["stored", "deflated", "zip64"] {
                    expectMatches(t, npz[file]?[name], "\(file).npz \(name)")
                }
            }
        }
    }
}
