import Engine
import Formats
import Tensors

/// One entry of a shape the importer computes: a number, or dimension `axis` of a value only
/// known at run time (`x.size(0)` with a dynamic batch).
enum SymbolicDim: Equatable {
    case known(Int)
    case dim(of: String, axis: Int)
}

/// A small integer vector (or scalar) computed from shapes: what `Shape`, `Gather`,
/// `Unsqueeze` and `Concat` make of `x.view(x.size(0), -1)`.
struct SymbolicShape {
    var dims: [SymbolicDim]
    /// A rank-0 value (`Gather` with a scalar index).
    var scalar: Bool
}

/// Constant folding at import: nodes whose inputs are all initializers, `Constant` outputs or
/// shapes are computed here, so torch's `Identity` of a shared initializer, its `Constant`
/// scalars and its shape arithmetic never reach the engine.
extension Importer {
    /// Ops folded when every input is known at import.
    static let foldable: Set<String> = [
        "Constant", "Identity", "Dropout", "Cast", "Unsqueeze", "Squeeze", "Reshape", "Flatten", "Concat", "Gather",
        "Shape", "Add", "Sub", "Mul", "Div", "Max", "Min", "Neg", "Abs", "Sqrt", "Reciprocal", "Floor",
        "Ceil", "Round", "Relu", "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Where", "Sum",
    ]

    func isSymbolic(_ v: String) -> Bool { symbolic[v] != nil || lazyShapes[v] != nil }

    /// Folds `n` when its result is known at import (constants and shapes); false when it
    /// computes on run-time values and must become an engine node.
    mutating func fold(_ n: Onnx_NodeProto) throws(InferenceError) -> Bool {
        let ins = n.input.filter { !$0.isEmpty }
        let out = n.output[0]
        if n.opType == "Constant" {
            try foldConstant(n)
            return true
        }
        if n.opType == "Shape", let x = ins.first, !isConstant(x), !isSymbolic(x) {
            let start = int(n, "start") ?? 0
            let end = int(n, "end")
            if start < 0 || (end ?? 0) < 0 {
                guard let r = rank(of: x) else { throw unsupported(n, "negative start/end on \(x), whose rank is unknown") }
                lazyShapes[out] = (x, start < 0 ? max(start + r, 0) : start, end.map { $0 < 0 ? max($0 + r, 0) : min($0, r) })
            } else {
                lazyShapes[out] = (x, start, end)
            }
            return true
        }
        if ins.contains(where: isSymbolic) {
            if n.opType == "Reshape", let data = ins.first, !isConstant(data), !isSymbolic(data) { return false }
            try foldSymbolic(n)
            return true
        }
        guard Self.foldable.contains(n.opType), !ins.isEmpty, ins.allSatisfy(isConstant) else { return false }
        let v = ins.map { constants[$0]! }
        let allInt = ins.allSatisfy { integerConstants.contains($0) }
        var result: (values: [Float], shape: [Int])
        var integer = allInt
        switch n.opType {
        case "Identity", "Dropout": result = v[0]
        case "Cast":
            let to = int(n, "to") ?? 1
            switch to {
            case 1, 10, 11, 16: result = v[0]; integer = false
            case 9: result = (v[0].values.map { $0 != 0 ? 1 : 0 }, v[0].shape); integer = true
            case 2, 3, 4, 5, 6, 7, 12, 13: result = (v[0].values.map { $0.rounded(.towardZero) }, v[0].shape); integer = true
            default: throw unsupported(n, "cast to type \(to)")
            }
        case "Unsqueeze":
            let axes = try axesOf(n, v)
            let r = v[0].shape.count + axes.count
            let norm = Set(axes.map { $0 < 0 ? $0 + r : $0 })
            guard norm.count == axes.count, norm.allSatisfy({ (0..<r).contains($0) }) else {
                throw unsupported(n, "axes \(axes) for rank \(r)")
            }
            var shape: [Int] = []
            var it = v[0].shape.makeIterator()
            for i in 0..<r { shape.append(norm.contains(i) ? 1 : it.next()!) }
            result = (v[0].values, shape)
        case "Squeeze":
            let axes = try axesOf(n, v)
            let r = v[0].shape.count
            let norm = Set(axes.map { $0 < 0 ? $0 + r : $0 })
            guard norm.allSatisfy({ (0..<r).contains($0) && v[0].shape[$0] == 1 }) else {
                throw unsupported(n, "axes \(axes) of \(v[0].shape)")
            }
            result = (
                v[0].values, v[0].shape.enumerated().filter { axes.isEmpty ? $0.element != 1 : !norm.contains($0.offset) }.map(\.element)
            )
        case "Reshape":
            let shape = try integers(v[1].values, n, "shape")
            // allowzero 1 differs only for a 0 entry (an empty dimension instead of a copy).
            guard (int(n, "allowzero") ?? 0) == 0 || !shape.contains(0) else { throw unsupported(n, "allowzero 1 with a 0 entry") }
            do throws(InferenceError) {
                result = (v[0].values, try ShapeInference.reshaped(v[0].shape, shape))
            } catch { throw InferenceError(error.reason, node: nodeName(n)) }
        case "Flatten":
            let r = v[0].shape.count
            let a0 = int(n, "axis") ?? 1
            let a = a0 < 0 ? a0 + r : a0
            guard (0...r).contains(a) else { throw unsupported(n, "axis \(a0) for rank \(r)") }
            result = (v[0].values, [v[0].shape[..<a].reduce(1, *), v[0].shape[a...].reduce(1, *)])
        case "Concat":
            result = try concatenate(n, v)
        case "Gather":
            result = try gather(n, v[0], v[1])
        case "Shape":
            result = (v[0].shape.map(Float.init), [v[0].shape.count])
            integer = true
        case "Where":
            result = try broadcast(n, v) { $0[0] != 0 ? $0[1] : $0[2] }
            integer = integerConstants.contains(ins[1]) && integerConstants.contains(ins[2])
        case "Sum":
            result = try broadcast(n, v) { $0.reduce(0, +) }
        default:
            if v.count == 1 {
                let f: (Float) -> Float
                switch n.opType {
                case "Neg": f = { -$0 }
                case "Abs": f = { abs($0) }
                case "Sqrt": f = { $0.squareRoot() }
                case "Reciprocal": f = { 1 / $0 }
                case "Floor": f = { $0.rounded(.down) }
                case "Ceil": f = { $0.rounded(.up) }
                case "Round": f = { $0.rounded(.toNearestOrEven) }
                case "Relu": f = { max($0, 0) }
                default: throw unsupported(n, "\(v.count) input(s)")
                }
                result = (v[0].values.map(f), v[0].shape)
            } else {
                guard v.count == 2 else { throw unsupported(n, "\(v.count) inputs") }
                let op = n.opType
                if ["Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual"].contains(op) { integer = true }
                result = try broadcast(n, v) { a in
                    let (x, y) = (a[0], a[1])
                    switch op {
                    case "Add": return x + y
                    case "Sub": return x - y
                    case "Mul": return x * y
                    case "Div": return allInt ? (y == 0 ? 0 : (x / y).rounded(.towardZero)) : x / y
                    case "Max": return max(x, y)
                    case "Min": return min(x, y)
                    case "Equal": return x == y ? 1 : 0
                    case "Greater": return x > y ? 1 : 0
                    case "Less": return x < y ? 1 : 0
                    case "GreaterOrEqual": return x >= y ? 1 : 0
                    default: return x <= y ? 1 : 0
                    }
                }
            }
        }
        constants[out] = result
        if integer { integerConstants.insert(out) } else { integerConstants.remove(out) }
        return true
    }

