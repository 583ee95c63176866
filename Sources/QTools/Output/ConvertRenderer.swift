import Formats

/// Renders a ``ConversionReport`` as text for a terminal.
enum ConvertRenderer {
    static func render(_ r: ConversionReport) -> String {
        func place(_ p: String) -> String { p.isEmpty ? "(root)" : "'\(p)'" }
        var out = ["\(r.input) (\(r.inputFormat)) -> \(r.output) (\(r.outputFormat))"]
        out.append("  state dict  \(place(r.stateDictPath)) -> \(place(r.outputStateDictPath))")
        out.append("  written     \(Numbers.counted(r.tensorsWritten, "tensor")), \(Numbers.counted(r.bytesWritten, "byte"))")
        if !r.steps.isEmpty { out.append("  steps       " + r.steps.joined(separator: ", ")) }
        if !r.renamed.isEmpty || !r.unusedRules.isEmpty {
            out.append("")
            out.append("renamed \(r.renamed.count) keys (\(r.unchanged.count) unchanged)")
            var t = TextTable(["FROM", "TO", "BY"])
            for k in r.renamed { t.add([k.from, k.to, k.rules.joined(separator: ", ")]) }
            if !r.renamed.isEmpty { out.append(t.render()) }
            if !r.unusedRules.isEmpty {
                out.append("unused rules (matched no key): \(r.unusedRules.count)")
                out += r.unusedRules.map { "  " + $0 }
            }
        }
        if let c = r.cast {
            out.append("")
            out.append(
                "cast to \(c.dtype): \(Numbers.counted(c.tensors.count, "tensor")), max abs error \(c.maxAbsError)"
                    + (c.overflows > 0 ? ", \(c.overflows) values overflowed to inf" : ""))
            var t = TextTable(["TENSOR", "FROM", "MAX ABS ERROR", "OVERFLOWS"], rightAligned: [2, 3])
            for x in c.tensors { t.add([x.name, x.from, "\(x.maxAbsError)", "\(x.overflows)"]) }
            if !c.tensors.isEmpty { out.append(t.render()) }
            if !c.kept.isEmpty {
                out.append("kept as they are: \(c.kept.count)")
                var k = TextTable(["TENSOR", "DTYPE"])
                for x in c.kept { k.add([x.name, x.dtype]) }
                out.append(k.render())
            }
        }
        if !r.dropped.isEmpty {
            out.append("")
            out.append("dropped \(Numbers.counted(r.dropped.count, "entry", plural: "entries"))")
            var t = TextTable(["PATH", "TYPE", "WHY"])
            for d in r.dropped { t.add([d.path, d.type, d.reason]) }
            out.append(t.render())
        }
        if !r.metadata.isEmpty {
            out.append("")
            out.append("metadata")
            var t = TextTable(["KEY", "VALUE"])
            for k in r.metadata.keys.sorted() {
                let v = r.metadata[k] ?? ""
                t.add([k, v.count > 80 ? String(v.prefix(77)) + "..." : v])
            }
            out.append(t.render())
        }
        if let c = r.config {
            out.append("")
            out.append(
                "config      \(c.file): model \(c.model), keywords \(c.keywords.joined(separator: ","))"
                    + (c.overrides.isEmpty ? "" : ", overrides \(c.overrides.joined(separator: " "))"))
        }
        if !r.notes.isEmpty { out.append("") }
        for n in r.notes { out.append("note        \(n)") }
        for v in r.verification {
            out.append("verified    \(v.verifier): \(v.detail)")
        }
        return out.joined(separator: "\n")
    }
}
