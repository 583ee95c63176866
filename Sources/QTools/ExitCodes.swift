import ArgumentParser
import Engine
import Formats
import Models
import QToolConfig
import Tensors
import Train

/// The exit-code table (sysexits-style) and the one place errors become messages.
///
/// | code | meaning |
/// |---|---|
/// | 0 | success |
/// | 1 | the command ran and its check said "no" (`verify` beyond tolerance) |
/// | 64 | usage error (ArgumentParser validation; an output that is a file the command reads) |
/// | 65 | input malformed or unsupported (`FormatError`) |
/// | 66 | input missing or unreadable |
/// | 73 | cannot create or write the output |
/// | 70 | internal error (a bug: please report it) |
enum ExitCodes {
    static let checkFailed: Int32 = 1
    static let usage: Int32 = 64
    static let dataError: Int32 = 65
    static let noInput: Int32 = 66
    static let software: Int32 = 70
    static let cannotCreate: Int32 = 73

    /// The status for an error thrown by library code.
    static func code(for error: Error) -> Int32 {
        switch error {
        case is FormatError: return dataError
        case let e as ByteStore.OpenError: return e.isMissing ? noInput : dataError
        case is OutputFile.WriteError: return cannotCreate
        case is OutputSafety.SameFileError: return usage
        case is UsageError: return usage
        case let e as ConversionError:
            switch e.kind {
            case .missingFile: return noInput
            case .usage: return usage
            case .verificationFailed: return checkFailed
            case .malformedMapping, .collision, .unsupported: return dataError
            }
        case let e as ConfigError: return e.kind == .unreadable ? noInput : dataError
        case is InferenceError, is ModelLoadError, is TrainError, is MemoryLimitError: return dataError
        case let e as LayerDumpError: return e.kind == .missing ? noInput : e.kind == .malformed ? dataError : cannotCreate
        case is LayerShapeMismatch: return dataError
        default: return software
        }
    }

    /// Runs `body`; a library error is printed once as `qtools: error: ...` and becomes its exit code.
    static func reporting<R>(_ body: () throws -> R) throws -> R {
        do {
            return try body()
        } catch let e as ExitCode {
            throw e
        } catch {
            let code = code(for: error)
            var text = "\(error)"
            if code == software { text += " (internal error; please report it with the command line)" }
            Terminal.error(text)
            throw ExitCode(code)
        }
    }
}

/// A command-line mistake found after parsing (bad regex, conflicting options): exit 64.
struct UsageError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