    /// A `Constant` node's value (`value` tensor, or `value_float(s)` / `value_int(s)`).
    mutating func foldConstant(_ n: Onnx_NodeProto) throws(InferenceError) {
        guard let a = n.attribute.first else { throw unsupported(n, "no value attribute") }
        let out = n.output[0]
        switch a.name {
        case "value":
            let t: Tensor
            do throws(FormatError) { t = try ONNXReader.tensor(a.t) } catch {
                throw unsupported(n, "its value: \(error)")
            }
            constants[out] = (t.floats(), t.shape)
            if !t.dtype.isFloatingPoint { integerConstants.insert(out) }
        case "value_float": constants[out] = ([a.f], [])
        case "value_floats": constants[out] = (a.floats, [a.floats.count])
        case "value_int":
            constants[out] = ([Float(a.i)], [])
            integerConstants.insert(out)
        case "value_ints":
            constants[out] = (a.ints.map { Float($0) }, [a.ints.count])
            integerConstants.insert(out)
        default: throw unsupported(n, "value given as \(a.name)")
        }
    }

    /// The axes of Unsqueeze/Squeeze: the attribute (opset < 13) or the second input.
    func axesOf(_ n: Onnx_NodeProto, _ v: [(values: [Float], shape: [Int])]) throws(InferenceError) -> [Int] {
        if v.count > 1 { return try integers(v[1].values, n, "axes") }
        return ints(n, "axes") ?? []
    }

