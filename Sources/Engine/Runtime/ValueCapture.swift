import Tensors

/// One node output of a run, as `qtools run --dump` writes it and per-layer `verify` compares it.
package struct CapturedValue: Sendable {
    /// The value's name (the model builder's module path, e.g. `layer1.0.conv1.0.quant_activation`).
    package var name: String
    /// The node that computes it and the node's op (a quantize op carries its function).
    package var node: String
    package var op: Op
    /// The node's non-constant inputs (values of this run, or graph inputs).
    package var inputs: [String]
    /// The value's shape.
    package var shape: [Int]
    /// The values (row-major); nil when the fast engine fused the node into a step whose
    /// output is ``fusedInto``, so the value never existed.
    package var values: [Float]?
    /// The value of the step that computed this one without writing it.
    package var fusedInto: String?
}

/// Runs a graph and keeps every node output it materialises, in execution order.
///
/// - ``fast(_:inputs:threads:options:)``: the fast executor with the plan `qtools run` uses
///   (fusion on; by default a `pad` is not merged into the grid-quantize step next to it, so
///   a quantizer's input exists; the quantized values are the same bits either way): the values
///   are exactly those of a normal run, read from the arena after each step. A node fused into a step (a conv whose BN and ReLU are folded in, an absorbed
///   residual add) has no value of its own: it is listed with ``CapturedValue/fusedInto``.
///   `flatten`/`identity` views get their input's values.
/// - ``reference(_:inputs:)``: ``ReferenceExecutor`` (naive kernels, no fusion): every node.
package enum ValueCapture {
    package static func fast(
        _ graph: Graph, inputs: [String: Tensor], threads: Int = 2, options: PlanOptions = PlanOptions(fuseQuantizePad: false)
    ) throws(InferenceError) -> [CapturedValue] {
        let exec = try Executor(graph: graph, threads: threads, options: options)
        var written: [Int: [Float]] = [:]
        var plan: Plan? = nil
        _ = try exec.run(inputs) { p, i, v in
            plan = p
            written[i] = v
        }
        guard let plan else { return [] }
        let byName = Dictionary(graph.nodes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var out: [CapturedValue] = []
        var valuesOf: [String: [Float]] = [:]
        for name in graph.inputs { valuesOf[name] = inputs[name]?.floats() }
        var viewsOf: [String: [Graph.Node]] = [:]
        let covered = Set(plan.steps.flatMap(\.nodes))
        for n in graph.nodes where !covered.contains(n.name) {
            viewsOf[n.inputs[0], default: []].append(n)
        }
        func appendViews(of v: String) {
            for n in viewsOf[v] ?? [] {
                let y = n.outputs[0]
                valuesOf[y] = valuesOf[v]
                out.append(capture(n, graph, shape: plan.valueShapes[y] ?? [], values: valuesOf[v], fusedInto: nil))
                appendViews(of: y)
            }
        }
        for name in graph.inputs { appendViews(of: name) }
        for (i, step) in plan.steps.enumerated() {
            for name in step.nodes {
                guard let n = byName[name] else { continue }
                let y = n.outputs[0]
                let materialised = y == step.value
                if materialised { valuesOf[y] = written[i] }
                out.append(
                    capture(
                        n, graph, shape: plan.valueShapes[y] ?? [], values: materialised ? written[i] : nil,
                        fusedInto: materialised ? nil : step.value))
            }
            if let v = step.value { appendViews(of: v) }
        }
        return out
    }

    package static func reference(_ graph: Graph, inputs: [String: Tensor]) throws(InferenceError) -> [CapturedValue] {
        var out: [CapturedValue] = []
        _ = try ReferenceExecutor.run(graph, inputs: inputs) { n, shape, values in
            out.append(capture(n, graph, shape: shape, values: values, fusedInto: nil))
        }
        return out
    }

    private static func capture(
        _ n: Graph.Node, _ g: Graph, shape: [Int], values: [Float]?, fusedInto: String?
    )
        -> CapturedValue
    {
        CapturedValue(
            name: n.outputs[0], node: n.name, op: n.op, inputs: n.inputs.filter { g.constants[$0] == nil },
            shape: shape, values: values, fusedInto: fusedInto)
    }
}
