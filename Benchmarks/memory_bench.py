#!/usr/bin/env python3
"""Peak memory of whole `qtools run` / `qtools bench` processes against the anchor of issue #3
(run by hand, not in tests).

Usage (from the repository root, after `swift build -c release --product qtools`):
    ~/.cache/qtools-venv/bin/python Benchmarks/memory_bench.py [--qtools .build/release/qtools] [--runs 5]

The anchor: peak RSS <= weights + 2 x largest activation set + 64 MiB, where weights are the
model's parameters as float32 and the largest activation set is the most activation bytes
live at one time for the run's input shape. qtools computes both from the model's graph and
plan and reports them in `qtools bench --json` (weight_bytes, largest_activation_bytes,
memory_anchor_bytes); this script takes them from there, never computes them itself.

Cases: torchvision-layout ResNet-18 and ResNet-50 (Benchmarks/torch_resnets.py, saved with
torch.save) at 224x224, batch 1 and 8, through `run` (batch 8: a float32 .npy input) and
`bench`, plus `bench pytorch-resnet18` / `pytorch-resnet50` (zoo names, random weights). The
peak RSS of each process is the kernel's (os.wait4's ru_maxrss, through a small launcher whose
own ~10 MB image is the floor); bench also reports its own (peak_rss_bytes, VmHWM read just
before printing).
"""
import argparse, json, os, subprocess, sys, tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_resnets import resnet18, resnet50

MIB = 1 << 20


# The child's peak RSS counts its image before exec, and a child forked from this process (torch
# loaded: ~300 MB) would start at this process's size. So a fresh, small python (-S, ~10 MB)
# forks and execs qtools, and reports the qtools process's ru_maxrss (KiB) from os.wait4.
WRAPPER = r"""
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write("\nPEAK_RSS_KIB %d\n" % usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measure(cmd):
    """(stdout text, peak RSS bytes) of one process."""
    r = subprocess.run([sys.executable, "-S", "-c", WRAPPER, *cmd], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed (exit {r.returncode}):\n{r.stderr[-2000:]}")
    kib = int(r.stderr.rsplit("PEAK_RSS_KIB", 1)[1])
    return r.stdout, kib * 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qtools", default=".build/release/qtools")
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each bench case")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    a = ap.parse_args()
    qtools = os.path.abspath(a.qtools)

    rows = []
    with tempfile.TemporaryDirectory() as d:
        models = {}
        for name, make in [("resnet18", resnet18), ("resnet50", resnet50)]:
            ckpt, cfg = os.path.join(d, f"{name}.pth"), os.path.join(d, f"{name}.cfg")
            torch.save(make().eval().state_dict(), ckpt)
            with open(cfg, "w") as f:
                f.write(f'model=pytorch-{name}\noptions="--dataset imagenet"\n')
            models[name] = (ckpt, cfg)
        x8 = os.path.join(d, "x8.npy")
        np.save(x8, np.random.RandomState(0).randn(8, 3, 224, 224).astype(np.float32))

        def anchor(model_args, batch):
            """The anchor parts qtools computes for this model and batch."""
            text, _ = measure([qtools, "bench", *model_args, "--batch", str(batch), "--runs", "1", "--warmup", "0", "--json"])
            return json.loads(text)

        bench = ["--runs", str(a.runs), "--warmup", "1", "--json"]
        for name, (ckpt, cfg) in models.items():
            margs = [ckpt, "--config", cfg]
            for batch in (1, 8):
                doc = anchor(margs, batch)
                run_cmd = [qtools, "run", *margs] + (["--input", x8] if batch == 8 else [])
                _, peak = measure(run_cmd)
                rows.append(dict(case=f"run {name} b{batch}", peak=peak, in_process=None, doc=doc))
                text, peak = measure([qtools, "bench", *margs, "--batch", str(batch), *bench])
                doc = json.loads(text)
                rows.append(dict(case=f"bench {name} b{batch}", peak=peak, in_process=doc.get("peak_rss_bytes"), doc=doc))
        for name in ("resnet18", "resnet50"):
            text, peak = measure([qtools, "bench", f"pytorch-{name}", *bench])
            doc = json.loads(text)
            rows.append(dict(case=f"bench pytorch-{name} (random)", peak=peak, in_process=doc.get("peak_rss_bytes"), doc=doc))

    for r in rows:
        doc = r.pop("doc")
        r.update(weight_bytes=doc["weight_bytes"], largest_activation_bytes=doc["largest_activation_bytes"],
                 anchor=doc["memory_anchor_bytes"], packed_weight_bytes=doc["packed_weight_bytes"],
                 arena_bytes=doc["arena_bytes"])
        r["ratio"] = r["peak"] / r["anchor"]
        r["met"] = r["peak"] <= r["anchor"]
    if a.json:
        print(json.dumps(rows, indent=1))
        return
    print("peak RSS of the whole process vs anchor = weights + 2 x largest activation set + 64 MiB (MiB)")
    print(f"{'case':32s} {'peak':>7s} {'(bench)':>8s} {'anchor':>7s} {'ratio':>6s}  met   "
          f"{'weights':>7s} {'act.set':>7s} {'packed':>7s} {'arena':>7s}")
    for r in rows:
        inproc = f"{r['in_process'] / MIB:8.1f}" if r["in_process"] else f"{'':8s}"
        print(f"{r['case']:32s} {r['peak'] / MIB:7.1f} {inproc} {r['anchor'] / MIB:7.1f} {r['ratio']:6.2f}  "
              f"{'yes' if r['met'] else 'NO ':4s}  {r['weight_bytes'] / MIB:7.1f} "
              f"{r['largest_activation_bytes'] / MIB:7.1f} {r['packed_weight_bytes'] / MIB:7.1f} {r['arena_bytes'] / MIB:7.1f}")
    if not all(r["met"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
