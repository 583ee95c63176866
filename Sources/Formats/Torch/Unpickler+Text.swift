import Tensors

/// Protocol-0 (text) opcodes: newline-terminated decimal, float and quoted-string arguments.
extension Unpickler {
    /// A newline-terminated argument as text (ASCII/UTF-8, lossy).
    mutating func asciiLine() throws(FormatError) -> String {
        let line = try reader.line()
        return String(decoding: line, as: UTF8.self)
    }

    mutating func decimalIndex() throws(FormatError) -> Int {
        let s = try asciiLine()
        guard let v = Int(s.trimmingSpaces), v >= 0 else { throw fail(.invalid("bad memo index \"\(s.prefix(40))\"")) }
        return v
    }

    mutating func textOpcode(_ op: UInt8) throws(FormatError) {
        typealias O = PickleOpcode
        switch op {
        case O.int:
            let s = try asciiLine().trimmingSpaces
            if s == "01" { push(.bool(true)) } else if s == "00" { push(.bool(false)) } else { push(try decimal(s)) }
        case O.long:
            var s = try asciiLine().trimmingSpaces
            if s.hasSuffix("L") { s.removeLast() }
            push(try decimal(s))
        case O.float:
            let s = try asciiLine().trimmingSpaces
            guard let d = Double(s) else { throw fail(.invalid("bad FLOAT \"\(s.prefix(40))\"")) }
            push(.float(d))
        case O.string:
            let raw = try reader.line()
            push(try quotedString(raw))
        case O.unicode:
            push(.string(rawUnicodeEscape(try reader.line())))
        case O.persid:
            push(try loadPersistent(.value(.string(try asciiLine()))))
        case O.get: try memoGet(try decimalIndex())
        case O.put: try memoPut(try decimalIndex())
        case O.inst:
            let module = try asciiLine()
            let name = try asciiLine()
            let cls = PickleValue.value(.global(noteGlobal(module, name)))
            let args = try popMark()
            push(try newObject(cls, newNode(PickleNode(.tuple, items: args)), kwargs: nil))
        default:
            throw fail(.unsupportedOpcode(op))
        }
    }

    /// A decimal integer of any size (up to `limits.maxDecimalDigits` digits).
    func decimal(_ text: String) throws(FormatError) -> CheckpointValue {
        if let v = Int64(text) { return .int(v) }
        var digits = Substring(text)
        var negative = false
        if digits.first == "-" || digits.first == "+" {
            negative = digits.first == "-"
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw fail(.invalid("bad integer \"\(text.prefix(40))\""))
        }
        guard digits.count <= limits.maxDecimalDigits else {
            throw fail(.tooLarge(what: "decimal integer", size: digits.count, limit: limits.maxDecimalDigits))
        }
        // Magnitude, little-endian base 256.
        var mag: [UInt8] = [0]
        for ch in digits.utf8 {
            var carry = UInt32(ch - 48)
            for i in 0..<mag.count {
                let v = UInt32(mag[i]) * 10 + carry
                mag[i] = UInt8(v & 0xff)
                carry = v >> 8
            }
            while carry > 0 { mag.append(UInt8(carry & 0xff)); carry >>= 8 }
        }
        mag.append(0)  // room for the sign bit
        if negative {
            var carry: UInt16 = 1
            for i in 0..<mag.count {
                let v = UInt16(~mag[i]) + carry
                mag[i] = UInt8(v & 0xff)
                carry = v >> 8
            }
        }
        return Self.integer(fromLE: mag)
    }

    /// A protocol-0 `STRING` argument: a Python repr in single or double quotes.
    func quotedString(_ raw: [UInt8]) throws(FormatError) -> CheckpointValue {
        guard raw.count >= 2, let q = raw.first, q == 0x27 || q == 0x22, raw.last == q else {
            throw fail(.invalid("STRING argument is not quoted"))
        }
        let body = raw[1..<(raw.count - 1)]
        var out: [UInt8] = []
        out.reserveCapacity(body.count)
        var i = body.startIndex
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            case 0x41...0x46: return c - 0x41 + 10
            default: return nil
            }
        }
        while i < body.endIndex {
            let c = body[i]
            i += 1
            guard c == 0x5c, i < body.endIndex else { out.append(c); continue }
            let e = body[i]
            i += 1
            switch e {
            case 0x6e: out.append(0x0a)  // \n
            case 0x74: out.append(0x09)  // \t
            case 0x72: out.append(0x0d)  // \r
            case 0x30...0x37:  // octal, up to 3 digits
                var v = Int(e - 0x30)
                var k = 0
                while k < 2, i < body.endIndex, (0x30...0x37).contains(body[i]) {
                    v = v * 8 + Int(body[i] - 0x30)
                    i += 1
                    k += 1
                }
                out.append(UInt8(truncatingIfNeeded: v))
            case 0x78:  // \xHH
                guard i + 1 < body.endIndex, let h = hex(body[i]), let l = hex(body[i + 1])
                else { throw fail(.invalid("bad \\x escape in STRING")) }
                out.append(h << 4 | l)
                i += 2
            case 0x0a: break  // line continuation
            default:
                if e == 0x5c || e == 0x27 || e == 0x22 { out.append(e) } else { out.append(0x5c); out.append(e) }
            }
        }
        if let s = String(validating: out, as: UTF8.self) { return .string(s) }
        return .bytes(out)
    }

    /// A protocol-0 `UNICODE` argument (`raw-unicode-escape`: latin-1 plus `\uXXXX`, `\UXXXXXXXX`).
    func rawUnicodeEscape(_ raw: [UInt8]) -> String {
        var scalars = String.UnicodeScalarView()
        var i = 0
        while i < raw.count {
            let c = raw[i]
            if c == 0x5c, i + 1 < raw.count, raw[i + 1] == 0x75 || raw[i + 1] == 0x55 {
                let width = raw[i + 1] == 0x75 ? 4 : 8
                if i + 2 + width <= raw.count,
                    let v = UInt32(String(decoding: raw[(i + 2)..<(i + 2 + width)], as: UTF8.self), radix: 16),
                    let s = Unicode.Scalar(v)
                {
                    scalars.append(s)
                    i += 2 + width
                    continue
                }
            }
            scalars.append(Unicode.Scalar(c))
            i += 1
        }
        return String(scalars)
    }
}

extension String {
    /// The string without leading/trailing spaces, tabs and carriage returns.
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}
