import Foundation
import QToolConfig
import TestSupport
import Testing

@testable import Train

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// The reference's log file (§14.10): name, line format, append on resume, the messages; the
/// SVG curves: well-formed, one point per epoch, rebuilt from a log.
@Suite struct TrainLogTests {
    static func options(_ args: [String]) throws -> QToolOptions {
        try QToolOptions().applying(arguments: ["--model", "resnet20", "--case", "c1"] + args)
    }

    @Test func fileNamesAndLineFormat() throws {
        #expect(TrainLog.fileName(options: try Self.options([])) == "resnet20-c1.txt")
        #expect(TrainLog.fileName(options: try Self.options(["-e"])) == "eval-resnet20-c1.txt")
        #expect(TrainLog.line("hello", level: "INFO", time: "2020-01-02 03:04:05") == "2020-01-02 03:04:05 - INFO - hello\n")
        #expect(TrainLog.epochLR(3, 0.1) == "[epoch 3]: lr 1.000000e-01")
        #expect(TrainLog.trainLoss(3, 1.23456) == "[epoch 3]: train_loss 1.235")
        let r = TrainLoop.EpochRecord(
            epoch: 2, lr: 0.1, trainLoss: 1, top1: 12.5, top5: 50, evalLoss: 2.25, bestAcc: 12.5, lrAfter: 0.1, newBest: true)
        #expect(TrainLog.testAccuracy(r) == "[epoch 2]: test_acc 12.500000 50.000000, best top1: 12.500000, loss: 2.250000")
        #expect(
            TrainLog.trainReport(
                0, 3, loss: 2.5, averageLoss: 2.5, batchTime: 1.234, averageBatchTime: 1.234, dataTime: 0, averageDataTime: 0)
                == "train 0/3, loss:2.500(2.500), batch time:1.23(1.23), data load time: 0.00(0.00)")
        #expect(TrainLog.evaluation(top1: 70.1, top5: 89.5) == "evaluate accuracy on dataset: top1(70.100000) top5(89.500000)")
        let config = TrainLog.configLines(try Self.options(["--lr", "0.02"]))
        #expect(config.contains("config lr: 0.02") && config.contains("config model: 'resnet20'"))
        #expect(config.count == QToolOptions.table.count)
    }

    /// A fresh run overwrites the log (`'w'`); `-r` appends (`'a'`), as `setup_logging` does.
    @Test func appendsOnResumeOnly() throws {
        try withTemporaryDirectory { tmp in
            let dir = tmp.appendingPathComponent("logs/deep").path
            let date = Date(timeIntervalSince1970: 0)
            var log = try TrainLog(options: try Self.options(["--log_dir", dir]))
            #expect(log.path == dir + "/resnet20-c1.txt")
            try log.info("first", date: date)
            let firstText = try String(contentsOfFile: log.path, encoding: .utf8)
            #expect(firstText.hasSuffix(" - INFO - first\n"), "written as logged: \(firstText)")
            let time = String(firstText.prefix(19))
            #expect(time.count == 19 && time.dropFirst(4).first == "-" && time.dropFirst(13).first == ":", "\(time)")
            log.close()
            log = try TrainLog(options: try Self.options(["--log_dir", dir, "-r"]))
            try log.info("second", date: date)
            log.close()
            var lines = try String(contentsOfFile: log.path, encoding: .utf8).split(separator: "\n")
            #expect(lines.map { $0.hasSuffix("first") || $0.hasSuffix("second") } == [true, true] && lines.count == 2)
            log = try TrainLog(options: try Self.options(["--log_dir", dir]))
            try log.info("third", date: date)
            log.close()
            lines = try String(contentsOfFile: log.path, encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasSuffix(" - INFO - third"))
        }
    }

    static let log = """
        2026-01-01 00:00:00 - INFO - config lr: 0.1
        2026-01-01 00:00:00 - INFO - [epoch 0]: lr 1.000000e-01
        2026-01-01 00:00:01 - INFO - train 0/3, loss:2.500(2.500), batch time:1.23(1.23), data load time: 0.00(0.00)
        2026-01-01 00:00:02 - INFO - [epoch 0]: train_loss 2.345
        2026-01-01 00:00:02 - INFO - [epoch 0]: test_acc 10.000000 50.000000, best top1: 10.000000, loss: 2.300000
        2026-01-01 00:00:03 - INFO - [epoch 1]: lr 5.000000e-02
        2026-01-01 00:00:04 - INFO - [epoch 1]: train_loss 2.000
        2026-01-01 00:00:04 - INFO - [epoch 1]: test_acc 20.000000 60.000000, best top1: 20.000000, loss: 2.100000
        2026-01-01 00:00:05 - INFO - [epoch 2]: lr 2.500000e-02
        """

    @Test func pointsFromLog() {
        let p = TrainCurves.points(fromLog: Self.log)
        #expect(p.count == 2, "epoch 2 has no evaluation yet")
        #expect(p.first == TrainCurves.Point(epoch: 0, lr: 0.1, trainLoss: 2.345, top1: 10, top5: 50, evalLoss: 2.3))
        #expect(p.last == TrainCurves.Point(epoch: 1, lr: 0.05, trainLoss: 2, top1: 20, top5: 60, evalLoss: 2.1))
    }

    final class Collector: NSObject, XMLParserDelegate {
        var elements: [String: Int] = [:]
        var texts: [String] = []
        func parser(
            _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            elements[name, default: 0] += 1
            current = ""
        }
        var current = ""
        func parser(_ parser: XMLParser, foundCharacters string: String) { current += string }
        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            let s = current.trimmingCharacters(in: .whitespacesAndNewlines)
            if !s.isEmpty { texts.append(s) }
            current = ""
        }
    }

    @Test func svgIsWellFormedWithOneCurvePerSeries() throws {
        var points = TrainCurves.points(fromLog: Self.log)
        points.append(TrainCurves.Point(epoch: 2, lr: 0.025, trainLoss: 1.5, top1: 30, top5: 70, evalLoss: 1.9))
        let svg = TrainCurves.svg(points, title: "qtools train: a<b & c")
        let parser = XMLParser(data: Data(svg.utf8))
        let c = Collector()
        parser.delegate = c
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        #expect(c.elements["svg"] == 1)
        #expect(c.elements["polyline"] == 5, "train/eval loss, top-1, top-5, lr")
        #expect(c.elements["circle"] == 15)
        #expect(c.texts.contains("qtools train: a<b & c") && c.texts.contains("top-5") && c.texts.contains("epoch"))
        #expect(!svg.contains("href") && !svg.contains("<script"), "self-contained")
        // One epoch: points, no lines; none: empty panels, still well-formed.
        let one = TrainCurves.svg([points[0]], title: "t")
        #expect(!one.contains("<polyline") && one.components(separatedBy: "<circle").count - 1 == 5)
        #expect(XMLParser(data: Data(TrainCurves.svg([], title: "t").utf8)).parse())
    }

    @Test func ticksCoverTheRange() {
        let (t, lo, hi) = TrainCurves.ticks(0.013, 0.05, integer: false)
        #expect(lo <= 0.013 && hi >= 0.05 && t.count >= 3 && t.count <= 8, "\(t)")
        let (e, elo, ehi) = TrainCurves.ticks(0, 2, integer: true)
        #expect(e.allSatisfy { $0 == $0.rounded() } && elo == 0 && ehi == 2, "\(e)")
        let (f, flo, fhi) = TrainCurves.ticks(5, 5, integer: false)
        #expect(flo < 5 && fhi > 5 && !f.isEmpty)
    }
}
