import CKernels
import Foundation

/// Elementwise and data-movement kernels over flat float32 buffers.
///
/// Unless a function says otherwise, `output` may be the same memory as `input` (in place):
/// each element is read before it is written at the same index. Channel-wise ops see the
/// tensor as `[batch, channels, inner]`. Twins live in `ReferenceKernels+Ops.swift`.
package enum Elementwise {
    /// `y = act(x)`.
    package static func activation(
        _ a: Activation, input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
        threads: Int
    ) {
        precondition(output.count >= input.count)
        let x = input.baseAddress!, y = output.baseAddress!
        Parallel.forRanges(input.count, threads: threads, grain: 65536) { r in
            switch a {
            case .none:
                for i in r { unsafe y[i] = x[i] }
            case .relu:
                for i in r { unsafe y[i] = max(x[i], 0) }
            case .clamp(let lo, let hi):
                for i in r { unsafe y[i] = min(max(x[i], lo), hi) }
            }
        }
    }

    /// `y = act(a + b)`.
    package static func add(
        _ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>,
        output: UnsafeMutableBufferPointer<Float>, activation: Activation, threads: Int
    ) {
        precondition(b.count >= a.count && output.count >= a.count)
        let pa = a.baseAddress!, pb = b.baseAddress!, y = output.baseAddress!
        Parallel.forRanges(a.count, threads: threads, grain: 65536) { r in
            switch activation {
            case .none:
                for i in r { unsafe y[i] = pa[i] + pb[i] }
            case .relu:
                for i in r { unsafe y[i] = max(pa[i] + pb[i], 0) }
            case .clamp(let lo, let hi):
                for i in r { unsafe y[i] = min(max(pa[i] + pb[i], lo), hi) }
            }
        }
    }

    /// `y = act(x * scale[c] + bias[c])` (batch norm folded to an affine, as PyTorch's CPU kernel).
    package static func channelAffine(
        batch: Int, channels: Int, inner: Int, input: UnsafeBufferPointer<Float>,
        scale: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>,
        output: UnsafeMutableBufferPointer<Float>, activation: Activation, threads: Int
    ) {
        precondition(input.count >= batch * channels * inner && output.count >= batch * channels * inner)
        precondition(scale.count >= channels && bias.count >= channels)
        let x = input.baseAddress!, y = output.baseAddress!
        Parallel.forRanges(batch * channels, threads: threads, grain: max(1, 16384 / max(inner, 1))) { r in
            for p in r {
                let c = p % channels
                let (s, b) = unsafe (scale[c], bias[c])
                let xs = unsafe x + p * inner, ys = unsafe y + p * inner
                for i in 0..<inner { unsafe ys[i] = activation.apply(xs[i] * s + b) }
            }
        }
    }

    /// `y = x > 0 ? x : a[c] * x`; `slope` has 1 or `channels` elements.
    package static func prelu(
        batch: Int, channels: Int, inner: Int, input: UnsafeBufferPointer<Float>,
        slope: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>, threads: Int
    ) {
        precondition(input.count >= batch * channels * inner && output.count >= batch * channels * inner)
        let x = input.baseAddress!, y = output.baseAddress!
        Parallel.forRanges(batch * channels, threads: threads, grain: max(1, 16384 / max(inner, 1))) { r in
            for p in r {
                let a = unsafe slope.count == 1 ? slope[0] : slope[p % channels]
                let xs = unsafe x + p * inner, ys = unsafe y + p * inner
                for i in 0..<inner {
                    let v = unsafe xs[i]
                    unsafe ys[i] = v > 0 ? v : a * v
                }
            }
        }
    }

    /// Softmax along the middle axis of `[outer, axis, inner]` (max-subtracted). In place is allowed.
    package static func softmax(
        outer: Int, axis: Int, inner: Int, input: UnsafeBufferPointer<Float>,
        output: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(input.count >= outer * axis * inner && output.count >= outer * axis * inner)
        let x = input.baseAddress!, y = output.baseAddress!
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * axis * inner + i
                var m = -Float.infinity
                for a in 0..<axis { m = max(m, unsafe x[base + a * inner]) }
                var s: Float = 0
                for a in 0..<axis {
                    let e = unsafe expf(x[base + a * inner] - m)
                    unsafe y[base + a * inner] = e
                    s += e
                }
                let inv = 1 / s
                for a in 0..<axis { unsafe y[base + a * inner] *= inv }
            }
        }
    }

    /// Constant padding of `[planes, H, W]` to `[planes, H+t+b, W+l+r]`. Must not alias.
    package static func pad(
        planes: Int, height h: Int, width w: Int, padding p: Padding2d, value: Float,
        input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>, threads: Int
    ) {
        let oh = h + p.top + p.bottom, ow = w + p.left + p.right
        precondition(input.count >= planes * h * w && output.count >= planes * oh * ow)
        let x = input.baseAddress!, y = output.baseAddress!
        Parallel.forRanges(planes, threads: threads, grain: max(1, 16384 / max(oh * ow, 1))) { r in
            for q in r {
                let dst = unsafe y + q * oh * ow, src = unsafe x + q * h * w
                unsafe dst.update(repeating: value, count: p.top * ow)
                for iy in 0..<h {
                    let d = unsafe dst + (iy + p.top) * ow
                    unsafe d.update(repeating: value, count: p.left)
                    unsafe (d + p.left).update(from: src + iy * w, count: w)
                    unsafe (d + p.left + w).update(repeating: value, count: p.right)
                }
                unsafe (dst + (h + p.top) * ow).update(repeating: value, count: p.bottom * ow)
            }
        }
    }

    /// Space-to-depth (`toDepth`) or depth-to-space; `channels`, `height`, `width` describe
    /// the space side `[N, C, H, W]` (see ``Op/spaceToDepth(blockSize:)``). Must not alias.
    package static func spaceDepth(
        batch: Int, channels: Int, height: Int, width: Int, block s: Int, toDepth: Bool,
        input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>, threads: Int
    ) {
        let total = batch * channels * height * width
        precondition(input.count >= total && output.count >= total)
        let (oh, ow) = (height / s, width / s)
        let x = input.baseAddress!, y = output.baseAddress!
        Parallel.forRanges(batch * channels, threads: threads, grain: max(1, 16384 / max(height * width, 1))) { r in
            for p in r {
                let space = unsafe (toDepth ? UnsafeMutablePointer(mutating: x) : y) + p * height * width
                let depth = unsafe (toDepth ? y : UnsafeMutablePointer(mutating: x)) + p * height * width
                for dy in 0..<s {
                    for dx in 0..<s {
                        let plane = unsafe depth + (dy * s + dx) * oh * ow
                        for i in 0..<oh {
                            let row = unsafe space + (i * s + dy) * width + dx
                            let out = unsafe plane + i * ow
                            if toDepth {
                                for j in 0..<ow { unsafe out[j] = row[j * s] }
                            } else {
                                for j in 0..<ow { unsafe row[j * s] = out[j] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Copies `count` floats from `input` to `output` (which may overlap only if identical).
    package static func copy(
        _ input: UnsafeBufferPointer<Float>, to output: UnsafeMutableBufferPointer<Float>, count: Int
    ) {
        precondition(input.count >= count && output.count >= count)
        if unsafe UnsafePointer(output.baseAddress!) == input.baseAddress! { return }
        unsafe output.baseAddress!.update(from: input.baseAddress!, count: count)
    }
}

/// Fully connected layer: `y [N, out] = act(x [N, in] * W^T + b)`, `W` stored `[out, in]`.
///
/// Dot products of input rows with weight rows in C (`qk_linear`, `Sources/CKernels/linear.c`:
/// AVX2+FMA blocks of weight rows x batch rows, bias and activation applied on the stored
/// vector), output features split over threads. A single-threaded call with a large batch
/// goes to OpenBLAS instead (one sgemm with `B = W^T`, then the epilogue), whose blocked
/// GEMM is as fast or faster there (measured: even at batch 128, ~10% faster at 256).
/// Twin: ``ReferenceKernels/linear(_:batch:inFeatures:weight:outFeatures:bias:)``.
package enum Linear {
    /// The smallest batch that a single-threaded call hands to OpenBLAS.
    package static let blasBatch = 128

    /// How ``forward(batch:inFeatures:outFeatures:input:weight:bias:output:activation:threads:kernel:)``
    /// computes (tests pin each path).
    package enum Kernel: Sendable {
        /// The dot-product kernel, or OpenBLAS for `threads <= 1 && batch >= blasBatch`.
        case automatic
        /// The dot-product kernel (`portable`: its scalar path even where AVX2 is available).
        case dot(portable: Bool)
        /// OpenBLAS sgemm, then the epilogue.
        case blas
    }

    /// Runs the layer; buffers must not alias.
    package static func forward(
        batch: Int, inFeatures: Int, outFeatures: Int, input: UnsafeBufferPointer<Float>,
        weight: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>?,
        output: UnsafeMutableBufferPointer<Float>, activation: Activation, threads: Int,
        kernel: Kernel = .automatic
    ) {
        precondition(input.count >= batch * inFeatures && weight.count >= outFeatures * inFeatures)
        precondition(unsafe (bias?.count ?? outFeatures) >= outFeatures)
        precondition(output.count >= batch * outFeatures)
        guard batch > 0, outFeatures > 0 else { return }
        let x = input.baseAddress!, w = weight.baseAddress!, y = output.baseAddress!
        var portable = false
        switch kernel {
        case .automatic:
            if threads <= 1 && batch >= blasBatch {
                unsafe blas(batch: batch, inFeatures: inFeatures, outFeatures: outFeatures, x, w, bias, y, activation)
                return
            }
        case .dot(let p): portable = p
        case .blas:
            unsafe blas(batch: batch, inFeatures: inFeatures, outFeatures: outFeatures, x, w, bias, y, activation)
            return
        }
        let (lo, hi) = activation.bounds
        let b = unsafe bias?.baseAddress
        let flag: Int32 = portable ? 1 : 0
        // Blocks of 8 output features (the kernel's widest block); about 32K multiply-adds
        // per block range at the least before another thread joins.
        let blocks = (outFeatures + 7) / 8
        let grain = max(1, 32768 / max(8 * inFeatures * batch, 1))
        Parallel.forRanges(blocks, threads: threads, grain: grain) { r in
            let o0 = r.lowerBound * 8, o1 = min(r.upperBound * 8, outFeatures)
            unsafe qk_linear(batch, inFeatures, o0, o1, x, inFeatures, w, b, y, outFeatures, lo, hi, flag)
        }
    }

    private static func blas(
        batch: Int, inFeatures: Int, outFeatures: Int, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
        _ bias: UnsafeBufferPointer<Float>?, _ y: UnsafeMutablePointer<Float>, _ activation: Activation
    ) {
        unsafe Gemm.sgemm(
            m: batch, n: outFeatures, k: inFeatures, a: x, lda: inFeatures, transB: true, b: w,
            ldb: inFeatures, c: y, ldc: outFeatures)
        if unsafe bias == nil && activation == .none { return }
        for n in 0..<batch {
            for o in 0..<outFeatures {
                let k = n * outFeatures + o
                unsafe y[k] = activation.apply(y[k] + (bias?[o] ?? 0))
            }
        }
    }
}
