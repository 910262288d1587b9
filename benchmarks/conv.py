"""The convnet benchmark: minigrad's conv2d kernels, layer by layer (forward,
input gradient, weight gradient), against PyTorch CPU (oneDNN) and minigrad's
NumPy reference; batch norm with ReLU and max pooling at the same activations
against PyTorch; then a whole training epoch of the small convnet
(``minigrad.models.simple_cnn``) against the same network in PyTorch; then
ResNet-18 (width 64, 1x28x28 digits, as ``minigrad train --arch resnet``): its
convolutions' three products shape by shape, and a training epoch, against
PyTorch (``--resnet-images 0`` skips the epoch).

    python benchmarks/conv.py [--threads 1 2] [--repeats 7] [--images 2048]
                              [--resnet-images 256]

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
# ResNet-18's convolutions on 1x28x28 digits: (name, C, O, kernel, stride, padding, H, how many)
RESNET_LAYERS = [("conv1", 1, 64, 7, 2, 3, 28, 1), ("layer1", 64, 64, 3, 1, 1, 7, 4),
                 ("layer2.0", 64, 128, 3, 2, 1, 7, 1), ("layer2 1x1", 64, 128, 1, 2, 0, 7, 1),
                 ("layer2", 128, 128, 3, 1, 1, 4, 3), ("layer3.0", 128, 256, 3, 2, 1, 4, 1),
                 ("layer3 1x1", 128, 256, 1, 2, 0, 4, 1), ("layer3", 256, 256, 3, 1, 1, 2, 3),
                 ("layer4.0", 256, 512, 3, 2, 1, 2, 1), ("layer4 1x1", 256, 512, 1, 2, 0, 2, 1),
                 ("layer4", 512, 512, 3, 1, 1, 1, 3)]


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


def _norm_products(x):
    """(minigrad, torch) callables of batch norm + ReLU in training mode,
    forward and backward; with its output, minigrad's and torch's."""
    import torch

    from minigrad import kernels as K

    c = x.shape[1]
    ones, zeros = np.ones(c, np.float32), np.zeros(c, np.float32)
    bn = dict(training=True, momentum=0.1, eps=1e-5, relu=True)
    y, mean, invstd = K.batch_norm(x, ones, zeros, zeros.copy(), ones.copy(), **bn)
    tx = torch.from_numpy(x).requires_grad_()
    tbn = torch.nn.BatchNorm2d(c)
    ty = torch.relu(tbn(tx))
    return {
        "bn+relu fwd": (lambda: K.batch_norm(x, ones, zeros, zeros.copy(), ones.copy(), **bn),
                        lambda: torch.relu(tbn(tx.detach()))),
        "bn+relu bwd": (lambda: K.batch_norm_backward(x, x, ones, mean, invstd, training=True,
                                                      y=y),
                        lambda: torch.autograd.grad(ty, (tx,), tx.detach(), retain_graph=True)),
    }, y, ty


def _norm_pool_products(x):
    """(minigrad, torch) callables: batch norm + ReLU (training mode) and 2x2
    max pooling of its output, forward and backward."""
    import torch

    from minigrad import kernels as K

    products, y, ty = _norm_products(x)
    pool_y, idx = K.max_pool2d(y, 2, 2, 0, 1)
    tpy = torch.nn.functional.max_pool2d(ty, 2)
    return {
        **products,
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


def resnet_norm_pool_rows(batch, repeats, report):
    """ResNet-18's stem max pool (3x3, stride 2, padding 1, with indices as its
    backward needs) and its batch norms on the small maps, against PyTorch."""
    import torch
    from harness import measure_pair

    from minigrad import kernels as K

    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 64, 14, 14), dtype=np.float32)
    tx = torch.from_numpy(x)
    t_mg, t_torch = measure_pair(
        lambda: K.max_pool2d(x, 3, 2, 1, 1),
        lambda: torch.nn.functional.max_pool2d(tx, 3, 2, 1, return_indices=True), repeats)
    report(f"{'resnet18 max pool 3x3/2 pad 1':<28} {f'{batch}x64x14x14':<14} "
           f"{t_mg * 1e3:>8.3f}ms {t_torch * 1e3:>8.3f}ms {t_torch / t_mg:>8.2f}")
    for c, h in ((128, 4), (256, 2), (512, 1)):
        x = rng.standard_normal((batch, c, h, h), dtype=np.float32)
        for name, (f_mg, f_torch) in _norm_products(x)[0].items():
            t_mg, t_torch = measure_pair(f_mg, f_torch, repeats)
            report(f"{f'resnet18 {batch}x{c}x{h}x{h}':<28} {name:<14} "
                   f"{t_mg * 1e3:>8.3f}ms {t_torch * 1e3:>8.3f}ms {t_torch / t_mg:>8.2f}")


def _epoch_times(x, y, batch, mg_pair, torch_pair, repeats):
    """Median seconds of a training epoch (cross-entropy, backward, step) of a
    minigrad (model, optimizer) and a PyTorch one on the same data, alternated
    after one untimed epoch each."""
    import torch

    import minigrad as mg

    (model, opt), (tmodel, topt) = mg_pair, torch_pair
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def mg_epoch():
        for i in range(0, len(x), batch):
            loss = mg.nn.functional.cross_entropy(model(mg.tensor(x[i:i + batch])),
                                                  mg.tensor(y[i:i + batch]))
            loss.backward()
            opt.step()
            opt.zero_grad()

    def torch_epoch():
        for i in range(0, len(x), batch):
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
    return t_mg, t_torch


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
    t_mg, t_torch = _epoch_times(x, y, batch, (model, opt), (tmodel, topt), repeats)
    flops = 3 * sum(conv_flops(images, c, o, h) for c, o, h in LAYERS)
    m, t = float(np.median(t_mg)), float(np.median(t_torch))
    report(f"epoch: simple_cnn width 32, {images} images, batch {batch}, SGD momentum: "
           f"minigrad {m:.3f}s, torch {t:.3f}s, torch/mg {t / m:.2f}; "
           f"conv GFLOP/s (3 products) minigrad {flops / m / 1e9:.1f}")


def _three_products(x, w, dy, stride, padding):
    """Callables making a convolution's forward, input and weight gradients:
    (minigrad, torch)."""
    import torch
    import torch.nn.grad as tgrad

    from minigrad import kernels as K

    tx, tw, tdy = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(dy)
    geo = dict(stride=stride, padding=padding)

    def f_mg():
        K.conv2d(x, w, **geo)
        K.conv2d_backward_input(dy, w, x.shape, **geo)
        K.conv2d_backward_weight(x, dy, w.shape[2:], **geo)

    def f_torch():
        torch.nn.functional.conv2d(tx, tw, **geo)
        tgrad.conv2d_input(tx.shape, tw, tdy, **geo)
        tgrad.conv2d_weight(tx, tw.shape, tdy, **geo)
    return f_mg, f_torch


def resnet_rows(batch, repeats, report):
    """ResNet-18's convolutions, shape by shape: forward, input and weight
    gradients summed, times how often the network has the shape, against
    PyTorch; and the total a batch."""
    import torch
    from harness import measure_pair

    from minigrad import kernels as K

    rng = np.random.default_rng(0)
    report(f"{'resnet18 conv (batch ' + str(batch) + ')':<40} {'minigrad':>10} {'torch':>10} "
           f"{'torch/mg':>8}")
    total_mg = total_torch = 0.0
    for name, c, o, k, s, p, h, count in RESNET_LAYERS:
        x = rng.standard_normal((batch, c, h, h), dtype=np.float32)
        w = rng.standard_normal((o, c, k, k), dtype=np.float32) * 0.1
        dy = rng.standard_normal(K.conv2d(x, w, stride=s, padding=p).shape, dtype=np.float32)
        with torch.no_grad():
            t_mg, t_torch = measure_pair(*_three_products(x, w, dy, s, p), repeats)
        total_mg += count * t_mg
        total_torch += count * t_torch
        label = f"{name} x{count}: {c}x{h}x{h} -> {o}, {k}x{k}/{s}"
        report(f"{label:<40} {t_mg * 1e3:>8.3f}ms {t_torch * 1e3:>8.3f}ms "
               f"{t_torch / t_mg:>8.2f}")
    report(f"{'all convolutions of a batch':<40} {total_mg * 1e3:>8.1f}ms "
           f"{total_torch * 1e3:>8.1f}ms {total_torch / total_mg:>8.2f}")


def resnet_epoch_pair(images, batch, repeats, report):
    """One training epoch of ResNet-18 (width 64, 1 channel in, 10 classes;
    batch norm in training mode, SGD with momentum) on random digits-shaped
    data, minigrad against the same network in PyTorch."""
    import torch

    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
    import torch_models

    import minigrad as mg
    from minigrad import models

    rng = np.random.default_rng(0)
    x = rng.random((images, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, images)
    model = models.resnet18(10, 1, 64, rng=np.random.default_rng(0))
    opt = mg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    tmodel = torch_models.ResNet([2, 2, 2, 2], 10, 1, 64)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.05, momentum=0.9)
    t_mg, t_torch = _epoch_times(x, y, batch, (model, opt), (tmodel, topt), repeats)
    m, t = float(np.median(t_mg)), float(np.median(t_torch))
    report(f"epoch: resnet18 width 64, {images} images, batch {batch}, SGD momentum: "
           f"minigrad {m:.3f}s, torch {t:.3f}s, torch/mg {t / m:.2f}")


def child(threads, repeats, images, resnet_images):
    import minigrad as mg

    # minigrad before torch: a source build shares torch's libgomp.so.1, which
    # reads GOMP_SPINCOUNT when it loads (kernels.environment_problems)
    mg.set_num_threads(threads)
    import torch
    from harness import machine_info

    torch.set_num_threads(threads)
    info = machine_info()
    print(f"# threads={threads} cpu={info.get('cpu')} simd={mg.kernels.simd_path()} "
          f"torch={torch.__version__}", flush=True)
    layer_rows(64, repeats, lambda line: print(line, flush=True))
    norm_pool_rows(64, repeats, lambda line: print(line, flush=True))
    epoch_pair(images, 64, max(3, repeats // 2), lambda line: print(line, flush=True))
    resnet_rows(64, repeats, lambda line: print(line, flush=True))
    resnet_norm_pool_rows(64, repeats, lambda line: print(line, flush=True))
    if resnet_images:
        resnet_epoch_pair(resnet_images, 64, max(3, repeats // 2),
                          lambda line: print(line, flush=True))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--resnet-images", type=int, default=256)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child, args.repeats, args.images, args.resnet_images)
        return
    for n in args.threads:
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(n), OMP_NUM_THREADS=str(n),
                   MKL_NUM_THREADS=str(n), MINIGRAD_NUM_THREADS=str(n))
        subprocess.run([sys.executable, __file__, "--child", str(n), "--repeats",
                        str(args.repeats), "--images", str(args.images), "--resnet-images",
                        str(args.resnet_images)], env=env, check=True)


if __name__ == "__main__":
    main()
