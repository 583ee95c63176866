#!/usr/bin/env python3
"""Training throughput: PyTorch vs `qtools bench --train` on the same model, alternately (by hand).

Usage (from the repository root, after `swift build -c release --product qtools`):
    ~/.cache/qtools-venv/bin/python Benchmarks/train_bench.py --qtools .build/release/qtools \
        [--rounds 3] [--steps 6] [--batch 128] [--threads 2] [--cases fp,lsq2] [--exact]

The model is the classic CIFAR ResNet-20 at --width_alpha 0.25 (16-32-64 channels), full
precision (`fp`) or LSQ 2-bit (`lsq2`: dorefa,lsq --fm_bit 2 --wt_bit 2 --fm_quant_group 1
--wt_quant_group 1 --wt_adaptive var-mean). PyTorch runs Benchmarks/torch_train_bench.py (a copy
of ../shared/bench/torch_train_bench.py, the project's anchor); qtools runs
`qtools bench resnet20 --config Benchmarks/train-configs/<case>.txt --train --json` (random
weights, quantizers past calibration). Both time whole SGD steps (forward, cross entropy,
backward, Nesterov momentum step) on a random batch and report images per second; each
round runs both on every case, the order alternating between rounds, so that both see the
same machine load. Prints a line per run and, per case, the median ratio qtools / torch
(> 1: qtools is faster), and qtools' peak RSS against its memory bound.
"""
import argparse, json, os, statistics, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = {"fp": "resnet20_fp.txt", "lsq2": "resnet20_lsq_a2w2.txt"}


def run_torch(case, o):
    r = subprocess.run([sys.executable, os.path.join(HERE, "torch_train_bench.py"), "--cases", case,
                        "--steps", str(o.steps), "--batch", str(o.batch), "--threads", str(o.threads), "--json"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"torch bench failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_qtools(case, o):
    cmd = [o.qtools, "bench", "resnet20", "--config", os.path.join(HERE, "train-configs", CONFIGS[case]),
           "--train", "--batch", str(o.batch), "--threads", str(o.threads), "--runs", str(o.steps),
           "--warmup", "2", "--json"] + (["--exact"] if o.exact else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"qtools bench failed ({' '.join(cmd)}):\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qtools", default=".build/release/qtools")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cases", default="fp,lsq2")
    ap.add_argument("--exact", action="store_true", help="time qtools' exact (double GEMM) path")
    o = ap.parse_args()
    cases = o.cases.split(",")
    ratios = {c: [] for c in cases}
    for rnd in range(o.rounds):
        for case in cases:
            order = ["torch", "qtools"] if rnd % 2 == 0 else ["qtools", "torch"]
            got = {}
            for who in order:
                got[who] = run_torch(case, o) if who == "torch" else run_qtools(case, o)
            t, q = got["torch"]["images_per_second"], got["qtools"]["images_per_second"]
            ratios[case].append(q / t)
            m = got["qtools"]
            peak = m.get("peak_rss_bytes") or 0
            print(f"round {rnd + 1} {case:5s} torch {t:7.1f} img/s  qtools {q:7.1f} img/s  ratio {q / t:.2f}  "
                  f"(qtools fwd {m['forward_ms']:.0f} ms, bwd {m['backward_ms']:.0f} ms; peak RSS "
                  f"{peak / 2**20:.0f} MiB, bound {m['memory_bound_bytes'] / 2**20:.0f} MiB)", flush=True)
    for case in cases:
        print(f"{case}: median qtools / torch = {statistics.median(ratios[case]):.2f} "
              f"(runs: {', '.join(f'{r:.2f}' for r in ratios[case])})")


if __name__ == "__main__":
    main()
