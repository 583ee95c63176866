import Foundation
import TestSupport
import Testing

/// Parser-level messages (issue 16): a negative number is an invalid value named with what was
/// given (it was "Missing value"), parser errors read `qtools: error:` like every other error,
/// and `qtools help NAME` for no such command fails.
@Suite struct ParserMessageTests {
    static let ckpt = Fixtures.path("golden/resnet20_fp/checkpoint.pth")

    @Test func negativeNumbersAreInvalidValuesNamedWithTheValue() throws {
        let cases: [([String], String)] = [
            (["bench", "resnet20", "--runs", "-1"], "--runs must be at least 1 (got -1)"),
            (["bench", "resnet20", "--warmup", "-1"], "--warmup must be at least 0 (got -1)"),
            (["bench", "resnet20", "--batch", "0"], "--batch must be at least 1 (got 0)"),
            (["run", "resnet20", "--threads", "-2"], "--threads must be at least 1 (got -2)"),
            (["trace", "resnet20", "--batch", "-1"], "--batch must be at least 1 (got -1)"),
            (["verify", Self.ckpt, "--atol", "-1"], "--atol must be a finite number >= 0 (got -1.0)"),
            (["verify", Self.ckpt, Self.ckpt, "--tolerance", "-1"], "--tolerance must be a finite number >= 0 (got -1.0)"),
            (
                ["convert", Self.ckpt, "-o", "x.pth", "--fold-bn", "--tolerance", "-1"],
                "--tolerance must be a finite number >= 0 (got -1.0)"
            ),
        ]
        for (args, message) in cases {
            let r = try RunQTools.run(args)
            #expect(r.status == 64 && r.stderr.hasPrefix("qtools: error: \(message)"), "\(args): \(r.stderr)")
        }
        // Following the message: a valid value runs.
        let ok = try RunQTools.run(["bench", "resnet20", "--runs", "1", "--warmup", "0", "--keyword", "cbsa"])
        #expect(ok.status == 0, "\(ok.stderr)")
    }

    @Test func parserErrorsAndUnknownHelpTopics() throws {
        let unknown = try RunQTools.run(["run", "--nosuch"])
        #expect(
            unknown.status == 64 && unknown.stderr.hasPrefix("qtools: error: ") && !unknown.stderr.contains("Error:"), "\(unknown.stderr)")
        let help = try RunQTools.run(["help", "nosuch"])
        #expect(help.status == 64 && help.stderr.contains("no command 'nosuch'") && help.stderr.contains("convert"), "\(help.stderr)")
        let real = try RunQTools.run(["help", "convert"])
        #expect(real.status == 0 && real.stdout.contains("OVERVIEW"), "\(real.stderr)")
        let version = try RunQTools.run(["--version"])
        #expect(version.status == 0 && !version.stdout.isEmpty)
        // The overview's paragraph is one paragraph (it wrapped inside lines before).
        let overview = try RunQTools.run(["--help"])
        #expect(!overview.stdout.contains("NumPy\nand ONNX"), "\(overview.stdout)")
    }
}
