# matmul and linear (included by _kernels.pyx).

cdef extern from *:
    """
    int mg_gemm_u8_f32(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *A, const uint8_t *A8,
                       ptrdiff_t rsa, ptrdiff_t csa, const float *B, const uint8_t *B8,
                       ptrdiff_t rsb, ptrdiff_t csb, float *C, ptrdiff_t ldc, int accumulate,
                       const float *bias, int relu, double scale);
    int mg_gemm_u8_f64(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const double *A,
                       const uint8_t *A8, ptrdiff_t rsa, ptrdiff_t csa, const double *B,
                       const uint8_t *B8, ptrdiff_t rsb, ptrdiff_t csb, double *C,
                       ptrdiff_t ldc, int accumulate, const double *bias, int relu,
                       double scale);
    """
    int mg_gemm_u8_f32(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float *A,
                       const uint8_t *A8, Py_ssize_t rsa, Py_ssize_t csa, const float *B,
                       const uint8_t *B8, Py_ssize_t rsb, Py_ssize_t csb, float *C,
                       Py_ssize_t ldc, int accumulate, const float *bias, int relu,
                       double scale) nogil
    int mg_gemm_u8_f64(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const double *A,
                       const uint8_t *A8, Py_ssize_t rsa, Py_ssize_t csa, const double *B,
                       const uint8_t *B8, Py_ssize_t rsb, Py_ssize_t csb, double *C,
                       Py_ssize_t ldc, int accumulate, const double *bias, int relu,
                       double scale) nogil

# the divisors a uint8 operand takes: every byte / scale is a normal float32
cdef double _U8_SCALE_MIN = 2.0 ** -100, _U8_SCALE_MAX = 2.0 ** 100

cdef inline int _gemm_call(int t, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, void *pA,
                           Py_ssize_t rsa, Py_ssize_t csa, void *pB, Py_ssize_t rsb,
                           Py_ssize_t csb, void *pC, bint accumulate, void *bp,
                           bint relu, int a8, int b8, double scale) noexcept nogil:
    if (a8 or b8) and t == cnp.NPY_FLOAT32:
        return mg_gemm_u8_f32(M, N, K, NULL if a8 else <float *>pA,
                              <uint8_t *>pA if a8 else NULL, rsa, csa,
                              NULL if b8 else <float *>pB, <uint8_t *>pB if b8 else NULL,
                              rsb, csb, <float *>pC, N, accumulate, <float *>bp, relu, scale)
    if a8 or b8:
        return mg_gemm_u8_f64(M, N, K, NULL if a8 else <double *>pA,
                              <uint8_t *>pA if a8 else NULL, rsa, csa,
                              NULL if b8 else <double *>pB, <uint8_t *>pB if b8 else NULL,
                              rsb, csb, <double *>pC, N, accumulate, <double *>bp, relu, scale)
    if t == cnp.NPY_FLOAT32:
        return mg_gemm_f32(M, N, K, <float *>pA, rsa, csa, <float *>pB, rsb, csb,
                           <float *>pC, N, accumulate, <float *>bp, relu)
    return mg_gemm_f64(M, N, K, <double *>pA, rsa, csa, <double *>pB, rsb, csb,
                       <double *>pC, N, accumulate, <double *>bp, relu)


