import Engine

/// The FATNN-style non-uniform quantizer in training mode (seed-reference §11.11): the
/// forward is ``NonUniformQuantizer`` with the trainer's current alphas; the backward is what
/// PyTorch's autograd takes through QTool's forward, with `R = round` straight-through and
/// each clamp passing the gradient where `lo <= t <= hi` (inclusive), times the
/// `ClampWithScale` factor `sqrt(numel / n_in)` with `--<tag>_grad_type STE-scale` (unless
/// `int(factor) == 1`).
///
/// With `a_k = |alpha_k|` of the element's group and `r_k = 1/a_k` (float32):
/// ```
/// one-sided:  t1 = x·a0                 ∂t1/∂x = a0   ∂t1/∂a0 = x
///             t2 = (x − r0)·a1          ∂t2/∂x = a1   ∂t2/∂a1 = x − r0   ∂t2/∂a0 = a1·r0²
///             t3 = (x − (r0 + r1))·a2   ∂t3/∂x = a2   ∂t3/∂a2 = x − (r0 + r1)
///                                       ∂t3/∂a0 = a2·r0²   ∂t3/∂a1 = a2·r1²
/// two-sided:  t1 = x·a0 (clamp [−1, 0]), t2 = x·a1 (clamp [0, 1])
/// ```
/// and `∂a_k/∂alpha_k = sign(alpha_k)` (`abs`'s derivative, 0 at 0). Alpha gradients are
/// summed per group in double.
enum NonUniformTraining {
    /// The backward of `y = Σ_k R(clamp(t_k))` for input `x` (already `var-mean`-normalised
    /// for weights) with `alphas[k][group(i)]`: `dy -> (dx, [d alpha_k])`.
    static func backward(
        _ x: [Float], alphas: [[Float]], group: @escaping @Sendable (Int) -> Int, levels: Int, oneSided: Bool,
        scaledClamp: Bool
    ) -> @Sendable ([Float]) -> (dx: [Float], parameters: [[Float]]) {
        let a = alphas.map { $0.map { abs($0) } }
        let r = a.map { $0.map { 1 / $0 } }
        // Terms: (alpha index, lo, hi, the clamp input t_i).
        var list: [(k: Int, lo: Float, hi: Float, u: [Float])] = []
        if oneSided {
            list.append((0, 0, 1, x))
            if levels >= 3 { list.append((1, 0, 1, x.indices.map { x[$0] - r[0][group($0)] })) }
            if levels == 4 {
                list.append(
                    (
                        2, 0, 1,
                        x.indices.map { i in
                            let g = group(i)
                            return x[i] - (r[0][g] + r[1][g])
                        }
                    ))
            }
        } else {
            list = [(0, -1, 0, x), (1, 0, 1, x)]
        }
        let terms = list
        // Per term: the clamp mask times its gradient factor, from the forward's float32 t.
        let masks: [[Float]] = terms.map { term in
            var t = [Float](repeating: 0, count: x.count)
            for i in x.indices { t[i] = term.u[i] * a[term.k][group(i)] }
            let inside = t.map { $0 >= term.lo && $0 <= term.hi }
            var factor: Float = 1
            if scaledClamp {
                let n = inside.reduce(0) { $0 + ($1 ? 1 : 0) }
                if n > 0 {
                    let f = (Double(t.count) / Double(n)).squareRoot()
                    if !QuantMath.skipsScaling(f) { factor = Float(f) }
                }
            }
            return inside.map { $0 ? factor : 0 }
        }
        let groups = alphas.first?.count ?? 1
        let count = alphas.count
        return { dy in
            var dx = [Float](repeating: 0, count: x.count)
            var da = [[Double]](repeating: [Double](repeating: 0, count: groups), count: count)
            for (j, term) in terms.enumerated() {
                let k = term.k
                for i in x.indices where masks[j][i] != 0 {
                    let g = group(i)
                    let dt = dy[i] * masks[j][i]
                    dx[i] += dt * a[k][g]
                    da[k][g] += Double(dt) * Double(term.u[i])
                    // The offsets −r0 (t2, t3) and −r1 (t3): d(1/a)/da = −1/a².
                    if oneSided && k >= 1 {
                        let back = Double(dt) * Double(a[k][g])
                        for m in 0..<k { da[m][g] += back * Double(r[m][g]) * Double(r[m][g]) }
                    }
                }
            }
            let grads = (0..<count).map { k in
                (0..<groups).map { g -> Float in
                    let s: Double = alphas[k][g] > 0 ? 1 : (alphas[k][g] < 0 ? -1 : 0)
                    return Float(da[k][g] * s)
                }
            }
            return (dx, grads)
        }
    }
}

