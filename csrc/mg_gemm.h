/* GEMM for one element type: blocking and packing (after Goto and van de
 * Geijn) around the per-ISA macro-kernels of mg_gemm_kernels.h, threaded with
 * OpenMP. Included by mg_driver.c with MG_T, MG_S (f32/f64), MG_KC, MG_MC,
 * MG_NC (the blocking where CPUID tells nothing), FN and OPS defined.
 *
 * Blocks do not depend on the thread count, so every result is bit-identical
 * for any number of threads. */

#ifndef MG_GEMM_ONCE
#define MG_GEMM_ONCE
#include <pthread.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#define MG_SMALL_ROWS 16  /* at most this many rows of x @ W.T: dot products, no packing */
#define MG_SMALL_COLS 64  /* columns per piece of the few-rows path */
#define MG_HEAD_CLASSES 64 /* mg_linear_cross_entropy's own kernels: at most this many classes */
#define MG_HEAD_BYTES (1 << 20) /* ... and a packed weight of at most this size */

/* The roads of mg_gemm (gemm_any): dot products for few rows, the packed
 * GEMM (gemm_run), or the packed GEMM on C.T = B.T A.T. */
enum { MG_ROAD_RUN, MG_ROAD_SMALL, MG_ROAD_SWAP };

/* ---- packing buffers that persist per calling thread ----
 * Allocating them on every call made glibc hand them back to the kernel on
 * free (an mmapped chunk, or the heap's top beyond the trim threshold,
 * depending on the process's allocation history), so the next call
 * page-faulted ~140 fresh zeroed pages: dz.T @ x at batch 256 (128x256x784)
 * took 460-570 us instead of 345. A thread's arena only grows, to at most
 * the largest packed panels the blocking allows (~2 MiB; nt copies of a
 * narrow B panel with priv_b), and is freed when the thread exits. */
typedef struct {
    void *p;
    size_t cap;
} mg_arena;

static pthread_key_t mg_arena_key;
static pthread_once_t mg_arena_once = PTHREAD_ONCE_INIT;
static int mg_arena_ok;

static void mg_arena_free(void *v)
{
    mg_arena *ar = v;
    free(ar->p);
    free(ar);
}

static void mg_arena_init(void) { mg_arena_ok = pthread_key_create(&mg_arena_key, mg_arena_free) == 0; }

/* This thread's buffer of at least `bytes`, 64-byte aligned, or NULL. */
static void *mg_arena_get(size_t bytes)
{
    pthread_once(&mg_arena_once, mg_arena_init);
    if (!mg_arena_ok) return NULL;
    mg_arena *ar = pthread_getspecific(mg_arena_key);
    if (!ar) {
        ar = calloc(1, sizeof *ar);
        if (!ar || pthread_setspecific(mg_arena_key, ar) != 0) {
            free(ar);
            return NULL;
        }
    }
    if (ar->cap < bytes) {
        free(ar->p);
        size_t cap = (bytes + 4095) / 4096 * 4096;
        ar->p = mg_alloc(cap);
        ar->cap = ar->p ? cap : 0;
    }
    return ar->p;
}

/* ---- blocking from the caches (CPUID) ---- */

typedef struct {
    int vendor;           /* 1 Intel, 2 AMD, 0 other */
    int family;           /* display family (Zen 4: 0x19) */
    long l1d, l2, l3;     /* bytes per core (L3: the whole cache); 0 if unknown */
} mg_cpu_info;

/* Data/unified cache sizes from CPUID leaf 4 (Intel) or 0x8000001D (AMD),
 * falling back to AMD's legacy leaves 0x80000005/6. */
static mg_cpu_info mg_cpu_probe(void)
{
    mg_cpu_info c = {0, 0, 0, 0, 0};
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, cx, d;
    if (!__get_cpuid(0, &a, &b, &cx, &d)) return c;
    c.vendor = (b == 0x756e6547 && d == 0x49656e69 && cx == 0x6c65746e) ? 1   /* GenuineIntel */
             : (b == 0x68747541 && d == 0x69746e65 && cx == 0x444d4163) ? 2 /* AuthenticAMD */
             : 0;
    unsigned maxleaf = a;
    if (__get_cpuid(1, &a, &b, &cx, &d)) {
        int fam = (a >> 8) & 0xf;
        c.family = fam == 0xf ? fam + (int)((a >> 20) & 0xff) : fam;
    }
    unsigned leaf = 0;
    if (c.vendor == 1 && maxleaf >= 4)
        leaf = 4;
    else if (c.vendor == 2 && __get_cpuid(0x80000001, &a, &b, &cx, &d) && (cx & (1u << 22)))
        leaf = 0x8000001D; /* topology extensions */
    if (leaf) {
        for (unsigned i = 0; i < 16; i++) {
            __cpuid_count(leaf, i, a, b, cx, d);
            unsigned type = a & 0x1f, level = (a >> 5) & 7;
            if (type == 0) break;
            if (type == 2) continue; /* instruction cache */
            long size = (long)((b >> 22) + 1) * (((b >> 12) & 0x3ff) + 1) * ((b & 0xfff) + 1) *
                        ((long)cx + 1);
            if (level == 1) c.l1d = size;
            if (level == 2) c.l2 = size;
            if (level == 3) c.l3 = size;
        }
    } else if (c.vendor == 2 && __get_cpuid(0x80000006, &a, &b, &cx, &d)) {
        c.l2 = (long)(cx >> 16) << 10;
        c.l3 = (long)(d >> 18) << 19;
        if (__get_cpuid(0x80000005, &a, &b, &cx, &d)) c.l1d = (long)(cx >> 24) << 10;
    }
#endif
    return c;
}

