"""Inputs kept as bytes (ScaledBytes): batches gathered as uint8 (ByteBatch),
read as floats by eager code, and converted while packing by the compiled
step's first layer; compiled and eager training give the same numbers."""
import functools

import numpy as np
import pytest

import minigrad as mg
from minigrad import callbacks as C
from minigrad import nn
from minigrad import reference as R
from minigrad.compiled import compile_step
from minigrad.data import ByteBatch, ScaledBytes, TensorDataset
from minigrad.nn import functional as F

MOMENTUM = functools.partial(mg.SGD, momentum=0.9)


def _images(n=150, shape=(12,), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    flat = x.reshape(n, -1).astype(np.int64)
    y = (flat[:, 0] > 127).astype(np.int64) + 2 * (flat[:, 1] > 127)
    return x, y


def _model(n_in=12, flatten=False, dtype=np.float32):
    rng = np.random.default_rng(1)
    layers = [nn.Linear(n_in, 16, rng=rng), nn.ReLU(), nn.Linear(16, 4, rng=rng)]
    model = nn.Sequential(*([nn.Flatten()] if flatten else []), *layers)
    return model if dtype == np.float32 else model.double()


def test_scaled_bytes_read_as_floats():
    x, _ = _images()
    s = ScaledBytes(x, 255)
    want = R.from_uint8(x, 255, np.float32)
    np.testing.assert_array_equal(s.numpy(), want)
    np.testing.assert_array_equal(np.asarray(s), want)
    np.testing.assert_array_equal(s[3], want[3])
    np.testing.assert_array_equal(s[[4, 1]], want[[4, 1]])
    assert (s.shape, s.ndim, len(s)) == (x.shape, 2, 150)
    assert s.reshape(150, 3, 4).shape == (150, 3, 4)
    np.testing.assert_array_equal(ScaledBytes(x, 2, np.float64)[:2], x[:2] / 2.0)
    t = mg.tensor(s)  # array-like: the floats
    np.testing.assert_array_equal(t.numpy(), want)


def test_scaled_bytes_bad_arguments():
    x, _ = _images()
    with pytest.raises(TypeError, match="uint8"):
        ScaledBytes(x.astype(np.float32))
    with pytest.raises(TypeError, match="float32 or float64"):
        ScaledBytes(x, dtype=np.int32)
    with pytest.raises(ValueError, match="scale must lie"):
        ScaledBytes(x, 0)
    with pytest.raises(ValueError, match="scale must lie"):
        ScaledBytes(x, float("nan"))
    with pytest.raises(TypeError, match="scale must be a number"):
        ScaledBytes(x, "255")
    with pytest.raises(ValueError, match="at least one dimension"):
        ScaledBytes(np.uint8(3))


def test_byte_batch_converts_when_read():
    x, _ = _images()
    b = ScaledBytes(x, 255).batch(np.array([2, 5, 9]))
    assert isinstance(b, ByteBatch) and isinstance(b, mg.Tensor)
    assert (b.shape, b.dtype, b.ndim, len(b)) == ((3, 12), np.float32, 2, 3)
    assert b.bytes.dtype == np.uint8
    assert ByteBatch.__mro__[1].__dict__["_a"].__get__(b) is None  # not converted yet
    want = R.from_uint8(x[[2, 5, 9]], 255, np.float32)
    np.testing.assert_array_equal(b.numpy(), want)
    np.testing.assert_array_equal((b * 2).numpy(), want * 2)


@pytest.mark.parametrize("shuffle", [False, True])
def test_loader_batches_equal_float_batches(shuffle):
    x, y = _images()
    floats = R.from_uint8(x, 255, np.float32)
    a = mg.DataLoader((ScaledBytes(x), y), 32, shuffle=shuffle, seed=3)
    b = mg.DataLoader((floats, y), 32, shuffle=shuffle, seed=3)
    c = mg.DataLoader(TensorDataset(ScaledBytes(x), y), 32, shuffle=shuffle, seed=3)
    for (xa, ya), (xb, yb), (xc, _) in zip(a, b, c, strict=True):
        assert type(xa) is ByteBatch and type(xc) is ByteBatch
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
        np.testing.assert_array_equal(xc.numpy(), xb.numpy())
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())


