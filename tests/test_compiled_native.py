"""The compiled step's kernel calls made by one C call a phase
(``kernels.StepProgram``): taken where it applies, bit for bit the calls made
from Python, made again when what it reads is replaced, and checked."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import kernels as K
from minigrad import nn, optim
from minigrad.compiled import CompiledStep, compile_step
from minigrad.data import ScaledBytes
from minigrad.nn import functional as F

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(seed=1, sizes=(12, 9, 7, 4), bias=True, dtype=np.float32):
    rng = np.random.default_rng(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b, bias=bias, rng=rng, dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _batches(n=40, d=12, classes=4, batch=8, as_bytes=False, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    if as_bytes:
        x = ScaledBytes(rng.integers(0, 256, (n, d), dtype=np.uint8), 255, dtype)
    else:
        x = rng.standard_normal((n, d)).astype(dtype)
    return list(mg.DataLoader((x, y), batch, shuffle=True, seed=seed))


def _run(native, make_opt, loss=F.cross_entropy, between=None, **kw):
    """Losses, parameters and optimizer state after compiled steps, the calls
    made natively or from Python; ``between(i, model, opt)`` runs before step i."""
    saved = CompiledStep.NATIVE
    CompiledStep.NATIVE = native
    try:
        model = _model(dtype=kw.get("dtype", np.float32), bias=kw.pop("bias", True))
        opt = make_opt(model.parameters())
        step = compile_step(model, loss, opt)
        losses, used = [], []
        for i, (xb, yb) in enumerate(_batches(**kw)):
            if between is not None:
                between(i, model, opt)
            losses.append(step.step(xb, yb))
            used.append((step._prog is not None, step._prog_sgd))
    finally:
        CompiledStep.NATIVE = saved
    params = [p.numpy().copy() for p in model.parameters()]
    state = [{k: np.copy(v) for k, v in opt.state.get(p, {}).items()}
             for p in model.parameters()]
    return losses, params, state, used


def _assert_same(a, b):
    (la, pa, sa, _), (lb, pb, sb, _) = a, b
    assert all(x is not None and np.array_equal(x, y) for x, y in zip(la, lb, strict=True))
    assert all(np.array_equal(x, y) for x, y in zip(pa, pb, strict=True))
    assert [sorted(s) for s in sa] == [sorted(s) for s in sb]
    for s, t in zip(sa, sb, strict=True):
        assert all(np.array_equal(s[k], t[k]) for k in s)


def _sgd(momentum=0.9, **kw):
    return lambda params: mg.SGD(params, lr=0.05, momentum=momentum, **kw)


@pytest.mark.parametrize("as_bytes", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_native_calls_are_the_python_calls_bit_for_bit(as_bytes, dtype, momentum):
    kw = dict(as_bytes=as_bytes, dtype=dtype, n=44)  # batches of 8 and a last of 4
    native = _run(True, _sgd(momentum, weight_decay=0.01), **kw)
    _assert_same(native, _run(False, _sgd(momentum, weight_decay=0.01), **kw))
    used = native[3]
    assert all(prog for prog, _ in used)
    # SGD's first update (which makes its state) runs in Python, the rest natively
    assert not used[0][1] and all(sgd for _, sgd in used[1:])


@pytest.mark.parametrize("loss", [F.binary_cross_entropy_with_logits, F.mnist_loss])
def test_float_target_losses_and_no_bias(loss):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((32, 12)).astype(np.float32)
    y = (rng.random((32, 4)) > 0.5).astype(np.float32)
    results = []
    for native in (True, False):
        CompiledStep.NATIVE = native
        try:
            model = _model(bias=False)
            opt = mg.SGD(model.parameters(), lr=0.1, momentum=0.9)
            step = compile_step(model, loss, opt)
            losses = [step.step(mg.Tensor(x[i:i + 8]), mg.Tensor(y[i:i + 8]))
                      for i in range(0, 32, 8)]
            assert (step._prog is not None) == native
            results.append((losses, [p.numpy().copy() for p in model.parameters()]))
        finally:
            CompiledStep.NATIVE = True
    (la, pa), (lb, pb) = results
    assert all(np.array_equal(a, b) for a, b in zip(la, lb, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(pa, pb, strict=True))


def test_adam_updates_from_python_after_native_gradients():
    make = lambda params: optim.Adam(params, lr=0.01)  # noqa: E731
    native = _run(True, make, as_bytes=True)
    _assert_same(native, _run(False, make, as_bytes=True))
    assert all(prog and not sgd for prog, sgd in native[3])


def test_replaced_arrays_and_changed_hyper_parameters_are_followed():
    def between(i, model, opt):
        if i == 2:  # a parameter's array replaced: the program is made again
            w = model.parameters()[0]
            w.data = w.numpy() * 0.5
        if i == 3:  # Nesterov: SGD._update's own formula, from Python
            opt.param_groups[0]["nesterov"] = True
        if i == 4:
            opt.param_groups[0]["nesterov"] = False
            opt.param_groups[0]["lr"] = 0.01
        if i == 5:  # the optimizer's state replaced
            opt.load_state_dict(opt.state_dict())
    native = _run(True, _sgd(), between=between, n=64)
    _assert_same(native, _run(False, _sgd(), between=between, n=64))
    assert all(prog for prog, _ in native[3])
    # made again with SGD's updates after each replacement (state made by then)
    assert all(sgd for _, sgd in native[3][1:])


def test_reordered_parameter_groups_and_layers_frozen_between_the_phases():
    def two_groups(params):
        return mg.SGD([{"params": params[:2], "lr": 0.1}, {"params": params[2:], "lr": 0.01}],
                      momentum=0.9)

    def between(i, model, opt):
        if i == 2:
            opt.param_groups.reverse()
    _assert_same(_run(True, two_groups, between=between), _run(False, two_groups,
                                                                between=between))

    def freeze(i, model):
        if i != 2:
            return None
        w = model.parameters()[0]  # frozen after forward: eager leaves it without a gradient
        w.requires_grad_(False)
        before = w.numpy().copy()

        def check():
            assert np.array_equal(w.numpy(), before)
            w.requires_grad_(True)
        return check
    results = [_train_between_phases(native, freeze) for native in (True, False)]
    assert all(np.array_equal(a, b) for a, b in zip(*results, strict=True))


def _train_between_phases(native, mid):
    """Parameters after compiled steps (natively or from Python), with
    mid(i, model) run between step i's forward and backward_and_update; what
    it returns, if not None, runs after that step."""
    CompiledStep.NATIVE = native
    try:
        model = _model()
        opt = mg.SGD(model.parameters(), lr=0.1, momentum=0.9)
        step = compile_step(model, F.cross_entropy, opt)
        for i, (xb, yb) in enumerate(_batches()):
            step.forward(xb, yb)
            after = mid(i, model)
            step.backward_and_update()
            if after is not None:
                after()
        return [p.numpy().copy() for p in model.parameters()]
    finally:
        CompiledStep.NATIVE = True


def test_a_parameter_replaced_between_forward_and_backward_is_updated_as_eager():
    def replace(i, model):
        if i == 2:
            b = model.parameters()[1]
            b.data = b.numpy() + 1
    results = [_train_between_phases(native, replace) for native in (True, False)]
    assert all(np.array_equal(a, b) for a, b in zip(*results, strict=True))


@pytest.mark.parametrize("native", [True, False])
def test_labels_out_of_range_are_left_to_eager_and_any_int_labels_are_taken(native):
    CompiledStep.NATIVE = native
    try:
        model = _model()
        step = compile_step(model, F.cross_entropy, mg.SGD(model.parameters(), lr=0.1))
        xb, yb = _batches()[0]
        step.step(xb, yb)
        assert (step._prog is not None) == native
        bad = yb.numpy().copy()
        bad[3] = 4
        assert step.forward(xb, mg.Tensor(bad)) is None
        bad[3] = -1
        assert step.forward(xb, mg.Tensor(bad)) is None
        raw = np.zeros(8 * 8 + 1, np.uint8)  # int64 labels at an odd address
        odd = np.frombuffer(raw.data, np.int64, 8, offset=1)
        odd[:] = yb.numpy()
        assert not odd.flags.aligned
        want = step.forward(xb, yb)
        for labels in (odd, yb.numpy().astype(np.int32), yb.numpy()[::-1].copy()[::-1]):
            assert np.array_equal(step.forward(xb, mg.Tensor(labels)), want)
    finally:
        CompiledStep.NATIVE = True


def _program(n=4, k=3, c=2, u8=False, dtype=np.float32, z=None):
    prog = K.StepProgram(dtype, n, k, u8, True, c)
    w = np.ones((c, k), dtype)
    z = np.empty((n, c), dtype) if z is None else z
    dz = np.empty((n, c), dtype)
    prog.linear(0, None, w, None, z, False)
    prog.softmax_cross_entropy(0, z, dz)
    return prog, w, z, dz


def test_the_program_checks_the_batch():
    prog, w, z, dz = _program()
    x, t = np.ones((4, 3), np.float32), np.zeros(4, np.int64)
    assert prog.run(0, x, t) == pytest.approx(np.log(2))
    with pytest.raises(TypeError, match="float32"):
        prog.run(0, x.astype(np.float64), t)
    with pytest.raises(ValueError, match="shape"):
        prog.run(0, np.ones((5, 3), np.float32), t)
    with pytest.raises(ValueError, match="C-contiguous"):
        prog.run(0, np.ones((3, 4), np.float32).T, t)
    with pytest.raises(TypeError, match="int64"):
        prog.run(0, x, t.astype(np.int32))
    with pytest.raises(ValueError, match=r"targets\[2\] = 7"):
        prog.run(0, x, np.array([0, 1, 7, 0]))
    base = np.zeros(20, np.float32)
    over, *_ = _program(z=base[:8].reshape(4, 2))
    with pytest.raises(ValueError, match="overlaps a buffer"):
        over.run(0, base[4:16].reshape(4, 3), t)
    with pytest.raises(ValueError, match="phase"):
        prog.run(2, x, t)
    with pytest.raises(ValueError, match="needs targets"):
        prog.run(0, x)
    u8, *_ = _program(u8=True)
    with pytest.raises(TypeError, match="uint8"):
        u8.run(0, x, t)
    with pytest.raises(ValueError, match="scale"):
        u8.run(0, np.ones((4, 3), np.uint8), t, 0.0)


def test_the_program_checks_its_arrays_when_made():
    prog = K.StepProgram(np.float32, 4, 3, False, True, 2)
    base = np.ones(20, np.float32)
    w, z = base[:6].reshape(2, 3), np.empty((4, 2), np.float32)
    with pytest.raises(ValueError, match="shape"):
        prog.linear(0, None, w, None, np.empty((4, 3), np.float32), False)
    with pytest.raises(TypeError, match="dtype"):
        prog.linear(0, None, w.astype(np.float64), None, z, False)
    with pytest.raises(ValueError, match="C-contiguous"):
        prog.linear(0, None, np.ones((3, 2), np.float32).T, None, z, False)
    z.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        prog.linear(0, None, w, None, z, False)
    z = np.empty((4, 2), np.float32)
    prog.linear(0, None, w, None, z, False)
    with pytest.raises(ValueError, match="overlaps"):  # an output over an array it reads
        prog.softmax_cross_entropy(0, z, base[4:12].reshape(4, 2))
    with pytest.raises(ValueError, match="logits"):
        prog.softmax_cross_entropy(0, np.empty((3, 2), np.float32),
                                   np.empty((3, 2), np.float32))
    with pytest.raises(ValueError, match="phase"):
        prog.bias_grad(3, z, np.empty(2, np.float32))
    with pytest.raises(TypeError, match="float32 or float64"):
        K.StepProgram(np.int32, 4, 3, False, True, 2)


def test_a_refused_call_leaves_the_program_as_it_was():
    prog, w, z, dz = _program()
    x, t = np.ones((4, 3), np.float32), np.zeros(4, np.int64)
    with pytest.raises(ValueError, match="logits"):  # checked after its arrays were bound
        prog.softmax_cross_entropy(0, np.zeros((64, 2), np.float32), np.zeros((64, 2),
                                                                             np.float32))
    with pytest.raises(ValueError, match="shape"):  # out checked after its shapes were set
        prog.matmul(1, z, np.ones((2, 50), np.float32), np.empty((3, 3), np.float32), False)
    assert prog.run(0, x, t) == pytest.approx(np.log(2))
    prog.run(1, x)
    # outputs bound before a refused one are not kept: x may still use their memory
    base = np.zeros(40, np.float32)
    h = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match="dx has shape"):
        prog.head(0, h, w, None, base[:8].reshape(4, 2), base[8:16].reshape(4, 2),
                  np.empty((4, 4), np.float32), False)
    assert prog.run(0, base[:12].reshape(4, 3) + 1, t) == pytest.approx(np.log(2))
    assert prog.run(0, base[:12].reshape(4, 3), t) == pytest.approx(np.log(2))


def test_calls_are_refused_in_the_wrong_phase_and_while_unmade():
    prog, w, z, dz = _program()
    p, g = np.ones(3, np.float32), np.ones(3, np.float32)
    for bad in (lambda: prog.sgd(0, p, g, None, 0), lambda: prog.sgd(1, p, g, None, 0),
                lambda: prog.linear(2, None, w, None, np.empty((4, 2), np.float32), False),
                lambda: prog.softmax_cross_entropy(1, z, np.empty((4, 2), np.float32)),
                lambda: prog.bias_grad(-1, z, np.empty(2, np.float32))):
        with pytest.raises(ValueError, match="phase"):
            bad()
    with pytest.raises(TypeError):
        prog.run(1)  # x is needed by every phase that runs
    with pytest.raises(RuntimeError, match="already made"):
        prog.__init__(np.float32, 4, 3, False, True, 2)
    unmade = K.StepProgram.__new__(K.StepProgram)
    with pytest.raises(RuntimeError, match="not made"):
        unmade.bias_grad(1, z, np.empty(2, np.float32))
    with pytest.raises(RuntimeError, match="not made"):
        unmade.update([0.1, 0.0, 0.0])


def test_an_output_made_read_only_later_is_not_written():
    prog, w, z, dz = _program()
    p, g = np.ones(3, np.float32), np.ones(3, np.float32)
    prog.sgd(2, p, g, None, 0)
    p.flags.writeable = False
    assert prog.update([0.5, 0.0, 0.0]) is False
    assert np.array_equal(p, np.ones(3, np.float32))
    x, t = np.ones((4, 3), np.float32), np.zeros(4, np.int64)
    prog.run(0, x, t)  # a phase that does not write p still runs
    z.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        prog.run(0, x, t)


def test_update_refuses_values_sgd_would_refuse():
    prog = K.StepProgram(np.float32, 4, 3, False, True, 2)
    p, g = np.ones(5, np.float32), np.full(5, 2.0, np.float32)
    v = np.zeros(5, np.float32)
    prog.sgd(2, p, g, None, 0)
    for bad in ([np.nan, 0, 0], [-0.1, 0, 0], [0.1, 0.9, 0]):  # the last: no velocity
        assert prog.update(bad) is False
        assert np.array_equal(p, np.ones(5, np.float32))
    assert prog.update([0.5, 0.0, 0.0]) is True
    assert np.array_equal(p, np.zeros(5, np.float32))
    prog2 = K.StepProgram(np.float32, 4, 3, False, True, 2)
    prog2.sgd(2, p, g, v, 0)
    assert prog2.update([0.5, 0.5, 0.0]) is True
    assert np.array_equal(v, g) and np.array_equal(p, -g / 2)
    with pytest.raises(ValueError, match="group 0"):
        prog2.update([])
    with pytest.raises(ValueError, match="3 numbers"):
        prog2.update([0.5, 0.5])
    with pytest.raises(TypeError):
        prog2.update(["fast", 0.5, 0.0])


def test_update_reads_its_own_copy_of_the_values():
    prog = K.StepProgram(np.float32, 4, 3, False, True, 2)
    p, g = np.ones(5, np.float32), np.ones(5, np.float32)
    prog.sgd(2, p, g, None, 0)
    hp = []

    class Shrinking:  # clears the caller's list while it is read
        def __float__(self):
            hp.clear()
            return 0.5
    hp += [Shrinking(), 0.0, 0.0] * 100
    assert prog.update(hp) is True  # read past the list's end when update read it in place
    assert hp == [] and np.array_equal(p, np.full(5, 0.5, np.float32))
