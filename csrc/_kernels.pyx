# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: embedsignature=True
"""Validated Python face of minigrad's C kernels (see minigrad.kernels).

Every function checks its arguments once here -- types, dtypes, shapes,
layout, aliasing -- and then runs the C kernel without the GIL. Rules:

* Arrays are ``numpy.ndarray`` of float32 or float64 (native byte order,
  aligned), all of one dtype per call; anything else is a TypeError.
* ``matmul`` and ``linear`` accept any strided 2-D operands (transposed views,
  slices, negative or zero strides): packing reads them, no copy is made.
  Every other kernel needs C-contiguous inputs and raises ValueError otherwise.
* ``out=`` must be C-contiguous, writeable, of the exact shape and dtype; it is
  overwritten (``matmul(..., accumulate=True)`` adds into it instead). An
  elementwise ``out`` may be the input itself (in place); any other overlap
  between an output and an input is a ValueError.
"""
import numpy as np

cimport numpy as cnp
from libc.stdint cimport int64_t

from mg_kernels cimport *

cnp.import_array()

ctypedef fused real:
    float
    double

ISA_NAMES = ("generic", "avx2", "avx512")


# ---------------------------------------------------------------- validation

cdef inline tuple _shape(object a):
    return a.shape


cdef inline tuple _strides(object a):
    return a.strides


cdef inline cnp.ndarray _array(object x, str fn, str name):
    if not isinstance(x, cnp.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(x).__name__}")
    return <cnp.ndarray>x


cdef int _float_type(cnp.ndarray a, str fn, str name) except -1:
    cdef int t = cnp.PyArray_TYPE(a)
    if t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64:
        raise TypeError(f"{fn}: {name} must have dtype float32 or float64, got {a.dtype}")
    if not cnp.PyArray_ISNOTSWAPPED(a):
        raise TypeError(f"{fn}: {name} has non-native byte order (dtype {a.dtype.str})")
    if not cnp.PyArray_ISALIGNED(a):
        raise ValueError(f"{fn}: {name} is not aligned in memory; pass a copy")
    return t


cdef int _same_type(cnp.ndarray a, int t, str fn, str name, str ref) except -1:
    cdef int ta = _float_type(a, fn, name)
    if ta != t:
        raise TypeError(f"{fn}: {name} has dtype {a.dtype} but {ref} has dtype "
                        f"{np.dtype('float32' if t == cnp.NPY_FLOAT32 else 'float64')}; "
                        f"use one dtype")
    return 0


cdef int _ndim(cnp.ndarray a, int nd, str fn, str name) except -1:
    if cnp.PyArray_NDIM(a) != nd:
        raise ValueError(f"{fn}: {name} must be {nd}-D, got shape {_shape(a)}")
    return 0


cdef int _contiguous(cnp.ndarray a, str fn, str name) except -1:
    if not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise ValueError(f"{fn}: {name} must be C-contiguous (strides {_strides(a)}); "
                         f"pass numpy.ascontiguousarray({name})")
    return 0


cdef Py_ssize_t _elem_stride(cnp.ndarray a, int axis, str fn, str name) except? -1:
    """Stride of one axis in elements (0 for an axis of length <= 1)."""
    cdef Py_ssize_t s = cnp.PyArray_STRIDE(a, axis)
    cdef Py_ssize_t size = cnp.PyArray_ITEMSIZE(a)
    if cnp.PyArray_DIM(a, axis) <= 1:
        return 0
    if s % size:
        raise ValueError(f"{fn}: {name} has strides {_strides(a)} that are not a "
                         f"multiple of its item size {size}")
    return s // size


cdef void _extent(cnp.ndarray a, char **lo, char **hi) noexcept:
    """The byte range [lo, hi) that a's elements occupy (empty if a is)."""
    cdef char *p = <char *>cnp.PyArray_DATA(a)
    cdef Py_ssize_t low = 0, high = cnp.PyArray_ITEMSIZE(a), step
    cdef int i
    for i in range(cnp.PyArray_NDIM(a)):
        if cnp.PyArray_DIM(a, i) == 0:
            lo[0] = hi[0] = p
            return
        step = (cnp.PyArray_DIM(a, i) - 1) * cnp.PyArray_STRIDE(a, i)
        if step < 0:
            low += step
        else:
            high += step
    lo[0] = p + low
    hi[0] = p + high


