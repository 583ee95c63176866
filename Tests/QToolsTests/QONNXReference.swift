/// Python references for the QONNX tests, written from the QONNX operator documentation
/// (docs/qonnx-custom-ops/quant_op.md, intquant_op.md, bipolar_quant_op.md) and never from
/// qtools' code:
///
/// ```
/// Quant:         y = (round(clip(x / scale + zeropt, min_int, max_int)) − zeropt) · scale    (ROUND: half to even)
///                signed: [−2^(b−1) (+1 if narrow), 2^(b−1) − 1];  unsigned: [0, 2^b − 1 (−1 if narrow)]
/// BipolarQuant:  y = (x >= 0 ? 1 : −1) · scale
/// ```
enum QONNXReference {
    /// Spec helpers shared by the scripts.
    static let prelude = """
        import sys, json, os
        import numpy as np, onnx, onnxruntime as ort
        from onnx import helper, numpy_helper, TensorProto as T
        QDOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general")

        def int_range(signed, narrow, b):
            if signed:
                return -(2 ** (b - 1)) + (1 if narrow else 0), 2 ** (b - 1) - 1
            return 0, 2 ** b - 1 - (1 if narrow else 0)

        def rnd(t, mode):
            t = t.astype(np.float64)
            return {"ROUND": np.round, "CEIL": np.ceil, "FLOOR": np.floor, "DOWN": np.trunc,
                    "UP": lambda v: np.sign(v) * np.ceil(np.abs(v)),
                    "HALF_UP": lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5),
                    "HALF_DOWN": lambda v: np.sign(v) * np.ceil(np.abs(v) - 0.5)}[mode](t).astype(np.float32)

        def quant(x, s, z, b, signed, narrow, mode="ROUND"):
            x, s, z = (np.asarray(v, dtype=np.float32) for v in (x, s, z))
            t = x / s + z
            if b == 1 and signed:
                t = np.where(t >= 0, np.float32(1), np.float32(-1))
            else:
                lo, hi = int_range(signed, narrow, b)
                t = rnd(np.clip(t, np.float32(lo), np.float32(hi)), mode)
            return ((t - z) * s).astype(np.float32)

        def bipolar(x, s):
            return (np.where(np.asarray(x) >= 0, np.float32(1), np.float32(-1)) * np.float32(s)).astype(np.float32)

        def attrs(n):
            return {a.name: helper.get_attribute_value(a) for a in n.attribute}

        """

