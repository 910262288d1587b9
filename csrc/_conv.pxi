# Wrappers of the NCHW kernels: conv2d and pooling (batch norm: _bn.pxi).
# Arguments are checked with _validate.pxi. Every array is C-contiguous, NCHW
# like PyTorch; windows follow PyTorch's rules (groups=1, ceil_mode=False).

# ---------------------------------------------------------------- conv2d

def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1, bint relu=False, out=None):
    """2-D convolution (cross-correlation, as PyTorch), groups=1.

    x: (N, C, H, W); w: (O, C, kh, kw); b: (O,) or None. Returns
    (N, O, OH, OW) with OH = (H + 2*padding - dilation*(kh-1) - 1) // stride + 1;
    relu=True applies max(y, 0) as the GEMM stores y."""
    cdef str fn = "conv2d"
    cdef cnp.ndarray X = _nchw(x, fn, "x", -1)
    cdef int t = _float_type(X, fn, "x")
    cdef cnp.ndarray W = _nchw(w, fn, "w", t), B = None
    if W.shape[1] != X.shape[1]:
        raise ValueError(f"{fn}: w has {W.shape[1]} input channels but x has {X.shape[1]} "
                         f"(x {_shape(X)}, w {_shape(W)})")
    cdef mg_conv2d_geom g
    _window(&g, fn, _shape(X), W.shape[0], (W.shape[2], W.shape[3]), stride, padding,
            dilation, False)
    if b is not None:
        B = _vector(b, W.shape[0], fn, "b", t, False)
    cdef cnp.ndarray Y = _output(out, (g.n, g.oc, g.oh, g.ow), t, fn, "out")
    _disjoint_all(Y, [("x", X), ("w", W), ("b", B)], fn, "out")
    cdef void *px = _data(X)
    cdef void *pw = _data(W)
    cdef void *pb = _data(B) if B is not None else NULL
    cdef void *py = _data(Y)
    cdef int rc
    with nogil:
        if _is32(t):
            rc = mg_conv2d_f32(&g, <float *>px, <float *>pw, <float *>pb, relu, <float *>py)
        else:
            rc = mg_conv2d_f64(&g, <double *>px, <double *>pw, <double *>pb, relu,
                               <double *>py)
    if rc != 0:
        raise MemoryError(f"{fn}: out of memory")
    return Y


def conv2d_backward_input(grad_out, w, input_shape, *, stride=1, padding=0, dilation=1,
                          out=None):
    """Gradient of conv2d with respect to its input, of shape input_shape."""
    cdef str fn = "conv2d_backward_input"
    cdef cnp.ndarray G = _nchw(grad_out, fn, "grad_out", -1)
    cdef int t = _float_type(G, fn, "grad_out")
    cdef cnp.ndarray W = _nchw(w, fn, "w", t)
    cdef tuple xs = _input_shape(input_shape, fn)
    if W.shape[1] != xs[1]:
        raise ValueError(f"{fn}: w has {W.shape[1]} input channels but input_shape has "
                         f"{xs[1]}")
    cdef mg_conv2d_geom g
    _window(&g, fn, xs, W.shape[0], (W.shape[2], W.shape[3]), stride, padding, dilation,
            False)
    _check_grad_out(G, &g, fn)
    cdef cnp.ndarray D = _output(out, xs, t, fn, "out")
    _disjoint_all(D, [("grad_out", G), ("w", W)], fn, "out")
    cdef void *pg = _data(G)
    cdef void *pw = _data(W)
    cdef void *pd = _data(D)
    cdef int rc
    with nogil:
        if _is32(t):
            rc = mg_conv2d_backward_input_f32(&g, <float *>pg, <float *>pw, <float *>pd)
        else:
            rc = mg_conv2d_backward_input_f64(&g, <double *>pg, <double *>pw, <double *>pd)
    if rc != 0:
        raise MemoryError(f"{fn}: out of memory")
    return D


def conv2d_backward_weight(x, grad_out, kernel_size, *, stride=1, padding=0, dilation=1,
                           out=None, bint accumulate=False):
    """Gradient of conv2d with respect to its weight (O, C, kh, kw); with
    accumulate=True it is added into out."""
    cdef str fn = "conv2d_backward_weight"
    cdef cnp.ndarray X = _nchw(x, fn, "x", -1)
    cdef int t = _float_type(X, fn, "x")
    cdef cnp.ndarray G = _nchw(grad_out, fn, "grad_out", t)
    cdef mg_conv2d_geom g
    _window(&g, fn, _shape(X), G.shape[1], kernel_size, stride, padding, dilation, False)
    _check_grad_out(G, &g, fn)
    if accumulate and out is None:
        raise ValueError(f"{fn}: accumulate=True needs out=")
    cdef cnp.ndarray D = _output(out, (g.oc, g.c, g.kh, g.kw), t, fn, "out")
    _disjoint_all(D, [("x", X), ("grad_out", G)], fn, "out")
    cdef void *px = _data(X)
    cdef void *pg = _data(G)
    cdef void *pd = _data(D)
    cdef int rc
    with nogil:
        if _is32(t):
            rc = mg_conv2d_backward_weight_f32(&g, <float *>px, <float *>pg, <float *>pd,
                                               accumulate)
        else:
            rc = mg_conv2d_backward_weight_f64(&g, <double *>px, <double *>pg,
                                               <double *>pd, accumulate)
    if rc != 0:
        raise MemoryError(f"{fn}: out of memory")
    return D