cdef bint _overlap(cnp.ndarray a, cnp.ndarray b) noexcept:
    cdef char *alo
    cdef char *ahi
    cdef char *blo
    cdef char *bhi
    _extent(a, &alo, &ahi)
    _extent(b, &blo, &bhi)
    return alo < bhi and blo < ahi and alo < ahi and blo < bhi


cdef int _disjoint(cnp.ndarray out, cnp.ndarray a, str fn, str oname, str name,
                   bint same_ok) except -1:
    """out must not overlap a; with same_ok, out may be exactly a (in place)."""
    if same_ok and cnp.PyArray_DATA(out) == cnp.PyArray_DATA(a) and \
            _shape(out) == _shape(a) and _strides(out) == _strides(a):
        return 0
    if _overlap(out, a):
        if same_ok:
            raise ValueError(f"{fn}: {oname} overlaps {name} in memory; pass the same "
                             f"array for in-place use, or a separate one")
        raise ValueError(f"{fn}: {oname} overlaps {name} in memory; pass a separate array")
    return 0


cdef cnp.ndarray _output(object out, tuple shape, int t, str fn, str name):
    """out checked to be a writeable C-contiguous array of shape and type t,
    or a new one."""
    if out is None:
        return np.empty(shape, dtype=np.float32 if t == cnp.NPY_FLOAT32 else np.float64)
    cdef cnp.ndarray o = _array(out, fn, name)
    _same_type(o, t, fn, name, "the inputs")
    if _shape(o) != shape:
        raise ValueError(f"{fn}: {name} has shape {_shape(o)}, expected {shape}")
    _contiguous(o, fn, name)
    if not cnp.PyArray_ISWRITEABLE(o):
        raise ValueError(f"{fn}: {name} is read-only")
    return o


cdef inline void *_data(cnp.ndarray a) noexcept:
    return cnp.PyArray_DATA(a)


cdef int _finite_number(double v, str fn, str name, bint nonneg) except -1:
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(f"{fn}: {name} must be finite, got {v}")
    if nonneg and v < 0:
        raise ValueError(f"{fn}: {name} must be >= 0, got {v}")
    return 0


# ---------------------------------------------------------------- settings

def get_num_threads():
    """Number of threads the kernels use for large problems."""
    return mg_get_num_threads()


def set_num_threads(int n):
    """Set the number of threads the kernels use (at least 1)."""
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    mg_set_num_threads(n)


def openmp_enabled():
    """Whether the extension was built with OpenMP (threads)."""
    return bool(mg_openmp_enabled())


def build_flags():
    """The C compiler flags this extension was built with."""
    return mg_build_flags().decode()


def simd_path():
    """Name of the instruction set the kernels run on: avx512, avx2 or generic."""
    return ISA_NAMES[mg_isa_active()]


def simd_paths_available():
    """Instruction sets this CPU can run, best last."""
    return ISA_NAMES[:mg_isa_best() + 1]


def set_simd_path(str name):
    """Force an instruction set (for testing every path on one machine)."""
    if name not in ISA_NAMES:
        raise ValueError(f"set_simd_path: unknown path {name!r}; choose from {ISA_NAMES}")
    if mg_set_isa(ISA_NAMES.index(name)) != 0:
        raise ValueError(f"set_simd_path: this CPU cannot run {name!r}; "
                         f"available: {simd_paths_available()}")


# ---------------------------------------------------------------- GEMM

cdef int _gemm(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
               real *a, Py_ssize_t rsa, Py_ssize_t csa,
               real *b, Py_ssize_t rsb, Py_ssize_t csb,
               real *c, Py_ssize_t ldc, bint accumulate, real *bias, bint relu) noexcept nogil:
    if real is float:
        return mg_gemm_f32(M, N, K, a, rsa, csa, b, rsb, csb, c, ldc, accumulate, bias, relu)
    else:
        return mg_gemm_f64(M, N, K, a, rsa, csa, b, rsb, csb, c, ldc, accumulate, bias, relu)


