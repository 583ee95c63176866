import Engine
import Foundation

/// What a bound quantizer computes with, which is not always what its config asks for: QTool's
/// LSQ reads its `level_num` tensor at every call, so a checkpoint's value wins over the
/// config's bit width (`--fm_bit 4` on a 2-bit LSQ checkpoint still computes 2 bits).
extension Quantizer {
    /// Bits of the levels the forward computes with (`log2(level_num)` for LSQ).
    package var computedBits: Double {
        if config.method == .lsq, state.levelNum.isFinite, state.levelNum >= 2 { return Foundation.log2(Double(state.levelNum)) }
        return QuantizeAttributes(self).bits
    }

    /// The config's levels and the `level_num` the forward uses instead, when they differ.
    package var ignoredLevels: (config: Int, levelNum: Float)? {
        guard isEnabled, config.method == .lsq, state.levelNum != Float(config.levels) else { return nil }
        return (config.levels, state.levelNum)
    }
}

extension Quantizer {
    /// `log2(x)`.
    static func log2(_ x: Double) -> Double { Foundation.log2(x) }
}
