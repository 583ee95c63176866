import Engine
import Formats
import Tensors

/// A quantized weight as bit planes plus one scale per output channel (bnnpack 1, ``BitPlanes``):
///
/// ```
/// binary:   w[o, c, kh, kw] = scale[o] * (1 - 2 * bits)                 bit 1 = -1
/// ternary:  w[o, c, kh, kw] = scale[o] * mask * (1 - 2 * sign)          sign & ~mask = 0
/// plane row (o * KH + kh) * KW + kw holds the Cin_g channels of one tap (OHWI; dense: [Out, In])
/// ```
/// Packing is exact: a channel packs only when its values are exactly `±s` (binary) or
/// `{-s, 0, +s}` (ternary) for one `s >= 0`, so unpacking gives back the same floats.
package struct WeightPlanes: Sendable, Equatable {
    /// `binary` or `ternary`.
    package var ternary: Bool
    /// `[Cout, Cin_g, KH, KW]` (dense: `[Out, In]`).
    package var shape: [Int]
    /// `.w.bits` (binary) or `.w.sign` (ternary).
    package var bits: [UInt8]
    /// `.w.mask` (ternary only).
    package var mask: [UInt8]?
    /// `s` per output channel.
    package var scales: [Float]

    /// Output channels, elements per packed row (Cin_g), taps (KH * KW).
    var geometry: (cout: Int, cin: Int, taps: Int) {
        (shape[0], shape[1], shape.count == 4 ? shape[2] * shape[3] : 1)
    }

    /// Index in the OIHW float array of element `c` of plane row `row`.
    private static func index(row: Int, c: Int, cin: Int, taps: Int) -> Int {
        let o = row / taps, t = row % taps
        return (o * cin + c) * taps + t
    }

    /// Packs `w` (OIHW floats of `shape`) as binary or ternary weights.
    /// - Throws: ``WeightPlanes/Mismatch`` describing the first output channel that does not fit.
    package static func pack(_ w: [Float], shape: [Int], ternary: Bool) throws(Mismatch) -> WeightPlanes {
        let cout = shape[0], cin = shape[1], taps = shape.count == 4 ? shape[2] * shape[3] : 1
        let per = cin * taps
        var scales = [Float](repeating: 0, count: cout)
        for o in 0..<cout {
            var magnitudes: [Float] = []
            var zero = false
            for i in (o * per)..<((o + 1) * per) {
                let m = abs(w[i])
                guard m.isFinite else { throw Mismatch(channel: o, values: [w[i]], ternary: ternary) }
                if m == 0 { zero = true } else if !magnitudes.contains(m) { magnitudes.append(m) }
                if magnitudes.count > 1 || (!ternary && zero && !magnitudes.isEmpty) {
                    let found = Set(w[(o * per)..<((o + 1) * per)].map { $0 == 0 ? 0 : $0 }).sorted()
                    throw Mismatch(channel: o, values: found, ternary: ternary)
                }
            }
            scales[o] = magnitudes.first ?? 0
        }
        let rows = cout * taps
        let bits = BitPlanes.pack(rows: rows, count: cin) { r, c in w[index(row: r, c: c, cin: cin, taps: taps)] < 0 }
        let mask =
            ternary ? BitPlanes.pack(rows: rows, count: cin) { r, c in w[index(row: r, c: c, cin: cin, taps: taps)] != 0 } : nil
        return WeightPlanes(ternary: ternary, shape: shape, bits: bits, mask: mask, scales: scales)
    }

    /// The OIHW float weight the planes hold.
    package func unpacked() -> [Float] {
        let (cout, cin, taps) = geometry
        var w = [Float](repeating: 0, count: cout * cin * taps)
        for row in 0..<(cout * taps) {
            let s = scales[row / taps]
            for c in 0..<cin {
                let negative = BitPlanes.bit(bits, row: row, c, count: cin)
                let on = mask.map { BitPlanes.bit($0, row: row, c, count: cin) } ?? true
                w[Self.index(row: row, c: c, cin: cin, taps: taps)] = on ? (negative ? -s : s) : 0
            }
        }
        return w
    }

    /// The planes as the engine's bit-packed conv weights (the same bytes: bnnpack rows are
    /// the OHWI rows of ``Engine/PackedConvWeights``) and the scales, for a conv weight of `shape`.
    /// - Throws: ``InferenceError`` when `shape` is not the planes' conv shape.
    package func convWeights(shape expected: [Int]) throws(InferenceError) -> (weights: PackedConvWeights, scale: [Float]) {
        guard shape.count == 4, shape == expected else {
            throw InferenceError(.shapeMismatch("planes of shape \(shape) for a conv weight \(expected)"))
        }
        let weights = try PackedConvWeights(
            outChannels: shape[0], groupInChannels: shape[1], kernelH: shape[2], kernelW: shape[3],
            encoding: ternary ? .ternary : .binary, signBytes: bits, maskBytes: mask)
        return (weights, scales)
    }

    /// The plane tensors (U8, shape `planeShape`) in manifest order, then the scale (F32 `[Cout]`).
    package func tensors(_ layer: PackedManifest.Layer) -> [(name: String, tensor: Tensor)] {
        let planes = [bits] + (mask.map { [$0] } ?? [])
        var out: [(name: String, tensor: Tensor)] = []
        for (name, p) in zip(layer.planeNames, planes) {
            out.append((name, Tensor(uint8: p, shape: layer.planeShape)))
        }
        out.append((layer.scaleName, Tensor(floats: scales, shape: [scales.count])))
        return out
    }

    /// An output channel whose values are not binary / ternary.
    package struct Mismatch: Error, Sendable {
        /// The output channel.
        package var channel: Int
        /// The distinct values found there (sorted).
        package var values: [Float]
        /// What was expected.
        package var ternary: Bool

        /// `output channel 3 holds 3 distinct values (-0.25, 0, 0.25)`.
        package var description: String {
            let shown = values.prefix(6).map { "\($0)" }.joined(separator: ", ") + (values.count > 6 ? ", ..." : "")
            let wanted = ternary ? "{-s, 0, +s}" : "±s"
            return "output channel \(channel) holds \(values.count) distinct value\(values.count == 1 ? "" : "s") (\(shown)), not \(wanted)"
        }
    }
}