cdef cnp.ndarray _gemm_checked(str fn, object a, object b, bint trans_a, bint trans_b,
                               object out, bint accumulate, object bias, bint relu,
                               str aname, str bname):
    cdef cnp.ndarray A = _array(a, fn, aname)
    cdef cnp.ndarray B = _array(b, fn, bname)
    cdef cnp.ndarray C, D = None
    _ndim(A, 2, fn, aname)
    _ndim(B, 2, fn, bname)
    cdef int t = _float_type(A, fn, aname)
    _same_type(B, t, fn, bname, aname)
    cdef Py_ssize_t s0 = _elem_stride(A, 0, fn, aname), s1 = _elem_stride(A, 1, fn, aname)
    cdef Py_ssize_t M, K, K2, N, rsa, csa, rsb, csb
    if trans_a:
        M, K, rsa, csa = A.shape[1], A.shape[0], s1, s0
    else:
        M, K, rsa, csa = A.shape[0], A.shape[1], s0, s1
    s0 = _elem_stride(B, 0, fn, bname)
    s1 = _elem_stride(B, 1, fn, bname)
    if trans_b:
        K2, N, rsb, csb = B.shape[1], B.shape[0], s1, s0
    else:
        K2, N, rsb, csb = B.shape[0], B.shape[1], s0, s1
    if K != K2:
        raise ValueError(
            f"{fn}: shapes do not match: {aname} {_shape(A)}{'.T' if trans_a else ''} @ "
            f"{bname} {_shape(B)}{'.T' if trans_b else ''} needs equal inner dimensions, "
            f"got {K} and {K2}")
    if bias is not None:
        D = _array(bias, fn, "b")
        _same_type(D, t, fn, "b", aname)
        if D.ndim != 1 or D.shape[0] != N:
            raise ValueError(f"{fn}: b must have shape ({N},) to match the output "
                             f"({M}, {N}), got {_shape(D)}")
        _contiguous(D, fn, "b")
    if accumulate and out is None:
        raise ValueError(f"{fn}: accumulate=True needs out=")
    C = _output(out, (M, N), t, fn, "out")
    _disjoint(C, A, fn, "out", aname, False)
    _disjoint(C, B, fn, "out", bname, False)
    if D is not None:
        _disjoint(C, D, fn, "out", "b", False)
    cdef int rc
    cdef void *bp = _data(D) if D is not None else NULL
    cdef void *pA = _data(A)
    cdef void *pB = _data(B)
    cdef void *pC = _data(C)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            rc = _gemm[float](M, N, K, <float *>pA, rsa, csa, <float *>pB,
                              rsb, csb, <float *>pC, N, accumulate, <float *>bp, relu)
        else:
            rc = _gemm[double](M, N, K, <double *>pA, rsa, csa, <double *>pB,
                               rsb, csb, <double *>pC, N, accumulate, <double *>bp,
                               relu)
    if rc != 0:
        raise MemoryError(f"{fn}: could not allocate packing buffers")
    return C


def matmul(a, b, *, bint trans_a=False, bint trans_b=False, out=None, bint accumulate=False):
    """op(a) @ op(b), where op transposes when trans_a / trans_b is set.

    Covers a linear layer's forward ``x @ w`` and backward products
    ``x.T @ dy`` (trans_a) and ``dy @ w.T`` (trans_b) without copies.
    With ``accumulate=True`` the product is added into ``out``."""
    return _gemm_checked("matmul", a, b, trans_a, trans_b, out, accumulate, None, False,
                         "a", "b")


def linear(x, w, b=None, *, bint relu=False, bint trans_w=False, out=None):
    """x @ w + b (w transposed first if trans_w), then ReLU if relu.

    Bias and ReLU are applied to each output tile while it is in registers."""
    return _gemm_checked("linear", x, w, False, trans_w, out, False, b, relu, "x", "w")


# ---------------------------------------------------------------- elementwise

cdef tuple _unary_args(str fn, object x, object out, str xname):
    cdef cnp.ndarray X = _array(x, fn, xname)
    cdef int t = _float_type(X, fn, xname)
    _contiguous(X, fn, xname)
    cdef cnp.ndarray O = _output(out, _shape(X), t, fn, "out")
    _disjoint(O, X, fn, "out", xname, True)
    return X, O, t


cdef cnp.ndarray _second(str fn, object y, cnp.ndarray like, int t, str name, str ref):
    cdef cnp.ndarray Y = _array(y, fn, name)
    _same_type(Y, t, fn, name, ref)
    if _shape(Y) != _shape(like):
        raise ValueError(f"{fn}: {name} has shape {_shape(Y)} but {ref} has shape "
                         f"{_shape(like)}; they must match")
    _contiguous(Y, fn, name)
    return Y


ctypedef void (*unary_f32)(Py_ssize_t, const float *, float *) noexcept nogil
ctypedef void (*unary_f64)(Py_ssize_t, const double *, double *) noexcept nogil
ctypedef void (*binary_f32)(Py_ssize_t, const float *, const float *, float *) noexcept nogil
ctypedef void (*binary_f64)(Py_ssize_t, const double *, const double *,
                            double *) noexcept nogil