    /// argv[1]: JSON list of `{path, input, expect, checkpoint?, layer?, kinds?}`. For each file:
    /// `onnx.checker` (plain and full_check), then every QONNX node replaced by standard ops
    /// computing the formula above and run in onnxruntime against `expect` (max |Δ| / max
    /// |expect|); the qonnx package's own executor when it is installed; whether every weight
    /// Quant / BipolarQuant gives back its initializer bit for bit; the Quant settings of
    /// `layer` next to the values the checkpoint implies for `kinds` (act: lsq | pact |
    /// dorefa:<c> | bipolar; wt: lsq | dorefa | xnor; bits).
    static let check =
        prelude + """
            def lower(m):
                g = m.graph
                init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
                nodes, extra, k = [], [], [0]
                def name():
                    k[0] += 1
                    return "__ref_%d" % k[0]
                def const(v):
                    n = name()
                    extra.append(numpy_helper.from_array(np.asarray(v, dtype=np.float32), n))
                    return n
                def op(t, ins, out=None):
                    out = out or name()
                    nodes.append(helper.make_node(t, ins, [out]))
                    return out
                for n in g.node:
                    if n.domain not in QDOMAINS:
                        nodes.append(n)
                        continue
                    x, s = n.input[0], n.input[1]
                    if n.op_type == "BipolarQuant":
                        op("Mul", [op("Where", [op("GreaterOrEqual", [x, const(0)]), const(1), const(-1)]), s], n.output[0])
                        continue
                    a = attrs(n)
                    b = int(init[n.input[3]])
                    assert n.op_type == "Quant" and a["rounding_mode"] == b"ROUND" and not (b == 1 and a["signed"])
                    lo, hi = int_range(a["signed"], a["narrow"], b)
                    t = op("Add", [op("Div", [x, s]), n.input[2]])
                    t = op("Round", [op("Clip", [t, const(lo), const(hi)])])
                    op("Mul", [op("Sub", [t, n.input[2]]), s], n.output[0])
                del g.node[:]
                g.node.extend(nodes)
                g.initializer.extend(extra)
                keep = [o for o in m.opset_import if o.domain not in QDOMAINS]
                del m.opset_import[:]
                m.opset_import.extend(keep)
                return m

            def weights_exact(m):
                init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
                for n in m.graph.node:
                    if n.domain not in QDOMAINS or n.input[0] not in init:
                        continue
                    w = init[n.input[0]]
                    if n.op_type == "BipolarQuant":
                        y = bipolar(w, init[n.input[1]])
                    else:
                        a = attrs(n)
                        y = quant(w, init[n.input[1]], init[n.input[2]], int(init[n.input[3]]), a["signed"], a["narrow"])
                    if not np.array_equal(y, w):
                        return False, n.name
                return True, None

            def settings(m, layer):
                init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
                out = {}
                for n in m.graph.node:
                    if n.domain not in QDOMAINS:
                        continue
                    which = "act" if n.output[0] == layer + ".quant_activation" else "wt" if n.input[0] == layer + ".weight" else None
                    if which:
                        d = {"op": n.op_type, "scale": init[n.input[1]].reshape(-1).tolist(),
                             "scaleShape": list(init[n.input[1]].shape)}
                        if n.op_type == "Quant":
                            a = attrs(n)
                            d.update(zeropt=float(init[n.input[2]]), bits=float(init[n.input[3]]), signed=a["signed"],
                                     narrow=a["narrow"], rounding=a["rounding_mode"].decode())
                        out[which] = d
                return out

            def implied(ckpt, layer, kinds):
                import torch
                sd = torch.load(ckpt, map_location="cpu", weights_only=True)
                sd = sd.get("state_dict", sd)
                bits = int(kinds["bits"])
                n = 2 ** bits - 1
                act, wt = kinds["act"], kinds["wt"]
                clip = lambda k: sd[layer + ".quant_%s.clip_val" % k].abs().reshape(-1).numpy()
                e = {}
                if act == "lsq" or act == "pact":
                    e["act"] = {"op": "Quant", "scale": (clip("activation") / n).tolist(), "zeropt": 0.0, "signed": 0}
                elif act.startswith("dorefa:"):
                    e["act"] = {"op": "Quant", "scale": [float(act[7:]) / n], "zeropt": 0.0, "signed": 0}
                else:
                    e["act"] = {"op": "BipolarQuant", "scale": [1.0]}
                if wt == "lsq":
                    e["wt"] = {"op": "Quant", "scale": (2 * clip("weight") / n).tolist(), "zeropt": n / 2, "signed": 0}
                elif wt == "dorefa":
                    e["wt"] = {"op": "Quant", "scale": [2 / n], "zeropt": n / 2, "signed": 0}
                else:
                    w = sd[layer + ".weight"]
                    m = w.abs().mean(dim=(1, 2, 3))
                    g = sd.get(layer + ".quant_weight.gamma")
                    if g is not None:
                        m = m * g.abs().reshape(-1)
                    e["wt"] = {"op": "BipolarQuant", "scale": m.numpy().tolist()}
                for v in e.values():
                    if v["op"] == "Quant":
                        v.update(bits=float(bits), narrow=0, rounding="ROUND")
                return e

            so = ort.SessionOptions()
            so.log_severity_level = 3
            res = {}
            for job in json.loads(sys.argv[1]):
                path = job["path"]
                m = onnx.load(path)
                r = {"opsets": [[o.domain, o.version] for o in m.opset_import],
                     "ops": sorted({(n.domain + "." if n.domain else "") + n.op_type for n in m.graph.node}),
                     "meta": {p.key: p.value for p in m.metadata_props}}
                onnx.checker.check_model(m)
                try:
                    onnx.checker.check_model(m, full_check=True)
                    r["fullCheck"] = "ok"
                except Exception as e:
                    r["fullCheck"] = str(e).splitlines()[0]
                r["weightsExact"], r["inexactNode"] = weights_exact(m)
                if "layer" in job:
                    r["layer"] = settings(m, job["layer"])
                    if "checkpoint" in job:
                        r["implied"] = implied(job["checkpoint"], job["layer"], job["kinds"])
                x, want = np.load(job["input"]), np.load(job["expect"])
                low = lower(m)
                onnx.checker.check_model(low, full_check=True)
                s = ort.InferenceSession(low.SerializeToString(), so, providers=["CPUExecutionProvider"])
                got = s.run(None, {s.get_inputs()[0].name: x})[0]
                r["rel"] = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
                try:
                    from qonnx.core.modelwrapper import ModelWrapper
                    from qonnx.core.onnx_exec import execute_onnx
                    from qonnx.transformation.infer_shapes import InferShapes
                except ImportError:
                    ModelWrapper = None
                if ModelWrapper is not None:
                    fixed = onnx.load(path)
                    for d, v in zip(fixed.graph.input[0].type.tensor_type.shape.dim, x.shape):
                        d.dim_value = v
                    fixed.graph.output[0].type.tensor_type.shape.dim[0].dim_value = x.shape[0]
                    w = ModelWrapper(fixed).transform(InferShapes())
                    q = execute_onnx(w, {w.graph.input[0].name: x})[w.graph.output[0].name]
                    r["qonnxRel"] = float(np.max(np.abs(q - want)) / np.max(np.abs(want)))
                res[path] = r
            print(json.dumps(res))
            """

