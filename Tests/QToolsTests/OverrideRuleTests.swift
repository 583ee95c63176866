import Foundation
import TestSupport
import Testing

/// One rule for QTool overrides on every command (issue 16): after `--` or not, the same
/// result; `run -- --fm_bit 4` was refused as a positional argument, `convert --fm_bit 4`
/// as an unknown option.
@Suite struct OverrideRuleTests {
    static let ckpt = Fixtures.path("golden/resnet20_lsq_a2w2/checkpoint.pth")
    static let config = Fixtures.path("golden/resnet20_lsq_a2w2/config.txt")

    @Test func bothFormsAgreeInEveryCommand() throws {
        try withTemporaryDirectory { dir in
            let commands: [(String, [String])] = [
                ("run", ["run", Self.ckpt, "--config", Self.config]),
                ("trace", ["trace", Self.ckpt, "--config", Self.config]),
                ("bench", ["bench", Self.ckpt, "--config", Self.config, "--runs", "1", "--warmup", "0", "--json"]),
                ("verify", ["verify", Self.ckpt, Self.ckpt, "--config", Self.config, "--samples", "1"]),
                ("config show", ["config", "show", Self.config, "--json"]),
            ]
            for (name, args) in commands {
                let plain = try RunQTools.run(args + ["--fm_bit", "4"])
                let dashed = try RunQTools.run(args + ["--", "--fm_bit", "4"])
                #expect(plain.status == 0 && dashed.status == 0, "\(name): \(plain.stderr) | \(dashed.stderr)")
                if name != "bench" { #expect(plain.stdout == dashed.stdout, "\(name)") }
                // The overrides are read, in both forms: an unknown one is an error naming it.
                for bad in [["--nosuch", "1"], ["--", "--nosuch", "1"]] {
                    let r = try RunQTools.run(args + bad)
                    #expect(r.status != 0 && r.stderr.contains("nosuch"), "\(name) \(bad): \(r.stderr)")
                }
            }
            let show = try RunQTools.run(["config", "show", Self.config, "--fm_bit", "4", "--json"])
            #expect(show.stdout.contains("\"fm_bit\"") && show.stdout.contains("4"), "\(show.stdout)")
            // convert records the overrides the same way in both forms.
            var written: [Data] = []
            for form in [["--fm_bit", "4"], ["--", "--fm_bit", "4"]] {
                // The same file name in two directories: the archive's root is named after it.
                let sub = dir.appendingPathComponent("form\(written.count)")
                try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
                let out = sub.appendingPathComponent("c.pth").path
                let r = try RunQTools.run(["convert", Self.ckpt, "-o", out, "--config", Self.config] + form)
                #expect(r.status == 0, "\(form): \(r.stderr)")
                let recorded = try RunQTools.run(["inspect", out, "--json"])
                #expect(recorded.stdout.contains("fm_bit"), "\(form): the override is not recorded")
                // Everything but the file's path (and torch's random serialization id, which inspect does not show).
                let lines = recorded.stdout.split(separator: "\n").filter { !$0.contains("\"file\"") }
                written.append(Data(lines.joined(separator: "\n").utf8))
            }
            #expect(written[0] == written[1])
            // Without --config a convert override is named, with the way out.
            let orphan = try RunQTools.run(["convert", Self.ckpt, "-o", dir.appendingPathComponent("o.pth").path, "--fm_bit", "4"])
            #expect(orphan.status == 64 && orphan.stderr.contains("--fm_bit 4") && orphan.stderr.contains("--config"), "\(orphan.stderr)")
        }
    }
}
