/* Kernels for one element type and one instruction set.
 *
 * Included by mg_isa_each.h once per (type, ISA) under a `#pragma GCC target`:
 *   MG_T      element type (float or double)    MG_IS_F64  1 for double
 *   MG_UT     unsigned integer of the same width
 *   MG_SFX    name suffix, e.g. f32_avx512       MG_VB      vector width in bytes
 *   MG_MR     micro-tile rows                    MG_NV      vectors per micro-tile row
 * The GEMM micro-kernel uses GCC vector extensions, so one source serves every
 * vector width; elementwise loops are written as scalar code under
 * `#pragma omp simd`, which the compiler vectorizes for the target ISA. */

#define MG_CAT2(a, b) a##_##b
#define MG_CAT(a, b) MG_CAT2(a, b)
#define FN(name) MG_CAT(name, MG_SFX)

typedef MG_T FN(vec) __attribute__((vector_size(MG_VB)));
typedef MG_UT FN(uvec) __attribute__((vector_size(MG_VB)));
#define V FN(vec)
#define UV FN(uvec)
#define VL ((int)(MG_VB / sizeof(MG_T)))
#define NR (MG_NV * VL)

static inline V FN(loadv)(const MG_T *p) { V v; memcpy(&v, p, sizeof v); return v; }

/* All lanes = x. (Not `(V){0} + x`: adding 0.0 is not an identity for -0.0,
 * so the compiler keeps a real add on the micro-kernel's critical path;
 * x * 1.0 is an identity, so this folds to a bare broadcast.) */
static inline V FN(splat)(MG_T x)
{
    return x * ((V){0} + 1);
}
static inline void FN(storev)(MG_T *p, V v) { memcpy(p, &v, sizeof v); }

/* ReLU that keeps NaN (as np.maximum does): zero only where x <= 0. */
static inline V FN(reluv)(V x)
{
    V zero = {0};
    return (V)((UV)x & ~(UV)(x <= zero));
}

/* C[m x n] (+)= A_sliver (MR x kc) * B_sliver (kc x NR, packed), then
 * + bias and ReLU when asked (only on the last k-block). Element (i, p) of
 * the A sliver is a[i * rsa + p * csa]: (1, MR) when packed, or the strides of
 * the caller's matrix when A is read in place. */
static inline __attribute__((always_inline)) void FN(ukernel)(
    ptrdiff_t kc, const MG_T *restrict a, ptrdiff_t rsa, ptrdiff_t csa,
    const MG_T *restrict b, MG_T *restrict c, ptrdiff_t rsc, ptrdiff_t csc, int m,
    int n, int load_c, const MG_T *restrict bias, int relu)
{
    V acc[MG_MR][MG_NV];
#pragma GCC unroll 32
    for (int i = 0; i < MG_MR; i++)
#pragma GCC unroll 8
        for (int j = 0; j < MG_NV; j++) acc[i][j] = (V){0};

    for (ptrdiff_t p = 0; p < kc; p++) {
        V bv[MG_NV];
#pragma GCC unroll 8
        for (int j = 0; j < MG_NV; j++) bv[j] = FN(loadv)(b + j * VL);
#pragma GCC unroll 32
        for (int i = 0; i < MG_MR; i++) {
            V ai = FN(splat)(a[i * rsa]);
#pragma GCC unroll 8
            for (int j = 0; j < MG_NV; j++) acc[i][j] += ai * bv[j];
        }
        a += csa;
        b += NR;
    }

    if (m == MG_MR && n == NR && csc == 1) {
#pragma GCC unroll 32
        for (int i = 0; i < MG_MR; i++)
#pragma GCC unroll 8
            for (int j = 0; j < MG_NV; j++) {
                MG_T *cp = c + i * rsc + j * VL;
                V r = acc[i][j];
                if (load_c) r += FN(loadv)(cp);
                if (bias) r += FN(loadv)(bias + j * VL);
                if (relu) r = FN(reluv)(r);
                FN(storev)(cp, r);
            }
        return;
    }
    MG_T tile[MG_MR * NR];
    for (int i = 0; i < MG_MR; i++)
        for (int j = 0; j < MG_NV; j++) FN(storev)(tile + i * NR + j * VL, acc[i][j]);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            MG_T r = tile[i * NR + j];
            if (load_c) r += c[i * rsc + j * csc];
            if (bias) r += bias[j];
            if (relu && r <= 0) r = 0;
            c[i * rsc + j * csc] = r;
        }
}

/* C[mc x nc] (+)= A (packed slivers) * B (packed slivers); C's element
 * (i, j) is c[i * rsc + j * csc]. Each A sliver (MR x kc, broadcast) stays in
 * L1 while the B panel streams from L2. */
