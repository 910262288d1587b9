"""Fuzz every public kernel with hostile inputs (the Tensor operations: fuzz_tensor.py).

Random ndim (0-4) and shapes (0, 1, primes, and virtual arrays so large their
element count overflows or exceeds memory), every dtype family, every memory
layout (Fortran order, negative strides, slices, zero-stride broadcasts,
read-only, byte-swapped, misaligned, outputs aliasing inputs) and special
values (NaN, +-inf, denormals, 1e38). Each call must either return the
reference's answer or raise ValueError/TypeError/MemoryError/OverflowError
with a message; inputs stay untouched and nothing is written outside `out`.

Not collected by pytest directly: test_fuzz.py runs it in a child process so
that a crash of the interpreter is caught. FUZZ_EXAMPLES sets the examples
per kernel (default 400; the long run: FUZZ_EXAMPLES=20000).
"""
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minigrad import kernels as K
from minigrad import reference as R

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "400"))

# Outputs too big for memory must fail as MemoryError, not be overcommitted and
# then kill the process when touched: cap the address space of this (child)
# process. Under AddressSanitizer, ASAN_OPTIONS=max_allocation_size_mb does it.
if not os.environ.get("MINIGRAD_SANITIZE"):
    import resource

    _soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    _cap = 8 << 30
    if _hard == resource.RLIM_INFINITY or _hard > _cap:
        resource.setrlimit(resource.RLIMIT_AS, (_cap, _hard))
# derandomized in CI (CI=true): repeatable there, new examples elsewhere
fuzz = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize=bool(os.environ.get("CI")),
                suppress_health_check=list(HealthCheck))
ALLOWED = (ValueError, TypeError, MemoryError, OverflowError)
FLOATS = [np.float32, np.float64]
OTHERS = [np.float16, np.int32, np.int64, np.bool_, np.complex64, object]
SIZES = [0, 1, 2, 3, 5, 7, 13, 17, 33]
LAYOUTS = ["c", "c", "c", "fortran", "reversed", "sliced", "broadcast", "readonly",
           "swapped", "misaligned", "huge"]
SPECIALS = [np.nan, np.inf, -np.inf, 1e-40, 1e-310, 1e38, -1e38, 0.0, -0.0]
GUARD = 64


@st.composite
def arrays(draw, shape=None, dtype=None, layout=None, float_bias=0.85):
    """An array of hostile dtype, layout and values (mostly float32/64)."""
    if dtype is None:
        dtype = draw(st.sampled_from(FLOATS)) if draw(st.floats(0, 1)) < float_bias \
            else draw(st.sampled_from(OTHERS))
    if shape is None:
        shape = tuple(draw(st.lists(st.sampled_from(SIZES), max_size=4)))
    layout = layout or draw(st.sampled_from(LAYOUTS))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    too_big = np.prod(shape, dtype=float) > 1e6  # shaped like a huge array drawn before
    if layout == "huge" or too_big:
        # numpy itself refuses more than 2**63 bytes, so products stay below that
        dims = shape if too_big else draw(st.sampled_from(
            [(2**28, 2**28), (2**40, 2**16), (2**33,)]))
        base = np.ones(1, dtype=dtype)
        arr = np.lib.stride_tricks.as_strided(base, shape=dims, strides=(0,) * len(dims))
        arr.flags.writeable = False
        return arr
    values = np.asarray(rng.standard_normal(shape) * draw(st.sampled_from([1e-3, 1.0, 1e3])))
    if values.size and draw(st.booleans()):
        flat = values.reshape(-1)
        for _ in range(draw(st.integers(1, 3))):
            flat[rng.integers(flat.size)] = draw(st.sampled_from(SPECIALS))
    with np.errstate(all="ignore"):
        arr = values.astype(dtype) if np.dtype(dtype).kind != "O" else values.astype(object)
    if layout == "fortran":
        arr = np.asfortranarray(arr)
    elif layout == "reversed" and arr.ndim:
        arr = np.ascontiguousarray(arr)[::-1]
    elif layout == "sliced" and arr.ndim:
        big = np.repeat(arr, 2, axis=-1)
        arr = big[..., ::2]
    elif layout == "broadcast" and arr.ndim:
        arr = np.broadcast_to(arr[..., :1], arr.shape)
    elif layout == "readonly":
        arr.flags.writeable = False
    elif layout == "swapped" and np.dtype(dtype).kind != "O" and np.dtype(dtype).itemsize > 1:
        arr = arr.astype(np.dtype(dtype).newbyteorder())
    elif layout == "misaligned" and np.dtype(dtype).kind != "O" and np.dtype(dtype).itemsize > 1:
        raw = np.zeros(arr.nbytes + 1, np.uint8)
        view = raw[1:].view(dtype).reshape(arr.shape)
        view[...] = arr
        arr = view
    return arr