static mg_cpu_info mg_cpu;
static pthread_once_t mg_cpu_once = PTHREAD_ONCE_INIT;
static void mg_cpu_init(void) { mg_cpu = mg_cpu_probe(); }

static const mg_cpu_info *mg_cpu_get(void)
{
    pthread_once(&mg_cpu_once, mg_cpu_init);
    return &mg_cpu;
}

/* The C.T = B.T A.T choice of mg_gemm: 0 by CPU, 1 where it applies, -1 never
 * (mg_gemm_set_swap; for tests). */
static int mg_gemm_swap;

void mg_gemm_set_swap(int mode)
{
    __atomic_store_n(&mg_gemm_swap, mode > 0 ? 1 : mode < 0 ? -1 : 0, __ATOMIC_RELAXED);
}

/* The cache blocking in elements: kc (depth of a packed panel), mc (rows of
 * a packed A block) and nc (columns of a packed B panel). */
typedef struct {
    int mc, kc, nc;
} mg_blocking;
#endif /* MG_GEMM_ONCE */

/* Blocking forced by _kernels._set_gemm_blocking (0: chosen from CPUID). */
static int FN(gemm_force)[3];

/* The blocking for micro-tiles of mr x nr on this CPU. The macro-kernel
 * keeps one A sliver (mr x kc) in L1d while the packed B panel (kc x nc)
 * streams from L2, B sliver by B sliver; the A block (mc x kc) waits in L2.
 * Each size is a fraction of the cache it must live in (CPUID leaf 4 on
 * Intel, 0x8000001D on AMD), so other cache sizes scale with it:
 *                          A sliver / L1d   B panel / L2   A block / L2
 *   AMD (Zen 4 tuned)          9/16             9/8           27/128
 *   Intel and others           1/4              1/2           1/7
 * Zen 4 (32 KiB L1d, 1 MiB L2, double-pumped AVX-512: one 512-bit FMA a
 * cycle) gets kc 384, nc 768, mc 144 with 12 x 32 float tiles: the sizes
 * benchmarked best there. An Intel core with two 512-bit FMA units (48 KiB
 * L1d, 2 MiB L2) gets kc 256, nc 1024, mc 288: measured 1-4% faster than
 * Zen 4's sizes on squares 512-2048 (kc 512 was 9-12% slower: at two FMAs a
 * cycle a larger A sliver and the B slivers streaming past it no longer
 * share L1). Without cache sizes (not x86), MG_KC/MG_MC/MG_NC.
 * csrc/README.md, "GEMM blocking", has the figures. */
static mg_blocking FN(gemm_blocking)(int mr, int nr)
{
    mg_blocking b = {MG_MC, MG_KC, MG_NC};
    const mg_cpu_info *c = mg_cpu_get();
    const long sz = (long)sizeof(MG_T);
    if (c->l1d > 0 && c->l2 > 0) {
        const int amd = c->vendor == 2;
        long kc = (amd ? c->l1d * 9 / 16 : c->l1d / 4) / (mr * sz) / 32 * 32;
        kc = kc < 64 ? 64 : kc > 1024 ? 1024 : kc;
        long nc = (amd ? c->l2 * 9 / 8 : c->l2 / 2) / (kc * sz) / nr * nr;
        long mc = (amd ? c->l2 * 27 / 128 : c->l2 / 7) / (kc * sz) / mr * mr;
        b.kc = (int)kc;
        b.nc = (int)(nc < 4 * nr ? 4 * nr : nc > 8192 ? 8192 : nc);
        b.mc = (int)(mc < 2 * mr ? 2 * mr : mc > 1024 ? 1024 : mc);
    }
    int mc = __atomic_load_n(&FN(gemm_force)[0], __ATOMIC_RELAXED);
    int kc = __atomic_load_n(&FN(gemm_force)[1], __ATOMIC_RELAXED);
    int nc = __atomic_load_n(&FN(gemm_force)[2], __ATOMIC_RELAXED);
    if (mc > 0) b.mc = mc;
    if (kc > 0) b.kc = kc;
    if (nc > 0) b.nc = nc;
    return b;
}

/* Blocking of this type on the active ISA (forced values included) into
 * out[0..2] = mc, kc, nc; returns 0. */
int FN(mg_gemm_get_blocking)(int *out)
{
    const OPS *ops = FN(ops)();
    mg_blocking b = FN(gemm_blocking)(ops->mr, ops->nr);
    out[0] = b.mc;
    out[1] = b.kc;
    out[2] = b.nc;
    return 0;
}

/* Forces mc, kc, nc (a value <= 0 restores the CPUID choice for it). */
void FN(mg_gemm_set_blocking)(int mc, int kc, int nc)
{
    __atomic_store_n(&FN(gemm_force)[0], mc > 0 ? mc : 0, __ATOMIC_RELAXED);
    __atomic_store_n(&FN(gemm_force)[1], kc > 0 ? kc : 0, __ATOMIC_RELAXED);
    __atomic_store_n(&FN(gemm_force)[2], nc > 0 ? nc : 0, __ATOMIC_RELAXED);
}

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

/* Rows of a full sliver of width W: a copy of fixed size, inlined rather than
 * a libc call a row (1-5% on the chapter's products with 32-column slivers). */
#define MG_COPY_ROWS(W) \
    for (ptrdiff_t p = 0; p < kc; p++) memcpy(dst + p * (W), b + p * rs, (W) * sizeof(MG_T))

