import Tensors

extension ONNXReader {
    /// The tensor of a `Constant` node's `value` attribute (or any `TensorProto` embedded in a
    /// node), decoded by the same rules as an initializer; `baseDirectory` resolves external data.
    /// - Throws: ``FormatError`` naming the tensor.
    package static func tensor(_ t: Onnx_TensorProto, baseDirectory: String? = nil) throws(FormatError) -> Tensor {
        var decoder = ONNXTensorDecoder(external: ONNXExternalData(baseDirectory: baseDirectory))
        return try decoder.decode(t, raw: nil, offset: nil).tensor
    }
}
