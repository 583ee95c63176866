import Foundation
import TestSupport
import Testing

/// Python scripts that make ONNX models with torch/onnx and describe them with the `onnx`
/// package, so expected values never come from qtools' own reader.
enum ONNXPython {
    /// `describe(path)`: what onnx 1.23 says about a model, as JSON-ready dicts. Initializer
    /// values are `numpy_helper.to_array` bytes, packed 4-/2-bit types widened to int8/uint8.
    static let prelude = """
        import collections, json, os, sys
        import numpy as np
        import onnx
        from onnx import helper, numpy_helper, TensorProto as T

        def dims(t):
            if not t.HasField("shape"):
                return None
            return [str(d.dim_value) if d.HasField("dim_value") else (d.dim_param if d.HasField("dim_param") else "?")
                    for d in t.shape.dim]

        def describe(path):
            m = onnx.load(path, load_external_data=False)
            g = m.graph
            names = {t.name for t in g.initializer}
            def vi(v):
                t = v.type.tensor_type
                return {"name": v.name, "type": T.DataType.Name(t.elem_type), "shape": dims(t)}
            ops = collections.Counter((n.domain, n.op_type) for n in g.node)
            inits = []
            for t in g.initializer:
                a = numpy_helper.to_array(t, base_dir=os.path.dirname(path))
                dt = T.DataType.Name(t.data_type)
                if dt in ("INT4", "INT2"):
                    a = a.astype(np.int8)
                elif dt in ("UINT4", "UINT2"):
                    a = a.astype(np.uint8)
                inits.append({"name": t.name, "dataType": dt, "shape": list(t.dims),
                              "hex": np.ascontiguousarray(a).tobytes().hex()})
            return {
                "irVersion": m.ir_version,
                "opsets": [[o.domain, o.version] for o in m.opset_import],
                "producerName": m.producer_name, "producerVersion": m.producer_version,
                "graphName": g.name,
                "inputs": [vi(v) for v in g.input if v.name not in names],
                "outputs": [vi(v) for v in g.output],
                "nodeCount": len(g.node),
                "ops": {(d + "." if d else "") + o: c for (d, o), c in ops.items()},
                "initializers": inits,
                "metadata": [[p.key, p.value] for p in m.metadata_props],
            }

        """

    /// Exports a small CNN (conv-bn-relu, residual add, pool, linear) with the TorchScript
    /// exporter at opset 13: `static.onnx` and `dynamic.onnx` (batch axis named `batch`).
    static let torchExport =
        prelude + """
            import torch
            torch.manual_seed(0)
            class Net(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
                    self.bn1 = torch.nn.BatchNorm2d(8)
                    self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
                    self.pool = torch.nn.MaxPool2d(2)
                    self.fc = torch.nn.Linear(8, 10)
                def forward(self, x):
                    y = torch.relu(self.bn1(self.conv1(x)))
                    y = torch.relu(self.conv2(y) + y)
                    y = self.pool(y)
                    y = torch.nn.functional.adaptive_avg_pool2d(y, 1).flatten(1)
                    return self.fc(y)
            net = Net()
            with torch.no_grad():
                net.bn1.running_mean.uniform_(-0.5, 0.5)
                net.bn1.running_var.uniform_(0.5, 2.0)
            net.eval()
            d = sys.argv[1]
            x = torch.randn(1, 3, 16, 16)
            torch.onnx.export(net, (x,), os.path.join(d, "static.onnx"), dynamo=False, opset_version=13,
                              input_names=["x"], output_names=["logits"])
            torch.onnx.export(net, (x,), os.path.join(d, "dynamic.onnx"), dynamo=False, opset_version=13,
                              input_names=["x"], output_names=["logits"],
                              dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
            print(json.dumps({n: describe(os.path.join(d, n + ".onnx")) for n in ["static", "dynamic"]}))
            """

