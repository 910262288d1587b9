/* GEMM macro- and micro-kernels for one element type and one instruction set
 * (included by mg_isa_tmpl.h, which defines V, VL, NR, FN and the MG_* tile
 * parameters). Packing and blocking are in mg_gemm.h. */

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

/* C[m x n] (+)= A_sliver (R x kc) * B_sliver (kc x NR, packed), then
 * + bias and ReLU when asked (only on the last k-block); m <= R <= MG_MR,
 * R a constant where it is inlined. Element (i, p) of the A sliver is
 * a[i * rsa + p * csa]: (1, MG_MR) when packed, or the strides of the
 * caller's matrix when A is read in place. */
static inline __attribute__((always_inline)) void FN(ukernel_rows)(
    const int R, ptrdiff_t kc, const MG_T *restrict a, ptrdiff_t rsa, ptrdiff_t csa,
    const MG_T *restrict b, MG_T *restrict c, ptrdiff_t rsc, ptrdiff_t csc, int m,
    int n, int load_c, const MG_T *restrict bias, int relu)
{
    V acc[MG_MR][MG_NV];
#pragma GCC unroll 32
    for (int i = 0; i < R; i++)
#pragma GCC unroll 8
        for (int j = 0; j < MG_NV; j++) acc[i][j] = (V){0};

    /* Rows 3q..3q+2 read from base q at 0, rsa, 2 rsa: with A in place (rsa a
     * run-time stride) GCC kept 12 row offsets and spilled its loop state
     * (direct macro-kernel, standalone: 1.01-1.04x with the bases). */
    const MG_T *ab[(MG_MR + 2) / 3];
#pragma GCC unroll 8
    for (int q = 0; q < (R + 2) / 3; q++) ab[q] = a + 3 * q * rsa;
    for (ptrdiff_t p = 0; p < kc; p++) {
        V bv[MG_NV];
#pragma GCC unroll 8
        for (int j = 0; j < MG_NV; j++) bv[j] = FN(loadv)(b + j * VL);
#pragma GCC unroll 32
        for (int i = 0; i < R; i++) {
            V ai = FN(splat)(ab[i / 3][(i % 3) * rsa]);
#pragma GCC unroll 8
            for (int j = 0; j < MG_NV; j++) acc[i][j] += ai * bv[j];
        }
#pragma GCC unroll 8
        for (int q = 0; q < (R + 2) / 3; q++) ab[q] += csa;
        b += NR;
    }

    if (n == NR && csc == 1) {
#pragma GCC unroll 32
        for (int i = 0; i < R; i++)
            if (i < m)
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
    for (int i = 0; i < R; i++)
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

/* The micro-kernel for m <= MG_MR rows: a last sliver of at most 4 or 8 rows
 * runs a kernel of that many (64 rows are 5 x 12 + 4: without it a batch of 64
 * computed 72). Each element sums the same products in the same order
 * whichever kernel runs, so results do not depend on it. */
static inline __attribute__((always_inline)) void FN(ukernel)(
    ptrdiff_t kc, const MG_T *restrict a, ptrdiff_t rsa, ptrdiff_t csa,
    const MG_T *restrict b, MG_T *restrict c, ptrdiff_t rsc, ptrdiff_t csc, int m,
    int n, int load_c, const MG_T *restrict bias, int relu)
{
#if MG_MR > 8
    if (m <= 4) {
        FN(ukernel_rows)(4, kc, a, rsa, csa, b, c, rsc, csc, m, n, load_c, bias, relu);
        return;
    }
    if (m <= 8) {
        FN(ukernel_rows)(8, kc, a, rsa, csa, b, c, rsc, csc, m, n, load_c, bias, relu);
        return;
    }
#endif
    FN(ukernel_rows)(MG_MR, kc, a, rsa, csa, b, c, rsc, csc, m, n, load_c, bias, relu);
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


/* ---- few rows: dot products along k, nothing packed ---- */

typedef MG_T FN(x16) __attribute__((vector_size(16)));

/* The sum of v's lanes in a fixed order: 16-byte quarters first. */
static inline MG_T FN(hsum)(V v)
{
    FN(x16) q[MG_VB / 16];
    memcpy(q, &v, sizeof v);
#if MG_VB == 64
    FN(x16) s = (q[0] + q[2]) + (q[1] + q[3]);
#elif MG_VB == 32
    FN(x16) s = q[0] + q[1];
#else
    FN(x16) s = q[0];
#endif
#if MG_IS_F64
    return s[0] + s[1];
#else
    return (s[0] + s[2]) + (s[1] + s[3]);
#endif
}

/* One tile of R x C dot products of length k (R, C are constants where it
 * is inlined): rows i0.. of A, columns j0.. of B. A tile past the last row or
 * column repeats the last one and stores nothing for it, so the loop body
 * has no edge cases. */
static inline __attribute__((always_inline)) void FN(small_tile)(
    const int R, const int C, ptrdiff_t i0, ptrdiff_t j0, ptrdiff_t m, ptrdiff_t n,
    ptrdiff_t k, const MG_T *a, ptrdiff_t rsa, const MG_T *b, ptrdiff_t csb, MG_T *c,
    ptrdiff_t rsc, ptrdiff_t csc, int load_c, const MG_T *bias, int relu)
{
    const ptrdiff_t kv = k / VL * VL;
    const MG_T *ar[4], *bc[12];
    V acc[4][12];
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) ar[i] = a + (i0 + i < m ? i0 + i : m - 1) * rsa;
#pragma GCC unroll 12
    for (int j = 0; j < C; j++) bc[j] = b + (j0 + j < n ? j0 + j : n - 1) * csb;
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
#pragma GCC unroll 12
        for (int j = 0; j < C; j++) acc[i][j] = (V){0};
    for (ptrdiff_t p = 0; p < kv; p += VL) {
        V av[4], bv[12];
        /* Tiles of several rows stream B's columns from L2 at a fraction of
         * its bandwidth without help: 4 of 16 rows 10.1 -> 9.0 us (784 x 30,
         * Intel Xeon). One row is faster without (0.99 -> 1.05 us with). */
        if (R > 1)
#pragma GCC unroll 12
            for (int j = 0; j < C; j++) __builtin_prefetch(bc[j] + p + 64);
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) av[i] = FN(loadv)(ar[i] + p);
#pragma GCC unroll 12
        for (int j = 0; j < C; j++) bv[j] = FN(loadv)(bc[j] + p);
#pragma GCC unroll 4
        for (int i = 0; i < R; i++)
#pragma GCC unroll 12
            for (int j = 0; j < C; j++) acc[i][j] += av[i] * bv[j];
    }
    for (int i = 0; i < R && i0 + i < m; i++)
        for (int j = 0; j < C && j0 + j < n; j++) {
            MG_T r = FN(hsum)(acc[i][j]);
            for (ptrdiff_t p = kv; p < k; p++) r += ar[i][p] * bc[j][p];
            MG_T *cp = c + (i0 + i) * rsc + (j0 + j) * csc;
            if (load_c) r += *cp;
            if (bias) r += bias[j0 + j];
            if (relu && r <= 0) r = 0;
            *cp = r;
        }
}

/* Tiles of the few-rows kernel: 4 x 4 or 1 x 8 dot products with 32 vector
 * registers, 2 x 4 or 1 x 6 with 16. */
#if MG_MR >= 12
#define MG_SR 4
#define MG_SC 4
#define MG_SC1 8
#else
#define MG_SR 2
#define MG_SC 4
#define MG_SC1 6
#endif

/* C[m x n] (+)= A B for few rows, with A's rows contiguous (element (i, p)
 * at a[i * rsa + p]) and B's columns contiguous (element (p, j) at
 * b[j * csb + p]): the forward x @ W.T of a layer whose weight W is stored
 * (out, in) row-major, read in place. A last single row gets tiles of its
 * own, so a batch of one does no wasted work. */
static void FN(small)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const MG_T *a, ptrdiff_t rsa,
                      const MG_T *b, ptrdiff_t csb, MG_T *c, ptrdiff_t rsc, ptrdiff_t csc,
                      int load_c, const MG_T *bias, int relu)
{
    ptrdiff_t i0 = 0;
    for (; i0 + 1 < m; i0 += MG_SR)
        for (ptrdiff_t j0 = 0; j0 < n; j0 += MG_SC)
            FN(small_tile)(MG_SR, MG_SC, i0, j0, m, n, k, a, rsa, b, csb, c, rsc, csc, load_c,
                           bias, relu);
    if (i0 < m)
        for (ptrdiff_t j0 = 0; j0 < n; j0 += MG_SC1)
            FN(small_tile)(1, MG_SC1, i0, j0, m, n, k, a, rsa, b, csb, c, rsc, csc, load_c,
                           bias, relu);
}
#undef MG_SR
#undef MG_SC
#undef MG_SC1

