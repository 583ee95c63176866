/// How ``BroadcastMul`` walks `y = a * b`: the output shape with size-1 dims dropped and
/// adjacent dims merged where both inputs step through them alike, and each input's stride
/// per dim (0 where it is broadcast). At least one dim.
package struct BroadcastGeometry: Sendable, Equatable {
    package var shape: [Int]
    package var aStrides: [Int]
    package var bStrides: [Int]

    /// Elements of the output.
    package var count: Int { shape.reduce(1, *) }

    /// The geometry of `a * b` for input shapes `a` and `b` whose NumPy broadcast is `output`.
    package init(a: [Int], b: [Int], output: [Int]) {
        func strides(_ s: [Int]) -> [Int] {
            let padded = [Int](repeating: 1, count: output.count - s.count) + s
            var st = [Int](repeating: 0, count: padded.count)
            var step = 1
            for d in padded.indices.reversed() {
                st[d] = padded[d] == 1 ? 0 : step
                step *= padded[d]
            }
            return st
        }
        let (sa, sb) = (strides(a), strides(b))
        var shape: [Int] = [], aStrides: [Int] = [], bStrides: [Int] = []
        for d in output.indices where output[d] != 1 {
            if let last = shape.indices.last,
                aStrides[last] == sa[d] * output[d], bStrides[last] == sb[d] * output[d]
            {
                shape[last] *= output[d]
                aStrides[last] = sa[d]
                bStrides[last] = sb[d]
            } else {
                shape.append(output[d])
                aStrides.append(sa[d])
                bStrides.append(sb[d])
            }
        }
        if shape.isEmpty { (shape, aStrides, bStrides) = ([1], [0], [0]) }
        self.shape = shape
        self.aStrides = aStrides
        self.bStrides = bStrides
    }

    /// `a` has the output's layout (it may share the output's memory).
    package var aIsFull: Bool { Self.isContiguous(shape, aStrides) }
    /// `b` has the output's layout.
    package var bIsFull: Bool { Self.isContiguous(shape, bStrides) }

    private static func isContiguous(_ shape: [Int], _ strides: [Int]) -> Bool {
        var step = 1
        for d in shape.indices.reversed() {
            if strides[d] != step { return false }
            step *= shape[d]
        }
        return true
    }
}

/// ``Op/mul``: `y = a * b` with broadcasting, row by row over the last (merged) dim. An
/// input with the output's layout may be the output buffer itself. The naive twin is
/// ``ReferenceKernels/mul(_:_:_:_:)``.
package enum BroadcastMul {
    package static func forward(
        _ g: BroadcastGeometry, _ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>,
        output: UnsafeMutableBufferPointer<Float>, threads: Int
    ) {
        precondition(output.count >= g.count)
        let pa = a.baseAddress!, pb = b.baseAddress!, y = output.baseAddress!
        let last = g.shape.count - 1
        let inner = g.shape[last], (ia, ib) = (g.aStrides[last], g.bStrides[last])
        let rows = g.count / inner
        Parallel.forRanges(rows, threads: threads, grain: max(1, 65536 / inner)) { r in
            for row in r {
                // Offsets of the row's first element in a and b (mixed-radix digits of `row`).
                var rest = row, oa = 0, ob = 0
                for d in stride(from: last - 1, through: 0, by: -1) {
                    let digit = rest % g.shape[d]
                    rest /= g.shape[d]
                    oa += digit * g.aStrides[d]
                    ob += digit * g.bStrides[d]
                }
                let xa = unsafe pa + oa, xb = unsafe pb + ob, dst = unsafe y + row * inner
                switch (ia, ib) {
                case (1, 1): for i in 0..<inner { unsafe dst[i] = xa[i] * xb[i] }
                case (1, 0):
                    let v = unsafe xb[0]
                    for i in 0..<inner { unsafe dst[i] = xa[i] * v }
                case (0, 1):
                    let v = unsafe xa[0]
                    for i in 0..<inner { unsafe dst[i] = v * xb[i] }
                default: for i in 0..<inner { unsafe dst[i] = xa[i * ia] * xb[i * ib] }
                }
            }
        }
    }
}
