# Kernels of their own shape, written out one by one: column sums, softmax
# cross-entropy, optimizer steps (included by _kernels.pyx).


def bias_grad(dy, out=None):
    """Column sums of the 2-D dy: the gradient of a bias added to every row."""
    cdef cnp.ndarray G = _array(dy, "bias_grad", "dy")
    cdef int t = _float_type(G, "bias_grad", "dy")
    _ndim(G, 2, "bias_grad", "dy")
    _contiguous(G, "bias_grad", "dy")
    cdef Py_ssize_t m = G.shape[0], n = G.shape[1]
    cdef cnp.ndarray D = _output(out, (n,), t, "bias_grad", "out")
    _disjoint(D, G, "bias_grad", "out", "dy", False)
    cdef void *pD = _data(D)
    cdef void *pG = _data(G)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            mg_bias_grad_f32(m, n, <float *>pG, <float *>pD)
        else:
            mg_bias_grad_f64(m, n, <double *>pG, <double *>pD)
    return D


def relu_backward_bias_grad(grad_out, y, out=None, bias_out=None):
    """ReLU backward fused with the bias gradient of the Linear before it.

    Returns ``(grad, bias_grad)``: ``grad = grad_out * (y > 0)`` and its column
    sums, computed in one pass over memory. grad_out and y are 2-D."""
    cdef str fn = "relu_backward_bias_grad"
    cdef cnp.ndarray G, Y, O, D
    cdef int t
    G, O, t = _unary_args(fn, grad_out, out, "grad_out")
    _ndim(G, 2, fn, "grad_out")
    Y = _second(fn, y, G, t, "y", "grad_out")
    _disjoint(O, Y, fn, "out", "y", True)
    cdef Py_ssize_t m = G.shape[0], n = G.shape[1]
    D = _output(bias_out, (n,), t, fn, "bias_out")
    _disjoint(D, G, fn, "bias_out", "grad_out", False)
    _disjoint(D, Y, fn, "bias_out", "y", False)
    _disjoint(D, O, fn, "bias_out", "out", False)
    cdef void *pD = _data(D)
    cdef void *pG = _data(G)
    cdef void *pO = _data(O)
    cdef void *pY = _data(Y)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            mg_relu_backward_bias_grad_f32(m, n, <float *>pG, <float *>pY,
                                           <float *>pO, <float *>pD)
        else:
            mg_relu_backward_bias_grad_f64(m, n, <double *>pG, <double *>pY,
                                           <double *>pO, <double *>pD)
    return O, D


cdef cnp.ndarray _labels(str fn, object labels, Py_ssize_t m, Py_ssize_t c, str zname,
                         tuple outs):
    """labels checked to be m integers in [0, c), as a C-contiguous int64
    array that shares no memory with the outputs `outs` (a copy if it would:
    the kernel writes those before it reads the labels)."""
    cdef cnp.ndarray L = _array(labels, fn, "labels")
    if L.dtype.kind not in "iu":
        raise TypeError(f"{fn}: labels must have an integer dtype, got {L.dtype}")
    if L.ndim != 1 or L.shape[0] != m:
        raise ValueError(f"{fn}: labels must have shape ({m},) to match {zname}, got "
                         f"{_shape(L)}")
    if L.dtype.kind == "u" and L.dtype.itemsize == 8:
        if m and int(L.max()) >= c:
            raise ValueError(f"{fn}: labels contain {int(L.max())}, out of range [0, {c})")
    L = np.ascontiguousarray(L, dtype=np.int64)
    if any(o is not None and np.may_share_memory(L, o) for o in outs):
        L = L.copy()
    cdef const int64_t[::1] lab = L
    cdef Py_ssize_t i, bad = -1
    with nogil:
        for i in range(m):
            if lab[i] < 0 or lab[i] >= c:
                bad = i
                break
    if bad >= 0:
        raise ValueError(f"{fn}: labels[{bad}] = {lab[bad]} is out of range [0, {c})")
    return L


def softmax_cross_entropy(logits, labels, *, out=None):
    """Mean softmax cross-entropy over rows, and its gradient, in one pass.

    logits: (n, c) floats; labels: (n,) integers in [0, c) (copied to int64
    when given another integer type). Returns ``(loss, grad_logits)``."""
    cdef str fn = "softmax_cross_entropy"
    cdef cnp.ndarray Z, O
    cdef int t
    Z, O, t = _unary_args(fn, logits, out, "logits")
    _ndim(Z, 2, fn, "logits")
    cdef Py_ssize_t m = Z.shape[0], c = Z.shape[1]
    if m == 0 or c == 0:
        raise ValueError(f"{fn}: logits has shape {_shape(Z)}; need at least one row "
                         f"and one class")
    cdef const int64_t[::1] lab = _labels(fn, labels, m, c, f"logits {_shape(Z)}", (O,))
    cdef double loss
    cdef int rc
    cdef void *pO = _data(O)
    cdef void *pZ = _data(Z)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            rc = mg_softmax_cross_entropy_f32(m, c, <float *>pZ, &lab[0], <float *>pO, &loss)
        else:
            rc = mg_softmax_cross_entropy_f64(m, c, <double *>pZ, &lab[0], <double *>pO, &loss)
    if rc != 0:
        raise MemoryError(f"{fn}: out of memory")
    return loss, O


