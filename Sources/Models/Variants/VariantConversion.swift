import Engine
import Formats
import QToolConfig
import Tensors

/// Re-keys and reshapes a checkpoint from one model variant to another where the weights
/// correspond (`qtools convert --to-config`): `pytorch-resnetXX` ↔ `resnetXX` (§7.12), full
/// precision → quantized (every quantizer tensor of the target created with the value the
/// PyTorch constructor gives, §11.2), quantized → full precision (quantizer tensors dropped,
/// reported), one method → another, layer-order variants with the same tensors.
///
/// The target's key set comes from a fresh build of the target config (``ModelBuilder``,
/// ``QuantizerKeys``). Keys are matched through a canonical name (torchvision's: `bn1.0.` →
/// `bn1.`, `convN.0.` → `convN.`, `skip.<conv>.` → `downsample.0.`, `skip.<bn>.` →
/// `downsample.1.`). A quantizer's tensors are copied when the source has the same quantizer
/// (method, levels) with the same shapes, else created fresh (`iteration` 0). A non-quantizer
/// tensor the target needs but the source lacks (or has with another shape), or a source
/// tensor with no place in the target, is an error naming the tensors.
package enum VariantConversion {
    package struct Result: Sendable {
        package var entries: [(name: String, tensor: Tensor)]
        /// (source, target) key pairs whose name changed.
        package var renamed: [(from: String, to: String)]
        /// Quantizer tensors created with their initial values.
        package var created: [String]
        /// Quantizer tensors of the source the target has no place for.
        package var dropped: [String]
    }

    static let quantizerParts = [".quant_activation.", ".quant_weight.", ".quant_output."]

    /// The quantizer module (`layer1.0.conv1.0.quant_weight`) a key belongs to, if any.
    package static func quantizerPrefix(_ key: String) -> (layer: String, part: String)? {
        for p in quantizerParts {
            if let r = key.range(of: p) {
                return (String(key[..<r.lowerBound]), String(p.dropFirst().dropLast()))
            }
        }
        return nil
    }

    /// Canonical (torchvision-style) names for `keys`.
    static func canonical(_ keys: [String]) -> [String: String] {
        // skip.K is a conv when it has a 4-d weight in the same model, a BN when it has running stats.
        var skipBN = Set<String>()
        for k in keys where k.hasSuffix(".running_mean") && k.contains(".skip.") { skipBN.insert(String(k.dropLast(13))) }
        var out: [String: String] = [:]
        for k in keys {
            var parts = k.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            var i = 0
            var result: [String] = []
            while i < parts.count {
                let p = parts[i]
                let next = i + 1 < parts.count ? parts[i + 1] : nil
                let isTopBN1 = i == 0 && p == "bn1"
                let isBlockPart = i == 2 && parts[0].hasPrefix("layer") && (p.hasPrefix("conv") || p.hasPrefix("bn"))
                if (isTopBN1 || isBlockPart) && next == "0" {
                    result.append(p)
                    i += 2
                    continue
                }
                if i == 2 && parts[0].hasPrefix("layer") && p == "skip", let next {
                    let module = parts[0...3].joined(separator: ".")
                    result.append("downsample")
                    result.append(skipBN.contains(module) ? "1" : "0")
                    _ = next
                    i += 2
                    continue
                }
                result.append(p)
                i += 1
            }
            parts = result
            out[k] = parts.joined(separator: ".")
        }
        return out
    }

    /// Converts `stateDict` (a checkpoint of `source`) to the tensors of `target`.
    package static func convert(
        source: QToolOptions, target: QToolOptions, stateDict: [(name: String, tensor: Tensor)]
    ) throws -> Result {
        let fresh = try ModelBuilder.buildRandom(options: target, seed: nil)
        var declared: [(key: String, shape: [Int], required: Bool)] = []
        var seen = Set<String>()
        for d in fresh.declaredTensors where seen.insert(d.key).inserted { declared.append(d) }
        let shapes = Dictionary(declared.map { ($0.key, $0.shape) }, uniquingKeysWith: { a, _ in a })

        let sourceKeys = stateDict.map(\.name)
        var src: [String: Tensor] = [:]
        for (k, t) in stateDict { src[k] = t }
        let canonS = canonical(sourceKeys)
        let canonT = canonical(declared.map(\.key))
        var byCanonS: [String: String] = [:]
        for k in sourceKeys { byCanonS[canonS[k]!] = k }
        func sourceKey(_ t: String) -> String? { byCanonS[canonT[t]!] }

        // Quantizers: copy when the same quantizer with the same shapes exists in the source.
        func config(_ o: QToolOptions, _ part: String) -> QuantizerConfig? {
            let tag: QuantizerTag = part == "quant_activation" ? .fm : part == "quant_weight" ? .wt : .ot
            return try? QuantizerConfig(options: o, tag: tag, shape: [1, 1, 1, 1])
        }
        var reuse: [String: Bool] = [:]
        for d in declared {
            guard let (layer, part) = quantizerPrefix(d.key) else { continue }
            let q = layer + "." + part
            let a = config(source, part), b = config(target, part)
            var ok = reuse[q] ?? (a?.choice == b?.choice && a?.levels == b?.levels && a?.bit == b?.bit && a?.choice != nil)
            if d.required || d.key.hasSuffix(".level_num") {
                if let s = sourceKey(d.key), let t = src[s], t.shape == d.shape {} else if d.required { ok = false }
            }
            reuse[q] = ok
        }

        var entries: [(name: String, tensor: Tensor)] = []
        var used = Set<String>()
        var renamed: [(String, String)] = []
        var created: [String] = []
        var missing: [String] = []
        var misShaped: [String] = []
        for d in declared {
            if let (layer, part) = quantizerPrefix(d.key), reuse[layer + "." + part] != true {
                if d.key.hasSuffix(".times") { continue }
                entries.append((d.key, try initialValue(d.key, d.shape, layer: layer, part: part, target: target, shapes: shapes)))
                created.append(d.key)
                if let s = sourceKey(d.key) { used.insert(s) }
                continue
            }
            guard let s = sourceKey(d.key), let t = src[s] else {
                if d.required { missing.append("\(d.key) \(d.shape)") }
                continue
            }
            guard t.shape == d.shape else {
                misShaped.append("\(s) \(t.shape) -> \(d.key) \(d.shape)")
                used.insert(s)  // reported as a mismatch, not again as having no place
                continue
            }
            used.insert(s)
            entries.append((d.key, t))
            if s != d.key { renamed.append((s, d.key)) }
        }
        var dropped: [String] = []
        var extra: [String] = []
        for k in sourceKeys where !used.contains(k) {
            if quantizerPrefix(k) != nil { dropped.append(k) } else { extra.append(k) }
        }
        if !missing.isEmpty || !misShaped.isEmpty || !extra.isEmpty {
            // A summary (a width mismatch lists every conv), with the likely cause.
            func summary(_ items: [String]) -> String {
                items.prefix(4).joined(separator: ", ") + (items.count > 4 ? ", and \(items.count - 4) more" : "")
            }
            var lines: [String] = [
                "the checkpoint does not correspond to model \(target.model) [\(target.keywords.joined(separator: ","))]:"
            ]
            if !missing.isEmpty { lines.append("\(missing.count) target tensor(s) with no source: " + summary(missing)) }
            if !misShaped.isEmpty { lines.append("\(misShaped.count) shape mismatch(es): " + summary(misShaped)) }
            if !extra.isEmpty { lines.append("\(extra.count) source tensor(s) with no place in the target: " + summary(extra)) }
            if !misShaped.isEmpty, source.widthAlpha != target.widthAlpha {
                lines.append(
                    "the configs differ in --width_alpha (source \(source.widthAlpha), target \(target.widthAlpha)); give the target the source's"
                )
            } else if !misShaped.isEmpty {
                lines.append("the layer widths differ: is the checkpoint trained with another --width_alpha than its config says?")
            }
            throw ConversionError(.unsupported, lines.joined(separator: "\n  "))
        }
        return Result(entries: entries, renamed: renamed, created: created, dropped: dropped)
    }

    /// The value QTool's constructor gives a quantizer tensor (§11.2, §11.9).
    package static func initialValue(
        _ key: String, _ shape: [Int], layer: String, part: String, target: QToolOptions, shapes: [String: [Int]]
    ) throws -> Tensor {
        let w = shapes[layer + ".weight"] ?? [1, 1, 1, 1]
        let tag: QuantizerTag
        let qshape: [Int]
        switch part {
        case "quant_activation":
            tag = .fm
            qshape = [1, w.count == 2 ? w[1] : w[1], 1, 1]
        case "quant_weight":
            tag = .wt
            qshape = w.count == 2 ? [1, 1, w[0], w[1]] : w
        default:
            tag = .ot
            qshape = [1, w[0], 1, 1]
        }
        let c = try QuantizerConfig(options: target, tag: tag, shape: qshape)
        let n = shape.reduce(1, *)
        let leaf = String(key.split(separator: ".").last ?? "")
        func filled(_ v: Double) -> Tensor { Tensor(floats: [Float](repeating: Float(v), count: n), shape: shape) }
        switch leaf {
        case "iteration", "times", "auxil": return filled(0)
        case "level_num": return filled(Double(c.levels))
        case "clip_val": return filled(c.boundary)
        case "gamma": return filled(1)
        case let a where a.hasPrefix("alpha"): return filled(tag == .wt ? c.scale : c.scale / c.boundary)
        case "basis" where c.method == .nonUniform: return filled(1)
        case "basis":
            let bits = shape[0], groups = shape.count > 1 ? shape[1] : 1
            let fan = Double(w.count == 2 ? w[1] : w.dropFirst().reduce(1, *))
            let scale = tag == .wt ? 0.6745 * (2 / fan).squareRoot() : 0.6745 * 2
            let base = scale / Double(1 << (bits - 1))
            var v = [Float]()
            for i in 0..<bits { for _ in 0..<groups { v.append(Float(Double(1 << i) * base)) } }
            return Tensor(floats: v, shape: shape)
        case "codec_vector":
            let (levels, bits) = (shape[0], shape[1])
            var v = [Float]()
            for l in 0..<levels { for i in 0..<bits { v.append((l >> i) & 1 == 1 ? 1 : (c.halfRange ? 0 : -1)) } }
            return Tensor(floats: v, shape: shape)
        case "codec_index":
            var bytes = [UInt8]()
            for l in 0..<n {
                let u = UInt32(l)
                bytes += [
                    UInt8(truncatingIfNeeded: u), UInt8(truncatingIfNeeded: u >> 8), UInt8(truncatingIfNeeded: u >> 16),
                    UInt8(truncatingIfNeeded: u >> 24),
                ]
            }
            return try Tensor(dtype: .int32, shape: shape, data: ByteSlice(bytes))
        case "thrs_multiplier":
            let (rows, levels) = (shape[0], shape[1])
            var v = [Float](repeating: 0, count: rows * levels)
            for i in 1...max(rows, 1) where i <= rows {
                v[(i - 1) * levels + i - 1] = 0.5
                v[(i - 1) * levels + i] = 0.5
            }
            return Tensor(floats: v, shape: shape)
        default:
            throw ConversionError(.unsupported, "no initial value known for quantizer tensor \(key)")
        }
    }
}