    /// Element-wise `f` over `v` broadcast as numpy does.
    func broadcast(
        _ n: Onnx_NodeProto, _ v: [(values: [Float], shape: [Int])], _ f: ([Float]) -> Float
    ) throws(InferenceError) -> (values: [Float], shape: [Int]) {
        let r = v.map(\.shape.count).max() ?? 0
        let shapes = v.map { [Int](repeating: 1, count: r - $0.shape.count) + $0.shape }
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            for s in shapes where s[i] != 1 {
                guard out[i] == 1 || out[i] == s[i] else { throw unsupported(n, "shapes \(v.map(\.shape)) do not broadcast") }
                out[i] = s[i]
            }
        }
        let count = out.reduce(1, *)
        guard count <= 1 << 24 else { throw unsupported(n, "folding \(count) elements") }
        let strides = shapes.map { s -> [Int] in
            var st = [Int](repeating: 0, count: r)
            var acc = 1
            for i in stride(from: r - 1, through: 0, by: -1) {
                st[i] = s[i] == 1 ? 0 : acc
                acc *= s[i]
            }
            return st
        }
        var values = [Float](repeating: 0, count: count)
        var args = [Float](repeating: 0, count: v.count)
        for e in 0..<count {
            var rest = e
            var offsets = [Int](repeating: 0, count: v.count)
            for i in stride(from: r - 1, through: 0, by: -1) {
                let c = rest % out[i]
                rest /= out[i]
                for k in v.indices { offsets[k] += c * strides[k][i] }
            }
            for k in v.indices { args[k] = v[k].values[offsets[k]] }
            values[e] = f(args)
        }
        return (values, out)
    }

    /// Constant `Concat` along its axis.
    func concatenate(_ n: Onnx_NodeProto, _ v: [(values: [Float], shape: [Int])]) throws(InferenceError) -> (values: [Float], shape: [Int])
    {
        let r = v[0].shape.count
        let a0 = int(n, "axis") ?? 0
        let a = a0 < 0 ? a0 + r : a0
        guard (0..<r).contains(a),
            v.allSatisfy({ $0.shape.count == r && $0.shape[..<a] == v[0].shape[..<a] && $0.shape[(a + 1)...] == v[0].shape[(a + 1)...] })
        else {
            throw unsupported(n, "shapes \(v.map(\.shape)) on axis \(a0)")
        }
        let outer = v[0].shape[..<a].reduce(1, *)
        var values: [Float] = []
        for o in 0..<outer {
            for t in v {
                let block = t.shape[a...].reduce(1, *)
                values += t.values[(o * block)..<((o + 1) * block)]
            }
        }
        var shape = v[0].shape
        shape[a] = v.map { $0.shape[a] }.reduce(0, +)
        return (values, shape)
    }

    /// Constant `Gather` along its axis.
    func gather(
        _ n: Onnx_NodeProto, _ data: (values: [Float], shape: [Int]), _ idx: (values: [Float], shape: [Int])
    ) throws(InferenceError) -> (values: [Float], shape: [Int]) {
        let r = data.shape.count
        let a0 = int(n, "axis") ?? 0
        let a = a0 < 0 ? a0 + r : a0
        guard (0..<r).contains(a) else { throw unsupported(n, "axis \(a0) for rank \(r)") }
        let dim = data.shape[a]
        let indices = try integers(idx.values, n, "indices").map { $0 < 0 ? $0 + dim : $0 }
        guard indices.allSatisfy({ (0..<dim).contains($0) }) else { throw unsupported(n, "indices outside 0..<\(dim)") }
        let outer = data.shape[..<a].reduce(1, *), inner = data.shape[(a + 1)...].reduce(1, *)
        var values: [Float] = []
        for o in 0..<outer {
            for i in indices {
                let s = (o * dim + i) * inner
                values += data.values[s..<(s + inner)]
            }
        }
        return (values, Array(data.shape[..<a]) + idx.shape + Array(data.shape[(a + 1)...]))
    }

    // MARK: Shapes

    /// The entries of a symbolic or constant integer vector `v`.
    mutating func symbolicDims(_ v: String, _ n: Onnx_NodeProto) throws(InferenceError) -> SymbolicShape {
        if let s = symbolic[v] { return s }
        if let l = lazyShapes[v] {
            let end: Int
            if let e = l.end {
                end = e
            } else {
                guard let r = rank(of: l.of) else {
                    throw unsupported(n, "needs the whole shape of \(l.of), whose rank is unknown")
                }
                end = r
            }
            return SymbolicShape(dims: (l.start..<max(end, l.start)).map { .dim(of: l.of, axis: $0) }, scalar: false)
        }
        if let c = constants[v] {
            guard c.shape.count <= 1 else { throw unsupported(n, "\(v) of shape \(c.shape) is not a shape vector") }
            return SymbolicShape(dims: try integers(c.values, n, v).map { .known($0) }, scalar: c.shape.isEmpty)
        }
        throw unsupported(n, "\(v) is computed at run time (only shapes and constants fold)")
    }

    /// Shape arithmetic on `Shape` outputs: Gather, Unsqueeze, Squeeze, Concat, Cast, Identity,
    /// and scalar Add/Sub/Mul/Div once every entry is known.
    mutating func foldSymbolic(_ n: Onnx_NodeProto) throws(InferenceError) {
        let ins = n.input.filter { !$0.isEmpty }
        let out = n.output[0]
        var result: SymbolicShape
        switch n.opType {
        case "Identity", "Cast":
            result = try symbolicDims(ins[0], n)
        case "Gather":
            guard (int(n, "axis") ?? 0) == 0, let c = constants[ins[1]], c.shape.count <= 1 else {
                throw unsupported(n, "only a constant index on axis 0 of a shape folds")
            }
            let indices = try integers(c.values, n, "indices")
            var dims: [SymbolicDim] = []
            if let l = lazyShapes[ins[0]], l.end == nil, indices.allSatisfy({ $0 >= 0 }) {
                // Dimension k of a value of unknown rank: the engine checks it exists.
                dims = indices.map { .dim(of: l.of, axis: l.start + $0) }
            } else {
                let s = try symbolicDims(ins[0], n)
                for i in indices {
                    let k = i < 0 ? i + s.dims.count : i
                    guard s.dims.indices.contains(k) else { throw unsupported(n, "index \(i) of a shape of \(s.dims.count)") }
                    dims.append(s.dims[k])
                }
            }
            result = SymbolicShape(dims: dims, scalar: c.shape.isEmpty)
        case "Unsqueeze":
            let s = try symbolicDims(ins[0], n)
            let axes = ins.count > 1 ? try integers(constants[try constant(ins[1], n)]!.values, n, "axes") : (ints(n, "axes") ?? [])
            guard s.scalar, axes == [0] || axes == [-1] else { throw unsupported(n, "axes \(axes) of a shape value") }
            result = SymbolicShape(dims: s.dims, scalar: false)
        case "Squeeze":
            let s = try symbolicDims(ins[0], n)
            guard !s.scalar, s.dims.count == 1 else { throw unsupported(n, "a shape of \(s.dims.count) entries") }
            result = SymbolicShape(dims: s.dims, scalar: true)
        case "Concat":
            var dims: [SymbolicDim] = []
            for v in ins {
                let s = try symbolicDims(v, n)
                guard !s.scalar else { throw unsupported(n, "a scalar input \(v)") }
                dims += s.dims
            }
            result = SymbolicShape(dims: dims, scalar: false)
        default:
            throw unsupported(n, "computes on the shape of a value only known at run time")
        }
        // Fully known: an ordinary integer constant.
        let known = result.dims.compactMap { d -> Int? in if case .known(let k) = d { k } else { nil } }
        if known.count == result.dims.count {
            constants[out] = (known.map(Float.init), result.scalar ? [] : [known.count])
            integerConstants.insert(out)
        } else {
            symbolic[out] = result
        }
    }

    /// `Reshape` of a run-time value to a constant or symbolic shape: an engine reshape whose
    /// entries are sizes, `-1`, or `0` for a dimension copied in place (`x.size(0)`).
    mutating func reshape(_ n: Onnx_NodeProto) throws(InferenceError) {
        let data = n.input[0]
        let s = try symbolicDims(n.input[1], n)
        // allowzero 1 differs only for a literal 0 entry (an empty dimension instead of a copy).
        if (int(n, "allowzero") ?? 0) != 0, s.dims.contains(.known(0)) { throw unsupported(n, "allowzero 1 with a 0 entry") }
        var shape: [Int] = []
        for (i, d) in s.dims.enumerated() {
            switch d {
            case .known(let k):
                guard k >= -1 else { throw unsupported(n, "shape entry \(k)") }
                shape.append(k)
            case .dim(let v, let axis):
                guard v == data, axis == i else {
                    throw unsupported(
                        n,
                        "shape entry \(i) is dimension \(axis) of \(v); only dimension \(i) of the reshaped value \(data) itself can be taken at run time"
                    )
                }
                shape.append(0)
            }
        }
        add(.reshape(shape: shape), n, [data])
    }

    /// The rank of `v`: declared (graph inputs, outputs, `value_info`), else found by planning
    /// the nodes imported so far for the declared input shape.
    func rank(of v: String) -> Int? {
        if let r = ranks[v] { return r }
        if let c = constants[v] { return c.shape.count }
        var shapes = probeInputs
        func shape(_ x: String) -> [Int]? {
            if let s = shapes[x] { return s }
            if let c = constants[x] { return c.shape }
            if let p = programOf[x] { return shapes[programs[p].root] }
            return nil
        }
        for node in nodes {
            var ins: [[Int]] = []
            for i in node.inputs {
                guard let s = shape(i) else { break }
                ins.append(s)
            }
            guard ins.count == node.inputs.count, let o = try? ShapeInference.outputShape(node.op, ins) else { continue }
            shapes[node.outputs[0]] = o
        }
        return shape(v)?.count
    }
}
