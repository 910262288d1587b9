"""The conv2d, pooling and batch-norm kernels against their NumPy reference,
over generated NCHW shapes (odd sizes, stride/padding/dilation combinations,
batch 1), both dtypes, every SIMD path, and one or two threads."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import random_array, seeds, tol

from minigrad import kernels as K
from minigrad import reference_conv as R


@st.composite
def conv_cases(draw, max_c=6):
    """(x shape, w shape, stride, padding, dilation) with an output >= 1x1."""
    n, c, o = draw(st.integers(1, 3)), draw(st.integers(1, max_c)), draw(st.integers(1, 7))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if draw(st.booleans()):  # the 1x1 path that skips im2col
        kh = kw = 1
        s, p = (1, 1), (0, 0)
    h = max(1, (kh - 1) * d[0] + 1 - 2 * p[0]) + draw(st.integers(0, 12))
    w = max(1, (kw - 1) * d[1] + 1 - 2 * p[1]) + draw(st.integers(0, 12))
    return (n, c, h, w), (o, c, kh, kw), s, p, d


def assert_sum_close(got, want, bound, terms, dtype):
    """|got - want| <= 2 (terms + 2) eps bound: a sum of `terms` products whose
    absolute values add up to `bound`."""
    eps = np.finfo(dtype).eps
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    limit = 2 * (terms + 2) * eps * bound + np.finfo(dtype).tiny
    assert np.all(err <= limit), f"max error {err.max()} (limit there {limit.flat[err.argmax()]})"


@given(case=conv_cases(), seed=seeds, bias=st.booleans())
def test_conv2d_and_its_gradients_match_reference(simd, threads, dtype, case, seed, bias):
    xs, ws, s, p, d = case
    geo = dict(stride=s, padding=p, dilation=d)
    x, w = random_array(seed, xs, dtype), random_array(seed + 1, ws, dtype)
    b = random_array(seed + 2, ws[:1], dtype) if bias else None
    y = K.conv2d(x, w, b, **geo)
    bound = R.conv2d(np.abs(x), np.abs(w), None if b is None else np.abs(b), **geo)
    assert_sum_close(y, R.conv2d(x, w, b, **geo), bound, ws[1] * ws[2] * ws[3] + 1, dtype)
    np.testing.assert_array_equal(K.conv2d(x, w, b, relu=True, **geo), np.maximum(y, 0))

    g = random_array(seed + 3, y.shape, dtype)
    dx = K.conv2d_backward_input(g, w, xs, **geo)
    assert_sum_close(dx, R.conv2d_backward_input(g, w, xs, **geo),
                     R.conv2d_backward_input(np.abs(g), np.abs(w), xs, **geo),
                     ws[0] * ws[2] * ws[3], dtype)
    dw = K.conv2d_backward_weight(x, g, ws[2:], **geo)
    terms = y.shape[0] * y.shape[2] * y.shape[3]
    dw_bound = R.conv2d_backward_weight(np.abs(x), np.abs(g), ws[2:], **geo)
    assert_sum_close(dw, R.conv2d_backward_weight(x, g, ws[2:], **geo), dw_bound, terms, dtype)
    acc = dw.copy()
    assert K.conv2d_backward_weight(x, g, ws[2:], **geo, out=acc, accumulate=True) is acc
    assert_sum_close(acc, 2 * dw.astype(np.float64), 2 * dw_bound, 2 * terms, dtype)
    assert_sum_close(K.conv2d_backward_bias(g), R.conv2d_backward_bias(g),
                     np.abs(g).sum(axis=(0, 2, 3)), terms, dtype)


@st.composite
def folded_cases(draw):
    """Stride-1 cases with >= 32 output channels and c*kh*kw >= 32: the
    batch-folded GEMM (the input gradient too, as a convolution of grad_out,
    when c >= 32); channels that fill micro-tiles exactly or not."""
    n, o = draw(st.integers(1, 3)), draw(st.sampled_from([32, 33, 48, 64, 70]))
    c = draw(st.sampled_from([4, 5, 9, 32, 49, 50]))
    kh, kw = draw(st.integers(2, 4)), draw(st.integers(2, 4))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    h = max(1, (kh - 1) * d[0] + 1 - 2 * p[0]) + draw(st.integers(0, 9))
    w = max(1, (kw - 1) * d[1] + 1 - 2 * p[1]) + draw(st.integers(0, 9))
    return (n, c, h, w), (o, c, kh, kw), (1, 1), p, d


@given(case=folded_cases(), seed=seeds, bias=st.booleans())
def test_conv2d_batch_folded_path_matches_reference(simd, threads, dtype, case, seed, bias):
    test_conv2d_and_its_gradients_match_reference.hypothesis.inner_test(
        simd, threads, dtype, case, seed, bias)


@pytest.mark.parametrize("case", [
    ((20, 40, 6, 7), (9, 40, 3, 3), (1, 1), (1, 1), (1, 1)),    # dW: images side by side
    ((19, 12, 5, 5), (70, 12, 2, 3), (1, 1), (0, 2), (2, 1)),   # ... dw untransposed
    ((24, 8, 11, 11), (72, 8, 3, 3), (2, 2), (1, 1), (1, 1)),   # ... in three parts
    ((2, 100, 17, 17), (40, 100, 3, 3), (1, 1), (1, 1), (1, 1)),  # implicit GEMMs: K and
])                                                              # positions in two blocks
def test_conv2d_weight_gradient_over_many_images_matches_reference(simd, threads, dtype, case):
    test_conv2d_and_its_gradients_match_reference.hypothesis.inner_test(
        simd, threads, dtype, case, 7, True)


@pytest.mark.parametrize("case", [
    ((9, 40, 2, 2), (36, 40, 3, 3), (1, 1), (1, 1), (1, 1)),    # 2x2: images side by side
    ((7, 24, 1, 1), (40, 24, 3, 3), (1, 1), (1, 1), (1, 1)),    # 1x1: only the centre tap
    ((5, 16, 2, 2), (40, 16, 3, 3), (2, 2), (1, 1), (1, 1)),    # 2x2 -> 1x1, stride 2
    ((3, 8, 3, 5), (9, 8, 4, 3), (2, 3), (3, 2), (2, 1)),       # taps dead on both sides
    ((4, 3, 1, 1), (5, 3, 1, 1), (4, 4), (3, 3), (1, 1)),       # no tap reads x: the bias
    ((70, 33, 1, 1), (20, 33, 1, 1), (1, 1), (0, 0), (1, 1)),   # 1x1 conv of 1x1 images
    ((40, 1, 12, 12), (20, 1, 5, 5), (2, 2), (2, 2), (1, 1)),   # one channel (the stem):
])                                                              # groups in parallel
def test_conv2d_of_small_outputs_matches_reference(simd, threads, dtype, case):
    """ResNet-18's last layers on 28x28 digits (2x2 and 1x1 maps): several
    images a GEMM, and the kernel taps that read only padding left out."""
    test_conv2d_and_its_gradients_match_reference.hypothesis.inner_test(
        simd, threads, dtype, case, 11, True)


@pytest.mark.parametrize("shape,k,s,p,d", [
    ((5, 32, 40, 37), 3, 1, 1, 1),    # several im2col tiles per image
    ((40, 48, 2, 2), 3, 1, 1, 1),     # 2x2 maps: images side by side, in groups
    ((33, 64, 1, 1), 3, 1, 1, 1),     # 1x1 maps: the centre tap only
    ((20, 48, 2, 2), 3, 2, 1, 1),     # 2x2 -> 1x1, stride 2: a 2x2 window of taps
    ((3, 50, 9, 11), 3, 1, 2, 2),     # stride 1, 50 channels: one GEMM over the batch
    ((9, 64, 7, 7), 3, 1, 1, 1),      # ... over several blocks, slivers across images
    ((1, 24, 61, 30), 3, 2, 1, 2),    # batch 1: threaded GEMMs instead of images
    ((7, 16, 33, 33), 1, 2, 0, 1),    # strided 1x1 (a ResNet shortcut)
    ((3, 64, 14, 14), 1, 1, 0, 1),    # 1x1: no im2col
    ((40, 1, 12, 12), 5, 2, 2, 1),    # one channel: groups of images in parallel (the stem)
])
def test_conv2d_is_bit_identical_for_any_thread_count(dtype, shape, k, s, p, d):
    x = random_array(0, shape, dtype)
    o = 20 if shape[1] < 48 else 52
    w = random_array(1, (o, shape[1], k, k), dtype)
    b = random_array(2, (o,), dtype)
    geo = dict(stride=s, padding=p, dilation=d)
    g = random_array(3, K.conv2d(x, w, b, **geo).shape, dtype)
    before, results = K.get_num_threads(), []
    try:
        for threads in (1, 2, 3, 8):
            K.set_num_threads(threads)
            results.append((K.conv2d(x, w, b, **geo), K.conv2d_backward_input(g, w, shape, **geo),
                            K.conv2d_backward_weight(x, g, (k, k), **geo)))
    finally:
        K.set_num_threads(before)
    for other in results[1:]:
        for a, c in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(a, c)
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(results[0][0], R.conv2d(x, w, b, **geo), rtol=rtol, atol=rtol)


@st.composite
def pool_cases(draw):
    """(x shape, kernel, stride, padding, dilation); padding <= kernel // 2."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    h = max(1, (k[0] - 1) * d[0] + 1 - 2 * p[0]) + draw(st.integers(0, 10))
    w = max(1, (k[1] - 1) * d[1] + 1 - 2 * p[1]) + draw(st.integers(0, 10))
    return (n, c, h, w), k, s, p, d


