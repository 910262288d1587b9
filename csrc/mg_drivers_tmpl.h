/* Drivers of every kernel but GEMM for one element type (included by
 * mg_driver.c with MG_T, MG_S, FN and OPS): they pick the ops table of the
 * active ISA, cut the work into pieces whose boundaries do not depend on the
 * thread count, and run them with mg_run_pieces. Sums over pieces are added
 * in piece order, so every result is bit-identical for any thread count.
 * The entry points of the kinds in mg_kernels.def pick the kernel by id. */

static const OPS *FN(ops)(void)
{
    switch (mg_isa_active()) {
#if MG_X86
    case MG_ISA_AVX512: return &MG_CAT(MG_CAT(mg_ops, MG_S), avx512);
    case MG_ISA_AVX2: return &MG_CAT(MG_CAT(mg_ops, MG_S), avx2);
#endif
    default: return &MG_CAT(MG_CAT(mg_ops, MG_S), generic);
    }
}

/* One call's arguments, shared by its pieces. Flat kinds cut `n` elements
 * into MG_CHUNK pieces; row kinds cut `n` rows of `cols` into `rows` rows. */
typedef struct {
    ptrdiff_t n, cols, rows;
    const MG_T *in1, *in2;  /* inputs (x; or grad_out and its partner; z, t) */
    MG_T *out1, *out2, *out3;
    MG_T scale, lr, momentum, weight_decay;
    double *part;           /* a partial sum per piece */
    const int64_t *labels;
    const MG_CAT(mg_adam, MG_S) *adam;
    const OPS *ops;
    MG_CAT(mg_unary_fn, MG_S) unary;
    MG_CAT(mg_binary_fn, MG_S) binary;
    MG_CAT(mg_rows_fn, MG_S) rows_fn;
    MG_CAT(mg_rows_backward_fn, MG_S) rows_backward;
    MG_CAT(mg_loss_fn, MG_S) loss;
} FN(job);

#define MG_JOB(p) const FN(job) *j = p
#define MG_OFFSET(ptr, i) ((ptr) ? (ptr) + (i) : NULL)

static void FN(unary_piece)(const void *p, ptrdiff_t k)
{
    MG_JOB(p);
    ptrdiff_t i = k * MG_CHUNK;
    j->unary(mg_piece_len(k, MG_CHUNK, j->n), j->in1 + i, j->out1 + i);
}

static void FN(binary_piece)(const void *p, ptrdiff_t k)
{
    MG_JOB(p);
    ptrdiff_t i = k * MG_CHUNK;
    j->binary(mg_piece_len(k, MG_CHUNK, j->n), j->in1 + i, j->in2 + i, j->out1 + i);
}

static void FN(loss_piece)(const void *p, ptrdiff_t k)
{
    MG_JOB(p);
    ptrdiff_t i = k * MG_CHUNK;
    j->part[k] = j->loss(mg_piece_len(k, MG_CHUNK, j->n), j->in1 + i, j->in2 + i,
                         j->out1 + i, j->scale);
}

static void FN(rows_piece)(const void *p, ptrdiff_t k)
{
    MG_JOB(p);
    ptrdiff_t i = k * j->rows * j->cols;
    j->rows_fn(mg_piece_len(k, j->rows, j->n), j->cols, j->in1 + i, j->out1 + i);
}

static void FN(rows_backward_piece)(const void *p, ptrdiff_t k)
{
    MG_JOB(p);
    ptrdiff_t i = k * j->rows * j->cols;
    j->rows_backward(mg_piece_len(k, j->rows, j->n), j->cols, j->in1 + i, j->in2 + i,
                     j->out1 + i);
}

static void FN(softmax_ce_piece)(const void *p, ptrdiff_t k)
{
    MG_JOB(p);
    ptrdiff_t r = k * j->rows;
    j->part[k] = j->ops->softmax_cross_entropy(mg_piece_len(k, j->rows, j->n), j->cols,
                                               j->in1 + r * j->cols, j->labels + r,
                                               j->out1 + r * j->cols, j->scale);
}

