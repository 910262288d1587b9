/* GEMM for one element type: blocking and packing (after Goto and van de
 * Geijn) around the per-ISA macro-kernels of mg_gemm_kernels.h, threaded with
 * OpenMP. Included by mg_driver.c with MG_T, MG_S (f32/f64), MG_KC, MG_MC,
 * MG_NC, FN and OPS defined.
 *
 * Blocks do not depend on the thread count, so every result is bit-identical
 * for any number of threads. */

#ifndef MG_SMALL_ROWS
#define MG_SMALL_ROWS 16  /* at most this many rows of x @ W.T: dot products, no packing */
#define MG_SMALL_COLS 64  /* columns per piece of the few-rows path */
#endif

/* Packs rows [0, mc) x cols [0, kc) of A (strides rs, cs) into slivers of mr
 * rows, each stored column by column and zero-padded to mr rows. */
static void FN(pack_a)(ptrdiff_t mc, ptrdiff_t kc, const MG_T *a, ptrdiff_t rs,
                       ptrdiff_t cs, int mr, MG_T *dst)
{
    for (ptrdiff_t s = 0; s < mc; s += mr) {
        int m = (int)(mc - s < mr ? mc - s : mr);
        const MG_T *src = a + s * rs;
        if (cs == 1) {
            /* blocks of 64 columns keep the strided writes within L1 */
            for (ptrdiff_t p0 = 0; p0 < kc; p0 += 64) {
                ptrdiff_t p1 = p0 + 64 < kc ? p0 + 64 : kc;
                for (int i = 0; i < m; i++)
                    for (ptrdiff_t p = p0; p < p1; p++) dst[p * mr + i] = src[i * rs + p];
            }
        } else {
            for (ptrdiff_t p = 0; p < kc; p++)
                for (int i = 0; i < m; i++) dst[p * mr + i] = src[i * rs + p * cs];
        }
        if (m < mr)
            for (ptrdiff_t p = 0; p < kc; p++)
                for (int i = m; i < mr; i++) dst[p * mr + i] = 0;
        dst += (ptrdiff_t)mr * kc;
    }
}

/* Packs one sliver: rows [0, kc) x cols [0, n) of B into kc rows of nr. */
static void FN(pack_b_sliver)(ptrdiff_t kc, int n, const MG_T *b, ptrdiff_t rs,
                              ptrdiff_t cs, int nr, MG_T *dst)
{
    if (cs == 1) {
        for (ptrdiff_t p = 0; p < kc; p++) {
            memcpy(dst + p * nr, b + p * rs, (size_t)n * sizeof(MG_T));
            for (int j = n; j < nr; j++) dst[p * nr + j] = 0;
        }
    } else {
        /* B transposed: blocks of 16 rows keep the strided writes within L1 */
        for (ptrdiff_t p0 = 0; p0 < kc; p0 += 16) {
            ptrdiff_t p1 = p0 + 16 < kc ? p0 + 16 : kc;
            for (int j = 0; j < n; j++)
                for (ptrdiff_t p = p0; p < p1; p++) dst[p * nr + j] = b[p * rs + j * cs];
        }
        if (n < nr)
            for (ptrdiff_t p = 0; p < kc; p++)
                for (int j = n; j < nr; j++) dst[p * nr + j] = 0;
    }
}

static void FN(bias_relu_only)(ptrdiff_t M, ptrdiff_t N, MG_T *c, ptrdiff_t ldc,
                               int accumulate, const MG_T *bias, int relu)
{
    for (ptrdiff_t i = 0; i < M; i++)
        for (ptrdiff_t j = 0; j < N; j++) {
            MG_T r = accumulate ? c[i * ldc + j] : 0;
            if (bias) r += bias[j];
            if (relu && r <= 0) r = 0;
            c[i * ldc + j] = r;
        }
}

