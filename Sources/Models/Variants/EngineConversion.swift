import Engine
import Formats
import QToolConfig
import Tensors

/// Logit differences between two models run on the same input (`verify A B`, the engine
/// verifier of `convert --fold-bn` / `--to-config`).
package struct ModelDifference: Sendable, Codable, Equatable {
    /// max |a − b| over all logits.
    package var maxAbs: Double
    /// max |b| (the reference's peak logit).
    package var peak: Double
    /// ``maxAbs`` / ``peak`` (0 when both are 0): the relative error the tolerance applies to.
    package var relative: Double
    /// max |a − b| / |b| over logits with b ≠ 0 (elementwise; large near zero logits).
    package var maxElementRelative: Double
    /// Cosine similarity of the flattened logits.
    package var cosine: Double
    /// Samples whose arg-max agrees.
    package var top1Agree: Int
    /// Samples.
    package var samples: Int

    /// Compares `a` with the reference `b`, both `[N, classes]`.
    package init(_ a: [Float], _ b: [Float], classes: Int) {
        var maxAbs = 0.0, peak = 0.0, rel = 0.0, dot = 0.0, na = 0.0, nb = 0.0
        for (x, y) in zip(a, b) {
            let d = abs(Double(x) - Double(y))
            if d > maxAbs || d.isNaN { maxAbs = d }
            peak = max(peak, abs(Double(y)))
            if y != 0 { rel = max(rel, d / abs(Double(y))) }
            dot += Double(x) * Double(y)
            na += Double(x) * Double(x)
            nb += Double(y) * Double(y)
        }
        func argmax(_ v: ArraySlice<Float>) -> Int { v.indices.max { v[$0] < v[$1] || (v[$0] == v[$1] && $0 > $1) }! }
        let k = max(classes, 1)
        let n = min(a.count, b.count) / k
        var agree = 0
        for s in 0..<n where argmax(a[(s * k)..<((s + 1) * k)]) == argmax(b[(s * k)..<((s + 1) * k)]) { agree += 1 }
        self.maxAbs = maxAbs
        self.peak = peak
        relative = maxAbs.isNaN ? .nan : peak > 0 ? maxAbs / peak : (maxAbs == 0 ? 0 : .infinity)
        maxElementRelative = rel
        cosine = na > 0 && nb > 0 ? dot / (na.squareRoot() * nb.squareRoot()) : (na == nb ? 1 : 0)
        top1Agree = agree
        samples = n
    }

    enum CodingKeys: String, CodingKey {
        case maxAbs = "max_abs", peak, relative = "max_rel", maxElementRelative = "max_rel_elementwise", cosine
        case top1Agree = "top1_agree", samples
    }

    /// True when ``relative`` ≤ `tolerance` (NaN fails).
    package func within(_ tolerance: Double) -> Bool { relative <= tolerance }
}

/// Seeded inputs and model runs shared by the engine-based checks.
package enum ModelComparison {
    /// The logits of `model` on `x`.
    package static func logits(_ model: BuiltModel, _ x: Tensor, threads: Int = 2) throws -> Tensor {
        let out = try Executor(graph: model.graph, threads: threads).run([model.input: x])
        return out[model.output]!
    }

    /// Runs both on `x` and compares `a` with the reference `b`.
    package static func compare(_ a: BuiltModel, _ b: BuiltModel, input x: Tensor) throws -> ModelDifference {
        let la = try logits(a, x), lb = try logits(b, x)
        return ModelDifference(la.floats(), lb.floats(), classes: lb.shape.last ?? 1)
    }
}

/// The tensors of a state dict as (name, tensor) pairs for the model builder.
func stateDictEntries(_ sd: CheckpointDict) -> [(name: String, tensor: Tensor)] {
    sd.entries.compactMap { e in
        guard case .tensor(let t) = e.value else { return nil }
        return ((e.key.string ?? ""), t.materialize())
    }
}

