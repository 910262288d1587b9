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
bit-identical whatever the thread count, which lets the kernels back off to
one thread while their team's threads are kept off their cores (by another
library's idle threads, such as NumPy's OpenBLAS spinning after each product,
or by another process): when a team thread is absent (late, or switched out)
longer than it works, or a team takes longer than its threads' CPU time, in
three teams at most two apart, the following calls run on one thread for
5 ms, doubled up to 1.28 s while it recurs (csrc/mg_driver.c;
``_kernels._thread_backoff()`` counts these and turns it off).
``MINIGRAD_SIMD`` forces an instruction set. A bad value of either variable
is replaced by the default and listed by ``environment_problems()``; the
first kernel call warns of it (not the import, so that the command line can
report it as its one-line error instead).

Denormals: every kernel runs with flush-to-zero and denormals-are-zero set in
each of its threads (x86 MXCSR) and restores the state before it returns, so
the caller's floating-point state never changes. Inputs and results below the
smallest normal number (about 1.2e-38 in float32) count as zero inside a
kernel; subnormal arithmetic would be some 30 times slower.

OpenMP's wait policy: see minigrad._openmp (GOMP_SPINCOUNT=10000 unless a
policy is set). A runtime that another library loaded first (PyTorch's
libgomp.so.1, which a source build of minigrad then shares) has read the
environment already: environment_problems() lists that case, and the first
kernel call warns of it.
"""
import functools
import os
import warnings

# (minigrad/__init__ imported _openmp before anything that can load libgomp)
from minigrad import _kernels, _openmp
from minigrad._kernels import (
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
    linear_cross_entropy,
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
    "default_num_threads", "get_num_threads", "linear", "linear_cross_entropy", "matmul",
    "max_pool2d", "max_pool2d_backward", "openmp_enabled", "relu_backward_bias_grad",
    "set_num_threads", "set_simd_path", "sgd_step", "simd_path", "simd_paths_available",
    "softmax_cross_entropy"
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


#: the kernels of csrc/mg_kernels.def by name, each with its kind, and its id
LISTED = {}
KERNEL_ID = {}
for _id, _kind, _name, _arg, _doc in _kernels.catalog():
    globals()[_name] = _bind(_id, _kind, _name, _arg, _doc)
    LISTED[_name], KERNEL_ID[_name] = _kind, _id
    __all__.append(_name)

#: a training step's kernel calls, checked once and replayed without the GIL
#: (minigrad.compiled builds them; not a public API)
StepProgram = _kernels._StepProgram


MAX_THREADS_PER_CPU = 4
"""MINIGRAD_NUM_THREADS may be at most this many times the CPUs."""


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _read_environment(environ):
    """(threads, SIMD path or None, problems) from MINIGRAD_NUM_THREADS and
    MINIGRAD_SIMD: a bad value is replaced by the default and described."""
    problems = []
    threads = cpus = _cpus()
    text = environ.get("MINIGRAD_NUM_THREADS", "").strip()
    if text:
        bound = MAX_THREADS_PER_CPU * cpus
        if text.isdigit() and 1 <= int(text) <= bound:
            threads = int(text)
        else:
            problems.append(f"MINIGRAD_NUM_THREADS must be an integer from 1 to {bound} "
                            f"({MAX_THREADS_PER_CPU}x the {cpus} CPUs), got {text!r}; "
                            f"using {threads} threads")
    simd = environ.get("MINIGRAD_SIMD", "").strip() or None
    if simd and simd not in simd_paths_available():
        problems.append(f"MINIGRAD_SIMD must be one of {', '.join(simd_paths_available())} "
                        f"on this CPU, got {simd!r}; using {simd_path()}")
        simd = None
    return threads, simd, problems


def _late_spin_count(before):
    """The problem (a list of at most one message) of kernels that share an
    OpenMP runtime loaded before this import set GOMP_SPINCOUNT: none loaded
    before (or a wait policy of the user's own), or the import brought its own
    runtime (a wheel bundles a renamed copy), or one CPU, and there is none."""
    if not before or not openmp_enabled() or _cpus() < 2 or _openmp.runtimes() - before:
        return []
    return [f"GOMP_SPINCOUNT: the OpenMP runtime {', '.join(sorted(before))} was loaded "
            f"before minigrad, which shares it, so the GOMP_SPINCOUNT=10000 minigrad sets "
            f"came too late: idle workers spin about 300,000 times between kernels (a "
            f"2-thread ResNet-18 epoch ran up to 1.4x slower); set GOMP_SPINCOUNT=10000 before "
            f"Python starts, or import minigrad before the library that loaded it (torch, "
            f"for one)"]


def default_num_threads():
    """MINIGRAD_NUM_THREADS if set to a valid count, else the number of CPUs
    available to this process."""
    return _read_environment(os.environ)[0]


def environment_problems():
    """One message per bad MINIGRAD_NUM_THREADS or MINIGRAD_SIMD found at
    import, naming the variable, its bound and the default used instead, and
    one when the OpenMP runtime was loaded before minigrad with neither
    GOMP_SPINCOUNT nor OMP_WAIT_POLICY set (see the module's docstring)."""
    return list(_PROBLEMS)


def _warn_at_first_kernel_call(problems):
    """Rebind every kernel so that the first call warns of ``problems``."""
    kernels = {name: globals()[name] for name in __all__ if name not in _SETTINGS}
    warned = False

    def wrap(kernel):
        @functools.wraps(kernel)
        def first_call(*args, **kwargs):
            nonlocal warned
            globals().update(kernels)  # later calls go straight to the kernels
            if not warned:
                warned = True
                for problem in problems:
                    warnings.warn(f"minigrad: {problem}", RuntimeWarning, stacklevel=2)
            return kernel(*args, **kwargs)
        return first_call
    globals().update({name: wrap(kernel) for name, kernel in kernels.items()})


__all__.append("environment_problems")
_SETTINGS = {"build_flags", "default_num_threads", "environment_problems", "get_num_threads",
             "openmp_enabled", "set_num_threads", "set_simd_path", "simd_path",
             "simd_paths_available"}
_threads, _simd, _PROBLEMS = _read_environment(os.environ)
_PROBLEMS += _late_spin_count(_openmp.BEFORE)
set_num_threads(_threads)
if _simd:
    set_simd_path(_simd)
if _PROBLEMS:
    _warn_at_first_kernel_call(_PROBLEMS)
