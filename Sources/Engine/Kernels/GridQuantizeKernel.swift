import CKernels

/// The ``GridQuantization`` kernel: quantizes `[N*C planes, H, W]` plane by plane (AVX2 C,
/// `Sources/CKernels/grid_quantize.c`; planes over threads) and writes each into its padded
/// place in `[planes, H + top + bottom, W + left + right]`, the border set to the channel's
/// `border` value. Its twin is the quantize function itself (``QuantizeFunction/apply(_:shape:)``,
/// what ``ReferenceExecutor`` runs) followed or preceded by ``ReferenceKernels`` padding, and,
/// element by element, ``GridQuantization/apply(_:channel:)``. Input and output never alias.
package enum GridQuantizeKernel {
    /// What the padding holds, per channel.
    package enum Border: Sendable, Equatable {
        /// A constant (the pad follows the quantizer).
        case value(Float)
        /// The quantized pad value (the pad precedes the quantizer): `q(value)` of each channel.
        case quantized(Float)
    }

    /// `y = pad(q(x))` or `q(pad(x))` for `x` of `[batch, channels, height, width]`.
    package static func forward(
        _ q: GridQuantization, batch: Int, channels: Int, height: Int, width: Int, padding: Padding2d, border: Border,
        input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>, threads: Int, portable: Bool = false
    ) {
        let oh = height + padding.top + padding.bottom, ow = width + padding.left + padding.right
        let planes = batch * channels
        precondition(input.count >= planes * height * width && output.count >= planes * oh * ow && q.fits(channels: channels))
        let params = (0..<channels).map { c in
            var g = grid(q, channel: c)
            let b: Float
            switch border {
            case .value(let v): b = v
            case .quantized(let v): b = unsafe qk_grid_one(&g, v)
            }
            return (g, b)
        }
        let x0 = input.baseAddress!, y0 = output.baseAddress!
        let flag: Int32 = portable ? 1 : 0
        Parallel.forRanges(planes, threads: threads, grain: max(1, 16384 / max(oh * ow, 1))) { r in
            for p in r {
                var (g, b) = params[p % channels]
                unsafe qk_grid_quantize_plane(
                    &g, x0 + p * height * width, height, width, y0 + p * oh * ow, padding.top, padding.left, padding.bottom,
                    padding.right, b, flag)
            }
        }
    }

    /// The C parameters of channel `c`.
    static func grid(_ q: GridQuantization, channel c: Int) -> qk_grid {
        func at(_ a: [Float]) -> Float { a.count == 1 ? a[0] : a[c] }
        return qk_grid(
            divisor: at(q.divisor), lo: q.lo, hi: q.hi, nan_value: q.nanValue ?? .nan, steps: q.steps, scale: at(q.scale),
            gain: at(q.gain), keep_nan: q.nanValue == nil ? 1 : 0, lower_inclusive: q.lowerInclusive ? 1 : 0,
            centered: q.centered ? 1 : 0, indices: q.indices ? 1 : 0)
    }
}
