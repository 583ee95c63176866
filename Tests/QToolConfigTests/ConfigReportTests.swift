import Foundation
import TestSupport
import Testing

@testable import Formats
@testable import QToolConfig

/// The `qtools config show` document: JSON contract and text listing.
@Suite struct ConfigReportTests {
    static let path = Fixtures.path("golden/resnet20_pact_a2w2/config.txt")

    func report() throws -> ConfigReport {
        let options = try QToolOptions(config: ConfigFile(contentsOf: Self.path))
            .applying(arguments: ["--width_alpha", "0.5"])
        return ConfigReport(options, config: Self.path)
    }

    @Test func jsonHasSortedKeysAndProvenance() throws {
        let json = try report().json()
        let root = try #require(
            try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(
            root.keys.sorted() == ["argv", "config", "keywords", "options", "resolved", "warnings"])
        // Top-level keys appear in sorted order in the text itself.
        let order = [
            "\"argv\"", "\"config\"", "\"keywords\"", "\"options\"", "\"resolved\"", "\"warnings\"",
        ]
        .compactMap { json.range(of: $0)?.lowerBound }
        #expect(order.count == 6 && order == order.sorted())

        let options = try #require(root["options"] as? [String: [String: Any]])
        #expect(options.count == QToolOptions.table.count)
        let batch = try #require(options["batch_size"])
        #expect(batch["value"] as? Int == 8)
        #expect(batch["default"] as? Int == 256)
        #expect(batch["source"] as? String == "config")
        #expect(batch["line"] as? Int == 9)  // `train_batch=8` is line 9 of config.txt
        #expect(batch["flags"] as? [String] == ["--batch_size", "-b"])
        #expect(batch["changed"] as? Bool == true)
        let width = try #require(options["width_alpha"])
        #expect(width["source"] as? String == "command-line")
        #expect(width["line"] is NSNull)
        #expect(width["value"] as? Double == 0.5)
        let clip = try #require(options["custom_decay_list"])
        #expect(clip["value"] as? [String] == ["clip_val"])
        let grad = try #require(options["grad_clip"])
        #expect(grad["value"] is NSNull && grad["source"] as? String == "default")
        #expect(options["fm_half_range"]?["value"] as? Bool == true)
        let resolved = try #require(root["resolved"] as? [String: Double])
        #expect(
            resolved == [
                "num_classes": 10, "input_size": 32, "fm_bit": 2, "wt_bit": 2, "fm_levels": 4,
                "wt_levels": 4,
            ])
        #expect(
            root["keywords"] as? [String] == [
                "cifar10", "origin", "cbsa", "fix_pooling", "singleconv", "fix", "real_skip",
                "pact",
            ])
        #expect((root["argv"] as? [String])?.suffix(2) == ["--width_alpha", "0.5"])
    }

    @Test func jsonIsStable() throws {
        #expect(try report().json() == report().json())
    }

    @Test func textGroupsAndMarksChanges() throws {
        let text = try report().text()
        #expect(text.contains("\nquantization: fm_ (input activations):\n"))
        #expect(text.contains("* --width_alpha"))
        #expect(text.contains("0.5  (default 1.0; command line)"))
        #expect(text.contains("* --batch_size"))
        #expect(text.contains("(default 256; config line 9)"))
        // Set but equal to the default: listed without the change mark.
        let base = try #require(text.split(separator: "\n").first { $0.contains("--base ") })
        #expect(base.hasPrefix("    --base") && base.hasSuffix("1  (train.sh)"))
        #expect(!text.contains("--momentum"))
        #expect(try report().text(showAll: true).contains("--momentum"))
    }

    @Test func warningsListUnknownKeywords() throws {
        let options = try QToolOptions(
            config: ConfigFile(
                contentsOf: Fixtures.path("seed-configs/config.lq-net.eval.dali.2bit.resnet18-fg8"))
        )
        let report = ConfigReport(options)
        #expect(report.warnings == ["unknown keyword 'mean' (ignored by QTool)"])
        #expect(report.text().hasSuffix("warnings:\n  unknown keyword 'mean' (ignored by QTool)"))
    }
}
