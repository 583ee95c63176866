import Engine
import Formats
import QToolConfig

/// LQ-Nets, eval mode (seed-reference §11.9; `models/alqnet.py` `LqNet_fm`, `LqNet_wt`).
///
/// Per group g (basis column g):
/// ```
/// levels = sort_ascending(codec_vector · basis[:, g])        [L]
/// thr    = thrs_multiplier · levels                           [L−1]
/// y      = levels[0];  for k in 0..<L−1: if x > thr[k] (strict) { y = levels[k+1] }
/// ```
/// Both products are evaluated as a float32 `k`-loop with fused multiply-add (BLAS order);
/// with ±1/0 codes and the default threshold scale 0.5 every product is exact, so the order
/// cannot matter. Adaptive normalisation (§11.4) wraps the assignment: activations per sample
/// (`mean`: `x / (mean + 1e-5)`, restored `× (mean + 1e-5)`; `var`: `x / (std + 1e-5)`,
/// restored `× (std + 1e-5)`), weights per group row (`mean`: `x − mean`, `+ mean`; `var`:
/// `/ (std + 1e-5)`, `× (std + 1e-5)`; `mean-var`: both). Eval mode leaves `basis` alone, so
/// the training-only integer-division defect (§16.2 item 2) does not arise here.
enum LQNetQuantizer {
    /// The sorted levels `[qg][L]` and thresholds `[qg][L−1]` of every group.
    static func levelsAndThresholds(
        basis: [Float], codecVector: [Float], thresholdMultiplier: [Float], levels: Int, bit: Int,
        groups: Int
    ) -> (levels: [[Float]], thresholds: [[Float]]) {
        var allLevels: [[Float]] = []
        var allThresholds: [[Float]] = []
        for g in 0..<groups {
            var lv = (0..<levels).map { l in
                var acc: Float = 0
                for i in 0..<bit {
                    acc = acc.addingProduct(codecVector[l * bit + i], basis[i * groups + g])
                }
                return acc
            }
            lv.sort()
            let thr = (0..<(levels - 1)).map { k in
                var acc: Float = 0
                for j in 0..<levels {
                    acc = acc.addingProduct(thresholdMultiplier[k * levels + j], lv[j])
                }
                return acc
            }
            allLevels.append(lv)
            allThresholds.append(thr)
        }
        return (allLevels, allThresholds)
    }

    /// The level of `v` among sorted `levels` with `thresholds` (strict `>`, in order).
    @inline(__always)
    static func assign(_ v: Float, _ levels: [Float], _ thresholds: [Float]) -> Float {
        var y = levels[0]
        for k in thresholds.indices where v > thresholds[k] { y = levels[k + 1] }
        return y
    }

    /// NCHW activations; group of channel c is `c / (C/qg)` (channels-first chunks).
    static func activation(
        _ x: [Float], shape: [Int], table: (levels: [[Float]], thresholds: [[Float]]),
        adaptive: QuantizerAdaptive
    ) -> [Float] {
        let groups = table.levels.count
        let batch = shape[0]
        let sample = x.count / batch
        let channels = shape.count > 1 ? shape[1] : 1
        let plane = sample / channels
        let perGroup = channels / groups
        var y = x
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
                let v = normalise ? x[i] / norm : x[i]
                let q = assign(v, table.levels[g], table.thresholds[g])
                y[i] = normalise ? q * norm : q
            }
        }
        return y
    }

    /// A weight row's `var-mean` statistics as `adaptive` uses them: (mean, std + 1e-5), with
    /// 0 and 1 for the parts it does not use (torch's summation order).
    static func adaptiveMoments(_ row: ArraySlice<Float>, _ adaptive: QuantizerAdaptive) -> (mean: Float, std: Float) {
        switch adaptive {
        case .mean: return (TorchReduction.mean(row), 1)
        case .var: return (0, TorchReduction.meanStd(row).std + 1e-5)
        case .meanVar: return (TorchReduction.mean(row), TorchReduction.meanStd(row).std + 1e-5)
        default: return (0, 1)
        }
    }

    /// Weights cut into `qg` consecutive rows.
    static func weight(
        _ w: [Float], table: (levels: [[Float]], thresholds: [[Float]]),
        adaptive: QuantizerAdaptive
    ) -> [Float] {
        let groups = table.levels.count
        let size = w.count / groups
        var y = w
        for g in 0..<groups {
            let row = (g * size)..<((g + 1) * size)
            let (mean, std) = adaptiveMoments(w[row], adaptive)
            for i in row {
                switch adaptive {
                case .mean: y[i] = assign(w[i] - mean, table.levels[g], table.thresholds[g]) + mean
                case .var: y[i] = assign(w[i] / std, table.levels[g], table.thresholds[g]) * std
                case .meanVar:
                    y[i] =
                        assign((w[i] - mean) / std, table.levels[g], table.thresholds[g]) * std
                        + mean
                default: y[i] = assign(w[i], table.levels[g], table.thresholds[g])
                }
            }
        }
        return y
    }
}
