#!/usr/bin/env python3
"""Checkpoint-reading benchmark: qtools against torch, measured in the same run.

Usage (after ./test.sh or scripts/setup.sh --python has built the virtualenv):
    ~/.cache/qtools-venv/bin/python Benchmarks/formats_bench.py [--qtools .build/release/qtools]
        [--runs 7] [--big-gb 4] [--workdir /tmp/qtools-bench]

It writes a ResNet-50-shaped checkpoint (~100 MB, torchvision key names, training-checkpoint
layout) and a large one (default 4 GB) into --workdir, then prints, for each anchor of issue 2:
  1. whole-process `qtools inspect` vs `python -c "import torch; torch.load(f); print keys"`
  2. `qtools inspect --stats` read throughput (GB/s, page cache warm) and the ratio against an
     in-process torch.load of the same file, beside the floor no reader can beat: reading the
     bytes once (numpy.fromfile, in-process) plus a qtools process's start-up (`--version`)
  3. peak RSS of `qtools inspect` listing the large checkpoint
Timings are medians of --runs whole-process runs. Nothing here is a test: numbers go into the README.
"""
import argparse, json, os, resource, statistics, subprocess, sys, time

import torch


from torch_resnets import resnet50


def median_seconds(cmd, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peak_rss_mb(cmd):
    """Peak resident set of one child process, in MiB (ru_maxrss of the waited child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    p = subprocess.run(["/usr/bin/env", "python3", "-c",
                        "import resource,subprocess,sys;subprocess.run(sys.argv[1:],check=True,"
                        "stdout=subprocess.DEVNULL);print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"]
                       + cmd, check=True, capture_output=True, text=True)
    return int(p.stdout.strip()) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qtools", default=".build/release/qtools")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--big-gb", type=float, default=4.0)
    ap.add_argument("--workdir", default="/tmp/qtools-bench")
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    torch.manual_seed(0)

    r50 = os.path.join(a.workdir, "resnet50-checkpoint.pth")
    if not os.path.exists(r50):
        m = resnet50()
        torch.save({"epoch": 89, "state_dict": m.state_dict(), "best_acc": 76.1, "learning_rate": 1e-4}, r50)
    size = os.path.getsize(r50)

    # 1. whole-process listing
    q = median_seconds([a.qtools, "inspect", r50], a.runs)
    py_cmd = [sys.executable, "-c",
              "import sys,torch;c=torch.load(sys.argv[1],weights_only=True);"
              "[print(k) for k in c['state_dict']]", r50]
    p = median_seconds(py_cmd, a.runs)

    # 2. reading every tensor
    qs = median_seconds([a.qtools, "inspect", "--stats", r50], a.runs)
    load_times = []
    for _ in range(a.runs):
        t = time.perf_counter(); torch.load(r50, weights_only=True); load_times.append(time.perf_counter() - t)
    tl = statistics.median(load_times)
    # The floor of any reader: the bytes read once into memory (numpy.fromfile, in-process) and
    # the start-up of a qtools process that does nothing (`--version`).
    import numpy as np
    floor_times = []
    for _ in range(a.runs):
        t = time.perf_counter(); np.fromfile(r50, dtype=np.uint8); floor_times.append(time.perf_counter() - t)
    floor = statistics.median(floor_times)
    startup = median_seconds([a.qtools, "--version"], a.runs)

    # 3. peak memory listing a large checkpoint
    big = os.path.join(a.workdir, f"big-{a.big_gb:g}gb.pth")
    if not os.path.exists(big):
        n = int(a.big_gb * (1 << 30) / 4 / 64)
        torch.save({f"w{i}": torch.zeros(n) for i in range(64)}, big)
    rss = peak_rss_mb([a.qtools, "inspect", big])

    rows = [
        ("inspect, whole process (ResNet-50, %.0f MB)" % (size / 1e6), "%.1f ms" % (q * 1e3),
         "python torch.load + print keys: %.0f ms" % (p * 1e3), "%.0fx (anchor >= 50x)" % (p / q)),
        ("inspect --stats, whole process", "%.1f ms = %.2f GB/s" % (qs * 1e3, size / qs / 1e9),
         "torch.load in-process: %.1f ms" % (tl * 1e3), "%.1fx (anchor >= 2x, >= 2 GB/s)" % (tl / qs)),
        ("  floor: read the bytes once (numpy.fromfile)", "%.1f ms" % (floor * 1e3),
         "qtools start-up (--version): %.1f ms" % (startup * 1e3),
         "best reachable: %.1fx" % (tl / (floor + startup))),
        ("inspect of a %.1f GB checkpoint" % (os.path.getsize(big) / 1e9), "peak RSS %.1f MiB" % rss,
         "anchor < 64 MB", "ok" if rss < 64 else "OVER"),
    ]
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))
    print(json.dumps({"inspect_ms": q * 1e3, "python_list_ms": p * 1e3, "ratio_list": p / q,
                      "stats_ms": qs * 1e3, "stats_gbps": size / qs / 1e9, "torch_load_ms": tl * 1e3,
                      "ratio_stats": tl / qs,
                      "read_floor_ms": floor * 1e3, "startup_ms": startup * 1e3, "big_bytes": os.path.getsize(big), "big_peak_rss_mib": rss,
                      "torch": torch.__version__, "cores": os.cpu_count()}, sort_keys=True))


if __name__ == "__main__":
    main()