/// Runs the source model (input checkpoint, source options) and the converted model (written
/// file, target options) on seeded random inputs and compares their logits: fails above
/// `tolerance` (relative to the source's peak logit); with `tolerance` nil the difference is
/// information only (e.g. a full-precision model converted to a quantized variant).
///
/// With `castTo` (`convert --dtype float16` etc. in the same call) the check judges the cast by
/// the error the cast itself introduces: the source model with its own floating tensors cast
/// the same way moves the logits by some relative `c`; the converted model may then differ
/// from the source by `tolerance + 2c` (its folded or re-keyed weights round differently,
/// hence the margin), and the detail names both.
package struct EngineVerifier: ConversionVerifier {
    package var sourceOptions: QToolOptions
    package var targetOptions: QToolOptions
    package var tolerance: Double?
    package var castTo: DType?
    package var samples: Int = 2
    package var seed: UInt64 = 0

    package init(source: QToolOptions, target: QToolOptions, tolerance: Double?, castTo: DType? = nil) {
        sourceOptions = source
        targetOptions = target
        self.tolerance = tolerance
        self.castTo = castTo
    }

    package var name: String { "engine" }

    package func verify(_ context: VerificationContext) throws -> VerificationResult {
        guard let src = context.source.stateDict(), let dst = context.written.stateDict() else {
            return VerificationResult(verifier: name, passed: false, detail: "no state dict to run")
        }
        let a = try ModelBuilder.build(options: sourceOptions, stateDict: src.entries.map { ($0.name, $0.tensor.materialize()) })
        let b = try ModelBuilder.build(options: targetOptions, stateDict: dst.entries.map { ($0.name, $0.tensor.materialize()) })
        guard a.inputSize == b.inputSize, a.numClasses == b.numClasses else {
            return VerificationResult(
                verifier: name, passed: false,
                detail: "the models differ in input size or classes (\(a.inputSize)/\(a.numClasses) vs \(b.inputSize)/\(b.numClasses))")
        }
        let x = SplitMix64.normalTensor(shape: a.inputShape(batch: samples), seed: seed)
        let d = try ModelComparison.compare(b, a, input: x)
        let summary =
            "\(samples) seeded inputs: max abs \(d.maxAbs), max rel \(d.relative) (of peak \(d.peak)), cosine \(d.cosine), top-1 \(d.top1Agree)/\(d.samples)"
        guard let tolerance else {
            return VerificationResult(verifier: name, passed: true, detail: summary + " (information only)", maxAbsError: d.maxAbs)
        }
        var allowed = tolerance, castNote = ""
        if let castTo {
            let cast = try src.entries.map { e in
                let t = e.tensor.materialize()
                return (e.name, DTypeCast.isCastable(t.dtype) ? try DTypeCast.cast(t, to: castTo).tensor : t)
            }
            let c = try ModelComparison.compare(ModelBuilder.build(options: sourceOptions, stateDict: cast), a, input: x).relative
            allowed = tolerance + 2 * c
            castNote = " (the \(castTo.rawValue) cast alone moves the source by max rel \(c): allowed \(tolerance) + 2 x \(c))"
        }
        let ok = d.within(allowed)
        return VerificationResult(
            verifier: name, passed: ok, detail: summary + (ok ? " ≤ " : " > ") + "tolerance \(allowed)" + castNote,
            maxAbsError: d.maxAbs)
    }
}

/// `--fold-bn`: ``BatchNormFolding`` on the state dict (the options are the source model's).
package struct FoldBatchNormStep: ConversionStep {
    package var options: QToolOptions
    package init(options: QToolOptions) { self.options = options }
    package var summary: String { "fold batch norms" }

    package func apply(to state: inout ConversionState, report: inout ConversionReport) throws {
        var sd = state.stateDict
        let result = try BatchNormFolding.fold(options: options, stateDict: stateDictEntries(sd))
        sd = Self.replacing(sd, with: result.entries, fresh: Set(result.added + result.changed))
        state.stateDict = sd
        for f in result.folded { report.notes.append("folded \(f.bn) into \(f.into)") }
        for k in result.kept { report.notes.append("kept \(k.bn): \(k.reason)") }
        report.notes.append(
            "fold-bn: \(result.folded.count) BN folded, \(result.kept.count) kept; removed \(result.removed.count) tensors, added \(result.added.count), changed \(result.changed.count)"
        )
    }

    /// `sd` with its tensor entries replaced by `entries` (order of `entries`; non-tensor
    /// entries and the stored dtype of unchanged float tensors kept).
    static func replacing(
        _ sd: CheckpointDict, with entries: [(name: String, tensor: Tensor)], fresh: Set<String>
    )
        -> CheckpointDict
    {
        var old: [String: StoredTensor] = [:]
        for e in sd.entries { if case .tensor(let t) = e.value { old[(e.key.string ?? "")] = t } }
        var out = sd
        out.entries = []
        for e in sd.entries { if case .tensor = e.value {} else { out.entries.append(e) } }
        for (k, t) in entries {
            if let o = old[k], !fresh.contains(k) {
                out.entries.append((.string(k), .tensor(o)))
            } else {
                var s = StoredTensor(t, key: k)
                s.requiresGrad = old[k]?.requiresGrad ?? false
                s.isParameter = old[k]?.isParameter ?? false
                out.entries.append((.string(k), .tensor(s)))
            }
        }
        return out
    }
}
