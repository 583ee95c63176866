/// Left/right aligned columns for terminal listings.
struct TextTable {
    var header: [String]
    var rightAligned: Set<Int>
    var rows: [[String]] = []

    init(_ header: [String], rightAligned: Set<Int> = []) {
        self.header = header
        self.rightAligned = rightAligned
    }

    mutating func add(_ row: [String]) { rows.append(row) }

    func render(indent: String = "  ") -> String {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            var out = indent
            for (i, c) in cells.enumerated() {
                let pad = String(repeating: " ", count: max(0, widths[i] - c.count))
                out += rightAligned.contains(i) ? pad + c : c + (i == cells.count - 1 ? "" : pad)
                if i < cells.count - 1 { out += "  " }
            }
            return out
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}

/// Number formatting for listings.
enum Numbers {
    /// `1,234,567`.
    static func grouped(_ n: Int) -> String {
        let s = String(n.magnitude)
        var out = ""
        for (i, ch) in s.reversed().enumerated() {
            if i > 0 && i % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return (n < 0 ? "-" : "") + String(out.reversed())
    }

    /// `312.5 KB`, `1.2 MB` (powers of 1024, as `ls -h`).
    static func bytes(_ n: Int) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var v = Double(n)
        var u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        return u == 0 ? "\(n) B" : short(v, digits: 1) + " " + units[u]
    }

    /// A compact decimal: up to `digits` fraction digits, or scientific for tiny/huge values.
    static func short(_ v: Double, digits: Int = 4) -> String {
        if v.isNaN { return "nan" }
        if v.isInfinite { return v < 0 ? "-inf" : "inf" }
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e6 || a < 1e-4 {
            var e = 0
            var m = a
            while m >= 10 { m /= 10; e += 1 }
            while m < 1 { m *= 10; e -= 1 }
            return (v < 0 ? "-" : "") + fixed(m, 3) + "e" + (e < 0 ? "-" : "+") + String(abs(e))
        }
        return fixed(v, digits)
    }

    static func fixed(_ v: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let r = (v * scale).rounded() / scale
        var s = "\(r)"
        if s.contains("e") { return "\(v)" }
        if let dot = s.firstIndex(of: ".") {
            let frac = s[s.index(after: dot)...]
            if frac.count > digits { s = String(s[..<s.index(dot, offsetBy: digits + 1)]) }
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
        }
        return s
    }
}
