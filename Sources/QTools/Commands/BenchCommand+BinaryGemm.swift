import ArgumentParser
import Engine
import Foundation

/// `qtools bench --binary-gemm [--path P] [--runs N] [--json]`: the bit-packed binary conv
/// (``BinaryConvBenchmark``) on ResNet-18's four 3x3 stage shapes, one thread, every popcount
/// code path this CPU runs.
extension BenchCommand {
    func runBinaryGemm() throws {
        try ExitCodes.reporting {
            let paths: [BitKernelPath]
            if let path {
                guard let p = BitKernelPath.allCases.first(where: { $0.description == path }) else {
                    throw UsageError("--path \(path): one of \(BitKernelPath.allCases.map(\.description).joined(separator: ", "))")
                }
                guard p.isSupported else { throw UsageError("--path \(path) does not run on this CPU") }
                paths = [p]
            } else {
                paths = BitKernelPath.supported.reversed()
            }
            var results: [BinaryConvBenchmark.Result] = []
            for p in paths {
                for shape in BinaryConvBenchmark.Shape.resnet18Stages {
                    results.append(try BinaryConvBenchmark.measure(shape, path: p, runs: runs))
                }
            }
            let report = BinaryGemmBenchReport(results: results, runs: runs, best: BitKernelPath.best)
            Terminal.out(out.json ? try JSONOutput.render(report) : report.text)
        }
    }
}

/// The `--json` document of `bench --binary-gemm`.
struct BinaryGemmBenchReport: Encodable {
    struct Entry: Encodable {
        var path: String
        var shape: String
        var m: Int, n: Int, k: Int
        var gemmMinMs: Double, gemmMedianMs: Double
        var gemmGBitMACsPerSecond: Double, gemmMedianGBitMACsPerSecond: Double
        var layerMinMs: Double, layerMedianMs: Double, layerGBitMACsPerSecond: Double
        var floatMinMs: Double, floatMedianMs: Double
        /// Float conv time / binary layer time (fastest runs).
        var layerSpeedup: Double

        enum CodingKeys: String, CodingKey {
            case path, shape, m, n, k, gemmMinMs = "gemm_min_ms", gemmMedianMs = "gemm_median_ms",
                gemmGBitMACsPerSecond = "gemm_gbitmacs_per_second", gemmMedianGBitMACsPerSecond = "gemm_median_gbitmacs_per_second",
                layerMinMs = "layer_min_ms", layerMedianMs = "layer_median_ms", layerGBitMACsPerSecond = "layer_gbitmacs_per_second",
                floatMinMs = "float_min_ms", floatMedianMs = "float_median_ms", layerSpeedup = "layer_speedup_vs_float"
        }
    }

    var threads = 1
    var runs: Int
    var bestPath: String
    var results: [Entry]

    enum CodingKeys: String, CodingKey {
        case threads, runs, bestPath = "best_path", results
    }

    init(results: [BinaryConvBenchmark.Result], runs: Int, best: BitKernelPath) {
        self.runs = runs
        bestPath = best.description
        self.results = results.map { r in
            let s = r.shape
            return Entry(
                path: r.path.description,
                shape: "\(s.inChannels)->\(s.outChannels) \(s.kernel)x\(s.kernel) s\(s.stride) on \(s.height)x\(s.width)",
                m: r.m, n: r.n, k: r.k, gemmMinMs: r.gemmMinMs, gemmMedianMs: r.gemmMedianMs,
                gemmGBitMACsPerSecond: r.gemmGBitMACsPerSecond, gemmMedianGBitMACsPerSecond: r.gemmMedianGBitMACsPerSecond,
                layerMinMs: r.layerMinMs, layerMedianMs: r.layerMedianMs, layerGBitMACsPerSecond: r.layerGBitMACsPerSecond,
                floatMinMs: r.floatMinMs, floatMedianMs: r.floatMedianMs, layerSpeedup: r.floatMinMs / r.layerMinMs)
        }
    }

    var text: String {
        func f(_ x: Double, _ d: Int = 3) -> String { String(format: "%.\(d)f", x) }
        var table = TextTable(
            ["path", "M x N x K", "gemm ms", "G bit-MAC/s", "layer ms", "G bit-MAC/s", "float ms", "speedup"],
            rightAligned: [2, 3, 4, 5, 6, 7])
        for e in results {
            table.add([
                e.path, "\(e.m) x \(e.n) x \(e.k)", f(e.gemmMinMs), f(e.gemmGBitMACsPerSecond, 0), f(e.layerMinMs),
                f(e.layerGBitMACsPerSecond, 0), f(e.floatMinMs), f(e.layerSpeedup, 1) + "x",
            ])
        }
        return "binary 3x3 conv, 1 thread, fastest of \(runs) runs (best path on this CPU: \(bestPath)); "
            + "G bit-MAC/s = M x N x K / time\n" + table.render()
    }
}