def guarded(shape, dtype):
    """An output array inside a buffer with sentinel bytes on both sides."""
    n = int(np.prod(shape, dtype=np.int64))
    buf = np.full(n + 2 * GUARD, 7.25, dtype=dtype)
    return buf[GUARD:GUARD + n].reshape(shape), buf


def guards_intact(buf):
    return bool(np.all(buf[:GUARD] == 7.25) and np.all(buf[-GUARD:] == 7.25))


@st.composite
def outs(draw, like_shape, like_dtype, inputs=()):
    """None, a guarded correct output, a wrong one, or an input (aliasing)."""
    kind = draw(st.sampled_from(["none", "good", "good", "shape", "dtype", "alias",
                                 "readonly"]))
    if kind == "none":
        return None, None
    if kind == "alias" and inputs:
        return draw(st.sampled_from(list(inputs))), None
    dtype = like_dtype if kind != "dtype" else (
        np.float64 if like_dtype == np.float32 else np.float32)
    shape = like_shape if kind != "shape" else tuple(d + 1 for d in like_shape) or (2,)
    try:
        out, buf = guarded(shape, dtype)
    except (ValueError, MemoryError):
        return None, None
    if kind == "readonly":
        out.flags.writeable = False
    return out, buf


def snapshot(xs):
    return [np.array(x, copy=True) if isinstance(x, np.ndarray) and x.size < 10**7 else None
            for x in xs]


def unchanged(xs, before):
    for x, b in zip(xs, before, strict=True):
        if b is None:
            continue
        if x.dtype == object:
            if not all(p is q or p == q or (p != p and q != q)
                       for p, q in zip(x.flat, b.flat, strict=True)):
                return False
        elif not np.array_equal(x, b, equal_nan=x.dtype.kind in "fc"):
            return False
    return True


def clean(*xs):
    """Float inputs of one dtype, with finite values of modest size and no
    subnormals (the kernels count those as zero, the NumPy reference does not)."""
    return all(isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64)
               and x.size < 10**6 and np.all(np.isfinite(x)) and
               (x.size == 0 or np.abs(x).max() < 1e10) and
               not np.any((x != 0) & (np.abs(x) < np.finfo(x.dtype).tiny)) for x in xs)


def call_and_check(call, inputs, buf=None, mutated=()):
    """Run call: either an allowed exception with a message, or a result.
    Inputs (except `mutated`) are unchanged; the out guards are intact."""
    kept = [x for x in inputs if not any(x is m for m in mutated)]
    before = snapshot(kept)
    try:
        result = call()
    except ALLOWED as e:
        assert str(e), f"{type(e).__name__} without a message"
        result = e
    assert unchanged(kept, before), "an input was modified"
    if buf is not None:
        assert guards_intact(buf), "wrote outside out"
    return result


def tol(dtype):
    return (2e-4, 1e-4) if dtype == np.float32 else (1e-9, 1e-9)


def close(got, want, dtype, scale=1.0):
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale)


def nan_propagates(got, want):
    """Where the reference is NaN, so is the kernel."""
    want = np.asarray(want)
    if want.shape == np.shape(got):
        assert np.all(np.isnan(got)[np.isnan(want)]), "a NaN was hidden"


# ------------------------------------------------------------------ kernels

