"""Fuzz the NCHW kernels (conv2d and its gradients, pooling, batch norm) with
the hostile inputs of fuzz_kernels.py: a third of the cases hostile (any
array, any window parameter), the rest valid and compared with the
reference. Not collected by pytest directly: test_fuzz.py runs it with
fuzz_kernels.py in a child process."""
import numpy as np
from fuzz_kernels import FLOATS, arrays, call_and_check, clean, close, fuzz
from hypothesis import given
from hypothesis import strategies as st

from minigrad import kernels as K
from minigrad import reference as R

HOSTILE_WINDOW = st.sampled_from([1, 2, 3, (1, 2), 0, -1, (1, -1), 1 << 40, 1.5, (1, 2, 3),
                                  True, None])
HOSTILE_PADDING = st.sampled_from([0, 1, (0, 1), -1, (1, -2), 1 << 40, 0.5, "x"])


def _two(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _window(data, hostile, padding=False):
    if hostile:
        return data.draw(HOSTILE_PADDING if padding else HOSTILE_WINDOW)
    return data.draw(st.sampled_from([0, 1, (1, 0)] if padding else [1, 2, (1, 2), (2, 1)]))


def _image(data, hostile, like=None, spatial=(3, 4, 5, 7, 8)):
    """A 4-D float C-contiguous array (channels and dtype as `like`'s), or with
    `hostile` any array arrays() makes."""
    if hostile and data.draw(st.booleans()):
        return data.draw(arrays())
    dtype = like.dtype if like is not None and like.dtype in FLOATS else \
        data.draw(st.sampled_from(FLOATS))
    shape = (data.draw(st.integers(1, 3)),
             like.shape[1] if like is not None and like.ndim == 4 else data.draw(
                 st.integers(1, 4)),
             data.draw(st.sampled_from(spatial)), data.draw(st.sampled_from(spatial)))
    return data.draw(arrays(shape=shape, dtype=None if hostile else dtype,
                            layout=None if hostile else "c"))


def _grad_like(data, hostile, x, w_shape, geo):
    """grad_out for the conv2d of x with a weight of w_shape (hostile: anything)."""
    if hostile or not isinstance(x, np.ndarray) or x.ndim != 4:
        return _image(data, True, x)
    hw = [R.out_size(x.shape[2 + i], w_shape[2 + i], *(_two(geo[k])[i] for k in
                                                        ("stride", "padding", "dilation")))
          for i in range(2)]
    if min(hw) < 1:
        return _image(data, True, x)
    return data.draw(arrays(shape=(x.shape[0], w_shape[0], *hw), dtype=x.dtype, layout="c"))


def _nchw_case(data, name):
    """(call, inputs, reference thunk or None) for one kernel; a third of the
    cases hostile (any array, any parameter), the rest valid."""
    hostile = data.draw(st.integers(0, 2)) == 0
    x = _image(data, hostile)
    geo = dict(stride=_window(data, hostile), padding=_window(data, hostile, True),
               dilation=_window(data, hostile))
    f64 = (lambda a: a.astype(np.float64)) if isinstance(x, np.ndarray) else None
    c = x.shape[1] if isinstance(x, np.ndarray) and x.ndim >= 2 else 1
    vector = arrays(shape=(c,), dtype=None if hostile else x.dtype,
                    layout=None if hostile else "c")
    if name.startswith("conv2d") and name != "conv2d_backward_bias":
        w = _image(data, hostile, x, (1, 2, 3))
        w_shape = w.shape if isinstance(w, np.ndarray) and w.ndim == 4 else (1, 1, 1, 1)
    if name == "conv2d":
        b = data.draw(st.one_of(st.none(), arrays(shape=w_shape[:1], dtype=x.dtype)
                                if not hostile else arrays()))
        relu = data.draw(st.booleans())
        return (lambda: K.conv2d(x, w, b, relu=relu, **geo),
                [x, w] + ([b] if b is not None else []),
                lambda: R.conv2d(f64(x), f64(w), None if b is None else f64(b), relu=relu,
                                 **geo))
    if name == "conv2d_backward_input":
        g = _grad_like(data, hostile, x, w_shape, geo)
        shape = data.draw(st.sampled_from([(2, 3, 7, 7), (3, 5), (2, -1, 3, 3)])) \
            if hostile else x.shape
        return (lambda: K.conv2d_backward_input(g, w, shape, **geo), [g, w],
                lambda: R.conv2d_backward_input(f64(g), f64(w), shape, **geo))
    if name == "conv2d_backward_weight":
        g = _grad_like(data, hostile, x, w_shape, geo)
        return (lambda: K.conv2d_backward_weight(x, g, w_shape[2:], **geo), [x, g],
                lambda: R.conv2d_backward_weight(f64(x), f64(g), w_shape[2:], **geo))
    if name == "conv2d_backward_bias":
        return lambda: K.conv2d_backward_bias(x), [x], lambda: R.conv2d_backward_bias(f64(x))
    k, s = _window(data, hostile), _window(data, hostile)
    p = _window(data, hostile, True) if hostile else min(_two(k)) // 2
    if name == "max_pool2d":
        return (lambda: K.max_pool2d(x, k, s, p), [x],
                lambda: R.max_pool2d(f64(x), k, s, p))
    if name == "avg_pool2d":
        return (lambda: K.avg_pool2d(x, k, s, p), [x], lambda: R.avg_pool2d(f64(x), k, s, p))
    if name == "adaptive_avg_pool2d":
        return (lambda: K.adaptive_avg_pool2d(x, k), [x],
                lambda: R.adaptive_avg_pool2d(f64(x), k))
    if name == "batch_norm":
        wt, bias = data.draw(st.one_of(st.none(), vector)), data.draw(st.one_of(st.none(), vector))
        rm, rv = data.draw(vector), data.draw(vector)
        if isinstance(rv, np.ndarray) and rv.dtype in FLOATS and not hostile:
            rv = np.abs(rv) + 1
        training = data.draw(st.booleans())
        before = [np.array(a, np.float64) if isinstance(a, np.ndarray) and a.dtype in FLOATS
                  and a.size < 10**6
                  else None for a in (rm, rv)]
        return (lambda: K.batch_norm(x, wt, bias, rm, rv, training=training),
                [x] + [a for a in (wt, bias) if a is not None],
                lambda: R.batch_norm(f64(x), wt, bias, *before, training=training))
    raise AssertionError(name)


NCHW = ["conv2d", "conv2d_backward_input", "conv2d_backward_weight", "conv2d_backward_bias",
        "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "batch_norm"]


@fuzz
@given(st.data(), st.sampled_from(NCHW))
def test_fuzz_nchw_kernels(data, name):
    call, inputs, reference = _nchw_case(data, name)
    res = call_and_check(call, inputs)
    if isinstance(res, Exception) or reference is None or not clean(*inputs):
        return
    got = res[0] if isinstance(res, tuple) else res
    want = reference()
    want = want[0] if isinstance(want, tuple) else want
    close(got, want, got.dtype, scale=max(1, np.abs(want).max(initial=0)) * 100)
