// libFuzzer target for the ONNX importer and planner: bytes -> ONNXReader -> ONNXImport ->
// Plan for a small input, then one run when the plan's arena is small. Built by
// `Fuzz/run.sh onnx` into the Models module itself (Engine, QToolConfig, Formats, Tensors and
// SwiftProtobuf as libraries). Any crash, sanitizer report, hang or allocation beyond the input's declared
// sizes is a bug; a thrown InferenceError or FormatError is fine.
import Engine
import Formats
import Tensors

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNXImport(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = unsafe Array(UnsafeBufferPointer(start: data, count: size))
    guard let model = try? ONNXReader.model(ByteSlice(bytes)) else { return 0 }
    guard let built = try? ONNXImport.builtModel(model, name: "fuzz.onnx") else { return 0 }
    // A small input of the graph's channel count: planning must refuse or size it sanely.
    let shape = [1, min(max(built.inputChannels, 1), 64), 8, 8]
    guard let plan = try? Plan(graph: built.graph, inputShapes: [built.input: shape]) else { return 0 }
    guard plan.arenaBytes + plan.weightBytes < 64 << 20 else { return 0 }
    let x = Tensor(floats: [Float](repeating: 0.5, count: shape.reduce(1, *)), shape: shape)
    _ = try? Executor(plan: plan, threads: 1).run([built.input: x])
    return 0
}
