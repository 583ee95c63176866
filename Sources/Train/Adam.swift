#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `torch.optim.Adam` as QTool's `--optimizer ADAM` builds it (seed-reference §14.2): the
/// parameter groups of §14.3, betas 0.9/0.999, eps 1e-8, coupled weight decay, no AMSGrad.
///
/// The update is torch's single-tensor CPU path, in float32 with double scalars cast as torch
/// casts them: `g = g + wd·p`; `m = m + (1 − β1)·(g − m)` (`lerp_`); `v = v·β2 + (1 − β2)·g·g`;
/// with `t` the step count, `c1 = 1 − β1^t`, `c2 = 1 − β2^t` in double,
/// `p = p + (−lr / c1)·m / (sqrt(v) / sqrt(c2) + eps)`. A parameter without a gradient is
/// skipped entirely (no step count either).
public struct Adam: Sendable {
    /// The groups, in the order given.
    public private(set) var groups: [ParameterGroup]
    /// `betas` and `eps` (torch's defaults; QTool passes neither).
    public var beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8
    /// Per-parameter state: steps taken, first and second moments.
    public var steps: [String: Int] = [:], expAvg: [String: [Float]] = [:], expAvgSq: [String: [Float]] = [:]

    /// Adam over `groups`.
    public init(groups: [ParameterGroup]) { self.groups = groups }

    /// Sets the learning rate of every group without `lr_constant`; the moments are kept.
    public mutating func setLearningRate(_ lr: Double) {
        for i in groups.indices where groups[i].lrConstant == nil { groups[i].lr = lr }
    }

    /// One step: updates `parameters` in place from `gradients` (both by name).
    public mutating func step(_ parameters: inout [String: [Float]], gradients: [String: [Float]]) {
        let b1 = Float(1 - beta1), b2 = Float(beta2), b2c = Float(1 - beta2), eps = Float(epsilon)
        for group in groups {
            guard let g0 = gradients[group.name], var p = parameters[group.name] else { continue }
            var g = g0
            let wd = Float(group.weightDecay)
            if wd != 0 { for i in g.indices { g[i] += wd * p[i] } }
            var m = expAvg[group.name] ?? [Float](repeating: 0, count: p.count)
            var v = expAvgSq[group.name] ?? [Float](repeating: 0, count: p.count)
            let t = (steps[group.name] ?? 0) + 1
            for i in g.indices {
                m[i] = Self.lerp(m[i], g[i], b1)
                v[i] = v[i] * b2 + b2c * g[i] * g[i]
            }
            let c1 = 1 - pow(beta1, Double(t)), c2 = 1 - pow(beta2, Double(t))
            let stepSize = Float(-(group.lr / c1)), c2Root = Float(c2.squareRoot())
            for i in p.indices {
                let denom = v[i].squareRoot() / c2Root + eps
                p[i] += stepSize * m[i] / denom
            }
            steps[group.name] = t
            expAvg[group.name] = m
            expAvgSq[group.name] = v
            parameters[group.name] = p
        }
    }

    /// ATen's `lerp(self, end, weight)` for a scalar weight.
    static func lerp(_ a: Float, _ b: Float, _ w: Float) -> Float {
        abs(w) < 0.5 ? a + w * (b - a) : b - (b - a) * (1 - w)
    }
}
