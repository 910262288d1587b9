"""The convnet benchmark: minigrad's conv2d kernels, layer by layer (forward,
input gradient, weight gradient), against PyTorch CPU (oneDNN) and minigrad's
NumPy reference; batch norm with ReLU and max pooling at the same activations
against PyTorch; then a whole training epoch of the small convnet
(``minigrad.models.simple_cnn``) against the same network in PyTorch.

    python benchmarks/conv.py [--threads 1 2] [--repeats 7] [--images 2048]

Each thread count runs in its own process with PyTorch and NumPy limited to the
same number of threads; the two sides alternate sample by sample; medians.
``other/mg`` > 1 means minigrad is faster.
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# the convnet's three convolutions at batch 64: (C, O, H) with 3x3 kernels, padding 1
LAYERS = [(1, 32, 28), (32, 64, 14), (64, 128, 7)]


def conv_flops(n, c, o, h, k=3):
    return 2 * n * o * c * k * k * h * h


def _products(x, w, dy):
    """(minigrad, torch, NumPy reference) callables for each conv product."""
    import torch
    import torch.nn.grad as tgrad

    from minigrad import kernels as K
    from minigrad import reference as R

    tx, tw, tdy = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(dy)
    return {
        "forward": (lambda: K.conv2d(x, w, padding=1),
                    lambda: torch.nn.functional.conv2d(tx, tw, padding=1),
                    lambda: R.conv2d(x, w, padding=1)),
        "dx": (lambda: K.conv2d_backward_input(dy, w, x.shape, padding=1),
               lambda: tgrad.conv2d_input(tx.shape, tw, tdy, padding=1),
               lambda: R.conv2d_backward_input(dy, w, x.shape, padding=1)),
        "dW": (lambda: K.conv2d_backward_weight(x, dy, (3, 3), padding=1),
               lambda: tgrad.conv2d_weight(tx, tw.shape, tdy, padding=1),
               lambda: R.conv2d_backward_weight(x, dy, (3, 3), padding=1)),
    }


def layer_rows(batch, repeats, report):
    import torch
    from harness import measure_pair

    rng = np.random.default_rng(0)
    report(f"{'layer':<28} {'product':<8} {'minigrad':>10} {'torch':>10} {'numpy':>10} "
           f"{'mg GFLOP/s':>10} {'torch/mg':>8} {'np/mg':>7}")
    for c, o, h in LAYERS:
        x = rng.standard_normal((batch, c, h, h), dtype=np.float32)
        w = rng.standard_normal((o, c, 3, 3), dtype=np.float32) * 0.1
        dy = rng.standard_normal((batch, o, h, h), dtype=np.float32)
        flops = conv_flops(batch, c, o, h)
        for name, (f_mg, f_torch, f_np) in _products(x, w, dy).items():
            with torch.no_grad():
                t_mg, t_torch = measure_pair(f_mg, f_torch, repeats)
                _, t_np = measure_pair(f_mg, f_np, max(3, repeats // 3))
            report(f"{f'{batch}x{c}x{h}x{h} -> {o}':<28} {name:<8} {t_mg * 1e3:>8.3f}ms "
                   f"{t_torch * 1e3:>8.3f}ms {t_np * 1e3:>8.2f}ms {flops / t_mg / 1e9:>10.1f} "
                   f"{t_torch / t_mg:>8.2f} {t_np / t_mg:>7.1f}")


def _norm_pool_products(x):
    """(minigrad, torch) callables: batch norm + ReLU (training mode) and 2x2
    max pooling of its output, forward and backward."""
    import torch

    from minigrad import kernels as K

    c = x.shape[1]
    ones, zeros = np.ones(c, np.float32), np.zeros(c, np.float32)
    bn = dict(training=True, momentum=0.1, eps=1e-5, relu=True)
    y, mean, invstd = K.batch_norm(x, ones, zeros, zeros.copy(), ones.copy(), **bn)
    pool_y, idx = K.max_pool2d(y, 2, 2, 0, 1)
    tx = torch.from_numpy(x).requires_grad_()
    tbn = torch.nn.BatchNorm2d(c)
    ty = torch.relu(tbn(tx))
    tpy = torch.nn.functional.max_pool2d(ty, 2)
    return {
        "bn+relu fwd": (lambda: K.batch_norm(x, ones, zeros, zeros.copy(), ones.copy(), **bn),
                        lambda: torch.relu(tbn(tx.detach()))),
        "bn+relu bwd": (lambda: K.batch_norm_backward(x, x, ones, mean, invstd, training=True,
                                                      y=y),
                        lambda: torch.autograd.grad(ty, (tx,), tx.detach(), retain_graph=True)),
        "maxpool fwd": (lambda: K.max_pool2d(y, 2, 2, 0, 1),
                        lambda: torch.nn.functional.max_pool2d(ty.detach(), 2)),
        "maxpool bwd": (lambda: K.max_pool2d_backward(pool_y, idx, y.shape),
                        lambda: torch.autograd.grad(tpy, (ty,), tpy.detach(),
                                                    retain_graph=True)),
    }


def norm_pool_rows(batch, repeats, report):
    """Batch norm with its ReLU and 2x2 max pooling at the convnet's
    activation shapes, forward and backward, against PyTorch."""
    from harness import measure_pair

    rng = np.random.default_rng(0)
    report(f"{'activation':<28} {'op':<14} {'minigrad':>10} {'torch':>10} {'torch/mg':>8}")
    for _, c, h in LAYERS:
        x = rng.standard_normal((batch, c, h, h), dtype=np.float32)
        for name, (f_mg, f_torch) in _norm_pool_products(x).items():
            t_mg, t_torch = measure_pair(f_mg, f_torch, repeats)
            report(f"{f'{batch}x{c}x{h}x{h}':<28} {name:<14} {t_mg * 1e3:>8.3f}ms "
                   f"{t_torch * 1e3:>8.3f}ms {t_torch / t_mg:>8.2f}")


def epoch_pair(images, batch, repeats, report):
    """One epoch of simple_cnn (width 32) on random digits-shaped data: forward,
    cross-entropy, backward, SGD with momentum, in minigrad and in PyTorch."""
    import torch

    import minigrad as mg
    from minigrad import models

    rng = np.random.default_rng(0)
    x = rng.random((images, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, images)
    model = models.simple_cnn(rng=np.random.default_rng(0))
    opt = mg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    tmodel = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1, bias=False), torch.nn.BatchNorm2d(32),
        torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1, bias=False), torch.nn.BatchNorm2d(64),
        torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(64, 128, 3, padding=1, bias=False), torch.nn.BatchNorm2d(128),
        torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
        torch.nn.Linear(128, 10))
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.05, momentum=0.9)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def mg_epoch():
        for i in range(0, images, batch):
            loss = mg.nn.functional.cross_entropy(model(mg.tensor(x[i:i + batch])),
                                                  mg.tensor(y[i:i + batch]))
            loss.backward()
            opt.step()
            opt.zero_grad()

    def torch_epoch():
        for i in range(0, images, batch):
            loss = torch.nn.functional.cross_entropy(tmodel(tx[i:i + batch]), ty[i:i + batch])
            loss.backward()
            topt.step()
            topt.zero_grad()

    mg_epoch()
    torch_epoch()
    t_mg, t_torch = [], []
    for _ in range(repeats):
        for f, store in ((mg_epoch, t_mg), (torch_epoch, t_torch)):
            start = time.perf_counter()
            f()
            store.append(time.perf_counter() - start)
    flops = 3 * sum(conv_flops(images, c, o, h) for c, o, h in LAYERS)
    m, t = float(np.median(t_mg)), float(np.median(t_torch))
    report(f"epoch: simple_cnn width 32, {images} images, batch {batch}, SGD momentum: "
           f"minigrad {m:.3f}s, torch {t:.3f}s, torch/mg {t / m:.2f}; "
           f"conv GFLOP/s (3 products) minigrad {flops / m / 1e9:.1f}")


def child(threads, repeats, images):
    import torch
    from harness import machine_info

    import minigrad as mg

    mg.set_num_threads(threads)
    torch.set_num_threads(threads)
    info = machine_info()
    print(f"# threads={threads} cpu={info.get('cpu')} simd={mg.kernels.simd_path()} "
          f"torch={torch.__version__}", flush=True)
    layer_rows(64, repeats, lambda line: print(line, flush=True))
    norm_pool_rows(64, repeats, lambda line: print(line, flush=True))
    epoch_pair(images, 64, max(3, repeats // 2), lambda line: print(line, flush=True))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child, args.repeats, args.images)
        return
    for n in args.threads:
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(n), OMP_NUM_THREADS=str(n),
                   MKL_NUM_THREADS=str(n), MINIGRAD_NUM_THREADS=str(n))
        subprocess.run([sys.executable, __file__, "--child", str(n), "--repeats",
                        str(args.repeats), "--images", str(args.images)], env=env, check=True)


if __name__ == "__main__":
    main()
