import Engine
import Tensors
import TestSupport

/// Array front-ends for the pointer-based fast kernels, so tests can compare them with the
/// naive twins. Outputs start as NaN so unwritten elements fail the comparison.
enum Fast {
    static func withOptional<R>(_ a: [Float]?, _ body: (UnsafeBufferPointer<Float>?) -> R) -> R {
        guard let a else { return body(nil) }
        return a.withUnsafeBufferPointer { body($0) }
    }

    static func conv(
        _ g: ConvGeometry, _ x: [Float], _ w: [Float], _ b: [Float]?, residual: [Float]? = nil,
        activation: Activation = .none, threads: Int
    ) -> [Float] {
        var y = [Float](repeating: .nan, count: g.batch * g.outImage)
        var scratch = [Float](repeating: .nan, count: Conv2d.scratchCount(g))
        let w = Conv2d.packWeights(g, w)
        x.withUnsafeBufferPointer { px in
            w.withUnsafeBufferPointer { pw in
                withOptional(b) { pb in
                    withOptional(residual) { pr in
                        y.withUnsafeMutableBufferPointer { py in
                            scratch.withUnsafeMutableBufferPointer { ps in
                                Conv2d.forward(
                                    g, input: px, weight: pw, bias: pb, residual: pr, output: py,
                                    scratch: ps, activation: activation, threads: threads)
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// The conv with the residual buffer being the output buffer itself (in-place residual).
    static func convResidualInPlace(
        _ g: ConvGeometry, _ x: [Float], _ w: [Float], _ b: [Float]?, residual: [Float],
        activation: Activation, threads: Int
    ) -> [Float] {
        var y = residual
        var scratch = [Float](repeating: .nan, count: Conv2d.scratchCount(g))
        let w = Conv2d.packWeights(g, w)
        x.withUnsafeBufferPointer { px in
            w.withUnsafeBufferPointer { pw in
                withOptional(b) { pb in
                    y.withUnsafeMutableBufferPointer { py in
                        scratch.withUnsafeMutableBufferPointer { ps in
                            Conv2d.forward(
                                g, input: px, weight: pw, bias: pb, residual: UnsafeBufferPointer(py),
                                output: py, scratch: ps, activation: activation, threads: threads)
                        }
                    }
                }
            }
        }
        return y
    }

    static func unary(
        _ x: [Float], outputCount: Int, _ body: (UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) -> Void
    ) -> [Float] {
        var y = [Float](repeating: .nan, count: outputCount)
        x.withUnsafeBufferPointer { px in y.withUnsafeMutableBufferPointer { py in body(px, py) } }
        return y
    }
}

/// A random valid conv geometry: odd sizes, groups, depthwise, strides, dilation, asymmetric pads, batch > 1.
func randomConvGeometry(_ rng: inout SplitMix64) -> (ConvGeometry, Padding2d) {
    while true {
        let groups = [1, 1, 2, 3][rng.int(0...3)]
        let depthwise = rng.int(0...3) == 0
        let cig = depthwise ? 1 : rng.int(1...5)
        let cog = depthwise ? rng.int(1...2) : rng.int(1...6)
        let g = depthwise ? rng.int(2...6) : groups
        let (kh, kw) = (rng.int(1...5), rng.int(1...4))
        let (sh, sw) = (rng.int(1...3), rng.int(1...3))
        let (dh, dw) = (rng.int(1...2), rng.int(1...2))
        let (h, w) = (rng.int(1...13), rng.int(1...15))
        let pad = Padding2d(top: rng.int(0...2), left: rng.int(0...3), bottom: rng.int(0...2), right: rng.int(0...1))
        let spanH = h + pad.top + pad.bottom - dh * (kh - 1) - 1
        let spanW = w + pad.left + pad.right - dw * (kw - 1) - 1
        if spanH < 0 || spanW < 0 { continue }
        let geometry = ConvGeometry(
            batch: rng.int(1...3), inChannels: cig * g, inHeight: h, inWidth: w, outChannels: cog * g,
            outHeight: spanH / sh + 1, outWidth: spanW / sw + 1, kernelH: kh, kernelW: kw, strideH: sh,
            strideW: sw, padTop: pad.top, padLeft: pad.left, dilationH: dh, dilationW: dw, groups: g)
        return (geometry, pad)
    }
}

/// Max |a - b| check with a readable message.
func expectClose(_ a: [Float], _ b: [Float], atol: Float, _ what: @autoclosure () -> String = "") -> (Bool, String) {
    guard a.count == b.count else { return (false, "count \(a.count) vs \(b.count) \(what())") }
    let d = Difference(a, b)
    return (d.maxAbs <= atol, "\(what()) \(d)")
}

extension Fast {
    static func winograd(
        _ g: ConvGeometry, tile: Int, _ x: [Float], _ w: [Float], _ b: [Float]?, residual: [Float]? = nil,
        residualInPlace: Bool = false, activation: Activation = .none, threads: Int, portable: Bool = false
    ) -> [Float] {
        let u = Winograd.transformWeights(w, outChannels: g.outChannels, inChannels: g.inChannels, tile: tile)
        // In place: the residual is the output buffer itself (as the planner fuses it).
        var y = residualInPlace ? residual! : [Float](repeating: .nan, count: g.batch * g.outImage)
        var scratch = [Float](repeating: .nan, count: Winograd.scratchCount(g, tile: tile))
        x.withUnsafeBufferPointer { px in
            u.withUnsafeBufferPointer { pu in
                withOptional(b) { pb in
                    withOptional(residualInPlace ? nil : residual) { pr in
                        y.withUnsafeMutableBufferPointer { py in
                            scratch.withUnsafeMutableBufferPointer { ps in
                                Winograd.forward(
                                    g, tile: tile, input: px, transformedWeight: pu, bias: pb,
                                    residual: residualInPlace ? UnsafeBufferPointer(py) : pr, output: py,
                                    scratch: ps, activation: activation, threads: threads, portable: portable)
                            }
                        }
                    }
                }
            }
        }
        return y
    }
}
