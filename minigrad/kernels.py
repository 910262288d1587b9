"""minigrad's compute kernels: validated, GIL-free C code behind a NumPy API.

Each kernel works on float32 (the working type) and float64 (for gradient
checks); ``minigrad.reference`` holds the NumPy definition of each one. See
the extension's docstring (``help(minigrad._kernels)``) for the rules on
dtypes, layout, ``out=`` and aliasing.

Threads: the kernels split large problems over ``get_num_threads()`` OpenMP
threads (default: the CPUs this process may run on, or the environment
variable ``MINIGRAD_NUM_THREADS``). Work is split so that every result is
bit-identical whatever the thread count.

Unless GOMP_SPINCOUNT is already set, importing this module sets it to 10000:
OpenMP workers then wait for the next kernel by spinning briefly instead of
for ~300,000 iterations. Between kernel calls the training loop runs Python
on one core; long spinning on the other slowed a 2-thread epoch from 0.29 s
to 0.47 s on the 2-core test machine (benchmarks/run.py).
"""
import os

os.environ.setdefault("GOMP_SPINCOUNT", "10000")  # before libgomp loads, with _kernels

from minigrad._kernels import (  # noqa: E402
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    batch_norm,
    batch_norm_backward,
    bce_with_logits,
    bias_grad,
    build_flags,
    conv2d,
    conv2d_backward_bias,
    conv2d_backward_input,
    conv2d_backward_weight,
    get_num_threads,
    linear,
    matmul,
    max_pool2d,
    max_pool2d_backward,
    mnist_loss,
    openmp_enabled,
    relu,
    relu_backward,
    relu_backward_bias_grad,
    set_num_threads,
    set_simd_path,
    sgd_step,
    sigmoid,
    sigmoid_backward,
    simd_path,
    simd_paths_available,
    softmax_cross_entropy,
)

__all__ = [
    "bce_with_logits", "bias_grad", "build_flags", "get_num_threads", "linear", "matmul",
    "mnist_loss", "openmp_enabled", "relu", "relu_backward", "relu_backward_bias_grad",
    "set_num_threads", "set_simd_path", "sgd_step", "sigmoid", "sigmoid_backward", "simd_path",
    "simd_paths_available", "softmax_cross_entropy", "default_num_threads",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "batch_norm",
    "batch_norm_backward",
    "conv2d",
    "conv2d_backward_bias",
    "conv2d_backward_input",
    "conv2d_backward_weight",
    "max_pool2d",
    "max_pool2d_backward",
]


def default_num_threads():
    """MINIGRAD_NUM_THREADS if set, else the number of CPUs available to this process."""
    env = os.environ.get("MINIGRAD_NUM_THREADS", "").strip()
    if env:
        n = int(env) if env.isdigit() else 0
        if n < 1:
            raise ValueError(f"MINIGRAD_NUM_THREADS must be a positive integer, got {env!r}")
        return n
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


set_num_threads(default_num_threads())
if os.environ.get("MINIGRAD_SIMD"):
    set_simd_path(os.environ["MINIGRAD_SIMD"])
