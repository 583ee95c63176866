#!/usr/bin/env python3
"""ResNet-18 fp32 latency: onnxruntime vs torch vs the qtools engine (run by hand, not in tests).

Usage (from the repository root, after `swift build -c release`):
    ~/.cache/qtools-venv/bin/python Benchmarks/engine_bench.py --qtools .build/release/qtools [--runs 30]
    ... --qtools OLD/qtools --qtools NEW/qtools   # A/B: both binaries interleaved in the same rounds
    ~/.cache/qtools-venv/bin/python Benchmarks/engine_bench.py [--runs 30] [--threads 2] [--no-qtools]

With --qtools the shipped command is timed: the torch weights are saved with torch.save and
run through `qtools verify` (logits vs torch) and `qtools bench CKPT --config CFG --json`.

It builds torchvision's ResNet-18 layout (BasicBlock, 1x1 downsample; torchvision itself
is not needed), exports it with torch.onnx.export(dynamo=False, opset_version=13), times
onnxruntime (intra-op threads = --threads, otherwise default session options) and torch
(torch.set_num_threads(--threads)) at 1x3x224x224, then times qtools' engine on the SAME
weights: the state dict is written as raw little-endian float32 files plus an index, and
the Swift bench executable (Benchmarks/EngineBench, a separate package depending on "..")
loads them, checks its logits against torch's, and reports its own timings as JSON.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

import numpy as np
import torch


from torch_resnets import resnet18, randomize_bn_statistics


def timed(fn, runs, warmup):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000)
    return statistics.median(ts), min(ts), max(ts)


def swift_flags():
    return ["-c", "release", "-Xswiftc", "-enable-testing", "-Xswiftc", "-target-cpu", "-Xswiftc", "native"]


def run_qtools(repo, wdir, runs, warmup, threads):
    env = dict(os.environ, QTOOLS_ENGINE_BENCH_DIR=wdir, QTOOLS_BENCH_RUNS=str(runs),
               QTOOLS_BENCH_WARMUP=str(warmup), QTOOLS_BENCH_THREADS=str(threads))
    r = subprocess.run(["swift", "test", *swift_flags(), "--skip-build", "--filter",
                        "resnet18OnTorchWeights"], cwd=repo, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("qtools bench entry failed:\n" + r.stdout[-3000:] + r.stderr[-3000:])
    with open(os.path.join(wdir, "result.json")) as f:
        return json.load(f)


def run_qtools_cli(binary, wdir, runs, warmup, threads):
    """Times the shipped command: `qtools bench CKPT --config CFG` on the same weights."""
    ckpt, cfg = os.path.join(wdir, "resnet18.pth"), os.path.join(wdir, "config.txt")
    r = subprocess.run([binary, "bench", ckpt, "--config", cfg, "--runs", str(runs), "--warmup", str(warmup),
                        "--threads", str(threads), "--size", "224", "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("qtools bench failed:\n" + r.stderr[-3000:])
    q = json.loads(r.stdout)
    return q


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qtools", action="append", default=[],
                    help="time this qtools binary (`qtools bench`) instead of the test-entry build; "
                         "repeat to compare binaries in the same rounds")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-qtools", action="store_true")
    a = ap.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    torch.manual_seed(0)
    model = randomize_bn_statistics(resnet18().eval())
    x = torch.randn(1, 3, 224, 224)
    torch.set_num_threads(a.threads)
    with torch.no_grad():
        ref = model(x)

    import onnxruntime as ort
    labels = {b: ("qtools" if len(a.qtools) <= 1 else f"qtools[{i}]") for i, b in enumerate(a.qtools)}
    rounds = {"onnxruntime": [], "torch": [], **{l: [] for l in labels.values()}}
    if not a.qtools and not a.no_qtools:
        rounds["qtools"] = []
    with tempfile.TemporaryDirectory() as d:
        onnx_path = os.path.join(d, "resnet18.onnx")
        torch.onnx.export(model, x, onnx_path, dynamo=False, opset_version=13,
                          input_names=["input"], output_names=["logits"])
        so = ort.SessionOptions()
        so.intra_op_num_threads = a.threads
        sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
        feed = {"input": x.numpy()}
        out = sess.run(None, feed)[0]
        print(f"onnxruntime max|diff| vs torch: {np.abs(out - ref.numpy()).max():.2e}")

        wdir = os.path.join(d, "weights")
        if a.qtools:
            os.makedirs(wdir)
            torch.save(model.state_dict(), os.path.join(wdir, "resnet18.pth"))
            with open(os.path.join(wdir, "config.txt"), "w") as f:
                f.write("model='pytorch-resnet18'\ndataset='imagenet'\nkeyword='imagenet'\n")
            np.save(os.path.join(wdir, "x.npy"), x.numpy())
            np.save(os.path.join(wdir, "ref.npy"), ref.numpy())
            for b, label in labels.items():
                v = subprocess.run([b, "verify", os.path.join(wdir, "resnet18.pth"), "--config",
                                    os.path.join(wdir, "config.txt"), "--input", os.path.join(wdir, "x.npy"),
                                    "--expect", os.path.join(wdir, "ref.npy"), "--json"], capture_output=True, text=True)
                print("%s (%s) verify vs torch: exit %d %s" % (label, b, v.returncode, v.stdout.replace("\n", " ")[:300]))
        elif not a.no_qtools:
            os.makedirs(wdir)
            index = []
            for k, v in model.state_dict().items():
                if v.dtype != torch.float32:
                    continue
                fn = k + ".f32"
                v.contiguous().numpy().astype("<f4").tofile(os.path.join(wdir, fn))
                index.append({"name": k, "shape": list(v.shape), "file": fn})
            x.numpy().astype("<f4").tofile(os.path.join(wdir, "input.f32"))
            ref.numpy().astype("<f4").tofile(os.path.join(wdir, "expected.f32"))
            with open(os.path.join(wdir, "index.json"), "w") as f:
                json.dump(index, f)
            subprocess.run(["swift", "build", *swift_flags(), "--build-tests"], cwd=repo, check=True,
                           stdout=subprocess.DEVNULL)

        q = None
        for _ in range(a.rounds):
            rounds["onnxruntime"].append(timed(lambda: sess.run(None, feed), a.runs, a.warmup))
            with torch.no_grad():
                rounds["torch"].append(timed(lambda: model(x), a.runs, a.warmup))
            for b, label in labels.items():
                q = run_qtools_cli(b, wdir, a.runs, a.warmup, a.threads)
                rounds[label].append((q["median_ms"], q["min_ms"], q["max_ms"]))
            if not a.qtools and not a.no_qtools:
                q = run_qtools(repo, wdir, a.runs, a.warmup, a.threads)
                rounds["qtools"].append((q["medianMs"], q["minMs"], q["maxMs"]))
        if q is not None and not a.qtools:
            print(f"qtools max|diff| vs torch: {q['maxAbsDiff']:.2e}")
            shares = sorted(q["shares"].items(), key=lambda kv: -kv[1])
            print("qtools per-op shares (last round): " + ", ".join(f"{k} {100*v:.1f}%" for k, v in shares))
            print(f"qtools arena {q['arenaBytes']/2**20:.1f} MiB, weights {q['packedWeightBytes']/2**20:.1f} MiB, {q['steps']} steps")

    results = {k: (statistics.median(r[0] for r in v), min(r[1] for r in v)) for k, v in rounds.items() if v}
    print(f"\nResNet-18 fp32, 1x3x224x224, {a.threads} threads, {a.rounds} rounds x {a.runs} runs")
    print("  (ms: median of round medians / overall min)")
    for k, (med, lo) in results.items():
        print(f"  {k:12s} {med:8.2f} {lo:8.2f}")
    base_med, base_min = results["onnxruntime"]
    for k, (med, lo) in results.items():
        print(f"  {k:12s} / onnxruntime = {med / base_med:.3f} (median), {lo / base_min:.3f} (min)")


if __name__ == "__main__":
    main()