/// `--to-config`: ``VariantConversion`` on the state dict.
package struct VariantConversionStep: ConversionStep {
    package var source: QToolOptions
    package var target: QToolOptions
    /// True when the source / target has an enabled quantizer.
    package var sourceQuantized: Bool
    package var targetQuantized: Bool

    package init(source: QToolOptions, target: QToolOptions) throws {
        self.source = source
        self.target = target
        func quantized(_ o: QToolOptions) -> Bool {
            [QuantizerTag.fm, .wt, .ot].contains { (try? QuantizerConfig(options: o, tag: $0, shape: [1, 1, 1, 1]))?.isEnabled == true }
        }
        sourceQuantized = quantized(source)
        targetQuantized = quantized(target)
    }

    package var summary: String { "convert variant \(source.model) -> \(target.model)" }

    package func apply(to state: inout ConversionState, report: inout ConversionReport) throws {
        let sd = state.stateDict
        let r = try VariantConversion.convert(source: source, target: target, stateDict: stateDictEntries(sd))
        state.stateDict = FoldBatchNormStep.replacing(sd, with: r.entries, fresh: Set(r.created))
        for (a, b) in r.renamed { report.notes.append("renamed \(a) -> \(b)") }
        for k in r.created { report.notes.append("created \(k)") }
        for k in r.dropped { report.notes.append("dropped \(k) (quantizer tensor the target does not have)") }
        report.notes.append(
            "variant: \(r.entries.count) tensors, \(r.renamed.count) renamed, \(r.created.count) quantizer tensors created, \(r.dropped.count) dropped"
        )
    }
}
