import Tensors

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The file formats `qtools convert` writes.
public enum OutputFormat: String, Sendable, Codable, CaseIterable {
    /// `torch.save` zip (torch ≥ 1.6); keeps the whole tree.
    case pt
    /// `torch.save` legacy format (torch ≤ 1.5 readers); keeps the whole tree.
    case ptLegacy = "pt-legacy"
    /// safetensors: tensors by dotted name, scalars as `__metadata__` strings.
    case safetensors
    /// NumPy npz: tensors by dotted name, int/float/bool scalars as 0-d arrays.
    case npz

    /// The default for an output path: `.pth .pt .tar .ckpt .bin` → pt, `.safetensors`, `.npz`.
    public static func forPath(_ path: String) -> OutputFormat? {
        let base = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = base.lastIndex(of: ".") else { return nil }
        switch base[base.index(after: dot)...].lowercased() {
        case "pth", "pt", "tar", "ckpt", "bin": return .pt
        case "safetensors": return .safetensors
        case "npz": return .npz
        default: return nil
        }
    }
}

/// A checker run on the written file before it replaces the output path.
///
/// ``Conversion/run(inputPath:outputPath:overwrite:progress:)`` writes the temporary file,
/// reads it back, and calls every verifier with the input as read, the object tree handed to
/// the writer, and the file as read back. A failed result (or a throw) aborts the conversion:
/// the temporary file is removed and nothing is written. The engine-based verifier (run both
/// models on the same input, compare outputs) conforms to this protocol in the Models
/// module; the Formats module ships ``WrittenTensorsVerifier``.
public protocol ConversionVerifier: Sendable {
    /// The name in reports.
    var name: String { get }
    /// Checks one conversion.
    func verify(_ context: VerificationContext) throws -> VerificationResult
}

/// What a ``ConversionVerifier`` sees.
public struct VerificationContext: Sendable {
    /// The input as read.
    public var source: Checkpoint
    /// The converted state (after every step), before format-specific flattening.
    public var converted: ConversionState
    /// The object handed to the writer (for flat formats, the flat dict of what was written).
    public var expected: CheckpointValue
    /// The written file, read back with ``ModelFile``.
    public var written: Checkpoint
    /// The output format.
    public var format: OutputFormat
    /// The report so far (renames, casts).
    public var report: ConversionReport
}

/// Checks that the written file holds exactly the tensors handed to the writer: the same names,
/// dtypes, shapes and bytes (no engine needed; `--no-verify` skips it).
public struct WrittenTensorsVerifier: ConversionVerifier {
    /// Creates the verifier.
    public init() {}
    public var name: String { "written-tensors" }

    public func verify(_ context: VerificationContext) throws -> VerificationResult {
        let expected = context.expected.allTensors()
        var written: [String: StoredTensor] = [:]
        for (p, t) in context.written.allTensors() { written[p] = t }
        func fail(_ why: String) -> VerificationResult {
            VerificationResult(verifier: name, passed: false, detail: why)
        }
        guard expected.count == written.count else {
            return fail("expected \(expected.count) tensors, the file holds \(written.count)")
        }
        for (path, e) in expected {
            guard let w = written[path] else { return fail("tensor \(path) is missing from the file") }
            guard w.dtype == e.dtype, w.shape == e.shape else {
                return fail("tensor \(path): \(w.dtype.rawValue)\(w.shape) written, \(e.dtype.rawValue)\(e.shape) expected")
            }
            guard w.materialize().data == e.materialize().data else {
                return fail("tensor \(path): the bytes differ")
            }
        }
        return VerificationResult(
            verifier: name, passed: true,
            detail: "\(expected.count) \(expected.count == 1 ? "tensor" : "tensors") read back bit-identical")
    }
}

/// A checkpoint conversion: steps applied in order to the input, then written in one format,
/// read back and verified before the output path is replaced.
///
/// ```swift
/// var c = Conversion(format: .safetensors)
/// c.steps = [RenameKeys(renamer), try CastFloatingTensors(to: .float16)]
/// c.verifiers.append(EngineVerifier(...))   // later, from the Models module
/// let report = try c.run(inputPath: "in.pth", outputPath: "out.safetensors")
/// ```
///
/// Flat formats cannot hold everything a torch checkpoint does. What does not fit (optimizer
/// state, nested lists, `None`/str for npz, safetensors metadata for a bare torch file) is
/// listed, and the conversion fails with a `.usage` error unless ``dropExtra`` is set; then the
/// entries are listed in ``ConversionReport/dropped``.
public struct Conversion: Sendable {
    /// The steps, applied in order.
    public var steps: [any ConversionStep]
    /// The output format.
    public var format: OutputFormat
    /// Consent to drop entries the format cannot hold.
    public var dropExtra: Bool
    /// Verifiers run on the written file.
    public var verifiers: [any ConversionVerifier]

    /// A conversion with no steps and the built-in verifier.
    public init(
        format: OutputFormat, steps: [any ConversionStep] = [], dropExtra: Bool = false,
        verifiers: [any ConversionVerifier] = [WrittenTensorsVerifier()]
    ) {
        self.format = format
        self.steps = steps
        self.dropExtra = dropExtra
        self.verifiers = verifiers
    }

