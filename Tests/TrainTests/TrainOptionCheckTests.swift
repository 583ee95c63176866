import Foundation
import QToolConfig
import TestSupport
import Testing

@testable import Train

/// ``TrainOptionCheck`` over the 52 shipped configs: none is refused (their commented-out
/// `--mixup_enable` lines stay comments), and exactly the eight that turn on apex mixed
/// precision get the no-effect warning; each refusal rule fires on its option.
@Suite struct TrainOptionCheckTests {
    @Test func shippedConfigsTrainAndTheApexOnesWarn() throws {
        let dir = Fixtures.path("seed-configs")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("config.") }.sorted()
        #expect(names.count == 52)
        var warned = 0
        for name in names {
            let o = try QToolOptions(config: ConfigFile(contentsOf: "\(dir)/\(name)", environment: [:]))
            #expect(TrainOptionCheck.refusals(o).isEmpty, "\(name): \(TrainOptionCheck.refusals(o))")
            let w = TrainOptionCheck.withoutEffect(o)
            if !w.isEmpty {
                warned += 1
                #expect(
                    w == ["--fp16/--opt_level have no effect: apex mixed precision is a GPU feature; qtools trains in float32"], "\(name)")
            }
        }
        #expect(warned == 8)
    }

    @Test func eachRuleFires() throws {
        let cases: [([String], String)] = [
            (["--mixup_enable"], "--mixup_enable"),
            (["--policy", "x.txt"], "--policy x.txt"),
            (["--val_batch_size", "0"], "--val_batch_size 0"),
            (["--keyword", "cifar10,less_bn"], "keyword less_bn"),
            (["--keyword", "cifar10,probe"], "keyword probe"),
            (["--keyword", "cifar10,lr-test"], "keyword lr-test"),
        ]
        for (args, named) in cases {
            let o = try QToolOptions().applying(arguments: args)
            let r = TrainOptionCheck.refusals(o)
            #expect(r.count == 1 && r[0].hasPrefix(named), "\(args): \(r)")
            #expect(throws: TrainError.self) { try TrainOptionCheck.check(o) }
        }
        #expect(TrainOptionCheck.refusals(QToolOptions()).isEmpty)
        #expect(TrainOptionCheck.withoutEffect(try QToolOptions().applying(arguments: ["--world_size", "2", "--distributed"])).count == 2)
        let late = TrainOptionCheck.withoutEffect(try QToolOptions().applying(arguments: ["--stable_epoch", "1"]))
        #expect(late.count == 1 && late[0].hasPrefix("--stable_epoch has no effect"), "\(late)")
        #expect(TrainOptionCheck.withoutEffect(try QToolOptions().applying(arguments: ["--stable_epoch", "1", "--stable", "3"])).isEmpty)
    }
}
