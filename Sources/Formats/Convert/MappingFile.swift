import Tensors

/// QTool's key-mapping text files (`tools.py --mapping_from/--mapping_to`, seed-reference
/// §13.3), read the way tools.py reads them, and turned into an exact ``KeyMapping``.
///
/// A line is cleaned as Python's `line.strip().strip('\n').strip('"').strip("'")`: surrounding
/// whitespace, then `"` characters at either end, then `'` characters at either end (so a quoted
/// name keeps any blanks inside its quotes). Empty lines and lines starting with `#` are dropped.
/// Line ends are read like Python's text mode: `\n`, `\r\n` and a lone `\r` all end a line.
///
/// Line *i* of the from-file maps to line *i* of the to-file. When both lines contain `{` and
/// `}`, the from-line is brace-expanded: `layer1.0.bn1.{bias, running_mean}` with the to-line
/// `x.norm.{...}` gives `layer1.0.bn1.bias → x.norm.bias` and
/// `layer1.0.bn1.running_mean → x.norm.running_mean` (items are stripped; the to-line's brace
/// content is ignored, as in tools.py).
///
/// Where tools.py is silent or lenient, qtools refuses instead of guessing (each is an error
/// naming the file and line):
/// - the two files have different numbers of entries, or none (tools.py then renames nothing);
/// - more than one `{` group in a line, or text after the closing `}` (tools.py crashes on the
///   first and glues the text to the last item on the second);
/// - one source listed twice with different targets (tools.py keeps the last silently), or two
///   sources with one target (they would collide in every checkpoint).
public enum MappingFile {
    /// A cleaned line and its 1-based line number in the file.
    public struct Line: Equatable, Sendable {
        /// The cleaned text.
        public var text: String
        /// 1-based line number.
        public var number: Int
    }

    /// Splits text into lines as Python's text mode does (`\n`, `\r\n`, `\r`), each keeping a
    /// `\n` terminator except a last line that had none.
    public static func pythonLines(_ text: String) -> [String] {
        var lines: [String] = []
        var current: [Unicode.Scalar] = []
        var scalars = Array(text.unicodeScalars)[...]
        while let c = scalars.popFirst() {
            if c == "\r" || c == "\n" {
                if c == "\r", scalars.first == "\n" { scalars.removeFirst() }
                current.append("\n")
                lines.append(String(String.UnicodeScalarView(current)))
                current.removeAll()
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { lines.append(String(String.UnicodeScalarView(current))) }
        return lines
    }

    /// Python's `str.strip()` whitespace (`str.isspace`), for the characters that matter here.
    static func isPythonSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0d, 0x1c...0x20, 0x85, 0xa0: return true
        default: return c.properties.isWhitespace
        }
    }

    static func strip(_ s: String, where drop: (Unicode.Scalar) -> Bool) -> String {
        var v = Array(s.unicodeScalars)[...]
        while let f = v.first, drop(f) { v.removeFirst() }
        while let l = v.last, drop(l) { v.removeLast() }
        return String(String.UnicodeScalarView(v))
    }

    /// The cleaned, non-empty, non-comment lines of a mapping file's text (tools.py's reading).
    public static func cleanedLines(_ text: String) -> [Line] {
        var out: [Line] = []
        for (i, raw) in pythonLines(text).enumerated() {
            var t = strip(raw, where: isPythonSpace)
            t = strip(t) { $0 == "\n" }
            t = strip(t) { $0 == "\"" }
            t = strip(t) { $0 == "'" }
            if t.isEmpty || t.hasPrefix("#") { continue }
            out.append(Line(text: t, number: i + 1))
        }
        return out
    }

    /// Reads a text file (UTF-8).
    /// - Throws: ``ConversionError`` `.missingFile` when it cannot be read.
    public static func readText(path: String) throws(ConversionError) -> String {
        do {
            let store = try ByteStore.read(path: path)
            return String(decoding: store.all.toArray(), as: UTF8.self)
        } catch {
            throw ConversionError(.missingFile, "cannot read mapping file \(error)")
        }
    }

    /// Reads the two mapping files and builds the exact mapping.
    /// - Throws: ``ConversionError`` `.missingFile` or `.malformedMapping`.
    public static func load(fromPath: String, toPath: String) throws(ConversionError) -> KeyMapping {
        try parse(
            fromText: readText(path: fromPath), fromName: fromPath,
            toText: readText(path: toPath), toName: toPath)
    }