def linear_cross_entropy(x, w, b, labels, *, bint relu=False, bint input_grad=True,
                         logits_out=None, grad_out=None, input_grad_out=None):
    """A classifier's last layer and its loss, forward and backward to the
    layer's input, in one call: ``z = x @ w.T + b``; ``loss, dz =
    softmax_cross_entropy(z, labels)``; ``dx = dz @ w``, and with ``relu``
    (x the output of a ReLU) ``dx = relu_backward(dx, x)``, the gradient at
    the ReLU's input.

    x: (n, k) floats; w: (c, k) and b: (c,) or None of x's dtype, all
    C-contiguous; labels: (n,) integers in [0, c). Returns ``(loss, z, dz,
    dx)`` (dx None with ``input_grad=False``), into the ``*_out`` arrays when
    given. The numbers are those of ``linear``, ``softmax_cross_entropy``,
    ``matmul`` and ``relu_backward`` called in turn, bit for bit (but for
    which NaN a NaN result carries); with at most 64 classes and a packed
    weight of at most 1 MiB they are computed in fewer passes, on narrower
    tiles."""
    cdef str fn = "linear_cross_entropy"
    cdef cnp.ndarray X = _array(x, fn, "x")
    cdef cnp.ndarray W = _array(w, fn, "w")
    cdef cnp.ndarray B = None
    _ndim(X, 2, fn, "x")
    _ndim(W, 2, fn, "w")
    cdef int t = _float_type(X, fn, "x")
    _same_type(W, t, fn, "w", "x")
    _contiguous(X, fn, "x")
    _contiguous(W, fn, "w")
    cdef Py_ssize_t n = X.shape[0], k = X.shape[1], c = W.shape[0]
    if W.shape[1] != k:
        raise ValueError(f"{fn}: shapes do not match: x {_shape(X)} @ w {_shape(W)}.T needs "
                         f"equal inner dimensions, got {k} and {W.shape[1]}")
    if n == 0 or c == 0:
        raise ValueError(f"{fn}: the logits would have shape ({n}, {c}); need at least one "
                         f"row and one class")
    if b is not None:
        B = _array(b, fn, "b")
        _same_type(B, t, fn, "b", "x")
        if B.ndim != 1 or B.shape[0] != c:
            raise ValueError(f"{fn}: b must have shape ({c},) to match w {_shape(W)}, got "
                             f"{_shape(B)}")
        _contiguous(B, fn, "b")
    if input_grad_out is not None and not input_grad:
        raise ValueError(f"{fn}: input_grad_out= given with input_grad=False")
    cdef cnp.ndarray Z = _output(logits_out, (n, c), t, fn, "logits_out")
    cdef cnp.ndarray DZ = _output(grad_out, (n, c), t, fn, "grad_out")
    cdef cnp.ndarray DX = _output(input_grad_out, (n, k), t, fn, "input_grad_out") \
        if input_grad else None
    cdef const int64_t[::1] lab = _labels(fn, labels, n, c, f"x {_shape(X)}", (Z, DZ, DX))
    inputs = [("x", X), ("w", W), ("b", B)]
    _disjoint_all(Z, inputs, fn, "logits_out")
    _disjoint_all(DZ, inputs + [("logits_out", Z)], fn, "grad_out")
    if DX is not None:
        _disjoint_all(DX, inputs + [("logits_out", Z), ("grad_out", DZ)], fn, "input_grad_out")
    cdef void *pX = _data(X)
    cdef void *pW = _data(W)
    cdef void *pB = _data(B) if B is not None else NULL
    cdef void *pZ = _data(Z)
    cdef void *pDZ = _data(DZ)
    cdef void *pDX = _data(DX) if DX is not None else NULL
    cdef double loss
    cdef int rc
    with nogil:
        if t == cnp.NPY_FLOAT32:
            rc = mg_linear_cross_entropy_f32(n, k, c, <float *>pX, <float *>pW, <float *>pB,
                                             &lab[0], relu, <float *>pZ, <float *>pDZ,
                                             <float *>pDX, &loss)
        else:
            rc = mg_linear_cross_entropy_f64(n, k, c, <double *>pX, <double *>pW,
                                             <double *>pB, &lab[0], relu, <double *>pZ,
                                             <double *>pDZ, <double *>pDX, &loss)
    if rc != 0:
        raise MemoryError(f"{fn}: out of memory")
    return loss, Z, DZ, DX


