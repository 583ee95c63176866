#!/usr/bin/env python3
"""Quantized torchvision-layout ResNets: qtools' int8 path vs `--engine float` vs OpenVINO and
onnxruntime on qtools' own QCDQ export of the same checkpoint.

Usage (from the repository root, after `swift build -c release --product qtools`; OpenVINO is
not part of the CI environment: `~/.cache/qtools-venv/bin/pip install openvino`):
    ~/.cache/qtools-venv/bin/python Benchmarks/openvino_bench.py \
        --config ../shared/seed-configs/config.lsq.eval.imagenet.2bit.torch-resnet18 \
        [--model resnet18|resnet50] [--bits 4] [--quantizer lsq|dorefa] [--rounds 5] [--batch 1]

It builds torchvision's ResNet layout (random weights, non-trivial BatchNorm statistics;
torchvision itself is not needed), saves it, re-keys it for the quantized config
(`qtools convert --to-config`: the quantizers get their initial clip values) and exports that
checkpoint as QCDQ ONNX (`qtools convert -o q.onnx`). `--model`, `--bits` and `--quantizer`
rewrite the config's model, `--fm_bit`/`--wt_bit` and keyword (`dorefa` drops `lsq`). Then,
in alternating rounds (the machine may be loaded: only same-run ratios mean something), it
takes the median latency of
  * qtools bench (the default engine: int8 convs where the CPU has AVX-512 VNNI),
  * qtools bench --engine float (fake quantization, float convs),
  * qtools bench of the float32 model,
  * OpenVINO's CPU plugin on the QCDQ file (in-process, `--threads` inference threads),
  * onnxruntime on the same file (in-process, `--threads` intra-op threads),
at 224x224, and prints each with its ratio to OpenVINO, plus the max abs difference from
`qtools run --engine float`'s logits on one input of `qtools run`'s (the int8 path),
onnxruntime's and OpenVINO's.
"""
import argparse, json, os, re, statistics, subprocess, sys, tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine_bench import timed
from torch_resnets import resnet18, resnet50, randomize_bn_statistics


