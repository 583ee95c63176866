import Engine
import QToolConfig

/// LQ-Nets in training mode (seed-reference §11.9; `models/alqnet.py` `LqNet_fm`/`LqNet_wt`
/// with `training=True`, then `quantization.update_bias`).
///
/// One training forward of input `x`:
/// 1. Levels, thresholds and assignment as in eval mode (``LQNetQuantizer``), with the basis
///    the quantizer holds before the step; each element also gets the codec row `l` of its
///    level (`codec_index[sort_id[k]]`, with `codec_index[l] = l`).
/// 2. Bit planes `b_i = bit i of l` (integer division, as QTool's code meant it and the golden
///    data run it; two-sided: `2·b_i − 1`). Per group, over the (normalised) values `v`:
///    `BtX[i] = Σ b_i·v`, `BtB[i][j] = Σ b_i·b_j`. Activations replace a zero diagonal entry
///    by 1e-5; weights regularise: `BtX += 1e-4·basis`, diagonal `(BtB_ii + 1e-4)·1.000001`.
///    `auxil = BtB⁻¹·BtX`. All in QTool's float32 operations (``TorchReduction`` sums, the
///    LAPACK inverse's order), so a fit that QTool repeats bit for bit is repeated here too.
/// 3. `update_bias`: with keyword `custom-update` `basis ← (basis·iteration + auxil) /
///    (iteration + 1)`, else `basis ← 0.9·basis + 0.1·auxil` (float32); `iteration += 1`.
/// 4. The output is the quantized value, or the input itself while `iteration` (after the
///    increment) `<= --stable`.
///
/// Backward: activations pass the gradient except where the normalised input is `>=` the
/// group's largest level; weights pass it unchanged (the basis gets no gradient).
package enum LQNetTraining {
    /// Sorted levels, thresholds and the codec row of each sorted level, per group.
    struct Table: Sendable {
        var levels: [[Float]]
        var thresholds: [[Float]]
        var rows: [[Int]]
    }

    static func table(
        basis: [Float], codecVector: [Float], thresholdMultiplier: [Float], levels: Int, bit: Int, groups: Int
    )
        -> Table
    {
        var t = Table(levels: [], thresholds: [], rows: [])
        for g in 0..<groups {
            // The same float32 FMA loop as LQNetQuantizer.levelsAndThresholds.
            let raw = (0..<levels).map { l in
                var acc: Float = 0
                for i in 0..<bit { acc = acc.addingProduct(codecVector[l * bit + i], basis[i * groups + g]) }
                return acc
            }
            let order = raw.indices.sorted { raw[$0] < raw[$1] || (raw[$0] == raw[$1] && $0 < $1) }
            let lv = order.map { raw[$0] }
            let thr = (0..<(levels - 1)).map { k in
                var acc: Float = 0
                for j in 0..<levels { acc = acc.addingProduct(thresholdMultiplier[k * levels + j], lv[j]) }
                return acc
            }
            t.levels.append(lv)
            t.thresholds.append(thr)
            t.rows.append(order)
        }
        return t
    }

    /// The sorted level index of `v` (the last threshold it strictly exceeds, + 1; else 0).
    @inline(__always)
    static func index(_ v: Float, _ thresholds: [Float]) -> Int {
        var k = 0
        for j in thresholds.indices where v > thresholds[j] { k = j + 1 }
        return k
    }

    /// What one training forward computed.
    struct Pass {
        /// The quantized values (restored from the normalisation).
        var y: [Float]
        /// The least-squares basis `auxil` `[bit, qg]`.
        var auxil: [Float]
        /// Per element, the normalised value and its level is the group's largest.
        var normalised: [Float]
        var topLevel: [Float]
        var group: [Int]
    }

    /// Step 1 and 2 for activations `[B, C, ...]` (group of channel c: `c / (C/qg)`) or weights
    /// (`qg` consecutive rows).
    static func run(
        _ x: [Float], shape: [Int], table: Table, bit: Int, halfRange: Bool, adaptive: QuantizerAdaptive, isWeight: Bool,
        basis: [Float]
    ) -> Pass {
        let groups = table.levels.count
        var v = x
        var y = x
        var group = [Int](repeating: 0, count: x.count)
        var rows = [Int](repeating: 0, count: x.count)
        if isWeight {
            let size = x.count / groups
            for g in 0..<groups {
                let row = (g * size)..<((g + 1) * size)
                let (mean, std) = LQNetQuantizer.adaptiveMoments(x[row], adaptive)
                for i in row {
                    switch adaptive {
                    case .mean: v[i] = x[i] - mean
                    case .var: v[i] = x[i] / std
                    case .meanVar: v[i] = (x[i] - mean) / std
                    default: v[i] = x[i]
                    }
                    let k = index(v[i], table.thresholds[g])
                    let q = table.levels[g][k]
                    switch adaptive {
                    case .mean: y[i] = q + mean
                    case .var: y[i] = q * std
                    case .meanVar: y[i] = q * std + mean
                    default: y[i] = q
                    }
                    group[i] = g
                    rows[i] = table.rows[g][k]
                }
            }
        } else {
            let batch = shape[0]
            let sample = x.count / batch
            let channels = shape.count > 1 ? shape[1] : 1
            let plane = sample / channels
            let perGroup = channels / groups
            for b in 0..<batch {
                let range = (b * sample)..<((b + 1) * sample)
                var norm: Float = 1
                switch adaptive {
                case .mean: norm = TorchReduction.mean(x[range]) + 1e-5
                case .var: norm = TorchReduction.meanStd(x[range]).std + 1e-5
                default: break
                }
                let normalise = adaptive == .mean || adaptive == .var
                for i in range {
                    let g = ((i - b * sample) / plane) / perGroup
                    v[i] = normalise ? x[i] / norm : x[i]
                    let k = index(v[i], table.thresholds[g])
                    let q = table.levels[g][k]
                    y[i] = normalise ? q * norm : q
                    group[i] = g
                    rows[i] = table.rows[g][k]
                }
            }
        }

        // Step 2: the least-squares fit per group, in QTool's float32 operations.
        // Each group's values in the order of QTool's `[qg, -1]` view: weight rows as stored;
        // activations per tensor as stored, or channels first (`[C, B, H, W]`) with groups.
        var members = [[Int]](repeating: [], count: groups)
        if isWeight || groups == 1 {
            for e in x.indices { members[group[e]].append(e) }
        } else {
            let batch = shape[0]
            let sample = x.count / batch
            let channels = shape.count > 1 ? shape[1] : 1
            let plane = sample / channels
            for c in 0..<channels {
                for b in 0..<batch {
                    for p in 0..<plane { members[c / (channels / groups)].append(b * sample + c * plane + p) }
                }
            }
        }
        var auxil = [Float](repeating: 0, count: bit * groups)
        for g in 0..<groups {
            let list = members[g]
            var codes = [[Float]](repeating: [Float](repeating: 0, count: list.count), count: bit)
            for (m, e) in list.enumerated() {
                for i in 0..<bit {
                    let b = (rows[e] >> i) & 1
                    codes[i][m] = halfRange ? Float(b) : Float(2 * b - 1)
                }
            }
            // BTxX[i] = sum(code_i * x) (torch.sum of the row), BTxB[i][j] = sum(code_i * code_j).
            var rhs = (0..<bit).map { i in TorchReduction.sum(zip(codes[i], list).map { $0 * v[$1] }[...]) }
            var a = [Float](repeating: 0, count: bit * bit)
            for i in 0..<bit {
                for j in 0...i {
                    var count = 0
                    for m in list.indices where codes[i][m] * codes[j][m] != 0 { count += codes[i][m] == codes[j][m] ? 1 : -1 }
                    a[i * bit + j] = Float(count)
                    a[j * bit + i] = Float(count)
                }
            }
            for i in 0..<bit {
                if isWeight {
                    rhs[i] += Float(1e-4) * basis[i * groups + g]
                    a[i * bit + i] = (a[i * bit + i] + Float(1e-4)) * Float(1.000001)
                } else if a[i * bit + i] == 0 {
                    a[i * bit + i] = Float(1e-5)
                }
            }
            // new[i] = sum_j inverse[i][j] * BTxX[j], summed over j in float32.
            let inverse = inverse(a, n: bit)
            for i in 0..<bit {
                var acc: Float = 0
                for j in 0..<bit { acc += inverse[i * bit + j] * rhs[j] }
                auxil[i * groups + g] = acc
            }
        }
        let top = (0..<x.count).map { table.levels[group[$0]][table.levels[group[$0]].count - 1] }
        return Pass(y: y, auxil: auxil, normalised: v, topLevel: top, group: group)
    }

    /// `torch.inverse` of a small float32 matrix as PyTorch's CPU LAPACK (MKL) computes it:
    /// `linalg_solve(A, I)`, i.e. LU with partial pivoting (`l = a_ic / a_cc`, updates
    /// `a_ij − l·a_cj`, no fused multiply-add), then per column of `I` forward substitution and
    /// back substitution multiplying by the reciprocal of each pivot. For the 2 × 2 systems of
    /// 2-bit LQ-Nets this matches torch 2.13 with MKL bit for bit (3,000 random systems and every
    /// weight quantizer of the golden case). Larger systems (3-bit and wider LQ-Nets) follow the
    /// same textbook order but are not bit-identical to MKL's (a rounding-level difference).
    package static func inverse(_ a: [Float], n: Int) -> [Float] {
        var m = a
        var perm = Array(0..<n)
        for c in 0..<n {
            var p = c
            for i in (c + 1)..<max(n, c + 1) where abs(m[i * n + c]) > abs(m[p * n + c]) { p = i }
            if p != c {
                for j in 0..<n { m.swapAt(c * n + j, p * n + j) }
                perm.swapAt(c, p)
            }
            for i in (c + 1)..<max(n, c + 1) {
                let l = m[i * n + c] / m[c * n + c]
                m[i * n + c] = l
                for j in (c + 1)..<max(n, c + 1) { m[i * n + j] = m[i * n + j] - l * m[c * n + j] }
            }
        }
        var out = [Float](repeating: 0, count: n * n)
        for col in 0..<n {
            // P·e_col, then L y = P e (unit diagonal), then U x = y.
            var y = (0..<n).map { perm[$0] == col ? Float(1) : 0 }
            for i in 0..<n {
                for j in 0..<i { y[i] = y[i] - m[i * n + j] * y[j] }
            }
            for i in stride(from: n - 1, through: 0, by: -1) {
                var t = y[i]
                for j in (i + 1)..<max(n, i + 1) { t = t - m[i * n + j] * y[j] }
                y[i] = t * (1 / m[i * n + i])
            }
            for i in 0..<n { out[i * n + col] = y[i] }
        }
        return out
    }

    /// `update_bias` (step 3) in float32.
    static func updatedBasis(_ basis: [Float], auxil: [Float], iteration: Float, customUpdate: Bool) -> [Float] {
        if customUpdate {
            return zip(basis, auxil).map { ($0 * iteration + $1) / (iteration + 1) }
        }
        return zip(basis, auxil).map { Float(0.9) * $0 + Float(0.1) * $1 }
    }
}

