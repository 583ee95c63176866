import Foundation
import Tensors
import TestSupport
import Testing

@testable import Formats

/// NumPy arrays in plain pickles (``PickleReader``): fixed bytes here, and (interop) every
/// protocol, dtype and memory order as CPython + NumPy write them.
@Suite struct PickleNumPyTests {
    /// `pickle.dumps({'data': np.arange(6, dtype=np.uint8).reshape(2, 3), 'labels': [1, 2]}, protocol=4)`
    /// (NumPy 2).
    static let protocol4 =
        "800495ad000000000000007d94288c0464617461948c166e756d70792e5f636f72652e6d756c74696172726179948c0c5f7265636f6e7374727563749493948c056e756d7079948c076e6461727261799493944b0085944301629487945294284b014b024b03869468058c0564747970659493948c02753194898887945294284b038c017c944e4e4e4affffffff4affffffff4b00749462894306000102030405947494628c066c6162656c73945d94284b014b0265752e"
    /// The same with protocol 0 (text opcodes; the data through `_codecs.encode(..., 'latin1')`).
    static let protocol0 =
        "286470300a56646174610a70310a636e756d70792e5f636f72652e6d756c746961727261790a5f7265636f6e7374727563740a70320a28636e756d70790a6e6461727261790a70330a2849300a7470340a635f636f646563730a656e636f64650a70350a2856620a70360a566c6174696e310a70370a7470380a5270390a747031300a527031310a2849310a2849320a49330a747031320a636e756d70790a64747970650a7031330a285675310a7031340a4930300a4930310a747031350a527031360a2849330a567c0a7031370a4e4e4e492d310a492d310a49300a747031380a624930300a67350a28565c753030303001020304050a7031390a67370a747032300a527032310a747032320a6273566c6162656c730a7032330a286c7032340a49310a6149320a61732e"

    static func bytes(_ hex: String) -> [UInt8] { UnpicklerTests.bytes(hex) }

    @Test(arguments: [protocol4, protocol0]) func readsAUInt8ArrayAndALabelList(_ hex: String) throws {
        let v = try PickleReader.read(ByteSlice(Self.bytes(hex)))
        let d = try #require(v.dict)
        guard case .tensor(let t)? = d["data"] else {
            Issue.record("data is \(d["data"]?.typeName ?? "missing")")
            return
        }
        #expect(t.dtype == .uint8)
        #expect(t.shape == [2, 3])
        #expect(t.materialize().data.toArray() == [0, 1, 2, 3, 4, 5])
        #expect(UnpicklerTests.ints(d["labels"]) == [1, 2])
    }

    @Test func dataShorterThanTheShapeIsAnError() throws {
        // Shape (2, 3) -> (2, 4): 8 bytes needed, 6 held.
        let hex = Self.protocol4.replacingOccurrences(of: "4b024b0386", with: "4b024b0486")
        #expect(hex != Self.protocol4)
        #expect {
            _ = try PickleReader.read(ByteSlice(Self.bytes(hex)))
        } throws: { e in
            "\(e)".contains("needs 8 bytes of data; the pickle holds 6")
        }
    }

    @Test func truncatedStreamIsAnError() throws {
        let b = Self.bytes(Self.protocol4)
        #expect(throws: FormatError.self) { _ = try PickleReader.read(ByteSlice(Array(b.prefix(b.count / 2)))) }
    }

    @Test func torchCheckpointsKeepNumPyArraysOpaque() throws {
        var u = Unpickler(ByteSlice(Self.bytes(Self.protocol4)))
        let v = try u.load()
        guard case .object(let o)? = v.dict?["data"] else {
            Issue.record("expected an opaque numpy call")
            return
        }
        #expect(o.global == "numpy._core.multiarray._reconstruct")
    }
}

@Suite(.enabled(if: Python.interpreter != nil || Python.isRequired, "needs the reference Python (numpy)"))
struct PickleNumPyInteropTests {
    @Test func readsWhatPickleDumpWrites() throws {
        try withTemporaryDirectory { dir in
            let r = try Python.json(
                """
                import json, os, pickle, sys
                import numpy as np
                d = sys.argv[1]
                rng = np.random.default_rng(3)
                base = rng.standard_normal((3, 5)) * 40
                cases = {}
                for dt in ['bool', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'int64', 'float16', 'float32', 'float64']:
                    cases[dt] = base.astype(dt)
                    if np.dtype(dt).itemsize > 1:
                        cases[dt + '.be'] = base.astype(np.dtype(dt).newbyteorder('>'))
                cases['fortran'] = np.asfortranarray(np.arange(24, dtype='<f4').reshape(2, 3, 4))
                cases['transposed'] = np.arange(12, dtype='<u2').reshape(3, 4).T
                cases['empty'] = np.zeros((0, 3), dtype='u1')
                cases['scalar'] = np.array(7, dtype='<i4')
                cases['cifar'] = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
                out = {}
                for p in range(0, pickle.HIGHEST_PROTOCOL + 1):
                    for name, a in cases.items():
                        key = f'{name}.p{p}'
                        with open(os.path.join(d, key + '.pkl'), 'wb') as f:
                            pickle.dump({'data': a, 'labels': [1, 2]}, f, protocol=p)
                        le = np.ascontiguousarray(a).astype(a.dtype.newbyteorder('<'))
                        out[key] = {'dtype': a.dtype.name, 'shape': list(a.shape), 'hex': le.tobytes().hex()}
                print(json.dumps(out))
                """, [dir.path])
            let expected = try #require(r as? [String: [String: Any]])
            #expect(expected.count >= 6 * 20)
            for (key, want) in expected.sorted(by: { $0.key < $1.key }) {
                let path = dir.appendingPathComponent(key + ".pkl").path
                let v = try PickleReader.read(ByteSlice(Array(try Data(contentsOf: URL(fileURLWithPath: path)))))
                guard case .tensor(let stored)? = v.dict?["data"] else {
                    Issue.record("\(key): data is \(v.dict?["data"]?.typeName ?? "missing")")
                    continue
                }
                let t = stored.materialize()
                #expect(t.dtype.rawValue == want["dtype"] as? String, "\(key)")
                #expect(t.shape == want["shape"] as? [Int], "\(key)")
                #expect(Hex.string(t.data.toArray()) == want["hex"] as? String, "\(key)")
            }
        }
    }
}