@fuzz
@given(st.data())
def test_fuzz_matmul_and_linear(data):
    a = data.draw(arrays())
    b = data.draw(arrays())
    ta, tb = data.draw(st.booleans()), data.draw(st.booleans())
    use_linear = data.draw(st.booleans())
    bias = data.draw(st.one_of(st.none(), arrays(shape=(data.draw(st.sampled_from(SIZES)),))))
    shape = (a.shape[1] if ta else a.shape[0], b.shape[0] if tb else b.shape[1]) \
        if a.ndim == 2 and b.ndim == 2 else (3, 3)
    out, buf = data.draw(outs(shape, a.dtype if a.dtype in FLOATS else np.float32, (a, b)))
    accumulate = out is not None and data.draw(st.booleans())
    start = out.copy() if accumulate and isinstance(out, np.ndarray) and out.size < 10**6 \
        else None
    relu = data.draw(st.booleans())
    if use_linear:
        res = call_and_check(lambda: K.linear(a, b, bias, relu=relu, trans_w=tb, out=out),
                             [a, b] + ([bias] if bias is not None else []), buf)
    else:
        res = call_and_check(lambda: K.matmul(a, b, trans_a=ta, trans_b=tb, out=out,
                                              accumulate=accumulate), [a, b], buf)
    if isinstance(res, Exception) or not clean(a, b) or (use_linear and bias is not None
                                                          and not clean(bias)) or \
            (accumulate and start is None):
        return
    if use_linear:
        want = R.linear(a.astype(np.float64), b.astype(np.float64),
                        None if bias is None else bias.astype(np.float64), relu=relu,
                        trans_w=tb)
        k = a.shape[1]
    else:
        want = R.matmul(a.astype(np.float64), b.astype(np.float64), trans_a=ta, trans_b=tb)
        if start is not None:
            want = want + start
        k = a.shape[0] if ta else a.shape[1]
    close(res, want, res.dtype, scale=max(k, 1) * 10)


# every unary and binary kernel of csrc/mg_kernels.def, with its input count
ELEMENTWISE = {name: 1 if kind == "unary" else 2 for name, kind in K.LISTED.items()
               if kind in ("unary", "binary")}
ROWS = {name: 1 if kind == "rows" else 2 for name, kind in K.LISTED.items()
        if kind in ("rows", "rows_backward")}
LOSSES = sorted(name for name, kind in K.LISTED.items() if kind == "loss")


@fuzz
@given(st.data(), st.sampled_from(sorted(ELEMENTWISE)))
def test_fuzz_elementwise(data, name):
    arity, kernel, reference = ELEMENTWISE[name], getattr(K, name), getattr(R, name)
    x = data.draw(arrays())
    same = data.draw(st.booleans())
    args = [x] + [data.draw(arrays(shape=x.shape if same else None,
                                   dtype=x.dtype if same else None))
                  for _ in range(arity - 1)]
    out, buf = data.draw(outs(x.shape, x.dtype if x.dtype in FLOATS else np.float32, args))
    res = call_and_check(lambda: kernel(*args, out=out), args, buf,
                         mutated=[out] if out is not None else [])
    if isinstance(res, Exception) or not all(isinstance(v, np.ndarray) and v.dtype in FLOATS
                                             and v.size < 10**6 for v in args):
        return
    if any(out is v for v in args):
        return  # in place: the input is the result now
    with np.errstate(all="ignore"):
        want = reference(*[v.astype(np.float64) for v in args])
    if clean(*args):
        close(res, want, res.dtype)
    else:
        nan_propagates(res, want)


@fuzz
@given(st.data(), st.sampled_from(LOSSES))
def test_fuzz_binary_losses(data, name):
    z = data.draw(arrays())
    t = data.draw(arrays(shape=z.shape if data.draw(st.booleans()) else None,
                         dtype=z.dtype if data.draw(st.booleans()) else None))
    if isinstance(t, np.ndarray) and t.size < 10**6 and t.dtype in FLOATS and \
            data.draw(st.booleans()):
        t = (np.abs(np.nan_to_num(t)) > 0.5).astype(t.dtype)
    out, buf = data.draw(outs(z.shape, z.dtype if z.dtype in FLOATS else np.float32, (z,)))
    kernel, reference = getattr(K, name), getattr(R, name)
    res = call_and_check(lambda: kernel(z, t, out=out), [z, t], buf,
                         mutated=[out] if out is not None else [])
    if isinstance(res, Exception) or not (isinstance(t, np.ndarray) and clean(z, t)) \
            or out is z:
        if not isinstance(res, Exception) and isinstance(t, np.ndarray) and \
                np.isnan(z).any() and out is not z:
            assert np.isnan(res[0]), "a NaN logit gave a finite loss"
        return
    want_loss, want_grad = reference(z.astype(np.float64), t.astype(np.float64))
    rtol, atol = tol(res[1].dtype)
    assert abs(res[0] - want_loss) <= atol + rtol * 10 * abs(want_loss)
    close(res[1], want_grad, res[1].dtype)


