extension QToolOptions {
    /// The quantizer families whose `<tag>_enable` ``fullPrecision()`` switches off.
    static let quantizerEnableFlags = ["fm_enable", "wt_enable", "ot_enable"]

    /// The keywords of `keywords` that choose or tune a quantizer (category
    /// ``KeywordVocabulary/Category/quantizer``: `dorefa`, `lsq`, `xnor`, `gamma`, ...).
    public static func quantizerKeywords(in keywords: [String]) -> [String] {
        keywords.filter { KeywordVocabulary.category(of: $0) == .quantizer }
    }

    /// The same network in full precision: every quantizer family disabled (`fm_enable`,
    /// `wt_enable`, `ot_enable` false) and the quantizer keywords removed, so the model has no
    /// quantizer tensors. Structure keywords (`preBN`, `bireal`, `real_skip`, ...) stay.
    /// main.py has no option that clears a `store_true` flag, so a checkpoint records this as
    /// ``ConfigRecord/fullPrecision``.
    public func fullPrecision() -> QToolOptions {
        var copy = self
        for flag in Self.quantizerEnableFlags { copy.values[flag] = .bool(false) }
        let quantizer = Set(Self.quantizerKeywords(in: keywords))
        copy.values["keyword"] = .strings(keywords.filter { !quantizer.contains($0) })
        return copy
    }
}
