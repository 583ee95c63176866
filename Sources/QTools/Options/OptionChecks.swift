import ArgumentParser

/// Range checks of numeric options, naming the option and the value given (`--runs -1` is a
/// value out of range, not a missing value: numeric options parse a leading `-` as a value).
enum OptionChecks {
    /// Throws unless `value >= minimum`.
    static func atLeast(_ name: String, _ value: Int?, _ minimum: Int) throws {
        if let value, value < minimum { throw ValidationError("\(name) must be at least \(minimum) (got \(value))") }
    }

    /// Throws unless `value` is finite and not negative.
    static func nonNegative<F: BinaryFloatingPoint>(_ name: String, _ value: F?) throws {
        if let value, !(value.isFinite && value >= 0) {
            throw ValidationError("\(name) must be a finite number >= 0 (got \(Double(value)))")
        }
    }
}
