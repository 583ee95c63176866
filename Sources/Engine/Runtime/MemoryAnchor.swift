/// The peak-memory anchor of issue #3: the peak resident memory of a run (the whole
/// process) should be at most `weights + 2 x largest activation set + 64 MiB`.
///
/// - ``weightBytes``: the model's parameter bytes as float32, 4 bytes per element of every
///   graph constant (conv and linear weights and biases, batch-norm parameters and running
///   statistics, quantizer parameters), whatever dtype the checkpoint stores them in
///   (``Graph/parameterBytes``).
/// - ``largestActivationBytes``: the most activation bytes live at one time for the run's
///   input shape (``Plan/largestActivationBytes``: for a plain CNN the largest input + output
///   of one layer; a ResNet block adds its input, kept for the residual add).
/// - ``overheadBytes``: 64 MiB for the process itself (Swift runtime, Foundation, OpenBLAS,
///   argument parsing, the input and output tensors, JSON).
///
/// The engine's own memory is the plan's packed weights (the parameters folded, 3x3 weights
/// run by Winograd stored at 16/9 of their size) plus its arena (activations in reused
/// buffers plus the im2col / Winograd scratch of the largest conv).
public struct MemoryAnchor: Sendable, Equatable {
    /// The allowance for the process itself: 64 MiB.
    public static let overheadBytes = 64 << 20

    /// The model's parameters as float32, in bytes.
    public var weightBytes: Int
    /// The largest activation set, in bytes.
    public var largestActivationBytes: Int

    /// The anchor: `weightBytes + 2 * largestActivationBytes + overheadBytes`.
    public var totalBytes: Int { weightBytes + 2 * largestActivationBytes + Self.overheadBytes }

    public init(weightBytes: Int, largestActivationBytes: Int) {
        self.weightBytes = weightBytes
        self.largestActivationBytes = largestActivationBytes
    }

    /// The anchor of running `graph` with `plan` (made for the run's input shapes).
    public init(graph: Graph, plan: Plan) {
        self.init(weightBytes: graph.parameterBytes, largestActivationBytes: plan.largestActivationBytes)
    }

    /// True when a measured peak resident size is within the anchor.
    public func isMet(byPeak peakBytes: Int) -> Bool { peakBytes <= totalBytes }
}

extension Graph {
    /// Bytes of every constant as float32 (4 per element, whatever its stored dtype), plus the
    /// parameters binary convolutions hold in their attributes (packed planes, multipliers, biases).
    public var parameterBytes: Int {
        4 * constants.values.reduce(0) { $0 + $1.elementCount }
            + nodes.reduce(0) { sum, n in
                if case .binaryConv2d(let a) = n.op { return sum + a.parameterBytes }
                return sum
            }
    }
}
