import Engine
import Formats
import QToolConfig

/// The structure words of the flexible ResNet (seed-reference §5.3, §7), read once from the
/// keyword list.
struct ResNetStyle {
    /// Per-conv order of conv, BN, activation and the (Bi-Real) skip addition.
    enum Order: String {
        case cbas, cbsa, cabs, bacs, bcas
        /// BN before the conv (pre-activation): the first BN is sized by the block input.
        var preActivation: Bool { self == .bacs || self == .bcas }
    }

    var order: Order
    /// `origin`: one residual addition per block; otherwise one after every conv (Bi-Real).
    var origin: Bool
    var fix: Bool
    var preBN: Bool
    var patchPreBNStem: Bool
    var fixPooling: Bool
    var singleConv: Bool
    var realSkip: Bool
    var identifyNorm: Bool
    var fixup: Bool
    var fixupBias: Bool
    var groupNet: Bool
    /// `--base`: parallel branches per block (Group-Net).
    var branches: Int
    var cifar: Bool
    /// The stem (§6 stem table): which of the four `conv1`/`maxpool` forms.
    var stem: Stem
    /// `--stem_kernel` of a TResNet stem (1 or 3).
    var stemKernel: Int
    /// `ReShapeResolution` (§7.6): the strided BasicBlocks' lossless down-sampling, or nil.
    var lossless: LosslessDownsampling?

    /// The four stems of §7.1: CIFAR 3x3, TResNet (space-to-depth by 4, no max-pool),
    /// TResNet with max-pool (space-to-depth by 2, then max-pool), and the 7x7 ImageNet stem.
    enum Stem: Equatable {
        case cifar, tresnet, tresnetMaxPool, imagenet
        /// The space-to-depth factor of a TResNet stem.
        var spaceToDepth: Int? { self == .tresnet ? 4 : self == .tresnetMaxPool ? 2 : nil }
        var hasMaxPool: Bool { self == .imagenet || self == .tresnetMaxPool }
    }

    /// With `fix` and cbas/cbsa the block's last activation moves after the addition.
    var fixRelu: Bool { fix && (order == .cbas || order == .cbsa) }
    /// With `fix` and bacs/bcas a BN is applied to the block output before the addition.
    var fixBN: Bool { fix && order.preActivation }

    /// Words QTool builds and runs that this builder does not implement yet (refused by name).
    static let unimplementedWords = ["prone", "DCHR", "force_padding"]

    /// Reads the keywords.
    /// - Throws: `.unsupportedModel` without a layer-order word (QTool crashes at the first
    ///   forward, §16.2 item 15), with a word listed in ``unimplementedWords``, or with a
    ///   combination QTool builds but crashes on (see ``LosslessDownsampling``).
    /// `bottleneck`: BottleNeck nets ignore `ReShapeResolution` and its words (QTool's
    /// BottleNeck never reads them).
    init(_ o: QToolOptions, bottleneck: Bool = false) throws(InferenceError) {
        guard let order = [Order.cbas, .cbsa, .cabs, .bacs, .bcas].first(where: { o.hasKeyword($0.rawValue) }) else {
            throw InferenceError(
                .unsupportedModel(
                    "the flexible ResNet needs a layer-order keyword (cbas, cbsa, cabs, bacs or bcas); QTool builds it but crashes at the first forward"
                ))
        }
        for w in Self.unimplementedWords where o.hasKeyword(w) {
            throw InferenceError(
                .unsupportedModel("keyword '\(w)' is not implemented by the qtools ResNet builder yet (QTool builds it)"))
        }
        self.order = order
        origin = o.hasKeyword("origin")
        fix = o.hasKeyword("fix")
        preBN = o.hasKeyword("preBN")
        patchPreBNStem = o.hasKeyword("patch_preBN_stem")
        fixPooling = o.hasKeyword("fix_pooling")
        singleConv = o.hasKeyword("singleconv")
        realSkip = o.hasKeyword("real_skip")
        identifyNorm = o.hasKeyword("identify_norm")
        fixup = o.hasKeyword("fixup")
        fixupBias = fixup && o.hasKeyword("bias")
        groupNet = o.hasKeyword("group-net")
        branches = max(o.base, 1)
        cifar = o.hasKeyword("cifar10") || o.hasKeyword("cifar100")
        // resnet_.py tests cifar first, then the TResNet words (the max-pool form first).
        stem =
            cifar
            ? .cifar
            : o.hasKeyword("TResNetStemMaxPool") ? .tresnetMaxPool : o.hasKeyword("TResNetStem") ? .tresnet : .imagenet
        stemKernel = o.stemKernel
        if stem.spaceToDepth != nil, stemKernel != 1, stemKernel != 3 {
            throw InferenceError(
                .unsupportedModel("--stem_kernel \(stemKernel): QTool's TResNetStem asserts a kernel of 1 or 3"))
        }
        lossless = o.hasKeyword("ReShapeResolution") && !bottleneck ? try LosslessDownsampling(o) : nil
        if let l = lossless { try l.check(self) }
    }
}
