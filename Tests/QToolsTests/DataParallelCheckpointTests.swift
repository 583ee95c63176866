import Foundation
import TestSupport
import Testing

/// A DataParallel checkpoint (every key under `module.`) runs as QTool's load_state_dict reads
/// it, with a warning saying so (issue 16: `run` failed on "missing tensor 'conv1.weight'").
@Suite struct DataParallelCheckpointTests {
    @Test func moduleprefixedCheckpointRunsLikeThePlainOne() throws {
        let ckpt = Fixtures.path("golden/resnet20_fp/checkpoint.pth")
        let config = Fixtures.path("golden/resnet20_fp/config.txt")
        try withTemporaryDirectory { dir in
            let ddp = dir.appendingPathComponent("ddp.pth").path
            let made = try RunQTools.run(["convert", ckpt, "-o", ddp, "--add-prefix", "module.", "--config", config])
            try #require(made.status == 0, "\(made.stderr)")
            let inspect = try RunQTools.run(["inspect", ddp, "--json"])
            #expect(inspect.stdout.contains("module.conv1.weight"))
            let a = dir.appendingPathComponent("a.npy").path, b = dir.appendingPathComponent("b.npy").path
            let plain = try RunQTools.run(["run", ckpt, "--config", config, "--output", a])
            let wrapped = try RunQTools.run(["run", ddp, "--output", b])
            #expect(plain.status == 0 && wrapped.status == 0, "\(wrapped.stderr)")
            #expect(wrapped.stderr.contains("'module.'") && wrapped.stderr.contains("--strip-prefix module."), "\(wrapped.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: a)) == Data(contentsOf: URL(fileURLWithPath: b)))
        }
    }
}
