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

--epoch also times the whole program, `qtools train CONFIG --dataset cifar10` on a generated
CIFAR-10 binary folder (--images training images, random pixels and labels; 128 test images),
2 epochs from the default initialisation: the second epoch's training images per second
(data loading and augmentation on the loader threads included, evaluation excluded), against
the core's `bench --train` rate and torch's in the same round (issue 17: >= 0.9x the core,
>= 1x torch).
"""
import argparse, json, os, random, shutil, statistics, subprocess, sys, tempfile

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


def make_cifar(root, images):
    """A CIFAR-10 binary folder: data_batch_1..5.bin (images split evenly) and test_batch.bin."""
    folder = os.path.join(root, "cifar-10-batches-bin")
    os.makedirs(folder, exist_ok=True)
    rng = random.Random(1)
    def write(name, n):
        with open(os.path.join(folder, name), "wb") as f:
            for _ in range(n):
                f.write(bytes([rng.randrange(10)]) + rng.randbytes(3072))
    per = images // 5
    for b in range(1, 6):
        write(f"data_batch_{b}.bin", per)
    write("test_batch.bin", 128)


def run_epoch(case, o, root):
    """The second epoch of `qtools train` on the generated folder: training images per second."""
    out = os.path.join(root, "run")
    shutil.rmtree(out, ignore_errors=True)
    cmd = [o.qtools, "train", os.path.join(HERE, "train-configs", CONFIGS[case]), "--dataset", "cifar10",
           "--root", root, "--epochs", "2", "--batch_size", str(o.batch), "--val_batch_size", "128",
           "--threads", str(o.threads), "--weights_dir", out, "--log_dir", out, "--json", "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"qtools train failed ({' '.join(cmd)}):\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    records = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    return records[-1]["train_images_per_second"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qtools", default=".build/release/qtools")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cases", default="fp,lsq2")
    ap.add_argument("--exact", action="store_true", help="time qtools' exact (double GEMM) path")
    ap.add_argument("--epoch", action="store_true", help="also time qtools train end to end on CIFAR-shaped data")
    ap.add_argument("--images", type=int, default=1280, help="training images of the generated set (--epoch)")
    o = ap.parse_args()
    cases = o.cases.split(",")
    ratios = {c: [] for c in cases}
    epoch_core = {c: [] for c in cases}
    epoch_torch = {c: [] for c in cases}
    root = tempfile.mkdtemp(prefix="qtools-train-bench-")
    if o.epoch:
        make_cifar(root, o.images)
    for rnd in range(o.rounds):
        for case in cases:
            order = ["torch", "qtools"] if rnd % 2 == 0 else ["qtools", "torch"]
            got = {}
            if o.epoch:
                order.insert(1, "epoch")
            for who in order:
                if who == "epoch":
                    got[who] = run_epoch(case, o, root)
                else:
                    got[who] = run_torch(case, o) if who == "torch" else run_qtools(case, o)
            t, q = got["torch"]["images_per_second"], got["qtools"]["images_per_second"]
            ratios[case].append(q / t)
            if o.epoch:
                e = got["epoch"]
                epoch_core[case].append(e / q)
                epoch_torch[case].append(e / t)
                print(f"round {rnd + 1} {case:5s} qtools train epoch {e:7.1f} img/s: {e / q:.2f}x the core, "
                      f"{e / t:.2f}x torch", flush=True)
            m = got["qtools"]
            peak = m.get("peak_rss_bytes") or 0
            print(f"round {rnd + 1} {case:5s} torch {t:7.1f} img/s  qtools {q:7.1f} img/s  ratio {q / t:.2f}  "
                  f"(qtools fwd {m['forward_ms']:.0f} ms, bwd {m['backward_ms']:.0f} ms; peak RSS "
                  f"{peak / 2**20:.0f} MiB, bound {m['memory_bound_bytes'] / 2**20:.0f} MiB)", flush=True)
    for case in cases:
        print(f"{case}: median qtools / torch = {statistics.median(ratios[case]):.2f} "
              f"(runs: {', '.join(f'{r:.2f}' for r in ratios[case])})")
        if o.epoch:
            print(f"{case}: epoch / core = {statistics.median(epoch_core[case]):.2f}, "
                  f"epoch / torch = {statistics.median(epoch_torch[case]):.2f} "
                  f"(runs: {', '.join(f'{r:.2f}' for r in epoch_torch[case])})")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