@given(case=pool_cases(), seed=seeds, ties=st.booleans(), specials=st.booleans())
def test_max_pool2d_matches_reference_indices_included(simd, threads, dtype, case, seed,
                                                       ties, specials):
    xs, k, s, p, d = case
    x = random_array(seed, xs, dtype)
    if ties:
        x = np.round(x)
    if specials:
        flat = x.reshape(-1)
        rng = np.random.default_rng(seed)
        flat[rng.integers(0, flat.size, 3)] = rng.choice([np.nan, -np.inf, np.inf], 3)
    y, idx = K.max_pool2d(x, k, s, p, d)
    y_ref, idx_ref = R.max_pool2d(x, k, s, p, d)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)
    g = random_array(seed + 1, y.shape, dtype)
    np.testing.assert_allclose(K.max_pool2d_backward(g, idx, xs),
                               R.max_pool2d_backward(g, idx, xs), rtol=tol(dtype)[0] * 10)


@given(case=pool_cases(), seed=seeds, count_include_pad=st.booleans())
def test_avg_pool2d_matches_reference(simd, threads, dtype, case, seed, count_include_pad):
    xs, k, s, p, _ = case
    x = random_array(seed, xs, dtype)
    rtol, atol = tol(dtype)
    y = K.avg_pool2d(x, k, s, p, count_include_pad)
    np.testing.assert_allclose(y, R.avg_pool2d(x, k, s, p, count_include_pad),
                               rtol=rtol * 10, atol=atol * 10)
    g = random_array(seed + 1, y.shape, dtype)
    np.testing.assert_allclose(K.avg_pool2d_backward(g, xs, k, s, p, count_include_pad),
                               R.avg_pool2d_backward(g, xs, k, s, p, count_include_pad),
                               rtol=rtol * 10, atol=atol * 10)


