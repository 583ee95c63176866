/// The one error type of key renaming, mapping files and the conversion pipeline.
///
/// The CLI maps ``Kind`` to an exit status: `.missingFile` → 66, `.usage` → 64,
/// `.verificationFailed` → 1, everything else → 65 (input malformed or not convertible).
public struct ConversionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The category of failure.
    public enum Kind: String, Equatable, Sendable {
        /// A mapping file (or other named input) does not exist or cannot be read.
        case missingFile
        /// A mapping file is malformed (unequal lengths, bad brace group, conflicting entries).
        case malformedMapping
        /// Two keys end up with one name after renaming.
        case collision
        /// The checkpoint cannot be converted as asked (no state dict, value the format
        /// cannot hold, ...).
        case unsupported
        /// The options contradict each other or the input (bad regex, `--wrap` with `--unwrap`).
        case usage
        /// A verifier attached to the conversion said "no".
        case verificationFailed
    }

    /// The category of failure.
    public var kind: Kind
    /// The message, naming files, lines and keys.
    public var message: String

    /// Creates an error.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
