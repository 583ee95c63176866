import Engine

/// The level indices of a uniform quantizer: its ``GridQuantization`` with
/// ``GridQuantization/indices`` set, so `y = round(t * steps)` (integers `0...maxIndex`)
/// instead of the level's value. ``IntegerConvLowering`` puts it before an
/// ``Engine/Op/integerConv(_:)``, which reads these indices; the engine runs it with the fused
/// grid kernel, and ``apply(_:shape:)`` is its element-wise twin.
package struct LevelIndexFunction: QuantizeFunction, Equatable {
    /// The quantizer's name with `.levels` appended.
    package var name: String
    /// The quantizer's grid form, ``GridQuantization/indices`` set.
    package var form: GridQuantization
    /// The largest index.
    package var maxIndex: Int

    /// The indices of `form`'s levels, `0...maxIndex`, named after the quantizer `quantizer`.
    package init(quantizer: String, form: GridQuantization, maxIndex: Int) {
        name = quantizer + ".levels"
        var f = form
        f.indices = true
        self.form = f
        self.maxIndex = maxIndex
    }

    package var method: String { "levels" }
    package var levels: Int { maxIndex + 1 }
    package var gridForm: GridQuantization? { form }

    /// The index of each element of `x` (`[N, C, ...]`, channel parameters along `C`).
    package func apply(_ x: [Float], shape: [Int]) throws -> [Float] {
        let channels = shape.count >= 2 ? shape[1] : 1
        guard form.fits(channels: channels), shape.reduce(1, *) == x.count else {
            throw InferenceError(.shapeMismatch("\(name): input \(shape) for per-channel parameters of \(form.divisor.count)"))
        }
        let inner = shape.count > 2 ? shape[2...].reduce(1, *) : 1
        return x.indices.map { form.apply(x[$0], channel: ($0 / inner) % channels) }
    }
}