/* C (+)= A B with C's element (i, j) at C[i * rsc + j * csc]. */
static int FN(gemm_run)(const OPS *ops, int threads, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
                        const MG_T *A, ptrdiff_t rsa, ptrdiff_t csa, const MG_T *B,
                        ptrdiff_t rsb, ptrdiff_t csb, MG_T *C, ptrdiff_t rsc, ptrdiff_t csc,
                        int accumulate, const MG_T *bias, int relu)
{
    const int mr = ops->mr, nr = ops->nr;
    /* With few column slivers A is read in place (one of its strides must be
     * 1), and K is blocked only beyond MG_KC_DIRECT, so each C tile is
     * usually loaded and stored once. */
    const int direct = N <= MG_DIRECT_SLIVERS * nr && (rsa == 1 || csa == 1);
    /* Blocks of K and N are balanced (K = 784 with KC = 384 gives 3 x 262,
     * not 384 + 384 + 16); they do not depend on the thread count. */
    const ptrdiff_t kc_cap = direct ? MG_KC_DIRECT : MG_KC;
    const ptrdiff_t kc_parts = (K + kc_cap - 1) / kc_cap;
    const ptrdiff_t kc_block = (K + kc_parts - 1) / kc_parts;
    const ptrdiff_t nc_parts = (N + MG_NC - 1) / MG_NC;
    const ptrdiff_t nc_block = ((N + nc_parts - 1) / nc_parts + nr - 1) / nr * nr;
    const ptrdiff_t nc_max = N < nc_block ? N : nc_block;
    const ptrdiff_t nc_pad = (nc_max + nr - 1) / nr * nr;

    int nt = (double)M * N * K < MG_GEMM_SERIAL_WORK ? 1 : threads;
    ptrdiff_t mc = (M + nt - 1) / nt;
    mc = (mc + mr - 1) / mr * mr;
    if (mc > MG_MC / mr * mr) mc = MG_MC / mr * mr;
    ptrdiff_t mblocks = (M + mc - 1) / mc;
    if (nt > mblocks) nt = (int)mblocks;

    MG_T *bp = mg_alloc((size_t)kc_block * nc_pad * sizeof(MG_T));
    const size_t a_elems = (size_t)kc_block * (direct ? mr : mc);
    MG_T *ap = mg_alloc(nt * a_elems * sizeof(MG_T));
    if (!bp || !ap) {
        free(bp);
        free(ap);
        return -1;
    }

#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        unsigned fp = mg_fp_enter();
        MG_T *my_ap = ap + (size_t)mg_thread_id() * a_elems;
        for (ptrdiff_t jc = 0; jc < N; jc += nc_block) {
            ptrdiff_t nc = N - jc < nc_block ? N - jc : nc_block;
            ptrdiff_t nslivers = (nc + nr - 1) / nr;
            for (ptrdiff_t pc = 0; pc < K; pc += kc_block) {
                ptrdiff_t kc = K - pc < kc_block ? K - pc : kc_block;
                int last = pc + kc == K;
#pragma omp for schedule(static)
                for (ptrdiff_t s = 0; s < nslivers; s++) {
                    ptrdiff_t j = s * nr;
                    int n = (int)(nc - j < nr ? nc - j : nr);
                    const MG_T *b = B + pc * rsb + (jc + j) * csb;
                    if (rsb == 1 && csb != 1) /* B transposed: W of x @ W.T */
                        ops->pack_bt(kc, n, b, csb, bp + j * kc);
                    else
                        FN(pack_b_sliver)(kc, n, b, rsb, csb, nr, bp + j * kc);
                }
#pragma omp for schedule(static)
                for (ptrdiff_t ib = 0; ib < mblocks; ib++) {
                    ptrdiff_t ic = ib * mc;
                    ptrdiff_t m = M - ic < mc ? M - ic : mc;
                    const MG_T *a = A + ic * rsa + pc * csa;
                    int load_c = accumulate || pc > 0;
                    const MG_T *b_j = last && bias ? bias + jc : NULL;
                    MG_T *c = C + ic * rsc + jc * csc;
                    if (direct) {
                        ops->macro_direct(m, nc, kc, a, rsa, csa, my_ap, bp, c, rsc, csc,
                                          load_c, b_j, last && relu);
                    } else {
                        if (csa == 1)
                            ops->pack_a(m, kc, a, rsa, my_ap);
                        else
                            FN(pack_a)(m, kc, a, rsa, csa, mr, my_ap);
                        ops->macro(m, nc, kc, my_ap, bp, c, rsc, csc, load_c, b_j,
                                   last && relu);
                    }
                }
            }
        }
        mg_fp_leave(fp);
    }
    free(bp);
    free(ap);
    return 0;
}