cdef object _unary(str fn, object x, object out, unary_f32 f32, unary_f64 f64):
    """out = f(x) elementwise, for a kernel with one input."""
    cdef cnp.ndarray X, O
    cdef int t
    X, O, t = _unary_args(fn, x, out, "x")
    cdef Py_ssize_t n = X.size
    cdef void *pX = _data(X)
    cdef void *pO = _data(O)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            f32(n, <float *>pX, <float *>pO)
        else:
            f64(n, <double *>pX, <double *>pO)
    return O


cdef object _backward(str fn, object grad_out, object y, str yname, object out,
                      binary_f32 f32, binary_f64 f64):
    """out = f(grad_out, y) elementwise, for an activation's backward pass."""
    cdef cnp.ndarray G, Y, O
    cdef int t
    G, O, t = _unary_args(fn, grad_out, out, "grad_out")
    Y = _second(fn, y, G, t, yname, "grad_out")
    _disjoint(O, Y, fn, "out", yname, True)
    cdef Py_ssize_t n = G.size
    cdef void *pG = _data(G)
    cdef void *pY = _data(Y)
    cdef void *pO = _data(O)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            f32(n, <float *>pG, <float *>pY, <float *>pO)
        else:
            f64(n, <double *>pG, <double *>pY, <double *>pO)
    return O


def relu(x, out=None):
    """max(x, 0) elementwise (NaN stays NaN)."""
    return _unary("relu", x, out, mg_relu_f32, mg_relu_f64)


def relu_backward(grad_out, x, out=None):
    """grad_out where x > 0, else 0 (x: the ReLU's input or output)."""
    return _backward("relu_backward", grad_out, x, "x", out, mg_relu_backward_f32,
                     mg_relu_backward_f64)


def sigmoid(x, out=None):
    """1 / (1 + exp(-x)) elementwise, without overflow for any x."""
    return _unary("sigmoid", x, out, mg_sigmoid_f32, mg_sigmoid_f64)


def sigmoid_backward(grad_out, y, out=None):
    """grad_out * y * (1 - y), where y is the sigmoid's output."""
    return _backward("sigmoid_backward", grad_out, y, "y", out, mg_sigmoid_backward_f32,
                     mg_sigmoid_backward_f64)


cdef void _relu_backward_bias(Py_ssize_t m, Py_ssize_t n, real *g, real *y, real *dx,
                              real *db) noexcept nogil:
    if real is float:
        mg_relu_backward_bias_f32(m, n, g, y, dx, db)
    else:
        mg_relu_backward_bias_f64(m, n, g, y, dx, db)


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
            _relu_backward_bias[float](m, n, <float *>pG, <float *>pY,
                                       <float *>pO, <float *>pD)
        else:
            _relu_backward_bias[double](m, n, <double *>pG, <double *>pY,
                                        <double *>pO, <double *>pD)
    return O, D


cdef void _bias_grad(Py_ssize_t m, Py_ssize_t n, real *g, real *db) noexcept nogil:
    if real is float:
        mg_bias_grad_f32(m, n, g, db)
    else:
        mg_bias_grad_f64(m, n, g, db)


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
            _bias_grad[float](m, n, <float *>pG, <float *>pD)
        else:
            _bias_grad[double](m, n, <double *>pG, <double *>pD)
    return D


# ---------------------------------------------------------------- losses

cdef int _mnist_loss(Py_ssize_t n, real *z, real *t, real *g, double *loss) noexcept nogil:
    if real is float:
        return mg_mnist_loss_f32(n, z, t, g, loss)
    else:
        return mg_mnist_loss_f64(n, z, t, g, loss)


cdef int _bce(Py_ssize_t n, real *z, real *t, real *g, double *loss) noexcept nogil:
    if real is float:
        return mg_bce_logits_f32(n, z, t, g, loss)
    else:
        return mg_bce_logits_f64(n, z, t, g, loss)


cdef tuple _binary_loss(str fn, object logits, object targets, object out, bint bce):
    cdef cnp.ndarray Z, T, O
    cdef int t
    Z, O, t = _unary_args(fn, logits, out, "logits")
    T = _second(fn, targets, Z, t, "targets", "logits")
    _disjoint(O, T, fn, "out", "targets", False)
    cdef Py_ssize_t n = Z.size
    if n == 0:
        raise ValueError(f"{fn}: logits is empty (shape {_shape(Z)}); the mean is undefined")
    cdef double loss
    cdef int rc
    cdef void *pO = _data(O)
    cdef void *pT = _data(T)
    cdef void *pZ = _data(Z)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            if bce:
                rc = _bce[float](n, <float *>pZ, <float *>pT, <float *>pO, &loss)
            else:
                rc = _mnist_loss[float](n, <float *>pZ, <float *>pT, <float *>pO, &loss)
        else:
            if bce:
                rc = _bce[double](n, <double *>pZ, <double *>pT, <double *>pO, &loss)
            else:
                rc = _mnist_loss[double](n, <double *>pZ, <double *>pT, <double *>pO, &loss)
    if rc != 0:
        raise MemoryError(f"{fn}: out of memory")
    return loss, O


