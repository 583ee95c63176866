import Engine
import Tensors

/// A model built from a QTool config and a state dict: the graph plus what `trace` and the
/// tests need to know about its layers.
package struct BuiltModel: Sendable {
    /// One convolution or linear layer (a QTool module such as `layer1.0.conv1.0`).
    package struct Layer: Sendable, Equatable {
        /// Module path (state-dict prefix).
        package var name: String
        /// `conv` or `linear`.
        package var kind: String
        /// Graph node of the multiply-accumulate op (conv2d / linear).
        package var node: String
        /// Value the module receives (before padding and activation quantization).
        package var input: String
        /// Value the module returns (after the output quantizer, if any).
        package var output: String
        /// Bits of the quantized input (nil: full precision).
        package var activationBits: Double?
        /// Bits of the quantized weight (nil: full precision).
        package var weightBits: Double?
        /// Learnable elements (weight, bias, quantizer clips).
        package var parameters: Int
        /// The weight quantizer (already applied to the graph's weight constant), for exporters.
        package var weightQuantizer: Quantizer? = nil
        /// The input (activation) quantizer, for the packer (nil: none or full precision).
        package var activationQuantizer: Quantizer? = nil
        /// The module's zero padding (`pads`; 0 for linear layers).
        package var padding: Int = 0
        /// `--padding_after_quant`: the input is padded after its quantizer, not before.
        package var paddingAfterQuant: Bool = false
    }

    /// The graph: input value ``input`` `[N, inputChannels, S, S]`, output value ``output`` `[N, classes]`.
    package var graph: Graph
    /// `--model`.
    package var model: String
    /// Name of the graph input.
    package var input: String = "input"
    /// Name of the logits value.
    package var output: String = "logits"
    /// Input resolution S (`input_size`).
    package var inputSize: Int
    /// Input channels C (3 for every QTool network; an imported ONNX graph may declare others).
    package var inputChannels: Int = 3
    /// An imported graph's declared input shape (0 for a dimension it leaves open); nil for
    /// the QTool networks, which take `[N, 3, S, S]`. See `BuiltModel+Input.swift`.
    package var declaredInputShape: [Int]? = nil
    /// Quantizers whose config bit width has no effect: LSQ computes with the checkpoint's
    /// `level_num` (as QTool does), one line per quantizer (`layer1.0.conv1.0 activation: ...`).
    package var ignoredLevels: [String] = []
    /// Classes.
    package var numClasses: Int
    /// Conv and linear layers in build order.
    package var layers: [Layer]
    /// Learnable parameter elements per graph node (conv/linear/BN/PReLU/affine/quantize).
    package var nodeParameters: [String: Int]
    /// State-dict keys the model bound, in bind order.
    package var boundKeys: [String]
    /// Random builds: every tensor a checkpoint of this model holds (key, shape, needed by the
    /// forward), in state-dict order of the build (see ``StateDictBinder/declared``).
    package var declaredTensors: [(key: String, shape: [Int], required: Bool)] = []
    /// A packed file built with its planes kept (``PackedModelBuilder/build(options:manifest:tensors:planes:)``):
    /// the planes of each packed weight, by the name of its weight constant, which is then a
    /// zero placeholder until ``BinaryConvLowering/lower(_:planes:)`` replaces it.
    package var packedWeights: [String: WeightPlanes] = [:]

    /// The input shape for a batch: `[batch, inputChannels, inputSize, inputSize]`.
    package func inputShape(batch: Int = 1, size: Int? = nil) -> [Int] {
        if let d = declaredInputShape, d.count != 4 { return declaredShape(d, batch: batch) }
        return [batch, inputChannels, size ?? inputSize, size ?? inputSize]
    }

    /// The layer with module path `name`.
    package func layer(_ name: String) -> Layer? { layers.first { $0.name == name } }
}
