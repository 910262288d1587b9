"""adam_step against the NumPy reference (every SIMD path, 1 and 2 threads)
and, when PyTorch imports, against torch.optim.Adam and AdamW step by step."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import dims, random_array, seeds, tol

from minigrad import kernels as K
from minigrad import reference as R


@given(n=st.one_of(dims(0, 300), st.sampled_from([65537, 200_003])), seed=seeds,
       lr=st.sampled_from([0.0, 1e-3, 0.1]), beta1=st.sampled_from([0.0, 0.3, 0.9]),
       wd=st.sampled_from([0.0, 0.05]), decoupled=st.booleans())
def test_adam_step_matches_reference(simd, threads, dtype, n, seed, lr, beta1, wd, decoupled):
    p = random_array(seed, n, dtype)
    m, v = np.zeros(n, dtype), np.zeros(n, dtype)
    p_ref, m_ref, v_ref = p.astype(np.float64), m.astype(np.float64), v.astype(np.float64)
    for step in range(1, 4):
        g = random_array(seed + step, n, dtype)
        assert K.adam_step(p, g, m, v, step, lr, beta1, 0.99, 1e-8, wd, decoupled) is p
        R.adam_step(p_ref, g.astype(np.float64), m_ref, v_ref, step, lr, beta1, 0.99, 1e-8,
                    wd, decoupled)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(m, m_ref, rtol=rtol * 10, atol=atol * 10)
    np.testing.assert_allclose(v, v_ref, rtol=rtol * 10, atol=atol * 10)
    # Adam's step divides by sqrt(v) + eps: rounding of v scales by up to 1/eps at
    # tiny v, so p is compared within lr of its own size
    np.testing.assert_allclose(p, p_ref, rtol=rtol * 10, atol=atol * 10 + lr * 1e-4)


@pytest.mark.parametrize("decoupled", [False, True], ids=["Adam", "AdamW"])
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_adam_step_matches_pytorch_step_by_step(dtype, decoupled, wd):
    torch = pytest.importorskip("torch", reason="torch.optim.Adam is the semantic reference")
    rng = np.random.default_rng(3)
    p = rng.standard_normal(1000).astype(dtype)
    m, v = np.zeros_like(p), np.zeros_like(p)
    tp = torch.nn.Parameter(torch.from_numpy(p.copy()))
    kw = dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=wd)
    opt = torch.optim.AdamW([tp], **kw) if decoupled else torch.optim.Adam([tp], **kw)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for step in range(1, 21):
        g = rng.standard_normal(p.shape).astype(dtype)
        tp.grad = torch.from_numpy(g.copy())
        opt.step()
        K.adam_step(p, g, m, v, step, 0.01, 0.8, 0.95, 1e-6, wd, decoupled)
        state = opt.state[tp]
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=rtol, atol=rtol * 1e-2)
        np.testing.assert_allclose(m, state["exp_avg"].numpy(), rtol=rtol, atol=rtol * 1e-2)
        np.testing.assert_allclose(v, state["exp_avg_sq"].numpy(), rtol=rtol, atol=rtol * 1e-2)


def test_adam_step_checks_its_arguments():
    p, g = np.ones(4, np.float32), np.ones(4, np.float32)
    m, v = np.zeros(4, np.float32), np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="step"):
        K.adam_step(p, g, m, v, 0, 1e-3)
    with pytest.raises(ValueError, match="beta1"):
        K.adam_step(p, g, m, v, 1, 1e-3, beta1=1.0)
    with pytest.raises(ValueError, match="lr"):
        K.adam_step(p, g, m, v, 1, float("nan"))
    with pytest.raises(ValueError, match="overlaps"):
        K.adam_step(p, g, m, m, 1, 1e-3)
    with pytest.raises(ValueError, match="must match"):
        K.adam_step(p, g, m, np.zeros(5, np.float32), 1, 1e-3)
    with pytest.raises(TypeError, match="one dtype"):
        K.adam_step(p, g, m, np.zeros(4), 1, 1e-3)
    ro = np.zeros(4, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        K.adam_step(p, g, ro, v, 1, 1e-3)
    np.testing.assert_array_equal(p, 1)  # failed calls changed nothing
