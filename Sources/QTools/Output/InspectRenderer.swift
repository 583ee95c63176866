import Formats
import Tensors

/// Renders an ``InspectReport`` as text for a terminal.
enum InspectRenderer {
    static func render(_ r: InspectReport, stats: Bool) -> String {
        var out: [String] = [r.file]
        out.append("  format    \(r.formatDescription), \(Numbers.grouped(r.fileBytes)) bytes")
        // A packed file's manifest is shown as its table, and its config record clipped.
        let facts = r.facts.filter { r.packed == nil || $0.key != "metadata." + PackedFile.manifestKey }.map {
            r.packed == nil ? "\($0.key) \($0.value)" : clip("\($0.key) \($0.value)", 100)
        }
        if !facts.isEmpty {
            out += wrap(facts, first: "  container ", next: "            ")
        }
        if let s = r.safety {
            if s.weightsOnlyLoadable {
                out.append("  safety    torch.load(weights_only=True) accepts it (\(s.globals.count) globals, all allowlisted)")
            } else if s.unsafeGlobals.isEmpty {
                out.append("  safety    torch.load(weights_only=True) REFUSES it (opcodes or container; see container facts)")
            } else {
                out.append("  safety    torch.load(weights_only=True) REFUSES it: " + s.unsafeGlobals.joined(separator: ", "))
                out.append("            (qtools never runs them: they are read as placeholders; tensors are intact)")
            }
        }
        if let p = r.packed { out += packed(p) }
        if !r.entries.isEmpty {
            out.append("")
            out.append("entries")
            var t = TextTable(["KEY", "TYPE", "VALUE"])
            for e in r.entries { t.add([e.path, e.type, clip(e.value, 100)]) }
            out.append(t.render())
        }
        if let sd = r.stateDict {
            out.append("")
            let place = sd.path.isEmpty ? "the root object" : "'\(sd.path)'"
            var line = "state dict  (\(sd.kind) at \(place), \(Numbers.counted(r.tensors.count, "tensor"))"
            if let p = sd.commonPrefix { line += "; every key starts with '\(p)'" }
            out.append(line + ")")
            out.append(table(r.tensors, stats: stats))
        }
        if !r.quantizers.isEmpty {
            out.append("")
            let layers = Set(r.quantizers.map(\.layer)).count
            out.append("quantizers  (\(plural(r.quantizers.count, "quantizer")) in \(plural(layers, "layer")))")
            var lastLayer = ""
            for q in r.quantizers {
                if q.layer != lastLayer { out.append("  " + q.layer); lastLayer = q.layer }
                var head = "    " + q.role.padding(10) + " " + q.method
                if let l = q.levels {
                    head += ", \(l) levels"
                    if let b = q.bits { head += " (\(Numbers.short(b, digits: 2)) bits)" }
                }
                out.append(head)
                for p in q.parameters where p.name != "level_num" {
                    out.append("      " + p.name + Shapes.describe(p.shape) + " = " + values(p))
                }
            }
        }
        if !r.otherTensors.isEmpty {
            out.append("")
            out.append(r.stateDict == nil ? "tensors" : "other tensors  (outside the state dict)")
            out.append(table(r.otherTensors, stats: stats))
        }
        out.append("")
        let t = r.totals
        let dtypes = t.bytesByDType.sorted { $0.value > $1.value }.map { "\($0.key) \(Numbers.bytes($0.value))" }
        out.append(
            "total  \(Numbers.counted(t.tensors, "tensor")) · \(Numbers.counted(t.elements, "element")) · "
                + "\(Numbers.bytes(t.bytes))" + (dtypes.isEmpty ? "" : " (" + dtypes.joined(separator: ", ") + ")")
                + " · \(Numbers.counted(t.storages, "storage"))")
        return out.joined(separator: "\n")
    }

