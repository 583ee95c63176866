import Engine
import Formats
import QToolConfig

/// XNOR-Net, XNOR++ and Bi-Real binarisation (seed-reference §11.10).
///
/// ```
/// activation:  y = sign'(x)·E,  E = 1 (fm_custom none) | mean_c |x| per (b,h,w) (channel)
///                                 | mean_{h,w} |x| per (b,c) (resolution)
/// weight:      y = sign'(w)·E[g],  E[g] = mean |w| over quant group g (consecutive chunks)
///              (× gamma[g] with XNOR++, applied by the caller)
/// ```
/// `sign'(0) = +1`. Means are float32 `sum / n` in ATen's summation order for contiguous rows
/// (weights, `resolution`); the `channel` mean runs over a strided axis, where ATen's
/// vectorised outer reduction is not reproduced: it is summed in order, so it can differ from
/// PyTorch by an ulp.
enum XnorQuantizer {
    /// Binarises NCHW activations.
    static func activation(_ x: [Float], shape: [Int], custom: QuantizerCustom) -> [Float] {
        switch custom {
        case .none:
            return x.map(QuantMath.signPrime)
        case .resolution:
            let plane = shape[2] * shape[3]
            var y = x
            for start in stride(from: 0, to: x.count, by: plane) {
                let e = TorchReduction.mean(x[start..<(start + plane)].map { abs($0) }[...])
                for i in start..<(start + plane) { y[i] = QuantMath.signPrime(x[i]) * e }
            }
            return y
        case .channel:
            let (b, c, plane) = (shape[0], shape[1], shape[2] * shape[3])
            var y = x
            for n in 0..<b {
                for p in 0..<plane {
                    var sum: Float = 0
                    for ch in 0..<c { sum += abs(x[(n * c + ch) * plane + p]) }
                    let e = sum / Float(c)
                    for ch in 0..<c {
                        let i = (n * c + ch) * plane + p
                        y[i] = QuantMath.signPrime(x[i]) * e
                    }
                }
            }
            return y
        }
    }

    /// Binarises a weight cut into `groups` consecutive chunks.
    static func weight(_ w: [Float], groups: Int) -> [Float] {
        let size = w.count / groups
        var y = w
        for g in 0..<groups {
            let chunk = (g * size)..<((g + 1) * size)
            let e = TorchReduction.mean(w[chunk].map { abs($0) }[...])
            for i in chunk { y[i] = QuantMath.signPrime(w[i]) * e }
        }
        return y
    }
}
