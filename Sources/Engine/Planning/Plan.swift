import Tensors

/// Options of the planner (tests turn pieces off to compare paths).
public struct PlanOptions: Sendable, Equatable {
    /// Fold batch norm / affine into conv weights, fuse activations and residual adds into
    /// the producing kernel.
    public var fuse: Bool
    /// Reuse arena buffers of dead values (liveness); off gives every value its own buffer.
    public var reuseBuffers: Bool
    /// Let elementwise steps (and a conv's residual) write over an input that dies there.
    public var inPlace: Bool
    /// Run 3x3 stride-1 ungrouped convs with Winograd F(4x4, 3x3) or F(2x2, 3x3) where it
    /// pays off within ``winogradBudgetBytes`` (``WinogradSelection``; 4x or 2.25x fewer
    /// multiplies; results differ from direct convolution by rounding only).
    public var winograd: Bool
    /// Bytes the Winograd-transformed weights may add to the packed weights
    /// (``WinogradSelection``). The default, 32 MiB, keeps a run within the peak-memory
    /// anchor (weights + 2x activations + 64 MiB) next to the process's own ~25 MiB.
    public var winogradBudgetBytes: Int
    /// The popcount code path of binary convolutions (``Op/binaryConv2d(_:)``); nil takes the
    /// fastest this CPU runs (``BitKernelPath/best``). Planning refuses a path the CPU lacks.
    public var bitKernelPath: BitKernelPath?
    /// With ``fuse``: merge a `pad` into the grid-quantize step next to it (the padded or
    /// unpadded quantizer input is then never written). Off, both values exist, as value
    /// capture needs (``ValueCapture``: the quantizer's input of a near-boundary probe).
    public var fuseQuantizePad: Bool

    /// All optimisations on by default.
    public init(
        fuse: Bool = true, reuseBuffers: Bool = true, inPlace: Bool = true, winograd: Bool = true,
        winogradBudgetBytes: Int = 32 << 20, bitKernelPath: BitKernelPath? = nil, fuseQuantizePad: Bool = true
    ) {
        self.fuseQuantizePad = fuseQuantizePad
        self.fuse = fuse
        self.reuseBuffers = reuseBuffers
        self.inPlace = inPlace
        self.winograd = winograd
        self.winogradBudgetBytes = winogradBudgetBytes
        self.bitKernelPath = bitKernelPath
    }
}

/// One step of a plan: a kernel call plus the graph nodes it covers.
package struct PlannedStep: Sendable {
    /// The resolved call.
    package var call: KernelCall<Span>
    /// Profile key: the op type of the first node (`conv2d`, `maxPool2d`, ...).
    package var opType: String
    /// Names of the graph nodes this step computes (first the primary, then fused ones).
    package var nodes: [String]
    /// The value the step writes (the last covered node's output; nil when written to weights).
    package var value: String? = nil
}

/// A graph compiled for one set of input shapes: kernel steps, packed weights and an arena layout.
///
/// Planning runs shape inference once, folds batch norms into convolutions, fuses
/// activations and residual adds, and assigns every intermediate value an arena region so
/// that buffers of dead values are reused. Running the plan (``Executor``) allocates nothing
/// but the output tensors. The engine's own memory is ``weightBytes`` + ``arenaBytes``.
public struct Plan: Sendable {
    /// The input shapes this plan was made for.
    public let inputShapes: [String: [Int]]
    /// The planner options it was made with.
    public let options: PlanOptions
    /// Shapes of every non-constant value of the graph (inputs, node outputs).
    public let valueShapes: [String: [Int]]
    /// Graph outputs, in order, with their shapes.
    public let outputs: [(name: String, shape: [Int])]
    /// Number of kernel steps (after fusion).
    public var stepCount: Int { steps.count }
    /// Bytes of the arena (activations + conv scratch).
    public var arenaBytes: Int { arenaCount * 4 }
    /// Bytes of the im2col scratch at the end of the arena.
    public var scratchBytes: Int { scratch.count * 4 }
    /// Bytes of the packed (folded) weights.
    public var weightBytes: Int { weights.count * 4 }
    /// Bytes of the largest single activation value (for memory-budget checks).
    public let largestValueBytes: Int
    /// Bytes of the largest activation set: the most activation bytes live at one time
    /// (every value a step reads or writes plus those kept for later steps; see ``Liveness``).
    /// It does not depend on the arena layout; ``MemoryAnchor`` budgets twice it.
    public let largestActivationBytes: Int