    /// A hand-built QDQ model with every initializer storage form: raw_data, float_data,
    /// int64_data, double_data, uint64_data, int32_data (INT8, FLOAT16, BFLOAT16, BOOL, packed
    /// INT4/UINT2), packed raw INT4/UINT4/INT2, and two tensors in one external file.
    static let storageForms =
        prelude + """
            import ml_dtypes
            d = sys.argv[1]
            rng = np.random.default_rng(1)
            inits = [
                numpy_helper.from_array(rng.integers(-8, 8, (3, 2, 1, 1)).astype(np.int8), "w_q"),
                numpy_helper.from_array(rng.uniform(0.01, 0.1, 3).astype(np.float32), "w_scale"),
                helper.make_tensor("w_zp", T.INT8, [3], [0, 1, -1], raw=False),
                helper.make_tensor("x_scale", T.FLOAT, [], [0.05], raw=False),
                helper.make_tensor("x_zp", T.UINT8, [], [128], raw=False),
                helper.make_tensor("f_typed", T.FLOAT, [2, 2], [1.5, -2.25, 3.0, 1e-8], raw=False),
                helper.make_tensor("i64_typed", T.INT64, [3], [-1, 2**40, 7], raw=False),
                helper.make_tensor("f16_typed", T.FLOAT16, [3], [1.0, -2.5, 65504.0], raw=False),
                helper.make_tensor("bf16_typed", T.BFLOAT16, [2], [1.5, -3.0], raw=False),
                helper.make_tensor("bool_typed", T.BOOL, [2, 2], [True, False, False, True], raw=False),
                helper.make_tensor("f64_typed", T.DOUBLE, [2], [3.141592653589793, -1e300], raw=False),
                helper.make_tensor("u32_typed", T.UINT32, [2], [1, 4000000000], raw=False),
                helper.make_tensor("u64_typed", T.UINT64, [1], [2**63 + 5], raw=False),
                helper.make_tensor("i16_typed", T.INT16, [2], [-300, 300], raw=False),
                helper.make_tensor("int4_typed", T.INT4, [5], [1, 2, -8, 7, -1], raw=False),
                helper.make_tensor("uint2_typed", T.UINT2, [6], [0, 1, 2, 3, 3, 1], raw=False),
                numpy_helper.from_array(np.array([1, 2, -8, 7, -1], dtype=ml_dtypes.int4), "int4_raw"),
                numpy_helper.from_array(np.array([1, 2, 8, 15], dtype=ml_dtypes.uint4), "uint4_raw"),
                numpy_helper.from_array(np.array([0, 1, -2, -1, 1], dtype=ml_dtypes.int2), "int2_raw"),
                numpy_helper.from_array(np.zeros((0, 3), dtype=np.float32), "empty"),
                numpy_helper.from_array(np.array([1.0, -2.0], dtype=np.float16), "f16_raw"),
            ]
            ext = [rng.standard_normal((4, 4)).astype(np.float32), np.arange(6, dtype=np.int64).reshape(2, 3)]
            blob = ext[0].tobytes() + bytes(64 - ext[0].nbytes % 64) + ext[1].tobytes()
            open(os.path.join(d, "weights.bin"), "wb").write(blob)
            for name, a, off in [("ext_f32", ext[0], 0), ("ext_i64", ext[1], 64 * ((ext[0].nbytes + 63) // 64))]:
                t = numpy_helper.from_array(a, name)
                t.ClearField("raw_data")
                t.data_location = T.EXTERNAL
                for k, v in [("location", "weights.bin"), ("offset", str(off)), ("length", str(a.nbytes))]:
                    e = t.external_data.add()
                    e.key, e.value = k, v
                inits.append(t)
            nodes = [
                helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["x_q"], name="q"),
                helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zp"], ["x_dq"], name="dq"),
                helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w"], name="wdq", axis=0),
                helper.make_node("Conv", ["x_dq", "w"], ["y"], name="conv", kernel_shape=[1, 1]),
            ]
            g = helper.make_graph(nodes, "qdq_forms",
                [helper.make_tensor_value_info("x", T.FLOAT, ["batch", 2, 4, 4])],
                [helper.make_tensor_value_info("y", T.FLOAT, ["batch", 3, 4, 4])], inits)
            m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], producer_name="onnx-helper",
                                  producer_version="1.23.2")
            m.ir_version = 13
            helper.set_model_props(m, {"qtools.w_q.bits": "4", "author": "qtools tests"})
            path = os.path.join(d, "forms.onnx")
            onnx.save(m, path)
            onnx.checker.check_model(path)
            print(json.dumps(describe(path)))
            """

    /// Checks a model written by qtools: `onnx.checker` with `full_check`, then onnxruntime runs
    /// it on `x` = arange and prints its outputs next to numpy's `x + c` (argv: path).
    static let checkWritten =
        prelude + """
            import onnxruntime as ort
            path = sys.argv[1]
            m = onnx.load(path)
            onnx.checker.check_model(m, full_check=True)
            c = numpy_helper.to_array(m.graph.initializer[0])
            x = np.arange(c.size, dtype=np.float32).reshape(c.shape)
            s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            y, z = s.run(None, {"x": x})
            print(json.dumps({"describe": describe(path), "y": y.tolist(), "z": z.tolist(),
                              "expected": (x + c).tolist()}))
            """

    /// Runs a script with the model directory as argument and parses its JSON output.
    static func run(_ script: String, _ args: [String]) throws -> [String: Any] {
        let r = try Python.run(script, args)
        try #require(r.status == 0, "python failed: \(r.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    }

    /// True when the interop tests can or must run.
    static var enabled: Bool { Python.interpreter != nil || Python.isRequired }
}
