/// The subset of Python literals an `.npy` header uses, parsed strictly and without `eval`.
///
/// Grammar: dict `{k: v, ...}`, tuple `(a, b)` / `(a,)` / `()`, list `[...]`, strings in
/// single or double quotes (with backslash escapes), integers (an old trailing `L` is
/// accepted, as NumPy's reader does), `True`, `False`, `None`. Trailing commas are allowed
/// where Python allows them. Nesting is bounded by ``maxDepth``.
enum PythonLiteral {
    case noneValue
    case bool(Bool)
    case int(Int)
    case string(String)
    case tuple([PythonLiteral])
    case list([PythonLiteral])
    case dict([PythonLiteralMember])

    /// Deepest nesting accepted (an npy header needs 2; structured dtypes a few more).
    static let maxDepth = 32

    /// Parses `text` as one dict literal with string keys (whitespace around it allowed).
    static func parseDict(_ text: [UInt8], base: Int) throws(FormatError) -> [PythonLiteralMember] {
        var p = PythonLiteralParser(bytes: text, base: base)
        p.skipSpace()
        guard case .dict(let d) = try p.value(depth: 0) else {
            throw p.fail("the header is not a dict literal")
        }
        p.skipSpace()
        guard p.i == text.count else { throw p.fail("unexpected text after the header dict") }
        return d
    }
}

/// One `key: value` pair of a dict literal (a struct: see ``JSONMember``).
struct PythonLiteralMember {
    var key: String
    var value: PythonLiteral
}

private struct PythonLiteralParser {
    let bytes: [UInt8]
    let base: Int
    var i = 0

    init(bytes: [UInt8], base: Int) {
        self.bytes = bytes
        self.base = base
    }

    func fail(_ what: String) -> FormatError {
        FormatError(.invalid("npy header: \(what)"), offset: base + i)
    }

    var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

    mutating func skipSpace() {
        while let b = peek, b == 0x20 || b == 0x0a || b == 0x0d || b == 0x09 { i += 1 }
    }

    mutating func word(_ w: String) -> Bool {
        let u = Array(w.utf8)
        guard i + u.count <= bytes.count, Array(bytes[i..<(i + u.count)]) == u else { return false }
        // A keyword must not run on into an identifier (`Truex`).
        if let next = i + u.count < bytes.count ? bytes[i + u.count] : nil,
            next == 0x5f || (next | 0x20) >= 0x61 && (next | 0x20) <= 0x7a
                || next >= 0x30 && next <= 0x39
        {
            return false
        }
        i += u.count
        return true
    }

    mutating func value(depth: Int) throws(FormatError) -> PythonLiteral {
        guard depth <= PythonLiteral.maxDepth else {
            throw fail("nesting deeper than \(PythonLiteral.maxDepth)")
        }
        guard let b = peek else { throw fail("unexpected end") }
        switch b {
        case UInt8(ascii: "{"):
            i += 1
            var out: [PythonLiteralMember] = []
            try sequence(close: UInt8(ascii: "}")) {
                (p: inout PythonLiteralParser) throws(FormatError) in
                guard case .string(let k) = try p.value(depth: depth + 1) else {
                    throw p.fail("dict keys must be strings")
                }
                p.skipSpace()
                guard p.peek == UInt8(ascii: ":") else { throw p.fail("expected ':'") }
                p.i += 1
                p.skipSpace()
                out.append(PythonLiteralMember(key: k, value: try p.value(depth: depth + 1)))
            }
            return .dict(out)
        case UInt8(ascii: "("):
            i += 1
            var items: [PythonLiteral] = []
            var commas = 0
            try sequence(close: UInt8(ascii: ")"), commas: &commas) {
                (p: inout PythonLiteralParser) throws(FormatError) in
                items.append(try p.value(depth: depth + 1))
            }
            // `(x)` is just x in Python, not a tuple.
            if items.count == 1 && commas == 0 { return items[0] }
            return .tuple(items)
        case UInt8(ascii: "["):
            i += 1
            var items: [PythonLiteral] = []
            try sequence(close: UInt8(ascii: "]")) {
                (p: inout PythonLiteralParser) throws(FormatError) in
                items.append(try p.value(depth: depth + 1))
            }
            return .list(items)
        case UInt8(ascii: "'"), UInt8(ascii: "\""):
            return .string(try string(quote: b))
        case UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .int(try integer())
        default:
            if word("True") { return .bool(true) }
            if word("False") { return .bool(false) }
            if word("None") { return .noneValue }
            throw fail("unexpected character 0x\(String(b, radix: 16))")
        }
    }

    mutating func sequence(
        close: UInt8, body: (inout PythonLiteralParser) throws(FormatError) -> Void
    ) throws(FormatError) {
        var commas = 0
        try sequence(close: close, commas: &commas, body: body)
    }

    /// Items separated by commas up to `close`; a trailing comma is allowed.
    mutating func sequence(
        close: UInt8, commas: inout Int,
        body: (inout PythonLiteralParser) throws(FormatError) -> Void
    ) throws(FormatError) {
        while true {
            skipSpace()
            guard let b = peek else { throw fail("unterminated literal") }
            if b == close {
                i += 1
                return
            }
            try body(&self)
            skipSpace()
            guard let c = peek else { throw fail("unterminated literal") }
            if c == UInt8(ascii: ",") {
                commas += 1
                i += 1
            } else if c != close {
                throw fail("expected ',' or '\(Character(Unicode.Scalar(close)))'")
            }
        }
    }

    mutating func integer() throws(FormatError) -> Int {
        var negative = false
        if peek == UInt8(ascii: "-") || peek == UInt8(ascii: "+") {
            negative = peek == UInt8(ascii: "-")
            i += 1
        }
        var v = 0
        var digits = 0
        while let b = peek, b >= 0x30 && b <= 0x39 {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int(b - 0x30))
            guard !o1, !o2 else { throw fail("integer too large") }
            v = a
            digits += 1
            i += 1
        }
        guard digits > 0 else { throw fail("expected digits") }
        if peek == UInt8(ascii: "L") { i += 1 }
        return negative ? -v : v
    }

    mutating func string(quote: UInt8) throws(FormatError) -> String {
        i += 1
        var out: [UInt8] = []
        while true {
            guard let b = peek else { throw fail("unterminated string") }
            i += 1
            if b == quote { return String(decoding: out, as: UTF8.self) }
            if b == 0x0a { throw fail("newline inside a string") }
            if b == UInt8(ascii: "\\") {
                guard let e = peek else { throw fail("unterminated escape") }
                i += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0a)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0d)
                case UInt8(ascii: "0"): out.append(0x00)
                case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""): out.append(e)
                default: throw fail("unsupported escape in a string")
                }
            } else {
                out.append(b)
            }
        }
    }
}
