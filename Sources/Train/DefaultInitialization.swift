import Engine
import Foundation
import Models
import QToolConfig
import Tensors

/// The state dict QTool's constructors give a fresh model (what `main.py` trains when no
/// pretrained file exists: "init model with default initlizer", seed-reference §12.3), drawn
/// from ``SplitMix64`` seeded by `--seed`. The distributions are PyTorch's; the numbers are not
/// torch's random stream.
///
/// The key list and shapes are the builder's (``ModelBuilder/buildRandom(options:seed:)``'s
/// declared tensors, in state-dict order); each key gets the rule of its module:
///
/// | tensor | value |
/// | --- | --- |
/// | conv weight, `resnetXX`, `pytorch-resnetXX`, `mobilenetv2` (§7.1, §8, §9.2) | N(0, sqrt(2 / (out·kh·kw))) (Kaiming normal, fan_out, ReLU) |
/// | conv weight, `vgg_small` (§9.3) | N(0, sqrt(2 / (in·kh·kw))) (Kaiming normal, fan_in, ReLU) |
/// | conv weight, `mobilenetv1`, `nin` (no custom init) | torch's default U(-b, b), b = 1/sqrt(in·kh·kw) |
/// | conv bias | torch's default U(-b, b), b = 1/sqrt(in·kh·kw) |
/// | linear weight and bias (torch's default; `mobilenetv2`: N(0, 0.01) and 0; `vgg_small`: weight N(0, sqrt(2/in))) | U(-b, b), b = 1/sqrt(in) |
/// | batch norm | weight 1, bias 0, running_mean 0, running_var 1, num_batches_tracked 0 (int64) |
/// | PReLU slope | 0.25 |
/// | quantizer tensors (§11.2) | their construction values (`iteration` 0, `level_num`, `clip_val` = boundary, LQ basis ...) |
/// | `scales.b` (B branches), `fixup_scale`, `fixup_bias*` (§7.3) | 1/B, 1, 0 |
///
/// Then, for the flexible ResNet (§7.7): `zir` zeroes each block's last BN weight (`fix_bn`,
/// else `bn2.*` / `bn3.*`); `fixup` draws each block's `conv1` (BottleNeck: `conv1`, `conv2`)
/// with std sqrt(2/(out·kh·kw))·L^(-1/2) (BottleNeck L^(-1/4)), L the number of stages,
/// zeroes its last conv and the linear layer's weight and bias.
public enum DefaultInitialization {
    /// The fresh state dict of `options`'s model, seeded by `seed`.
    /// - Throws: ``TrainError`` `.engine` when the model cannot be built, `.unsupported` naming
    ///   a tensor no rule covers.
    public static func stateDict(options: QToolOptions, seed: UInt64) throws(TrainError) -> [(name: String, tensor: Tensor)] {
        let model: BuiltModel
        do { model = try ModelBuilder.buildRandom(options: options, seed: nil) } catch { throw TrainError(.engine(error)) }
        var declared: [(key: String, shape: [Int])] = []
        var seen = Set<String>()
        for d in model.declaredTensors where !d.key.hasSuffix(".times") && seen.insert(d.key).inserted {
            declared.append((d.key, d.shape))
        }
        let shapes = Dictionary(declared.map { ($0.key, $0.shape) }, uniquingKeysWith: { a, _ in a })
        let kinds = Dictionary(model.layers.map { ($0.name, $0.kind) }, uniquingKeysWith: { a, _ in a })
        let batchNorms = Set(declared.compactMap { $0.key.hasSuffix(".running_mean") ? module(of: $0.key) : nil })
        let family = Family(options.model)
        let fixup = family == .flexibleResNet && options.hasKeyword("fixup")
        let zir = family == .flexibleResNet && options.hasKeyword("zir") && !fixup
        let stages = ResNetFlexible.depths[options.model]?.layers.count ?? 1
        let bottleneck = ResNetFlexible.depths[options.model]?.bottleneck ?? false

        var out: [(name: String, tensor: Tensor)] = []
        for (index, (key, shape)) in declared.enumerated() {
            let n = shape.reduce(1, *)
            let owner = module(of: key), leaf = String(key.split(separator: ".").last ?? "")
            let tensorSeed = seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index)
            func filled(_ v: Float) -> Tensor { Tensor(floats: [Float](repeating: v, count: n), shape: shape) }
            func normal(_ std: Double) -> Tensor {
                let z = SplitMix64.normalTensor(shape: shape, seed: tensorSeed).floats()
                return Tensor(floats: z.map { Float(Double($0) * std) }, shape: shape)
            }
            func uniform(_ bound: Double) -> Tensor {
                var g = SplitMix64(seed: tensorSeed)
                return Tensor(floats: (0..<n).map { _ in Float((2 * g.nextOpenUnit() - 1) * bound) }, shape: shape)
            }

            if let (layer, part) = VariantConversion.quantizerPrefix(key) {
                do {
                    out.append(
                        (
                            key,
                            try VariantConversion.initialValue(
                                key, shape, layer: layer, part: part, target: options, shapes: shapes)
                        ))
                } catch { throw TrainError(.unsupported("\(key): \(error)")) }
                continue
            }
            if batchNorms.contains(owner) {
                switch leaf {
                case "weight":
                    out.append((key, filled(zir && isLastBlockBN(key, bottleneck: bottleneck, shapes: shapes) ? 0 : 1)))
                case "running_var": out.append((key, filled(1)))
                case "num_batches_tracked": out.append((key, counter(shape)))
                default: out.append((key, filled(0)))
                }
                continue
            }
            if let kind = kinds[owner], leaf == "weight" || leaf == "bias" {
                // in·kh·kw (conv) or in (linear): the weight's fan-in, for the bias too.
                let fanIn = Double(max(shapes[owner + ".weight"]?.dropFirst().reduce(1, *) ?? 1, 1))
                let defaultBound = 1 / fanIn.squareRoot()
                if kind == "linear" {
                    if fixup {
                        out.append((key, filled(0)))
                    } else if family == .mobileNetV2 {
                        out.append((key, leaf == "weight" ? normal(0.01) : filled(0)))
                    } else if family == .vggSmall && leaf == "weight" {
                        out.append((key, normal((2 / fanIn).squareRoot())))
                    } else {
                        out.append((key, uniform(defaultBound)))
                    }
                    continue
                }
                guard leaf == "weight" else {
                    out.append((key, uniform(defaultBound)))
                    continue
                }
                let fanOut = Double(shape[0] * shape.dropFirst(2).reduce(1, *))
                var std: Double
                switch family {
                case .flexibleResNet, .torchvisionResNet, .mobileNetV2: std = (2 / fanOut).squareRoot()
                case .vggSmall: std = (2 / fanIn).squareRoot()
                case .defaultInit:
                    out.append((key, uniform(defaultBound)))
                    continue
                }
                if fixup, let conv = blockConv(owner) {
                    let last = bottleneck ? 3 : 2
                    if conv == last {
                        std = 0
                    } else {
                        std *= pow(Double(stages), bottleneck ? -0.25 : -0.5)
                    }
                }
                out.append((key, std == 0 ? filled(0) : normal(std)))
                continue
            }
            switch leaf {
            case "weight" where n == 1 || shape.count == 1: out.append((key, filled(0.25)))  // PReLU slope
            case "fixup_scale": out.append((key, filled(1)))
            case let f where f.hasPrefix("fixup_bias"): out.append((key, filled(0)))
            default:
                if owner.hasSuffix(".scales") {
                    let branches = declared.filter { module(of: $0.key) == owner }.count
                    out.append((key, filled(1 / Float(max(branches, 1)))))
                } else {
                    throw TrainError(.unsupported("no default initialisation known for \(key) \(shape) (model \(options.model))"))
                }
            }
        }
        return out
    }

    /// Which init code the network's constructor runs.
    enum Family {
        case flexibleResNet, torchvisionResNet, mobileNetV2, vggSmall
        /// No custom init: torch's defaults (`mobilenetv1`, `nin`).
        case defaultInit

        init(_ model: String) {
            if ResNetFlexible.depths[model] != nil {
                self = .flexibleResNet
            } else if model.hasPrefix("pytorch-") {
                self = .torchvisionResNet
            } else if model == "mobilenetv2" {
                self = .mobileNetV2
            } else if model == "vgg_small" {
                self = .vggSmall
            } else {
                self = .defaultInit
            }
        }
    }

    /// The module path of a key (`layer1.0.bn1.0.weight` -> `layer1.0.bn1.0`).
    static func module(of key: String) -> String {
        key.split(separator: ".", omittingEmptySubsequences: false).dropLast().joined(separator: ".")
    }

    /// N of a flexible-ResNet block conv `layerS.K.convN.b` (nil for the stem, skip and others).
    static func blockConv(_ path: String) -> Int? {
        let p = path.split(separator: ".")
        guard p.count == 4, p[0].hasPrefix("layer"), p[2].hasPrefix("conv"), let n = Int(p[2].dropFirst(4)) else { return nil }
        return n
    }

    /// `zir`: whether `key` is the weight of a block's last BN (`fix_bn` when the block has
    /// one, else `bn2.*` (BasicBlock) / `bn3.*` (BottleNeck)).
    static func isLastBlockBN(_ key: String, bottleneck: Bool, shapes: [String: [Int]]) -> Bool {
        let p = key.split(separator: ".").map(String.init)
        guard p.count >= 4, p[0].hasPrefix("layer") else { return false }
        let block = p[0] + "." + p[1]
        if shapes[block + ".fix_bn.weight"] != nil { return p[2] == "fix_bn" }
        return p.count == 5 && p[2] == (bottleneck ? "bn3" : "bn2")
    }

    /// A zero int64 counter (`num_batches_tracked`, as torch stores it).
    static func counter(_ shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *)
        return (try? Tensor(dtype: .int64, shape: shape, data: ByteSlice([UInt8](repeating: 0, count: 8 * n))))
            ?? Tensor(floats: [Float](repeating: 0, count: n), shape: shape)
    }
}
