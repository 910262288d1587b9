# One validated wrapper per kind of the kernels listed in mg_kernels.def,
# taking the kernel's id (included by _kernels.pyx). minigrad.kernels binds a
# Python function per kernel from catalog().

KINDS = ("unary", "binary", "rows", "rows_backward", "loss")


def catalog():
    """``(id, kind, name, arg, doc)`` of every kernel in mg_kernels.def; arg
    names the second input of a binary kernel."""
    return [(i, KINDS[mg_kernel_catalog[i].kind], mg_kernel_catalog[i].name.decode(),
             mg_kernel_catalog[i].arg.decode(), mg_kernel_catalog[i].doc.decode())
            for i in range(MG_KERNEL_COUNT)]


cdef str _name(int kernel, int kind):
    """The kernel's name, once its id is checked to be of this kind (the C
    entry points then cannot fail but for memory)."""
    if kernel < 0 or kernel >= MG_KERNEL_COUNT or mg_kernel_catalog[kernel].kind != kind:
        raise ValueError(f"no {KINDS[kind]} kernel has id {kernel}")
    return mg_kernel_catalog[kernel].name.decode()


def unary(int kernel, x, out=None):
    """out = f(x) elementwise, for the unary kernel `kernel`."""
    cdef str fn = _name(kernel, MG_KIND_UNARY)
    cdef cnp.ndarray X, O
    cdef int t
    X, O, t = _unary_args(fn, x, out, "x")
    cdef Py_ssize_t n = X.size
    cdef void *pX = _data(X)
    cdef void *pO = _data(O)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            mg_unary_f32(kernel, n, <float *>pX, <float *>pO)
        else:
            mg_unary_f64(kernel, n, <double *>pX, <double *>pO)
    return O


def binary(int kernel, grad_out, a, out=None):
    """out = f(grad_out, a) elementwise, for an activation's backward pass."""
    cdef str fn = _name(kernel, MG_KIND_BINARY)
    cdef str aname = mg_kernel_catalog[kernel].arg.decode()
    cdef cnp.ndarray G, A, O
    cdef int t
    G, O, t = _unary_args(fn, grad_out, out, "grad_out")
    A = _second(fn, a, G, t, aname, "grad_out")
    _disjoint(O, A, fn, "out", aname, True)
    cdef Py_ssize_t n = G.size
    cdef void *pG = _data(G)
    cdef void *pA = _data(A)
    cdef void *pO = _data(O)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            mg_binary_f32(kernel, n, <float *>pG, <float *>pA, <float *>pO)
        else:
            mg_binary_f64(kernel, n, <double *>pG, <double *>pA, <double *>pO)
    return O


def rows(int kernel, x, out=None):
    """out[i] = f(x[i]) for each row of the 2-D x."""
    cdef str fn = _name(kernel, MG_KIND_ROWS)
    cdef cnp.ndarray X, O
    cdef int t
    X, O, t = _unary_args(fn, x, out, "x")
    _ndim(X, 2, fn, "x")
    cdef Py_ssize_t m = X.shape[0], n = X.shape[1]
    cdef void *pX = _data(X)
    cdef void *pO = _data(O)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            mg_rows_f32(kernel, m, n, <float *>pX, <float *>pO)
        else:
            mg_rows_f64(kernel, m, n, <double *>pX, <double *>pO)
    return O


def rows_backward(int kernel, grad_out, y, out=None):
    """out[i] = f(grad_out[i], y[i]) for each row of the 2-D grad_out and y."""
    cdef str fn = _name(kernel, MG_KIND_ROWS_BACKWARD)
    cdef cnp.ndarray G, Y, O
    cdef int t
    G, O, t = _unary_args(fn, grad_out, out, "grad_out")
    _ndim(G, 2, fn, "grad_out")
    Y = _second(fn, y, G, t, "y", "grad_out")
    _disjoint(O, Y, fn, "out", "y", True)
    cdef Py_ssize_t m = G.shape[0], n = G.shape[1]
    cdef void *pG = _data(G)
    cdef void *pY = _data(Y)
    cdef void *pO = _data(O)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            mg_rows_backward_f32(kernel, m, n, <float *>pG, <float *>pY, <float *>pO)
        else:
            mg_rows_backward_f64(kernel, m, n, <double *>pG, <double *>pY,
                                      <double *>pO)
    return O


def loss(int kernel, logits, targets, out=None):
    """(mean loss, gradient) of a loss of (logits[i], targets[i])."""
    cdef str fn = _name(kernel, MG_KIND_LOSS)
    cdef cnp.ndarray Z, T, O
    cdef int t, rc
    Z, O, t = _unary_args(fn, logits, out, "logits")
    T = _second(fn, targets, Z, t, "targets", "logits")
    _disjoint(O, T, fn, "out", "targets", False)
    cdef Py_ssize_t n = Z.size
    if n == 0:
        raise ValueError(f"{fn}: logits is empty (shape {_shape(Z)}); the mean is undefined")
    cdef double value
    cdef void *pO = _data(O)
    cdef void *pT = _data(T)
    cdef void *pZ = _data(Z)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            rc = mg_loss_f32(kernel, n, <float *>pZ, <float *>pT, <float *>pO, &value)
        else:
            rc = mg_loss_f64(kernel, n, <double *>pZ, <double *>pT, <double *>pO, &value)
    if rc != 0:
        raise MemoryError(f"{fn}: out of memory")
    return value, O