    package let steps: [PlannedStep]
    package let weights: [Float]
    package let arenaCount: Int
    package let scratch: Span
    package let inputSpans: [(name: String, span: Span)]
    package let outputSpans: [Span]

    /// Plans `graph` for the given input shapes.
    ///
    /// Planning drops each constant of its copy of the graph once it is packed; a caller that
    /// hands its graph over (`Plan(graph: consume g, ...)`) so has the weights freed as they
    /// are packed, never holding them twice.
    /// - Throws: ``InferenceError`` naming the node whose shapes or attributes are invalid.
    public init(
        graph: consuming Graph, inputShapes: [String: [Int]], options: PlanOptions = PlanOptions()
    )
        throws(InferenceError)
    {
        let order = try graph.validate()
        var shapes: [String: [Int]] = [:]
        for name in graph.inputs {
            guard let s = inputShapes[name] else { throw InferenceError(.missingInput("no shape for input \"\(name)\""), value: name) }
            guard s.allSatisfy({ $0 >= 1 }) else { throw InferenceError(.shapeMismatch("input shape \(s)"), value: name) }
            shapes[name] = s
        }
        for (name, t) in graph.constants { shapes[name] = t.shape }
        for i in order {
            let n = graph.nodes[i]
            do {
                shapes[n.outputs[0]] = try ShapeInference.outputShape(n.op, n.inputs.map { shapes[$0]! })
            } catch { throw error.at(node: n.name) }
        }
        var valueShapes = shapes
        for c in graph.constants.keys { valueShapes[c] = nil }
        var lowering = Lowering(graph: consume graph, order: order, shapes: shapes, options: options)
        let protos = try lowering.run()
        let graph = lowering.graph  // inputs, outputs and nodes; the packed constants are gone
        let liveness = Liveness(
            protos: protos, graph: graph, root: lowering.root, count: { shapes[$0]!.reduce(1, *) })
        let assignment = BufferAssignment(
            protos: protos, graph: graph, shapes: shapes, aliases: lowering.aliases, liveness: liveness,
            options: options)

        self.inputShapes = inputShapes
        self.options = options
        self.valueShapes = valueShapes
        self.outputs = graph.outputs.map { ($0, shapes[$0]!) }
        self.weights = lowering.weights
        self.arenaCount = assignment.arenaCount
        self.scratch = assignment.scratch
        self.largestValueBytes = 4 * (valueShapes.values.map { $0.reduce(1, *) }.max() ?? 0)
        self.largestActivationBytes = 4 * liveness.largestLiveCount
        let spans = assignment.spans
        func resolve(_ o: Operand) throws(InferenceError) -> Span {
            switch o {
            case .weights(let s): return s
            case .value(let v):
                guard let s = spans[lowering.root(v)] else { throw InferenceError(.unknownValue(v), value: v) }
                return s
            }
        }
        var steps: [PlannedStep] = []
        for p in protos {
            var value: String? = nil
            if case .value(let v) = p.call.output { value = v }
            steps.append(PlannedStep(call: try p.call.map(resolve), opType: p.opType, nodes: p.nodes, value: value))
        }
        self.steps = steps
        var ins: [(String, Span)] = []
        for name in graph.inputs { ins.append((name, try resolve(.value(name)))) }
        self.inputSpans = ins
        var outs: [Span] = []
        for name in graph.outputs { outs.append(try resolve(lowering.operand(name))) }
        self.outputSpans = outs
    }

    /// Per-step summary: op type, covered nodes and the arena offset of the output.
    public var stepDescriptions: [String] {
        steps.map { s in
            "\(s.opType) [\(s.nodes.joined(separator: " + "))] -> @\(s.call.output.offset)"
        }
    }
}

/// A step before buffer assignment.
struct ProtoStep {
    var call: KernelCall<Operand>
    var opType: String
    var nodes: [String]
}
