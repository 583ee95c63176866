import Foundation
import TestSupport
import Testing

@testable import Formats
@testable import QToolConfig

/// Config files against external truth: the 52 shipped configs (fixtures/seed-configs) checked
/// against seed-reference Appendix B (fixtures/spec/appendix-b-rows.md), and the golden cases'
/// config.txt checked against the `main_args` train.sh really passed (fixtures/golden/<case>/
/// main_args.json, extracted from case.json with the typed values the Python run reported).
@Suite struct ConfigTests {
    static let seedNames: [String] = {
        let names =
            (try? FileManager.default.contentsOfDirectory(atPath: Fixtures.path("seed-configs")))
            ?? []
        return names.filter { $0.hasPrefix("config.") }.sorted()
    }()

    static let goldenCases = [
        "pytorch_resnet18_fp", "resnet18_lsq_a2w2", "resnet20_bireal_xnor", "resnet20_dorefa_a2w2",
        "resnet20_dorefa_a4w4_varmean", "resnet20_fatnn_a2w2", "resnet20_fixup", "resnet20_fp",
        "resnet20_lq_a2w2", "resnet20_lsq_a2w2", "resnet20_pact_a2w2", "resnet20_ternary_fatnn",
        "resnet20_xnorpp",
    ]

    struct Golden: Decodable {
        struct Optimizer: Decodable {
            var type: String
            var lr, momentum, weight_decay, custom_decay, custom_lr: Double
            var nesterov, decay_small, no_decay_small: Bool
            var custom_decay_list, custom_lr_list: [String]
        }
        struct Quantizer: Decodable {
            var bit: Double
            var half_range: Bool
            var adaptive, grad_type, grad_scale, custom: String
            var scale, ratio: Double
            var stable: Int
        }
        var main_args: [String]
        var keyword: [String]
        var model, dataset: String
        var num_classes: Int
        var input_shape: [Int]
        var optimizer: Optimizer
        var quantizers: [String: Quantizer]
    }

    static func golden(_ name: String) throws -> Golden {
        let data = try Data(contentsOf: Fixtures.url("golden/\(name)/main_args.json"))
        return try JSONDecoder().decode(Golden.self, from: data)
    }

    static func load(_ name: String, environment: [String: String] = [:]) throws -> ConfigFile {
        try ConfigFile(
            contentsOf: Fixtures.path("golden/\(name)/config.txt"), environment: environment)
    }

    @Test func all52SeedConfigsArePresent() {
        #expect(Self.seedNames.count == 52)
    }

    @Test(arguments: seedNames) func seedConfigParses(name: String) throws {
        let config = try ConfigFile(contentsOf: Fixtures.path("seed-configs/\(name)"))
        let options = try QToolOptions(config: config)
        #expect(config.argumentVector.prefix(2) == ["--dataset", options.dataset])
        #expect(config.script == "main.py")
    }

    // MARK: - Appendix B

    struct AppendixRow: CustomTestStringConvertible, Sendable {
        var file, dataset, model, keyword, epochs, batch, pretrained, other: String
        var testDescription: String { file }
    }

