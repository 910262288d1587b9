# Wrappers of the batch-norm kernels; arguments checked with _validate.pxi.

def batch_norm(x, weight=None, bias=None, running_mean=None, running_var=None, *,
               bint training=True, double momentum=0.1, double eps=1e-5, bint relu=False):
    """Batch normalization per channel of x (N, C, H, W) or (N, C).

    Returns ``(y, save_mean, save_invstd)``. Training: batch statistics
    (biased variance), running_mean/running_var updated in place when given
    (unbiased variance, ``new = (1 - momentum) * old + momentum * batch``).
    Eval (training=False): the running statistics. relu=True fuses max(y, 0)."""
    cdef str fn = "batch_norm"
    cdef cnp.ndarray X = _bn_input(x, fn, "x", -1)
    cdef int t = _float_type(X, fn, "x")
    n, c, hw = _bn_dims(X, fn)
    _finite_number(momentum, fn, "momentum", True)
    _finite_number(eps, fn, "eps", True)
    cdef cnp.ndarray Wt = None, B = None, RM = None, RV = None
    if weight is not None:
        Wt = _vector(weight, c, fn, "weight", t, False)
    if bias is not None:
        B = _vector(bias, c, fn, "bias", t, False)
    if running_mean is not None:
        RM = _vector(running_mean, c, fn, "running_mean", t, training)
    if running_var is not None:
        RV = _vector(running_var, c, fn, "running_var", t, training)
    if training:
        if n * hw < 2:
            raise ValueError(f"{fn}: training needs more than 1 value per channel, got "
                             f"x of shape {_shape(X)}")
        if RM is not None and RV is not None and _overlap(RM, RV):
            raise ValueError(f"{fn}: running_mean overlaps running_var in memory")
        for name, a in (("x", X), ("weight", Wt), ("bias", B)):
            for rname, r in (("running_mean", RM), ("running_var", RV)):
                if a is not None and r is not None:
                    _disjoint(r, a, fn, rname, name, False)
    elif RM is None or RV is None:
        raise ValueError(f"{fn}: eval mode (training=False) needs running_mean and "
                         f"running_var")
    cdef cnp.ndarray Y = _output(None, _shape(X), t, fn, "y")
    cdef cnp.ndarray M = _output(None, (c,), t, fn, "save_mean")
    cdef cnp.ndarray S = _output(None, (c,), t, fn, "save_invstd")
    cdef void *px = _data(X)
    cdef void *pw = _opt(Wt)
    cdef void *pb = _opt(B)
    cdef void *prm = _opt(RM)
    cdef void *prv = _opt(RV)
    cdef void *py = _data(Y)
    cdef void *pm = _data(M)
    cdef void *ps = _data(S)
    cdef Py_ssize_t cn = n, cc = c, chw = hw
    with nogil:
        if _is32(t):
            mg_batch_norm_f32(cn, cc, chw, <float *>px, <float *>pw, <float *>pb,
                              <float *>prm, <float *>prv, training, momentum, eps, relu,
                              <float *>py, <float *>pm, <float *>ps)
        else:
            mg_batch_norm_f64(cn, cc, chw, <double *>px, <double *>pw, <double *>pb,
                              <double *>prm, <double *>prv, training, momentum, eps, relu,
                              <double *>py, <double *>pm, <double *>ps)
    return Y, M, S


def batch_norm_backward(grad_out, x, weight, save_mean, save_invstd, *,
                        bint training=True, y=None):
    """Gradients of batch_norm: ``(grad_x, grad_weight, grad_bias)``.

    save_mean and save_invstd are batch_norm's outputs; weight may be None
    (no affine); y, batch_norm's output, masks grad_out when it fused a ReLU."""
    cdef str fn = "batch_norm_backward"
    cdef cnp.ndarray G = _bn_input(grad_out, fn, "grad_out", -1)
    cdef int t = _float_type(G, fn, "grad_out")
    cdef cnp.ndarray X = _bn_input(x, fn, "x", t), Wt = None, Y = None
    if _shape(X) != _shape(G):
        raise ValueError(f"{fn}: x has shape {_shape(X)} but grad_out has shape "
                         f"{_shape(G)}")
    n, c, hw = _bn_dims(X, fn)
    if weight is not None:
        Wt = _vector(weight, c, fn, "weight", t, False)
    cdef cnp.ndarray M = _vector(save_mean, c, fn, "save_mean", t, False)
    cdef cnp.ndarray S = _vector(save_invstd, c, fn, "save_invstd", t, False)
    if y is not None:
        Y = _bn_input(y, fn, "y", t)
        if _shape(Y) != _shape(X):
            raise ValueError(f"{fn}: y has shape {_shape(Y)} but x has shape {_shape(X)}")
    cdef cnp.ndarray D = _output(None, _shape(X), t, fn, "grad_x")
    cdef cnp.ndarray DW = _output(None, (c,), t, fn, "grad_weight")
    cdef cnp.ndarray DB = _output(None, (c,), t, fn, "grad_bias")
    cdef void *pg = _data(G)
    cdef void *px = _data(X)
    cdef void *pw = _opt(Wt)
    cdef void *pm = _data(M)
    cdef void *ps = _data(S)
    cdef void *py = _opt(Y)
    cdef void *pd = _data(D)
    cdef void *pdw = _data(DW)
    cdef void *pdb = _data(DB)
    cdef Py_ssize_t cn = n, cc = c, chw = hw
    with nogil:
        if _is32(t):
            mg_batch_norm_backward_f32(cn, cc, chw, <float *>pg, <float *>px, <float *>pw,
                                       <float *>pm, <float *>ps, training, <float *>py,
                                       <float *>pd, <float *>pdw, <float *>pdb)
        else:
            mg_batch_norm_backward_f64(cn, cc, chw, <double *>pg, <double *>px,
                                       <double *>pw, <double *>pm, <double *>ps, training,
                                       <double *>py, <double *>pd, <double *>pdw,
                                       <double *>pdb)
    return D, DW, DB
