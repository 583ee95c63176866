extension Numbers {
    /// `1 tensor`, `2 tensors`, `1,024 entries` (`plural` when not `word` + s).
    static func counted(_ n: Int, _ word: String, plural: String? = nil) -> String {
        "\(grouped(n)) \(n == 1 ? word : plural ?? word + "s")"
    }
}