def conv2d_backward_bias(grad_out, out=None):
    """Gradient of conv2d with respect to its bias: grad_out summed over N, H, W."""
    cdef str fn = "conv2d_backward_bias"
    cdef cnp.ndarray G = _nchw(grad_out, fn, "grad_out", -1)
    cdef int t = _float_type(G, fn, "grad_out")
    cdef Py_ssize_t n = G.shape[0], c = G.shape[1], hw = G.shape[2] * G.shape[3]
    cdef cnp.ndarray D = _output(out, (c,), t, fn, "out")
    _disjoint(D, G, fn, "out", "grad_out", False)
    cdef void *pg = _data(G)
    cdef void *pd = _data(D)
    with nogil:
        if _is32(t):
            mg_channel_sum_f32(n, c, hw, <float *>pg, <float *>pd)
        else:
            mg_channel_sum_f64(n, c, hw, <double *>pg, <double *>pd)
    return D


# ---------------------------------------------------------------- pooling

def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1):
    """Max pooling; returns (y, indices), indices (int64) flat in each input
    plane (h * W + w) as PyTorch's return_indices. stride defaults to
    kernel_size; padding is at most half the kernel and never wins."""
    cdef str fn = "max_pool2d"
    cdef cnp.ndarray X = _nchw(x, fn, "x", -1)
    cdef int t = _float_type(X, fn, "x")
    cdef mg_conv2d_geom g
    _window(&g, fn, _shape(X), X.shape[1], kernel_size,
            kernel_size if stride is None else stride, padding, dilation, True)
    cdef cnp.ndarray Y = _output(None, (g.n, g.c, g.oh, g.ow), t, fn, "out")
    cdef cnp.ndarray I = np.empty((g.n, g.c, g.oh, g.ow), np.int64)
    cdef void *px = _data(X)
    cdef void *py = _data(Y)
    cdef int64_t *pi = <int64_t *>_data(I)
    with nogil:
        if _is32(t):
            mg_max_pool2d_f32(&g, <float *>px, <float *>py, pi)
        else:
            mg_max_pool2d_f64(&g, <double *>px, <double *>py, pi)
    return Y, I


def max_pool2d_backward(grad_out, indices, input_shape, out=None):
    """Gradient of max_pool2d: each grad_out element added at its index."""
    cdef str fn = "max_pool2d_backward"
    cdef cnp.ndarray G = _nchw(grad_out, fn, "grad_out", -1)
    cdef int t = _float_type(G, fn, "grad_out")
    cdef tuple xs = _input_shape(input_shape, fn)
    cdef cnp.ndarray I = _array(indices, fn, "indices")
    if I.dtype != np.int64:
        raise TypeError(f"{fn}: indices must have dtype int64, got {I.dtype}")
    if _shape(I) != _shape(G):
        raise ValueError(f"{fn}: indices has shape {_shape(I)} but grad_out has shape "
                         f"{_shape(G)}")
    _contiguous(I, fn, "indices")
    if xs[:2] != _shape(G)[:2]:
        raise ValueError(f"{fn}: grad_out {_shape(G)} and input_shape {xs} differ in "
                         f"N or C")
    if I.size and (I.min() < -1 or I.max() >= xs[2] * xs[3]):
        raise ValueError(f"{fn}: indices must lie in [-1, {xs[2] * xs[3]}) (H * W of "
                         f"input_shape; -1: a window of padding only), got "
                         f"[{I.min()}, {I.max()}]")
    cdef mg_conv2d_geom g
    g.n, g.c, g.h, g.w = xs
    g.oc, g.oh, g.ow = xs[1], G.shape[2], G.shape[3]
    cdef cnp.ndarray D = _output(out, xs, t, fn, "out")
    _disjoint_all(D, [("grad_out", G), ("indices", I)], fn, "out")
    cdef void *pg = _data(G)
    cdef void *pd = _data(D)
    cdef int64_t *pi = <int64_t *>_data(I)
    with nogil:
        if _is32(t):
            mg_max_pool2d_backward_f32(&g, <float *>pg, pi, <float *>pd)
        else:
            mg_max_pool2d_backward_f64(&g, <double *>pg, pi, <double *>pd)
    return D


