import Foundation
import Models
import QToolConfig
import Tensors
import TestSupport
import Testing

@testable import Train

/// ``DefaultInitialization`` against the formulas of seed-reference §7.1, §7.7, §9.2 and
/// §11.2: every tensor's sample mean and standard deviation within 5 standard errors of the
/// distribution's (for `n` values with std σ: mean ±5σ/√n, std ±5σ/√(2n)), uniform values
/// inside their bound, constants exact, the key list the builder's, and the seed deciding the
/// numbers.
@Suite struct DefaultInitializationTests {
    static let lsq = [
        "--model", "resnet20", "--dataset", "cifar10",
        "--keyword", "cifar10,origin,cbsa,fix_pooling,singleconv,fix,real_skip,dorefa,lsq",
        "--width_alpha", "0.25", "--fm_bit", "2", "--fm_enable", "--wt_bit", "2", "--wt_enable",
        "--fm_quant_group", "1", "--wt_quant_group", "1", "--wt_adaptive", "var-mean",
    ]

    static func options(_ args: [String]) throws -> QToolOptions {
        try QToolOptions().applying(arguments: args)
    }

    /// Mean and standard deviation of `v` (population std).
    static func moments(_ v: [Float]) -> (mean: Double, std: Double) {
        let n = Double(v.count)
        let mean = v.reduce(0.0) { $0 + Double($1) } / n
        let variance = v.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
        return (mean, variance.squareRoot())
    }

