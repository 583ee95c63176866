import Engine

extension ElementwiseProgram.Step {
    /// The registers the step reads.
    var operands: [Int] {
        switch self {
        case .input, .constant: return []
        case .unary(_, let a), .castInteger(let a, _, _): return [a]
        case .binary(_, let a, let b): return [a, b]
        case .select(let c, let a, let b): return [c, a, b]
        case .clip(let a, let lo, let hi): return [a] + [lo, hi].compactMap { $0 }
        case .quantize(let a, let s, let z, _, _), .dequantize(let a, let s, let z): return [a, s] + (z.map { [$0] } ?? [])
        case .sum(let regs): return regs
        }
    }

    /// The same step reading registers renumbered by `f`.
    func renumbered(_ f: (Int) -> Int) -> Self {
        switch self {
        case .input, .constant: return self
        case .unary(let op, let a): return .unary(op, f(a))
        case .castInteger(let a, let lo, let hi): return .castInteger(f(a), lo: lo, hi: hi)
        case .binary(let op, let a, let b): return .binary(op, f(a), f(b))
        case .select(let c, let a, let b): return .select(f(c), f(a), f(b))
        case .clip(let a, let lo, let hi): return .clip(f(a), lo: lo.map(f), hi: hi.map(f))
        case .quantize(let a, let s, let z, let lo, let hi): return .quantize(f(a), scale: f(s), zeroPoint: z.map(f), lo: lo, hi: hi)
        case .dequantize(let a, let s, let z): return .dequantize(f(a), scale: f(s), zeroPoint: z.map(f))
        case .sum(let regs): return .sum(regs.map(f))
        }
    }
}

extension ElementwiseProgram {
    /// The program computing register `output` with only the steps it depends on (the input
    /// step stays register 0): one imported program read at several values (XNOR's sign and
    /// `|x|`) becomes one such program per value.
    func pruned(to output: Int, name: String) -> ElementwiseProgram {
        var live = Set([0, output])
        for k in stride(from: output, through: 0, by: -1) where live.contains(k) {
            live.formUnion(steps[k].operands)
        }
        var p = ElementwiseProgram(name: name)
        p.steps = []
        var map: [Int: Int] = [:]
        for k in steps.indices where live.contains(k) {
            map[k] = p.steps.count
            p.steps.append(steps[k].renumbered { map[$0]! })
        }
        p.output = map[output]!
        return p
    }
}