/* ---- packing in registers (512-bit vectors) ---- */

#if MG_VB == 64
/* Transposes the VL x VL block r in registers: log2(VL) stages, each
 * swapping the off-diagonal h x h blocks of every 2h x 2h block with
 * two-source shuffles. The shuffle indices are written out as constants:
 * computed in a loop, GCC built them at run time with masked broadcasts
 * (Intel Xeon, one core: pack_bt of a 128 x 784 weight 30.7 -> 11.5 us,
 * pack_a of 264 x 256 floats 23.7 -> 8.0 us). */
#define MG_TR_LO(c, h) (((c) & (h)) ? VL + (c) - (h) : (c))
#define MG_TR_HI(c, h) (((c) & (h)) ? VL + (c) : (c) + (h))
#if MG_IS_F64
#define MG_TR_IDX(F, h) ((UV){F(0, h), F(1, h), F(2, h), F(3, h), F(4, h), F(5, h), F(6, h), F(7, h)})
#else
#define MG_TR_IDX(F, h)                                                                    \
    ((UV){F(0, h), F(1, h), F(2, h), F(3, h), F(4, h), F(5, h), F(6, h), F(7, h), F(8, h), \
          F(9, h), F(10, h), F(11, h), F(12, h), F(13, h), F(14, h), F(15, h)})