static void FN(macro)(ptrdiff_t mc, ptrdiff_t nc, ptrdiff_t kc, const MG_T *ap,
                      const MG_T *bp, MG_T *c, ptrdiff_t rsc, ptrdiff_t csc, int load_c,
                      const MG_T *bias, int relu)
{
    for (ptrdiff_t ir = 0; ir < mc; ir += MG_MR) {
        int m = (int)(mc - ir < MG_MR ? mc - ir : MG_MR);
        for (ptrdiff_t jr = 0; jr < nc; jr += NR) {
            int n = (int)(nc - jr < NR ? nc - jr : NR);
            FN(ukernel)(kc, ap + ir * kc, 1, MG_MR, bp + jr * kc, c + ir * rsc + jr * csc,
                        rsc, csc, m, n, load_c, bias ? bias + jr : NULL, relu);
        }
    }
}

/* The same with A read in place (strides rsa, csa), for few column slivers,
 * where packing A would cost more than it saves. A last sliver of fewer than
 * MR rows is packed into `edge` (MR x kc), so no row past mc is read. */
static void FN(macro_direct)(ptrdiff_t mc, ptrdiff_t nc, ptrdiff_t kc, const MG_T *a,
                             ptrdiff_t rsa, ptrdiff_t csa, MG_T *edge, const MG_T *bp,
                             MG_T *c, ptrdiff_t rsc, ptrdiff_t csc, int load_c,
                             const MG_T *bias, int relu)
{
    for (ptrdiff_t ir = 0; ir < mc; ir += MG_MR) {
        int m = (int)(mc - ir < MG_MR ? mc - ir : MG_MR);
        const MG_T *ai = a + ir * rsa;
        ptrdiff_t rs = rsa, cs = csa;
        if (m < MG_MR) {
            for (ptrdiff_t p = 0; p < kc; p++)
                for (int i = 0; i < MG_MR; i++)
                    edge[p * MG_MR + i] = i < m ? ai[i * rsa + p * csa] : (MG_T)0;
            ai = edge;
            rs = 1;
            cs = MG_MR;
        }
        for (ptrdiff_t jr = 0; jr < nc; jr += NR) {
            int n = (int)(nc - jr < NR ? nc - jr : NR);
            FN(ukernel)(kc, ai, rs, cs, bp + jr * kc, c + ir * rsc + jr * csc, rsc, csc, m,
                        n, load_c, bias ? bias + jr : NULL, relu);
        }
    }
}

/* ---- exp and log1p on restricted ranges, branch-free so loops vectorize ---- */

/* exp(x) for x <= 0 (NaN propagates; below the smallest normal it returns 0). */
static inline MG_T FN(expneg)(MG_T x)
{
#if MG_IS_F64
    const double lo = -708.0, magic = 6755399441055744.0; /* 1.5 * 2^52 */
    double n = (x * 1.4426950408889634 + magic) - magic;
    double r = (x - n * 0.6931471803691238) - n * 1.9082149292705877e-10;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int64_t e = (int64_t)n + 1023;
    uint64_t bits = (uint64_t)(e < 1 ? 1 : e) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
#else
    const float lo = -87.3f, magic = 12582912.0f; /* 1.5 * 2^23 */
    float n = (x * 1.44269504f + magic) - magic;
    float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t e = (int32_t)n + 127;
    uint32_t bits = (uint32_t)(e < 1 ? 1 : e) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
#endif
    MG_T y = p * scale;
    return x < lo ? (MG_T)0 : y;
}

/* log1p(u) for u in [0, 1]: 2 atanh(s) with s = u / (2 + u) <= 1/3. */
static inline MG_T FN(log1p01)(MG_T u)
{
    MG_T s = u / (2 + u), s2 = s * s, q;
#if MG_IS_F64
    q = 1.0 / 33;
    q = q * s2 + 1.0 / 31; q = q * s2 + 1.0 / 29; q = q * s2 + 1.0 / 27;
    q = q * s2 + 1.0 / 25; q = q * s2 + 1.0 / 23; q = q * s2 + 1.0 / 21;
    q = q * s2 + 1.0 / 19; q = q * s2 + 1.0 / 17; q = q * s2 + 1.0 / 15;
    q = q * s2 + 1.0 / 13; q = q * s2 + 1.0 / 11; q = q * s2 + 1.0 / 9;
    q = q * s2 + 1.0 / 7;  q = q * s2 + 1.0 / 5;  q = q * s2 + 1.0 / 3;
#else
    q = 1.0f / 17;
    q = q * s2 + 1.0f / 15; q = q * s2 + 1.0f / 13; q = q * s2 + 1.0f / 11;
    q = q * s2 + 1.0f / 9;  q = q * s2 + 1.0f / 7;  q = q * s2 + 1.0f / 5;
    q = q * s2 + 1.0f / 3;
#endif
    return 2 * s * (q * s2 + 1);
}

/* ---- elementwise kernels over [0, n) ---- */

static void FN(relu)(ptrdiff_t n, const MG_T *x, MG_T *y)
{
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) y[i] = x[i] <= 0 ? (MG_T)0 : x[i];
}

