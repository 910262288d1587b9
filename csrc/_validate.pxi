# Argument checks shared by every wrapper (included by _kernels.pyx).

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


# ---------------------------------------------------------------- NCHW kernels

cdef Py_ssize_t _MAX_PARAM = 1 << 31


cdef tuple _pair(object v, str fn, str name, Py_ssize_t low):
    """v as a pair of ints, each >= low (and below 2**31)."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        pair = (int(v), int(v))
    elif isinstance(v, (tuple, list)) and len(v) == 2 and all(
            isinstance(e, (int, np.integer)) and not isinstance(e, (bool, np.bool_))
            for e in v):
        pair = (int(v[0]), int(v[1]))
    else:
        raise TypeError(f"{fn}: {name} must be an int or a pair of ints, got {v!r}")
    for e in pair:
        if e < low:
            raise ValueError(f"{fn}: {name} must be >= {low}, got {v!r}")
        if e >= _MAX_PARAM:
            raise ValueError(f"{fn}: {name} = {v!r} is too large")
    return pair


cdef tuple _input_shape(object shape, str fn, str name="input_shape"):
    try:
        s = tuple(int(e) for e in shape)
    except TypeError:
        raise TypeError(f"{fn}: {name} must be a tuple of 4 ints, got {shape!r}") from None
    if len(s) != 4 or any(e < 0 for e in s):
        raise ValueError(f"{fn}: {name} must be 4 non-negative ints (N, C, H, W), "
                         f"got {shape!r}")
    return s


cdef cnp.ndarray _nchw(object x, str fn, str name, int t):
    """x checked to be a C-contiguous 4-D array of type t (t < 0: any float)."""
    cdef cnp.ndarray X = _array(x, fn, name)
    if t < 0:
        _float_type(X, fn, name)
    else:
        _same_type(X, t, fn, name, "the first input")
    if X.ndim != 4:
        raise ValueError(f"{fn}: {name} must be 4-D (N, C, H, W), got shape {_shape(X)}")
    _contiguous(X, fn, name)
    return X


cdef cnp.ndarray _vector(object v, Py_ssize_t n, str fn, str name, int t, bint writeable):
    cdef cnp.ndarray V = _array(v, fn, name)
    _same_type(V, t, fn, name, "the first input")
    if _shape(V) != (n,):
        raise ValueError(f"{fn}: {name} must have shape ({n},), one per channel, "
                         f"got {_shape(V)}")
    _contiguous(V, fn, name)
    if writeable and not cnp.PyArray_ISWRITEABLE(V):
        raise ValueError(f"{fn}: {name} is read-only")
    return V


cdef int _window(mg_conv2d_geom *g, str fn, tuple xshape, Py_ssize_t oc, object kernel,
                 object stride, object padding, object dilation, bint pool) except -1:
    """Fills g for input xshape; raises unless the output is at least 1x1."""
    kh, kw = _pair(kernel, fn, "kernel_size", 1)
    sh, sw = _pair(stride, fn, "stride", 1)
    ph, pw = _pair(padding, fn, "padding", 0)
    dh, dw = _pair(dilation, fn, "dilation", 1)
    if pool and (ph > kh // 2 or pw > kw // 2):
        raise ValueError(f"{fn}: padding {(ph, pw)} must be at most half the kernel size "
                         f"{(kh, kw)}")
    n, c, h, w = xshape
    if h < 1 or w < 1:
        raise ValueError(f"{fn}: the input plane is {h}x{w}; H and W must be >= 1")
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError(
            f"{fn}: output would be {oh}x{ow} (smaller than 1x1): input {h}x{w} with "
            f"padding {(ph, pw)} is smaller than the kernel {(kh, kw)} with dilation "
            f"{(dh, dw)}")
    g.n, g.c, g.h, g.w, g.oc, g.oh, g.ow = n, c, h, w, oc, oh, ow
    g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw = kh, kw, sh, sw, ph, pw, dh, dw
    return 0


cdef int _disjoint_all(cnp.ndarray out, list inputs, str fn, str oname) except -1:
    for name, a in inputs:
        if a is not None:
            _disjoint(out, a, fn, oname, name, False)
    return 0


cdef inline bint _is32(int t) noexcept nogil:
    return t == cnp.NPY_FLOAT32


cdef int _check_grad_out(cnp.ndarray G, mg_conv2d_geom *g, str fn) except -1:
    cdef tuple want = (g.n, g.oc, g.oh, g.ow)
    if _shape(G) != want:
        raise ValueError(f"{fn}: grad_out has shape {_shape(G)}, expected {want} for "
                         f"input ({g.n}, {g.c}, {g.h}, {g.w})")
    return 0


cdef tuple _bn_dims(cnp.ndarray X, str fn):
    """(n, c, hw) of a (N, C, H, W) or (N, C) input."""
    if X.ndim == 4:
        return X.shape[0], X.shape[1], X.shape[2] * X.shape[3]
    if X.ndim == 2:
        return X.shape[0], X.shape[1], 1
    raise ValueError(f"{fn}: x must be 4-D (N, C, H, W) or 2-D (N, C), got shape "
                     f"{_shape(X)}")


cdef cnp.ndarray _bn_input(object x, str fn, str name, int t):
    cdef cnp.ndarray X = _array(x, fn, name)
    if t < 0:
        _float_type(X, fn, name)
    else:
        _same_type(X, t, fn, name, "x")
    _contiguous(X, fn, name)
    return X


cdef inline void *_opt(cnp.ndarray a) noexcept:
    return _data(a) if a is not None else NULL