static void FN(sgd_piece)(const void *p, ptrdiff_t k)
{
    MG_JOB(p);
    ptrdiff_t i = k * MG_CHUNK;
    j->ops->sgd_step(mg_piece_len(k, MG_CHUNK, j->n), j->out1 + i, j->in1 + i,
                     MG_OFFSET(j->out2, i), j->lr, j->momentum, j->weight_decay);
}

static void FN(adam_piece)(const void *p, ptrdiff_t k)
{
    MG_JOB(p);
    ptrdiff_t i = k * MG_CHUNK;
    j->ops->adam_step(mg_piece_len(k, MG_CHUNK, j->n), j->out1 + i, j->in1 + i,
                      j->out2 + i, j->out3 + i, j->adam);
}

/* ---- the kinds of mg_kernels.def, by id ---- */

int FN(mg_unary)(int kernel, ptrdiff_t n, const MG_T *x, MG_T *y)
{
    const OPS *ops = FN(ops)();
    FN(job) j = {.n = n, .in1 = x, .out1 = y};
    switch (kernel) {
#define MG_UNARY(name, doc) case MG_K_##name: j.unary = ops->name; break;
#include "mg_kernels.def"
    default: return -1;
    }
    mg_run_pieces(mg_pieces(n, MG_CHUNK), mg_want((double)n), FN(unary_piece), &j);
    return 0;
}

int FN(mg_binary)(int kernel, ptrdiff_t n, const MG_T *g, const MG_T *a, MG_T *dx)
{
    const OPS *ops = FN(ops)();
    FN(job) j = {.n = n, .in1 = g, .in2 = a, .out1 = dx};
    switch (kernel) {
#define MG_BINARY(name, arg, doc) case MG_K_##name: j.binary = ops->name; break;
#include "mg_kernels.def"
    default: return -1;
    }
    mg_run_pieces(mg_pieces(n, MG_CHUNK), mg_want((double)n), FN(binary_piece), &j);
    return 0;
}

/* Rows per piece: about MG_CHUNK elements, at least one row. */
static ptrdiff_t FN(rows_per_piece)(ptrdiff_t cols)
{
    return MG_CHUNK / cols > 0 ? MG_CHUNK / cols : 1;
}

int FN(mg_rows)(int kernel, ptrdiff_t m, ptrdiff_t n, const MG_T *x, MG_T *y)
{
    const OPS *ops = FN(ops)();
    FN(job) j = {.n = m, .cols = n, .in1 = x, .out1 = y};
    switch (kernel) {
#define MG_ROWS(name, doc) case MG_K_##name: j.rows_fn = ops->name; break;
#include "mg_kernels.def"
    default: return -1;
    }
    if (m == 0 || n == 0) return 0;
    j.rows = FN(rows_per_piece)(n);
    mg_run_pieces(mg_pieces(m, j.rows), mg_want((double)m * n), FN(rows_piece), &j);
    return 0;
}

int FN(mg_rows_backward)(int kernel, ptrdiff_t m, ptrdiff_t n, const MG_T *g, const MG_T *y,
                         MG_T *dx)
{
    const OPS *ops = FN(ops)();
    FN(job) j = {.n = m, .cols = n, .in1 = g, .in2 = y, .out1 = dx};
    switch (kernel) {
#define MG_ROWS_BACKWARD(name, doc) case MG_K_##name: j.rows_backward = ops->name; break;
#include "mg_kernels.def"
    default: return -1;
    }
    if (m == 0 || n == 0) return 0;
    j.rows = FN(rows_per_piece)(n);
    mg_run_pieces(mg_pieces(m, j.rows), mg_want((double)m * n), FN(rows_backward_piece), &j);
    return 0;
}