    /// Hand-built QONNX models (argv[1]: directory) for the import: x → Quant → 1x1 Conv with a
    /// Quant/BipolarQuant weight → Quant → GlobalAveragePool → Flatten, with exact rounding ties
    /// in x. Writes `<name>.onnx`, `<name>.expected.npy` (numpy, from the formulas) and `x.npy`;
    /// also `default_domain.onnx` (a Quant of ai.onnx) and `half_down.onnx` (an unread rounding mode).
    static let handBuilt =
        prelude + """
            d = sys.argv[1]
            rng = np.random.default_rng(7)
            C, O = 3, 4
            x = (rng.integers(-12, 13, (2, C, 6, 6)) * 0.125).astype(np.float32)  # many exact half steps
            np.save(os.path.join(d, "x.npy"), x)
            w_latent = rng.normal(0, 0.5, (O, C, 1, 1)).astype(np.float32)

            def q_node(op, ins, out, domain, **a):
                return helper.make_node(op, ins, [out], name=out, domain=domain, **a)

            def build(name, act1, wq, act2, domain="qonnx.custom_op.general", op1="Quant"):
                inits, nodes = [], []
                def c(n, v):
                    inits.append(numpy_helper.from_array(np.asarray(v, dtype=np.float32), n))
                    return n
                def quant_stage(tag, src, spec, op="Quant"):
                    if spec[0] == "bipolar":
                        nodes.append(q_node("BipolarQuant", [src, c(tag + ".s", spec[1])], tag, domain))
                        return lambda v: bipolar(v, np.asarray(spec[1], dtype=np.float32))
                    _, s, z, b, signed, narrow, mode = spec
                    nodes.append(q_node(op, [src, c(tag + ".s", s), c(tag + ".z", z), c(tag + ".b", b)], tag, domain,
                                        signed=signed, narrow=narrow, rounding_mode=mode))
                    return lambda v: quant(v, s, z, b, signed, narrow, mode)
                f1 = quant_stage("a1", "x", act1, op1)
                c("w", w_latent)
                fw = quant_stage("wq", "w", wq)
                nodes.append(helper.make_node("Conv", ["a1", "wq"], ["conv"], name="conv", kernel_shape=[1, 1]))
                f2 = quant_stage("a2", "conv", act2)
                nodes.append(helper.make_node("GlobalAveragePool", ["a2"], ["gap"], name="gap"))
                nodes.append(helper.make_node("Flatten", ["gap"], ["y"], name="flat", axis=1))
                g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", T.FLOAT, [2, C, 6, 6])],
                                      [helper.make_tensor_value_info("y", T.FLOAT, [2, O])], inits)
                m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(domain, 1)])
                onnx.save(m, os.path.join(d, name + ".onnx"))
                a = f1(x).astype(np.float64)
                wv = fw(w_latent).reshape(O, C).astype(np.float64)
                conv = np.einsum("oc,nchw->nohw", wv, a).astype(np.float32)
                y = f2(conv).mean(axis=(2, 3), dtype=np.float64).astype(np.float32)
                np.save(os.path.join(d, name + ".expected.npy"), y)

            pc = np.array([0.25, 0.5, 0.125], dtype=np.float32).reshape(1, C, 1, 1)
            wpc = (np.abs(w_latent).max(axis=(1, 2, 3)) / 7).reshape(O, 1, 1, 1)
            build("unsigned_perchannel", ("q", pc, 0.0, 2, 0, 0, "ROUND"), ("q", wpc, 0.0, 4, 1, 1, "ROUND"),
                  ("q", 0.25, 0.0, 3, 1, 0, "ROUND"))
            build("narrow_ceil_bipolar", ("q", 0.25, 1.5, 3, 0, 1, "CEIL"),
                  ("bipolar", np.abs(w_latent).mean(axis=(1, 2, 3)).reshape(O, 1, 1, 1)), ("bipolar", 0.5),
                  domain="finn.custom_op.general")
            build("signed1_floor_halfup", ("q", 0.5, 0.0, 1, 1, 0, "ROUND"), ("q", 0.375, 1.5, 2, 0, 0, "FLOOR"),
                  ("q", 0.125, 0.0, 4, 1, 0, "HALF_UP"), op1="IntQuant")
            build("up_down", ("q", 0.25, 0.0, 3, 1, 0, "UP"), ("q", 0.2, 0.0, 3, 1, 1, "DOWN"),
                  ("q", 0.25, 0.5, 4, 0, 0, "ROUND"))
            # Errors: a Quant outside the QONNX domains, and a rounding mode qtools does not read.
            g = helper.make_graph([helper.make_node("Quant", ["x", "s", "z", "b"], ["y"], name="plain_quant")], "bad",
                                  [helper.make_tensor_value_info("x", T.FLOAT, [2, C, 6, 6])],
                                  [helper.make_tensor_value_info("y", T.FLOAT, [2, C, 6, 6])],
                                  [numpy_helper.from_array(np.float32(v), n) for n, v in [("s", 1), ("z", 0), ("b", 4)]])
            onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), os.path.join(d, "default_domain.onnx"))
            build("half_down", ("q", 0.25, 0.0, 3, 1, 0, "HALF_DOWN"), ("q", wpc, 0.0, 4, 1, 1, "ROUND"),
                  ("q", 0.25, 0.0, 3, 1, 0, "ROUND"))
            print("{}")
            """
}
