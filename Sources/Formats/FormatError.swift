import Tensors

/// The one error type of the Formats module: what went wrong, and where.
///
/// Layers fill in the context they know: ``ByteReader`` sets `offset`, the tensor loop sets
/// `tensor`, the zip layer sets `entry`, and ``ModelFile`` sets `file`. The description reads
/// `tiny.pt: archive/data.pkl @0x1a2: tensor "fc.weight": truncated (needed 4096 bytes, 1024 available)`.
public struct FormatError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Reason: Equatable, Sendable {
        /// Fewer bytes than a declared length or header needs.
        case truncated(needed: Int, available: Int)
        /// The leading bytes are not what the format requires.
        case badMagic(expected: String, found: [UInt8])
        /// A version this reader does not know.
        case unsupportedVersion(found: Int, newestSupported: Int)
        /// A dtype or storage name this reader does not know.
        case unsupportedDType(String)
        /// A pickle opcode this reader does not know.
        case unsupportedOpcode(UInt8)
        /// Unsupported feature (compression method, layout, ...).
        case unsupported(String)
        /// Two entries with one name.
        case duplicateName(String)
        /// A declared byte count disagrees with the shape.
        case sizeMismatch(expectedBytes: Int, foundBytes: Int)
        /// A header, directory or stream is malformed.
        case invalid(String)
        /// A referenced record or storage is missing.
        case missing(String)
        /// A declared size exceeds a safety limit.
        case tooLarge(what: String, size: Int, limit: Int)
        /// A checksum does not match.
        case checksum(expected: UInt32, found: UInt32)
        /// The file holds a global that `torch.load(weights_only=True)` refuses (strict mode).
        case unsafeGlobals([String])
        /// The input is not a checkpoint at all (LFS pointer, HTML page, ...).
        case notACheckpoint(String)
    }

    /// What went wrong.
    public var reason: Reason
    /// File path, set by the outermost layer.
    public var file: String?
    /// Archive entry (zip record, npz member, tar member).
    public var entry: String?
    /// Byte offset within the entry (or the file, when there is no entry).
    public var offset: Int?
    /// Tensor name.
    public var tensor: String?

    /// Creates an error with optional context.
    public init(
        _ reason: Reason, file: String? = nil, entry: String? = nil, offset: Int? = nil,
        tensor: String? = nil
    ) {
        self.reason = reason
        self.file = file
        self.entry = entry
        self.offset = offset
        self.tensor = tensor
    }

    /// The one-line message.
    public var description: String {
        var parts: [String] = []
        var place = ""
        if let file { place += file }
        if let entry { place += place.isEmpty ? entry : ": \(entry)" }
        if let offset { place += (place.isEmpty ? "" : " ") + "@0x" + String(offset, radix: 16) }
        if !place.isEmpty { parts.append(place) }
        if let tensor { parts.append("tensor \"\(tensor)\"") }
        parts.append(reasonText)
        return parts.joined(separator: ": ")
    }

    /// The reason alone, with a hint where the fix is obvious.
    public var reasonText: String {
        switch reason {
        case .truncated(let needed, let available):
            return "truncated (needed \(needed) bytes, \(available) available); is the file complete?"
        case .badMagic(let expected, let found):
            return "bad magic: expected \(expected), found \(Self.hex(found))"
        case .unsupportedVersion(let found, let newest):
            return "version \(found) is not supported; this reader supports up to \(newest)"
        case .unsupportedDType(let name): return "unsupported dtype \(name)"
        case .unsupportedOpcode(let op):
            return "unknown pickle opcode 0x\(String(op, radix: 16)) (not a pickle, or corrupt)"
        case .unsupported(let what): return "unsupported: \(what)"
        case .duplicateName(let name): return "duplicate name \"\(name)\""
        case .sizeMismatch(let e, let f):
            return "size mismatch: expected \(e) bytes, found \(f)"
        case .invalid(let what): return what
        case .missing(let what): return "missing \(what)"
        case .tooLarge(let what, let size, let limit):
            return "\(what) of \(size) bytes exceeds the limit of \(limit)"
        case .checksum(let e, let f):
            return "CRC-32 mismatch: directory says 0x\(String(e, radix: 16)), data has 0x\(String(f, radix: 16))"
        case .unsafeGlobals(let g):
            return "refusing unsafe globals (torch.load(weights_only=True) would fail): "
                + g.joined(separator: ", ")
        case .notACheckpoint(let what): return what
        }
    }

    static func hex(_ b: [UInt8]) -> String {
        b.prefix(16).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
            .joined(separator: " ")
    }
}

/// Adds context to any `FormatError` thrown by `body` (fields already set are kept).
@inline(__always)
func withContext<R>(
    file: String? = nil, entry: String? = nil, tensor: String? = nil, _ body: () throws -> R
) throws -> R {
    do { return try body() } catch var e as FormatError {
        if e.file == nil { e.file = file }
        if e.entry == nil { e.entry = entry }
        if e.tensor == nil { e.tensor = tensor }
        throw e
    }
}

extension FormatError {
    /// Wraps a view-validation failure.
    init(_ e: StoredTensor.ViewError, tensor: String?) {
        switch e {
        case .outOfBounds(let last, let n):
            self.init(.sizeMismatch(expectedBytes: last, foundBytes: n), tensor: tensor)
        default: self.init(.invalid(e.description), tensor: tensor)
        }
    }
}