    /// Checks `v` against a zero-mean distribution with standard deviation `sigma`.
    static func expectMoments(_ key: String, _ v: [Float], sigma: Double, sourceLocation: SourceLocation = #_sourceLocation) {
        let (m, s) = moments(v)
        let n = Double(v.count)
        #expect(abs(m) <= 5 * sigma / n.squareRoot(), "\(key): mean \(m) (sigma \(sigma), n \(v.count))", sourceLocation: sourceLocation)
        #expect(
            abs(s - sigma) <= 5 * sigma / (2 * n).squareRoot(), "\(key): std \(s) vs \(sigma) (n \(v.count))",
            sourceLocation: sourceLocation)
    }

    @Test func resnet20LSQFollowsTheFormulas() throws {
        let o = try Self.options(Self.lsq)
        let sd = try DefaultInitialization.stateDict(options: o, seed: 2)
        let keys = sd.map(\.name)
        // The builder's key list: the fresh model binds exactly these (236 keys at this config, §A.4).
        #expect(Set(keys).count == keys.count)
        #expect(keys.count == 236, "\(keys.count) keys")
        _ = try TrainStep(options: o, stateDict: sd)

        var convs = 0
        for (key, t) in sd {
            let v = t.floats(), s = t.shape
            if key.hasSuffix(".weight") && s.count == 4 {
                convs += 1
                // Kaiming normal, fan_out, ReLU gain: std sqrt(2 / (out kh kw)).
                Self.expectMoments(key, v, sigma: (2 / Double(s[0] * s[2] * s[3])).squareRoot())
            } else if key == "fc.weight" || key == "fc.bias" {
                // torch's nn.Linear default: U(-1/sqrt(in), 1/sqrt(in)), std bound/sqrt(3).
                let bound = 1 / Double(64).squareRoot()
                #expect(v.allSatisfy { abs(Double($0)) <= bound }, "\(key) outside +-\(bound)")
                if key == "fc.weight" { Self.expectMoments(key, v, sigma: bound / 3.0.squareRoot()) }
            } else if key.hasSuffix(".clip_val") {
                #expect(v.allSatisfy { $0 == 1 }, "\(key): clip_val starts at the boundary 1.0")
            } else if key.hasSuffix(".level_num") {
                #expect(v == [4], "\(key)")
            } else if key.hasSuffix(".iteration") || key.hasSuffix(".running_mean") || key.hasSuffix(".bias") {
                #expect(v.allSatisfy { $0 == 0 }, "\(key)")
            } else if key.hasSuffix(".running_var") || key.hasSuffix(".weight") {
                #expect(v.allSatisfy { $0 == 1 }, "\(key)")
            } else if key.hasSuffix(".num_batches_tracked") {
                #expect(t.dtype == .int64 && v == [0], "\(key)")
            } else {
                Issue.record("unexpected key \(key)")
            }
        }
        #expect(convs == 21, "stem, 18 block convs, 2 skip convs")
    }

    @Test func theSeedDecidesTheNumbers() throws {
        let o = try Self.options(Self.lsq)
        let a = try DefaultInitialization.stateDict(options: o, seed: 2)
        let b = try DefaultInitialization.stateDict(options: o, seed: 2)
        let c = try DefaultInitialization.stateDict(options: o, seed: 3)
        #expect(zip(a, b).allSatisfy { $0.tensor.floats() == $1.tensor.floats() })
        let w = "layer1.0.conv1.0.weight"
        let (x, y) = (a.first { $0.name == w }!.tensor.floats(), c.first { $0.name == w }!.tensor.floats())
        #expect(x != y)
        // Different tensors of one seed are different draws, not the same stream rescaled.
        let z = a.first { $0.name == "layer1.0.conv2.0.weight" }!.tensor.floats()
        #expect(zip(x, z).filter { abs($0 - $1) < 1e-7 }.count < 10)
    }

    /// Fixup (§7.7): block conv1 ~ N(0, sqrt(2/(out k k)) L^-1/2) with L = 3 stages, conv2 = 0,
    /// skip convs as the generic init, fc zero, fixup scales 1 and biases 0.
    @Test func fixup() throws {
        let o = try Self.options([
            "--model", "resnet20", "--keyword", "cifar10,origin,cbsa,fix_pooling,singleconv,fix,fixup,bias",
            "--width_alpha", "0.5",
        ])
        let sd = try DefaultInitialization.stateDict(options: o, seed: 7)
        var seen = (conv1: 0, conv2: 0, fixup: 0)
        for (key, t) in sd {
            let v = t.floats(), s = t.shape
            if key.hasSuffix("conv1.0.weight") && key.hasPrefix("layer") {
                seen.conv1 += 1
                Self.expectMoments(key, v, sigma: (2 / Double(s[0] * 9)).squareRoot() / 3.0.squareRoot())
            } else if key.hasSuffix("conv2.0.weight") {
                seen.conv2 += 1
                #expect(v.allSatisfy { $0 == 0 }, "\(key)")
            } else if key.hasPrefix("fc.") {
                #expect(v.allSatisfy { $0 == 0 }, "\(key)")
            } else if key.hasSuffix("fixup_scale") {
                seen.fixup += 1
                #expect(v == [1], "\(key)")
            } else if key.contains("fixup_bias") {
                #expect(v == [0], "\(key)")
            } else if key.contains(".skip.") && s.count == 4 {
                Self.expectMoments(key, v, sigma: (2 / Double(s[0])).squareRoot())
            }
        }
        #expect(seen.conv1 == 9 && seen.conv2 == 9 && seen.fixup == 9, "\(seen)")
    }

    /// `zir`: the last BN weight of each residual branch is zero (`fix_bn` absent here: bn2).
    @Test func zeroInitResidual() throws {
        let o = try Self.options([
            "--model", "resnet20", "--keyword", "cifar10,origin,cbsa,fix_pooling,singleconv,fix,zir", "--width_alpha", "0.25",
        ])
        let sd = try DefaultInitialization.stateDict(options: o, seed: 1)
        let bn2 = sd.filter { $0.name.hasPrefix("layer") && $0.name.hasSuffix("bn2.0.weight") }
        #expect(bn2.count == 9 && bn2.allSatisfy { $0.tensor.floats().allSatisfy { $0 == 0 } })
        let bn1 = sd.filter { $0.name.hasPrefix("layer") && $0.name.hasSuffix("bn1.0.weight") }
        #expect(bn1.count == 9 && bn1.allSatisfy { $0.tensor.floats().allSatisfy { $0 == 1 } })
    }

    /// MobileNetV2 (§9.2): conv N(0, sqrt(2/(k k out))), linear N(0, 0.01) with zero bias.
    @Test func mobileNetV2() throws {
        let o = try Self.options(["--model", "mobilenetv2", "--keyword", "cifar10,cbas", "--width_alpha", "0.5", "--input_size", "32"])
        let sd = try DefaultInitialization.stateDict(options: o, seed: 5)
        for (key, t) in sd {
            let s = t.shape
            if key.hasSuffix(".weight") && s.count == 4 && s.reduce(1, *) >= 200 {
                Self.expectMoments(key, t.floats(), sigma: (2 / Double(s[0] * s[2] * s[3])).squareRoot())
            } else if key == "classifier.0.weight" {
                Self.expectMoments(key, t.floats(), sigma: 0.01)
            } else if key == "classifier.0.bias" {
                #expect(t.floats().allSatisfy { $0 == 0 })
            }
        }
    }

    /// Every shipped config (at width 0.125 where the network has one): every tensor of the
    /// builder's key list has a rule (quantizers of every method, PReLU, Fixup, Group-Net
    /// scales, BottleNecks, MobileNets), and the result builds for training.
    @Test func everyShippedConfigInitialises() throws {
        let folder = Fixtures.path("seed-configs")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix("config.") }.sorted()
        #expect(names.count >= 50)
        for name in names {
            let o = try QToolOptions(config: ConfigFile(contentsOf: "\(folder)/\(name)"))
                .applying(arguments: ["--width_alpha", "0.125"])
            do {
                let sd = try DefaultInitialization.stateDict(options: o, seed: 1)
                #expect(!sd.isEmpty, "\(name)")
                _ = try ModelBuilder.build(options: o, stateDict: sd, forTraining: true)
            } catch {
                Issue.record("\(name): \(error)")
            }
        }
    }
}