    /// The payload for the writer.
    enum Payload {
        case tree(CheckpointValue)
        case flat(tensors: [(name: String, tensor: Tensor)], metadata: [String: String])

        var expected: CheckpointValue {
            switch self {
            case .tree(let v): return v
            case .flat(let tensors, _):
                return .dict(
                    CheckpointDict(tensors.map { (.string($0.name), .tensor(StoredTensor($0.tensor, key: $0.name))) }))
            }
        }
    }

    /// Applies the steps to `checkpoint` in memory.
    /// - Throws: the steps' errors (``ConversionError`` and others).
    public func transform(
        _ checkpoint: Checkpoint, report: inout ConversionReport
    ) throws -> ConversionState {
        var state = ConversionState(checkpoint)
        for step in steps {
            report.steps.append(step.summary)
            try step.apply(to: &state, report: &report)
        }
        report.outputStateDictPath = state.location.path
        return state
    }

    /// The writer's payload for ``format``, with what it cannot hold.
    func payload(_ state: ConversionState, report: inout ConversionReport) throws -> Payload {
        var dropped: [DroppedEntry] = []
        let payload: Payload
        let extraMetadata = state.metadata.filter { $0.key != "format" }
        switch format {
        case .pt, .ptLegacy:
            if state.recordsConfig, extraMetadata.contains(where: { $0.key == ConversionState.configRecordKey }) {
                throw ConversionError(
                    .usage,
                    "a bare state dict has no place for the config record; add --wrap state_dict (or write safetensors)")
            }
            for (k, v) in extraMetadata {
                dropped.append(
                    DroppedEntry(path: "metadata." + k, type: "str", reason: "\(format.rawValue) keeps no metadata: \(Self.clip(v))"))
            }
            payload = .tree(state.root)
        case .safetensors, .npz:
            let (tensors, scalars, other) = try Self.flatten(state)
            for (path, type) in other {
                dropped.append(DroppedEntry(path: path, type: type, reason: "\(format.rawValue) holds only tensors"))
            }
            if format == .safetensors {
                var meta: [String: String] = [:]
                for (k, v) in state.metadata { meta[k] = v }
                for (name, value) in scalars {
                    guard let text = value.pythonText else { continue }
                    guard meta[name] == nil else { throw FormatError(.duplicateName(name), tensor: name) }
                    meta[name] = text
                }
                if let types = ScalarTypes.record(scalars), meta[ScalarTypes.key] == nil { meta[ScalarTypes.key] = types }
                report.metadata = meta
                payload = .flat(tensors: tensors, metadata: meta)
            } else {
                if state.recordsConfig {
                    throw ConversionError(
                        .usage, "npz has no place for the config record (--config); write pt or safetensors")
                }
                // Dtypes NumPy lacks are the user's choice to change: a usage error with the way out.
                if let bad = tensors.first(where: { NpyHeader.descr(for: $0.tensor.dtype) == nil }) {
                    throw ConversionError(
                        .usage,
                        "npz cannot hold \(bad.tensor.dtype) tensors ('\(bad.name)'; NumPy has no such dtype); "
                            + "add --dtype float32, or write pt or safetensors")
                }
                var arrays = tensors
                for (name, value) in scalars {
                    if let a = Self.scalarArray(value) {
                        arrays.append((name, a))
                    } else {
                        dropped.append(DroppedEntry(path: name, type: value.typeName, reason: "npz holds numeric arrays only"))
                    }
                }
                for (k, v) in extraMetadata {
                    dropped.append(DroppedEntry(path: "metadata." + k, type: "str", reason: "npz keeps no metadata: \(Self.clip(v))"))
                }
                payload = .flat(tensors: arrays, metadata: [:])
            }
        }
        if !dropped.isEmpty && !dropExtra {
            let list = dropped.prefix(12).map { "\($0.path) (\($0.type))" }.joined(separator: ", ")
            let more = dropped.count > 12 ? ", and \(dropped.count - 12) more" : ""
            // The way to keep them: a bare torch state dict keeps metadata only under a wrapping
            // key; the flat formats keep everything only as pt.
            let keep =
                format == .pt || format == .ptLegacy
                ? "--wrap state_dict to keep them as string entries beside the state dict"
                : "write pt (--format pt, or a .pth output) to keep them"
            throw ConversionError(
                .usage,
                "\(format.rawValue) cannot hold \(list)\(more); pass --drop-extra to write the file without them, or \(keep)")
        }
        report.dropped += dropped
        return payload
    }

    static func clip(_ s: String) -> String { s.count > 40 ? String(s.prefix(37)) + "..." : s }

