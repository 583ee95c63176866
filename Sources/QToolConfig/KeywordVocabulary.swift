/// The words `--keyword` can contain that the QTool code tests for (seed-reference §5).
///
/// Unknown words are accepted by QTool and simply ignored, so qtools only *warns* about them:
/// a typo such as `fix_poolng` silently changes the network otherwise.
public enum KeywordVocabulary {
    /// Which part of QTool reads a word.
    public enum Category: String, Sendable, Encodable, CaseIterable {
        case generic, quantizer, resnet, normalization, mobilenetVGG = "mobilenet-vgg", tools
        /// Convention words the code never tests (`imagenet`): known, no effect.
        case convention
    }

    /// word → category, from §5.1-§5.6.
    public static let words: [String: Category] = {
        var table: [String: Category] = [:]
        func add(_ category: Category, _ list: [String]) {
            for word in list where table[word] == nil { table[word] = category }
        }
        add(
            .generic,
            [
                "cifar10", "cifar100", "debug", "label-smooth", "lr-test", "less_bn", "proxquant",
                "probe",
            ])
        add(
            .quantizer,
            [
                "dorefa", "pact", "lsq", "fm_lsq", "wt_lsq", "ot_lsq", "non-uniform",
                "fm_non-uniform",
                "wt_non-uniform", "closed_form", "fm_closed_form", "wt_bin", "gamma", "wt_gamma",
                "ot_gamma",
                "fm_gamma", "lq", "alq", "popcount", "xnor", "custom-update", "independent_norm",
            ])
        add(
            .resnet,
            [
                "origin", "cbas", "cbsa", "cabs", "bacs", "bcas", "fix", "preBN",
                "patch_preBN_stem",
                "fix_pooling", "singleconv", "real_skip", "identify_norm", "DCHR", "fixup", "bias",
                "zir",
                "group-net", "TResNetStem", "TResNetStemMaxPool", "ReShapeResolution", "ldn3x3",
                "f3x3",
                "f0x0", "f1x1", "s1x1", "s3x3", "prone", "no_prone_downsample", "bn_before_restore",
                "force_padding", "keep_resolution", "first-last", "caffe-pooling",
            ])
        add(
            .normalization,
            [
                "group-norm", "static-bn", "freeze-bn", "reverse-bn", "instance-norm", "PReLU",
                "NReLU",
                "ReLU6", "LReLU",
            ])
        add(
            .mobilenetVGG,
            [
                "normal3x3", "real_dp", "real_pt", "bireal", "block_skip", "react", "bac", "cba",
                "abc",
            ])
        add(
            .tools,
            [
                "export_onnx", "inference", "verbose", "load", "save", "raw", "update", "det-load",
                "swap",
                "sort", "verify-data", "verify-image",
            ])
        add(.convention, ["imagenet"])
        return table
    }()

    /// The category of `word`, or nil if QTool never tests for it.
    public static func category(of word: String) -> Category? { words[word] }

    /// The closest known word, for "did you mean".
    public static func suggestion(for word: String) -> String? {
        EditDistance.closest(to: word, in: words.keys.sorted())
    }
}

/// A keyword QTool does not know: accepted (and ignored) by QTool, reported by qtools.
public struct KeywordWarning: Equatable, Sendable, Encodable, CustomStringConvertible {
    /// The word as given.
    public var word: String
    /// The closest known word, if plausible.
    public var suggestion: String?

    /// `unknown keyword 'fix_poolng' (ignored by QTool); did you mean 'fix_pooling'?`
    public var description: String {
        var text =
            word.isEmpty
            ? "empty keyword (two commas in a row?) (ignored by QTool)"
            : "unknown keyword '\(word)' (ignored by QTool)"
        if let suggestion { text += "; did you mean '\(suggestion)'?" }
        return text
    }
}
