import Engine
import Tensors

/// A quantize function that can also run in training mode: a forward that keeps what its
/// backward needs, the backward itself, and the state a training forward changes.
///
/// In a graph built for training (``ModelBuilder/build(options:stateDict:forTraining:)``) the
/// function's learnable parameters (LSQ and PACT `clip_val`, ...) are graph variables named by
/// their state-dict keys (``parameterKeys``); the trainer passes their current values to
/// ``forwardTrain(_:shape:parameters:)`` in that order and receives their gradients from the
/// backward in the same order.
package protocol TrainableQuantizeFunction: QuantizeFunction {
    /// State-dict keys of the learnable parameters, in the order of `parameters`.
    var parameterKeys: [String] { get }
    /// Throws (naming what) when the training forward or backward is not implemented.
    func checkTrainable() throws
    /// The training-mode forward of `x` (`shape`) with `parameters` (one array per key).
    func forwardTrain(_ x: [Float], shape: [Int], parameters: [[Float]]) throws -> QuantizerTrainPass
    /// ``forwardTrain(_:shape:parameters:)`` over `threads` threads, with the same results
    /// (the default runs the single-threaded one).
    func forwardTrain(_ x: [Float], shape: [Int], parameters: [[Float]], threads: Int) throws -> QuantizerTrainPass
    /// The state-dict tensors one training forward changes (e.g. `iteration` + 1), given the
    /// state dict before the step (key -> tensor); keys the function does not own are absent.
    func stateAfterTrainingForward(_ stateDict: [String: Tensor]) -> [String: Tensor]
}

extension TrainableQuantizeFunction {
    package func forwardTrain(_ x: [Float], shape: [Int], parameters: [[Float]], threads: Int) throws -> QuantizerTrainPass {
        try forwardTrain(x, shape: shape, parameters: parameters)
    }
}

/// One training forward of a quantizer: its output and its backward.
package struct QuantizerTrainPass: Sendable {
    /// The quantized value (the same as the eval forward with the same parameters).
    package var y: [Float]
    /// `dy -> (dx, gradient of each parameter)`.
    package var backward: @Sendable ([Float]) -> (dx: [Float], parameters: [[Float]])
    /// State-dict tensors this forward computed (LQ-Nets `basis` and `auxil`), key -> values
    /// in the tensor's shape as stored; the trainer writes them into the state after the step.
    package var state: [String: [Float]]

    package init(
        y: [Float], backward: @escaping @Sendable ([Float]) -> (dx: [Float], parameters: [[Float]]),
        state: [String: [Float]] = [:]
    ) {
        self.y = y
        self.backward = backward
        self.state = state
    }
}
