#!/usr/bin/env python3
"""MobileNetV2, ResNet-50 and ResNet-18 fp32 latency: `qtools bench` against onnxruntime on
the same architecture, in alternating rounds (run by hand, not in tests).

Usage (from the repository root, after `swift build -c release --product qtools`):
    ~/.cache/qtools-venv/bin/python Benchmarks/zoo_engine_bench.py --qtools .build/release/qtools \
        [--models mobilenetv2,resnet50,resnet18] [--batch 1 --batch 8] [--rounds 5] [--runs 20]
    ... --qtools OLD/qtools --qtools NEW/qtools   # A/B: both binaries in the same rounds
    ... --profile                                 # per-step times: qtools bench --json vs ORT's profiler

qtools runs the zoo network with seeded random weights (`qtools bench mobilenetv2 --keyword
imagenet,cbas`, `pytorch-resnet50`, `pytorch-resnet18`); onnxruntime (intra-op threads =
--threads) runs the same architecture in torchvision's layout (Benchmarks/torch_mobilenet.py,
torch_resnets.py) with random weights and BN statistics, exported by torch.onnx.export
(opset 13) with a dynamic batch axis. Each round times onnxruntime, then each qtools binary
(its own median of --runs); the table gives the median of the round medians and the median
of the per-round ratios (same-run ratios: the machine is shared, absolute times move).
`--models bireal18,fatnn18` times the binary (Bi-Real) and ternary (FATNN) ResNet-18s on the
bit-packed kernels against onnxruntime's float32 ResNet-18 (issue 13's anchor).
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_mobilenet import mobilenet_v2
from torch_resnets import resnet18, resnet50, randomize_bn_statistics
import engine_bench

MODELS = {
    "mobilenetv2": (mobilenet_v2, ["mobilenetv2", "--keyword", "imagenet,cbas"]),
    "resnet50": (resnet50, ["pytorch-resnet50"]),
    "resnet18": (resnet18, ["pytorch-resnet18"]),
    # Low-bit ResNet-18s (issue 13) against onnxruntime's *float32* ResNet-18: Bi-Real (binary,
    # the seed config) and FATNN ternary (Benchmarks/binary-configs), quantizers past `stable`.
    "bireal18": (resnet18, ["resnet18", "--config", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                 "fixtures/seed-configs/config.bireal.train-scratch.dali.bin.resnet18"), "--stable", "-1"]),
    "fatnn18": (resnet18, ["resnet18", "--config", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                "binary-configs/fatnn_ternary_resnet18.txt"), "--stable", "-1"]),
}


def timed(fn, runs, warmup):
    """Median ms of `runs` calls after `warmup` (engine_bench's timer)."""
    return engine_bench.timed(fn, runs, warmup)[0]


def qtools_bench(binary, args, batch, runs, warmup, threads):
    r = subprocess.run([binary, "bench", *args, "--batch", str(batch), "--runs", str(runs), "--warmup",
                        str(warmup), "--threads", str(threads), "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"qtools bench failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout)


def ort_profile(onnx_path, feed, threads, runs):
    """Mean ms per node over `runs` profiled runs of onnxruntime."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.enable_profiling = True
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    for _ in range(runs):
        sess.run(None, feed)
    path = sess.end_profiling()
    with open(path) as f:
        events = json.load(f)
    os.remove(path)
    per = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            k = (e["name"][: -len("_kernel_time")], e.get("args", {}).get("op_name", ""))
            per[k] = per.get(k, 0.0) + e["dur"] / 1000.0
    return [(n, op, ms / runs) for (n, op), ms in per.items()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qtools", action="append", default=[])
    ap.add_argument("--models", default="mobilenetv2,resnet50,resnet18")
    ap.add_argument("--batch", type=int, action="append", default=[])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    batches = a.batch or [1]
    binaries = a.qtools or [".build/release/qtools"]
    labels = ["qtools" if len(binaries) == 1 else f"qtools[{i}]" for i in range(len(binaries))]
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    import onnxruntime as ort

    rows = []
    with tempfile.TemporaryDirectory() as d:
        for name in a.models.split(","):
            make, qargs = MODELS[name]
            model = randomize_bn_statistics(make().eval())
            onnx_path = os.path.join(d, name + ".onnx")
            torch.onnx.export(model, torch.randn(1, 3, 224, 224), onnx_path, dynamo=False, opset_version=13,
                              input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
            so = ort.SessionOptions()
            so.intra_op_num_threads = a.threads
            sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
            for batch in batches:
                feed = {"input": np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)}
                times = {"onnxruntime": [], **{l: [] for l in labels}}
                last = {}
                for _ in range(a.rounds):
                    times["onnxruntime"].append(timed(lambda: sess.run(None, feed), a.runs, a.warmup))
                    for b, l in zip(binaries, labels):
                        last[l] = qtools_bench(b, qargs, batch, a.runs, a.warmup, a.threads)
                        times[l].append(last[l]["median_ms"])
                ort_ms = statistics.median(times["onnxruntime"])
                line = f"{name} batch {batch}: onnxruntime {ort_ms:.2f} ms"
                for l in labels:
                    ratios = [q / o for q, o in zip(times[l], times["onnxruntime"])]
                    line += (f" | {l} {statistics.median(times[l]):.2f} ms, ratio median {statistics.median(ratios):.2f}"
                             f" (rounds {', '.join(f'{r:.2f}' for r in ratios)})")
                    rows.append({"model": name, "batch": batch, "binary": l, "ort_ms": times["onnxruntime"],
                                 "qtools_ms": times[l], "ratios": ratios,
                                 "peak_rss_mib": last[l].get("peak_rss_bytes", 0) / 2**20,
                                 "anchor_mib": last[l].get("memory_anchor_bytes", 0) / 2**20})
                print(line, flush=True)
                if a.profile:
                    prof = sorted(ort_profile(onnx_path, feed, a.threads, a.runs), key=lambda t: -t[2])
                    print(f"  onnxruntime per node (ms, top 25 of {len(prof)}, total {sum(p[2] for p in prof):.2f}):")
                    for n, op, ms in prof[:25]:
                        print(f"    {ms:7.3f}  {op:14s} {n}")
                    steps = sorted(last[labels[-1]]["step_ms"], key=lambda s: -s["ms"])
                    print(f"  {labels[-1]} per step (ms, top 25 of {len(steps)}, total {sum(s['ms'] for s in steps):.2f}):")
                    for s in steps[:25]:
                        print(f"    {s['ms']:7.3f}  {s['op']:14s} {s['node']}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
