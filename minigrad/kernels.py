"""minigrad's compute kernels: validated, GIL-free C code behind a NumPy API.

Each kernel works on float32 (the working type) and float64 (for gradient
checks); ``minigrad.reference`` holds the NumPy definition of each one. See
the extension's docstring (``help(minigrad._kernels)``) for the rules on
dtypes, layout, ``out=`` and aliasing. The kernels listed in
``csrc/mg_kernels.def`` (activations, row-wise softmax, elementwise losses)
are bound here by a loop over the extension's catalogue, so a new one needs
no edit in this file.

Threads: the kernels split large problems over ``get_num_threads()`` OpenMP
threads (default: the CPUs this process may run on, or the environment
variable ``MINIGRAD_NUM_THREADS``). Work is split so that every result is
bit-identical whatever the thread count.

Denormals: every kernel runs with flush-to-zero and denormals-are-zero set in
each of its threads (x86 MXCSR) and restores the state before it returns, so
the caller's floating-point state never changes. Inputs and results below the
smallest normal number (about 1.2e-38 in float32) count as zero inside a
kernel; subnormal arithmetic would be some 30 times slower.

Unless GOMP_SPINCOUNT is already set, importing this module sets it to 10000:
OpenMP workers then wait for the next kernel by spinning briefly instead of
for ~300,000 iterations. Between kernel calls the training loop runs Python
on one core; long spinning on the other slowed a 2-thread epoch from 0.29 s
to 0.47 s on the 2-core test machine (benchmarks/run.py).
"""
import os

os.environ.setdefault("GOMP_SPINCOUNT", "10000")  # before libgomp loads, with _kernels

from minigrad import _kernels  # noqa: E402
from minigrad._kernels import (  # noqa: E402
    _mxcsr,  # noqa: F401  (for tests: the caller's FP state)
    adam_step,
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    batch_norm,
    batch_norm_backward,
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
    openmp_enabled,
    relu_backward_bias_grad,
    set_num_threads,
    set_simd_path,
    sgd_step,
    simd_path,
    simd_paths_available,
    softmax_cross_entropy,
)

__all__ = [
    "adam_step", "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "avg_pool2d",
    "avg_pool2d_backward", "batch_norm", "batch_norm_backward", "bias_grad", "build_flags",
    "conv2d", "conv2d_backward_bias", "conv2d_backward_input", "conv2d_backward_weight",
    "default_num_threads", "get_num_threads", "linear", "matmul", "max_pool2d",
    "max_pool2d_backward", "openmp_enabled", "relu_backward_bias_grad", "set_num_threads",
    "set_simd_path", "sgd_step", "simd_path", "simd_paths_available", "softmax_cross_entropy"
]


def _bind(kernel, kind, name, arg, doc):
    """The Python function of one listed kernel."""
    if kind == "unary":
        def f(x, out=None):
            return _kernels.unary(kernel, x, out)
    elif kind == "rows":
        def f(x, out=None):
            return _kernels.rows(kernel, x, out)
    elif kind == "loss":
        def f(logits, targets, *, out=None):
            return _kernels.loss(kernel, logits, targets, out)
    else:
        call = _kernels.binary if kind == "binary" else _kernels.rows_backward

        def f(grad_out, a, out=None):
            return call(kernel, grad_out, a, out)
        # the second input keeps its own name (x or y), keyword calls included
        f.__code__ = f.__code__.replace(co_varnames=("grad_out", arg, "out"))
    f.__name__ = f.__qualname__ = name
    f.__doc__ = doc
    f.__module__ = __name__
    return f


#: the kernels of csrc/mg_kernels.def by name, each with its kind
LISTED = {}
for _id, _kind, _name, _arg, _doc in _kernels.catalog():
    globals()[_name] = _bind(_id, _kind, _name, _arg, _doc)
    LISTED[_name] = _kind
    __all__.append(_name)


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
