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

    /// With `fix` and cbas/cbsa the block's last activation moves after the addition.
    var fixRelu: Bool { fix && (order == .cbas || order == .cbsa) }
    /// With `fix` and bacs/bcas a BN is applied to the block output before the addition.
    var fixBN: Bool { fix && order.preActivation }

    /// Words that change the architecture in ways this builder does not implement.
    static let unsupportedWords = [
        "TResNetStem", "TResNetStemMaxPool", "ReShapeResolution", "prone", "DCHR", "f1x1", "s1x1",
        "force_padding", "ldn3x3", "f3x3", "f0x0",
    ]

    /// Reads the keywords.
    /// - Throws: `.unsupportedModel` without a layer-order word (QTool crashes at the first
    ///   forward, §16.2 item 15) or with a word listed in ``unsupportedWords``.
    init(_ o: QToolOptions) throws(InferenceError) {
        guard let order = [Order.cbas, .cbsa, .cabs, .bacs, .bcas].first(where: { o.hasKeyword($0.rawValue) }) else {
            throw InferenceError(
                .unsupportedModel(
                    "the flexible ResNet needs a layer-order keyword (cbas, cbsa, cabs, bacs or bcas); QTool builds it but crashes at the first forward"))
        }
        for w in Self.unsupportedWords where o.hasKeyword(w) {
            throw InferenceError(.unsupportedModel("keyword '\(w)' is not supported by the qtools ResNet builder"))
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
    }
}