def mnist_loss(logits, targets, *, out=None):
    """The MNIST chapter's loss and its gradient, in one pass.

    ``mean(where(targets == 1, 1 - sigmoid(logits), sigmoid(logits)))``;
    returns ``(loss, grad_logits)``; ``out`` receives the gradient."""
    return _binary_loss("mnist_loss", logits, targets, out, False)


def bce_with_logits(logits, targets, *, out=None):
    """Mean binary cross-entropy on logits and its gradient, in one pass.

    ``mean(max(z, 0) - z * t + log1p(exp(-|z|)))``: finite for any finite z.
    Returns ``(loss, grad_logits)``; ``out`` receives the gradient."""
    return _binary_loss("bce_with_logits", logits, targets, out, True)


cdef int _softmax_ce(Py_ssize_t m, Py_ssize_t c, real *z, const int64_t *y,
                     real *g, double *loss) noexcept nogil:
    if real is float:
        return mg_softmax_ce_f32(m, c, z, y, g, loss)
    else:
        return mg_softmax_ce_f64(m, c, z, y, g, loss)


def softmax_cross_entropy(logits, labels, *, out=None):
    """Mean softmax cross-entropy over rows, and its gradient, in one pass.

    logits: (n, c) floats; labels: (n,) integers in [0, c) (copied to int64
    when given another integer type). Returns ``(loss, grad_logits)``."""
    cdef str fn = "softmax_cross_entropy"
    cdef cnp.ndarray Z, O, L
    cdef int t
    Z, O, t = _unary_args(fn, logits, out, "logits")
    _ndim(Z, 2, fn, "logits")
    L = _array(labels, fn, "labels")
    if L.dtype.kind not in "iu":
        raise TypeError(f"{fn}: labels must have an integer dtype, got {L.dtype}")
    if L.ndim != 1 or L.shape[0] != Z.shape[0]:
        raise ValueError(f"{fn}: labels must have shape ({Z.shape[0]},) to match logits "
                         f"{_shape(Z)}, got {_shape(L)}")
    cdef Py_ssize_t m = Z.shape[0], c = Z.shape[1], i, bad = -1
    if m == 0 or c == 0:
        raise ValueError(f"{fn}: logits has shape {_shape(Z)}; need at least one row "
                         f"and one class")
    if L.dtype.kind == "u" and L.dtype.itemsize == 8:
        if m and int(L.max()) >= c:
            raise ValueError(f"{fn}: labels contain {int(L.max())}, out of range [0, {c})")
    L = np.ascontiguousarray(L, dtype=np.int64)
    cdef const int64_t[::1] lab = L
    with nogil:
        for i in range(m):
            if lab[i] < 0 or lab[i] >= c:
                bad = i
                break
    if bad >= 0:
        raise ValueError(f"{fn}: labels[{bad}] = {lab[bad]} is out of range [0, {c})")
    cdef double loss
    cdef int rc
    cdef void *pO = _data(O)
    cdef void *pZ = _data(Z)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            rc = _softmax_ce[float](m, c, <float *>pZ, &lab[0], <float *>pO, &loss)
        else:
            rc = _softmax_ce[double](m, c, <double *>pZ, &lab[0], <double *>pO, &loss)
    if rc != 0:
        raise MemoryError(f"{fn}: out of memory")
    return loss, O


# ---------------------------------------------------------------- SGD

cdef void _sgd(Py_ssize_t n, real *p, real *g, real *v, double lr, double mom,
               double wd) noexcept nogil:
    if real is float:
        mg_sgd_f32(n, p, g, v, <float>lr, <float>mom, <float>wd)
    else:
        mg_sgd_f64(n, p, g, v, lr, mom, wd)


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
            _sgd[float](n, <float *>pP, <float *>pG, <float *>vp, lr, momentum,
                        weight_decay)
        else:
            _sgd[double](n, <double *>pP, <double *>pG, <double *>vp, lr,
                         momentum, weight_decay)
    return P


include "_conv.pxi"
