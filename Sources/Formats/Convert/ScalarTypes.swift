/// The Python types of scalars a safetensors file keeps as metadata strings, recorded beside
/// them so that converting back to a torch checkpoint restores `epoch` as the int `0`, not
/// the string `'0'`.
///
/// The record is the metadata entry `qtools.scalar_types`, one line per scalar:
/// `int epoch`, `float best_acc`, `bool amp`, `None scheduler` (strings are not listed).
enum ScalarTypes {
    static let key = "qtools.scalar_types"

    /// The record of `scalars` (nil when none needs one).
    static func record(_ scalars: [(name: String, value: CheckpointValue)]) -> String? {
        var lines: [String] = []
        for (name, value) in scalars where !name.contains("\n") {
            switch value {
            case .int: lines.append("int \(name)")
            case .float: lines.append("float \(name)")
            case .bool: lines.append("bool \(name)")
            case .none: lines.append("None \(name)")
            default: continue
            }
        }
        return lines.isEmpty ? nil : lines.joined(separator: "\n")
    }

    /// `metadata` as checkpoint entries: typed where the record says so, strings otherwise;
    /// the record itself is not an entry.
    static func restore(_ metadata: [(key: String, value: String)]) -> [(key: String, value: CheckpointValue)] {
        var types: [String: Substring] = [:]
        if let record = metadata.first(where: { $0.key == key })?.value {
            for line in record.split(separator: "\n") {
                guard let space = line.firstIndex(of: " ") else { continue }
                types[String(line[line.index(after: space)...])] = line[..<space]
            }
        }
        return metadata.filter { $0.key != key }.map { k, v in
            switch types[k] {
            case "int"?: if let i = Int64(v) { return (k, .int(i)) }
            case "float"?:
                switch v {
                case "nan": return (k, .float(.nan))
                case "inf": return (k, .float(.infinity))
                case "-inf": return (k, .float(-.infinity))
                default: if let d = Double(v) { return (k, .float(d)) }
                }
            case "bool"?: if v == "True" || v == "False" { return (k, .bool(v == "True")) }
            case "None"?: if v == "None" { return (k, .none) }
            default: break
            }
            return (k, .string(v))
        }
    }
}
