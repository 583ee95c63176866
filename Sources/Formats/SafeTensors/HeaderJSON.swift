/// A strict, bounded JSON parser for safetensors headers (RFC 8259, no extensions).
///
/// Foundation's `JSONSerialization` silently keeps one of two duplicate keys, which would let
/// a file show different tensors to different readers. This parser keeps object members in
/// file order and rejects duplicates, raw control characters in strings, lone surrogates,
/// leading zeros, trailing commas, and nesting deeper than ``maxDepth``. Numbers are kept as
/// their source text; callers convert the few they need with ``JSONValue/nonNegativeInt``.
/// Errors carry the byte offset of the problem within the parsed bytes (plus `base`).
enum JSONValue {
    case null
    case bool(Bool)
    /// The number's text exactly as written (validated against the JSON grammar).
    case number(String)
    case string(String)
    case array([JSONValue])
    /// Members in file order (keys are unique).
    case object([JSONMember])

    /// A short name for error messages.
    var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// The value as an `Int` if it is a non-negative integer literal that fits.
    var nonNegativeInt: Int? {
        guard case .number(let text) = self, !text.isEmpty,
            text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 })
        else { return nil }
        return Int(text)
    }
}

/// One member of a JSON object. (A struct, not a labeled tuple: Swift 6.3 reports a
/// "circular reference" for recursive enums holding arrays of labeled tuples.)
struct JSONMember {
    var key: String
    var value: JSONValue
    /// Offset of the key's opening quote (plus the parser's `base`), for error messages.
    var offset: Int
}

struct JSONParser {
    /// Deepest nesting accepted (a safetensors header needs 3).
    static let maxDepth = 64

    private let bytes: [UInt8]
    private var i = 0
    private let base: Int

    /// Parses one JSON value that must span `bytes` (surrounding whitespace allowed).
    /// `base` is added to offsets in errors.
    static func parse(_ bytes: [UInt8], base: Int = 0) throws(FormatError) -> JSONValue {
        var p = JSONParser(bytes: bytes, base: base)
        p.skipWhitespace()
        let v = try p.value(depth: 0)
        p.skipWhitespace()
        guard p.i == bytes.count else { throw p.fail("unexpected data after the JSON value") }
        return v
    }

    private init(bytes: [UInt8], base: Int) {
        self.bytes = bytes
        self.base = base
    }

    private func fail(_ what: String) -> FormatError {
        FormatError(.invalid("invalid JSON header: \(what)"), offset: base + i)
    }

    private mutating func skipWhitespace() {
        while i < bytes.count,
            bytes[i] == 0x20 || bytes[i] == 0x0a || bytes[i] == 0x0d || bytes[i] == 0x09
        {
            i += 1
        }
    }

    private mutating func expect(_ literal: String, _ v: JSONValue) throws(FormatError) -> JSONValue {
        for b in literal.utf8 {
            guard i < bytes.count, bytes[i] == b else { throw fail("invalid literal") }
            i += 1
        }
        return v
    }

    private mutating func value(depth: Int) throws(FormatError) -> JSONValue {
        guard depth <= Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth)") }
        guard i < bytes.count else { throw fail("unexpected end") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try expect("true", .bool(true))
        case UInt8(ascii: "f"): return try expect("false", .bool(false))
        case UInt8(ascii: "n"): return try expect("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw fail("unexpected character 0x\(String(bytes[i], radix: 16))")
        }
    }

