/// `qtools convert`: every option given is used by the chosen output or refused by name
/// (exit 64), never silently ignored.
extension ConvertCommand {
    /// True when the output is an ONNX graph (`--to onnx`, or an `.onnx` output without `--to`).
    var writesONNX: Bool { target == "onnx" || (target == nil && output.lowercased().hasSuffix(".onnx")) }

    /// Throws a ``UsageError`` naming the options given that the output does not use.
    func refuseInapplicableOptions() throws {
        if let target, target != "onnx", target != "packed" {
            throw UsageError("--to must be onnx or packed (got '\(target)')")
        }
        if keepFloat && !writesPacked {
            throw UsageError("--keep-float applies only to a packed output (--to packed or -o MODEL.qpack)")
        }
        if writesPacked {
            var other: [String] = []
            if !rename.isEmpty { other.append("--rename") }
            if mapFrom != nil || mapTo != nil { other.append("--map-from/--map-to") }
            if !stripPrefix.isEmpty { other.append("--strip-prefix") }
            if addPrefix != nil { other.append("--add-prefix") }
            if dtype != nil { other.append("--dtype") }
            if engine.active || engine.tolerance != nil {
                other.append("--fold-bn/--to-config/--to-model/--to-keyword/--to-fp/--tolerance")
            }
            if format != nil { other.append("--format") }
            if wrap != nil { other.append("--wrap") }
            if unwrap { other.append("--unwrap") }
            if dropExtra { other.append("--drop-extra") }
            if onnxFormat != nil { other.append("--onnx-format") }
            if opset != nil { other.append("--opset") }
            if keepBN { other.append("--keep-bn") }
            if softmax { other.append("--softmax") }
            if !other.isEmpty {
                throw UsageError(
                    "\(Self.list(other)) \(other.count == 1 ? "does" : "do") not apply to a packed output, which packs the model "
                        + "the engine builds from the checkpoint as it is; convert the checkpoint first, then pack it")
            }
            return
        }
        if writesONNX {
            // Options that change the checkpoint's keys or values: apply them in a first convert.
            var checkpoint: [String] = []
            if !rename.isEmpty { checkpoint.append("--rename") }
            if mapFrom != nil || mapTo != nil { checkpoint.append("--map-from/--map-to") }
            if !stripPrefix.isEmpty { checkpoint.append("--strip-prefix") }
            if addPrefix != nil { checkpoint.append("--add-prefix") }
            if dtype != nil { checkpoint.append("--dtype") }
            if engine.foldBN { checkpoint.append("--fold-bn") }
            if engine.toConfig != nil { checkpoint.append("--to-config") }
            if engine.toModel != nil { checkpoint.append("--to-model") }
            if engine.toKeyword != nil { checkpoint.append("--to-keyword") }
            if engine.toFullPrecision { checkpoint.append("--to-fp") }
            if engine.tolerance != nil { checkpoint.append("--tolerance") }
            if !checkpoint.isEmpty {
                throw UsageError(
                    "\(Self.list(checkpoint)) \(checkpoint.count == 1 ? "does" : "do") not apply to an ONNX export, which writes the model "
                        + "the engine builds from the checkpoint as it is; convert the checkpoint first "
                        + "(qtools convert \(input) -o converted.pth \(checkpoint.first!.split(separator: "/")[0]) ...\(config.map { " --config \($0)" } ?? "")), "
                        + "then export converted.pth")
            }
            // Options about a checkpoint file's layout: an ONNX file has none.
            var layout: [String] = []
            if format != nil { layout.append("--format") }
            if wrap != nil { layout.append("--wrap") }
            if unwrap { layout.append("--unwrap") }
            if dropExtra { layout.append("--drop-extra") }
            if noVerify { layout.append("--no-verify") }
            if !layout.isEmpty {
                throw UsageError(
                    "\(Self.list(layout)) \(layout.count == 1 ? "applies" : "apply") to checkpoint outputs (pt, pt-legacy, safetensors, npz), "
                        + "not to the ONNX graph \(output) (an ONNX export is not read back either)")
            }
        } else {
            var onnx: [String] = []
            if onnxFormat != nil { onnx.append("--onnx-format") }
            if opset != nil { onnx.append("--opset") }
            if keepBN { onnx.append("--keep-bn") }
            if softmax { onnx.append("--softmax") }
            if !onnx.isEmpty {
                throw UsageError(
                    "\(Self.list(onnx)) \(onnx.count == 1 ? "applies" : "apply") only to an ONNX output (-o MODEL.onnx or --to onnx); "
                        + "\(output) is a checkpoint")
            }
            if engine.tolerance != nil && !engine.active {
                throw UsageError(
                    "--tolerance applies only to the engine check of --fold-bn, --to-config, --to-model, --to-keyword or --to-fp")
            }
        }
    }

    /// `--a`, `--a and --b`, `--a, --b and --c`.
    static func list(_ names: [String]) -> String {
        names.count <= 1 ? names.joined() : names.dropLast().joined(separator: ", ") + " and " + names.last!
    }
}