@fuzz
@given(st.data(), st.sampled_from(sorted(ROWS)))
def test_fuzz_rows(data, name):
    arity, kernel, reference = ROWS[name], getattr(K, name), getattr(R, name)
    x = data.draw(arrays())
    same = data.draw(st.booleans())
    args = [x] + [data.draw(arrays(shape=x.shape if same else None,
                                   dtype=x.dtype if same else None))
                  for _ in range(arity - 1)]
    out, buf = data.draw(outs(x.shape, x.dtype if x.dtype in FLOATS else np.float32, args))
    res = call_and_check(lambda: kernel(*args, out=out), args, buf,
                         mutated=[out] if out is not None else [])
    if isinstance(res, Exception) or any(out is v for v in args) or not clean(*args) or \
            not all(v.size < 10**6 and v.shape[-1:] != (0,) for v in args):
        return
    if name == "log_softmax_backward":
        args[1] = np.minimum(args[1], 0)  # a log-probability; the kernel reads it so
    with np.errstate(all="ignore"):
        want = reference(*[v.astype(np.float64) for v in args])
    close(res, want, res.dtype, scale=x.shape[-1] + 1)


@fuzz
@given(st.data())
def test_fuzz_softmax_cross_entropy(data):
    z = data.draw(arrays())
    label_dtype = data.draw(st.sampled_from([np.int64, np.int32, np.uint8, np.uint64,
                                             np.float32, np.bool_]))
    n = z.shape[0] if z.ndim == 2 and z.shape[0] < 10**6 and data.draw(st.booleans()) \
        else data.draw(st.sampled_from(SIZES))
    high = z.shape[1] if z.ndim == 2 else 3
    labels = np.random.default_rng(n).integers(-1 if data.draw(st.booleans()) else 0,
                                               max(high, 1) + data.draw(st.integers(0, 1)),
                                               n).astype(label_dtype)
    out, buf = data.draw(outs(z.shape, z.dtype if z.dtype in FLOATS else np.float32, (z,)))
    res = call_and_check(lambda: K.softmax_cross_entropy(z, labels, out=out), [z, labels],
                         buf, mutated=[out] if out is not None else [])
    if isinstance(res, Exception) or out is z or not clean(z):
        if not isinstance(res, Exception) and out is not z and np.isnan(z).any():
            assert np.isnan(res[0]), "a NaN logit gave a finite loss"
        return
    want_loss, want_grad = R.softmax_cross_entropy(z.astype(np.float64), labels)
    assert abs(res[0] - want_loss) <= 1e-3 * max(1.0, abs(want_loss))
    close(res[1], want_grad, res[1].dtype)


@fuzz
@given(st.data())
def test_fuzz_linear_cross_entropy(data):
    """Any x, w, b and labels: an allowed error, or the unfused calls' numbers."""
    x = data.draw(arrays())
    k = x.shape[1] if x.ndim == 2 and x.shape[1] < 10**4 and data.draw(st.booleans()) \
        else data.draw(st.sampled_from(SIZES))
    c = data.draw(st.sampled_from(SIZES + [70]))
    w = data.draw(arrays(shape=(c, k)))
    b = data.draw(st.one_of(st.none(), arrays(shape=(c,))))
    n = x.shape[0] if x.ndim == 2 and x.shape[0] < 10**6 and data.draw(st.booleans()) \
        else data.draw(st.sampled_from(SIZES))
    labels = np.random.default_rng(n).integers(-1 if data.draw(st.booleans()) else 0,
                                               max(c, 1) + data.draw(st.integers(0, 1)), n)
    relu = data.draw(st.booleans())
    res = call_and_check(lambda: K.linear_cross_entropy(x, w, b, labels, relu=relu),
                         [x, w, b, labels])
    if isinstance(res, Exception):
        return
    z = K.linear(x, w, b, trans_w=True)
    loss, dz = K.softmax_cross_entropy(z, labels)
    dx = K.matmul(dz, w)
    if relu:
        dx = K.relu_backward(dx, x)
    assert res[0] == loss or (np.isnan(res[0]) and np.isnan(loss))
    for got, want in zip(res[1:], (z, dz, dx), strict=True):
        np.testing.assert_array_equal(got, want)


