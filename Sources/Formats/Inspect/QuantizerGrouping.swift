#if canImport(Glibc)
    import Glibc
#endif
import Tensors

/// Groups QTool quantizer tensors (`<layer>.quant_activation.*`, `.quant_weight.*`,
/// `.quant_output.*`; seed-reference §11.2) by layer and role.
enum QuantizerGrouping {
    static let roles = [
        ("quant_activation", "activation"), ("quant_weight", "weight"), ("quant_output", "output"),
    ]

    /// Splits `name` into (layer, role, parameter) when it is a quantizer tensor.
    static func parse(_ name: String) -> (layer: String, role: String, parameter: String)? {
        for (marker, role) in roles {
            guard let r = name.firstRange(of: "." + marker + ".") ?? prefixRange(name, marker) else { continue }
            let layer = String(name[..<r.lowerBound])
            let parameter = String(name[r.upperBound...])
            return (layer, role, parameter)
        }
        return nil
    }

    private static func prefixRange(_ name: String, _ marker: String) -> Range<String.Index>? {
        name.hasPrefix(marker + ".") ? name.firstRange(of: marker + ".") : nil
    }

    /// Builds the groups, keeping file order of first appearance.
    static func groups(_ tensors: [(name: String, tensor: StoredTensor)], maxValues: Int = 64)
        -> [InspectReport.QuantizerGroup]
    {
        var order: [String] = []
        var byKey: [String: InspectReport.QuantizerGroup] = [:]
        for (name, t) in tensors {
            guard let (layer, role, param) = parse(name) else { continue }
            let key = layer + "|" + role
            if byKey[key] == nil {
                order.append(key)
                byKey[key] = InspectReport.QuantizerGroup(
                    layer: layer, role: role, levels: nil, bits: nil, method: "", parameters: [])
            }
            let dense = t.materialize()
            let n = min(dense.elementCount, maxValues)
            let values = (0..<n).map { dense.element($0) }
            byKey[key]!.parameters.append(
                InspectReport.Parameter(
                    name: param, shape: t.shape, values: values, truncated: n < dense.elementCount))
            if param == "level_num", let v = values.first, v.isFinite, v >= 1, v < 1e9 {
                byKey[key]!.levels = Int(v)
                // 4 levels = 2 bits; 3 levels (ternary) = log2(3) = 1.58 bits.
                byKey[key]!.bits = (log2(Double(Int(v))) * 100).rounded() / 100
            }
        }
        return order.map { key in
            var g = byKey[key]!
            g.method = method(of: g)
            return g
        }
    }

    /// A best guess of the quantization method from the parameter names (seed-reference §11.2).
    static func method(of g: InspectReport.QuantizerGroup) -> String {
        let names = Set(g.parameters.map(\.name))
        if names.contains("basis") && names.contains("codec_vector") { return "LQ-Nets" }
        if names.contains("alpha0") { return g.levels == 3 ? "non-uniform (ternary)" : "non-uniform" }
        if names.contains("gamma") { return g.levels == 2 ? "XNOR-Net++" : "DoReFa family + gamma" }
        if names.contains("clip_val") { return g.role == "weight" ? "LSQ" : "LSQ or PACT" }
        if names.contains("times") && !names.contains("iteration") { return "legacy (pre-2020-07 names)" }
        if g.levels == 2 { return "XNOR / binary" }
        return "DoReFa"
    }

}
