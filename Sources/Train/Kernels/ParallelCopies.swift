import Engine

/// Multi-threaded forms of the copying ops of the training pass: constant padding and its
/// backward, element-wise addition (forward and gradient accumulation). Pure copies and
/// single float additions, so the results are bit-identical to their twins
/// (``ReferenceKernels/pad(_:planes:height:width:padding:value:)``,
/// ``LayerGradients/padBackward(dy:planes:height:width:padding:)``,
/// ``ReferenceKernels/add(_:_:)``) at any thread count.
enum ParallelCopies {
    /// `x [planes, H, W]` padded by `p` with `value`.
    static func pad(_ x: [Float], planes: Int, height: Int, width: Int, padding p: Padding2d, value: Float, threads: Int) -> [Float] {
        let oh = height + p.top + p.bottom, ow = width + p.left + p.right
        var y = [Float](repeating: value, count: planes * oh * ow)
        unsafe x.withUnsafeBufferPointer { px in
            unsafe y.withUnsafeMutableBufferPointer { py in
                let (xs, ys) = unsafe (px.baseAddress!, py.baseAddress!)
                Parallel.forRanges(planes, threads: threads, grain: 16) { range in
                    for q in range {
                        for iy in 0..<height {
                            unsafe (ys + (q * oh + iy + p.top) * ow + p.left).update(from: xs + (q * height + iy) * width, count: width)
                        }
                    }
                }
            }
        }
        return y
    }

    /// The gradient of ``pad(_:planes:height:width:padding:value:threads:)``: the unpadded window of `dy`.
    static func padBackward(dy: [Float], planes: Int, height: Int, width: Int, padding p: Padding2d, threads: Int) -> [Float] {
        let oh = height + p.top + p.bottom, ow = width + p.left + p.right
        var dx = [Float](repeating: 0, count: planes * height * width)
        unsafe dy.withUnsafeBufferPointer { pdy in
            unsafe dx.withUnsafeMutableBufferPointer { pdx in
                let (dys, dxs) = unsafe (pdy.baseAddress!, pdx.baseAddress!)
                Parallel.forRanges(planes, threads: threads, grain: 16) { range in
                    for q in range {
                        for iy in 0..<height {
                            unsafe (dxs + (q * height + iy) * width).update(from: dys + (q * oh + iy + p.top) * ow + p.left, count: width)
                        }
                    }
                }
            }
        }
        return dx
    }

    /// `a + b` element-wise.
    static func add(_ a: [Float], _ b: [Float], threads: Int) -> [Float] {
        precondition(a.count == b.count)
        var y = [Float](repeating: 0, count: a.count)
        unsafe a.withUnsafeBufferPointer { pa in
            unsafe b.withUnsafeBufferPointer { pb in
                unsafe y.withUnsafeMutableBufferPointer { py in
                    let (xa, xb, ys) = unsafe (pa.baseAddress!, pb.baseAddress!, py.baseAddress!)
                    Parallel.forRanges(a.count, threads: threads, grain: 1 << 14) { range in
                        for i in range { unsafe ys[i] = xa[i] + xb[i] }
                    }
                }
            }
        }
        return y
    }

    /// `a = a + b` element-wise, in place (a gradient accumulating a second reader's share).
    static func addInPlace(_ a: inout [Float], _ b: [Float], threads: Int) {
        precondition(a.count == b.count)
        unsafe b.withUnsafeBufferPointer { pb in
            unsafe a.withUnsafeMutableBufferPointer { pa in
                let (xa, xb) = unsafe (pa.baseAddress!, pb.baseAddress!)
                Parallel.forRanges(b.count, threads: threads, grain: 1 << 14) { range in
                    for i in range { unsafe xa[i] = xa[i] + xb[i] }
                }
            }
        }
    }

    /// The first element of `a` that is not finite, scanning 16 lanes at a time (`v * 0` is 0
    /// for every finite `v` and NaN for infinities and NaN) and only then element by element.
    static func firstNonFinite(_ a: [Float]) -> Float? {
        typealias V = SIMD16<Float>
        let clean = unsafe a.withUnsafeBufferPointer { p -> Bool in
            var acc = V()
            var i = 0
            while i + 16 <= p.count {
                acc += unsafe UnsafeRawPointer(p.baseAddress! + i).loadUnaligned(as: V.self) * 0
                i += 16
            }
            while i < p.count {
                acc[0] += unsafe p[i] * 0
                i += 1
            }
            return acc == V()
        }
        return clean ? nil : a.first { !$0.isFinite }
    }
}
