#!/usr/bin/env python3
"""2-bit LSQ ResNet-18: qtools' integer path vs `--engine float` vs OpenVINO on qtools' own QCDQ export.

Usage (from the repository root, after `swift build -c release --product qtools`; OpenVINO is
not part of the CI environment: `~/.cache/qtools-venv/bin/pip install openvino`):
    ~/.cache/qtools-venv/bin/python Benchmarks/openvino_bench.py \
        --lsq-config ../shared/seed-configs/config.lsq.eval.imagenet.2bit.torch-resnet18 [--rounds 5]

It builds torchvision's ResNet-18 layout (random weights, non-trivial BatchNorm statistics;
torchvision itself is not needed), saves it, re-keys it for the LSQ config
(`qtools convert --to-config`: the quantizers get their initial clip values) and exports that
checkpoint as QCDQ ONNX (`qtools convert -o lsq.onnx`). Then, in alternating rounds (the
machine may be loaded: only same-run ratios mean something), it takes the median latency of
  * qtools bench --engine int8 (int8 integer convs),
  * qtools bench --engine float (fake quantization, float convs),
  * qtools bench of the float32 ResNet-18,
  * OpenVINO's CPU plugin on the QCDQ file (in-process, `--threads` inference threads),
all at 224x224, batch 1, and prints each with its ratio to OpenVINO, plus the max abs
difference from `qtools run --engine float`'s logits on one input of `qtools run`'s (the int8
path), onnxruntime's and OpenVINO's on the same QCDQ file.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_resnets import resnet18, randomize_bn_statistics


def qtools(exe, args):
    r = subprocess.run([exe] + args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"qtools {' '.join(args)} failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
    return r.stdout


def bench(exe, model, config, threads, runs, extra=()):
    args = ["bench", model] + (["--config", config] if config else [])
    doc = json.loads(qtools(exe, args + ["--threads", str(threads), "--runs", str(runs), "--json", "-q", *extra]))
    return doc["median_ms"], doc.get("integer_convs", 0)


def main():
    ap = argparse.ArgumentParser()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--qtools", default=os.path.join(repo, ".build", "release", "qtools"))
    ap.add_argument("--lsq-config", required=True, help="config.lsq.eval.imagenet.2bit.torch-resnet18")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=10, help="timed runs per engine and round")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if not os.access(a.qtools, os.X_OK):
        sys.exit(f"{a.qtools}: not an executable (swift build -c release --product qtools)")
    import openvino as ov

    torch.manual_seed(0)
    model = randomize_bn_statistics(resnet18().eval())
    with tempfile.TemporaryDirectory() as d:
        fp, fp_cfg = os.path.join(d, "resnet18.pth"), os.path.join(d, "config.fp")
        lsq, onnx_path = os.path.join(d, "lsq.pth"), os.path.join(d, "lsq.onnx")
        x_path, y_path = os.path.join(d, "x.npy"), os.path.join(d, "y.npy")
        torch.save(model.state_dict(), fp)
        with open(fp_cfg, "w") as f:
            f.write("model='pytorch-resnet18'\ndataset='imagenet'\nkeyword='imagenet'\n")
        qtools(a.qtools, ["convert", fp, "--config", fp_cfg, "--to-config", a.lsq_config, "-o", lsq, "--force",
                           "--wrap", "state_dict"])
        qtools(a.qtools, ["convert", lsq, "--config", a.lsq_config, "-o", onnx_path, "--onnx-format", "qcdq", "--force"])

        core = ov.Core()
        compiled = core.compile_model(
            onnx_path, "CPU", {"INFERENCE_NUM_THREADS": a.threads, "PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()
        x = np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32)
        np.save(x_path, x)
        def logits(engine):
            qtools(a.qtools, ["run", lsq, "--config", a.lsq_config, "--input", x_path, "--output", y_path, "--force", "-q",
                              "--engine", engine])
            return np.load(y_path)

        import onnxruntime as ort
        reference = logits("float")
        session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        others = {
            "qtools int8": logits("int8"),
            "onnxruntime": session.run(None, {session.get_inputs()[0].name: x})[0],
            "OpenVINO": request.infer({0: x})[compiled.output(0)],
        }

        def openvino_ms():
            for _ in range(3):
                request.infer({0: x})
            ts = []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                request.infer({0: x})
                ts.append((time.perf_counter() - t0) * 1000)
            return statistics.median(ts)

        rows = {"qtools int8": [], "qtools --engine float": [], "qtools float32 ResNet-18": [], "OpenVINO QCDQ": []}
        lowered = 0
        for r in range(a.rounds):
            ms, lowered = bench(a.qtools, lsq, a.lsq_config, a.threads, a.runs, ["--engine", "int8"])
            rows["qtools int8"].append(ms)
            rows["qtools --engine float"].append(bench(a.qtools, lsq, a.lsq_config, a.threads, a.runs, ["--engine", "float"])[0])
            rows["qtools float32 ResNet-18"].append(bench(a.qtools, fp, fp_cfg, a.threads, a.runs)[0])
            rows["OpenVINO QCDQ"].append(openvino_ms())
        print(f"2-bit LSQ ResNet-18, 224x224, batch 1, {a.threads} threads, {a.rounds} alternating rounds "
              f"of {a.runs} runs (median of round medians); {lowered} convs on qtools' int8 kernels")
        ov_med = statistics.median(rows["OpenVINO QCDQ"])
        for name, ms in rows.items():
            m = statistics.median(ms)
            ratios = [q / o for q, o in zip(ms, rows["OpenVINO QCDQ"])]
            print(f"  {name:26s} {m:8.2f} ms   {m / ov_med:5.2f}x OpenVINO "
                  f"(per-round ratios {min(ratios):.2f}-{max(ratios):.2f})")
        same = [q / f for q, f in zip(rows["qtools int8"], rows["qtools --engine float"])]
        print(f"  qtools int8 / --engine float per round: {', '.join(f'{r:.2f}' for r in same)}")
        print(f"logits vs qtools --engine float (max |logit| {np.abs(reference).max():.3g}, top-1 {reference.argmax()}):")
        for name, y in others.items():
            print(f"  {name:26s} max abs diff {float(np.abs(y - reference).max()):.2e}, top-1 {y.argmax()}")


if __name__ == "__main__":
    main()