def sgd_step(param, grad, double lr, *, double momentum=0.0, velocity=None,
             double weight_decay=0.0):
    """One SGD update in place, with PyTorch's rule.

    ``g = grad + weight_decay * param; velocity = momentum * velocity + g;
    param -= lr * velocity`` (``param -= lr * g`` when momentum is 0).
    ``velocity`` (zeros at the start) is needed when momentum is non-zero."""
    cdef str fn = "sgd_step"
    cdef cnp.ndarray P = _array(param, fn, "param")
    cdef int t = _float_type(P, fn, "param")
    _contiguous(P, fn, "param")
    if not cnp.PyArray_ISWRITEABLE(P):
        raise ValueError(f"{fn}: param is read-only")
    cdef cnp.ndarray G = _second(fn, grad, P, t, "grad", "param"), Vel = None
    _finite_number(lr, fn, "lr", True)
    _finite_number(momentum, fn, "momentum", True)
    _finite_number(weight_decay, fn, "weight_decay", True)
    _disjoint(P, G, fn, "param", "grad", False)
    if momentum != 0:
        if velocity is None:
            raise ValueError(f"{fn}: momentum={momentum} needs a velocity array")
        Vel = _second(fn, velocity, P, t, "velocity", "param")
        if not cnp.PyArray_ISWRITEABLE(Vel):
            raise ValueError(f"{fn}: velocity is read-only")
        _disjoint(Vel, P, fn, "velocity", "param", False)
        _disjoint(Vel, G, fn, "velocity", "grad", False)
    cdef Py_ssize_t n = P.size
    cdef void *vp = _data(Vel) if Vel is not None else NULL
    cdef void *pG = _data(G)
    cdef void *pP = _data(P)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            mg_sgd_step_f32(n, <float *>pP, <float *>pG, <float *>vp, <float>lr,
                            <float>momentum, <float>weight_decay)
        else:
            mg_sgd_step_f64(n, <double *>pP, <double *>pG, <double *>vp, lr, momentum,
                            weight_decay)
    return P


cdef cnp.ndarray _state(str fn, object a, cnp.ndarray param, int t, str name):
    """An optimizer state array: like param, writeable, apart from param."""
    cdef cnp.ndarray A = _second(fn, a, param, t, name, "param")
    if not cnp.PyArray_ISWRITEABLE(A):
        raise ValueError(f"{fn}: {name} is read-only")
    _disjoint(A, param, fn, name, "param", False)
    return A


def adam_step(param, grad, m, v, long long step, double lr, double beta1=0.9,
              double beta2=0.999, double eps=1e-8, double weight_decay=0.0,
              bint decoupled=False):
    """One Adam (or, with ``decoupled``, AdamW) update in place, PyTorch's rule.

    Adam: ``g = grad + weight_decay * param``; AdamW: ``param *= 1 - lr *
    weight_decay``. Then ``m = lerp(m, g, 1 - beta1)``, ``v = beta2 v + (1 -
    beta2) g**2``, ``param -= lr / (1 - beta1**step) * m / (sqrt(v) /
    sqrt(1 - beta2**step) + eps)``. m and v (zeros at the start) are updated
    in place; ``step`` counts from 1."""
    cdef str fn = "adam_step"
    cdef cnp.ndarray P = _array(param, fn, "param")
    cdef int t = _float_type(P, fn, "param")
    _contiguous(P, fn, "param")
    if not cnp.PyArray_ISWRITEABLE(P):
        raise ValueError(f"{fn}: param is read-only")
    cdef cnp.ndarray G = _second(fn, grad, P, t, "grad", "param")
    cdef cnp.ndarray M = _state(fn, m, P, t, "m")
    cdef cnp.ndarray V = _state(fn, v, P, t, "v")
    if step < 1:
        raise ValueError(f"{fn}: step counts from 1, got {step}")
    _finite_number(lr, fn, "lr", True)
    _finite_number(eps, fn, "eps", True)
    _finite_number(weight_decay, fn, "weight_decay", True)
    for name, beta in (("beta1", beta1), ("beta2", beta2)):
        if not 0 <= beta < 1:
            raise ValueError(f"{fn}: {name} must be in [0, 1), got {beta}")
    _disjoint(P, G, fn, "param", "grad", False)
    _disjoint(M, G, fn, "m", "grad", False)
    _disjoint(V, G, fn, "v", "grad", False)
    _disjoint(V, M, fn, "v", "m", False)
    cdef mg_adam_params h
    h.lr, h.beta1, h.beta2, h.eps, h.weight_decay = lr, beta1, beta2, eps, weight_decay
    h.step, h.decoupled = step, decoupled
    cdef Py_ssize_t n = P.size
    cdef void *pP = _data(P)
    cdef void *pG = _data(G)
    cdef void *pM = _data(M)
    cdef void *pV = _data(V)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            mg_adam_step_f32(n, <float *>pP, <float *>pG, <float *>pM, <float *>pV, &h)
        else:
            mg_adam_step_f64(n, <double *>pP, <double *>pG, <double *>pM, <double *>pV, &h)
    return P