def qtools(exe, args):
    r = subprocess.run([exe] + args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"qtools {' '.join(args)} failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
    return r.stdout


def bench(exe, model, config, threads, runs, batch, extra=()):
    args = ["bench", model] + (["--config", config] if config else [])
    args += ["--threads", str(threads), "--runs", str(runs), "--batch", str(batch), "--json", "-q", *extra]
    doc = json.loads(qtools(exe, args))
    return doc["median_ms"], doc.get("integer_convs", 0)


def rewrite_config(text, model, bits, quantizer):
    """The seed config with its model, bit widths and quantizer replaced."""
    text = re.sub(r"^model='[^']*'", f"model='pytorch-{model}'", text, flags=re.M)
    if bits:
        text = re.sub(r"--fm_bit \d+", f"--fm_bit {bits}", text)
        text = re.sub(r"--wt_bit \d+", f"--wt_bit {bits}", text)
    if quantizer == "dorefa":
        def drop_lsq(m):
            return "keyword='" + ",".join(k for k in m.group(1).split(",") if k != "lsq") + "'"
        text = re.sub(r"^keyword='([^']*)'", drop_lsq, text, flags=re.M)
    return text


def main():
    ap = argparse.ArgumentParser()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--qtools", default=os.path.join(repo, ".build", "release", "qtools"))
    ap.add_argument("--config", "--lsq-config", required=True, help="e.g. config.lsq.eval.imagenet.2bit.torch-resnet18")
    ap.add_argument("--model", choices=["resnet18", "resnet50"], default="resnet18")
    ap.add_argument("--bits", type=int, default=0, help="override --fm_bit and --wt_bit")
    ap.add_argument("--quantizer", choices=["lsq", "dorefa"], default="lsq")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=10, help="timed runs per engine and round")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1)
    a = ap.parse_args()
    if not os.access(a.qtools, os.X_OK):
        sys.exit(f"{a.qtools}: not an executable (swift build -c release --product qtools)")
    import openvino as ov
    import onnxruntime as ort

    torch.manual_seed(0)
    model = randomize_bn_statistics({"resnet18": resnet18, "resnet50": resnet50}[a.model]().eval())
    with tempfile.TemporaryDirectory() as d:
        fp, fp_cfg, q_cfg = (os.path.join(d, n) for n in ("fp.pth", "config.fp", "config.q"))
        q, onnx_path = os.path.join(d, "q.pth"), os.path.join(d, "q.onnx")
        x_path, y_path = os.path.join(d, "x.npy"), os.path.join(d, "y.npy")
        torch.save(model.state_dict(), fp)
        with open(fp_cfg, "w") as f:
            f.write(f"model='pytorch-{a.model}'\ndataset='imagenet'\nkeyword='imagenet'\n")
        with open(a.config) as f, open(q_cfg, "w") as g:
            g.write(rewrite_config(f.read(), a.model, a.bits, a.quantizer))
        qtools(a.qtools, ["convert", fp, "--config", fp_cfg, "--to-config", q_cfg, "-o", q, "--force", "--wrap", "state_dict"])
        qtools(a.qtools, ["convert", q, "--config", q_cfg, "-o", onnx_path, "--onnx-format", "qcdq", "--force"])

        core = ov.Core()
        compiled = core.compile_model(
            onnx_path, "CPU", {"INFERENCE_NUM_THREADS": a.threads, "PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()
        options = ort.SessionOptions()
        options.intra_op_num_threads = a.threads
        session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        feed = session.get_inputs()[0].name
        x = np.random.default_rng(0).standard_normal((a.batch, 3, 224, 224), dtype=np.float32)
        np.save(x_path, x)

        def logits(engine):
            qtools(a.qtools, ["run", q, "--config", q_cfg, "--input", x_path, "--output", y_path, "--force", "-q",
                              "--engine", engine])
            return np.load(y_path)

        reference = logits("float")
        others = {
            "qtools (default engine)": logits("fast"),
            "onnxruntime": session.run(None, {feed: x})[0],
            "OpenVINO": request.infer({0: x})[compiled.output(0)],
        }
        rows = {"qtools (default engine)": [], "qtools --engine float": [], "qtools float32 model": [],
                "OpenVINO QCDQ": [], "onnxruntime QCDQ": []}
        lowered = 0
        for r in range(a.rounds):
            ms, lowered = bench(a.qtools, q, q_cfg, a.threads, a.runs, a.batch)
            rows["qtools (default engine)"].append(ms)
            rows["qtools --engine float"].append(
                bench(a.qtools, q, q_cfg, a.threads, a.runs, a.batch, ["--engine", "float"])[0])
            rows["qtools float32 model"].append(bench(a.qtools, fp, fp_cfg, a.threads, a.runs, a.batch)[0])
            rows["OpenVINO QCDQ"].append(timed(lambda: request.infer({0: x}), a.runs, 3)[0])
            rows["onnxruntime QCDQ"].append(timed(lambda: session.run(None, {feed: x}), a.runs, 3)[0])
        bits = re.search(r"--fm_bit (\d+)", open(q_cfg).read())
        print(f"{bits.group(1) if bits else '?'}-bit {a.quantizer} {a.model}, 224x224, batch {a.batch}, {a.threads} threads, "
              f"{a.rounds} alternating rounds of {a.runs} runs (median of round medians); "
              f"{lowered} convs on qtools' int8 kernels")
        ov_med = statistics.median(rows["OpenVINO QCDQ"])
        for name, ms in rows.items():
            m = statistics.median(ms)
            ratios = [q / o for q, o in zip(ms, rows["OpenVINO QCDQ"])]
            print(f"  {name:26s} {m:8.2f} ms   {m / ov_med:5.2f}x OpenVINO "
                  f"(per-round ratios {min(ratios):.2f}-{max(ratios):.2f})")
        same = [q / f for q, f in zip(rows["qtools (default engine)"], rows["qtools --engine float"])]
        print(f"  qtools default / --engine float per round: {', '.join(f'{r:.2f}' for r in same)}")
        print(f"logits vs qtools --engine float (max |logit| {np.abs(reference).max():.3g}, top-1 {reference.argmax(-1)}):")
        for name, y in others.items():
            print(f"  {name:26s} max abs diff {float(np.abs(y - reference).max()):.2e}, top-1 {y.argmax(-1)}")


if __name__ == "__main__":
    main()
