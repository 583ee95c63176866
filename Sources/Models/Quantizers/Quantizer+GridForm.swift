import Engine

extension Quantizer {
    /// The eval forward of a uniform activation (or output) quantizer as the engine's
    /// element-wise ``GridQuantization``, which it runs as a fused vector kernel: DoReFa, PACT
    /// and LSQ (one- and two-sided, per-tensor or per-channel steps, learned gamma). nil for
    /// weights, the other methods, a pass-through quantizer, LSQ's `STE-scale` clamp (its
    /// forward value depends on the whole tensor) and parameters outside their domain (a
    /// non-positive clip), which keep running through ``apply(_:shape:)``.
    ///
    /// Each form is the method's own float32 operation sequence (``DoReFaQuantizer``,
    /// ``LSQQuantizer``), so the kernel gives the same bits.
    package var gridForm: GridQuantization? {
        guard let method = config.method, config.tag != .wt, !config.passesThrough(iteration: state.iteration) else { return nil }
        let n = config.levels - 1
        var form: GridQuantization
        switch method {
        case .dorefa:
            let c = config.boundary
            guard c > 0, c.isFinite, n >= 1 else { return nil }
            form = GridQuantization(lo: 0, hi: Float(c), steps: Float(Double(n) / c))
        case .pact:
            // `r = max(x, 0)` (NaN kept, -0 -> +0), `r < α ? r : α` (NaN -> α).
            guard let alpha = state.clipVal.first, alpha > 0, alpha.isFinite, n >= 1 else { return nil }
            form = GridQuantization(lo: 0, hi: alpha, nanValue: alpha, lowerInclusive: true, steps: (1 / alpha) * Float(n))
        case .lsq:
            guard !config.scaledClamp, !state.clipVal.isEmpty else { return nil }
            let steps = state.clipVal.map { QuantMath.gradientScaled(abs($0), factor: config.gradFactor) }
            let levels = Float(Double(state.levelNum) - 1)
            guard steps.allSatisfy({ $0 > 0 && $0.isFinite }), levels >= 1 else { return nil }
            form =
                config.halfRange
                ? GridQuantization(divisor: steps, lo: 0, hi: 1, steps: levels, scale: steps)
                : GridQuantization(divisor: steps, lo: -1, hi: 1, centered: true, steps: levels, scale: steps)
        case .nonUniform, .lqNet, .xnor, .binaryWeight:
            return nil
        }
        if config.gamma == .learned {
            guard !state.gamma.isEmpty else { return nil }
            form.gain = state.gamma
        }
        return form
    }
}
