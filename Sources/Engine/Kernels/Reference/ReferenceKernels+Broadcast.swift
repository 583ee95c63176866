/// Naive twins of ``ReduceMean`` and ``BroadcastMul``, written from the shapes alone
/// (NumPy's rules), not from the fast kernels' geometry.
extension ReferenceKernels {
    /// Mean of `x` (of `shape`) over `axes` (non-negative, any set) with kept dims: each
    /// element is added in double to the output element its index maps to.
    package static func reduceMean(_ x: [Float], shape: [Int], axes: [Int]) -> [Float] {
        let reducedShape = shape.indices.map { axes.contains($0) ? 1 : shape[$0] }
        let n = axes.reduce(1) { $0 * shape[$1] }
        var acc = [Double](repeating: 0, count: reducedShape.reduce(1, *))
        for i in x.indices {
            let index = multiIndex(i, shape)
            let o = flatIndex(index.indices.map { axes.contains($0) ? 0 : index[$0] }, reducedShape)
            acc[o] += Double(x[i])
        }
        return acc.map { Float($0 / Double(n)) }
    }

    /// `a * b` with NumPy broadcasting (shapes right-aligned; a dim of 1 repeats).
    package static func mul(_ a: [Float], _ aShape: [Int], _ b: [Float], _ bShape: [Int]) -> [Float] {
        let rank = max(aShape.count, bShape.count)
        let pa = [Int](repeating: 1, count: rank - aShape.count) + aShape
        let pb = [Int](repeating: 1, count: rank - bShape.count) + bShape
        let out = zip(pa, pb).map { max($0, $1) }
        return (0..<out.reduce(1, *)).map { i in
            let index = multiIndex(i, out)
            let ia = flatIndex(index.indices.map { pa[$0] == 1 ? 0 : index[$0] }, pa)
            let ib = flatIndex(index.indices.map { pb[$0] == 1 ? 0 : index[$0] }, pb)
            return a[ia] * b[ib]
        }
    }

    private static func multiIndex(_ flat: Int, _ shape: [Int]) -> [Int] {
        var rest = flat
        var index = [Int](repeating: 0, count: shape.count)
        for d in shape.indices.reversed() {
            index[d] = rest % shape[d]
            rest /= shape[d]
        }
        return index
    }

    private static func flatIndex(_ index: [Int], _ shape: [Int]) -> Int {
        zip(index, shape).reduce(0) { $0 * $1.1 + $1.0 }
    }
}
