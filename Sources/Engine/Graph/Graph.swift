import Tensors

/// A dataflow graph of named values: runtime inputs, constants (weights) and node outputs.
///
/// Value names are free-form strings, so ONNX value and initializer names and state-dict keys
/// (`layer1.0.conv1.weight`) survive import and export. Nodes may be added in any order;
/// ``validate()`` checks the graph and returns a topological order.
///
/// ```swift
/// var g = Graph()
/// g.addInput("x")
/// g.addConstant("conv.weight", Tensor(floats: w, shape: [8, 3, 3, 3]))
/// let y = g.add(.conv2d(.init(padding: 1)), name: "conv", inputs: ["x", "conv.weight"])
/// g.add(.relu, name: "relu", inputs: [y])
/// g.markOutput("relu")
/// ```
public struct Graph: Sendable {
    /// One operation: reads `inputs`, writes `outputs` (value names).
    public struct Node: Sendable, Equatable {
        /// Unique node name (used in errors and profiles).
        public var name: String
        /// The operation and its attributes.
        public var op: Op
        /// Input value names, in the op's order.
        public var inputs: [String]
        /// Output value names (every current op has one).
        public var outputs: [String]

        /// Creates a node.
        public init(name: String, op: Op, inputs: [String], outputs: [String]) {
            self.name = name
            self.op = op
            self.inputs = inputs
            self.outputs = outputs
        }
    }

    /// Runtime inputs, in order.
    public private(set) var inputs: [String] = []
    /// Graph outputs, in order.
    public private(set) var outputs: [String] = []
    /// Constant values (weights, BN statistics), float32; includes the ``variables``.
    public private(set) var constants: [String: Tensor] = [:]
    /// Names of the constants that are variables: state a trainer updates (weights, quantizer
    /// parameters, BN statistics). Inference plans treat them as constants.
    public private(set) var variables: Set<String> = []
    /// Nodes in insertion order (not necessarily topological).
    public private(set) var nodes: [Node] = []

    /// An empty graph.
    public init() {}

    /// Declares a runtime input.
    public mutating func addInput(_ name: String) { inputs.append(name) }

    /// Declares a constant value (replaces an existing constant of that name).
    public mutating func addConstant(_ name: String, _ tensor: Tensor) {
        constants[name] = tensor
        variables.remove(name)
    }

    /// Declares a variable: a constant value that a trainer may update (replaces an existing
    /// constant or variable of that name).
    public mutating func addVariable(_ name: String, _ tensor: Tensor) {
        constants[name] = tensor
        variables.insert(name)
    }

    /// Removes a constant (the planner drops each weight once it is packed).
    mutating func removeConstant(_ name: String) {
        constants[name] = nil
        variables.remove(name)
    }

    /// Appends a node with one output named `output` (default: the node name); returns the output name.
    @discardableResult
    public mutating func add(
        _ op: Op, name: String, inputs: [String], output: String? = nil
    )
        -> String
    {
        let out = output ?? name
        nodes.append(Node(name: name, op: op, inputs: inputs, outputs: [out]))
        return out
    }

    /// Appends a prepared node.
    public mutating func add(_ node: Node) { nodes.append(node) }

    /// Replaces the op of the node named `name` (a diagnostic rerun of a model with one op
    /// changed); false when there is no such node.
    package mutating func replaceOp(ofNode name: String, with op: Op) -> Bool {
        guard let k = nodes.firstIndex(where: { $0.name == name }) else { return false }
        nodes[k].op = op
        return true
    }

    /// Declares a graph output.
    public mutating func markOutput(_ name: String) { outputs.append(name) }

    /// A named value: a runtime input, a constant, or a node output.
    public struct Value: Sendable {
        /// The value's name (ONNX value name, state-dict key, ...).
        public var name: String
        /// The tensor, for constants and variables.
        public var constant: Tensor?
        /// True for a variable (see ``Graph/variables``).
        public var isVariable: Bool = false
    }

    /// Every value: inputs, then constants (sorted by name), then node outputs in node order.
    public var values: [Value] {
        inputs.map { Value(name: $0, constant: nil) }
            + constants.keys.sorted().map {
                Value(name: $0, constant: constants[$0], isVariable: variables.contains($0))
            }
            + nodes.flatMap { $0.outputs.map { Value(name: $0, constant: nil) } }
    }

    /// How often each value is read: as a node input (once per occurrence) or as a graph output.
    public var readCounts: [String: Int] {
        var counts: [String: Int] = [:]
        for n in nodes { for v in n.inputs { counts[v, default: 0] += 1 } }
        for o in outputs { counts[o, default: 0] += 1 }
        return counts
    }