/* Few rows (M <= MG_SMALL_ROWS) of x @ W.T: dot products read in place
 * (ops->small), columns cut into pieces of MG_SMALL_COLS over the threads.
 * Every element is computed the same way whatever the piece, so results do
 * not depend on the thread count. */
static void FN(gemm_small)(const OPS *ops, int threads, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
                           const MG_T *A, ptrdiff_t rsa, const MG_T *B, ptrdiff_t csb, MG_T *C,
                           ptrdiff_t ldc, int accumulate, const MG_T *bias, int relu)
{
    const ptrdiff_t pieces = (N + MG_SMALL_COLS - 1) / MG_SMALL_COLS;
    int nt = (double)M * N * K < MG_GEMM_SERIAL_WORK || pieces < 2 ? 1 : threads;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        unsigned fp = mg_fp_enter();
#pragma omp for schedule(static)
        for (ptrdiff_t s = 0; s < pieces; s++) {
            ptrdiff_t j = s * MG_SMALL_COLS, n = N - j < MG_SMALL_COLS ? N - j : MG_SMALL_COLS;
            ops->small(M, n, K, A, rsa, B + j * csb, csb, C + j, ldc, 1, accumulate,
                       bias ? bias + j : NULL, relu);
        }
        mg_fp_leave(fp);
    }
}

int FN(mg_gemm)(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const MG_T *A, ptrdiff_t rsa,
                ptrdiff_t csa, const MG_T *B, ptrdiff_t rsb, ptrdiff_t csb, MG_T *C,
                ptrdiff_t ldc, int accumulate, const MG_T *bias, int relu)
{
    if (M == 0 || N == 0) return 0;
    if (K == 0) {
        unsigned fp = mg_fp_enter();
        FN(bias_relu_only)(M, N, C, ldc, accumulate, bias, relu);
        mg_fp_leave(fp);
        return 0;
    }
    const OPS *ops = FN(ops)();
    const ptrdiff_t few = (ptrdiff_t)MG_DIRECT_SLIVERS * ops->nr;
    int threads = mg_enter(mg_get_num_threads()), rc = 0;
    /* Few rows and many columns (a weight gradient dy.T @ x): compute
     * C.T = B.T A.T instead, so the big operand is read in place and C is
     * written through its transpose -- when K >= M, i.e. when packing B
     * (K x N) would cost more than storing C (M x N) element by element
     * (dy @ W at batch 64, hidden 30: 37 -> 30 us unswapped). */
    if (M <= MG_SMALL_ROWS && csa == 1 && rsb == 1)
        FN(gemm_small)(ops, threads, M, N, K, A, rsa, B, csb, C, ldc, accumulate, bias, relu);
    else if (M <= MG_SWAP_SLIVERS * ops->nr && N > few && K >= M && !bias && !relu &&
             (rsb == 1 || csb == 1))
        rc = FN(gemm_run)(ops, threads, N, M, K, B, csb, rsb, A, csa, rsa, C, 1, ldc,
                          accumulate, NULL, 0);
    else
        rc = FN(gemm_run)(ops, threads, M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, 1,
                          accumulate, bias, relu);
    mg_leave();
    return rc;
}
