/// When each arena value of a lowered graph is live, in step indices, and the largest
/// activation set: the most activation floats live at one time.
///
/// A value is the root of an alias chain (`flatten` and `identity` outputs are their input).
/// It is born at the step that writes it (graph inputs before step 0) and dies after its last
/// reader (graph outputs never die; a value nothing reads dies at its own step). It is live at
/// every step from its birth to its death, both included: at step `i` that is every value the
/// step reads or writes plus every value written earlier and read later (a skip connection).
/// A step's input and output both count even when the planner writes the output over the
/// input (in place): the set is a property of the computation, not of the arena layout.
/// Values fused away (a conv's batch norm and ReLU) are never materialised and never count;
/// conv scratch is not an activation.
///
/// For a plain CNN the largest set is the largest input + output of one layer; for a ResNet
/// block it also holds the block's input, which the residual add reads at the end.
struct Liveness {
    /// Step index of each root value's last reader (`steps` for graph outputs).
    var lastUse: [String: Int] = [:]
    /// The largest total, over steps, of the element counts of the values live at that step.
    var largestLiveCount = 0

    init(protos: [ProtoStep], graph: Graph, root: (String) -> String, count: (String) -> Int) {
        func roots(_ ops: [Operand]) -> [String] {
            ops.compactMap { if case .value(let v) = $0 { return root(v) } else { return nil } }
        }
        let end = protos.count
        var born: [String: Int] = [:]
        for name in graph.inputs { born[root(name)] = 0 }
        for (i, p) in protos.enumerated() {
            for r in roots(p.call.reads) { lastUse[r] = i }
            if case .value(let out) = p.call.output, born[root(out)] == nil { born[root(out)] = i }
        }
        for o in graph.outputs { lastUse[root(o)] = end }

        // live[i] = floats live at step i: +count at birth, -count after death.
        var delta = [Int](repeating: 0, count: end + 2)
        for (v, b) in born {
            let death = min(max(lastUse[v] ?? b, b), max(end - 1, 0))
            delta[b] += count(v)
            delta[death + 1] -= count(v)
        }
        var live = 0
        for i in 0..<max(end, 1) {
            live += delta[i]
            largestLiveCount = max(largestLiveCount, live)
        }
    }
}
