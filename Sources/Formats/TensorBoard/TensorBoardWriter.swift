import SwiftProtobuf

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// TensorBoard event files (`events.out.tfevents.<time>.<host>`), as `tensorboardX`'s
/// `SummaryWriter.add_scalar` writes them: a TFRecord stream of `tensorflow.Event` protobufs,
/// the first one `file_version: "brain.Event:2"`, then one event per scalar with `wall_time`,
/// `step` and `summary { value { tag, simple_value } }`.
///
/// TFRecord framing per record: `uint64 length` (little endian), `uint32 masked_crc32c(length)`,
/// the data, `uint32 masked_crc32c(data)`. The messages are encoded by swift-protobuf (the
/// encoder of the ONNX writer) from the hand-written structs below, which carry only the
/// fields written here.
public final class TensorBoardWriter {
    /// The event file.
    public let path: String
    private let file: AppendFile

    /// Creates `directory` if needed and a new event file in it named as tensorboardX names
    /// them, starting with the `file_version` event.
    ///
    /// - Throws: ``OutputFile/WriteError`` when the file cannot be created or written.
    public init(directory: String, wallTime: Double, host: String = TensorBoardWriter.hostName()) throws(OutputFile.WriteError) {
        try Self.makeDirectory(directory)
        var name = "events.out.tfevents.\(Self.tenDigits(Int(wallTime))).\(host)"
        var n = 1
        while unsafe access(directory + "/" + name, F_OK) == 0 {  // two runs in one second
            name = "events.out.tfevents.\(Self.tenDigits(Int(wallTime))).\(host).\(n)"
            n += 1
        }
        path = directory + "/" + name
        file = try AppendFile(path: path, append: false)
        var first = TensorBoardEvent()
        first.wallTime = wallTime
        first.fileVersion = "brain.Event:2"
        try write(first)
    }

    /// Appends one event per `(tag, value)` at `step`.
    public func addScalars(_ scalars: [(tag: String, value: Double)], step: Int, wallTime: Double) throws(OutputFile.WriteError) {
        for (tag, value) in scalars {
            var v = TensorBoardEvent.Value()
            v.tag = tag
            v.simpleValue = Float(value)
            var e = TensorBoardEvent()
            e.wallTime = wallTime
            e.step = Int64(step)
            e.summary = TensorBoardEvent.Summary()
            e.summary?.value = [v]
            try write(e)
        }
    }

    func write(_ event: TensorBoardEvent) throws(OutputFile.WriteError) {
        let data: [UInt8]
        do { data = try event.serializedBytes() } catch {
            throw OutputFile.WriteError(path: path, reason: "cannot encode an event: \(error)")
        }
        try file.write(Self.record(data))
    }

    /// One TFRecord: length, masked CRC32C of the length, data, masked CRC32C of the data.
    public static func record(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 16)
        let n = UInt64(data.count)
        let length = (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) }
        out += length
        out += le32(CRC32C.masked(CRC32C.checksum(length)))
        out += data
        out += le32(CRC32C.masked(CRC32C.checksum(data)))
        return out
    }

    /// The protobuf bytes of a scalar event (for tests).
    public static func scalarEventBytes(tag: String, value: Float, step: Int, wallTime: Double) throws -> [UInt8] {
        var v = TensorBoardEvent.Value()
        v.tag = tag
        v.simpleValue = value
        var e = TensorBoardEvent()
        e.wallTime = wallTime
        e.step = Int64(step)
        e.summary = TensorBoardEvent.Summary()
        e.summary?.value = [v]
        return try e.serializedBytes()
    }

    /// Closes the file.
    public func close() { file.close() }

    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) } }

    static func tenDigits(_ n: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, 10 - s.count)) + s
    }

    /// `socket.gethostname()`.
    public static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let ok = unsafe buffer.withUnsafeMutableBufferPointer { unsafe gethostname($0.baseAddress!, 255) } == 0
        let name = ok ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        return name.isEmpty ? "localhost" : name
    }

    static func makeDirectory(_ dir: String) throws(OutputFile.WriteError) {
        var prefix = dir.hasPrefix("/") ? "/" : ""
        for part in dir.split(separator: "/") {
            prefix += part + "/"
            if unsafe mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw OutputFile.WriteError(path: dir, reason: unsafe String(cString: strerror(errno)))
            }
        }
    }
}

