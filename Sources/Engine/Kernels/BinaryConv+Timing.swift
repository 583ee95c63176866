import CKernels
import Dispatch

extension BinaryConv {
    /// Times the GEMM core of layer `a` on geometry `g` (one image, one group) on one thread:
    /// packs the weights, packs `input` and gathers its strips once, then runs `qk_bconv_gemm`
    /// over every panel and strip pair `runs` times (after one untimed run). Returns each
    /// run's nanoseconds; the output goes to a scratch array.
    package static func timeGemm(
        _ a: BinaryConv2dAttributes, _ g: ConvGeometry, path: BitKernelPath, input: [Float], runs: Int
    ) -> [UInt64] {
        precondition(g.groups == 1 && g.batch == 1 && input.count >= g.inImage)
        let l = layout(g, a, path: path)
        var weights = [Float](repeating: 0, count: l.floatCount)
        unsafe weights.withUnsafeMutableBufferPointer { unsafe pack(a, l, multiplier: a.multiplier, bias: a.bias, into: $0) }
        var scratch = [Float](repeating: 0, count: l.scratchCount)
        var output = [Float](repeating: 0, count: g.outImage)
        var times: [UInt64] = []
        let isa = Int32(l.path.rawValue)
        unsafe weights.withUnsafeBufferPointer { wb in
            unsafe scratch.withUnsafeMutableBufferPointer { sb in
                unsafe output.withUnsafeMutableBufferPointer { ob in
                    unsafe input.withUnsafeBufferPointer { xb in
                        let wraw = unsafe UnsafeRawPointer(wb.baseAddress!)
                        let wwords = unsafe UnsafePointer<UInt64>(OpaquePointer(wraw))
                        let wints = unsafe UnsafePointer<Int32>(OpaquePointer(wraw))
                        let sbase = sb.baseAddress!
                        let sraw = unsafe UnsafeMutableRawPointer(sbase) + (8 - Int(bitPattern: sbase) % 8) % 8
                        let image = unsafe UnsafeMutablePointer<UInt64>(OpaquePointer(sraw))
                        let strips = unsafe image + l.packedImageWords
                        let packShape = unsafe qk_bits_pack_shape(
                            encoding: l.encoding, levels: l.levels, step: l.step, channels: g.groupInChannels, groups: 1,
                            words: l.words, terms: l.terms, planes: l.planes, plane_size: g.inHeight * g.inWidth,
                            thresholds: l.thresholdCount > 0 ? wb.baseAddress! + l.thresholdAt : nil)
                        let shape = unsafe qk_bconv_shape(
                            height: g.inHeight, width: g.inWidth, out_height: g.outHeight, out_width: g.outWidth,
                            kernel_h: g.kernelH, kernel_w: g.kernelW, stride_h: g.strideH, stride_w: g.strideW,
                            pad_top: g.padTop, pad_left: g.padLeft, dilation_h: g.dilationH, dilation_w: g.dilationW,
                            words: l.words, terms: l.terms, act_sign: l.actSign ? 1 : 0, act_mask: l.actMask ? 1 : 0,
                            weight_mask: l.weightMask ? 1 : 0, pixel_words: l.pixelWords, pad_pixel: wwords + l.padPixelAt / 2)
                        unsafe withUnsafePointer(to: packShape) { ps in
                            unsafe withUnsafePointer(to: shape) { sh in
                                unsafe l.coef.withUnsafeBufferPointer { coef in
                                    unsafe qk_bits_pack(isa, ps, xb.baseAddress!, 0, g.inHeight * g.inWidth, image)
                                    unsafe qk_bconv_im2col(sh, image, 0, l.strips, strips)
                                    let epilogue = unsafe qk_bconv_epilogue(
                                        mul: wb.baseAddress! + l.mulAt, bias: wb.baseAddress! + l.biasAt, base: wints + l.baseAt,
                                        sum_w: l.offset != 0 ? wints + l.sumWAt : nil, offset: l.offset,
                                        correction: l.correction ? wints + l.correctionAt : nil, classes: l.classes,
                                        x_classes: l.xClasses, y_class: wints + l.yClassAt, x_class: wints + l.xClassAt,
                                        coef: coef.baseAddress!, residual: nil,
                                        lo: -.infinity, hi: .infinity, out: ob.baseAddress!)
                                    unsafe withUnsafePointer(to: epilogue) { e in
                                        for run in 0...max(runs, 1) {
                                            let t0 = DispatchTime.now().uptimeNanoseconds
                                            unsafe qk_bconv_gemm(
                                                isa, sh, g.outChannels, wwords, strips, 0, l.panelsPerGroup, 0, l.strips / 2, e)
                                            if run > 0 { times.append(DispatchTime.now().uptimeNanoseconds - t0) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return times
    }
}
