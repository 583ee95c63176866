import QToolConfig

/// The backward of XNOR-Net, XNOR++ and Bi-Real binarisation in training mode (seed-reference
/// §11.10, `models/xnor.py`): `XnorActivation` and `XnorWeight` are autograd functions whose
/// backward is `dx = dy · mask`, the mask computed from the input in the forward. The scale
/// `E` (mean of `|x|`) is detached and is *not* part of the gradient.
///
/// ```
/// STE:       mask = 1 where −1 < x < 1 (strict), 0 where x ≥ 1 or x ≤ −1
/// Triangle:  mask = 2 − 2|x| where −1 < x < 1, else 0   (activations only)
/// otherwise: mask = 1                                    (weights: "pass", also Triangle)
/// ```
/// XNOR++ multiplies the binarised weight by `gamma [qg,1,1,1]` outside the function; that
/// product's backward (`dQ = dy·gamma`, `dgamma = Σ dy·Q` per group) is
/// ``XnorGradients/gamma(_:dy:gamma:)``.
enum XnorGradients {
    /// The mask of `XnorActivation` (`weight: false`) or `XnorWeight` (`weight: true`) for
    /// `--fm_grad_type` / `--wt_grad_type` `type`, as float32 values (`2 − 2|x|` rounded as
    /// PyTorch rounds it).
    static func mask(_ x: [Float], type: QuantizerGradType, weight: Bool) -> [Float] {
        switch type {
        case .ste:
            return x.map { $0 >= 1 || $0 <= -1 ? 0 : 1 }
        case .triangle where !weight:
            return x.map { $0 >= 1 || $0 <= -1 ? 0 : 2 - 2 * abs($0) }
        default:
            return [Float](repeating: 1, count: x.count)
        }
    }

    /// The backward of `y = Q · gamma[g]` over a weight cut into `gamma.count` consecutive
    /// groups: `dQ = dy · gamma[g]` (float32, as PyTorch's product) and `dgamma[g] = Σ dy·Q`
    /// over the group (summed in double, rounded once).
    static func gamma(_ q: [Float], dy: [Float], gamma: [Float]) -> (dq: [Float], dgamma: [Float]) {
        let size = q.count / max(gamma.count, 1)
        var dq = dy
        var sums = [Double](repeating: 0, count: gamma.count)
        for i in dy.indices {
            let g = i / size
            dq[i] = dy[i] * gamma[g]
            sums[g] += Double(dy[i]) * Double(q[i])
        }
        return (dq, sums.map { Float($0) })
    }
}