#endif
static inline __attribute__((always_inline)) void FN(transpose_stage)(V r[VL], int h, UV lo,
                                                                      UV hi)
{
#pragma GCC unroll 16
    for (int i = 0; i < VL; i++)
        if (!(i & h)) {
            V a = r[i], q = r[i + h];
            r[i] = __builtin_shuffle(a, q, lo);
            r[i + h] = __builtin_shuffle(a, q, hi);
        }
}

static inline __attribute__((always_inline)) void FN(transpose)(V r[VL])
{
#if !MG_IS_F64
    FN(transpose_stage)(r, 8, MG_TR_IDX(MG_TR_LO, 8), MG_TR_IDX(MG_TR_HI, 8));
#endif
    FN(transpose_stage)(r, 4, MG_TR_IDX(MG_TR_LO, 4), MG_TR_IDX(MG_TR_HI, 4));
    FN(transpose_stage)(r, 2, MG_TR_IDX(MG_TR_LO, 2), MG_TR_IDX(MG_TR_HI, 2));
    FN(transpose_stage)(r, 1, MG_TR_IDX(MG_TR_LO, 1), MG_TR_IDX(MG_TR_HI, 1));
}
#undef MG_TR_LO
#undef MG_TR_HI
#undef MG_TR_IDX
#endif

