/// `--filter REGEX` over tensor names (a search, like `grep -E`).
struct NameFilter: Sendable {
    let test: (@Sendable (String) -> Bool)?

    init(_ pattern: String?) throws {
        guard let pattern else {
            test = nil
            return
        }
        do {
            let regex = try Regex(pattern)
            nonisolated(unsafe) let r = regex
            test = { name in unsafe (try? r.firstMatch(in: name)) != nil }
        } catch {
            throw UsageError("--filter: invalid regular expression '\(pattern)': \(error)")
        }
    }
}
