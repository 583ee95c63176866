import ArgumentParser
import Engine
import Foundation
import Models
import Tensors

/// `qtools verify A B --per-layer` and `qtools verify --layers DIR_A DIR_B`: where two runs
/// start to differ.
struct VerifyLayerOptions: ParsableArguments {
    @Flag(name: .customLong("per-layer"), help: "With two models: compare every layer value (in A's execution order), not only the logits.")
    var perLayer = false

    @Flag(name: .long, help: "Compare two dump directories (`run --dump`, or .npy files from PyTorch forward hooks) layer by layer.")
    var layers = false

    @Option(
        name: .customLong("engine-a"),
        help:
            "A's executor. With --per-layer: fast (default), unfused or reference. For logits: fast or int8 (quantized convs on the int8 kernels, as run computes them) or float (the fake-quant path); default: the float graph."
    )
    var engineA: RunEngine?

    @Option(name: .customLong("engine-b"), help: "B's executor, as --engine-a.")
    var engineB: RunEngine?

    var isRequested: Bool { perLayer || layers }

    /// Runs the per-layer comparison; exit 1 when a layer differs beyond tolerance.
    func run(
        a: String, b: String?, two: VerifyTwoOptions, config: String?, input: String?, overrides: [String],
        out: OutputOptions
    ) throws {
        let report: VerifyLayersReport = try ExitCodes.reporting {
            guard let b else {
                throw UsageError(
                    layers
                        ? "--layers compares two dump directories: verify --layers DIR_A DIR_B"
                        : "--per-layer compares two models: verify A B --per-layer")
            }
            guard two.tolerance >= 0 else { throw UsageError("--tolerance must be >= 0") }
            if layers {
                let comparison = try LayerComparison(LayerDump.read(a), LayerDump.read(b), tolerance: two.tolerance)
                return VerifyLayersReport(a: a, b: b, input: nil, comparison: comparison)
            }
            for path in [a, b] where Self.isDirectory(path) {
                throw UsageError("\(path) is a directory: compare dumps with verify --layers DIR_A DIR_B")
            }
            let ma = try ModelSource.open(a, config: config, overrides: overrides)
            let mb = try ModelSource.open(
                b, config: two.configB ?? VerifyTwoOptions.recordedOr(b, config), overrides: ModelSource.overrides(overrides, forSecond: b))
            let (x, what) = try two.sharedInput(ma, mb, input: input)
            let comparison = try LayerComparison(
                ma.layers(x, engineA ?? .fast), mb.layers(x, engineB ?? .fast), tolerance: two.tolerance)
            return VerifyLayersReport(
                a: "\(ma.description), engine \((engineA ?? .fast).rawValue)",
                b: "\(mb.description), engine \((engineB ?? .fast).rawValue)",
                input: what, comparison: comparison)
        }
        Terminal.out(out.json ? try JSONOutput.render(report) : report.text)
        if !report.comparison.pass { throw ExitCode(ExitCodes.checkFailed) }
    }

    static func isDirectory(_ path: String) -> Bool {
        var d: ObjCBool = false
        return unsafe FileManager.default.fileExists(atPath: path, isDirectory: &d) && d.boolValue
    }
}

/// The `--json` document of per-layer `verify`.
struct VerifyLayersReport: Encodable {
    var a: String
    var b: String
    var input: String?
    var comparison: LayerComparison

    enum CodingKeys: String, CodingKey { case a, b, input }

    func encode(to encoder: any Encoder) throws {
        try comparison.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(a, forKey: .a)
        try c.encode(b, forKey: .b)
        try c.encodeIfPresent(input, forKey: .input)
    }

    var text: String {
        var lines = ["A      \(a)", "B      \(b)"]
        if let input { lines.append("input  \(input)") }
        var t = TextTable(["#", "layer", "op", "shape", "max |A-B|", "max |B|", ""], rightAligned: [0, 4, 5])
        for (i, r) in comparison.rows.enumerated() {
            t.add([
                "\(i)", r.name, r.op, "[" + r.shape.map(String.init).joined(separator: ",") + "]",
                r.maxAbs.map { "\($0)" } ?? "-", r.peak.map { "\($0)" } ?? "-", r.status,
            ])
        }
        lines.append(t.render())
        for (side, names) in [("A", comparison.onlyInA), ("B", comparison.onlyInB)] where !names.isEmpty {
            let shown = names.prefix(8).joined(separator: ", ") + (names.count > 8 ? ", ... (\(names.count))" : "")
            lines.append("only in \(side): \(shown)")
        }
        if let e = comparison.first {
            let pos = e.position.map(String.init).joined(separator: ",")
            lines.append(
                "first difference: \(e.layer) (\(e.op)) at element \(e.index) [\(pos)] of \(e.shape): A \(e.a), B \(e.b)"
                    + " (\(e.count) element\(e.count == 1 ? "" : "s") above tolerance)")
            if let i = e.input {
                lines.append("  input \(i.name) at that element: A \(i.a), B \(i.b) (\(i.ulps) ulps apart)")
            }
            if let bd = e.boundary {
                lines.append(
                    "  level boundary between \(bd.lastOnASide) and \(bd.firstOnBSide): "
                        + "\(bd.distanceA) (\(bd.ulpsA) ulps) from A's input, \(bd.distanceB) (\(bd.ulpsB) ulps) from B's")
            }
            lines.append("  " + e.note)
        }
        let compared = comparison.rows.filter { $0.maxAbs != nil }.count
        lines.append(
            "\(comparison.pass ? "PASS" : "FAIL") (\(compared) layers compared; tolerance \(comparison.tolerance) x max(1, max |B|) per layer)"
        )
        return lines.joined(separator: "\n")
    }
}