    /// The manifest of a packed (bnnpack) file: one row per packed layer, then the sizes.
    static func packed(_ p: PackedSummary) -> [String] {
        let m = p.manifest
        var out = [
            "", "packed model  (\(m.format) \(m.version), model \(m.model), padding \(m.padding.replacingOccurrences(of: "_", with: " ")))",
        ]
        var t = TextTable(["LAYER", "OP", "WEIGHTS", "INPUT", "PAD", "K", "PAD WASTE", "BYTES", "FLOAT32"], rightAligned: [5, 6, 7, 8])
        for l in p.layers {
            t.add([
                l.name, l.op, l.weightEncoding, l.inputEncoding, l.padValue, Numbers.grouped(l.k),
                Numbers.short(l.paddingWaste * 100, digits: 3) + "%", Numbers.grouped(l.packedBytes), Numbers.grouped(l.float32Bytes),
            ])
        }
        out.append(t.render())
        for f in m.floatLayers { out.append("  kept as float: \(f.name) (\(f.reason))") }
        func ratio(_ x: Double) -> String { x == 0 ? "-" : "1/" + Numbers.short(1 / x, digits: 3) }
        out.append(
            "  packed layers \(Numbers.bytes(p.packedBytes)) = \(ratio(p.packedLayersRatio)) of their float32 \(Numbers.bytes(p.packedLayersFloat32Bytes)); "
                + "whole file = \(ratio(p.fileRatio)) of the model's float32 weights (\(Numbers.bytes(p.modelFloat32Bytes)))")
        return out
    }

    static func table(_ rows: [InspectReport.TensorRow], stats: Bool) -> String {
        var header = ["NAME", "DTYPE", "SHAPE", "ELEMENTS", "BYTES"]
        if stats { header += ["MIN", "MAX", "MEAN", "STD", "ZEROS", "LEVELS"] }
        var t = TextTable(header, rightAligned: stats ? [3, 4, 5, 6, 7, 8, 9] : [3, 4])
        for r in rows {
            var name = r.name
            if !r.contiguous { name += " (view)" }
            let dtype = stats && r.stats?.ofModulus == true ? r.dtype + " (stats of |z|)" : r.dtype
            var cells = [name, dtype, Shapes.describe(r.shape), Numbers.grouped(r.elements), Numbers.grouped(r.bytes)]
            if stats, let s = r.stats {
                cells += [
                    s.min.map { Numbers.short($0) } ?? "-", s.max.map { Numbers.short($0) } ?? "-",
                    s.mean.map { Numbers.short($0) } ?? "-", s.std.map { Numbers.short($0) } ?? "-",
                    Numbers.short(s.zeroFraction * 100, digits: 1) + "%",
                    s.levels.map { l in l.count <= 5 ? "{" + l.map { Numbers.short($0) }.joined(separator: ",") + "}" : "\(l.count)" }
                        ?? "",
                ]
            }
            t.add(cells)
        }
        return t.render()
    }

    static func values(_ p: InspectReport.Parameter) -> String {
        let v = p.values
        if v.count <= 4 && !p.truncated {
            return v.count == 1 ? Numbers.short(v[0]) : "[" + v.map { Numbers.short($0) }.joined(separator: ", ") + "]"
        }
        let lo = v.min() ?? 0, hi = v.max() ?? 0
        let head = v.prefix(4).map { Numbers.short($0) }.joined(separator: ", ")
        return "[" + head + ", ...]  (min \(Numbers.short(lo)), max \(Numbers.short(hi))" + (p.truncated ? ", first \(v.count) shown" : "")
            + ")"
    }

    static func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)" + (n == 1 ? "" : "s") }

    /// Joins items with " · " into lines of at most `width` characters.
    static func wrap(_ items: [String], first: String, next: String, width: Int = 100) -> [String] {
        var lines: [String] = []
        var line = first
        for item in items {
            if line != first && line != next && line.count + 3 + item.count > width {
                lines.append(line)
                line = next
            }
            line += (line == first || line == next ? "" : " · ") + item
        }
        lines.append(line)
        return lines
    }

    static func clip(_ s: String, _ n: Int) -> String { s.count <= n ? s : String(s.prefix(n - 3)) + "..." }
}

extension String {
    func padding(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}