@fuzz
@given(st.data())
def test_fuzz_bias_grads_and_sgd(data):
    g = data.draw(arrays())
    which = data.draw(st.sampled_from(["bias_grad", "relu_backward_bias_grad", "sgd_step"]))
    if which == "bias_grad":
        out, buf = data.draw(outs(g.shape[1:2] or (1,), g.dtype if g.dtype in FLOATS
                                  else np.float32, (g,)))
        res = call_and_check(lambda: K.bias_grad(g, out=out), [g], buf)
        if not isinstance(res, Exception) and clean(g):
            close(res, R.bias_grad(g.astype(np.float64)), res.dtype, scale=g.shape[0] + 1)
    elif which == "relu_backward_bias_grad":
        y = data.draw(arrays(shape=g.shape if data.draw(st.booleans()) else None,
                             dtype=g.dtype))
        res = call_and_check(lambda: K.relu_backward_bias_grad(g, y), [g, y])
        if not isinstance(res, Exception) and clean(g, y):
            want = R.relu_backward_bias_grad(g.astype(np.float64), y.astype(np.float64))
            close(res[0], want[0], res[0].dtype)
            close(res[1], want[1], res[1].dtype, scale=g.shape[0] + 1)
    else:
        p = data.draw(arrays())
        grad = data.draw(arrays(shape=p.shape if data.draw(st.booleans()) else None,
                                dtype=p.dtype if data.draw(st.booleans()) else None))
        momentum = data.draw(st.sampled_from([0.0, 0.9, -1.0, float("nan")]))
        velocity = data.draw(st.one_of(st.none(), st.just("zeros"), arrays()))
        if isinstance(velocity, str):
            velocity = np.zeros_like(p) if isinstance(p, np.ndarray) and p.size < 10**6 \
                else None
        lr = data.draw(st.sampled_from([0.1, 0.0, -0.1, float("inf")]))
        p_ref = p.copy() if clean(p) else None
        v_ref = velocity.copy() if isinstance(velocity, np.ndarray) and clean(velocity) \
            else None
        res = call_and_check(lambda: K.sgd_step(p, grad, lr, momentum=momentum,
                                                velocity=velocity), [p, grad, velocity],
                             mutated=[p, velocity])
        if not isinstance(res, Exception) and p_ref is not None and clean(grad) and (
                momentum == 0 or v_ref is not None):
            R.sgd_step(p_ref, grad, lr, momentum=momentum,
                       velocity=v_ref if momentum else None)
            close(p, p_ref, p.dtype, scale=10)


@fuzz
@given(st.data())
def test_fuzz_adam_step(data):
    p = data.draw(arrays())
    like = data.draw(st.booleans())
    g, m, v = [data.draw(arrays(shape=p.shape if like else None, dtype=p.dtype if like else None))
               if data.draw(st.booleans()) else (p.copy() if isinstance(p, np.ndarray) and
                                                 p.size < 10**6 else p)
               for _ in range(3)]
    if isinstance(m, np.ndarray) and m.size < 10**6 and m.flags.writeable and clean(m):
        m = np.abs(m) * 0  # Adam's state starts at zero
    step = data.draw(st.sampled_from([1, 2, 0, -3]))
    lr = data.draw(st.sampled_from([1e-3, 0.0, -0.1, float("nan")]))
    beta1 = data.draw(st.sampled_from([0.9, 0.0, 1.0, -0.5]))
    wd, decoupled = data.draw(st.sampled_from([0.0, 0.01, -1.0])), data.draw(st.booleans())
    refs = [x.astype(np.float64) if clean(x) else None for x in (p, g, m, v)]
    res = call_and_check(lambda: K.adam_step(p, g, m, v, step, lr, beta1, 0.999, 1e-8, wd,
                                             decoupled), [p, g, m, v], mutated=[p, m, v])
    if isinstance(res, Exception) or any(r is None for r in refs) or \
            len({id(p), id(g), id(m), id(v)}) < 4 or np.any(refs[3] < 0):
        return
    R.adam_step(refs[0], refs[1], refs[2], refs[3], step, lr, beta1, 0.999, 1e-8, wd,
                decoupled)
    close(m, refs[2], m.dtype, scale=10)
    close(v, refs[3], v.dtype, scale=10)
