/// Python's `int(str)`, `float(str)` and `str.strip()` for option values.
enum PythonNumber {
    private static let whitespace: Set<Character> = [" ", "\t", "\n", "\r", "\u{0B}", "\u{0C}"]

    /// `str.strip()` with the ASCII whitespace set.
    static func strip(_ s: String) -> String {
        var sub = Substring(s)
        while let f = sub.first, whitespace.contains(f) { sub = sub.dropFirst() }
        while let l = sub.last, whitespace.contains(l) { sub = sub.dropLast() }
        return String(sub)
    }

    /// `int(s)`: surrounding whitespace, an optional sign, decimal digits with single
    /// underscores between digits (`1_000`), leading zeros allowed.
    static func int(_ s: String) -> Int? {
        let t = strip(s)
        var body = Substring(t)
        var negative = false
        if let f = body.first, f == "+" || f == "-" {
            negative = f == "-"
            body = body.dropFirst()
        }
        guard let digits = removingUnderscores(body), !digits.isEmpty,
            digits.allSatisfy({ $0.isASCII && $0.isNumber })
        else { return nil }
        guard let magnitude = Int(digits) else { return nil }  // overflow: Python would accept
        return negative ? -magnitude : magnitude
    }

    /// `float(s)`: decimal literals with optional exponent (`1e-4`, `.5`, `5.`), `inf`,
    /// `infinity`, `nan` in any case, underscores between digits. Unlike Swift's `Double(_:)`,
    /// hexadecimal is refused.
    static func float(_ s: String) -> Double? {
        let t = strip(s)
        var body = Substring(t)
        var sign = 1.0
        if let f = body.first, f == "+" || f == "-" {
            if f == "-" { sign = -1 }
            body = body.dropFirst()
        }
        switch body.lowercased() {
        case "inf", "infinity": return sign * .infinity
        case "nan": return .nan
        default: break
        }
        guard let text = removingUnderscores(body), isDecimalLiteral(text), let v = Double(text)
        else {
            return nil
        }
        return sign * v
    }

    /// `[digits][.digits]([eE][+-]digits)?` with at least one mantissa digit.
    private static func isDecimalLiteral(_ s: String) -> Bool {
        var chars = Array(s)[...]
        func digits() -> Int {
            var n = 0
            while let c = chars.first, c.isASCII, c.isNumber {
                chars = chars.dropFirst()
                n += 1
            }
            return n
        }
        var mantissa = digits()
        if chars.first == "." {
            chars = chars.dropFirst()
            mantissa += digits()
        }
        guard mantissa > 0 else { return false }
        if let e = chars.first, e == "e" || e == "E" {
            chars = chars.dropFirst()
            if let sign = chars.first, sign == "+" || sign == "-" { chars = chars.dropFirst() }
            guard digits() > 0 else { return false }
        }
        return chars.isEmpty
    }

    /// Removes underscores that sit between two digits; nil if any underscore does not.
    private static func removingUnderscores(_ s: Substring) -> String? {
        guard s.contains("_") else { return String(s) }
        let chars = Array(s)
        var out = ""
        for (i, c) in chars.enumerated() {
            if c == "_" {
                guard i > 0, i + 1 < chars.count, chars[i - 1].isNumber, chars[i + 1].isNumber
                else {
                    return nil
                }
            } else {
                out.append(c)
            }
        }
        return out
    }
}

/// Levenshtein distance, for "did you mean" hints.
enum EditDistance {
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = Array(repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }

    /// The candidate nearest to `word`, if within max(2, len/3) edits; ties go to the first.
    static func closest(to word: String, in candidates: [String]) -> String? {
        var best: (String, Int)?
        for candidate in candidates {
            let d = distance(word, candidate)
            if let current = best, current.1 <= d { continue }
            best = (candidate, d)
        }
        guard let (candidate, d) = best, d <= max(2, word.count / 3) else { return nil }
        return candidate
    }
}
