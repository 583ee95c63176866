import Tensors

#if canImport(Glibc)
    import Glibc
#endif

/// Groups QTool quantizer tensors (`<layer>.quant_activation.*`, `.quant_weight.*`,
/// `.quant_output.*`; seed-reference §11.2) by layer and role.
enum QuantizerGrouping {
    static let roles = [
        ("quant_activation", "activation"), ("quant_weight", "weight"), ("quant_output", "output"),
    ]

    /// Splits `name` into (layer, role, parameter) when it is a quantizer tensor: the first
    /// dot-separated component equal to a marker, with something after it.
    static func parse(_ name: String) -> (layer: String, role: String, parameter: String)? {
        // Cheap pre-filter on the UTF-8 bytes: every marker contains "quant_".
        guard name.utf8.count > 7, containsQuant(name.utf8) else { return nil }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        for (i, part) in parts.enumerated() where i + 1 < parts.count {
            guard let role = roles.first(where: { $0.0 == part })?.1 else { continue }
            return (parts[..<i].joined(separator: "."), role, parts[(i + 1)...].joined(separator: "."))
        }
        return nil
    }

    private static func containsQuant(_ u: String.UTF8View) -> Bool {
        let needle = Array("quant_".utf8)
        let bytes = Array(u)
        guard bytes.count >= needle.count else { return false }
        for start in 0...(bytes.count - needle.count) where bytes[start] == needle[0] {
            if Array(bytes[start..<(start + needle.count)]) == needle { return true }
        }
        return false
    }

    /// Builds the groups, keeping file order of first appearance.
    static func groups(
        _ tensors: [(name: String, tensor: StoredTensor)], maxValues: Int = 64
    )
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
