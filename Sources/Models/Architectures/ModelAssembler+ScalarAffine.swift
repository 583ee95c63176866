import Engine
import Tensors

extension ModelAssembler {
    /// Training builds of ``scalarAffine(_:_:channels:scale:shift:)``: each learnable scalar
    /// stays a `[1]` graph variable named by its state-dict key (so the trainer updates it as
    /// PyTorch updates `fixup_bias1`, `layer1.0.fixup_scale`, `layer1.0.scales.0`), broadcast
    /// to `[C]` by a `mul` with a constant `ones [C]`, which feeds the `channelAffine`. An absent
    /// scale or shift is the constant 1 or 0. The forward values are those of the inference
    /// build (`x · s + b` per element in float32, as PyTorch's `x * scale + bias`). The
    /// `channelAffine` node is `<name>#affine` (the key itself names the variable).
    mutating func trainableScalarAffine(
        _ name: String, _ x: String, channels: Int, scale: String?, shift: String?
    ) throws(InferenceError) -> String {
        // The node is not named by the key: the key names the variable.
        let n = unique(name + "#affine")
        let ones = n + "#ones"
        graph.addConstant(ones, Tensor(floats: [Float](repeating: 1, count: channels), shape: [channels]))
        func operand(_ key: String?, _ role: String, _ fill: Float) throws(InferenceError) -> String {
            guard let key else {
                let c = n + "#" + role
                graph.addConstant(c, Tensor(floats: [Float](repeating: fill, count: channels), shape: [channels]))
                return c
            }
            graph.addVariable(key, try binder.take(key, shape: [1]))
            let b = unique(n + "#" + role)
            graph.add(.mul, name: b, inputs: [ones, key])
            return b
        }
        let s = try operand(scale, "scale", 1)
        let b = try operand(shift, "shift", 0)
        graph.add(.channelAffine, name: n, inputs: [x, s, b])
        nodeParameters[n] = (scale == nil ? 0 : 1) + (shift == nil ? 0 : 1)
        return n
    }
}