cdef double _u8_scale(str fn, object scale, cnp.ndarray u8, str name, str aname,
                      str bname, bint both) except? -1:
    """The divisor of the uint8 operand u8 (None if neither is), checked."""
    if both:
        raise TypeError(f"{fn}: {aname} and {bname} are both uint8; at most one operand "
                        f"may be uint8")
    if u8 is None:  # (scale= without a uint8 operand: _gemm_checked raises)
        return 1.0
    if scale is None:
        raise TypeError(f"{fn}: {name} is uint8: pass scale= (its elements are read as "
                        f"{name} / scale)")
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
        raise TypeError(f"{fn}: scale must be a number, got {type(scale).__name__}")
    cdef double s = float(scale)
    if not _U8_SCALE_MIN <= s <= _U8_SCALE_MAX:
        raise ValueError(f"{fn}: scale must lie in [2**-100, 2**100], got {s}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(u8):
        raise ValueError(f"{fn}: the uint8 {name} must be C-contiguous (strides "
                         f"{_strides(u8)}); pass numpy.ascontiguousarray({name})")
    return s


cdef cnp.ndarray _gemm_checked(str fn, object a, object b, bint trans_a, bint trans_b,
                               object out, bint accumulate, object bias, bint relu,
                               str aname, str bname, object scale=None):
    cdef cnp.ndarray A = _array(a, fn, aname)
    cdef cnp.ndarray B = _array(b, fn, bname)
    cdef cnp.ndarray C, D = None
    _ndim(A, 2, fn, aname)
    _ndim(B, 2, fn, bname)
    cdef int a8 = cnp.PyArray_TYPE(A) == cnp.NPY_UINT8
    cdef int b8 = cnp.PyArray_TYPE(B) == cnp.NPY_UINT8
    if scale is not None and not a8 and not b8:
        raise TypeError(f"{fn}: scale= applies to a uint8 operand, but neither {aname} "
                        f"({A.dtype}) nor {bname} ({B.dtype}) is uint8")
    cdef double s = _u8_scale(fn, scale, A if a8 else B if b8 else None,
                              aname if a8 else bname, aname, bname, a8 and b8)
    cdef int t = _float_type(B, fn, bname) if a8 else _float_type(A, fn, aname)
    if not a8 and not b8:
        _same_type(B, t, fn, bname, aname)
    elif not a8:
        _same_type(A, t, fn, aname, bname)
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
        _same_type(D, t, fn, "b", bname if a8 else aname)
        if D.ndim != 1 or D.shape[0] != N:
            raise ValueError(f"{fn}: b must have shape ({N},) to match the output "
                             f"({M}, {N}), got {_shape(D)}")
        _contiguous(D, fn, "b")
    if accumulate and out is None:
        raise ValueError(f"{fn}: accumulate=True needs out=")
    cdef cnp.npy_intp dims[2]
    if out is None:  # a new array overlaps nothing
        dims[0], dims[1] = M, N
        C = cnp.PyArray_EMPTY(2, dims, t, 0)
    else:
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
    if <double>M * N * K < 65536.0:  # ~1 us or less: releasing the GIL costs more
        rc = _gemm_call(t, M, N, K, pA, rsa, csa, pB, rsb, csb, pC, accumulate, bp, relu,
                        a8, b8, s)
    else:
        with nogil:
            rc = _gemm_call(t, M, N, K, pA, rsa, csa, pB, rsb, csb, pC, accumulate, bp, relu,
                            a8, b8, s)
    if rc != 0:
        raise MemoryError(f"{fn}: could not allocate packing buffers")
    return C


def matmul(a, b, *, bint trans_a=False, bint trans_b=False, out=None, bint accumulate=False,
           scale=None):
    """op(a) @ op(b), where op transposes when trans_a / trans_b is set.

    Covers a linear layer's forward ``x @ w`` and backward products
    ``x.T @ dy`` (trans_a) and ``dy @ w.T`` (trans_b) without copies.
    With ``accumulate=True`` the product is added into ``out``. One operand
    may be a C-contiguous uint8 array, read as ``a.astype(dtype) / scale``
    (converted while packing; the result equals the product of the converted
    array bit for bit)."""
    return _gemm_checked("matmul", a, b, trans_a, trans_b, out, accumulate, None, False,
                         "a", "b", scale)


def linear(x, w, b=None, *, bint relu=False, bint trans_w=False, out=None, scale=None):
    """x @ w + b (w transposed first if trans_w), then ReLU if relu.

    Bias and ReLU are applied to each output tile while it is in registers.
    x may be a C-contiguous uint8 array, read as ``x.astype(w.dtype) / scale``."""
    return _gemm_checked("linear", x, w, False, trans_w, out, False, b, relu, "x", "w", scale)


cdef extern from "mg_probe.h" nogil:
    double mg_peak_probe(int isa, int64_t iters, float *sink)
    int mg_set_ftz(int on)


def _peak_probe(double seconds=0.2):
    """This core's fp32 FMA peak in GFLOP/s on the active SIMD path: the best
    of several runs of independent fused multiply-adds (benchmarks only)."""
    import time
    cdef int isa = mg_isa_active()
    cdef int64_t iters = 1 << 14
    cdef double flops, elapsed, best = 0.0
    cdef float sink
    end = time.perf_counter() + seconds
    while True:
        start = time.perf_counter()
        with nogil:
            flops = mg_peak_probe(isa, iters, &sink)
        elapsed = time.perf_counter() - start
        if elapsed < 2e-3 and iters < (<int64_t>1 << 40):
            iters *= 2
        elif flops / elapsed / 1e9 > best:
            best = flops / elapsed / 1e9
        if best > 0 and time.perf_counter() > end:
            return best


def _set_ftz(bint on):
    """Set or clear flush-to-zero and denormals-are-zero on the calling
    thread (x86 MXCSR); returns the previous setting. For benchmarks that
    time NumPy on equal floating-point terms; kernels never need it."""
    return bool(mg_set_ftz(on))


cdef extern from *:
    """
    int mg_gemm_get_blocking_f32(int *out);
    int mg_gemm_get_blocking_f64(int *out);
    void mg_gemm_set_blocking_f32(int mc, int kc, int nc);
    void mg_gemm_set_blocking_f64(int mc, int kc, int nc);
    void mg_gemm_set_swap(int mode);
    """
    void mg_gemm_set_swap(int mode) nogil
    int mg_gemm_get_blocking_f32(int *out)
    int mg_gemm_get_blocking_f64(int *out)
    void mg_gemm_set_blocking_f32(int mc, int kc, int nc) nogil
    void mg_gemm_set_blocking_f64(int mc, int kc, int nc) nogil


def _gemm_blocking(dtype="float32"):
    """The GEMM's cache blocking on the active SIMD path for ``dtype``:
    ``(mc, kc, nc)``, chosen from CPUID unless forced (tests, benchmarks)."""
    cdef int out[3]
    if np.dtype(dtype) == np.float32:
        mg_gemm_get_blocking_f32(out)
    elif np.dtype(dtype) == np.float64:
        mg_gemm_get_blocking_f64(out)
    else:
        raise ValueError(f"_gemm_blocking: dtype must be float32 or float64, got {dtype}")
    return out[0], out[1], out[2]


def _set_gemm_blocking(int mc=0, int kc=0, int nc=0, dtype=None):
    """Force the GEMM's blocking (elements; 0 restores the CPUID choice) for
    ``dtype`` (both float types when None). Results change only in rounding
    (sums split at other depths); for tests and benchmarks."""
    if mc < 0 or kc < 0 or nc < 0:
        raise ValueError(f"_set_gemm_blocking: sizes must be >= 0, got {mc}, {kc}, {nc}")
    if dtype is None or np.dtype(dtype) == np.float32:
        mg_gemm_set_blocking_f32(mc, kc, nc)
    if dtype is None or np.dtype(dtype) == np.float64:
        mg_gemm_set_blocking_f64(mc, kc, nc)



def _set_gemm_swap(swap=None):
    """Whether a GEMM of few rows and many columns computes C.T = B.T A.T
    instead (the big operand read in place): None lets the CPU decide (on
    Intel: at most one micro-tile of rows and K within L1d's cache lines),
    True wherever it applies (at most two micro-tiles of rows), False never.
    For tests."""
    mg_gemm_set_swap(0 if swap is None else 1 if swap else -1)