@given(n=st.integers(1, 3), c=st.integers(1, 4), h=st.integers(1, 17), w=st.integers(1, 17),
       oh=st.integers(1, 20), ow=st.integers(1, 20), seed=seeds)
def test_adaptive_avg_pool2d_matches_reference(simd, threads, dtype, n, c, h, w, oh, ow, seed):
    x = random_array(seed, (n, c, h, w), dtype)
    rtol, atol = tol(dtype)
    y = K.adaptive_avg_pool2d(x, (oh, ow))
    np.testing.assert_allclose(y, R.adaptive_avg_pool2d(x, (oh, ow)), rtol=rtol * 10,
                               atol=atol * 10)
    g = random_array(seed + 1, y.shape, dtype)
    np.testing.assert_allclose(K.adaptive_avg_pool2d_backward(g, x.shape),
                               R.adaptive_avg_pool2d_backward(g, x.shape), rtol=rtol * 10,
                               atol=atol * 10)


def check_batch_norm(x, seed, training, affine, relu):
    """batch_norm and its backward on x (with random weight, bias and running
    statistics from seed) against the reference."""
    dtype, shape, c = x.dtype.type, x.shape, x.shape[1]
    weight = random_array(seed + 1, (c,), dtype) if affine else None
    bias = random_array(seed + 2, (c,), dtype) if affine else None
    rm, rv = random_array(seed + 3, (c,), dtype), np.abs(random_array(seed + 4, (c,), dtype)) + 1
    rm_ref, rv_ref = rm.copy(), rv.copy()
    got = K.batch_norm(x, weight, bias, rm, rv, training=training, relu=relu)
    want = R.batch_norm(x, weight, bias, rm_ref, rv_ref, training=training, relu=relu)
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    for a, b in zip(got + (rm, rv), want + (rm_ref, rv_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)
    g = random_array(seed + 5, shape, dtype)
    y = got[0] if relu else None
    grads = K.batch_norm_backward(g, x, weight, got[1], got[2], training=training, y=y)
    wants = R.batch_norm_backward(g, x, weight, got[1], got[2], training=training, y=y)
    scale = np.abs(g).sum() / c
    for a, b in zip(grads, wants, strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol * 10, atol=rtol * scale)


@given(n=st.integers(1, 4), c=st.integers(1, 5), hw=st.sampled_from([(1, 1), (1, 2), (3, 5),
                                                                       (8, 8), (13, 11)]),
       seed=seeds, training=st.booleans(), affine=st.booleans(), relu=st.booleans(),
       two_d=st.booleans(), shift=st.sampled_from([0.0, 100.0]))
def test_batch_norm_matches_reference(simd, threads, dtype, n, c, hw, seed, training, affine,
                                      relu, two_d, shift):
    shape = (n, c) if two_d else (n, c) + hw
    if training and np.prod(shape) // c < 2:
        shape = (n + 1,) + shape[1:]
    check_batch_norm(random_array(seed, shape, dtype) + dtype(shift), seed, training, affine,
                     relu)


@given(shape=st.sampled_from([(7, 150), (5, 70, 1, 1), (2, 64), (3, 129, 1, 1)]), seed=seeds,
       training=st.booleans(), affine=st.booleans(), relu=st.booleans())
def test_batch_norm_of_one_element_planes_matches_reference(simd, threads, dtype, shape, seed,
                                                            training, affine, relu):
    """(n, c) inputs and 1x1 maps take the channels side by side in blocks of
    64 (MG_BN_ROWS): several blocks, a partial last one, and one full block."""
    check_batch_norm(random_array(seed, shape, dtype) + dtype(3), seed, training, affine, relu)


def test_batch_norm_statistics_are_bit_identical_for_any_thread_count(dtype):
    before = K.get_num_threads()
    for shape in ((6, 40, 17, 17), (300, 700)):  # planes of 289 elements; (n, c) rows
        x = random_array(0, shape, dtype)
        g = random_array(1, x.shape, dtype)
        results = []
        try:
            for threads in (1, 2, 5):
                K.set_num_threads(threads)
                y, m, s = K.batch_norm(x)
                results.append((y, m, s) + K.batch_norm_backward(g, x, None, m, s))
        finally:
            K.set_num_threads(before)
        for other in results[1:]:
            for a, b in zip(results[0], other, strict=True):
                np.testing.assert_array_equal(a, b)


@given(planes=st.sampled_from([(2, 8), (3, 13), (5, 7)]), case=pool_cases(), seed=seeds,
       ties=st.booleans())
def test_max_pool2d_of_many_planes_matches_reference(simd, threads, dtype, planes, case, seed,
                                                     ties):
    """Max pooling takes a vector's length of planes at once (mg_pool_lanes.h):
    16, 32 or 35 planes fill some blocks and leave a partial last one, with
    NaN, infinities and ties in any of them."""
    _, k, s, p, d = case
    x = random_array(seed, planes + case[0][2:], dtype)
    if ties:
        x = np.round(x)
    flat = x.reshape(-1)
    rng = np.random.default_rng(seed)
    flat[rng.integers(0, flat.size, 6)] = rng.choice([np.nan, -np.inf, np.inf], 6)
    y, idx = K.max_pool2d(x, k, s, p, d)
    y_ref, idx_ref = R.max_pool2d(x, k, s, p, d)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)


