import Foundation
import Tensors
import TestSupport
import Testing

@testable import Formats
@testable import QToolConfig

/// The conversion pipeline in process: steps, the verifier hook, consent for dropped entries,
/// atomicity, and the config record.
@Suite struct ConvertPipelineTests {
    /// `{epoch: 3, arch: "r", state_dict: {module.a: [1,2], module.b: int64 [7]}, optimizer: {state: {}}}`.
    static func sample() throws -> Checkpoint {
        var w = ByteWriter()
        w.u64(7)
        let b = try Tensor(dtype: .int64, shape: [1], data: ByteSlice(w.bytes))
        let sd = CheckpointDict(
            [
                (.string("module.a"), .tensor(StoredTensor(Tensor(floats: [1, 2], shape: [2]), key: "0"))),
                (.string("module.b"), .tensor(StoredTensor(b, key: "1"))),
            ], kind: .orderedDict)
        let root = CheckpointDict([
            (.string("epoch"), .int(3)), (.string("arch"), .string("r")), (.string("state_dict"), .dict(sd)),
            (.string("optimizer"), .dict(CheckpointDict([(.string("state"), .dict(CheckpointDict()))]))),
        ])
        return Checkpoint(format: .torchZip, root: .dict(root))
    }

    static func writeSample(_ dir: URL) throws -> String {
        let path = dir.appendingPathComponent("in.pt").path
        let f = try OutputFile(path: path)
        try TorchZipWriter.write(try sample(), to: f)
        try f.commit()
        return path
    }

    static func files(_ dir: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
    }

    struct Refuse: ConversionVerifier {
        var name: String { "refuse" }
        func verify(_ context: VerificationContext) throws -> VerificationResult {
            // The hook sees the file as written: its tensors are readable here.
            let n = context.written.allTensors().count
            return VerificationResult(verifier: name, passed: false, detail: "saw \(n) tensors")
        }
    }