/// `tensorflow.Event` (event.proto) with the fields TensorBoard scalars use: `wall_time` (1),
/// `step` (2), and of the `what` oneof `file_version` (3) or `summary` (5).
struct TensorBoardEvent: SwiftProtobuf.Message, Equatable {
    static let protoMessageName = "tensorflow.Event"
    var wallTime: Double = 0
    var step: Int64 = 0
    var fileVersion: String?
    var summary: Summary?
    var unknownFields = SwiftProtobuf.UnknownStorage()

    /// `tensorflow.Summary`: `repeated Value value = 1`.
    struct Summary: SwiftProtobuf.Message, Equatable {
        static let protoMessageName = "tensorflow.Summary"
        var value: [Value] = []
        var unknownFields = SwiftProtobuf.UnknownStorage()
        init() {}
        mutating func decodeMessage<D: SwiftProtobuf.Decoder>(decoder: inout D) throws {
            while let n = try decoder.nextFieldNumber() {
                if n == 1 { try decoder.decodeRepeatedMessageField(value: &value) }
            }
        }
        func traverse<V: SwiftProtobuf.Visitor>(visitor: inout V) throws {
            if !value.isEmpty { try visitor.visitRepeatedMessageField(value: value, fieldNumber: 1) }
            try unknownFields.traverse(visitor: &visitor)
        }
        func isEqualTo(message: any SwiftProtobuf.Message) -> Bool { (message as? Self) == self }
        var debugDescription: String { Self.protoMessageName }
    }

    /// `tensorflow.Summary.Value`: `tag` (1) and of the `value` oneof `simple_value` (2).
    struct Value: SwiftProtobuf.Message, Equatable {
        static let protoMessageName = "tensorflow.Summary.Value"
        var tag = ""
        var simpleValue: Float = 0
        var unknownFields = SwiftProtobuf.UnknownStorage()
        init() {}
        mutating func decodeMessage<D: SwiftProtobuf.Decoder>(decoder: inout D) throws {
            while let n = try decoder.nextFieldNumber() {
                switch n {
                case 1: try decoder.decodeSingularStringField(value: &tag)
                case 2: try decoder.decodeSingularFloatField(value: &simpleValue)
                default: break
                }
            }
        }
        func traverse<V: SwiftProtobuf.Visitor>(visitor: inout V) throws {
            if !tag.isEmpty { try visitor.visitSingularStringField(value: tag, fieldNumber: 1) }
            // A oneof member: written even when zero, so the reader sees which value is set.
            try visitor.visitSingularFloatField(value: simpleValue, fieldNumber: 2)
            try unknownFields.traverse(visitor: &visitor)
        }
        func isEqualTo(message: any SwiftProtobuf.Message) -> Bool { (message as? Self) == self }
        var debugDescription: String { Self.protoMessageName }
    }

    init() {}

    mutating func decodeMessage<D: SwiftProtobuf.Decoder>(decoder: inout D) throws {
        while let n = try decoder.nextFieldNumber() {
            switch n {
            case 1: try decoder.decodeSingularDoubleField(value: &wallTime)
            case 2: try decoder.decodeSingularInt64Field(value: &step)
            case 3: try decoder.decodeSingularStringField(value: &fileVersion)
            case 5: try decoder.decodeSingularMessageField(value: &summary)
            default: break
            }
        }
    }

    func traverse<V: SwiftProtobuf.Visitor>(visitor: inout V) throws {
        if wallTime != 0 { try visitor.visitSingularDoubleField(value: wallTime, fieldNumber: 1) }
        if step != 0 { try visitor.visitSingularInt64Field(value: step, fieldNumber: 2) }
        if let fileVersion { try visitor.visitSingularStringField(value: fileVersion, fieldNumber: 3) }
        if let summary { try visitor.visitSingularMessageField(value: summary, fieldNumber: 5) }
        try unknownFields.traverse(visitor: &visitor)
    }

    func isEqualTo(message: any SwiftProtobuf.Message) -> Bool { (message as? Self) == self }
    var debugDescription: String { Self.protoMessageName }
}
