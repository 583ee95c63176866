/// tools.py's two mapping-file utilities, `sort` and `swap` (seed-reference §13.4, §13.5).
extension MappingFile {
    /// `tools.py --keyword sort`: the file's raw lines (with their line ends, nothing cleaned)
    /// sorted by Unicode code points, as Python's `sorted(f.readlines())`.
    ///
    /// Line ends are read as Python's text mode does (`\r\n` and `\r` become `\n`). A last line
    /// without a line end is written without one, wherever it lands.
    public static func sorted(_ text: String) -> String {
        pythonLines(text).sorted { a, b in
            a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars) { $0.value < $1.value }
        }.joined()
    }

    /// `tools.py --keyword swap` with one `--verbose_list` spec `N/i0-i1-...-ik`.
    ///
    /// The file's lines are cleaned as for mapping (quotes, blank and `#` lines removed). Within
    /// each consecutive block of `interval` lines, output slot `j` (for `j` in `0...k`) takes the
    /// block's line `order[j] mod interval`; slots after `k` keep their own line. Every line is
    /// written with a `\n`.
    ///
    /// - Throws: ``ConversionError`` `.usage` when the spec is not valid for the file: the line
    ///   count is not a multiple of `interval`, or `order` has more than `interval` items (tools.py
    ///   then fails with an undefined variable), or `interval < 1`.
    public static func swapped(_ text: String, interval: Int, order: [Int]) throws(ConversionError) -> String {
        let lines = cleanedLines(text).map(\.text)
        guard interval >= 1 else {
            throw ConversionError(.usage, "the interval must be at least 1 (got \(interval))")
        }
        guard !order.isEmpty, order.count <= interval else {
            throw ConversionError(
                .usage,
                "the order lists \(order.count) positions; it needs between 1 and the interval (\(interval))")
        }
        if let bad = order.first(where: { $0 < 0 }) {
            throw ConversionError(.usage, "order positions cannot be negative (got \(bad))")
        }
        guard lines.count % interval == 0 else {
            throw ConversionError(
                .usage,
                "the file has \(lines.count) entries, not a multiple of the interval \(interval)")
        }
        var out = lines
        for (j, source) in order.enumerated() {
            var block = 0
            while block < lines.count {
                out[block + j] = lines[block + source % interval]
                block += interval
            }
        }
        return out.map { $0 + "\n" }.joined()
    }

    /// Parses tools.py's order text `i0-i1-...-ik` (decimal, `-`-separated).
    /// - Throws: ``ConversionError`` `.usage` naming the bad item.
    public static func parseOrder(_ text: String) throws(ConversionError) -> [Int] {
        var out: [Int] = []
        for item in text.split(separator: "-", omittingEmptySubsequences: false) {
            guard let v = Int(item.trimmingPythonSpace()), v >= 0 else {
                throw ConversionError(
                    .usage, "order '\(text)': '\(item)' is not a position (use e.g. 1-0-2)")
            }
            out.append(v)
        }
        return out
    }
}

extension Substring {
    fileprivate func trimmingPythonSpace() -> String {
        MappingFile.strip(String(self), where: MappingFile.isPythonSpace)
    }
}