extension Quantizer {
    /// The LQ-Nets training forward (see ``LQNetTraining``): the output, its backward, and the
    /// new `basis` and `auxil` (the `iteration` increment is ``stateAfterTrainingForward(_:)``'s).
    func lqNetTrainPass(_ x: [Float], shape: [Int]) throws -> QuantizerTrainPass {
        let qg = config.quantGroup
        let isWeight = config.tag == .wt
        guard shape.reduce(1, *) == x.count, !x.isEmpty else {
            throw QuantizerError(.inputShape("\(x.count) values do not fill shape \(QuantizerError.dims(shape))"))
        }
        if isWeight {
            guard x.count % qg == 0 else {
                throw QuantizerError(.inputShape("\(x.count) weights do not split into \(qg) groups"))
            }
        } else {
            let channels = shape.count > 1 ? shape[1] : 1
            guard channels % qg == 0, ![.mean, .var].contains(config.adaptive) || shape.count == 4 else {
                throw QuantizerError(.inputShape("LQ-Nets activations of shape \(QuantizerError.dims(shape)) do not fit \(qg) groups"))
            }
        }
        let table = LQNetTraining.table(
            basis: state.basis, codecVector: state.codecVector, thresholdMultiplier: state.thresholdMultiplier,
            levels: config.levels, bit: config.bit, groups: qg)
        let p = LQNetTraining.run(
            x, shape: shape, table: table, bit: config.bit, halfRange: config.halfRange, adaptive: config.adaptive,
            isWeight: isWeight, basis: state.basis)
        if let bad = p.auxil.firstIndex(where: { !$0.isFinite }) {
            // QTool's torch.inverse raises here ("matrix has no inverse").
            throw QuantizerError(
                .unsupported(
                    "the LQ-Nets least-squares system of group \(bad % qg) is singular (every value got codes that do not span the basis; QTool stops with \"matrix has no inverse\")"
                ))
        }
        let basis = LQNetTraining.updatedBasis(
            state.basis, auxil: p.auxil, iteration: state.iteration, customUpdate: config.customUpdate)
        let newState = [name + ".basis": basis, name + ".auxil": p.auxil]
        // quantization_value: the input itself while iteration (already incremented) <= stable.
        if state.iteration + 1 <= Float(config.stable) {
            return QuantizerTrainPass(y: x, backward: { ($0, []) }, state: newState)
        }
        if isWeight {
            return QuantizerTrainPass(y: p.y, backward: { ($0, []) }, state: newState)
        }
        let blocked = zip(p.normalised, p.topLevel).map { $0 >= $1 }
        return QuantizerTrainPass(
            y: p.y, backward: { dy in (dy.indices.map { blocked[$0] ? 0 : dy[$0] }, []) }, state: newState)
    }
}
