"""Review of the uint8 inputs (ScaledBytes, ByteBatch, the compiled step
reading bytes): a ByteBatch changed after its floats were made is read as
those floats, by eager code and by the compiled step alike."""
import functools

import numpy as np
import pytest

import minigrad as mg
from minigrad import callbacks as C
from minigrad import nn
from minigrad.compiled import compile_step
from minigrad.data import ScaledBytes
from minigrad.nn import functional as F

MOMENTUM = functools.partial(mg.SGD, momentum=0.9)


def _images(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 12), dtype=np.uint8)
    return x, rng.integers(0, 4, n)


def _model():
    rng = np.random.default_rng(1)
    return nn.Sequential(nn.Linear(12, 16, rng=rng), nn.ReLU(), nn.Linear(16, 4, rng=rng))


def _step_params(xb, y):
    model = _model()
    step = compile_step(model, F.cross_entropy, MOMENTUM(model.parameters(), lr=0.1))
    assert step.step(xb, mg.Tensor(y)) is not None
    return [p.numpy().copy() for p in model.parameters()]


def test_compiled_step_reads_a_byte_batch_changed_in_place(one_thread):
    """In place through the tensor, or through the array numpy() shares:
    the step trains on the changed floats, not on the original bytes."""
    x, y = _images()
    floats = x.astype(np.float32) / np.float32(255)
    for change in (lambda b: b.sub_(0.5), lambda b: b.numpy().__isub__(np.float32(0.5))):
        xb = ScaledBytes(x, 255).batch(slice(0, len(x)))
        change(xb)
        want = _step_params(mg.Tensor(floats - np.float32(0.5)), y)
        for p, q in zip(_step_params(xb, y), want, strict=True):
            np.testing.assert_array_equal(p, q)


class _Center(C.Callback):
    """Centres each training batch in place (a normalisation callback)."""

    def before_batch(self):
        if self.learn.training:
            self.learn.xb.sub_(0.5)


def _fit(compile):  # noqa: A002
    x, y = _images()
    data = ScaledBytes(x, 255)
    dls = mg.DataLoaders(mg.DataLoader((data, y), 32, shuffle=True, seed=0),
                         mg.DataLoader((data, y), 64))
    learn = mg.Learner(dls, _model(), F.cross_entropy, opt_func=MOMENTUM, lr=0.1,
                       log=lambda *a: None, cbs=[_Center()], compile=compile)
    learn.fit(1)
    return [p.numpy() for p in learn.model.parameters()]


def test_learner_compiled_equals_eager_with_in_place_callback(one_thread):
    for p, q in zip(_fit(True), _fit(False), strict=True):
        np.testing.assert_array_equal(p, q)


def test_byte_batch_shape_follows_assigned_data():
    """``t.data = other`` replaces the storage (PyTorch allows another
    shape): shape, ndim and len describe the new storage."""
    x, _ = _images()
    b = ScaledBytes(x, 255).batch(slice(0, 8))
    b.data = np.zeros((3, 5, 2), np.float32)
    assert (b.shape, b.ndim, len(b), b.numel()) == ((3, 5, 2), 3, 3, 30)
    assert b.size() == b.numpy().shape


def test_uint8_errors_name_the_right_operand():
    """With x uint8 the floating dtype is w's; scale= with an int8 operand
    does not call the operands floating point."""
    from minigrad import kernels as K

    x = np.zeros((4, 6), np.uint8)
    w = np.ones((3, 6), np.float32)
    with pytest.raises(TypeError, match="b has dtype float64 but w has dtype float32"):
        K.linear(x, w, np.ones(3), trans_w=True, scale=255)
    with pytest.raises(TypeError, match=r"neither a \(int8\) nor b \(float32\) is uint8"):
        K.matmul(x.astype(np.int8), w.T.copy(), scale=255)


def test_byte_batch_checks_its_arguments():
    """A ByteBatch made directly takes only what the compiled step can read:
    eager and compiled would otherwise differ (floats or int16 read eagerly,
    a kernel error mid-fit compiled; scale 0: NaN eagerly)."""
    from minigrad.data import ByteBatch

    raw = np.ones((2, 6), np.uint8)
    for bad in (raw.astype(np.float32), raw.astype(np.int16), raw.tolist()):
        with pytest.raises(TypeError, match="ByteBatch: raw must be a numpy.ndarray of dtype"):
            ByteBatch(bad, 255, np.float32)
    for scale in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="ByteBatch: scale must lie"):
            ByteBatch(raw, scale, np.float32)
    with pytest.raises(TypeError, match="ByteBatch: scale must be a number"):
        ByteBatch(raw, True, np.float32)
    with pytest.raises(TypeError, match="ByteBatch: dtype must be float32 or float64"):
        ByteBatch(raw, 255, np.int32)
    np.testing.assert_array_equal(ByteBatch(raw, 2, np.float64).numpy(), raw / 2.0)