    @Test func aFailingVerifierLeavesNoOutputAndNoTemporaryFile() throws {
        try withTemporaryDirectory { dir in
            let input = try Self.writeSample(dir)
            let c = Conversion(format: .pt, verifiers: [WrittenTensorsVerifier(), Refuse()])
            let e = try #require(throws: ConversionError.self) {
                try c.run(inputPath: input, outputPath: dir.appendingPathComponent("out.pt").path)
            }
            #expect(e.kind == .verificationFailed)
            #expect(e.message.contains("saw 2 tensors"))
            #expect(try Self.files(dir) == ["in.pt"])
        }
    }

    @Test func stepsRenameCastAndRecordAndTheWrittenFileReadsBack() throws {
        try withTemporaryDirectory { dir in
            let input = try Self.writeSample(dir)
            let out = dir.appendingPathComponent("out.pt").path
            let record = ConfigRecord(file: "cfg", text: "model='resnet20'\nkeyword='cifar10,origin'\n", overrides: ["--fm_bit", "4"])
            let c = Conversion(
                format: .pt,
                steps: [
                    RenameKeys(KeyRenamer(stripPrefixes: ["module."])), try CastFloatingTensors(to: .float16),
                    RecordConfig(record, options: try record.options()),
                ])
            let report = try c.run(inputPath: input, outputPath: out)
            #expect(report.renamed.map(\.to) == ["a", "b"])
            #expect(report.cast?.tensors.map(\.name) == ["a"])
            #expect(report.cast?.kept == [CastReport.Kept(name: "b", dtype: "int64")])
            #expect(report.verification.map(\.passed) == [true])
            #expect(report.config?.model == "resnet20")
            let back = try ModelFile.open(path: out).checkpoint
            let sd = try #require(back.stateDict())
            #expect(sd.path == "state_dict")
            #expect(sd.entries.map(\.name) == ["a", "b"])
            #expect(sd.entries.map(\.tensor.dtype) == [.float16, .int64])
            let read = try #require(try ConfigRecord.read(from: back))
            #expect(read == record)
            let options = try read.options()
            #expect(options.model == "resnet20")
            #expect(options.keywords == ["cifar10", "origin"])
            #expect(options["fm_bit"] == .float(4))  // argparse type=float in QTool
            #expect(back.root.dict?["epoch"].map { if case .int(3) = $0 { true } else { false } } == true)
        }
    }

    @Test func flatFormatsNeedConsentToDropWhatTheyCannotHold() throws {
        try withTemporaryDirectory { dir in
            let input = try Self.writeSample(dir)
            let out = dir.appendingPathComponent("out.safetensors").path
            let e = try #require(throws: ConversionError.self) {
                try Conversion(format: .safetensors).run(inputPath: input, outputPath: out)
            }
            #expect(e.kind == .usage)
            #expect(e.message.contains("optimizer (dict)") && e.message.contains("--drop-extra"))
            #expect(try Self.files(dir) == ["in.pt"])
            let report = try Conversion(format: .safetensors, dropExtra: true).run(inputPath: input, outputPath: out)
            #expect(report.dropped == [DroppedEntry(path: "optimizer", type: "dict", reason: "safetensors holds only tensors")])
            let back = try ModelFile.open(path: out).checkpoint
            let meta = Dictionary(uniqueKeysWithValues: back.safeTensorsMetadata.map { ($0.key, $0.value) })
            #expect(meta == ["epoch": "3", "arch": "r", "format": "pt", "qtools.scalar_types": "int epoch"])
            #expect(back.allTensors().map(\.path).sorted() == ["module.a", "module.b"])  // file order: by dtype width
        }
    }

    @Test func wrapTurnsSafetensorsMetadataIntoEntriesAndUnwrapDropsTheRest() throws {
        try withTemporaryDirectory { dir in
            let input = try Self.writeSample(dir)
            let st = dir.appendingPathComponent("a.safetensors").path
            _ = try Conversion(format: .safetensors, dropExtra: true).run(inputPath: input, outputPath: st)
            // A bare torch file cannot keep the metadata: consent needed ...
            let bare = dir.appendingPathComponent("bare.pt").path
            #expect(throws: ConversionError.self) { try Conversion(format: .pt).run(inputPath: st, outputPath: bare) }
            // ... or --wrap, which keeps it as entries (typed as recorded: epoch is an int again).
            let wrapped = dir.appendingPathComponent("wrapped.pt").path
            let r = try Conversion(format: .pt, steps: [Rewrap(.wrap("state_dict"))]).run(inputPath: st, outputPath: wrapped)
            #expect(r.outputStateDictPath == "state_dict")
            let back = try ModelFile.open(path: wrapped).checkpoint
            let keys = back.root.dict?.entries.compactMap { $0.key.string }
            #expect(keys == ["state_dict", "arch", "epoch"])
            #expect(back.root.dict?["arch"]?.string == "r")
            if case .int(3)? = back.root.dict?["epoch"] {
            } else {
                Issue.record("epoch is not the int 3: \(String(describing: back.root.dict?["epoch"]))")
            }
            let unwrapped = dir.appendingPathComponent("unwrapped.pt").path
            let u = try Conversion(format: .pt, steps: [Rewrap(.unwrap)]).run(inputPath: input, outputPath: unwrapped)
            #expect(u.dropped.map(\.path) == ["epoch", "arch", "optimizer"])
            let root = try ModelFile.open(path: unwrapped).checkpoint.root.dict
            #expect(root?.entries.compactMap { $0.key.string } == ["module.a", "module.b"])
            #expect(root?.kind == .orderedDict)
        }
    }

    @Test func theOutputMayNotBeTheInput() throws {
        try withTemporaryDirectory { dir in
            let input = try Self.writeSample(dir)
            let link = dir.appendingPathComponent("link.pt").path
            try FileManager.default.linkItem(atPath: input, toPath: link)
            for out in [input, link, dir.path + "/./in.pt"] {
                let e = try #require(throws: ConversionError.self) {
                    try Conversion(format: .pt).run(inputPath: input, outputPath: out, overwrite: true)
                }
                #expect(e.kind == .usage)
            }
        }
    }

    @Test func configRecordIsOneSortedJSONString() throws {
        let r = ConfigRecord(file: "c", text: "a=1\n", overrides: ["--lr", "0.1"], environment: ["FASTDIR": "/d", "HOME": "/root"])
        #expect(r.environment == ["FASTDIR": "/d"])
        #expect(
            try r.encoded()
                == #"{"environment":{"FASTDIR":"/d"},"file":"c","overrides":["--lr","0.1"],"schema":"qtools-config/1","text":"a=1\n"}"#)
        #expect(try ConfigRecord.decode(r.encoded()) == r)
        #expect(throws: ConversionError.self) { try ConfigRecord.decode(#"{"schema":"other"}"#) }
    }

    /// `fullPrecision` is stored only when set, read back, and turns the quantizers off.
    @Test func fullPrecisionRecord() throws {
        let text =
            "model='resnet20'\nkeyword='cifar10,origin,cbsa,real_skip,dorefa,lsq'\noptions=\"--fm_bit 2 --fm_enable --wt_bit 2 --wt_enable\"\n"
        var r = ConfigRecord(file: "c", text: text)
        #expect(try !r.encoded().contains("fullPrecision"))
        let quantized = try r.options()
        #expect(quantized.quantizer(.fm).enable && quantized.quantizer(.wt).enable && quantized.hasKeyword("lsq"))
        r.fullPrecision = true
        #expect(try r.encoded().contains(#""fullPrecision":true"#))
        let back = try ConfigRecord.decode(r.encoded())
        #expect(back == r)
        let fp = try back.options()
        #expect(!fp.quantizer(.fm).enable && !fp.quantizer(.wt).enable && !fp.quantizer(.ot).enable)
        #expect(fp.keywords == ["cifar10", "origin", "cbsa", "real_skip"])
        #expect(fp.model == "resnet20" && fp.quantizer(.fm).resolvedBit == 2)
    }

    @Test func outputFormatFromExtension() {
        #expect(OutputFormat.forPath("a/b.pth") == .pt)
        #expect(OutputFormat.forPath("x.pth.tar") == .pt)
        #expect(OutputFormat.forPath("x.ckpt") == .pt)
        #expect(OutputFormat.forPath("x.SafeTensors") == .safetensors)
        #expect(OutputFormat.forPath("x.npz") == .npz)
        #expect(OutputFormat.forPath("x.onnx") == nil)
        #expect(OutputFormat.forPath("noext") == nil)
    }
}