    static let appendixRows: [AppendixRow] = {
        guard
            let text = try? String(
                contentsOfFile: Fixtures.path("spec/appendix-b-rows.md"), encoding: .utf8)
        else { return [] }
        return text.split(separator: "\n").map { line in
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).dropFirst()
                .dropLast()
                .map {
                    $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(
                        in: CharacterSet(charactersIn: "`"))
                }
            return AppendixRow(
                file: cells[0], dataset: cells[1], model: cells[2], keyword: cells[3],
                epochs: cells[4],
                batch: cells[5], pretrained: cells[6], other: cells[7])
        }
    }()

    @Test func appendixCoversEverySeedConfig() {
        #expect(Set(Self.appendixRows.map(\.file)) == Set(Self.seedNames))
    }

    @Test(arguments: appendixRows) func seedConfigMatchesAppendixB(row: AppendixRow) throws {
        let options = try QToolOptions(
            config: ConfigFile(contentsOf: Fixtures.path("seed-configs/\(row.file)")))
        #expect(options.dataset == row.dataset)
        #expect(options.model == row.model)
        #expect(options.keywords == row.keyword.split(separator: ",").map(String.init))
        #expect(options.epochs == (row.epochs.isEmpty ? 0 : Int(row.epochs)))
        #expect(options.batchSize == Int(row.batch))
        #expect(options.valBatchSize == 50)
        if !row.pretrained.isEmpty { #expect(options.pretrained == row.pretrained) }
        // The spec's "other options" column, parsed on its own, must give the same values.
        let words = row.other.split(separator: " ").map(String.init)
        let expected = try QToolOptions(arguments: .commandLine(words))
        #expect(!expected.origins.isEmpty || words.isEmpty)
        for dest in expected.origins.keys {
            #expect(options[dest] == expected[dest], "\(dest)")
        }
    }

    @Test func trailingSpaceInPretrainedIsWordSplitAway() throws {
        let config = try ConfigFile(
            contentsOf: Fixtures.path("seed-configs/config.dorefa.eval.imagenet.fp.torch-resnet18"))
        #expect(config.variables["pretrained"] == "resnet18_w32a32.pth ")
        #expect(try QToolOptions(config: config).pretrained == "resnet18_w32a32.pth")
    }

    // MARK: - Golden cases

    @Test(arguments: goldenCases) func expansionEqualsMainArgs(name: String) throws {
        // case.json was produced with FASTDIR unset, so train.sh used /workspace.
        #expect(try Self.load(name).argumentVector == Self.golden(name).main_args)
        #expect(
            try Self.load(name, environment: ["FASTDIR": ""]).argumentVector
                == Self.golden(name).main_args)
    }

    @Test(arguments: goldenCases) func typedValuesMatchCaseJSON(name: String) throws {
        let golden = try Self.golden(name)
        let options = try QToolOptions(config: Self.load(name))
        #expect(options.model == golden.model)
        #expect(options.dataset == golden.dataset)
        #expect(options.keywords == golden.keyword)
        #expect(options.resolvedNumClasses == golden.num_classes)
        // CIFAR cases feed input_size images; ImageNet-style cases feed 64x64 test images to a
        // 224 model (golden README: "the adaptive average pool accepts 64x64"), so there the
        // expected value is §6's default.
        #expect(
            options.resolvedInputSize == (golden.num_classes == 1000 ? 224 : golden.input_shape[2]))
        let o = golden.optimizer
        #expect(options.optimizer == o.type)
        #expect(options.lr == o.lr)
        #expect(options.momentum == o.momentum)
        #expect(options.weightDecay == o.weight_decay)
        #expect(options.nesterov == o.nesterov)
        #expect(options.decaySmall == o.decay_small)
        #expect(options["no_decay_small"] == .bool(o.no_decay_small))
        #expect(options.customDecayList == o.custom_decay_list)
        #expect(options.customDecay == o.custom_decay)
        #expect(options.customLRList == o.custom_lr_list)
        #expect(options.customLR == o.custom_lr)
        for (tagName, q) in golden.quantizers {
            let tag = try #require(QuantizerTag(rawValue: tagName))
            let mine = options.quantizer(tag)
            #expect(mine.enable)
            #expect(mine.resolvedBit == q.bit)
            #expect(mine.halfRange == q.half_range, "\(tagName)_half_range")
            #expect(mine.adaptive.rawValue == q.adaptive)
            #expect(mine.gradType.rawValue == q.grad_type)
            #expect(mine.gradScale.rawValue == q.grad_scale)
            #expect(mine.custom.rawValue == q.custom)
            #expect(mine.scale == q.scale)
            #expect(mine.ratio == q.ratio)
            #expect(options.stable == q.stable)
        }
    }

    @Test func environmentDrivesFastDirAndDelay() throws {
        let config = try Self.load(
            "resnet20_fp", environment: ["FASTDIR": "/data/fast", "DELAY": "5"])
        let argv = config.argumentVector
        #expect(argv[2...3] == ["--root", "/data/fast/data/cifar"])
        let delay = try #require(argv.firstIndex(of: "--delay"))
        #expect(argv[delay + 1] == "5")
        #expect(try QToolOptions(config: config)["delay"] == .float(5))
    }

    @Test func wordsRememberTheirConfigLine() throws {
        // resnet20_lsq_a2w2/config.txt: line 17 ` options="$options --seed 14"`, line 28 `--wt_adaptive var-mean`.
        let config = try Self.load("resnet20_lsq_a2w2")
        let path = Fixtures.path("golden/resnet20_lsq_a2w2/config.txt")
        let seed = try #require(config.arguments.first { $0.text == "--seed" })
        #expect(seed.origin == .configFile(file: path, line: 17))
        let options = try QToolOptions(config: config)
        #expect(options.origins["wt_adaptive"] == .configFile(file: path, line: 28))
        #expect(options.origins["model"] == .configFile(file: path, line: 7))
        #expect(options.origins["base"] == .trainScript)
        #expect(options.origins["momentum"] == nil)
    }
}
