/* Elementwise, row-wise, loss and optimizer kernels for one element type and
 * one instruction set (included by mg_isa_tmpl.h), apart from GEMM. Each
 * works on one piece of the data; the drivers (mg_drivers_tmpl.h) split the
 * work over threads. Loops are scalar code under `#pragma omp simd`, which
 * the compiler vectorizes for the target ISA.
 *
 * A MG_UNARY or MG_BINARY kernel of mg_kernels.def is only its scalar
 * function name_1 here: the loop over a piece is generated below. */

#if MG_IS_F64
#define MG_SQRT __builtin_sqrt
#else
#define MG_SQRT __builtin_sqrtf
#endif

/* ---- MG_UNARY and MG_BINARY: one element ---- */

static inline MG_T FN(relu_1)(MG_T x) { return x <= 0 ? (MG_T)0 : x; }

static inline MG_T FN(relu_backward_1)(MG_T g, MG_T x) { return x > 0 ? g : (MG_T)0; }

static inline MG_T FN(sigmoid_1)(MG_T x)
{
    MG_T e = FN(expneg)(-(x < 0 ? -x : x));
    MG_T r = 1 / (1 + e);
    return x >= 0 ? r : e * r;
}

static inline MG_T FN(sigmoid_backward_1)(MG_T g, MG_T y) { return g * y * (1 - y); }

/* tanh, computed in double: (1 - e) / (1 + e) with e = exp(-2|x|); below |x| = 0.04
 * its series (to x^13), where 1 - e would cancel. Relative error a few ulp of
 * double, so float results are correctly rounded but for rare ties. */
static inline MG_T FN(tanh_1)(MG_T x)
{
    double ax = x < 0 ? -(double)x : x, a2 = ax * ax;
    double e = FN(expneg_d)(-2 * ax);
    double big = (1 - e) / (1 + e);
    double s = 21844.0 / 6081075;
    s = s * a2 - 1382.0 / 155925; s = s * a2 + 62.0 / 2835; s = s * a2 - 17.0 / 315;
    s = s * a2 + 2.0 / 15; s = s * a2 - 1.0 / 3;
    s = ax + ax * a2 * s;
    double t = ax < 0.04 ? s : big;
    return (MG_T)__builtin_copysign(t, (double)x);
}

static inline MG_T FN(tanh_backward_1)(MG_T g, MG_T y) { return g * (1 - y * y); }

/* 0.5 x erfc(-x / sqrt 2): no cancellation for negative x. */
static inline MG_T FN(gelu_1)(MG_T x)
{
#if MG_IS_F64
    return 0.5 * x * erfc(-x * 0.70710678118654752);
#else
    return (float)(0.5 * x * FN(erfc_f)(-(double)x * 0.70710678118654752));
#endif
}

static inline MG_T FN(gelu_backward_1)(MG_T g, MG_T x)
{
    double xd = x, pdf = FN(expneg_d)(-0.5 * xd * xd) * 0.39894228040143268;
#if MG_IS_F64
    double cdf = 0.5 * erfc(-xd * 0.70710678118654752);
#else
    double cdf = 0.5 * FN(erfc_f)(-xd * 0.70710678118654752);
#endif
    return (MG_T)(g * (cdf + xd * pdf));
}