int FN(mg_loss)(int kernel, ptrdiff_t n, const MG_T *z, const MG_T *t, MG_T *grad,
                double *loss)
{
    const OPS *ops = FN(ops)();
    FN(job) j = {.n = n, .in1 = z, .in2 = t, .out1 = grad, .scale = (MG_T)(1.0 / (double)n)};
    switch (kernel) {
#define MG_LOSS(name, doc) case MG_K_##name: j.loss = ops->name; break;
#include "mg_kernels.def"
    default: return -1;
    }
    ptrdiff_t pieces = mg_pieces(n, MG_CHUNK);
    double stack[MG_STACK_PARTS];
    if (!(j.part = mg_parts(pieces, stack))) return -1;
    mg_run_pieces(pieces, mg_want((double)n), FN(loss_piece), &j);
    *loss = mg_sum_parts(j.part, pieces, stack) / (double)n;
    return 0;
}

/* ---- kernels of their own shape ---- */

int FN(mg_softmax_cross_entropy)(ptrdiff_t m, ptrdiff_t c, const MG_T *z, const int64_t *labels,
                                 MG_T *grad, double *loss)
{
    FN(job) j = {.ops = FN(ops)(), .n = m, .cols = c, .rows = FN(rows_per_piece)(c),
                 .in1 = z, .labels = labels, .out1 = grad,
                 .scale = (MG_T)(1.0 / (double)m)};
    ptrdiff_t pieces = mg_pieces(m, j.rows);
    double stack[MG_STACK_PARTS];
    if (!(j.part = mg_parts(pieces, stack))) return -1;
    mg_run_pieces(pieces, mg_want((double)m * c), FN(softmax_ce_piece), &j);
    *loss = mg_sum_parts(j.part, pieces, stack) / (double)m;
    return 0;
}

/* Column sums run on one thread, so each keeps its row order. */
void FN(mg_bias_grad)(ptrdiff_t m, ptrdiff_t n, const MG_T *g, MG_T *db)
{
    unsigned fp = mg_fp_enter();
    memset(db, 0, (size_t)n * sizeof(MG_T));
    FN(ops)()->bias_grad(m, n, g, db);
    mg_fp_leave(fp);
}

void FN(mg_relu_backward_bias_grad)(ptrdiff_t m, ptrdiff_t n, const MG_T *g, const MG_T *y,
                                    MG_T *dx, MG_T *db)
{
    unsigned fp = mg_fp_enter();
    memset(db, 0, (size_t)n * sizeof(MG_T));
    FN(ops)()->relu_backward_bias_grad(m, n, g, y, dx, db);
    mg_fp_leave(fp);
}

void FN(mg_sgd_step)(ptrdiff_t n, MG_T *p, const MG_T *g, MG_T *v, MG_T lr, MG_T momentum,
                     MG_T weight_decay)
{
    FN(job) j = {.ops = FN(ops)(), .n = n, .in1 = g, .out1 = p, .out2 = v, .lr = lr,
                 .momentum = momentum, .weight_decay = weight_decay};
    mg_run_pieces(mg_pieces(n, MG_CHUNK), mg_want((double)n), FN(sgd_piece), &j);
}

void FN(mg_adam_step)(ptrdiff_t n, MG_T *p, const MG_T *g, MG_T *m, MG_T *v,
                      const mg_adam_params *h)
{
    /* scalars as torch.optim.Adam computes them: in double, used as MG_T */
    double bc1 = 1 - pow(h->beta1, (double)h->step), bc2 = 1 - pow(h->beta2, (double)h->step);
    MG_CAT(mg_adam, MG_S) a = {
        .lr = (MG_T)h->lr, .beta1 = (MG_T)h->beta1, .beta2 = (MG_T)h->beta2,
        .eps = (MG_T)h->eps, .weight_decay = (MG_T)h->weight_decay,
        .step_size = (MG_T)(h->lr / bc1), .bc2_sqrt = (MG_T)sqrt(bc2),
        .decoupled = h->decoupled};
    FN(job) j = {.ops = FN(ops)(), .n = n, .in1 = g, .out1 = p, .out2 = m, .out3 = v,
                 .adam = &a};
    mg_run_pieces(mg_pieces(n, MG_CHUNK), mg_want((double)n), FN(adam_piece), &j);
}

#undef MG_JOB
#undef MG_OFFSET