@pytest.mark.parametrize("geometry", [(2, 2, 0, 1), (3, 2, 1, 1), (3, 1, 1, 2)])
def test_max_pool2d_of_planes_too_large_for_the_lanes_matches_reference(dtype, geometry):
    """Planes over MG_POOL_LANES_PLANE (16384) elements are pooled one by one."""
    k, s, p, d = geometry
    x = random_array(3, (1, 3, 131, 127), dtype)
    x[0, 1, 5, 7], x[0, 2, 100, 3], x[0, 0, 0, 0] = np.nan, -np.inf, np.inf
    x[0, 2, :4, :4] = -np.inf  # padded windows of -inf only: the first tap inside wins
    y, idx = K.max_pool2d(x, k, s, p, d)
    y_ref, idx_ref = R.max_pool2d(x, k, s, p, d)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)


@pytest.mark.parametrize("bad", [np.nan, -np.nan, np.inf, -np.inf])
def test_nan_and_inf_reach_outputs_through_taps_that_read_only_padding(dtype, bad):
    """A kernel tap left out because it reads only padding still multiplies
    zeros: a NaN or inf weight there makes its output channel NaN, and a NaN or
    inf in grad_out makes those taps' weight gradient NaN, as the reference
    (and PyTorch) give."""
    x = random_array(0, (2, 4, 1, 1), dtype)
    w = random_array(1, (3, 4, 3, 3), dtype)
    w[1, 2, 0, 0] = bad  # a corner tap: on a 1x1 map it reads only padding
    b = random_array(2, (3,), dtype)
    y, ref = K.conv2d(x, w, b, padding=1), R.conv2d(x, w, b, padding=1)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    assert np.isnan(y[:, 1]).all() and not np.isnan(y[:, [0, 2]]).any()
    g = random_array(3, y.shape, dtype)
    g[0, 2] = bad
    dw = K.conv2d_backward_weight(x, g, (3, 3), padding=1)
    np.testing.assert_array_equal(np.isnan(dw), np.isnan(R.conv2d_backward_weight(
        x, g, (3, 3), padding=1)))
    assert np.isnan(dw[2, :, 0, 0]).all()
    # no tap reads x at all (stride 4, padding 3 on a 1x1 image): the bias, or NaN
    w1 = random_array(4, (3, 4, 1, 1), dtype)
    w1[0, 0] = bad
    y1 = K.conv2d(x, w1, b, stride=4, padding=3)
    np.testing.assert_array_equal(np.isnan(y1), np.isnan(R.conv2d(x, w1, b, stride=4,
                                                                   padding=3)))
    assert np.isnan(y1[:, 0]).all()
