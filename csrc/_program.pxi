# The compiled training step's kernel calls, checked once and replayed without
# the GIL (included by _kernels.pyx; used by minigrad.compiled).

from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memset
from libc.math cimport isfinite

cdef enum:
    _OP_LINEAR, _OP_HEAD, _OP_SOFTMAX_CE, _OP_LOSS, _OP_BINARY, _OP_RELU_BWD_BIAS,
    _OP_BIAS_GRAD, _OP_MATMUL, _OP_SGD

# where an operand comes from: a bound array, the batch's input, or nowhere
cdef enum:
    _FROM_ARRAY, _FROM_INPUT, _FROM_NONE


cdef inline Py_ssize_t _stride(Py_ssize_t length, Py_ssize_t stride) noexcept:
    """A C-contiguous axis's stride in elements as the wrappers pass it (0 when
    the axis has at most one element)."""
    return stride if length > 1 else 0


cdef struct _Op:
    int code, phase, kernel, relu, trans_a, group
    Py_ssize_t m, n, k
    Py_ssize_t rsa, csa, rsb, csb
    int a_from, b_from
    void *a
    void *b
    void *c
    void *d
    void *e
    void *f


cdef class _StepProgram:
    """The kernel calls of one compiled training step for batches of n rows:
    each call's arrays are checked when it is added; ``run`` checks only the
    batch (input and targets) and then makes the phase's calls without the GIL.

    Phases: 0 forward and loss, 1 gradients, 2 SGD updates (hyper-parameters
    given to ``update``). An operand given as None is the batch's input: an
    (n, k) array of the program's dtype, or uint8 read as bytes / scale."""

    cdef int t
    cdef Py_ssize_t n, k, classes
    cdef bint input_u8, class_targets
    cdef list keep, outputs, written
    cdef _Op *ops
    cdef int count, cap, busy, phase
    cdef Py_ssize_t mark_keep, mark_outputs, mark_written

    def __cinit__(self, *args, **kwargs):
        self.ops = NULL

    def __init__(self, dtype, Py_ssize_t n, Py_ssize_t k, bint input_u8, bint class_targets,
                 Py_ssize_t classes):
        if self.keep is not None:
            raise RuntimeError("_StepProgram: already made")
        dt = np.dtype(dtype)
        if dt != np.float32 and dt != np.float64:
            raise TypeError(f"_StepProgram: dtype must be float32 or float64, got {dt}")
        if n < 1 or k < 1 or classes < 1:
            raise ValueError(f"_StepProgram: n, k and classes must be >= 1, got {n}, {k}, "
                             f"{classes}")
        self.t = cnp.NPY_FLOAT32 if dt == np.float32 else cnp.NPY_FLOAT64
        self.n, self.k, self.classes = n, k, classes
        self.input_u8, self.class_targets = input_u8, class_targets
        self.count = self.cap = self.busy = 0
        self.keep, self.outputs, self.written = [], [], [[], [], []]

    def __dealloc__(self):
        free(self.ops)

    cdef int _begin(self, _Op *op, int code, int phase) except -1:
        """Starts op: a call of kind `code` in `phase` (0: forward and loss, the
        only phase for losses; 1: gradients; 2: SGD updates, only those). Arrays
        bound from here on are dropped again by _rollback."""
        if self.keep is None:
            raise RuntimeError("_StepProgram: not made")
        if self.busy:
            raise RuntimeError("_StepProgram: running; calls cannot be added now")
        loss = code == _OP_HEAD or code == _OP_SOFTMAX_CE or code == _OP_LOSS
        if (code == _OP_SGD) != (phase == 2) or phase < 0 or phase > 2 or (loss and phase):
            raise ValueError(f"_StepProgram: phase {phase} cannot take this call (0: forward "
                             f"and the loss, 1: gradients, 2: SGD updates)")
        memset(op, 0, sizeof(_Op))
        op.code, op.phase = code, phase
        op.a_from = op.b_from = _FROM_ARRAY
        self.mark_keep, self.mark_outputs = len(self.keep), len(self.outputs)
        self.phase, self.mark_written = phase, len(self.written[phase])
        return 0

    cdef int _commit(self, _Op *op) except -1:
        cdef _Op *grown
        if self.count == self.cap:
            grown = <_Op *>realloc(self.ops, (2 * self.cap + 8) * sizeof(_Op))
            if grown == NULL:
                self._rollback()
                raise MemoryError("_StepProgram: out of memory")
            self.ops, self.cap = grown, 2 * self.cap + 8
        self.ops[self.count] = op[0]
        self.count += 1
        return 0

    cdef void _rollback(self) noexcept:
        del self.keep[self.mark_keep:]
        del self.outputs[self.mark_outputs:]
        del self.written[self.phase][self.mark_written:]

    cdef void *_bind(self, object a, tuple shape, bint write, str name) except NULL:
        """a checked to be a C-contiguous array of the program's dtype and this
        shape (writeable and apart from every other bound array when write);
        kept alive by the program."""
        cdef str fn = "_StepProgram"
        cdef cnp.ndarray A = _array(a, fn, name)
        _same_type(A, self.t, fn, name, "the program")
        if _shape(A) != shape:
            raise ValueError(f"{fn}: {name} has shape {_shape(A)}, expected {shape}")
        _contiguous(A, fn, name)
        if write:
            if not cnp.PyArray_ISWRITEABLE(A):
                raise ValueError(f"{fn}: {name} is read-only")
            for other in self.keep:
                if other is not A:
                    _disjoint(A, other, fn, name, "an array the program reads or writes",
                              False)
            self.outputs.append(A)
            self.written[self.phase].append(A)
        else:
            for other in self.outputs:
                if other is not A:
                    _disjoint(A, other, fn, name, "an array the program writes", False)
        self.keep.append(A)
        return _data(A)

    def linear(self, int phase, x, w, b, out, bint relu):
        """out = x @ w.T (+ b) (then ReLU); x None: the input."""
        cdef _Op op
        cdef Py_ssize_t m = self.n, kk = self.k, nn
        self._begin(&op, _OP_LINEAR, phase)
        try:
            nn = len(w)
            if x is None:
                op.a_from = _FROM_INPUT
            else:
                m, kk = x.shape
                op.a = self._bind(x, (m, kk), False, "x")
            op.b = self._bind(w, (nn, kk), False, "w")
            op.d = self._bind(b, (nn,), False, "b") if b is not None else NULL
            op.c = self._bind(out, (m, nn), True, "out")
        except BaseException:
            self._rollback()
            raise
        op.m, op.n, op.k, op.relu = m, nn, kk, relu
        op.rsa, op.csa = _stride(m, kk), _stride(kk, 1)
        op.rsb, op.csb = _stride(kk, 1), _stride(nn, kk)
        self._commit(&op)

    def matmul(self, int phase, a, b, out, bint trans_a):
        """out = a @ b, or a.T @ b with trans_a; a or b None: the input."""
        cdef _Op op
        cdef Py_ssize_t ar, ac, br, bc
        self._begin(&op, _OP_MATMUL, phase)
        try:
            ar, ac = (self.n, self.k) if a is None else a.shape
            br, bc = (self.n, self.k) if b is None else b.shape
            if a is None:
                op.a_from = _FROM_INPUT
            else:
                op.a = self._bind(a, (ar, ac), False, "a")
            if b is None:
                op.b_from = _FROM_INPUT
            else:
                op.b = self._bind(b, (br, bc), False, "b")
            if trans_a:
                op.m, op.k, op.rsa, op.csa = ac, ar, _stride(ac, 1), _stride(ar, ac)
            else:
                op.m, op.k, op.rsa, op.csa = ar, ac, _stride(ar, ac), _stride(ac, 1)
            if op.k != br:
                raise ValueError(f"_StepProgram: matmul shapes do not match: ({ar}, {ac})"
                                 f"{'.T' if trans_a else ''} @ ({br}, {bc})")
            op.n, op.rsb, op.csb = bc, _stride(br, bc), _stride(bc, 1)
            op.c = self._bind(out, (op.m, op.n), True, "out")
        except BaseException:
            self._rollback()
            raise
        self._commit(&op)

    def head(self, int phase, x, w, b, z, dz, dx, bint relu):
        """linear_cross_entropy(x, w, b, targets) into z, dz and dx (None: no dx)."""
        cdef _Op op
        cdef Py_ssize_t m, kk, c
        self._begin(&op, _OP_HEAD, phase)
        try:
            m, kk = x.shape
            c = len(w)
            self._targets_fit(m, c)
            op.a = self._bind(x, (m, kk), False, "x")
            op.b = self._bind(w, (c, kk), False, "w")
            op.d = self._bind(b, (c,), False, "b") if b is not None else NULL
            op.c = self._bind(z, (m, c), True, "z")
            op.e = self._bind(dz, (m, c), True, "dz")
            op.f = self._bind(dx, (m, kk), True, "dx") if dx is not None else NULL
        except BaseException:
            self._rollback()
            raise
        op.m, op.n, op.k, op.relu = m, c, kk, relu
        self._commit(&op)

    def softmax_cross_entropy(self, int phase, z, dz):
        """softmax_cross_entropy(z, targets) into dz."""
        self._loss_op(_OP_SOFTMAX_CE, phase, 0, z, dz)

    def loss(self, int phase, int kernel, z, dz):
        """The listed loss ``kernel`` of (z, float targets) into dz."""
        _name(kernel, MG_KIND_LOSS)
        self._loss_op(_OP_LOSS, phase, kernel, z, dz)

    cdef _loss_op(self, int code, int phase, int kernel, z, dz):
        cdef _Op op
        cdef Py_ssize_t m, c
        self._begin(&op, code, phase)
        try:
            m, c = z.shape
            self._targets_fit(m, c)
            op.a = self._bind(z, (m, c), False, "z")
            op.c = self._bind(dz, (m, c), True, "dz")
        except BaseException:
            self._rollback()
            raise
        op.m, op.n, op.kernel = m, c, kernel
        self._commit(&op)

    cdef _targets_fit(self, Py_ssize_t m, Py_ssize_t c):
        if m != self.n or c != self.classes:
            raise ValueError(f"_StepProgram: the loss takes ({m}, {c}) logits; the program "
                             f"was made for ({self.n}, {self.classes})")

    def binary(self, int phase, int kernel, g, a, out):
        """The listed binary ``kernel`` (e.g. relu_backward) of g and a into out."""
        _name(kernel, MG_KIND_BINARY)
        cdef _Op op
        self._begin(&op, _OP_BINARY, phase)
        try:
            op.a = self._bind(g, _shape(g), False, "g")
            op.b = self._bind(a, _shape(g), False, "a")
            op.c = self._bind(out, _shape(g), True, "out")
            op.m = g.size
        except BaseException:
            self._rollback()
            raise
        op.kernel = kernel
        self._commit(&op)

    def relu_backward_bias_grad(self, int phase, g, y, dx, db):
        """relu_backward_bias_grad(g, y) into dx and db."""
        cdef _Op op
        cdef Py_ssize_t m, c
        self._begin(&op, _OP_RELU_BWD_BIAS, phase)
        try:
            m, c = g.shape
            op.a = self._bind(g, (m, c), False, "g")
            op.b = self._bind(y, (m, c), False, "y")
            op.c = self._bind(dx, (m, c), True, "dx")
            op.d = self._bind(db, (c,), True, "db")
        except BaseException:
            self._rollback()
            raise
        op.m, op.n = m, c
        self._commit(&op)

    def bias_grad(self, int phase, g, db):
        """bias_grad(g) into db."""
        cdef _Op op
        cdef Py_ssize_t m, c
        self._begin(&op, _OP_BIAS_GRAD, phase)
        try:
            m, c = g.shape
            op.a = self._bind(g, (m, c), False, "g")
            op.c = self._bind(db, (c,), True, "db")
        except BaseException:
            self._rollback()
            raise
        op.m, op.n = m, c
        self._commit(&op)

    def sgd(self, int phase, p, g, v, int group):
        """sgd_step(p, g, velocity=v) with the hyper-parameters of ``group``
        given to ``update`` (v None: only momentum 0 is taken)."""
        cdef _Op op
        self._begin(&op, _OP_SGD, phase)
        try:
            if group < 0:
                raise ValueError(f"_StepProgram: group must be >= 0, got {group}")
            op.c = self._bind(p, _shape(p), True, "param")
            op.a = self._bind(g, _shape(p), False, "grad")
            op.e = self._bind(v, _shape(p), True, "velocity") if v is not None else NULL
            op.m = p.size
        except BaseException:
            self._rollback()
            raise
        op.group = group
        self._commit(&op)

    def run(self, int phase, x, targets=None, double scale=1.0):
        """Make the calls of phase 0 or 1 on the batch's input x (uint8 read as
        x / scale when the program takes bytes) and, for phase 0, targets;
        returns the loss of phase 0 (else 0.0)."""
        cdef str fn = "compiled step"
        cdef cnp.ndarray X = None, T = None
        cdef void *px = NULL
        cdef void *pt = NULL
        cdef Py_ssize_t i, bad = -1
        cdef const int64_t *lab
        if phase != 0 and phase != 1:
            raise ValueError(f"{fn}: run takes phase 0 or 1, got {phase}")
        if phase == 0 and targets is None:
            raise ValueError(f"{fn}: phase 0 needs targets")
        if not self._writeable(phase):
            raise ValueError(f"{fn}: an array phase {phase} writes was made read-only")
        X = _array(x, fn, "x")
        if self.input_u8:
            if cnp.PyArray_TYPE(X) != cnp.NPY_UINT8:
                raise TypeError(f"{fn}: x must be uint8, got {X.dtype}")
            if not _U8_SCALE_MIN <= scale <= _U8_SCALE_MAX:
                raise ValueError(f"{fn}: scale must lie in [2**-100, 2**100], got {scale}")
        else:
            _same_type(X, self.t, fn, "x", "the program")
        if _shape(X) != (self.n, self.k):
            raise ValueError(f"{fn}: x has shape {_shape(X)}, expected {(self.n, self.k)}")
        _contiguous(X, fn, "x")
        self._apart(X, "x")
        px = _data(X)
        if targets is not None:
            T = _array(targets, fn, "targets")
            if self.class_targets:
                if cnp.PyArray_TYPE(T) != cnp.NPY_INT64 or not cnp.PyArray_ISNOTSWAPPED(T) \
                        or not cnp.PyArray_ISALIGNED(T):
                    raise TypeError(f"{fn}: targets must be native int64, got {T.dtype}")
                if _shape(T) != (self.n,):
                    raise ValueError(f"{fn}: targets have shape {_shape(T)}, expected "
                                     f"({self.n},)")
            else:
                _same_type(T, self.t, fn, "targets", "the program")
                if T.size != self.n * self.classes:
                    raise ValueError(f"{fn}: targets have {T.size} elements, expected "
                                     f"{self.n * self.classes}")
            _contiguous(T, fn, "targets")
            self._apart(T, "targets")
            pt = _data(T)
            if self.class_targets:
                lab = <const int64_t *>pt
                with nogil:
                    for i in range(self.n):
                        if lab[i] < 0 or lab[i] >= self.classes:
                            bad = i
                            break
                if bad >= 0:
                    raise ValueError(f"{fn}: targets[{bad}] = {lab[bad]} is out of range "
                                     f"[0, {self.classes})")
        cdef double loss = 0.0
        cdef int rc
        self.busy += 1
        with nogil:
            rc = self._exec(phase, px, pt, scale, NULL, &loss)
        self.busy -= 1
        if rc != 0:
            raise MemoryError(f"{fn}: out of memory")
        return loss

    cdef int _writeable(self, int phase) except -1:
        """1 if every array the phase writes is still writeable, else 0."""
        cdef cnp.ndarray o
        if self.keep is None:
            raise RuntimeError("_StepProgram: not made")
        for o in self.written[phase]:
            if not cnp.PyArray_ISWRITEABLE(o):
                return 0
        return 1

    cdef int _apart(self, cnp.ndarray a, str name) except -1:
        """a (C-contiguous) shares no memory with an array the program writes."""
        cdef char *lo = <char *>cnp.PyArray_DATA(a)
        cdef char *hi = lo + cnp.PyArray_NBYTES(a)
        cdef cnp.ndarray o
        for o in self.outputs:
            if lo < <char *>cnp.PyArray_DATA(o) + cnp.PyArray_NBYTES(o) \
                    and <char *>cnp.PyArray_DATA(o) < hi:
                raise ValueError(f"compiled step: {name} overlaps a buffer of the step in "
                                 f"memory")
        return 0

    def update(self, hparams):
        """Make the SGD calls, group g with (lr, momentum, weight_decay) =
        hparams[3 g: 3 g + 3] (a sequence of numbers); False (nothing done)
        when a value is not a finite number >= 0, a call without velocity is
        given momentum, or an array it writes was made read-only, for the
        caller's own update to take (and raise) instead."""
        cdef Py_ssize_t i, count
        cdef double *hp
        cdef _Op *op
        if not self._writeable(2):
            return False
        values = tuple(hparams)  # its own copy: a value's __float__ may change the caller's
        count = len(values)
        if count % 3:
            raise ValueError(f"_StepProgram: hparams must hold 3 numbers a group, got {count}")
        hp = <double *>malloc((count + 1) * sizeof(double))
        if hp == NULL:
            raise MemoryError("_StepProgram: out of memory")
        try:
            for i in range(count):
                hp[i] = values[i]  # TypeError if not a number
                if not (isfinite(hp[i]) and hp[i] >= 0):
                    return False
            for i in range(self.count):
                op = &self.ops[i]
                if op.code != _OP_SGD:
                    continue
                if 3 * op.group + 2 >= count:
                    raise ValueError(f"_StepProgram: no hyper-parameters for group {op.group}")
                if op.e == NULL and hp[3 * op.group + 1] != 0:
                    return False
            self.busy += 1
            with nogil:
                self._exec(2, NULL, NULL, 1.0, hp, NULL)
            self.busy -= 1
        finally:
            free(hp)
        return True

    cdef int _exec(self, int phase, void *px, void *pt, double scale, const double *hp,
                   double *loss) noexcept nogil:
        cdef Py_ssize_t i
        cdef _Op *op
        cdef void *pa
        cdef void *pb
        cdef int rc = 0
        cdef bint f32 = self.t == cnp.NPY_FLOAT32
        cdef const double *h
        for i in range(self.count):
            op = &self.ops[i]
            if op.phase != phase:
                continue
            pa = px if op.a_from == _FROM_INPUT else op.a
            pb = px if op.b_from == _FROM_INPUT else op.b
            if op.code == _OP_LINEAR or op.code == _OP_MATMUL:
                rc = _gemm_call(self.t, op.m, op.n, op.k, pa, op.rsa, op.csa, pb, op.rsb,
                                op.csb, op.c, False, op.d, op.relu,
                                self.input_u8 and op.a_from == _FROM_INPUT,
                                self.input_u8 and op.b_from == _FROM_INPUT, scale)
            elif op.code == _OP_HEAD and f32:
                rc = mg_linear_cross_entropy_f32(op.m, op.k, op.n, <float *>pa, <float *>pb,
                                                 <float *>op.d, <int64_t *>pt, op.relu,
                                                 <float *>op.c, <float *>op.e, <float *>op.f,
                                                 loss)
            elif op.code == _OP_HEAD:
                rc = mg_linear_cross_entropy_f64(op.m, op.k, op.n, <double *>pa, <double *>pb,
                                                 <double *>op.d, <int64_t *>pt, op.relu,
                                                 <double *>op.c, <double *>op.e,
                                                 <double *>op.f, loss)
            elif op.code == _OP_SOFTMAX_CE and f32:
                rc = mg_softmax_cross_entropy_f32(op.m, op.n, <float *>pa, <int64_t *>pt,
                                                  <float *>op.c, loss)
            elif op.code == _OP_SOFTMAX_CE:
                rc = mg_softmax_cross_entropy_f64(op.m, op.n, <double *>pa, <int64_t *>pt,
                                                  <double *>op.c, loss)
            elif op.code == _OP_LOSS and f32:
                rc = mg_loss_f32(op.kernel, op.m * op.n, <float *>pa, <float *>pt,
                                 <float *>op.c, loss)
            elif op.code == _OP_LOSS:
                rc = mg_loss_f64(op.kernel, op.m * op.n, <double *>pa, <double *>pt,
                                 <double *>op.c, loss)
            elif op.code == _OP_BINARY and f32:
                rc = mg_binary_f32(op.kernel, op.m, <float *>pa, <float *>pb, <float *>op.c)
            elif op.code == _OP_BINARY:
                rc = mg_binary_f64(op.kernel, op.m, <double *>pa, <double *>pb,
                                   <double *>op.c)
            elif op.code == _OP_RELU_BWD_BIAS and f32:
                mg_relu_backward_bias_grad_f32(op.m, op.n, <float *>pa, <float *>pb,
                                               <float *>op.c, <float *>op.d)
            elif op.code == _OP_RELU_BWD_BIAS:
                mg_relu_backward_bias_grad_f64(op.m, op.n, <double *>pa, <double *>pb,
                                               <double *>op.c, <double *>op.d)
            elif op.code == _OP_BIAS_GRAD and f32:
                mg_bias_grad_f32(op.m, op.n, <float *>pa, <float *>op.c)
            elif op.code == _OP_BIAS_GRAD:
                mg_bias_grad_f64(op.m, op.n, <double *>pa, <double *>op.c)
            elif op.code == _OP_SGD:
                h = hp + 3 * op.group
                if f32:
                    mg_sgd_step_f32(op.m, <float *>op.c, <float *>pa, <float *>op.e,
                                    <float>h[0], <float>h[1], <float>h[2])
                else:
                    mg_sgd_step_f64(op.m, <double *>op.c, <double *>pa, <double *>op.e,
                                    h[0], h[1], h[2])
            if rc != 0:
                return rc
        return 0