    /// Tensors of the state dict by dotted name, the scalar leaves beside them, and the
    /// entries a flat file cannot hold (path, type).
    static func flatten(
        _ state: ConversionState
    ) throws -> (
        tensors: [(name: String, tensor: Tensor)], scalars: [(name: String, value: CheckpointValue)],
        other: [(String, String)]
    ) {
        var other: [(String, String)] = []
        var scalars: [(name: String, value: CheckpointValue)] = []
        let inner: CheckpointValue
        switch state.location {
        case .none:
            inner = state.root
        case .root:
            inner = .dict(state.stateDict)
        case .entry(let key):
            inner = .dict(state.stateDict)
            for e in state.root.dict?.entries ?? [] {
                let k = CheckpointValue.keyText(e.key)
                guard k != key else { continue }
                if e.value.pythonText != nil {
                    scalars.append((k, e.value))
                } else {
                    other.append((k, e.value.typeName))
                }
            }
        }
        let flat = try Checkpoint(format: .torchZip, root: inner).flattened()
        return (flat.tensors.map { ($0.name, $0.tensor.materialize()) }, flat.scalars + scalars, other)
    }

    /// A scalar as `np.savez` stores it: bool → `|b1`, int → `<i8`, float → `<f8`; nil otherwise.
    static func scalarArray(_ v: CheckpointValue) -> Tensor? {
        var w = ByteWriter()
        let dtype: DType
        switch v {
        case .bool(let b): dtype = .bool; w.u8(b ? 1 : 0)
        case .int(let i): dtype = .int64; w.u64(UInt64(bitPattern: i))
        case .float(let d): dtype = .float64; w.u64(d.bitPattern)
        default: return nil
        }
        return try? Tensor(dtype: dtype, shape: [], data: ByteSlice(w.bytes))
    }

    /// Writes a payload.
    func write(_ payload: Payload, to sink: ByteSink, outputPath: String) throws {
        switch (format, payload) {
        case (.pt, .tree(let v)):
            try TorchZipWriter.write(v, to: sink, archiveName: TorchZipWriter.archiveName(forOutputPath: outputPath))
        case (.ptLegacy, .tree(let v)):
            try LegacyWriter.write(v, to: sink)
        case (.safetensors, .flat(let tensors, let meta)):
            try SafeTensorsWriter.write(tensors, metadata: meta, to: sink)
        case (.npz, .flat(let tensors, _)):
            try NpzWriter.write(tensors, to: sink)
        default:
            preconditionFailure("payload does not match format \(format)")
        }
    }

    /// Converts `inputPath` into `outputPath` atomically.
    ///
    /// Order: refuse an output that is the input (same path or same inode, even with
    /// `overwrite`); create the temporary output (fails early on an existing output without
    /// `overwrite`, or an unwritable directory); read the input; run the steps; write; read the
    /// written file back and run the verifiers; rename onto `outputPath`. Any failure leaves no
    /// output and no temporary file; the input is only read.
    ///
    /// - Parameter progress: called with a phase description (`reading`, `writing`, ...).
    /// - Throws: ``ConversionError``, ``FormatError``, ``Tensors/ByteStore/OpenError`` (input),
    ///   ``OutputFile/WriteError`` (output).
    /// - Parameter alsoReading: other files the command reads (mapping files, the config),
    ///   which the output must not be either (``OutputSafety``).
    public func run(
        inputPath: String, outputPath: String, overwrite: Bool = false, alsoReading: [String?] = [],
        progress: (String) -> Void = { _ in }
    ) throws -> ConversionReport {
        try Self.refuseSameFile(inputPath, outputPath)
        let out = try OutputFile(path: outputPath, overwrite: overwrite, reading: [inputPath] + alsoReading)
        progress("reading \(inputPath)")
        // Every byte is read to be written, so every zip record's CRC-32 is checked too.
        let opened = try ModelFile.open(path: inputPath, verifyCRC: true)
        try out.refuse(reading: opened.externalFiles)
        var report = ConversionReport(
            input: inputPath, output: outputPath, inputFormat: opened.checkpoint.format.rawValue,
            outputFormat: format.rawValue, stateDictPath: ConversionState(opened.checkpoint).location.path)
        progress("converting")
        let state = try transform(opened.checkpoint, report: &report)
        let payload = try payload(state, report: &report)
        progress("writing \(outputPath)")
        try write(payload, to: out, outputPath: outputPath)
        try out.flush()
        report.bytesWritten = out.position
        let expected = payload.expected
        report.tensorsWritten = expected.allTensors().count
        if !verifiers.isEmpty {
            progress("verifying")
            let written = try withContext(file: out.temporaryPath) {
                try ModelFile.open(path: out.temporaryPath).checkpoint
            }
            for v in verifiers {
                let context = VerificationContext(
                    source: opened.checkpoint, converted: state, expected: expected, written: written,
                    format: format, report: report)
                let result = try v.verify(context)
                report.verification.append(result)
                guard result.passed else {
                    throw ConversionError(
                        .verificationFailed, "verification '\(result.verifier)' failed: \(result.detail); nothing written")
                }
            }
        }
        try out.commit()
        return report
    }

    /// Throws `.usage` when `output` names the input file (same path, or same device and inode).
    public static func refuseSameFile(_ input: String, _ output: String) throws(ConversionError) {
        do {
            try OutputSafety.refuse(output: output, reading: [input])
        } catch {
            throw ConversionError(.usage, error.description)
        }
    }
}