static void FN(relu_backward)(ptrdiff_t n, const MG_T *g, const MG_T *x, MG_T *dx)
{
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) dx[i] = x[i] > 0 ? g[i] : (MG_T)0;
}

/* dx = g * (y > 0) and db += column sums of dx, in one pass over rows. */
static void FN(relu_backward_bias)(ptrdiff_t m, ptrdiff_t n, const MG_T *g,
                                   const MG_T *y, MG_T *dx, MG_T *db)
{
    for (ptrdiff_t i = 0; i < m; i++) {
        const MG_T *gi = g + i * n, *yi = y + i * n;
        MG_T *di = dx + i * n;
#pragma omp simd
        for (ptrdiff_t j = 0; j < n; j++) {
            MG_T d = yi[j] > 0 ? gi[j] : (MG_T)0;
            di[j] = d;
            db[j] += d;
        }
    }
}

static void FN(add_rows)(ptrdiff_t m, ptrdiff_t n, const MG_T *g, MG_T *db)
{
    for (ptrdiff_t i = 0; i < m; i++) {
        const MG_T *gi = g + i * n;
#pragma omp simd
        for (ptrdiff_t j = 0; j < n; j++) db[j] += gi[j];
    }
}

static inline MG_T FN(sigmoid1)(MG_T x)
{
    MG_T e = FN(expneg)(-(x < 0 ? -x : x));
    MG_T r = 1 / (1 + e);
    return x >= 0 ? r : e * r;
}

static void FN(sigmoid)(ptrdiff_t n, const MG_T *x, MG_T *y)
{
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) y[i] = FN(sigmoid1)(x[i]);
}

static void FN(sigmoid_backward)(ptrdiff_t n, const MG_T *g, const MG_T *y, MG_T *dx)
{
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) dx[i] = g[i] * y[i] * (1 - y[i]);
}

/* sum of where(t == 1, 1 - s, s), s = sigmoid(z); grad = scale * d/dz. */
static double FN(mnist_loss)(ptrdiff_t n, const MG_T *z, const MG_T *t,
                             MG_T *grad, MG_T scale)
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

/* sum of max(z, 0) - z t + log1p(exp(-|z|)); grad = scale * (sigmoid(z) - t). */
static double FN(bce_logits)(ptrdiff_t n, const MG_T *z, const MG_T *t,
                             MG_T *grad, MG_T scale)
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

/* Rows of softmax cross-entropy; labels are already checked to be in [0, c). */
static double FN(softmax_ce)(ptrdiff_t m, ptrdiff_t c, const MG_T *z,
                             const int64_t *labels, MG_T *grad, MG_T scale)
{
    double total = 0;
    for (ptrdiff_t i = 0; i < m; i++) {
        const MG_T *zi = z + i * c;
        MG_T *gi = grad + i * c;
        MG_T mx = zi[0];
        int any_nan = 0;
        for (ptrdiff_t j = 1; j < c; j++) mx = zi[j] > mx ? zi[j] : mx;
        for (ptrdiff_t j = 0; j < c; j++) any_nan |= zi[j] != zi[j];
        if (any_nan || mx == (MG_T)INFINITY || mx == -(MG_T)INFINITY) {
            /* non-finite logits: the loss and this row's gradient are NaN
             * (an infinite logit has no finite softmax cross-entropy) */
            for (ptrdiff_t j = 0; j < c; j++) gi[j] = (MG_T)NAN;
            total += NAN;
            continue;
        }
        MG_T s = 0;
#pragma omp simd reduction(+ : s)
        for (ptrdiff_t j = 0; j < c; j++) {
            MG_T e = FN(expneg)(zi[j] - mx);
            gi[j] = e;
            s += e;
        }
        MG_T k = scale / s;
#pragma omp simd
        for (ptrdiff_t j = 0; j < c; j++) gi[j] *= k;
        int64_t y = labels[i];
        gi[y] -= scale;
        total += log((double)s) + (double)mx - (double)zi[y];
    }
    return total;
}

/* PyTorch's SGD: g = grad + wd p; v = momentum v + g; p -= lr v (v unused when
 * momentum is 0). */
static void FN(sgd)(ptrdiff_t n, MG_T *p, const MG_T *g, MG_T *v, MG_T lr,
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

const MG_CAT(mg_ops, MG_IS_F64_NAME) MG_CAT(mg_ops, MG_SFX) = {
    MG_MR, NR, FN(macro), FN(macro_direct), FN(relu), FN(relu_backward), FN(relu_backward_bias),
    FN(sigmoid), FN(sigmoid_backward), FN(add_rows), FN(mnist_loss),
    FN(bce_logits), FN(softmax_ce), FN(sgd),
};

#undef V
#undef UV
#undef VL
#undef NR
#undef FN
#undef MG_CAT
#undef MG_CAT2