    /// The node that produces `value`, if any.
    public func producer(of value: String) -> Node? {
        nodes.first { $0.outputs.contains(value) }
    }

    /// Checks names, arity, constants and acyclicity; returns node indices in topological order.
    ///
    /// Ties keep insertion order, so a graph built in execution order runs in that order.
    /// With `computedWeights` a weight input (``Op/constantInputs``) may be a node's output
    /// (a weight transformed by a node, as in a training graph); plans still require constants.
    /// - Throws: ``InferenceError`` naming the offending node or value.
    public func validate(computedWeights: Bool = false) throws(InferenceError) -> [Int] {
        var producerOf: [String: Int] = [:]  // -1: input or constant
        var nodeNames = Set<String>()
        for name in inputs {
            guard producerOf[name] == nil else { throw InferenceError(.duplicateName(name), value: name) }
            producerOf[name] = -1
        }
        for (name, t) in constants.sorted(by: { $0.key < $1.key }) {
            guard producerOf[name] == nil else { throw InferenceError(.duplicateName(name), value: name) }
            guard t.dtype == .float32 else {
                throw InferenceError(.unsupportedDType("\(t.dtype.rawValue) constant"), value: name)
            }
            producerOf[name] = -1
        }
        for (i, n) in nodes.enumerated() {
            guard nodeNames.insert(n.name).inserted else {
                throw InferenceError(.duplicateName(n.name), node: n.name)
            }
            guard n.outputs.count == 1 else {
                throw InferenceError(.arity(what: "outputs", expected: "1", found: n.outputs.count), node: n.name)
            }
            for o in n.outputs {
                guard producerOf[o] == nil else { throw InferenceError(.duplicateName(o), node: n.name, value: o) }
                producerOf[o] = i
            }
        }
        for n in nodes {
            let r = n.op.inputArity
            guard r.contains(n.inputs.count) else {
                let e =
                    r.upperBound == Int.max
                    ? "at least \(r.lowerBound)" : r.lowerBound == r.upperBound ? "\(r.lowerBound)" : "\(r.lowerBound)...\(r.upperBound)"
                throw InferenceError(.arity(what: "inputs to \(n.op.typeName)", expected: e, found: n.inputs.count), node: n.name)
            }
            for v in n.inputs where producerOf[v] == nil {
                throw InferenceError(.unknownValue(v), node: n.name, value: v)
            }
            for k in n.op.constantInputs where !computedWeights && k < n.inputs.count && constants[n.inputs[k]] == nil {
                throw InferenceError(.notConstant(n.inputs[k]), node: n.name, value: n.inputs[k])
            }
        }
        for o in outputs where producerOf[o] == nil {
            throw InferenceError(.unknownValue(o), value: o)
        }
        // Kahn's algorithm; the ready set is kept sorted by insertion index.
        var pending = [Int](repeating: 0, count: nodes.count)
        var consumers = [[Int]](repeating: [], count: nodes.count)
        for (i, n) in nodes.enumerated() {
            for v in n.inputs {
                if let p = producerOf[v], p >= 0 {
                    pending[i] += 1
                    consumers[p].append(i)
                }
            }
        }
        var ready = MinQueue(nodes.indices.filter { pending[$0] == 0 })
        var order: [Int] = []
        order.reserveCapacity(nodes.count)
        while let i = ready.pop() {
            order.append(i)
            for c in consumers[i] {
                pending[c] -= 1
                if pending[c] == 0 { ready.push(c) }
            }
        }
        if order.count < nodes.count, let stuck = nodes.indices.first(where: { pending[$0] > 0 }) {
            throw InferenceError(.cycle, node: nodes[stuck].name)
        }
        return order
    }
}

/// A small binary min-heap of node indices.
private struct MinQueue {
    private var heap: [Int] = []
    init(_ items: [Int]) { for i in items { push(i) } }
    mutating func push(_ x: Int) {
        heap.append(x)
        var c = heap.count - 1
        while c > 0 {
            let p = (c - 1) / 2
            if heap[p] <= heap[c] { break }
            heap.swapAt(p, c)
            c = p
        }
    }
    mutating func pop() -> Int? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var p = 0
            while true {
                let l = 2 * p + 1, r = l + 1
                var m = p
                if l < heap.count && heap[l] < heap[m] { m = l }
                if r < heap.count && heap[r] < heap[m] { m = r }
                if m == p { break }
                heap.swapAt(p, m)
                p = m
            }
        }
        return top
    }
}
