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

