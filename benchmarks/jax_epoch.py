"""minigrad's MLP epoch against JAX's strongest form of the same job: the whole
epoch as one jitted ``lax.scan`` over the batches, and a jitted step called
from Python once per batch. One thread for everyone, flush-to-zero on for all
(JAX flushes denormals itself), medians of epochs alternated in one process.

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \\
        MINIGRAD_NUM_THREADS=1 taskset -c 1 python benchmarks/jax_epoch.py

Needs ``jax`` (not a minigrad dependency; install it in a separate venv with
minigrad). Same data, sizes, initialisation and hyperparameters as epochs.py:
60,000 MNIST digits, MLP 784-128-10, softmax cross-entropy, SGD momentum 0.9,
lr 0.05. The scan covers the full batches; a partial last batch is one more
jitted step, as in the other epochs.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import epochs  # noqa: E402
from harness import ftz  # noqa: E402


def jax_runners(x, y, batch_size, hidden=128, seed=0, lr=0.05, momentum=0.9):
    """(scan_epoch, stepped_epoch): callables training one epoch each."""
    import jax
    import jax.numpy as jnp

    params, velocity = epochs._mlp_params(x.shape[1], hidden, seed)
    state = [tuple(jnp.asarray(p) for p in params), tuple(jnp.asarray(v) for v in velocity)]
    xs, ys = jnp.asarray(x), jnp.asarray(y.astype(np.int32))
    order_rng = np.random.default_rng(seed)
    full = len(x) // batch_size * batch_size

    def loss_fn(p, xb, yb):
        w1, c1, w2, c2 = p
        h = jnp.maximum(xb @ w1.T + c1, 0)
        z = h @ w2.T + c2
        logp = jax.nn.log_softmax(z)
        return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

    def step(carry, batch):
        p, v = carry
        g = jax.grad(loss_fn)(p, *batch)
        v = tuple(momentum * vi + gi for vi, gi in zip(v, g, strict=True))
        p = tuple(pi - lr * vi for pi, vi in zip(p, v, strict=True))
        return (p, v), None

    jstep = jax.jit(lambda carry, xb, yb: step(carry, (xb, yb))[0])

    @jax.jit
    def scan_full(carry, idx):
        xb = xs[idx].reshape(-1, batch_size, xs.shape[1])
        yb = ys[idx].reshape(-1, batch_size)
        return jax.lax.scan(step, carry, (xb, yb))[0]

    def scan_epoch():
        order = jnp.asarray(order_rng.permutation(len(x)))
        carry = scan_full(tuple(state), order[:full])
        if full < len(x):
            rest = order[full:]
            carry = jstep(carry, xs[rest], ys[rest])
        jax.block_until_ready(carry)
        state[:] = carry

    def stepped_epoch():
        order = order_rng.permutation(len(x))
        carry = tuple(state)
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            carry = jstep(carry, xs[idx], ys[idx])
        jax.block_until_ready(carry)
        state[:] = carry

    return scan_epoch, stepped_epoch


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 64])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    import jax

    import minigrad
    from minigrad import _kernels

    x, y = epochs.epoch_data(60_000)
    x8, _ = epochs.epoch_data(60_000, as_bytes=True)  # minigrad's compiled Learner reads bytes
    peak = _kernels._peak_probe(0.5)
    floor = epochs.epoch_flops(len(x)) / (peak * 1e9)
    print(f"# jax {jax.__version__}, minigrad {minigrad.__version__}, minigrad threads "
          f"{minigrad.get_num_threads()}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; "
          f"FLOP floor at the measured {peak:.0f} GFLOP/s: {floor:.3f}s")
    for bs in args.batch_sizes:
        scan_epoch, stepped_epoch = jax_runners(x, y, bs)
        runners = {"minigrad": epochs.minigrad_epoch(x8, y, bs),
                   "mg_f32": epochs.minigrad_epoch(x, y, bs), "jax_scan": scan_epoch,
                   "jax_step": stepped_epoch}
        times = {k: [] for k in runners}
        with ftz(True):
            for f in runners.values():
                f()  # warm up (and compile)
            for _ in range(args.repeats):
                for k, f in runners.items():
                    start = time.perf_counter()
                    f()
                    times[k].append(time.perf_counter() - start)
        med = {k: float(np.median(v)) for k, v in times.items()}
        print(json.dumps({"batch_size": bs, **{f"{k}_s": round(v, 4) for k, v in med.items()},
                          "jax_scan/minigrad": round(med["jax_scan"] / med["minigrad"], 3),
                          "jax_step/minigrad": round(med["jax_step"] / med["minigrad"], 3),
                          "jax_scan/mg_f32": round(med["jax_scan"] / med["mg_f32"], 3),
                          "minigrad/floor": round(med["minigrad"] / floor, 2)}))


if __name__ == "__main__":
    main()