/* Packs one sliver: rows [0, kc) x cols [0, n) of B into kc rows of nr. */
static void FN(pack_b_sliver)(ptrdiff_t kc, int n, const MG_T *b, ptrdiff_t rs,
                              ptrdiff_t cs, int nr, MG_T *dst)
{
    if (cs == 1 && n == nr && nr == 32) {
        MG_COPY_ROWS(32);
    } else if (cs == 1 && n == nr && nr == 16) {
        MG_COPY_ROWS(16);
    } else if (cs == 1) {
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
#undef MG_COPY_ROWS

/* ---- uint8 operands, converted to MG_T (byte / s) while packing ----
 * Only the packing differs from a MG_T operand: the converted values go
 * through the same packing, macro-kernels and blocking, so the product equals
 * the one of the MG_T array bytes / s bit for bit. */
typedef struct {
    const uint8_t *p; /* NULL: the operand is MG_T */
    MG_T s, r;        /* divisor and its reciprocal */
    int divide;       /* 1: convert by true division (see u8_check) */
} FN(u8op);

/* Whether ops->u8_rows must divide to give (MG_T)u / s for every byte u:
 * its faster reciprocal-and-residual form is checked against the division
 * (once per scale, ISA and thread) on all 256 values through each of its
 * code paths: whole vectors (one row of 256), rows of 9 whose last partial
 * vector is read whole (a stride of 32), and rows of 1 (padded copies). */
static int FN(u8_check)(const OPS *ops, MG_T s, MG_T r)
{
    static _Thread_local const OPS *last_ops;
    static _Thread_local MG_T last_s;
    static _Thread_local int last_divide;
    if (last_ops == ops && last_s == s) return last_divide;
    uint8_t u[256], u32[29 * 32] = {0};
    MG_T q[288];
    int divide = 0;
    for (int i = 0; i < 256; i++) {
        u[i] = (uint8_t)i;
        u32[i / 9 * 32 + i % 9] = (uint8_t)i;
    }
    unsigned fp = mg_fp_enter();
    ops->u8_rows(1, 256, u, 256, q, 256, s, r, 0);
    for (int i = 0; i < 256; i++) divide |= q[i] != (MG_T)i / s;
    ops->u8_rows(29, 9, u32, 32, q, 9, s, r, 0);
    for (int i = 0; i < 256; i++) divide |= q[i] != (MG_T)i / s;
    ops->u8_rows(256, 1, u, 1, q, 1, s, r, 0);
    for (int i = 0; i < 256; i++) divide |= q[i] != (MG_T)i / s;
    mg_fp_leave(fp);
    last_ops = ops;
    last_s = s;
    last_divide = divide;
    return divide;
}

/* Rows [0, m) x cols [0, kc) of the uint8 A at src (strides rsa, csa, one
 * of them 1) as MG_T in scr; their strides there into *rs, *cs. */
static void FN(a8_sliver)(const OPS *ops, const FN(u8op) *a8, const uint8_t *src, int m,
                          ptrdiff_t kc, ptrdiff_t rsa, ptrdiff_t csa, MG_T *scr,
                          ptrdiff_t *rs, ptrdiff_t *cs)
{
    if (csa == 1) {
        ops->u8_rows(m, kc, src, rsa, scr, kc, a8->s, a8->r, a8->divide);
        *rs = kc;
        *cs = 1;
    } else {
        ops->u8_rows(kc, m, src, csa, scr, ops->mr, a8->s, a8->r, a8->divide);
        *rs = 1;
        *cs = ops->mr;
    }
}

/* Packs an A sliver of m rows from uint8 (see pack_a): converted into scr,
 * then packed by ops->pack_a, or converted into place when columns are rows. */
static void FN(pack_a8)(const OPS *ops, const FN(u8op) *a8, const uint8_t *src, int m,
                        ptrdiff_t kc, ptrdiff_t rsa, ptrdiff_t csa, MG_T *scr, MG_T *dst)
{
    const int mr = ops->mr;
    ptrdiff_t rs, cs;
    if (csa == 1) {
        FN(a8_sliver)(ops, a8, src, m, kc, rsa, csa, scr, &rs, &cs);
        ops->pack_a(m, kc, scr, rs, dst);
        return;
    }
    FN(a8_sliver)(ops, a8, src, m, kc, rsa, csa, dst, &rs, &cs); /* already packed */
    if (m < mr)
        for (ptrdiff_t p = 0; p < kc; p++)
            for (int i = m; i < mr; i++) dst[p * mr + i] = 0;
}

/* Packs one B sliver (see pack_b_sliver) from uint8 (strides rsb, csb, one of them 1). */
static void FN(pack_b8)(const OPS *ops, const FN(u8op) *b8, const uint8_t *src, ptrdiff_t kc,
                        int n, ptrdiff_t rsb, ptrdiff_t csb, MG_T *scr, MG_T *dst)
{
    const int nr = ops->nr;
    if (csb == 1) {
        ops->u8_rows(kc, n, src, rsb, dst, nr, b8->s, b8->r, b8->divide);
        if (n < nr)
            for (ptrdiff_t p = 0; p < kc; p++)
                for (int j = n; j < nr; j++) dst[p * nr + j] = 0;
        return;
    }
    ops->u8_rows(n, kc, src, csb, scr, kc, b8->s, b8->r, b8->divide);
    ops->pack_bt(kc, n, scr, kc, dst);
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

/* Work units [u0, u1) of a block of msl row slivers x nsl column slivers
 * (unit u: row sliver u / nsl, column sliver u % nsl), taken row by row: each
 * A sliver (mr x kc) stays in L1 while the packed B slivers stream from L2.
 * (Column by column, as BLIS does -- a B sliver in L1, A streamed -- measured
 * 2-25% slower on squares 256-2048 on an Intel Xeon with 12 x 32 tiles.) */
static void FN(gemm_units)(const OPS *ops, ptrdiff_t u0, ptrdiff_t u1, ptrdiff_t nsl,
                          ptrdiff_t m, ptrdiff_t nc, ptrdiff_t kc, const MG_T *a,
                           ptrdiff_t rsa, ptrdiff_t csa, int packed, MG_T *edge,
                           const MG_T *bp, MG_T *c, ptrdiff_t rsc, ptrdiff_t csc,
                           int load_c, const MG_T *bias, int relu, const FN(u8op) *a8,
                           const uint8_t *a8_src, MG_T *scr)
{
    const int mr = ops->mr, nr = ops->nr;
    for (ptrdiff_t u = u0; u < u1;) {
        ptrdiff_t i = u / nsl, j0 = u % nsl, j1 = nsl < j0 + (u1 - u) ? nsl : j0 + (u1 - u);
        ptrdiff_t ir = i * mr, jr = j0 * nr;
        ptrdiff_t rows = m - ir < mr ? m - ir : mr, cols = (j1 == nsl ? nc : j1 * nr) - jr;
        MG_T *ci = c + ir * rsc + jr * csc;
        const MG_T *bj = bias ? bias + jr : NULL;
        if (packed) {
            ops->macro(rows, cols, kc, a + ir * kc, bp + jr * kc, ci, rsc, csc, load_c, bj,
                       relu);
        } else if (a8->p) { /* the sliver converted, then read as if in place */
            ptrdiff_t rs, cs;
            FN(a8_sliver)(ops, a8, a8_src + ir * rsa, (int)rows, kc, rsa, csa, scr, &rs, &cs);
            ops->macro_direct(rows, cols, kc, scr, rs, cs, edge, bp + jr * kc, ci, rsc, csc,
                              load_c, bj, relu);
        } else
            ops->macro_direct(rows, cols, kc, a + ir * rsa, rsa, csa, edge, bp + jr * kc, ci,
                              rsc, csc, load_c, bj, relu);
        u += j1 - j0;
    }
}

/* One GEMM's operands and blocks, shared by its team. */
typedef struct {
    const OPS *ops;
    ptrdiff_t M, N, K, rsa, csa, rsb, csb, rsc, csc, kc_block, nc_block, mc;
    const MG_T *A, *B, *bias;
    MG_T *C, *bp, *ap;
    int accumulate, relu, direct, by_cols, priv_b;
    size_t b_elems; /* one packed B panel */
    FN(u8op) a8, b8;
    MG_T *scr; /* with a uint8 operand: scr_elems per thread for its conversion */
    ptrdiff_t scr_elems;
} FN(gemm_job);

/* Waits for the GEMM's own team. A GEMM on one thread makes no OpenMP
 * region and may run inside another's (conv2d's images, each thread its own
 * GEMM): a barrier there would bind to that team, so none is made. */
static inline void FN(team_sync)(int nt)
{
    if (nt > 1) {
#pragma omp barrier
    }
}

/* Thread t's share of a GEMM run by nt threads: slivers to pack and micro-
 * tiles are cut into nt contiguous ranges, with a barrier after each step;
 * with g->by_cols, t computes every row's tiles in the B slivers it packed
 * itself: no barrier after packing B, and with A read in place none after
 * the tiles either, only where a sliver's place in bp moves (a shorter last
 * K block, a new column panel); with g->priv_b (A in place), t packs every
 * B sliver into its own panel and takes its rows' tiles: no barrier at all.
 * No OpenMP worksharing construct (see team_sync). */
static void FN(gemm_team)(const FN(gemm_job) *g, int t, int nt)
{
    const OPS *ops = g->ops;
    const int mr = ops->mr, nr = ops->nr, direct = g->direct, by_cols = g->by_cols;
    const int priv_b = g->priv_b, own_b = by_cols || priv_b; /* t reads only B it packed */
    const ptrdiff_t M = g->M, N = g->N, K = g->K, rsa = g->rsa, csa = g->csa;
    const ptrdiff_t rsb = g->rsb, csb = g->csb, rsc = g->rsc, csc = g->csc, mc = g->mc;
    MG_T *bp = g->bp + (priv_b ? (size_t)t * g->b_elems : 0), *ap = g->ap;
    MG_T *edge = direct ? ap + (size_t)t * mr * g->kc_block : NULL; /* edge sliver */
    MG_T *scr = g->scr ? g->scr + t * g->scr_elems : NULL;
    for (ptrdiff_t jc = 0; jc < N; jc += g->nc_block) {
        ptrdiff_t nc = N - jc < g->nc_block ? N - jc : g->nc_block;
        ptrdiff_t nsl = (nc + nr - 1) / nr;
        /* the B slivers t packs: all of them into its own panel with priv_b */
        const ptrdiff_t s0 = priv_b ? 0 : nsl * t / nt;
        const ptrdiff_t s1 = priv_b ? nsl : nsl * (t + 1) / nt;
        for (ptrdiff_t pc = 0; pc < K; pc += g->kc_block) {
            ptrdiff_t kc = K - pc < g->kc_block ? K - pc : g->kc_block;
            int last = pc + kc == K, load_c = g->accumulate || pc > 0;
            const MG_T *b_j = last && g->bias ? g->bias + jc : NULL;
            /* slivers sit at bp + s nr kc: a shorter block moves t's below
             * t - 1's, which t - 1 may still be reading */
            if (by_cols && direct && pc > 0 && kc != g->kc_block) FN(team_sync)(nt);
            for (ptrdiff_t s = s0; s < s1; s++) {
                ptrdiff_t j = s * nr;
                int n = (int)(nc - j < nr ? nc - j : nr);
                const MG_T *b = g->B + pc * rsb + (jc + j) * csb;
                if (g->b8.p)
                    FN(pack_b8)(ops, &g->b8, g->b8.p + pc * rsb + (jc + j) * csb, kc, n, rsb,
                                csb, scr, bp + j * kc);
                else if (rsb == 1 && csb != 1) /* B transposed: W of x @ W.T */
                    ops->pack_bt(kc, n, b, csb, bp + j * kc);
                else
                    FN(pack_b_sliver)(kc, n, b, rsb, csb, nr, bp + j * kc);
            }
            if (!own_b) FN(team_sync)(nt);
            for (ptrdiff_t ic = 0; ic < M; ic += mc) {
                ptrdiff_t m = M - ic < mc ? M - ic : mc;
                ptrdiff_t msl = (m + mr - 1) / mr;
                const MG_T *a = g->A + ic * rsa + pc * csa;
                const uint8_t *a8 = g->a8.p ? g->a8.p + ic * rsa + pc * csa : NULL;
                if (!direct) {
                    for (ptrdiff_t s = msl * t / nt; s < msl * (t + 1) / nt; s++) {
                        ptrdiff_t i = s * mr, rows = m - i < mr ? m - i : mr;
                        if (a8)
                            FN(pack_a8)(ops, &g->a8, a8 + i * rsa, (int)rows, kc, rsa, csa,
                                        scr, ap + i * kc);
                        else if (csa == 1)
                            ops->pack_a(rows, kc, a + i * rsa, rsa, ap + i * kc);
                        else
                            FN(pack_a)(rows, kc, a + i * rsa, rsa, csa, mr, ap + i * kc);
                    }
                    FN(team_sync)(nt);
                }
                ptrdiff_t total = msl * nsl;
                for (ptrdiff_t i = 0; i < (by_cols ? msl : 1); i++) {
                    ptrdiff_t u0 = by_cols ? i * nsl + s0 : total * t / nt;
                    ptrdiff_t u1 = by_cols ? i * nsl + s1 : total * (t + 1) / nt;
                    FN(gemm_units)(ops, u0, u1, nsl, m, nc, kc, direct ? a : ap, rsa, csa,
                                   !direct, edge, bp, g->C + ic * rsc + jc * csc, rsc, csc,
                                   load_c, b_j, last && g->relu, &g->a8, a8, scr);
                }
                if (!own_b || !direct) FN(team_sync)(nt);
            }
        }
        if (by_cols && direct) FN(team_sync)(nt); /* the next panel's slivers are cut anew */
    }
}

/* gemm_run's depth of K blocks for C = A B with N columns, and (*direct)
 * whether A is read in place: with few column slivers (one of A's strides
 * must be 1), where K is blocked only beyond MG_KC_DIRECT, so each C tile is
 * usually loaded and stored once. Blocks are balanced (K = 784 with kc = 384
 * gives 3 x 262, not 384 + 384 + 16) and depend only on the shapes and the
 * blocking. */
static ptrdiff_t FN(gemm_kc_block)(const OPS *ops, const mg_blocking *blk, ptrdiff_t N,
                                   ptrdiff_t K, ptrdiff_t rsa, ptrdiff_t csa, int *direct)
{
    *direct = N <= MG_DIRECT_SLIVERS * ops->nr && (rsa == 1 || csa == 1);
    const ptrdiff_t kc_cap = *direct ? MG_KC_DIRECT : blk->kc;
    const ptrdiff_t kc_parts = (K + kc_cap - 1) / kc_cap;
    return (K + kc_parts - 1) / kc_parts;
}

/* C (+)= A B with C's element (i, j) at C[i * rsc + j * csc].
 *
 * Loops: N blocks (nc) > K blocks (kc) > M blocks (mc), as in Goto's
 * algorithm. The B panel (kc x nc) and each A block (mc x kc) are packed
 * once, shared by the threads (cut into slivers between them; with priv_b
 * each thread packs its own copy of a narrow B panel), and the
 * block's micro-tiles (row slivers x column slivers) are dealt to the
 * threads in contiguous, equal ranges: a weight gradient of 128 rows splits
 * evenly on two threads (not into 72 + 56 rows); or, with by_cols, each
 * thread takes its own column slivers in every row. Blocks do not depend on
 * the thread count and every tile is computed the same way on any thread,
 * so results are bit-identical for any thread count. */
static int FN(gemm_run)(const OPS *ops, int threads, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
                        const MG_T *A, ptrdiff_t rsa, ptrdiff_t csa, const MG_T *B,
                        ptrdiff_t rsb, ptrdiff_t csb, MG_T *C, ptrdiff_t rsc, ptrdiff_t csc,
                        int accumulate, const MG_T *bias, int relu, const FN(u8op) *a8,
                        const FN(u8op) *b8)
{
    const int mr = ops->mr, nr = ops->nr;
    const mg_blocking blk = FN(gemm_blocking)(mr, nr);
    int direct;
    const ptrdiff_t kc_block = FN(gemm_kc_block)(ops, &blk, N, K, rsa, csa, &direct);
    const ptrdiff_t nc_parts = (N + blk.nc - 1) / blk.nc;
    const ptrdiff_t nc_block = ((N + nc_parts - 1) / nc_parts + nr - 1) / nr * nr;
    const ptrdiff_t nc_pad = (N < nc_block ? (N + nr - 1) / nr * nr : nc_block);
    const ptrdiff_t mc_cap = blk.mc < mr ? mr : blk.mc / mr * mr;
    const ptrdiff_t mc_parts = (M + mc_cap - 1) / mc_cap;
    const ptrdiff_t mc = ((M + mc_parts - 1) / mc_parts + mr - 1) / mr * mr;

    int nt = (double)M * N * K < MG_GEMM_SERIAL_WORK ? 1 : threads;
    const ptrdiff_t units = (mc / mr) * (nc_pad / nr);
    if (nt > units) nt = (int)units;

    /* More columns than rows, or few rows: threads split the column slivers
     * instead of the micro-tiles in row order, so each packs and reads only
     * its own B slivers (two threads: dy.T @ x at batch 1024, hidden 128,
     * 0.99 -> 0.74 ms; x @ W.T at batch 256, hidden 128, 189 -> 168 us). With
     * many rows, reading all of A on each thread costs more (square 512: 0.95x);
     * slivers that split unevenly (3 on 2 threads) keep the even row split. */
    const ptrdiff_t nsl0 = nc_pad / nr;
    const int by_cols = nt > 1 && (nsl0 % nt == 0 || nsl0 >= 4 * nt) &&
                        (N > M || M <= MG_BYCOLS_ROWS);
    /* Otherwise, with A read in place, each thread packs the whole (narrow) B
     * panel into its own copy: no barrier at all, and no B sliver read from
     * the other core's cache (two threads: x @ W.T at hidden 30, batch 64
     * 52 -> 21 us, batch 256 84 -> 49-54 us; batch 1024, hidden 128 1.03-1.09x).
     * Measured on two threads only: past MG_PRIV_B_THREADS, packing the whole
     * panel on every thread is left untried. */
    const int priv_b = nt > 1 && nt <= MG_PRIV_B_THREADS && direct && !by_cols;

    const size_t b_elems = (size_t)kc_block * nc_pad;
    const size_t a_elems = (size_t)kc_block * (direct ? (size_t)mr * nt : (size_t)mc);
    const ptrdiff_t scr_elems = a8->p || b8->p ? (ptrdiff_t)(mr > nr ? mr : nr) * kc_block : 0;
    const size_t a_at = (b_elems * (priv_b ? nt : 1) + 15) / 16 * 16;
    const size_t scr_at = a_at + (a_elems + 15) / 16 * 16;
    MG_T *bp = mg_arena_get((scr_at + (size_t)scr_elems * nt) * sizeof(MG_T) + 64);
    if (!bp) return -1;
    const FN(gemm_job) job = {ops, M, N, K, rsa, csa, rsb, csb, rsc, csc, kc_block, nc_block,
                              mc, A, B, bias, C, bp, bp + a_at, accumulate, relu, direct,
                              by_cols, priv_b, b_elems, *a8, *b8,
                              scr_elems ? bp + scr_at : NULL, scr_elems};
    if (nt == 1) { /* no OpenMP region (~0.45 us a call) */
        unsigned fp = mg_fp_enter();
        FN(gemm_team)(&job, 0, 1);
        mg_fp_leave(fp);
        return 0;
    }
    mg_team_fork(nt);
#pragma omp parallel num_threads(nt)
    {
        /* the work is cut for nt threads: a smaller team (OMP_THREAD_LIMIT,
         * OMP_DYNAMIC) would leave tiles uncomputed, so one thread does it all */
        mg_team_clock tc = mg_team_enter();
        if (mg_team_size() == nt)
            FN(gemm_team)(&job, mg_thread_id(), nt);
        else if (mg_thread_id() == 0)
            FN(gemm_team)(&job, 0, 1);
        mg_team_leave(&tc);
    }
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
    if (nt > pieces) nt = (int)pieces; /* a thread with no piece would idle at the barrier */
    if (nt == 1) { /* no OpenMP region: a batch-1 layer takes well under a microsecond */
        unsigned fp = mg_fp_enter();
        ops->small(M, N, K, A, rsa, B, csb, C, ldc, 1, accumulate, bias, relu);
        mg_fp_leave(fp);
        return;
    }
    mg_team_fork(nt);
#pragma omp parallel num_threads(nt)
    {
        mg_team_clock tc = mg_team_enter();
#pragma omp for schedule(static)
        for (ptrdiff_t s = 0; s < pieces; s++) {
            ptrdiff_t j = s * MG_SMALL_COLS, n = N - j < MG_SMALL_COLS ? N - j : MG_SMALL_COLS;
            ops->small(M, n, K, A, rsa, B + j * csb, csb, C + j, ldc, 1, accumulate,
                       bias ? bias + j : NULL, relu);
        }
        mg_team_leave(&tc);
    }
}

/* Few rows with a uint8 operand: it is converted whole into the arena
 * (at most MG_SMALL_ROWS rows of A, or B's columns), then gemm_small. */
static int FN(gemm_small8)(const OPS *ops, int threads, ptrdiff_t M, ptrdiff_t N,
                           ptrdiff_t K, const MG_T *A, ptrdiff_t rsa, const MG_T *B,
                           ptrdiff_t csb, MG_T *C, ptrdiff_t ldc, int accumulate,
                           const MG_T *bias, int relu, const FN(u8op) *a8, const FN(u8op) *b8)
{
    const size_t a_elems = a8->p ? (size_t)M * K : 0, b_elems = b8->p ? (size_t)N * K : 0;
    MG_T *buf = mg_arena_get((a_elems + b_elems) * sizeof(MG_T) + 64);
    if (!buf) return -1;
    unsigned fp = mg_fp_enter();
    if (a8->p) {
        ops->u8_rows(M, K, a8->p, rsa, buf, K, a8->s, a8->r, a8->divide);
        A = buf;
        rsa = K;
    }
    if (b8->p) {
        ops->u8_rows(N, K, b8->p, csb, buf + a_elems, K, b8->s, b8->r, b8->divide);
        B = buf + a_elems;
        csb = K;
    }
    mg_fp_leave(fp);
    FN(gemm_small)(ops, threads, M, N, K, A, rsa, B, csb, C, ldc, accumulate, bias, relu);
    return 0;
}

/* The road mg_gemm takes for C = A B (strides csa, rsb, csb; bias, relu:
 * whether the product has them). */
static int FN(gemm_road)(const OPS *ops, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, ptrdiff_t csa,
                         ptrdiff_t rsb, ptrdiff_t csb, int bias, int relu)
{
    /* Few rows and many columns (a weight gradient dy.T @ x): compute
     * C.T = B.T A.T instead, so the big operand is read in place and C is
     * written through its transpose -- when K >= M, i.e. when packing B
     * (K x N) would cost more than storing C (M x N) element by element
     * (Zen 4: dy @ W at batch 64, hidden 30: 37 -> 30 us unswapped). On an
     * Intel Xeon (two FMA units, 48 KiB L1d) it pays only for at most one
     * micro-tile of rows and while the in-place sliver's K cache lines fit
     * L1: dy.T @ x at hidden 30, batch 64 / 256 / 1024: 34.8 -> 32.8,
     * 131.6 -> 116.9, 589 -> 619 us swapped; dy @ W at batch 64, hidden 128
     * (M = 64): 113 -> 121 us swapped. Zen 5 (AMD family 0x1A, full-width
     * 512-bit FMA units) pays at most one micro-tile of rows too, at any K:
     * M = 64 swapped, dy @ W at batch 64, hidden 128 61.6 -> 65.9 us, 64 x
     * 512 @ 512 x 1024 316 -> 556 us; M = 30, dy.T @ x at hidden 30, batch
     * 1024 297 -> 216 us. */
    const ptrdiff_t few = (ptrdiff_t)MG_DIRECT_SLIVERS * ops->nr;
    const mg_cpu_info *cpu = mg_cpu_get();
    const int intel = cpu->vendor == 1, forced = __atomic_load_n(&mg_gemm_swap, __ATOMIC_RELAXED);
    const int zen5 = cpu->vendor == 2 && cpu->family >= 0x1A;
    const ptrdiff_t swap_rows =
        ((intel || zen5) && !forced ? 1 : MG_SWAP_SLIVERS) * (ptrdiff_t)ops->nr;
    const int swap = forced ? forced > 0 : !intel || K * 64 <= cpu->l1d;
    if (M <= MG_SMALL_ROWS && csa == 1 && rsb == 1) return MG_ROAD_SMALL;
    if (swap && M <= swap_rows && N > few && K >= M && !bias && !relu && (rsb == 1 || csb == 1))
        return MG_ROAD_SWAP;
    return MG_ROAD_RUN;
}

/* mg_gemm, with A or B (or both) uint8 where a8->p / b8->p is set (then
 * the MG_T pointer is unused). */
static int FN(gemm_any)(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const MG_T *A, ptrdiff_t rsa,
                        ptrdiff_t csa, const MG_T *B, ptrdiff_t rsb, ptrdiff_t csb, MG_T *C,
                        ptrdiff_t ldc, int accumulate, const MG_T *bias, int relu,
                        const FN(u8op) *a8, const FN(u8op) *b8)
{
    if (M == 0 || N == 0) return 0;
    if (K == 0) {
        unsigned fp = mg_fp_enter();
        FN(bias_relu_only)(M, N, C, ldc, accumulate, bias, relu);
        mg_fp_leave(fp);
        return 0;
    }
    const OPS *ops = FN(ops)();
    int threads = mg_enter(mg_get_num_threads()), rc = 0;
    const int road = FN(gemm_road)(ops, M, N, K, csa, rsb, csb, bias != NULL, relu);
    if (road == MG_ROAD_SMALL && (a8->p || b8->p))
        rc = FN(gemm_small8)(ops, threads, M, N, K, A, rsa, B, csb, C, ldc, accumulate, bias,
                             relu, a8, b8);
    else if (road == MG_ROAD_SMALL)
        FN(gemm_small)(ops, threads, M, N, K, A, rsa, B, csb, C, ldc, accumulate, bias, relu);
    else if (road == MG_ROAD_SWAP)
        rc = FN(gemm_run)(ops, threads, N, M, K, B, csb, rsb, A, csa, rsa, C, 1, ldc,
                          accumulate, NULL, 0, b8, a8);
    else
        rc = FN(gemm_run)(ops, threads, M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, 1,
                          accumulate, bias, relu, a8, b8);
    mg_leave();
    return rc;
}

int FN(mg_gemm)(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const MG_T *A, ptrdiff_t rsa,
                ptrdiff_t csa, const MG_T *B, ptrdiff_t rsb, ptrdiff_t csb, MG_T *C,
                ptrdiff_t ldc, int accumulate, const MG_T *bias, int relu)
{
    const FN(u8op) none = {NULL, 0, 0, 0};
    return FN(gemm_any)(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, bias, relu,
                        &none, &none);
}

/* mg_gemm with A and/or B uint8 (A8, B8 non-NULL instead of A, B), read as
 * (MG_T)byte / scale: the same product as mg_gemm's on the converted
 * arrays, bit for bit. Strides in elements; each uint8 operand needs one
 * stride of 1. */
int FN(mg_gemm_u8)(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const MG_T *A, const uint8_t *A8,
                   ptrdiff_t rsa, ptrdiff_t csa, const MG_T *B, const uint8_t *B8,
                   ptrdiff_t rsb, ptrdiff_t csb, MG_T *C, ptrdiff_t ldc, int accumulate,
                   const MG_T *bias, int relu, double scale)
{
    const MG_T s = (MG_T)scale, r = (MG_T)1 / s;
    const int divide = FN(u8_check)(FN(ops)(), s, r);
    const FN(u8op) a8 = {A8, s, r, divide}, b8 = {B8, s, r, divide};
    return FN(gemm_any)(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, bias, relu,
                        &a8, &b8);
}

/* A classifier's last layer and its loss, forward and backward to the
 * layer's input: z = x w^T + bias (x: m x k, w: c x k, C-contiguous), the
 * mean softmax cross-entropy of z and its gradient dz (as
 * mg_softmax_cross_entropy), and where dx is not NULL, dx = dz w, zeroed
 * where x <= 0 when relu (x the output of a ReLU: dx is the gradient at its
 * input). The results are those of mg_gemm, mg_softmax_cross_entropy,
 * mg_gemm and relu_backward called in turn, bit for bit: where mg_gemm runs
 * its micro-kernel in one K block, ops->head_logits and head_input_grad sum
 * the same products in the same order on vectors as wide as the classes
 * need (a micro-tile is two vectors wide), the weight packed once for the
 * logits (pack_bt, as the GEMM packs it) and read in place for the input
 * gradient, and the mask in the store; elsewhere those calls are made. (Bit for bit except the sign
 * or payload of a NaN: where two NaNs meet in the bias addition, the one
 * kept depends on the operand order the compiler picks.) m, c >= 1.
 * Returns 0, or -1 when out of memory (or m or c is below 1). */
int FN(mg_linear_cross_entropy)(ptrdiff_t m, ptrdiff_t k, ptrdiff_t c, const MG_T *x,
                                const MG_T *w, const MG_T *bias, const int64_t *labels,
                                int relu, MG_T *z, MG_T *dz, MG_T *dx, double *loss)
{
    const OPS *ops = FN(ops)();
    const mg_blocking blk = FN(gemm_blocking)(ops->mr, ops->nr);
    int direct;
    if (m < 1 || c < 1) return -1;
    const ptrdiff_t nr = ops->nr, slivers = (c + nr - 1) / nr;
    const ptrdiff_t group = 4 * (ptrdiff_t)ops->vl, kwhole = k / group * group;
    /* few classes and a modest packed weight: with many classes (wide tiles)
     * or a long K (a copy that the arena would keep) the GEMM does better */
    const int head = c <= MG_HEAD_CLASSES && k > 0 &&
                     (size_t)k * (size_t)(slivers * nr) * sizeof(MG_T) <= MG_HEAD_BYTES;
    const int own_z = head &&
                      FN(gemm_road)(ops, m, c, k, 1, 1, k, bias != NULL, 0) == MG_ROAD_RUN &&
                      FN(gemm_kc_block)(ops, &blk, c, k, k, 1, &direct) >= k;
    const int road_dx = FN(gemm_road)(ops, m, k, c, 1, k, 1, 0, 0);
    const int own_dx = dx && head && road_dx != MG_ROAD_SMALL &&
                       (road_dx == MG_ROAD_RUN ? FN(gemm_kc_block)(ops, &blk, k, c, c, 1, &direct)
                                               : FN(gemm_kc_block)(ops, &blk, m, c, 1, k, &direct)) >= c;
    /* the buffers below live in this thread's arena, which the mg_gemm calls
     * may reallocate: each is asked for right before its use */
    if (own_z) {
        MG_T *wt = mg_arena_get((size_t)k * (size_t)(slivers * nr) * sizeof(MG_T) + 64);
        if (!wt) return -1;
        unsigned fp = mg_fp_enter();
        for (ptrdiff_t s = 0; s < slivers; s++)
            ops->pack_bt(k, (int)(c - s * nr < nr ? c - s * nr : nr), w + s * nr * k, k,
                         wt + s * k * nr);
        ops->head_logits(m, k, c, x, k, wt, bias, z);
        mg_fp_leave(fp);
    } else if (FN(mg_gemm)(m, c, k, x, k, 1, w, 1, k, z, c, 0, bias, 0) != 0) {
        return -1;
    }
    if (FN(mg_softmax_cross_entropy)(m, c, z, labels, dz, loss) != 0) return -1;
    if (!dx) return 0;
    if (own_dx) {
        MG_T *wtail = NULL; /* the last partial column group of w, zero-padded */
        if (kwhole < k) {
            wtail = mg_arena_get((size_t)c * (size_t)group * sizeof(MG_T) + 64);
            if (!wtail) return -1;
            for (ptrdiff_t j = 0; j < c; j++)
                for (ptrdiff_t q = 0; q < group; q++)
                    wtail[j * group + q] = kwhole + q < k ? w[j * k + kwhole + q] : (MG_T)0;
        }
        unsigned fp = mg_fp_enter();
        ops->head_input_grad(m, k, c, dz, w, wtail, relu ? x : NULL, relu, dx);
        mg_fp_leave(fp);
        return 0;
    }
    if (FN(mg_gemm)(m, k, c, dz, c, 1, w, k, 1, dx, k, 0, NULL, 0) != 0) return -1;
    if (relu) FN(mg_binary)(MG_K_relu_backward, m * k, dx, x, dx);
    return 0;
}