/* The loops over a piece, generated from the list. */
#define MG_UNARY(name, doc)                                                     \
    static void FN(name)(ptrdiff_t n, const MG_T *x, MG_T *y)                   \
    {                                                                           \
        _Pragma("omp simd") for (ptrdiff_t i = 0; i < n; i++)                   \
            y[i] = FN(name##_1)(x[i]);                                          \
    }
#define MG_BINARY(name, arg, doc)                                               \
    static void FN(name)(ptrdiff_t n, const MG_T *g, const MG_T *a, MG_T *dx)   \
    {                                                                           \
        _Pragma("omp simd") for (ptrdiff_t i = 0; i < n; i++)                   \
            dx[i] = FN(name##_1)(g[i], a[i]);                                   \
    }
#include "mg_kernels.def"

/* ---- MG_ROWS and MG_ROWS_BACKWARD: rows of an (m, n) array ---- */

static inline MG_T FN(row_max)(ptrdiff_t n, const MG_T *x)
{
    MG_T mx = x[0]; /* a NaN first stays: the row becomes NaN */
    for (ptrdiff_t j = 1; j < n; j++) mx = x[j] > mx ? x[j] : mx;
    return mx;
}

static void FN(softmax)(ptrdiff_t m, ptrdiff_t n, const MG_T *x_mn, MG_T *y_mn)
{
    for (ptrdiff_t i = 0; i < m; i++) {
        const MG_T *x = x_mn + i * n;
        MG_T *y = y_mn + i * n, mx = FN(row_max)(n, x), s = 0;
#pragma omp simd reduction(+ : s)
        for (ptrdiff_t j = 0; j < n; j++) {
            MG_T e = FN(expneg)(x[j] - mx);
            y[j] = e;
            s += e;
        }
        MG_T k = 1 / s;
#pragma omp simd
        for (ptrdiff_t j = 0; j < n; j++) y[j] *= k;
    }
}

static void FN(log_softmax)(ptrdiff_t m, ptrdiff_t n, const MG_T *x_mn, MG_T *y_mn)
{
    for (ptrdiff_t i = 0; i < m; i++) {
        const MG_T *x = x_mn + i * n;
        MG_T *y = y_mn + i * n, mx = FN(row_max)(n, x), s = 0;
#pragma omp simd reduction(+ : s)
        for (ptrdiff_t j = 0; j < n; j++) s += FN(expneg)(x[j] - mx);
        MG_T shift = mx + (MG_T)log((double)s);
#pragma omp simd
        for (ptrdiff_t j = 0; j < n; j++) y[j] = x[j] - shift;
    }
}

static void FN(softmax_backward)(ptrdiff_t m, ptrdiff_t n, const MG_T *g_mn,
                                 const MG_T *y_mn, MG_T *dx_mn)
{
    for (ptrdiff_t i = 0; i < m; i++) {
        const MG_T *g = g_mn + i * n, *y = y_mn + i * n;
        MG_T *dx = dx_mn + i * n;
        double dot = 0;
#pragma omp simd reduction(+ : dot)
        for (ptrdiff_t j = 0; j < n; j++) dot += (double)g[j] * y[j];
        MG_T d = (MG_T)dot;
#pragma omp simd
        for (ptrdiff_t j = 0; j < n; j++) dx[j] = y[j] * (g[j] - d);
    }
}

static void FN(log_softmax_backward)(ptrdiff_t m, ptrdiff_t n, const MG_T *g_mn,
                                     const MG_T *y_mn, MG_T *dx_mn)
{
    for (ptrdiff_t i = 0; i < m; i++) {
        const MG_T *g = g_mn + i * n, *y = y_mn + i * n;
        MG_T *dx = dx_mn + i * n;
        double sum = 0;
#pragma omp simd reduction(+ : sum)
        for (ptrdiff_t j = 0; j < n; j++) sum += g[j];
        MG_T s = (MG_T)sum;
#pragma omp simd
        for (ptrdiff_t j = 0; j < n; j++)
            dx[j] = g[j] - FN(expneg)(y[j] > 0 ? (MG_T)0 : y[j]) * s;
    }
}

/* ---- MG_LOSS: sum of the terms over a piece; grad = scale * d/dz ---- */

/* terms where(t == 1, 1 - s, s), s = sigmoid(z) */
static double FN(mnist_loss)(ptrdiff_t n, const MG_T *z, const MG_T *t, MG_T *grad,
                             MG_T scale)
{
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (ptrdiff_t i = 0; i < n; i++) {
        MG_T x = z[i];
        MG_T e = FN(expneg)(-(x < 0 ? -x : x));
        MG_T r = 1 / (1 + e);
        MG_T s = x >= 0 ? r : e * r;
        MG_T ds = e * r * r; /* s * (1 - s) without cancellation */
        MG_T l = t[i] == 1 ? 1 - s : s;
        MG_T d = t[i] == 1 ? -ds : ds;
        sum += l;
        grad[i] = d * scale;
    }
    return sum;
}

/* terms max(z, 0) - z t + log1p(exp(-|z|)); d/dz = sigmoid(z) - t */
static double FN(bce_with_logits)(ptrdiff_t n, const MG_T *z, const MG_T *t, MG_T *grad,
                                  MG_T scale)
{
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (ptrdiff_t i = 0; i < n; i++) {
        MG_T x = z[i], ax = x < 0 ? -x : x;
        MG_T e = FN(expneg)(-ax);
        MG_T r = 1 / (1 + e);
        MG_T s = x >= 0 ? r : e * r;
        sum += (x > 0 ? x : 0) - x * t[i] + FN(log1p01)(e);
        grad[i] = (s - t[i]) * scale;
    }
    return sum;
}

/* ---- kernels of their own shape ---- */

/* Elements of softmax cross-entropy's few-class path at a time. */
#define MG_CE_BLOCK 256

/* Rows of softmax cross-entropy; labels are already checked to be in [0, c).
 * Each row: its max, exp(z - max) and their sum, the gradient scale *
 * (softmax - onehot). With few classes (c <= 64) the exps of a block of rows
 * run as one vector loop over all their elements (row by row, ten classes
 * are fewer than a vector: they ran in the scalar remainder) and each row's
 * sum is taken in column order; more classes, or a block holding a
 * non-finite row, take the row-by-row vector loop and its lane-wise sum. */
static double FN(softmax_cross_entropy)(ptrdiff_t m, ptrdiff_t c, const MG_T *z_mc,
                                        const int64_t *labels_m, MG_T *grad_mc, MG_T scale)
{
    double total = 0;
    const ptrdiff_t rows = c <= MG_CE_BLOCK / 4 ? MG_CE_BLOCK / c : 1;
    MG_T mx_r[MG_CE_BLOCK], sh[MG_CE_BLOCK];
    for (ptrdiff_t i0 = 0; i0 < m; i0 += rows) {
        const ptrdiff_t nb = m - i0 < rows ? m - i0 : rows;
        const MG_T *zb = z_mc + i0 * c;
        MG_T *gb = grad_mc + i0 * c;
        int finite = 1;
        for (ptrdiff_t r = 0; r < nb; r++) {
            const MG_T *z = zb + r * c;
            MG_T mx = z[0];
            int any_nan = 0;
            for (ptrdiff_t j = 1; j < c; j++) mx = z[j] > mx ? z[j] : mx;
            for (ptrdiff_t j = 0; j < c; j++) any_nan |= z[j] != z[j];
            /* non-finite logits: NaN (an infinite logit has no finite loss) */
            mx_r[r] = any_nan || mx == (MG_T)INFINITY || mx == -(MG_T)INFINITY ? (MG_T)NAN : mx;
            finite &= mx_r[r] == mx_r[r];
        }
        if (rows > 1 && finite) {
            for (ptrdiff_t r = 0; r < nb; r++)
                for (ptrdiff_t j = 0; j < c; j++) sh[r * c + j] = zb[r * c + j] - mx_r[r];
#pragma omp simd
            for (ptrdiff_t k = 0; k < nb * c; k++) gb[k] = FN(expneg)(sh[k]);
        }
        for (ptrdiff_t r = 0; r < nb; r++) {
            const MG_T *z = zb + r * c;
            MG_T *g = gb + r * c, mx = mx_r[r], s = 0;
            if (mx != mx) {
                for (ptrdiff_t j = 0; j < c; j++) g[j] = (MG_T)NAN;
                total += NAN;
                continue;
            }
            if (rows > 1 && finite) {
                for (ptrdiff_t j = 0; j < c; j++) s += g[j];
            } else {
#pragma omp simd reduction(+ : s)
                for (ptrdiff_t j = 0; j < c; j++) {
                    MG_T e = FN(expneg)(z[j] - mx);
                    g[j] = e;
                    s += e;
                }
            }
            MG_T k = scale / s;
#pragma omp simd
            for (ptrdiff_t j = 0; j < c; j++) g[j] *= k;
            int64_t y = labels_m[i0 + r];
            g[y] -= scale;
            total += log((double)s) + (double)mx - (double)z[y];
        }
    }
    return total;
}
#undef MG_CE_BLOCK

/* db_n += column sums of g_mn, row by row. */
static void FN(bias_grad)(ptrdiff_t m, ptrdiff_t n, const MG_T *g_mn, MG_T *db_n)
{
    for (ptrdiff_t i = 0; i < m; i++) {
        const MG_T *g = g_mn + i * n;
#pragma omp simd
        for (ptrdiff_t j = 0; j < n; j++) db_n[j] += g[j];
    }
}

/* dx = g * (y > 0) and db += column sums of dx, in one pass over rows. */
static void FN(relu_backward_bias_grad)(ptrdiff_t m, ptrdiff_t n, const MG_T *g_mn,
                                        const MG_T *y_mn, MG_T *dx_mn, MG_T *db_n)
{
    for (ptrdiff_t i = 0; i < m; i++) {
        const MG_T *g = g_mn + i * n, *y = y_mn + i * n;
        MG_T *dx = dx_mn + i * n;
#pragma omp simd
        for (ptrdiff_t j = 0; j < n; j++) {
            MG_T d = y[j] > 0 ? g[j] : (MG_T)0;
            dx[j] = d;
            db_n[j] += d;
        }
    }
}

/* PyTorch's SGD: g = grad + wd p; v = momentum v + g; p -= lr v (v unused when
 * momentum is 0). */
static void FN(sgd_step)(ptrdiff_t n, MG_T *p, const MG_T *g, MG_T *v, MG_T lr,
                         MG_T momentum, MG_T wd)
{
    if (momentum == 0) {
#pragma omp simd
        for (ptrdiff_t i = 0; i < n; i++) p[i] -= lr * (g[i] + wd * p[i]);
        return;
    }
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) {
        MG_T vi = momentum * v[i] + (g[i] + wd * p[i]);
        v[i] = vi;
        p[i] -= lr * vi;
    }
}

/* PyTorch's Adam / AdamW (torch.optim.adam, single-tensor path): Adam adds
 * wd p to the gradient, AdamW scales p by 1 - lr wd; m = lerp(m, g, 1 - beta1);
 * v = beta2 v + (1 - beta2) g^2; p -= step_size m / (sqrt(v) / bc2_sqrt + eps). */
static void FN(adam_step)(ptrdiff_t n, MG_T *p, const MG_T *g, MG_T *m, MG_T *v,
                          const MG_CAT(mg_adam, MG_IS_F64_NAME) *h)
{
    const MG_T decay = h->decoupled ? 1 - h->lr * h->weight_decay : 1;
    const MG_T l2 = h->decoupled ? 0 : h->weight_decay;
    const MG_T w = 1 - h->beta1, b2 = h->beta2, c2 = 1 - h->beta2;
    const MG_T step = h->step_size, bc2 = h->bc2_sqrt, eps = h->eps;
    const int low = w < (MG_T)0.5; /* torch.lerp's two forms */
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) {
        MG_T pi = p[i] * decay;
        MG_T gi = g[i] + l2 * pi;
        MG_T mi = low ? m[i] + w * (gi - m[i]) : gi - (gi - m[i]) * (1 - w);
        MG_T vi = b2 * v[i] + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - step * (mi / (MG_SQRT(vi) / bc2 + eps));
    }
}

#undef MG_SQRT
