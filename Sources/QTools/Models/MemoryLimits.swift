import Engine

#if canImport(Glibc)
    import Glibc
#endif

/// Limits checked before the engine allocates: an input shape whose element count is absurd
/// (or overflows) is a usage error, and a plan needing more memory than the machine has is
/// refused (exit 65) before its arena is allocated, instead of aborting in the allocator.
enum MemoryLimits {
    /// The largest dimension of an input shape (`--size`, `--batch`, an ONNX input's dims).
    static let maxDimension = 1 << 24
    /// The most elements an input may have (2^40: 4 TiB of float32, beyond any machine).
    static let maxElements = 1 << 40

    /// Throws ``UsageError`` when `shape` has a dimension below 1 or above ``maxDimension``,
    /// or more than ``maxElements`` elements.
    static func checkInput(_ shape: [Int], what: String = "input shape") throws(UsageError) {
        var n = 1
        for d in shape {
            guard d >= 1, d <= maxDimension else {
                throw UsageError("\(what) \(shape): dimension \(d) is outside 1...\(maxDimension)")
            }
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow, p <= maxElements else {
                throw UsageError("\(what) \(shape) has more than \(maxElements) elements")
            }
            n = p
        }
    }

    /// The memory this process may use: physical memory (sysconf), lowered by a cgroup
    /// limit when one is set; nil when unknown.
    static func machineBytes() -> Int? {
        var best: Int?
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        if pages > 0, size > 0 { best = pages.multipliedReportingOverflow(by: size).overflow ? Int.max : pages * size }
        for file in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8),
                let limit = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), limit > 0
            else { continue }
            best = min(best ?? limit, limit)
        }
        return best
    }

    /// Throws ``MemoryLimitError`` when running `plan` (its packed weights, its arena of
    /// activations and scratch, the input and the outputs) needs more than the machine has.
    static func check(_ plan: Plan, model: String) throws(MemoryLimitError) {
        let io =
            4
            * (plan.inputShapes.values.map { $0.reduce(1, *) }.reduce(0, +)
                + plan.outputs.map { $0.shape.reduce(1, *) }.reduce(0, +))
        let needed = plan.weightBytes + plan.arenaBytes + io
        guard let have = machineBytes(), needed > have else { return }
        throw MemoryLimitError(
            model: model, inputShapes: plan.inputShapes.values.sorted { $0.count < $1.count }, needed: needed,
            arena: plan.arenaBytes, weights: plan.weightBytes, available: have)
    }
}

/// A plan that needs more memory than the machine has (exit 65).
struct MemoryLimitError: Error, CustomStringConvertible {
    var model: String
    var inputShapes: [[Int]]
    var needed: Int, arena: Int, weights: Int, available: Int

    var description: String {
        func gib(_ b: Int) -> String {
            let v = Double(b) / Double(1 << 30)
            return v >= 100 ? "\(Int(v.rounded())) GiB" : "\((v * 100).rounded() / 100) GiB"
        }
        let shapes = inputShapes.map { "\($0)" }.joined(separator: ", ")
        return
            "\(model) at input \(shapes) needs \(gib(needed)) (activations and scratch \(gib(arena)), weights \(gib(weights))); this machine has \(gib(available)) of memory: use a smaller input size or batch"
    }
}
