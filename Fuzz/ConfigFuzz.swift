// libFuzzer target for the text formats: QTool config files (the shell subset train.sh
// sources, then the option parser) and key-mapping files (tools.py's --mapping_from/to, sort
// and swap). Built by `Fuzz/run.sh config` into the QToolConfig module itself.
// Any crash, sanitizer report, hang or leak is a bug; a thrown error is fine.
import Formats
import Tensors

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfigAndMapping(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = unsafe Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)
    // 1. A config file, evaluated and parsed into options, then options applied on top.
    if let config = try? ConfigFile(text: text, path: "fuzz.config", environment: ["FASTDIR": "/data"]),
        let options = try? QToolOptions(config: config)
    {
        _ = try? options.applying(arguments: ["--width_alpha", "0.5"])
    }
    // 2. The same text as command-line words (what follows `--`).
    let words = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).prefix(64).map(String.init)
    _ = try? QToolOptions().applying(arguments: words)
    // 3. Mapping files: the text against itself and against its sorted lines; sort and swap.
    let half = text.firstIndex(of: "\u{0}").map { (String(text[..<$0]), String(text[text.index(after: $0)...])) } ?? (text, text)
    _ = try? MappingFile.parse(fromText: half.0, fromName: "from", toText: half.1, toName: "to")
    _ = MappingFile.sorted(text)
    if let order = try? MappingFile.parseOrder(String(text.prefix(32))) {
        _ = try? MappingFile.swapped(text, interval: max(order.count, 1) + size % 5, order: order)
    }
    return 0
}
