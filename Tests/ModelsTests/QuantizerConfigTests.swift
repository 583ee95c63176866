import Formats
import Foundation
import QToolConfig
import TestSupport
import Testing

@testable import Engine
@testable import Models

/// Construction-time resolution (§11.1, §5.2): checked against every quantizer record of the
/// golden cases' case.json, plus the rules the golden cases do not reach.
@Suite struct QuantizerConfigTests {
    static func options(_ args: [String]) throws -> QToolOptions {
        try QToolOptions().applying(arguments: args)
    }

    /// Every enabled quantizer the golden generator recorded (name, tag, shape, method, choice,
    /// levels, groups, half range, stable) must resolve identically from config.txt.
    @Test(arguments: QuantizerGoldenTests.cases)
    func matchesCaseRecords(name: String) throws {
        let options = try QToolOptions(
            config: ConfigFile(contentsOf: Fixtures.path("golden/\(name)/config.txt")))
        let data = try Data(contentsOf: Fixtures.url("golden/\(name)/case.json"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let records = try #require(json["quantizers"] as? [[String: Any]])
        #expect(records.count > 30)
        for r in records {
            let label = r["name"] as? String ?? "?"
            let tag = try #require(QuantizerTag(rawValue: r["tag"] as? String ?? ""))
            let shape = try #require(r["shape"] as? [Int])
            let c = try QuantizerConfig(options: options, tag: tag, shape: shape)
            #expect(c.methodName == r["method"] as? String, "\(label)")
            #expect(c.choice == r["choice"] as? String, "\(label)")
            #expect(c.levels == r["num_levels"] as? Int, "\(label)")
            #expect(c.bit == r["bit"] as? Int, "\(label)")
            #expect(c.quantGroup == r["quant_group"] as? Int, "\(label)")
            #expect(c.normGroup == r["norm_group"] as? Int, "\(label)")
            #expect(c.halfRange == r["half_range"] as? Bool, "\(label)")
            #expect(c.adaptive.rawValue == r["adaptive"] as? String, "\(label)")
            #expect(c.stable == r["stable"] as? Int, "\(label)")
            if let boundary = r["boundary"] as? Double {
                #expect(c.boundary == boundary, "\(label)")
            }
        }
    }

    @Test(
        arguments: [
            (nil, 64), (0, 64), (1, 1), (8, 8), (7, 64), (-1, 64 * 16), (-64, 16), (-5, 64),
        ] as [(Int?, Int)])
    func weightQuantGroupResolution(given: Int?, expected: Int) throws {
        var args = ["--keyword", "dorefa,lsq", "--wt_enable", "--wt_bit", "2"]
        if let given { args += ["--wt_quant_group", "\(given)"] }
        let c = try QuantizerConfig(options: Self.options(args), tag: .wt, shape: [64, 16, 3, 3])
        #expect(c.quantGroup == expected)
    }

    @Test func defaultsPerTag() throws {
        let o = try Self.options([
            "--keyword", "dorefa", "--fm_enable", "--wt_enable", "--ot_enable", "--wt_bit", "1.6",
        ])
        let fm = try QuantizerConfig(options: o, tag: .fm, shape: [1, 16, 1, 1])
        let wt = try QuantizerConfig(options: o, tag: .wt, shape: [32, 16, 3, 3])
        let ot = try QuantizerConfig(options: o, tag: .ot, shape: [1, 32, 1, 1])
        #expect(fm.halfRange && !wt.halfRange && !ot.halfRange)
        #expect(fm.quantGroup == 1 && wt.quantGroup == 32 && ot.quantGroup == 1)
        #expect(wt.levels == 3 && wt.bit == 1)  // --wt_bit 1.6: int(2 ** 1.6) = 3 levels
        #expect(fm.levels == 1 << 32 && fm.bit == 32)  // no --fm_bit: 32 bits
        #expect(wt.boundary == 1.0)
        let independent = try QuantizerConfig(
            options: Self.options(["--keyword", "dorefa,independent_norm", "--wt_enable"]),
            tag: .wt,
            shape: [32, 16, 3, 3])
        #expect(independent.quantGroup == 32 && independent.normGroup == 1)
    }

    @Test func methodPrecedence() throws {
        func method(
            _ kw: String, _ tag: QuantizerTag, _ extra: [String] = []
        ) throws
            -> QuantizerMethod?
        {
            let o = try Self.options(
                ["--keyword", kw, "--\(tag.rawValue)_enable", "--\(tag.rawValue)_bit", "2"] + extra)
            return try QuantizerConfig(options: o, tag: tag, shape: [8, 8, 3, 3]).method
        }
        #expect(try method("dorefa,lsq,non-uniform", .fm) == .lsq)
        #expect(try method("pact,non-uniform", .fm) == .nonUniform)
        #expect(try method("pact", .fm) == .pact)
        #expect(try method("pact", .wt) == .dorefa)
        #expect(try method("dorefa,fm_non-uniform,wt_lsq", .wt) == .lsq)
        #expect(try method("dorefa,wt_bin", .wt, ["--wt_bit", "1"]) == .binaryWeight)
        #expect(try method("dorefa,wt_bin", .wt) == .dorefa)  // wt_bin needs 2 levels
        #expect(try method("lq", .wt) == .lqNet)
        #expect(try method("lq,dorefa", .wt) == .dorefa)  // the DoReFa branch overwrites method
        #expect(try method("xnor", .fm) == .xnor)
        #expect(try method("dorefa", .ot) == .dorefa)
        #expect(
            try QuantizerConfig(
                options: Self.options(["--keyword", "dorefa"]), tag: .fm, shape: [1, 8, 1, 1]
            ).method == nil)
    }

    @Test(arguments: [
        ("dorefa,gamma", QuantizerTag.fm, "Keyword corrupted"),
        ("pact", .ot, "output quantizers support LSQ or DoReFa only"),
        ("dorefa,non-uniform", .ot, "output quantizers support LSQ or DoReFa only"),
        ("alq", .wt, "absent compiled plugin"),
        ("cifar10", .wt, "no method keyword"),
        ("dorefa,wt_non-uniform", .wt, "exactly 3 levels"),
    ])
    func rejectsWhatQToolRejects(keyword: String, tag: QuantizerTag, message: String) throws {
        let o = try Self.options([
            "--keyword", keyword, "--\(tag.rawValue)_enable", "--\(tag.rawValue)_bit", "2",
        ])
        let e = try #require(throws: QuantizerError.self) {
            try QuantizerConfig(options: o, tag: tag, shape: [8, 8, 3, 3])
        }
        #expect(e.description.contains(message), "\(e)")
    }

    /// §11.12: DoReFa-family quantizers increment `iteration` before comparing with `stable`;
    /// LQ-Nets (eval) and XNOR compare the stored value.
    @Test func passThroughRule() throws {
        func config(_ kw: String, stable: Int) throws -> QuantizerConfig {
            try QuantizerConfig(
                options: Self.options([
                    "--keyword", kw, "--fm_enable", "--fm_bit", "2", "--stable", "\(stable)",
                ]),
                tag: .fm, shape: [1, 8, 1, 1])
        }
        #expect(try !config("dorefa", stable: 0).passesThrough(iteration: 0))  // first forward: 1 > 0
        #expect(try config("dorefa", stable: 1).passesThrough(iteration: 0))
        #expect(try !config("dorefa,lsq", stable: 1).passesThrough(iteration: 1))  // golden: stored 1
        #expect(try config("lq", stable: 0).passesThrough(iteration: 0))  // fresh LQ: unquantized
        #expect(try !config("lq", stable: 0).passesThrough(iteration: 20))
        #expect(try config("xnor", stable: 0).passesThrough(iteration: 0))  // XNOR never counts
        #expect(try !config("xnor", stable: -1).passesThrough(iteration: 0))
    }
}