/* Packs rows [0, mc) x cols [0, kc) of A, rows contiguous (element (i, p)
 * at a[i * rs + p]), into slivers of MG_MR rows stored column by column and
 * zero-padded to MG_MR rows. With 512-bit vectors, blocks of MG_MR rows x VL
 * columns are transposed in registers; column p's MG_MR values are then
 * stored as one vector whose spare lanes the next column's store overwrites
 * (the last column of a sliver is stored lane by lane). */
static void FN(pack_a)(ptrdiff_t mc, ptrdiff_t kc, const MG_T *a, ptrdiff_t rs, MG_T *dst)
{
    for (ptrdiff_t s = 0; s < mc; s += MG_MR) {
        int m = (int)(mc - s < MG_MR ? mc - s : MG_MR);
        const MG_T *src = a + s * rs;
        ptrdiff_t p0 = 0;
#if MG_VB == 64 && MG_MR * (4 + 4 * MG_IS_F64) <= MG_VB /* MG_MR <= VL */
        for (; p0 + VL < kc; p0 += VL) {
            V r[VL];
#pragma GCC unroll 16
            for (int i = 0; i < VL; i++) r[i] = i < m ? FN(loadv)(src + i * rs + p0) : (V){0};
            FN(transpose)(r);
#pragma GCC unroll 16
            for (int p = 0; p < VL; p++) FN(storev)(dst + (p0 + p) * MG_MR, r[p]);
        }
#endif
        for (ptrdiff_t p = p0; p < kc; p++)
            for (int i = 0; i < MG_MR; i++) dst[p * MG_MR + i] = i < m ? src[i * rs + p] : 0;
        dst += (ptrdiff_t)MG_MR * kc;
    }
}

/* ---- packing B stored transposed (x @ W.T with W (out, in) row-major) ---- */

/* Packs one sliver of B whose element (p, j) is b[p + j * cs] (columns
 * contiguous) into dst[p * NR + j], p < kc, columns n..NR zero. With
 * 512-bit vectors, VL x VL blocks are transposed in registers: one vector
 * store per VL elements instead of VL scalar ones. */
static void FN(pack_bt)(ptrdiff_t kc, int n, const MG_T *b, ptrdiff_t cs, MG_T *dst)
{
    ptrdiff_t p0 = 0;
#if MG_VB == 64
    for (; p0 + VL <= kc; p0 += VL)
        for (int j0 = 0; j0 < NR; j0 += VL) {
            V r[VL];
            if (n == NR) {
#pragma GCC unroll 16
                for (int i = 0; i < VL; i++) r[i] = FN(loadv)(b + p0 + (j0 + i) * cs);
            } else {
                for (int i = 0; i < VL; i++)
                    r[i] = j0 + i < n ? FN(loadv)(b + p0 + (j0 + i) * cs) : (V){0};
            }
            FN(transpose)(r);
#pragma GCC unroll 16
            for (int i = 0; i < VL; i++) FN(storev)(dst + (p0 + i) * NR + j0, r[i]);
        }
#endif
    for (ptrdiff_t p = p0; p < kc; p++)
        for (int j = 0; j < NR; j++) dst[p * NR + j] = j < n ? b[p + j * cs] : (MG_T)0;
}

/* ---- uint8 operands converted while packing ---- */

#if (defined(__x86_64__) || defined(__i386__)) && MG_VB >= 32 /* immintrin.h: mg_isa.c */
#define MG_U8_X86 1
#else
#define MG_U8_X86 0
typedef uint8_t FN(u8v) __attribute__((vector_size(VL)));
#endif

/* VL bytes as MG_T, divided by s: a true division (divide), or q = u * r
 * corrected once by its residual, which mg_gemm.h uses only after checking
 * that it equals the division for all 256 byte values. (GCC's vector
 * conversions widen bytes lane by lane: intrinsics on x86.) */
static inline V FN(u8_vec)(const uint8_t *src, V s, V r, int divide)
{
    V u;
#if MG_U8_X86 && MG_VB == 64 && !MG_IS_F64
    __m512 f = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)src)));
#elif MG_U8_X86 && MG_VB == 64
    __m512d f = _mm512_cvtepi32_pd(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)src)));
