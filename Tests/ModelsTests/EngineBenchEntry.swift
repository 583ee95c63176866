import Engine
import Foundation
import Models
import Tensors
import TestSupport
import Testing

/// Hidden benchmark entry for `Benchmarks/engine_bench.py` (not a regular test).
///
/// Enabled only when `QTOOLS_ENGINE_BENCH_DIR` names a directory written by the script:
/// `index.json` (state-dict names, shapes, raw little-endian float32 files), `input.f32`,
/// `expected.f32` (torch's logits). Builds ResNet-18 on those weights, checks the logits
/// against torch, times the engine and writes `result.json`. Run it in release:
/// `swift test -c release -Xswiftc -enable-testing --filter EngineBenchEntry`.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["QTOOLS_ENGINE_BENCH_DIR"] != nil))
struct EngineBenchEntry {
    struct IndexEntry: Decodable {
        var name: String
        var shape: [Int]
        var file: String
    }

    static func floats(_ url: URL) throws -> [Float] { try readFloat32(url) }

    @Test func resnet18OnTorchWeights() throws {
        let env = ProcessInfo.processInfo.environment
        let dir = URL(fileURLWithPath: env["QTOOLS_ENGINE_BENCH_DIR"]!)
        let runs = Int(env["QTOOLS_BENCH_RUNS"] ?? "") ?? 30
        let warmup = Int(env["QTOOLS_BENCH_WARMUP"] ?? "") ?? 5
        let threads = Int(env["QTOOLS_BENCH_THREADS"] ?? "") ?? 2
        let index = try JSONDecoder().decode([IndexEntry].self, from: Data(contentsOf: dir.appendingPathComponent("index.json")))
        var weights: [String: Tensor] = [:]
        for e in index {
            weights[e.name] = Tensor(floats: try Self.floats(dir.appendingPathComponent(e.file)), shape: e.shape)
        }
        let graph = try ResNet18.graph { name, _ in try #require(weights[name], "missing \(name)") }
        let input = try Self.floats(dir.appendingPathComponent("input.f32"))
        let expected = try Self.floats(dir.appendingPathComponent("expected.f32"))
        let exec = try Executor(graph: graph, threads: threads)
        let got = try #require(exec.run(floats: input, shape: [1, 3, 224, 224])["logits"]).floats()
        let maxDiff = zip(got, expected).map { abs($0 - $1) }.max() ?? .nan
        #expect(maxDiff < 1e-3)
        let r = try EngineBenchmark.measure(graph: graph, inputShape: [1, 3, 224, 224], iterations: runs, warmup: warmup, threads: threads)
        let json: [String: Any] = [
            "medianMs": r.medianMs, "minMs": r.minMs, "maxMs": r.maxMs, "maxAbsDiff": Double(maxDiff),
            "shares": r.shares, "opMs": r.opMilliseconds, "arenaBytes": r.arenaBytes,
            "packedWeightBytes": r.packedWeightBytes, "steps": r.steps,
        ]
        try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]).write(to: dir.appendingPathComponent("result.json"))
    }

    /// Random weights, no Python: `QTOOLS_ENGINE_BENCH_DIR=/some/dir` plus `QTOOLS_BENCH_RANDOM=1`.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["QTOOLS_BENCH_RANDOM"] != nil))
    func resnet18Random() throws {
        let env = ProcessInfo.processInfo.environment
        let r = try EngineBenchmark.resnet18(
            iterations: Int(env["QTOOLS_BENCH_RUNS"] ?? "") ?? 30, warmup: 5,
            threads: Int(env["QTOOLS_BENCH_THREADS"] ?? "") ?? 2)
        let shares = r.opMilliseconds.sorted { $0.value > $1.value }.map { "\($0.key) \(String(format: "%.2f", $0.value))ms" }
        let line =
            "median \(r.medianMs) min \(r.minMs) max \(r.maxMs) | \(shares.joined(separator: ", ")) | arena \(r.arenaBytes) weights \(r.packedWeightBytes) steps \(r.steps)\n"
        try line.write(
            to: URL(fileURLWithPath: env["QTOOLS_ENGINE_BENCH_DIR"]!).appendingPathComponent("random.txt"), atomically: true,
            encoding: .utf8)
    }
}

/// Per-step timings of ResNet-18 (random weights) into `$QTOOLS_ENGINE_BENCH_DIR/steps.txt`.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["QTOOLS_BENCH_STEPS"] != nil))
struct EngineStepProfile {
    @Test func resnet18Steps() throws {
        let env = ProcessInfo.processInfo.environment
        let threads = Int(env["QTOOLS_BENCH_THREADS"] ?? "") ?? 2
        let options = PlanOptions(winograd: env["QTOOLS_BENCH_NO_WINOGRAD"] == nil)
        let exec = try Executor(graph: ResNet18.randomGraph(), threads: threads, options: options)
        if threads == 1 { exec.profileClock = .threadCPU }
        let x = Tensor(floats: [Float](repeating: 0.5, count: 3 * 224 * 224), shape: [1, 3, 224, 224])
        for _ in 0..<3 { _ = try exec.run(["input": x]) }
        // Minimum over runs per step: the least disturbed sample on a shared machine.
        var best: [UInt64] = []
        var p = Profile()
        for _ in 0..<15 {
            var one = Profile()
            _ = try exec.run(["input": x], profile: &one)
            best = best.isEmpty ? one.steps.map(\.nanoseconds) : zip(best, one.steps).map { min($0, $1.nanoseconds) }
            p = one
        }
        // Whole runs (thread CPU time when single-threaded, else wall).
        var whole: [Double] = []
        for _ in 0..<20 {
            var one = Profile()
            _ = try exec.run(["input": x], profile: &one)
            whole.append(Double(one.steps.reduce(0) { $0 + $1.nanoseconds }) / 1e6)
        }
        whole.sort()
        // Process CPU (all threads, user + sys) per run: scaling overhead shows up as extra CPU.
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu0 =
            Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3
        for _ in 0..<20 { _ = try exec.run(["input": x]) }
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu1 =
            Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3
        let processCPU = "process CPU per run \(String(format: "%.2f", (cpu1 - cpu0) / 20)) ms; "
        let total = Double(best.reduce(0, +)) / 1e6
        let summary = "runs: min \(String(format: "%.2f", whole[0])) median \(String(format: "%.2f", whole[10])) ms; "
        let lines =
            [processCPU + summary + "sum of per-step minima: \(String(format: "%.2f", total)) ms"]
            + zip(best, p.steps).map {
                "\(String(format: "%7.3f", Double($0) / 1e6)) ms  \($1.opType) \($1.nodes.joined(separator: "+"))"
            }
        try lines.joined(separator: "\n").write(
            to: URL(fileURLWithPath: env["QTOOLS_ENGINE_BENCH_DIR"]!).appendingPathComponent("steps.txt"), atomically: true, encoding: .utf8
        )
    }
}