class Scales(C.Callback):
    """Per training batch: the compiled step's divisor of uint8 inputs
    ('eager' when the batch ran eager)."""

    def before_fit(self):
        self.seen = []

    def after_batch(self):
        if self.learn.training:
            step = self.learn.compiled
            self.seen.append("eager" if step is None else step._scale)


def _fit(compile, x, y, flatten=False, dtype=np.float32, data=None):  # noqa: A002
    """Two epochs on data (default: x as ScaledBytes), valid on the same."""
    data = ScaledBytes(x, 255, dtype) if data is None else data
    dls = mg.DataLoaders(mg.DataLoader((data, y), 32, shuffle=True, seed=0),
                         mg.DataLoader((data, y), 64))
    learn = mg.Learner(dls, _model(int(np.prod(x.shape[1:])), flatten, dtype), F.cross_entropy,
                       opt_func=MOMENTUM, lr=0.1, metrics=[mg.accuracy], log=lambda *a: None,
                       cbs=[Scales()], compile=compile)
    learn.fit(2)
    return learn


@pytest.mark.parametrize("flatten,dtype", [(False, np.float32), (True, np.float32),
                                           (False, np.float64)])
def test_compiled_bytes_equal_eager(one_thread, flatten, dtype):
    """Bit for bit: compiled on bytes, eager on bytes (converted when read),
    and compiled on the converted floats."""
    x, y = _images(shape=(3, 4) if flatten else (12,))
    runs = [_fit(False, x, y, flatten, dtype), _fit(True, x, y, flatten, dtype),
            _fit(True, x, y, flatten, dtype, data=R.from_uint8(x, 255, dtype))]
    assert runs[0].scales.seen == ["eager"] * 10
    assert runs[1].scales.seen == [255.0] * 10  # the bytes were read as bytes
    assert runs[2].scales.seen == [None] * 10
    for learn in runs[1:]:
        for p, q in zip(runs[0].model.parameters(), learn.model.parameters(), strict=True):
            np.testing.assert_array_equal(p.numpy(), q.numpy())
        assert [{k: v for k, v in h.items() if k != "time"} for h in learn.history] == \
            [{k: v for k, v in h.items() if k != "time"} for h in runs[0].history]


def test_compiled_step_reads_the_bytes(one_thread):
    """The step's gradients from a ByteBatch equal those from its floats, and
    the batch is never converted (its storage stays empty)."""
    x, y = _images()
    b = ScaledBytes(x, 255).batch(slice(0, 64))
    steps = []
    for xb in (b, mg.Tensor(R.from_uint8(x[:64], 255, np.float32))):
        model = _model()
        step = compile_step(model, F.cross_entropy, MOMENTUM(model.parameters(), lr=0.1))
        step.step(xb, mg.Tensor(y[:64]))
        steps.append((step, model))
    assert ByteBatch.__mro__[1].__dict__["_a"].__get__(b) is None
    (s1, m1), (s2, m2) = steps
    for g1, g2 in zip(s1.grads().values(), s2.grads().values(), strict=True):
        np.testing.assert_array_equal(g1, g2)
    for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_bytes_of_another_dtype_go_eager(one_thread):
    """float64 floats for a float32 model: the batch is left to eager."""
    x, y = _images()
    model = _model()
    step = compile_step(model, F.cross_entropy, MOMENTUM(model.parameters(), lr=0.1))
    assert step.step(ScaledBytes(x, 255, np.float64).batch(slice(0, 8)),
                     mg.Tensor(y[:8])) is None


def test_shipped_mnist_as_bytes_reads_as_the_floats():
    from minigrad import datasets as D
    from minigrad import tasks as T

    for load in (D.mnist_sample, D.mnist_digits):
        for flatten in (True, False):
            floats, raw = load(flatten), load(flatten, as_bytes=True)
            for (xf, yf), (x8, y8) in zip(floats, raw, strict=True):
                assert isinstance(x8, ScaledBytes) and x8.shape == xf.shape
                np.testing.assert_array_equal(x8.numpy(), xf)
                np.testing.assert_array_equal(y8, yf)
    (x8, y8), (xv8, _), _ = T.load_task_data("digits")
    (xf, yf), (xvf, _) = D.mnist_digits()
    assert isinstance(x8, ScaledBytes) and x8.data.dtype == np.uint8
    np.testing.assert_array_equal(x8.numpy(), xf)
    np.testing.assert_array_equal(xv8.numpy(), xvf)
    np.testing.assert_array_equal(y8, yf)