extension Quantizer {
    /// `alpha0 … alpha{n−1}`: two for weights, `L − 1` for activations.
    var nonUniformParameterKeys: [String] {
        let count = config.tag == .wt ? 2 : config.levels - 1
        return (0..<count).map { name + ".alpha\($0)" }
    }

    /// The group of each element: weights `[qg, −1]` rows, activations `[B, qg, 1, −1]` chunks.
    func nonUniformGroup(_ count: Int, shape: [Int]) throws -> @Sendable (Int) -> Int {
        let qg = config.quantGroup
        if config.tag == .wt {
            let size = count / qg
            return { $0 / size }
        }
        guard shape.count == 4, (shape[1] * shape[2] * shape[3]) % qg == 0 else {
            throw QuantizerError(
                .inputShape(
                    "non-uniform activations need NCHW input divisible into \(qg) groups, got \(QuantizerError.dims(shape))"))
        }
        let chunk = shape[1] * shape[2] * shape[3] / qg
        return { ($0 / chunk) % qg }
    }

    /// The backward of the non-uniform training forward of `x` (normalised for weights).
    func nonUniformBackward(_ x: [Float], shape: [Int]) throws -> @Sendable ([Float]) -> (dx: [Float], parameters: [[Float]]) {
        return NonUniformTraining.backward(
            x, alphas: state.alphas, group: try nonUniformGroup(x.count, shape: shape), levels: config.levels,
            oneSided: config.tag == .wt ? false : config.halfRange, scaledClamp: config.scaledClamp)
    }
}

extension Quantizer {
    /// Non-uniform activations with `closed_form` (quant group 1) in training mode: the integer
    /// levels `q` as without it, then `auxil = Σ q·x / Σ q²` (torch float32 sums; `mean(x)`
    /// when `Σ q² = 0`), `update_bias(auxil)`: `basis ← auxil`, or with `custom-update` the
    /// running mean `(basis·iteration + auxil)/(iteration + 1)`; the output is `q·basis` with the
    /// updated basis, which the backward multiplies in too (the basis gets no gradient).
    ///
    /// QTool assigns 0-d tensors to `auxil` (and, without `custom-update`, `basis`), so its
    /// state dict after a training forward stores them as `[]`; here they keep the `[1]` shape
    /// they were loaded with (same values), which QTool's model loads.
    func nonUniformClosedFormPass(_ x: [Float], shape: [Int]) throws -> QuantizerTrainPass {
        let group = try nonUniformGroup(x.count, shape: shape)
        guard state.basis.count == 1 else {
            throw QuantizerError(.unsupported("closed_form non-uniform activations need a basis [1]"))
        }
        let q = NonUniformQuantizer.apply(
            x, alphas: state.alphas, group: group, levels: config.levels, oneSided: config.halfRange,
            scaledClamp: config.scaledClamp)
        let qx = TorchReduction.sum(zip(q, x).map { $0 * $1 }[...])
        let qq = TorchReduction.sum(q.map { $0 * $0 }[...])
        let auxil = qq == 0 ? TorchReduction.mean(x[...]) : qx / qq
        let it = state.iteration
        let basis = config.customUpdate ? (state.basis[0] * it + auxil) / (it + 1) : auxil
        let inner = try nonUniformBackward(x, shape: shape)
        return QuantizerTrainPass(
            y: q.map { $0 * basis }, backward: { dy in inner(dy.map { $0 * basis }) },
            state: [name + ".basis": [basis], name + ".auxil": [auxil]])
    }
}
