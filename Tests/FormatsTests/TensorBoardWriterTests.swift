import Foundation
import TestSupport
import Testing

@testable import Formats

/// CRC-32C against published vectors, TFRecord framing, the hand-written `Event` messages'
/// bytes, an event file read back record by record, and the same file read by the real
/// `tensorboard` package when the Python environment has it.
@Suite struct TensorBoardWriterTests {
    /// RFC 3720 (iSCSI) B.4 test vectors and the usual check value.
    @Test func crc32cKnownVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        // TensorFlow's mask: rotate right by 15, add 0xa282ead8.
        #expect(CRC32C.masked(0) == 0xA282_EAD8)
        #expect(CRC32C.masked(0x1234_5678) == 0x4F73_0F40)
    }

    @Test func recordFraming() {
        let data: [UInt8] = [1, 2, 3]
        let r = TensorBoardWriter.record(data)
        #expect(r.count == 8 + 4 + 3 + 4)
        #expect(Array(r[0..<8]) == [3, 0, 0, 0, 0, 0, 0, 0])
        #expect(Self.le32(r, 8) == CRC32C.masked(CRC32C.checksum(r[0..<8])))
        #expect(Array(r[12..<15]) == data)
        #expect(Self.le32(r, 15) == CRC32C.masked(CRC32C.checksum(data)))
    }

    /// `Event { wall_time: 1.5, step: 2, summary { value { tag: "a", simple_value: 1.0 } } }`,
    /// byte by byte as protobuf encodes it.
    @Test func scalarEventBytes() throws {
        let bytes = try TensorBoardWriter.scalarEventBytes(tag: "a", value: 1, step: 2, wallTime: 1.5)
        let value: [UInt8] = [0x0A, 0x01, 0x61, 0x15, 0x00, 0x00, 0x80, 0x3F]
        let summary: [UInt8] = [0x0A, UInt8(value.count)] + value
        let want: [UInt8] = [0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F, 0x10, 0x02, 0x2A, UInt8(summary.count)] + summary
        #expect(bytes == want, "\(Hex.string(bytes))")
        // A zero value is still written (a oneof member), so readers see a scalar.
        let zero = try TensorBoardWriter.scalarEventBytes(tag: "a", value: 0, step: 0, wallTime: 0)
        #expect(zero == [0x2A, 0x0A, 0x0A, 0x08, 0x0A, 0x01, 0x61, 0x15, 0, 0, 0, 0])
    }

    static func le32(_ b: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[at + $1]) << (8 * UInt32($1)) }
    }

    /// Splits an event file into its records, checking both CRCs of each.
    static func records(_ b: [UInt8]) throws -> [[UInt8]] {
        var out: [[UInt8]] = [], p = 0
        while p < b.count {
            try #require(p + 12 <= b.count)
            let n = Int((0..<8).reduce(UInt64(0)) { $0 | UInt64(b[p + $1]) << (8 * UInt64($1)) })
            #expect(le32(b, p + 8) == CRC32C.masked(CRC32C.checksum(b[p..<(p + 8)])))
            try #require(p + 16 + n <= b.count)
            let data = Array(b[(p + 12)..<(p + 12 + n)])
            #expect(le32(b, p + 12 + n) == CRC32C.masked(CRC32C.checksum(data)))
            out.append(data)
            p += 16 + n
        }
        return out
    }

    @Test func eventFileReadsBack() throws {
        try withTemporaryDirectory { tmp in
            let dir = tmp.appendingPathComponent("runs/a").path
            let w = try TensorBoardWriter(directory: dir, wallTime: 1_700_000_000.25, host: "testhost")
            #expect(w.path == dir + "/events.out.tfevents.1700000000.testhost")
            try w.addScalars([("m-c/train-loss", 2.5), ("m-c/lr", 0.1)], step: 0, wallTime: 1_700_000_001)
            try w.addScalars([("m-c/train-loss", 1.25), ("m-c/lr", 0.05)], step: 1, wallTime: 1_700_000_002)
            w.close()
            // A second writer in the same second gets its own file.
            let w2 = try TensorBoardWriter(directory: dir, wallTime: 1_700_000_000.5, host: "testhost")
            #expect(w2.path != w.path)
            w2.close()
            try FileManager.default.removeItem(atPath: w2.path)

            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: w.path)))
            let recs = try Self.records(bytes)
            #expect(recs.count == 5)
            let first = try TensorBoardEvent(serializedBytes: recs[0])
            #expect(first.fileVersion == "brain.Event:2" && first.wallTime == 1_700_000_000.25 && first.summary == nil)
            let third = try TensorBoardEvent(serializedBytes: recs[3])
            #expect(third.step == 1 && third.summary?.value.first?.tag == "m-c/train-loss")
            #expect(third.summary?.value.first?.simpleValue == 1.25)

            guard let py = Python.interpreter else { return }
            let probe = try Python.runProcess(py, ["-c", "import tensorboard"])
            guard probe.status == 0 else {
                #expect(!Python.isRequired, "tensorboard is not installed (scripts/setup.sh --python installs it)")
                return
            }
            let script = #"""
                import sys, json
                from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
                ea = EventAccumulator(sys.argv[1]); ea.Reload()
                print(json.dumps({t: [[e.step, e.value, e.wall_time] for e in ea.Scalars(t)] for t in ea.Tags()['scalars']}))
                """#
            let got = try #require(try Python.json(script, [dir]) as? [String: [[Double]]])
            #expect(got["m-c/train-loss"] == [[0, 2.5, 1_700_000_001], [1, 1.25, 1_700_000_002]])
            #expect(got["m-c/lr"]?.map { $0[0] } == [0, 1])
            #expect(abs((got["m-c/lr"]?.first?[1] ?? 0) - 0.1) < 1e-7)
        }
    }

    /// `AppendFile` keeps what is there with `append`, truncates without.
    @Test func appendFileModes() throws {
        try withTemporaryDirectory { tmp in
            let path = tmp.appendingPathComponent("log.txt").path
            var f = try AppendFile(path: path, append: false)
            try f.write("one\n")
            f.close()
            f = try AppendFile(path: path, append: true)
            try f.write("two\n")
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "one\ntwo\n", "each line is on disk once written")
            f.close()
            f = try AppendFile(path: path, append: false)
            try f.write("three\n")
            f.close()
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "three\n")
            #expect(throws: OutputFile.WriteError.self) { try AppendFile(path: tmp.path + "/missing/x.txt", append: true) }
        }
    }
}