    /// Builds the exact mapping from the two files' texts; the names appear in messages.
    /// - Throws: ``ConversionError`` `.malformedMapping`.
    public static func parse(
        fromText: String, fromName: String, toText: String, toName: String
    ) throws(ConversionError) -> KeyMapping {
        let from = cleanedLines(fromText)
        let to = cleanedLines(toText)
        guard from.count == to.count else {
            throw ConversionError(
                .malformedMapping,
                "mapping files differ in length: \(fromName) has \(from.count) entries, \(toName) has \(to.count)"
            )
        }
        guard !from.isEmpty else {
            throw ConversionError(
                .malformedMapping, "mapping files \(fromName) and \(toName) have no entries")
        }
        var mapping = KeyMapping()
        for (f, t) in zip(from, to) {
            let fromPlace = "\(fromName):\(f.number)"
            let toPlace = "\(toName):\(t.number)"
            for (source, target) in try expand(f.text, t.text, fromPlace: fromPlace, toPlace: toPlace) {
                try mapping.add(source, target, origin: fromPlace)
            }
        }
        return mapping
    }

    /// One line pair as source → target pairs: brace-expanded when both lines hold `{` and `}`,
    /// else literal.
    static func expand(
        _ from: String, _ to: String, fromPlace: String, toPlace: String
    ) throws(ConversionError) -> [(String, String)] {
        func hasBraces(_ s: String) -> Bool { s.contains("{") && s.contains("}") }
        guard hasBraces(from), hasBraces(to) else { return [(from, to)] }
        func group(_ line: String, _ place: String) throws(ConversionError) -> (prefix: String, body: String) {
            let parts = line.split(separator: "{", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw ConversionError(
                    .malformedMapping, "\(place): only one {...} group per line is supported: \(line)")
            }
            var body = Substring(parts[1])
            while body.last == "}" { body.removeLast() }
            guard !body.contains("}") else {
                throw ConversionError(
                    .malformedMapping,
                    "\(place): text after the closing '}' is not supported: \(line)")
            }
            return (String(parts[0]), String(body))
        }
        let (prefix, body) = try group(from, fromPlace)
        let (toPrefix, _) = try group(to, toPlace)
        return body.split(separator: ",", omittingEmptySubsequences: false).map { item in
            let v = strip(String(item), where: isPythonSpace)
            return (prefix + v, toPrefix + v)
        }
    }
}

/// An exact source-name → target-name table, in file order.
public struct KeyMapping: Sendable, Equatable {
    /// The entries in order.
    public private(set) var pairs: [(from: String, to: String)] = []
    private var targetOf: [String: String] = [:]
    private var sourceOf: [String: String] = [:]
    private var origins: [String: String] = [:]

    /// An empty table.
    public init() {}

    /// A table from pairs.
    /// - Throws: ``ConversionError`` `.malformedMapping` on conflicting pairs.
    public init(_ pairs: [(String, String)]) throws(ConversionError) {
        for (i, (f, t)) in pairs.enumerated() { try add(f, t, origin: "entry \(i + 1)") }
    }

    /// Adds `from → to`. Repeating an identical pair is allowed.
    /// - Throws: ``ConversionError`` `.malformedMapping` when `from` already maps elsewhere or
    ///   another source already maps to `to`.
    public mutating func add(_ from: String, _ to: String, origin: String) throws(ConversionError) {
        if let old = targetOf[from] {
            guard old == to else {
                throw ConversionError(
                    .malformedMapping,
                    "\(origin): '\(from)' is mapped twice: to '\(old)' (\(origins[from] ?? "?")) and to '\(to)'"
                )
            }
            return
        }
        if let other = sourceOf[to] {
            throw ConversionError(
                .malformedMapping,
                "\(origin): '\(from)' and '\(other)' (\(origins[other] ?? "?")) are both mapped to '\(to)'"
            )
        }
        targetOf[from] = to
        sourceOf[to] = from
        origins[from] = origin
        pairs.append((from, to))
    }

    /// The target of `name`, if listed.
    public func target(of name: String) -> String? { targetOf[name] }

    /// Number of entries.
    public var count: Int { pairs.count }

    public static func == (a: KeyMapping, b: KeyMapping) -> Bool {
        a.pairs.elementsEqual(b.pairs) { $0.from == $1.from && $0.to == $1.to }
    }
}