extension WeightPlanes {
    /// Reads the planes of `layer` from tensors a validated packed file holds.
    package init(_ layer: PackedManifest.Layer, tensor: (String) -> Tensor?) throws(InferenceError) {
        func get(_ name: String) throws(InferenceError) -> Tensor {
            guard let t = tensor(name) else {
                throw InferenceError(.missingTensor(name, expected: []), node: layer.name)
            }
            return t
        }
        let planes = try layer.planeNames.map { n throws(InferenceError) in try get(n).data.toArray() }
        ternary = layer.isTernary
        shape = [layer.outChannels, layer.rowCount] + (layer.op.hasSuffix("dense") ? [] : layer.kernel)
        bits = planes[0]
        mask = planes.count > 1 ? planes[1] : nil
        scales = try get(layer.scaleName).floats()
        // ModelFile validated the file; checked again so that unpacking can never index out of bounds.
        let planeBytes = layer.rows * BitPlanes.rowBytes(layer.rowCount)
        for (name, p) in zip(layer.planeNames, planes) where p.count != planeBytes {
            throw InferenceError(.tensorShape(name, expected: layer.planeShape, found: [p.count]), node: layer.name)
        }
        guard scales.count == layer.outChannels else {
            throw InferenceError(.tensorShape(layer.scaleName, expected: [layer.outChannels], found: [scales.count]), node: layer.name)
        }
    }
}

extension Tensor {
    /// A `uint8` tensor of `bytes`.
    init(uint8 bytes: [UInt8], shape: [Int]) {
        self =
            (try? Tensor(dtype: .uint8, shape: shape, data: ByteSlice(bytes)))
            ?? Tensor(floats: [], shape: [0])
    }
}
