"""The case catalogue: matmul shapes (squares and the chapter's products),
elementwise kernels and softmax cross-entropy, each against its NumPy
reference (minigrad.reference, the test oracle)."""
import numpy as np
from harness import HEADER, run_cases

from minigrad import kernels as K
from minigrad import reference as R


def _matmul_cases(sizes, dtype=np.float32):
    rng = np.random.default_rng(0)
    for label, (m, k, n), ta, tb in sizes:
        a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
        b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
        out = np.empty((m, n), dtype)
        yield (f"matmul {label}", f"{m}x{k}x{n}", 2.0 * m * n * k, "GFLOP/s",
               lambda a=a, b=b, out=out, ta=ta, tb=tb:
                   K.matmul(a, b, trans_a=ta, trans_b=tb, out=out),
               lambda a=a, b=b, out=out, ta=ta, tb=tb:
                   R.matmul(a, b, trans_a=ta, trans_b=tb, out=out))


def square_shapes(sizes):
    return [(f"square {s}", (s, s, s), False, False) for s in sizes]


def chapter_shapes(batches=(64, 256, 1024), hidden=(30, 128)):
    """The products nn.Linear(784, h) runs (weight stored (h, 784) as in
    PyTorch): forward x @ W.T, weight gradient dy.T @ x, input gradient dy @ W."""
    shapes = []
    for h in hidden:
        for bs in batches:
            shapes += [
                (f"x@W.T  b={bs} 784->{h}", (bs, 784, h), False, True),
                (f"dy.T@x b={bs} 784->{h}", (h, bs, 784), True, False),
                (f"dy@W   b={bs} 784->{h}", (bs, h, 784), False, False),
            ]
    return shapes


def _inference_cases(batches=(1, 16)):
    """The chapter's simple_net (784-30-1) on a few rows: two fused linear
    kernels, and the model itself under no_grad, against NumPy's
    ``np.maximum(x @ W1.T + b1, 0) @ W2.T + b2``."""
    import minigrad as mg
    from minigrad import nn

    rng = np.random.default_rng(0)
    net = nn.Sequential(nn.Linear(784, 30, rng=rng), nn.ReLU(), nn.Linear(30, 1, rng=rng))
    w1, b1, w2, b2 = (p.numpy() for p in net.parameters())
    for bs in batches:
        x = rng.standard_normal((bs, 784)).astype(np.float32)
        xt = mg.tensor(x)
        work = 2.0 * bs * (784 * 30 + 30)

        def f_np(x=x):
            return np.maximum(x @ w1.T + b1, 0) @ w2.T + b2

        def f_kernels(x=x):
            return K.linear(K.linear(x, w1, b1, relu=True, trans_w=True), w2, b2, trans_w=True)

        def f_model(xt=xt):
            with mg.no_grad():
                return net(xt)
        yield f"simple_net kernels b={bs}", f"{bs}x784x30x1", work, "GFLOP/s", f_kernels, f_np
        yield f"simple_net model b={bs}", f"{bs}x784x30x1", work, "GFLOP/s", f_model, f_np


def _elementwise_cases(n, dtype=np.float32):
    """Kernels with out= buffers against NumPy written as people write it."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    t = (rng.random(n) < 0.5).astype(dtype)
    y = K.sigmoid(x)
    out = np.empty_like(x)
    p, v = x.copy(), np.zeros_like(x)
    size = x.itemsize
    label = f"{n >> 20}M" if n % (1 << 20) == 0 else str(n)
    # (name, bytes moved per call, minigrad call, numpy call)
    cases = [
        ("relu", 2 * n * size, lambda: K.relu(x, out=out), lambda: np.maximum(x, 0)),
        ("relu_backward", 3 * n * size, lambda: K.relu_backward(g, x, out=out),
         lambda: g * (x > 0)),
        ("sigmoid", 2 * n * size, lambda: K.sigmoid(x, out=out),
         lambda: 1 / (1 + np.exp(-x))),
        ("sigmoid_backward", 3 * n * size, lambda: K.sigmoid_backward(g, y, out=out),
         lambda: g * y * (1 - y)),
        ("mnist_loss", 3 * n * size, lambda: K.mnist_loss(x, t, out=out),
         lambda: R.mnist_loss(x, t)),
        ("bce_with_logits", 3 * n * size, lambda: K.bce_with_logits(x, t, out=out),
         lambda: R.bce_with_logits(x, t)),
        ("sgd_step momentum", 5 * n * size,
         lambda: K.sgd_step(p, g, 1e-9, momentum=0.9, velocity=v),
         lambda: R.sgd_step(p, g, 1e-9, momentum=0.9, velocity=v)),
    ]
    for name, nbytes, f_mg, f_np in cases:
        yield f"{name}", label, nbytes, "GB/s", f_mg, f_np


def _softmax_cases(rows_list, classes=10, dtype=np.float32):
    rng = np.random.default_rng(0)
    for rows in rows_list:
        z = rng.standard_normal((rows, classes)).astype(dtype)
        labels = rng.integers(0, classes, rows)
        out = np.empty_like(z)
        yield ("softmax_cross_entropy", f"{rows}x{classes}", 2 * z.nbytes, "GB/s",
               lambda z=z, labels=labels, out=out: K.softmax_cross_entropy(z, labels, out=out),
               lambda z=z, labels=labels: R.softmax_cross_entropy(z, labels))


def quick_suite(repeats=7, report=print, limits=None):
    """A short run of every kernel (``run.py --quick``)."""
    report(HEADER)
    cases = []
    cases += _matmul_cases(square_shapes([256, 512]))
    cases += _matmul_cases([s for s in chapter_shapes(batches=(256,), hidden=(30,))])
    cases += _inference_cases()
    cases += _elementwise_cases(1 << 20)
    cases += _softmax_cases([256])
    return run_cases(cases, repeats, report, limits)


def full_kernel_suite(repeats=15, report=print, limits=None):
    """Squares 64-2048, the chapter's shapes, 1M/16M-element arrays, float32."""
    report(HEADER)
    cases = []
    cases += _matmul_cases(square_shapes([64, 128, 256, 512, 1024, 2048]))
    cases += _matmul_cases(chapter_shapes())
    cases += _matmul_cases([("square 512 f64", (512, 512, 512), False, False)], np.float64)
    cases += _inference_cases()
    cases += _elementwise_cases(1 << 20)
    cases += _elementwise_cases(1 << 24)
    cases += _softmax_cases([256, 60000])
    return run_cases(cases, repeats, report, limits)
