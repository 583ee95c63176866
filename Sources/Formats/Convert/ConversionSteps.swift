import Tensors

/// One transformation of a checkpoint in a ``Conversion``.
///
/// The built-in steps rename keys, re-wrap the state dict, cast dtypes and record the config.
/// Steps that need the inference engine (keyword-variant conversion, BN folding) conform to
/// this protocol in their own module and are inserted into ``Conversion/steps``.
public protocol ConversionStep: Sendable {
    /// A short description for the report (`rename keys`, `cast float16`).
    var summary: String { get }
    /// Transforms `state`, adding what it did to `report`.
    func apply(to state: inout ConversionState, report: inout ConversionReport) throws
}

/// Renames the state dict's keys with a ``KeyRenamer`` (string keys; others are left alone).
///
/// The state dict's `OrderedDict._metadata` (per-module versions) follows: a module path whose
/// parameters were all moved under one new path is renamed with them.
public struct RenameKeys: ConversionStep {
    /// The renaming rules.
    public var renamer: KeyRenamer
    /// Creates the step.
    public init(_ renamer: KeyRenamer) { self.renamer = renamer }

    public var summary: String { "rename keys" }

    public func apply(to state: inout ConversionState, report: inout ConversionReport) throws {
        try state.requireStateDict(for: "renaming keys")
        var sd = state.stateDict
        let positions = sd.entries.indices.filter { sd.entries[$0].key.string != nil }
        let keys = positions.map { sd.entries[$0].key.string ?? "" }
        let result = try renamer.rename(keys)
        for (p, name) in zip(positions, result.names) { sd.entries[p].key = .string(name) }
        if let meta = sd.metadata?.dict, !result.renamed.isEmpty {
            sd.metadata = .dict(Self.renamedModules(meta, result.renamed))
        }
        state.stateDict = sd
        report.renamed += result.renamed
        report.unchanged += result.unchanged
        report.unusedRules += result.unusedRules
    }

    /// Renames `_metadata` module paths that moved consistently (all leaves of `m.` → `m2.`).
    static func renamedModules(_ meta: CheckpointDict, _ renames: [KeyRename]) -> CheckpointDict {
        var out = meta
        for i in out.entries.indices {
            guard let module = out.entries[i].key.string, !module.isEmpty else { continue }
            var newModule: String?
            var consistent = true
            for r in renames where r.from.hasPrefix(module + ".") {
                let leaf = r.from.dropFirst(module.count + 1)
                guard !leaf.contains("."), r.to.hasSuffix("." + leaf) else {
                    consistent = false
                    break
                }
                let m = String(r.to.dropLast(leaf.count + 1))
                if let n = newModule, n != m { consistent = false }
                newModule = m
            }
            if consistent, let n = newModule { out.entries[i].key = .string(n) }
        }
        return out
    }
}

/// `--wrap KEY` / `--unwrap`: moves the state dict under a key of the root, or makes it the root.
public struct Rewrap: ConversionStep {
    /// What to do.
    public enum Mode: Sendable, Equatable {
        /// The output root is `{KEY: state dict, other entries...}` (a bare input's safetensors
        /// metadata, except `format`, becomes string entries beside it).
        case wrap(String)
        /// The output root is the state dict; other root entries are dropped (listed in the report).
        case unwrap
    }
    /// What to do.
    public var mode: Mode
    /// Creates the step.
    public init(_ mode: Mode) { self.mode = mode }

    public var summary: String {
        switch mode {
        case .wrap(let k): return "wrap under '\(k)'"
        case .unwrap: return "unwrap"
        }
    }

    public func apply(to state: inout ConversionState, report: inout ConversionReport) throws {
        try state.requireStateDict(for: summary)
        let sd = state.stateDict
        switch mode {
        case .unwrap:
            guard case .entry(let key) = state.location, let d = state.root.dict else { return }
            for e in d.entries {
                let k = CheckpointValue.keyText(e.key)
                if k != key { report.dropped.append(DroppedEntry(path: k, type: e.value.typeName, reason: "--unwrap")) }
            }
            state.root = .dict(sd)
            state.location = .root
        case .wrap(let key):
            switch state.location {
            case .root:
                var d = CheckpointDict([(.string(key), .dict(sd))])
                for (k, v) in ScalarTypes.restore(state.metadata) where k != "format" { d.set(.string(k), v) }
                state.metadata = []
                state.root = .dict(d)
            case .entry(let old):
                guard old != key, var d = state.root.dict else { return }
                guard d[key] == nil else {
                    throw ConversionError(
                        .usage, "cannot wrap under '\(key)': the checkpoint already has an entry '\(key)'")
                }
                if let i = d.entries.firstIndex(where: { $0.key.string == old }) {
                    d.entries[i].key = .string(key)
                }
                state.root = .dict(d)
            case .none: return
            }
            state.location = .entry(key)
        }
    }
}

/// `--dtype`: casts the state dict's floating tensors (see ``DTypeCast``); other tensors
/// (integer quantizer state, optimizer state outside the state dict) are kept as they are.
public struct CastFloatingTensors: ConversionStep {
    /// The target type (one of ``DTypeCast/targets``).
    public var target: DType
    /// Creates the step.
    /// - Throws: ``ConversionError`` `.usage` for a target `--dtype` does not accept.
    public init(to target: DType) throws(ConversionError) {
        guard DTypeCast.targets.contains(target) else {
            throw ConversionError(.usage, "--dtype must be float16, bfloat16 or float32 (got \(target.rawValue))")
        }
        self.target = target
    }

    public var summary: String { "cast to \(target.rawValue)" }

    public func apply(to state: inout ConversionState, report: inout ConversionReport) throws {
        try state.requireStateDict(for: summary)
        var sd = state.stateDict
        var cast = CastReport(dtype: target.rawValue, maxAbsError: 0, overflows: 0, tensors: [], kept: [])
        for i in sd.entries.indices {
            guard case .tensor(let t) = sd.entries[i].value else { continue }
            let name = CheckpointValue.keyText(sd.entries[i].key)
            guard DTypeCast.isCastable(t.dtype), t.dtype != target else {
                cast.kept.append(.init(name: name, dtype: t.dtype.rawValue))
                continue
            }
            let outcome = try DTypeCast.cast(t.materialize(), to: target)
            var stored = StoredTensor(outcome.tensor, key: name)
            stored.requiresGrad = t.requiresGrad
            stored.isParameter = t.isParameter
            sd.entries[i].value = .tensor(stored)
            cast.tensors.append(
                .init(
                    name: name, from: t.dtype.rawValue, maxAbsError: outcome.maxAbsError,
                    overflows: outcome.overflows))
            cast.maxAbsError = max(cast.maxAbsError, outcome.maxAbsError)
            cast.overflows += outcome.overflows
        }
        state.stateDict = sd
        report.cast = cast
    }
}
