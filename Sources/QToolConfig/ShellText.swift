/// A string produced by shell expansion that remembers, byte by byte, which config line it
/// came from (0 = not from the config: the environment or a train.sh default).
///
/// Keeping the origin through `$options` accumulation is what lets an error in
/// `options="$options --wdd 0"` name line 12 even though the word reaches the option parser
/// only after the whole file has been evaluated.
struct ShellText: Equatable, Sendable {
    private(set) var bytes: [UInt8] = []
    private(set) var lines: [Int] = []

    init() {}

    /// Text that all comes from one line.
    init(_ string: String, line: Int) {
        bytes = Array(string.utf8)
        lines = Array(repeating: line, count: bytes.count)
    }

    var isEmpty: Bool { bytes.isEmpty }

    /// The number of bytes.
    var count: Int { bytes.count }

    var string: String { String(decoding: bytes, as: UTF8.self) }

    mutating func append(_ byte: UInt8, line: Int) {
        bytes.append(byte)
        lines.append(line)
    }

    mutating func append(_ other: ShellText) {
        bytes += other.bytes
        lines += other.lines
    }

    /// Bash word splitting with the default IFS (space, tab, newline): runs of IFS whitespace
    /// separate fields, leading and trailing whitespace produces none. Each field's line is
    /// the first non-zero line among its bytes (0 if none).
    ///
    /// Pathname expansion, which bash would apply next, is not performed: a word like `*.pth`
    /// stays literal (what bash does too when nothing matches).
    func fields() -> [(text: String, line: Int)] {
        var result: [(text: String, line: Int)] = []
        var current: [UInt8] = []
        var line = 0
        func flush() {
            if !current.isEmpty {
                result.append((String(decoding: current, as: UTF8.self), line))
            }
            current = []
            line = 0
        }
        for (byte, origin) in zip(bytes, lines) {
            if byte == 0x20 || byte == 0x09 || byte == 0x0A {
                flush()
            } else {
                current.append(byte)
                if line == 0 { line = origin }
            }
        }
        flush()
        return result
    }
}
