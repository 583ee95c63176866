import Dispatch
import Tensors

#if canImport(Glibc)
    import Glibc
#endif

/// How ``StepRunner`` times steps for a profile.
package enum StepClock: Sendable {
    /// Monotonic wall time (what a user waits for).
    case wall
    /// CPU time of the calling thread: insensitive to preemption on a loaded machine, but
    /// only meaningful with `threads == 1` (work on other threads is not counted).
    case threadCPU

    @inline(__always)
    func now() -> UInt64 {
        switch self {
        case .wall:
            return DispatchTime.now().uptimeNanoseconds
        case .threadCPU:
            #if canImport(Glibc)
                var ts = timespec()
                unsafe clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
                return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
            #else
                return DispatchTime.now().uptimeNanoseconds
            #endif
        }
    }
}

/// Runs a ``Plan``'s steps on an arena: the one place that opens the arena and weight
/// buffers and hands pointers to the kernels. Pointers live only inside this call.
package enum StepRunner {
    /// Executes every step in order. `onStep(i, nanoseconds)` is called after step `i` when given;
    /// `observe(i, values)` gets a copy of the value step `i` wrote (``ValueCapture``).
    ///
    /// `@inline(never)` here and on `load`: inlining these into callers crashes the 6.3.1
    /// optimizer (SILCombine, pointer-to-address) in release builds.
    @inline(never)
    package static func run(
        _ plan: Plan, arena: inout [Float], threads: Int, clock: StepClock = .wall,
        onStep: ((Int, UInt64) -> Void)? = nil, observe: ((Int, [Float]) -> Void)? = nil
    ) {
        precondition(arena.count >= plan.arenaCount)
        unsafe plan.weights.withUnsafeBufferPointer { wb in
            unsafe arena.withUnsafeMutableBufferPointer { ab in
                for (i, step) in plan.steps.enumerated() {
                    let t0 = onStep == nil ? 0 : clock.now()
                    unsafe execute(step.call, arena: ab, weights: wb, scratch: plan.scratch, threads: threads)
                    if let onStep { onStep(i, clock.now() - t0) }
                    if let observe {
                        let y = step.call.output
                        unsafe observe(i, Array(ab[y.offset..<(y.offset + y.count)]))
                    }
                }
            }
        }
    }

    private static func execute(
        _ call: KernelCall<Span>, arena: UnsafeMutableBufferPointer<Float>,
        weights: UnsafeBufferPointer<Float>, scratch: Span, threads: Int
    ) {
        func r(_ s: Span) -> UnsafeBufferPointer<Float> {
            switch s.pool {
            case .arena: return unsafe UnsafeBufferPointer(rebasing: arena[s.offset..<(s.offset + s.count)])
            case .weights: return unsafe UnsafeBufferPointer(rebasing: weights[s.offset..<(s.offset + s.count)])
            }
        }
        func w(_ s: Span) -> UnsafeMutableBufferPointer<Float> {
            precondition(s.pool == .arena, "kernels write only to the arena")
            return unsafe UnsafeMutableBufferPointer(rebasing: arena[s.offset..<(s.offset + s.count)])
        }
        switch call {
        case .conv(let g, let x, let wt, let b, let res, let y, let a):
            unsafe Conv2d.forward(
                g, input: r(x), weight: r(wt), bias: b.map { unsafe r($0) }, residual: res.map { unsafe r($0) },
                output: w(y), scratch: w(scratch), activation: a, threads: threads)
        case .winograd(let g, let tile, let x, let wt, let b, let res, let y, let a):
            unsafe Winograd.forward(
                g, tile: tile, input: r(x), transformedWeight: r(wt), bias: b.map { unsafe r($0) },
                residual: res.map { unsafe r($0) }, output: w(y), scratch: w(scratch), activation: a,
                threads: threads)
        case .binaryConv(let l, let x, let wt, let res, let y, let a):
            unsafe BinaryConv.forward(
                l, input: r(x), weights: r(wt), residual: res.map { unsafe r($0) }, output: w(y), scratch: w(scratch),
                activation: a, threads: threads)
        case .linear(let n, let i, let o, let x, let wt, let b, let y, let a):
            unsafe Linear.forward(
                batch: n, inFeatures: i, outFeatures: o, input: r(x), weight: r(wt),
                bias: b.map { unsafe r($0) }, output: w(y), activation: a, threads: threads)
        case .channelAffine(let n, let c, let i, let x, let s, let b, let y, let a):
            unsafe Elementwise.channelAffine(
                batch: n, channels: c, inner: i, input: r(x), scale: r(s), bias: r(b), output: w(y),
                activation: a, threads: threads)
        case .activation(let a, let x, let y):
            unsafe Elementwise.activation(a, input: r(x), output: w(y), threads: threads)
        case .prelu(let n, let c, let i, let x, let s, let y):
            unsafe Elementwise.prelu(batch: n, channels: c, inner: i, input: r(x), slope: r(s), output: w(y), threads: threads)
        case .maxPool(let g, let x, let y):
            unsafe Pooling.maxPool(g, input: r(x), output: w(y), threads: threads)
        case .avgPool(let g, let x, let y):
            unsafe Pooling.avgPool(g, input: r(x), output: w(y), threads: threads)
        case .adaptiveAvgPool(let p, let h, let wd, let oh, let ow, let x, let y):
            unsafe Pooling.adaptiveAvgPool(
                planes: p, height: h, width: wd, outHeight: oh, outWidth: ow, input: r(x), output: w(y),
                threads: threads)
        case .add(let a, let b, let y, let act):
            unsafe Elementwise.add(r(a), r(b), output: w(y), activation: act, threads: threads)
        case .mul(let g, let a, let b, let y):
            unsafe BroadcastMul.forward(g, r(a), r(b), output: w(y), threads: threads)
        case .reduceMean(let g, let x, let y):
            unsafe ReduceMean.forward(g, input: r(x), output: w(y), threads: threads)
        case .softmax(let o, let ax, let i, let x, let y):
            unsafe Elementwise.softmax(outer: o, axis: ax, inner: i, input: r(x), output: w(y))
        case .pad(let p, let h, let wd, let pad, let v, let x, let y):
            unsafe Elementwise.pad(
                planes: p, height: h, width: wd, padding: pad, value: v, input: r(x), output: w(y),
                threads: threads)
        case .concat(let n, let spatial, let parts, let channels, let y):
            let out = unsafe w(y)
            let total = channels.reduce(0, +)
            for b in 0..<n {
                var c0 = 0
                for (p, c) in zip(parts, channels) {
                    let src = unsafe r(p)
                    let len = c * spatial
                    unsafe (out.baseAddress! + (b * total + c0) * spatial).update(
                        from: src.baseAddress! + b * len, count: len)
                    c0 += c
                }
            }
        case .spaceDepth(let n, let c, let h, let wd, let s, let d, let x, let y):
            unsafe Elementwise.spaceDepth(
                batch: n, channels: c, height: h, width: wd, block: s, toDepth: d, input: r(x),
                output: w(y), threads: threads)
        case .copy(let x, let y):
            unsafe Elementwise.copy(r(x), to: w(y), count: x.count)
        case .quantize(let q, let shape, let x, let y):
            unsafe QuantizeKernel.forward(q, shape: shape, input: r(x), output: w(y), threads: threads)
        case .integerConv(let g, let pi, let mi, let safe, let x, let wt, let s, let b, let res, let y, let a, let q, let oq):
            unsafe IntegerConv.forward(
                g, padIndex: pi, maxIndex: mi, maddubsSafe: safe, input: r(x), weight: r(wt), scale: r(s), bias: r(b),
                residual: res.map { unsafe r($0) }, output: w(y), activation: a, grid: q, outputQuantizer: oq,
                threads: threads)
        case .gridQuantize(let q, let n, let c, let h, let wd, let p, let b, let x, let y):
            unsafe GridQuantizeKernel.forward(
                q, batch: n, channels: c, height: h, width: wd, padding: p, border: b, input: r(x), output: w(y), threads: threads)
        }
    }

    /// Copies a float32 tensor's bytes into the arena at `span`.
    @inline(never)
    package static func load(_ t: Tensor, into span: Span, arena: inout [Float]) {
        precondition(t.dtype == .float32 && t.elementCount == span.count && span.pool == .arena)
        unsafe t.data.withUnsafeBytes { raw in
            unsafe arena.withUnsafeMutableBytes { dst in
                unsafe UnsafeMutableRawBufferPointer(rebasing: dst[(span.offset * 4)..<((span.offset + span.count) * 4)])
                    .copyMemory(from: raw)
            }
        }
    }

    /// Copies floats into the arena at `span`.
    @inline(never)
    package static func load(_ values: [Float], into span: Span, arena: inout [Float]) {
        precondition(values.count == span.count && span.pool == .arena)
        arena.replaceSubrange(span.offset..<(span.offset + span.count), with: values)
    }

    /// The floats at `span` (arena or weights).
    @inline(never)
    package static func read(_ span: Span, arena: [Float], weights: [Float]) -> [Float] {
        let src = span.pool == .arena ? arena : weights
        return Array(src[span.offset..<(span.offset + span.count)])
    }
}
