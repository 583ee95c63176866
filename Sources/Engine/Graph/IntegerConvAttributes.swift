/// Attributes of ``Op/integerConv(_:)``: the convolution's geometry and the level-index range
/// of its input.
public struct IntegerConvAttributes: Sendable, Equatable {
    /// Stride, padding, dilation and groups, as for ``Op/conv2d(_:)``.
    public var conv: Conv2dAttributes
    /// The level index padded positions hold (the index of the value 0, or of the quantized
    /// pad value).
    public var padIndex: Int
    /// The largest input index: inputs are clamped to `0...maxIndex` (at most 255).
    public var maxIndex: Int

    /// An integer convolution over indices `0...maxIndex`, padding with `padIndex`.
    public init(_ conv: Conv2dAttributes, padIndex: Int = 0, maxIndex: Int = 255) {
        self.conv = conv
        self.padIndex = padIndex
        self.maxIndex = maxIndex
    }
}