def avg_pool2d(x, kernel_size, stride=None, padding=0, bint count_include_pad=True,
               out=None):
    """Average pooling (stride defaults to kernel_size); the zero padding is
    counted in each window's size when count_include_pad."""
    cdef str fn = "avg_pool2d"
    cdef cnp.ndarray X = _nchw(x, fn, "x", -1)
    cdef int t = _float_type(X, fn, "x")
    cdef mg_conv2d_geom g
    _window(&g, fn, _shape(X), X.shape[1], kernel_size,
            kernel_size if stride is None else stride, padding, 1, True)
    cdef cnp.ndarray Y = _output(out, (g.n, g.c, g.oh, g.ow), t, fn, "out")
    _disjoint(Y, X, fn, "out", "x", False)
    cdef void *px = _data(X)
    cdef void *py = _data(Y)
    with nogil:
        if _is32(t):
            mg_avg_pool2d_f32(&g, <float *>px, <float *>py, count_include_pad)
        else:
            mg_avg_pool2d_f64(&g, <double *>px, <double *>py, count_include_pad)
    return Y


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride=None, padding=0,
                        bint count_include_pad=True, out=None):
    """Gradient of avg_pool2d: each grad_out element spread over its window."""
    cdef str fn = "avg_pool2d_backward"
    cdef cnp.ndarray G = _nchw(grad_out, fn, "grad_out", -1)
    cdef int t = _float_type(G, fn, "grad_out")
    cdef tuple xs = _input_shape(input_shape, fn)
    cdef mg_conv2d_geom g
    _window(&g, fn, xs, xs[1], kernel_size, kernel_size if stride is None else stride,
            padding, 1, True)
    _check_grad_out(G, &g, fn)
    cdef cnp.ndarray D = _output(out, xs, t, fn, "out")
    _disjoint(D, G, fn, "out", "grad_out", False)
    cdef void *pg = _data(G)
    cdef void *pd = _data(D)
    with nogil:
        if _is32(t):
            mg_avg_pool2d_backward_f32(&g, <float *>pg, <float *>pd, count_include_pad)
        else:
            mg_avg_pool2d_backward_f64(&g, <double *>pg, <double *>pd, count_include_pad)
    return D


def adaptive_avg_pool2d(x, output_size, out=None):
    """Average pooling to output_size (int or pair) with PyTorch's windows
    [floor(i*H/OH), ceil((i+1)*H/OH))."""
    cdef str fn = "adaptive_avg_pool2d"
    cdef cnp.ndarray X = _nchw(x, fn, "x", -1)
    cdef int t = _float_type(X, fn, "x")
    oh, ow = _pair(output_size, fn, "output_size", 1)
    if (X.shape[2] == 0 and oh) or (X.shape[3] == 0 and ow):
        raise ValueError(f"{fn}: x has an empty plane {_shape(X)[2:]}; nothing to average")
    cdef mg_conv2d_geom g
    g.n, g.c, g.h, g.w = _shape(X)
    g.oc, g.oh, g.ow = X.shape[1], oh, ow
    cdef cnp.ndarray Y = _output(out, (g.n, g.c, g.oh, g.ow), t, fn, "out")
    _disjoint(Y, X, fn, "out", "x", False)
    cdef void *px = _data(X)
    cdef void *py = _data(Y)
    with nogil:
        if _is32(t):
            mg_adaptive_avg_pool2d_f32(&g, <float *>px, <float *>py)
        else:
            mg_adaptive_avg_pool2d_f64(&g, <double *>px, <double *>py)
    return Y


def adaptive_avg_pool2d_backward(grad_out, input_shape, out=None):
    """Gradient of adaptive_avg_pool2d (the output size is grad_out's)."""
    cdef str fn = "adaptive_avg_pool2d_backward"
    cdef cnp.ndarray G = _nchw(grad_out, fn, "grad_out", -1)
    cdef int t = _float_type(G, fn, "grad_out")
    cdef tuple xs = _input_shape(input_shape, fn)
    if xs[:2] != _shape(G)[:2]:
        raise ValueError(f"{fn}: grad_out {_shape(G)} and input_shape {xs} differ in "
                         f"N or C")
    if G.shape[2] < 1 or G.shape[3] < 1 or xs[2] < 1 or xs[3] < 1:
        raise ValueError(f"{fn}: grad_out {_shape(G)} and input_shape {xs} need planes "
                         f"of at least 1x1")
    cdef mg_conv2d_geom g
    g.n, g.c, g.h, g.w = xs
    g.oc, g.oh, g.ow = xs[1], G.shape[2], G.shape[3]
    cdef cnp.ndarray D = _output(out, xs, t, fn, "out")
    _disjoint(D, G, fn, "out", "grad_out", False)
    cdef void *pg = _data(G)
    cdef void *pd = _data(D)
    with nogil:
        if _is32(t):
            mg_adaptive_avg_pool2d_backward_f32(&g, <float *>pg, <float *>pd)
        else:
            mg_adaptive_avg_pool2d_backward_f64(&g, <double *>pg, <double *>pd)
    return D
