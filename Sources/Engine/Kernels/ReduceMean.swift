/// A mean over adjacent axes seen as `[outer, reduced, inner]`: output `[outer, inner]`.
package struct ReduceGeometry: Sendable, Equatable {
    /// Product of the dims before the reduced axes.
    package var outer: Int
    /// Product of the reduced dims (the divisor).
    package var reduced: Int
    /// Product of the dims after the reduced axes.
    package var inner: Int

    package init(outer: Int, reduced: Int, inner: Int) {
        self.outer = outer
        self.reduced = reduced
        self.inner = inner
    }
}

/// ``Op/reduceMean(axes:keepDims:)``: float32 sums in PyTorch's CPU order, then `sum / n`,
/// so a model's channel mean (XNOR's `mean |x|` scale) comes out bit for bit as PyTorch
/// computes it:
/// - reduced axes innermost (`inner == 1`, e.g. `[2, 3]` of NCHW): each contiguous row is
///   summed by ``TorchReduction/sum(_:)`` (ATen's cascade sum);
/// - otherwise (e.g. the channel axis): per inner position, in order of the reduced index,
///   one accumulator per output element (vectorises over `inner`).
///
/// The naive twin is ``ReferenceKernels/reduceMean(_:shape:axes:)`` (double accumulation).
/// Input and output never alias.
package enum ReduceMean {
    package static func forward(
        _ g: ReduceGeometry, input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
        threads: Int
    ) {
        precondition(input.count >= g.outer * g.reduced * g.inner && output.count >= g.outer * g.inner)
        let x = input.baseAddress!, y = output.baseAddress!
        let n = Float(g.reduced)
        if g.inner == 1 {
            Parallel.forRanges(g.outer, threads: threads, grain: max(1, 16384 / max(g.reduced, 1))) { r in
                for o in r {
                    let row = unsafe Array(UnsafeBufferPointer(start: x + o * g.reduced, count: g.reduced))
                    unsafe y[o] = TorchReduction.sum(row[...]) / n
                }
            }
            return
        }
        Parallel.forRanges(g.outer, threads: threads, grain: max(1, 16384 / max(g.reduced * g.inner, 1))) { r in
            for o in r {
                let dst = unsafe y + o * g.inner
                unsafe dst.update(repeating: 0, count: g.inner)
                for k in 0..<g.reduced {
                    let src = unsafe x + (o * g.reduced + k) * g.inner
                    for i in 0..<g.inner { unsafe dst[i] += src[i] }
                }
                for i in 0..<g.inner { unsafe dst[i] /= n }
            }
        }
    }
}
