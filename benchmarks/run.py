"""The full benchmark suite: every kernel, then whole training epochs, against
NumPy (and PyTorch when importable), with 1 and 2 threads.

    python benchmarks/run.py [--threads 1 2] [--repeats 15] [--out bench-results]

The harness (harness.py), the case catalogue (cases.py) and the epochs
(epochs.py) live beside this script, outside the installed package.

Each thread count runs in its own process, with NumPy's BLAS limited to the
same number of threads, so both libraries get the same cores. Writes
<out>/results.json, <out>/table.txt and, with matplotlib, <out>/ratios.png.
"""
import argparse
import json
import os
import subprocess
import sys


def child(threads, repeats, quick):
    import cases
    import epochs
    import harness

    import minigrad

    minigrad.set_num_threads(threads)
    lines = []

    def report(line):
        print(line, flush=True)
        lines.append(line)

    info = harness.machine_info()
    report(f"# threads={threads} " + json.dumps(info))
    limits = info["limits"]
    report(f"# measured on one core: fp32 FMA peak {limits['GFLOP/s']:.1f} GFLOP/s, "
           f"copy bandwidth {limits['GB/s']:.1f} GB/s; np/mg: NumPy as is, ftz: NumPy with "
           f"flush-to-zero; %lim: minigrad's rate as a percentage of the limit of its unit "
           f"(GFLOP/s: {threads} x the one-core peak; GB/s: one core's copy bandwidth)")
    team = {"GFLOP/s": limits["GFLOP/s"] * threads, "GB/s": limits["GB/s"]}
    kernels = (cases.quick_suite if quick else cases.full_kernel_suite)(repeats, report, team)
    epoch_rows = epochs.epoch_suite(report=report, quick=quick, peak=limits["GFLOP/s"])
    return {"threads": threads, "machine": info, "kernels": kernels, "epochs": epoch_rows,
            "table": lines}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="the short suite")
    ap.add_argument("--out", default="bench-results")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child is not None:
        with open(os.environ["MINIGRAD_BENCH_OUT"], "w") as f:
            json.dump(child(args.child, args.repeats, args.quick), f)
        return

    os.makedirs(args.out, exist_ok=True)
    runs = []
    for n in args.threads:
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(n), OMP_NUM_THREADS=str(n),
                   MKL_NUM_THREADS=str(n), MINIGRAD_NUM_THREADS=str(n),
                   MINIGRAD_BENCH_OUT=os.path.join(args.out, f"threads{n}.json"))
        # more threads: each sample is preceded by a 0.1 s warm-up (harness._settle)
        repeats = args.repeats if n == 1 else max(3, args.repeats // 3)
        cmd = [sys.executable, __file__, "--child", str(n), "--repeats", str(repeats)]
        if args.quick:
            cmd.append("--quick")
        subprocess.run(cmd, env=env, check=True)
        with open(env["MINIGRAD_BENCH_OUT"]) as f:
            runs.append(json.load(f))
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(runs, f, indent=2)
    with open(os.path.join(args.out, "table.txt"), "w") as f:
        for run in runs:
            f.write("\n".join(run["table"]) + "\n\n")
    plot(runs, os.path.join(args.out, "ratios.png"))
    print(f"wrote {args.out}/results.json and table.txt")


def plot(runs, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no chart (pip install matplotlib)")
        return
    fig, ax = plt.subplots(figsize=(10, 0.25 * len(runs[0]["kernels"]) + 1.5))
    height = 0.8 / len(runs)
    for i, run in enumerate(runs):
        names = [f"{r['kernel']} {r['shape']}" for r in run["kernels"]]
        ratios = [r["ratio"] for r in run["kernels"]]
        ax.barh([j + i * height for j in range(len(names))], ratios, height=height,
                label=f"{run['threads']} thread(s)")
    ax.set_yticks([j + 0.4 - height / 2 for j in range(len(names))], names, fontsize=7)
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("NumPy time / minigrad time (>1: minigrad faster)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