    private mutating func object(depth: Int) throws(FormatError) -> JSONValue {
        i += 1  // {
        var members: [JSONMember] = []
        var seen: Set<String> = []
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
            i += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else {
                throw fail("expected a member name")
            }
            let keyOffset = base + i
            let key = try string()
            guard seen.insert(key).inserted else {
                throw FormatError(.duplicateName(key), offset: keyOffset, tensor: key)
            }
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            i += 1
            skipWhitespace()
            members.append(
                JSONMember(key: key, value: try value(depth: depth + 1), offset: keyOffset))
            skipWhitespace()
            guard i < bytes.count else { throw fail("unterminated object") }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
                continue
            }
            guard bytes[i] == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
            i += 1
            return .object(members)
        }
    }

    private mutating func array(depth: Int) throws(FormatError) -> JSONValue {
        i += 1  // [
        var items: [JSONValue] = []
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
            i += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try value(depth: depth + 1))
            skipWhitespace()
            guard i < bytes.count else { throw fail("unterminated array") }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
                continue
            }
            guard bytes[i] == UInt8(ascii: "]") else { throw fail("expected ',' or ']'") }
            i += 1
            return .array(items)
        }
    }

    private mutating func number() throws(FormatError) -> JSONValue {
        let start = i
        func digit(_ k: Int) -> Bool { k < bytes.count && bytes[k] >= 0x30 && bytes[k] <= 0x39 }
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard digit(i) else { throw fail("expected a digit") }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
            if digit(i) { throw fail("leading zero in a number") }
        } else {
            while digit(i) { i += 1 }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard digit(i) else { throw fail("expected a digit after '.'") }
            while digit(i) { i += 1 }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") {
                i += 1
            }
            guard digit(i) else { throw fail("expected a digit in the exponent") }
            while digit(i) { i += 1 }
        }
        return .number(String(decoding: bytes[start..<i], as: UTF8.self))
    }

    private mutating func hex4() throws(FormatError) -> UInt32 {
        guard i + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[i]
            let d: UInt32
            switch b {
            case 0x30...0x39: d = UInt32(b - 0x30)
            case 0x41...0x46: d = UInt32(b - 0x41 + 10)
            case 0x61...0x66: d = UInt32(b - 0x61 + 10)
            default: throw fail("bad hex digit in \\u escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    /// Parses a string starting at the opening quote. Input is already valid UTF-8.
    private mutating func string() throws(FormatError) -> String {
        i += 1  // opening quote
        var out: [UInt8] = []
        while true {
            guard i < bytes.count else { throw fail("unterminated string") }
            let b = bytes[i]
            switch b {
            case UInt8(ascii: "\""):
                i += 1
                return String(decoding: out, as: UTF8.self)
            case 0x00..<0x20:
                throw fail("raw control character 0x\(String(b, radix: 16)) in a string")
            case UInt8(ascii: "\\"):
                i += 1
                guard i < bytes.count else { throw fail("unterminated escape") }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5c)
                case UInt8(ascii: "/"): out.append(0x2f)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0c)
                case UInt8(ascii: "n"): out.append(0x0a)
                case UInt8(ascii: "r"): out.append(0x0d)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if scalar >= 0xd800 && scalar < 0xdc00 {
                        guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"),
                            bytes[i + 1] == UInt8(ascii: "u")
                        else { throw fail("lone high surrogate") }
                        i += 2
                        let low = try hex4()
                        guard low >= 0xdc00 && low < 0xe000 else { throw fail("bad low surrogate") }
                        scalar = 0x10000 + ((scalar - 0xd800) << 10) + (low - 0xdc00)
                    } else if scalar >= 0xdc00 && scalar < 0xe000 {
                        throw fail("lone low surrogate")
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw fail("invalid code point") }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default: throw fail("unknown escape \\\(Character(Unicode.Scalar(e)))")
                }
            default:
                out.append(b)
                i += 1
            }
        }
    }
}

/// JSON text output matching serde_json's compact form (what the reference writer emits).
enum JSONText {
    /// `"..."` with serde_json's escapes: `\"`, `\\`, `\b \f \n \r \t`, other C0 controls as
    /// `\u00xx`; everything else (including `/`, DEL and non-ASCII) verbatim as UTF-8.
    static func quoted(_ s: String) -> [UInt8] {
        var out: [UInt8] = [0x22]
        let hex = Array("0123456789abcdef".utf8)
        for b in s.utf8 {
            switch b {
            case 0x22: out += [0x5c, 0x22]
            case 0x5c: out += [0x5c, 0x5c]
            case 0x08: out += [0x5c, UInt8(ascii: "b")]
            case 0x0c: out += [0x5c, UInt8(ascii: "f")]
            case 0x0a: out += [0x5c, UInt8(ascii: "n")]
            case 0x0d: out += [0x5c, UInt8(ascii: "r")]
            case 0x09: out += [0x5c, UInt8(ascii: "t")]
            case 0x00..<0x20:
                out += Array("\\u00".utf8) + [hex[Int(b >> 4)], hex[Int(b & 0xf)]]
            default: out.append(b)
            }
        }
        out.append(0x22)
        return out
    }
}