#elif MG_U8_X86 && !MG_IS_F64
    __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)src)));
#elif MG_U8_X86
    int32_t w;
    memcpy(&w, src, sizeof w);
    __m256d f = _mm256_cvtepi32_pd(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(w)));
#else
    FN(u8v) f0;
    memcpy(&f0, src, sizeof f0);
    V f = __builtin_convertvector(f0, V);
#endif
    memcpy(&u, &f, sizeof u);
    if (divide) return u / s;
    V q = u * r;
    V e = u - q * s;
    return q + e * r;
}

/* dst[i * ds + j] = src[i * rs + j] / s for i < rows, j < n: rows of bytes
 * converted to MG_T, every element by the same vector code. A row's last
 * partial vector is read and stored whole when that stays within the next
 * row, which overwrites the spare lanes (short rows: a transposed operand's
 * slivers); the last row's goes through a padded copy. */
static void FN(u8_rows)(ptrdiff_t rows, ptrdiff_t n, const uint8_t *src, ptrdiff_t rs,
                        MG_T *dst, ptrdiff_t ds, MG_T s, MG_T r, int divide)
{
    const V sv = FN(splat)(s), rv = FN(splat)(r);
    const ptrdiff_t nv = n / VL * VL;
    const int spill = nv < n && rs >= nv + VL && nv + VL <= ds + n;
    for (ptrdiff_t i = 0; i < rows; i++) {
        const uint8_t *si = src + i * rs;
        MG_T *di = dst + i * ds;
        for (ptrdiff_t j = 0; j < nv; j += VL) FN(storev)(di + j, FN(u8_vec)(si + j, sv, rv, divide));
        if (nv < n && spill && i + 1 < rows) {
            FN(storev)(di + nv, FN(u8_vec)(si + nv, sv, rv, divide));
        } else if (nv < n) {
            uint8_t tail[VL];
            MG_T out[VL];
            memset(tail, 0, sizeof tail);
            memcpy(tail, si + nv, (size_t)(n - nv));
            FN(storev)(out, FN(u8_vec)(tail, sv, rv, divide));
            memcpy(di + nv, out, (size_t)(n - nv) * sizeof(MG_T));
        }
    }
}
#undef MG_U8_X86

/* ---- a classifier's last layer: its logits and its input gradient ----
 * Each element sums its products in order from zero (then adds the bias),
 * as the micro-kernel does within one K block, so both equal mg_gemm's
 * results bit for bit wherever mg_gemm runs its micro-kernel in one K block
 * (mg_linear_cross_entropy checks that). */

/* z[m x c] = x w^T + bias for R rows (a constant where inlined): x's rows rs
 * apart, read in place; wt the weight packed as B of x @ W.T (pack_bt):
 * slivers of NR columns, k rows each, zeros past c. */
static inline __attribute__((always_inline)) void FN(head_logits_rows)(
    const int R, int m, ptrdiff_t k, ptrdiff_t c, const MG_T *x, ptrdiff_t rs,
    const MG_T *wt, const MG_T *bias, MG_T *z)
{
    for (ptrdiff_t j0 = 0; j0 < c; j0 += VL) {
        const MG_T *wj = wt + j0 / NR * k * NR + j0 % NR;
        V acc[8];
#pragma GCC unroll 8
        for (int i = 0; i < R; i++) acc[i] = (V){0};
        for (ptrdiff_t p = 0; p < k; p++) {
            V wv = FN(loadv)(wj + p * NR);
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) acc[i] += FN(splat)(x[i * rs + p]) * wv;
        }
        MG_T tile[8 * VL];
#pragma GCC unroll 8
        for (int i = 0; i < R; i++) FN(storev)(tile + i * VL, acc[i]);
        const int n = (int)(c - j0 < VL ? c - j0 : VL);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                MG_T r = tile[i * VL + j];
                if (bias) r += bias[j0 + j];
                z[i * c + j0 + j] = r;
            }
    }
}

