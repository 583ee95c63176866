import Engine
import Formats
import Foundation
import Models

/// `qtools convert CKPT --config CFG --to onnx -o OUT.onnx`: the built model as an ONNX graph.
extension ConvertCommand {
    func runONNXExport() throws {
        try ExitCodes.reporting {
            let onnxFormat = self.onnxFormat ?? "qcdq"
            guard let format = ONNXExportOptions.Format(rawValue: onnxFormat) else {
                throw UsageError("--onnx-format must be qcdq, qdq-native, float or qonnx (got '\(onnxFormat)')")
            }
            let opsets = ONNXExportOptions.supportedOpsets
            if let opset, !opsets.contains(opset) {
                throw UsageError("--opset must be \(opsets.lowerBound)...\(opsets.upperBound) (got \(opset))")
            }
            let file = try OutputFile(path: output, overwrite: force, reading: [input, config])
            let loaded = try ModelLoader(model: input, config: config, overrides: overrides)
            try file.refuse(reading: loaded.externalFiles)
            var options = ONNXExportOptions()
            options.format = format
            options.opset = opset
            options.keepBatchNorm = keepBN
            options.softmax = softmax
            options.metadata = [
                ("qtools.keyword", loaded.options.keywords.joined(separator: ",")),
                ("qtools.source", (input as NSString).lastPathComponent),
            ]
            let proto: ONNXModelProtoBox
            do {
                proto = ONNXModelProtoBox(try ONNXExport.model(loaded.model, options: options))
            } catch let e as InferenceError { throw ModelLoadError(file: input, error: e) }
            try ONNXWriter.write(proto.model, to: file)
            try file.commit()
            let text =
                "wrote \(output): ONNX \(format.rawValue), \(proto.model.graph.node.count) nodes, \(proto.model.graph.initializer.count) initializers, opset \(proto.model.opsetImport.first?.version ?? 0)"
                + (proto.model.opsetImport.count > 1 ? " + qonnx.custom_op.general 1" : "")
            if outputOptions.json {
                Terminal.out(
                    try JSONOutput.render(["output": output, "format": format.rawValue, "nodes": String(proto.model.graph.node.count)]))
            } else {
                Terminal.out(text)
            }
        }
    }
}

/// Keeps the package-visible proto type out of the command's signatures.
struct ONNXModelProtoBox {
    var model: Onnx_ModelProto
    init(_ m: Onnx_ModelProto) { model = m }
}
