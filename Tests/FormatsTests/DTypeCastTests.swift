import Foundation
import Tensors
import TestSupport
import Testing

@testable import Formats

/// `--dtype` casting: the values and the reported max error, against exact hand cases and
/// against numpy/torch.
@Suite struct DTypeCastTests {
    static func halves(_ t: Tensor) -> [UInt16] {
        (0..<t.elementCount).map { UInt16(t.data[2 * $0]) | UInt16(t.data[2 * $0 + 1]) << 8 }
    }

    @Test func float16TiesToEvenAndReportsTheExactError() throws {
        let x: [Float] = [1 + 0x1p-11, 1 + 3 * 0x1p-12, -2, 0]
        let o = try DTypeCast.cast(Tensor(floats: x, shape: [4]), to: .float16)
        // 1 + 2^-11 is halfway between 1 (0x3c00) and 1 + 2^-10 (0x3c01): even -> 0x3c00, error 2^-11.
        // 1 + 3*2^-12 is above halfway -> 0x3c01, error 2^-12. -2 = 0xc000 exactly.
        #expect(Self.halves(o.tensor) == [0x3c00, 0x3c01, 0xc000, 0x0000])
        #expect(o.maxAbsError == 0x1p-11)
        #expect(o.overflows == 0)
        #expect(o.tensor.dtype == .float16 && o.tensor.shape == [4])
    }

    @Test func float16OverflowIsCountedAndTheErrorIsInfinite() throws {
        // 65520 is halfway between 65504 (max half) and the next step 65536: rounds to inf.
        let x: [Float] = [65504, 65519, 65520, -70000, .infinity, .nan]
        let o = try DTypeCast.cast(Tensor(floats: x, shape: [6]), to: .float16)
        let h = Self.halves(o.tensor)
        #expect(Array(h[0..<5]) == [0x7bff, 0x7bff, 0x7c00, 0xfc00, 0x7c00])
        #expect(h[5] & 0x7c00 == 0x7c00 && h[5] & 0x3ff != 0)  // NaN stays NaN
        #expect(o.overflows == 2)
        #expect(o.maxAbsError == .infinity)
    }

    @Test func bfloat16TiesToEven() throws {
        let x: [Float] = [1 + 0x1p-8, 1 + 3 * 0x1p-9, 3]
        let o = try DTypeCast.cast(Tensor(floats: x, shape: [3]), to: .bfloat16)
        // bf16 has 7 fraction bits: 1 + 2^-8 is halfway -> 1.0 (0x3f80), error 2^-8;
        // 1 + 3*2^-9 -> 1 + 2^-7 (0x3f81), error 2^-9; 3 = 0x4040.
        #expect(Self.halves(o.tensor) == [0x3f80, 0x3f81, 0x4040])
        #expect(o.maxAbsError == 0x1p-8)
    }

    @Test func float64ToFloat32MeasuresTheErrorInFloat64() throws {
        var w = ByteWriter()
        for d in [1 + 0x1p-30, 0.5] { w.u64(d.bitPattern) }
        let t = try Tensor(dtype: .float64, shape: [2], data: ByteSlice(w.bytes))
        let o = try DTypeCast.cast(t, to: .float32)
        // 2^-30 is below half an ulp of 1 in float32 (2^-24): rounds to 1, error exactly 2^-30.
        #expect(o.tensor.floats() == [1, 0.5])
        #expect(o.maxAbsError == 0x1p-30)
    }

    @Test func onlyFloatingTypesAreCastable() {
        #expect(DTypeCast.isCastable(.float32) && DTypeCast.isCastable(.bfloat16))
        #expect(!DTypeCast.isCastable(.int64) && !DTypeCast.isCastable(.int32) && !DTypeCast.isCastable(.bool))
        #expect(!DTypeCast.isCastable(.complex64))
    }

    @Test(.enabled(if: Python.interpreter != nil || Python.isRequired, "no Python"), arguments: [UInt64(1), 2, 3])
    func bitsAndMaxErrorMatchTorch(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        // Wide range (subnormal halves up to 4e4), plus a value just below the half overflow
        // threshold; overflow itself is covered by the exact hand case above.
        var x = rng.floats(500, -4, 4).map { $0 * Float(pow(10.0, Double(Int.random(in: -8...4, using: &rng)))) }
        x += [65519.99, 1e-8, -3e-5]
        let t = Tensor(floats: x, shape: [x.count])
        let script = """
            import sys, json, struct, torch
            x = torch.tensor(json.loads(sys.argv[1]), dtype=torch.float32)
            out = {}
            for name, dt in [("float16", torch.float16), ("bfloat16", torch.bfloat16)]:
                y = x.to(dt)
                err = (y.double() - x.double()).abs()
                fin = torch.isfinite(x) & torch.isinf(y)
                out[name] = {"bits": y.view(torch.int16).to(torch.int32).bitwise_and(0xffff).tolist(),
                             "max": float(err.max()), "overflows": int(fin.sum())}
            print(json.dumps(out))
            """
        // Exact float32 values as JSON (17 significant digits round-trip through Python floats).
        let json = "[" + x.map { String(Double($0)) }.joined(separator: ",") + "]"
        let doc = try #require(try Python.json(script, [json]) as? [String: [String: Any]])
        for target in [DType.float16, .bfloat16] {
            let o = try DTypeCast.cast(t, to: target)
            let ref = try #require(doc[target.rawValue])
            #expect(Self.halves(o.tensor).map(Int.init) == ref["bits"] as? [Int], "\(target)")
            let refMax = ref["max"] as? Double
            #expect(o.maxAbsError == refMax, "\(target): \(o.maxAbsError) vs \(String(describing: refMax))")
            #expect(o.overflows == ref["overflows"] as? Int)
        }
    }
}
