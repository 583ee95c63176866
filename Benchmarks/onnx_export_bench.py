#!/usr/bin/env python3
"""ResNet-50 ONNX export time: `qtools convert` (whole process) vs torch.onnx.export (run by hand).

Usage (from the repository root, after `swift build -c release --product qtools`):
    ~/.cache/qtools-venv/bin/python Benchmarks/onnx_export_bench.py [--qtools .build/release/qtools] [--runs 5]

It builds torchvision's ResNet-50 layout (Bottleneck, 1x1 downsample, torchvision's module
names; torchvision itself is not needed) with non-trivial BatchNorm statistics, saves the
state dict with torch.save and writes a QTool config (model='pytorch-resnet50',
dataset='imagenet', keyword='imagenet'). Then, in one run, it times
  * qtools: the whole process `qtools convert CKPT --config CFG -o out.onnx --force`
    (median of --runs, after one warm-up run that also warms the page cache), and
  * torch:  `torch.onnx.export(model, x, path, dynamo=False, opset_version=13)` in-process
    (median of --runs, after one warm-up export),
prints both and the ratio, and runs the qtools file with onnxruntime, reporting the max abs
difference of its logits from torch's.
"""
import argparse, os, statistics, subprocess, sys, tempfile, time, warnings

import numpy as np
import torch


from torch_resnets import resnet50, randomize_bn_statistics


def median_time(fn, runs):
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts), max(ts)


def main():
    ap = argparse.ArgumentParser()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--qtools", default=os.path.join(repo, ".build", "release", "qtools"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the legacy exporter's notice
    if not os.access(a.qtools, os.X_OK):
        sys.exit(f"{a.qtools}: not an executable (swift build -c release --product qtools)")

    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    model = randomize_bn_statistics(resnet50().eval())
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        ref = model(x).numpy()
    nparams = sum(p.numel() for p in model.state_dict().values())

    import onnxruntime as ort
    with tempfile.TemporaryDirectory() as d:
        ckpt, cfg = os.path.join(d, "resnet50.pth"), os.path.join(d, "config.txt")
        q_out, t_out = os.path.join(d, "qtools.onnx"), os.path.join(d, "torch.onnx")
        torch.save(model.state_dict(), ckpt)
        with open(cfg, "w") as f:
            f.write("model='pytorch-resnet50'\ndataset='imagenet'\nkeyword='imagenet'\n")
        cmd = [a.qtools, "convert", ckpt, "--config", cfg, "-o", q_out, "--force"]

        def run_qtools():
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"qtools convert failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
            return r.stdout

        def run_torch():
            torch.onnx.export(model, x, t_out, dynamo=False, opset_version=13)

        print(run_qtools().strip())  # warm-up (page cache, dynamic loader)
        run_torch()
        q_med, q_min, q_max = median_time(run_qtools, a.runs)
        t_med, t_min, t_max = median_time(run_torch, a.runs)

        sess = ort.InferenceSession(q_out, providers=["CPUExecutionProvider"])
        out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
        diff = float(np.abs(out - ref).max())
        q_size, t_size = os.path.getsize(q_out), os.path.getsize(t_out)

    print(f"\nResNet-50 ({nparams / 1e6:.1f} M state-dict values) to ONNX, {a.runs} runs each (s)")
    print(f"  {'':28s} {'median':>8s} {'min':>8s} {'max':>8s}  file")
    print(f"  {'qtools convert (process)':28s} {q_med:8.3f} {q_min:8.3f} {q_max:8.3f}  {q_size / 2**20:.1f} MiB")
    print(f"  {'torch.onnx.export':28s} {t_med:8.3f} {t_min:8.3f} {t_max:8.3f}  {t_size / 2**20:.1f} MiB")
    print(f"  qtools / torch = {q_med / t_med:.3f} (median), {q_min / t_min:.3f} (min)")
    print(f"  onnxruntime on the qtools file: max|diff| vs torch logits = {diff:.2e}")
    try:
        print("  load average:", " ".join(f"{v:.2f}" for v in os.getloadavg()))
    except OSError:
        pass


if __name__ == "__main__":
    main()