static void FN(head_logits)(ptrdiff_t m, ptrdiff_t k, ptrdiff_t c, const MG_T *x, ptrdiff_t rs,
                            const MG_T *wt, const MG_T *bias, MG_T *z)
{
    ptrdiff_t i = 0;
    for (; i + 8 <= m; i += 8)
        FN(head_logits_rows)(8, 8, k, c, x + i * rs, rs, wt, bias, z + i * c);
    for (; i < m; i++)
        FN(head_logits_rows)(1, 1, k, c, x + i * rs, rs, wt, bias, z + i * c);
}

/* Input-gradient row tiles: R rows x 4 vectors, 16 + 4 registers with 32. */
#if MG_MR >= 12
#define MG_HR 4
#else
#define MG_HR 2
#endif

/* dx[m x k] = dz[m x c] w (then dx = x > 0 ? dx : 0 where relu, as
 * relu_backward) for R rows, in column groups of 4 vectors: w (c x k,
 * row-major) read in place for whole groups; for a last partial group,
 * wtail, its c rows of 4 VL columns (zeros past k). x and dx rows k apart. */
static inline __attribute__((always_inline)) void FN(head_input_grad_rows)(
    const int R, int m, ptrdiff_t k, ptrdiff_t c, const MG_T *dz, const MG_T *w,
    const MG_T *wtail, const MG_T *x, int relu, MG_T *dx)
{
    const V zero = {0};
    for (ptrdiff_t q0 = 0; q0 < k; q0 += 4 * VL) {
        const int whole = q0 + 4 * VL <= k;
        const MG_T *wq = whole ? w + q0 : wtail;
        const ptrdiff_t ws = whole ? k : 4 * VL;
        V acc[MG_HR][4];
#pragma GCC unroll 4
        for (int i = 0; i < R; i++)
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) acc[i][v] = zero;
        for (ptrdiff_t j = 0; j < c; j++) {
            V wv[4];
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) wv[v] = FN(loadv)(wq + j * ws + v * VL);
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                V d = FN(splat)(dz[i * c + j]);
#pragma GCC unroll 4
                for (int v = 0; v < 4; v++) acc[i][v] += d * wv[v];
            }
        }
        if (whole) {
            for (int i = 0; i < m; i++)
#pragma GCC unroll 4
                for (int v = 0; v < 4; v++) {
                    V r = acc[i][v];
                    if (relu) r = (V)((UV)r & (UV)(FN(loadv)(x + i * k + q0 + v * VL) > zero));
                    FN(storev)(dx + i * k + q0 + v * VL, r);
                }
            continue;
        }
        MG_T tile[MG_HR * 4 * VL];
        for (int i = 0; i < R; i++)
            for (int v = 0; v < 4; v++) FN(storev)(tile + (i * 4 + v) * VL, acc[i][v]);
        for (int i = 0; i < m; i++)
            for (ptrdiff_t q = q0; q < k; q++) {
                MG_T r = tile[i * 4 * VL + (q - q0)];
                dx[i * k + q] = relu && !(x[i * k + q] > 0) ? (MG_T)0 : r;
            }
    }
}

static void FN(head_input_grad)(ptrdiff_t m, ptrdiff_t k, ptrdiff_t c, const MG_T *dz,
                                const MG_T *w, const MG_T *wtail, const MG_T *x, int relu,
                                MG_T *dx)
{
    ptrdiff_t i = 0;
    for (; i + MG_HR <= m; i += MG_HR)
        FN(head_input_grad_rows)(MG_HR, MG_HR, k, c, dz + i * c, w, wtail,
                                 x ? x + i * k : NULL, relu, dx + i * k);
    for (; i < m; i++)
        FN(head_input_grad_rows)(1, 1, k, c, dz + i * c, w, wtail, x ? x + i * k : NULL,
                                 relu, dx + i * k);
}
#undef MG_HR
