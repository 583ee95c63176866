import Engine
import QToolConfig

/// `ReShapeResolution`, QTool's lossless down-sampling (models/resnet_.py BasicBlock;
/// seed-reference §5.3, §7.6, keys in Appendix A.6).
///
/// A strided BasicBlock first runs a `shrink` Sequential built from the characters of
/// `--order`: `c` = a `TResNetStem` (space-to-depth by the stride, then a 1x1 conv, 3x3 with
/// `ldn3x3`, `inplanes·stride² -> planes`, quantized unless `real_skip`; keys
/// `shrink.<i>.conv.*`), `b` = BN (sized `inplanes` with `preBN`, else `planes`; keys
/// `shrink.<i>.*`), `a` = the activation; other characters add nothing. The rest of the block is
/// then built as a stride-1 `planes -> planes` block, so it has no `skip` keys.
/// - `ldn3x3`: the block is the shrink path alone (its BNs and activations are still built and
///   stored, never run).
/// - `f3x3`: no shrink; the strided block is the usual one.
/// - `f0x0`: no first conv, BN or activation, and the block adds its residual once (`origin`).
/// - `s1x1`: the second conv of a strided block is a 1x1 (padding 0).
///
/// BottleNecks ignore all of these (QTool's BottleNeck never reads them).
struct LosslessDownsampling {
    /// One element of the shrink Sequential.
    enum Step: Character {
        case conv = "c", norm = "b", activation = "a"
    }

    /// The `--order` text and the steps it gives (unknown characters dropped, as QTool does).
    var order: String
    var steps: [Step]
    var ldn3x3: Bool
    var f3x3: Bool
    var f0x0: Bool
    var s1x1: Bool

    /// Reads `--order` and the modifier words.
    /// - Throws: `.unsupportedModel` for `f1x1`: QTool builds its 1x1 first conv with padding 1,
    ///   so the map grows by 2 and the residual addition fails at the first forward (§16.2 item 16).
    init(_ o: QToolOptions) throws(InferenceError) {
        order = o.order
        steps = order.compactMap { Step(rawValue: $0) }
        ldn3x3 = o.hasKeyword("ldn3x3")
        f3x3 = o.hasKeyword("f3x3")
        f0x0 = o.hasKeyword("f0x0")
        s1x1 = o.hasKeyword("s1x1")
        if o.hasKeyword("f1x1") {
            throw InferenceError(
                .unsupportedModel(
                    "keyword 'f1x1' with ReShapeResolution: QTool builds the strided blocks' first conv as a 1x1 with padding 1, so the map grows by 2 and the residual addition fails at the first forward (seed-reference §16.2 item 16)"
                ))
        }
    }

    /// Word combinations QTool builds but crashes on, and the one qtools does not build.
    func check(_ s: ResNetStyle) throws(InferenceError) {
        func crash(_ what: String) -> InferenceError {
            InferenceError(.unsupportedModel("ReShapeResolution with \(what): QTool builds it but crashes"))
        }
        if f3x3 && ldn3x3 {
            throw crash(
                "f3x3 and ldn3x3 (the strided blocks lose their convs but keep the strided shortcut's BN, sized for the wrong channel count)"
            )
        }
        if f3x3 && f0x0 { throw crash("f3x3 and f0x0 (the strided block's second conv receives the block input's channels)") }
        if s.fixup && (ldn3x3 || f0x0) {
            throw crash("fixup and \(ldn3x3 ? "ldn3x3" : "f0x0") (the Fixup initialisation reads the weight of the removed first conv)")
        }
        if ldn3x3 && s1x1 {
            throw InferenceError(
                .unsupportedModel(
                    "ReShapeResolution with ldn3x3 and s1x1 (a stored but never-run 1x1 conv) is not implemented by the qtools ResNet builder"
                ))
        }
    }

    /// True when `b` starts with the shrink path.
    func shrinks(_ b: ResNetBlocks.Block) -> Bool { !b.bottleneck && b.stride != 1 && !f3x3 }

    /// The second conv's kernel in block `b`: 1 with `s1x1` in a strided BasicBlock, else 3.
    func secondKernel(_ b: ResNetBlocks.Block) -> Int { s1x1 && !b.bottleneck && b.stride != 1 ? 1 : 3 }

    /// The shrink path of block `b` applied to `x`.
    /// - Throws: `.unsupportedModel` when the path's channels do not flow (QTool builds such a
    ///   block and fails at the first forward: `--order none`, a BN before the conv, `preBN` with
    ///   a BN after it, a pre-activation block whose first BN keeps the input's width).
    func shrink(
        _ a: inout ModelAssembler, _ x: String, _ b: ResNetBlocks.Block, _ s: ResNetStyle
    )
        throws(InferenceError) -> String
    {
        func crash(_ why: String) -> InferenceError {
            InferenceError(
                .unsupportedModel(
                    "ReShapeResolution with --order '\(order)': QTool builds \(b.prefix) but it fails at the first forward (\(why))"))
        }
        let normChannels = s.preBN ? b.inplanes : b.planes
        var channels = b.inplanes
        for step in steps {
            switch step {
            case .conv:
                guard channels == b.inplanes else {
                    throw crash(
                        "the shrink conv expects \(b.inplanes * b.stride * b.stride) channels, gets \(channels * b.stride * b.stride)")
                }
                channels = b.planes
            case .norm:
                guard channels == normChannels else { throw crash("the shrink BN has \(normChannels) channels, its input \(channels)") }
            case .activation:
                break
            }
        }
        guard channels == b.planes else { throw crash("the shrink path ends with \(channels) channels, the block needs \(b.planes)") }
        if s.order.preActivation && !f0x0 && !ldn3x3 && b.inplanes != b.planes {
            throw crash("the block's first BN has \(b.inplanes) channels, the shrink output \(b.planes)")
        }
        let p = b.prefix + ".shrink."
        var v = x
        for (i, step) in steps.enumerated() {
            switch step {
            case .conv:
                v = try a.spaceToDepthConv(
                    p + "\(i)", v, in: b.inplanes, out: b.planes, factor: b.stride, kernel: ldn3x3 ? 3 : 1,
                    quantized: !s.realSkip)
            case .norm: v = try a.batchNorm(p + "\(i)", v, channels: normChannels)
            case .activation: v = try a.activation(p + "\(i)", v)
            }
        }
        return v
    }

    /// `ldn3x3`: the stored modules of the block that never run (BNs, PReLU slopes, branch
    /// scales; its convs are `conv0x0`, empty), claimed by name and shape.
    func claimUnused(_ a: inout ModelAssembler, _ b: ResNetBlocks.Block, _ s: ResNetStyle) throws(InferenceError) {
        let p = b.prefix
        for j in 0..<s.branches {
            if !f0x0 { try a.unusedActivation("\(p).relu1.\(j)") }
            if !s.fixRelu { try a.unusedActivation("\(p).relu2.\(j)") }
        }
        if s.fixRelu { try a.unusedActivation(p + ".fix_relu") }
        for j in 0..<s.branches where !f0x0 {
            try a.unusedBatchNorm("\(p).bn1.\(j)", channels: s.order.preActivation ? b.inplanes : b.planes)
        }
        if s.fixBN { try a.unusedBatchNorm(p + ".fix_bn", channels: b.planes) }
        for j in 0..<s.branches { try a.unusedBatchNorm("\(p).bn2.\(j)", channels: b.planes) }
        if s.branches > 1 {
            for j in 0..<s.branches { try a.binder.require("\(p).scales.\(j)", shape: [1]) }
        }
    }
}
