/* conv2d with stride 1 as one GEMM over the whole batch, for one element type
 * (included by mg_conv_tmpl.h; MG_T, FN, OPS as there).
 *
 * The input is copied once with its zero padding (planes hp x wp). An output
 * position (r, q) of image n is then column n * Q + r * wp + q, Q = (oh - 1) *
 * wp + ow, and row k = (c, i, j) of the im2col matrix is the padded image
 * read from offset c * hp * wp + i * dh * wp + j * dw: a B sliver (nr columns)
 * is packed with one contiguous copy per row, no window arithmetic. Columns
 * with q >= ow are computed and dropped. W is packed once; each sliver is
 * multiplied by all of W (ops->macro) into a padded output, which is then
 * compacted into y with the bias and ReLU. Every output is computed by one
 * thread in a fixed order, so results do not depend on the thread count. */

/* This path is taken for stride 1 when the padded copy stays modest. */
static int FN(conv_folded_ok)(const mg_conv2d_geom *g)
{
    if (g->sh != 1 || g->sw != 1 || g->n < 1 || g->oh < 1 || g->ow < 1) return 0;
    double hp = (double)g->h + 2 * g->ph, wp = (double)g->w + 2 * g->pw;
    double waste = hp * wp / ((double)g->oh * g->ow);
    /* the padded input and output live beside x and y: bounded */
    double bytes = g->n * (g->c * hp * wp + g->oc * g->oh * wp) * sizeof(MG_T);
    if (bytes > MG_CONV_FOLD_BYTES) return 0;
    /* Each sliver is packed for all output channels: with fewer than 48
     * (or a short K) packing outweighs the GEMM, and the per-image tiles
     * measured faster (input gradient of 64x32x14x14 -> 64: 5.1 vs 5.5 ms). */
    return waste < 2.5 && g->kh * g->kw > 1 && g->oc >= 48 && g->c * g->kh * g->kw >= 32;
}

/* The padded copy of x: n * c planes of hp x wp. */
static void FN(conv_pad_input)(const mg_conv2d_geom *g, const MG_T *x, ptrdiff_t hp,
                               ptrdiff_t wp, MG_T *xp)
{
    MG_NCHW_FOR(g->n * g->c, g->n * g->c * hp * wp, q, {
        const MG_T *src = x + q * g->h * g->w;
        MG_T *dst = xp + q * hp * wp;
        memset(dst, 0, (size_t)(g->ph * wp) * sizeof(MG_T));
        for (ptrdiff_t r = 0; r < g->h; r++) {
            MG_T *row = dst + (r + g->ph) * wp;
            for (ptrdiff_t j = 0; j < g->pw; j++) row[j] = 0;
            memcpy(row + g->pw, src + r * g->w, (size_t)g->w * sizeof(MG_T));
            for (ptrdiff_t j = g->pw + g->w; j < wp; j++) row[j] = 0;
        }
        memset(dst + (g->ph + g->h) * wp, 0, (size_t)((hp - g->ph - g->h) * wp) * sizeof(MG_T));
    });
}

/* One output plane (+ bias, ReLU) from its padded rows. */
MG_NCHW_CLONES static void FN(conv_compact_plane)(const mg_conv2d_geom *g, const MG_T *src,
                                                  ptrdiff_t wp, MG_T bias, int relu, MG_T *dst)
{
    for (ptrdiff_t r = 0; r < g->oh; r++) {
        const MG_T *s = src + r * wp;
        MG_T *d = dst + r * g->ow;
        if (relu)
            for (ptrdiff_t q = 0; q < g->ow; q++) {
                MG_T v = s[q] + bias;
                d[q] = v <= 0 ? 0 : v; /* NaN stays, as the GEMM's fused ReLU */
            }
        else
            for (ptrdiff_t q = 0; q < g->ow; q++) d[q] = s[q] + bias;
    }
}

/* y (+ bias, ReLU) from the padded output yp (n x oc x Q). */
static void FN(conv_compact)(const mg_conv2d_geom *g, const MG_T *yp, ptrdiff_t Q,
                             ptrdiff_t wp, const MG_T *b, int relu, MG_T *y)
{
    const ptrdiff_t ohw = g->oh * g->ow;
    MG_NCHW_FOR(g->n * g->oc, g->n * g->oc * ohw, row, {
        FN(conv_compact_plane)(g, yp + row * Q, wp, b ? b[row % g->oc] : 0, relu,
                               y + row * ohw);
    });
}

/* Row k of a B sliver (nr wide) = src + offs[k]: with nr a constant each
 * copy is a few vector moves rather than a call to memcpy. */
static inline __attribute__((always_inline)) void FN(conv_copy_rows)(
    const ptrdiff_t nr, ptrdiff_t K, const MG_T *src, const ptrdiff_t *offs, MG_T *bp)
{
    for (ptrdiff_t k = 0; k < K; k++) memcpy(bp + k * nr, src + offs[k], (size_t)nr * sizeof(MG_T));
}

MG_NCHW_CLONES static void FN(conv_pack_sliver)(ptrdiff_t nr, ptrdiff_t K, const MG_T *src,
                                                const ptrdiff_t *offs, MG_T *bp)
{
    if (nr * (ptrdiff_t)sizeof(MG_T) == 128)
        FN(conv_copy_rows)(128 / sizeof(MG_T), K, src, offs, bp);
    else if (nr * (ptrdiff_t)sizeof(MG_T) == 64)
        FN(conv_copy_rows)(64 / sizeof(MG_T), K, src, offs, bp);
    else
        FN(conv_copy_rows)(nr, K, src, offs, bp);
}

/* y = conv2d(x, w) + b (ReLU if relu), stride 1; w is (oc, c * kh * kw). */
static int FN(conv_fwd_folded)(const mg_conv2d_geom *g, const MG_T *x, const MG_T *w,
                               const MG_T *b, int relu, MG_T *y)
{
    const OPS *ops = FN(ops)();
    const ptrdiff_t mr = ops->mr, nr = ops->nr;
    const ptrdiff_t hp = g->h + 2 * g->ph, wp = g->w + 2 * g->pw, plane = hp * wp;
    const ptrdiff_t K = g->c * g->kh * g->kw, M = g->oc, Mpad = (M + mr - 1) / mr * mr;
    const ptrdiff_t Q = (g->oh - 1) * wp + g->ow, cols = g->n * Q;
    const ptrdiff_t slivers = (cols + nr - 1) / nr;
    const ptrdiff_t kc_parts = (K + MG_KC - 1) / MG_KC, kc_block = (K + kc_parts - 1) / kc_parts;
    const ptrdiff_t xs = g->c * plane;

    int nt = FN(conv_work)(g) < MG_NCHW_SERIAL_WORK ? 1 : mg_get_num_threads();
    if (nt > slivers) nt = (int)slivers;
    MG_T *xp = mg_conv_alloc((size_t)(g->n * xs + nr) * sizeof(MG_T));
    MG_T *ap = mg_conv_alloc((size_t)(Mpad * K) * sizeof(MG_T));
    MG_T *yp = mg_conv_alloc((size_t)(cols * M) * sizeof(MG_T));
    ptrdiff_t *offs = mg_conv_alloc((size_t)K * sizeof(ptrdiff_t));
    MG_T *bps = mg_conv_alloc((size_t)nt * (K * nr + M * nr) * sizeof(MG_T));
    int rc = -1;
    if (!xp || !ap || !yp || !offs || !bps) goto done;
    rc = 0;
    for (ptrdiff_t c = 0, k = 0; c < g->c; c++)
        for (ptrdiff_t i = 0; i < g->kh; i++)
            for (ptrdiff_t j = 0; j < g->kw; j++) offs[k++] = c * plane + i * g->dh * wp + j * g->dw;
    FN(conv_pad_input)(g, x, hp, wp, xp);
    nt = mg_enter(nt);
    {
        unsigned fp = mg_fp_enter();
        for (ptrdiff_t pc = 0; pc < K; pc += kc_block) {
            ptrdiff_t kc = K - pc < kc_block ? K - pc : kc_block;
            ops->pack_a(M, kc, w + pc, K, ap + Mpad * pc);
        }
        mg_fp_leave(fp);
    }
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        unsigned fp = mg_fp_enter();
        MG_T *bp = bps + (size_t)mg_thread_id() * (K * nr + M * nr);
        MG_T *tmp = bp + K * nr;
#pragma omp for schedule(static)
        for (ptrdiff_t s = 0; s < slivers; s++) {
            const ptrdiff_t col0 = s * nr, n = cols - col0 < nr ? cols - col0 : nr;
            const ptrdiff_t img = col0 / Q, q0 = col0 % Q;
            const int inside = q0 + n <= Q;
            if (inside) {
                const MG_T *src = xp + img * xs + q0;
                FN(conv_pack_sliver)(nr, K, src, offs, bp);
            } else {
                for (ptrdiff_t j0 = 0; j0 < n;) {
                    ptrdiff_t im = (col0 + j0) / Q, q = (col0 + j0) % Q;
                    ptrdiff_t len = Q - q < n - j0 ? Q - q : n - j0;
                    const MG_T *src = xp + im * xs + q;
                    for (ptrdiff_t k = 0; k < K; k++)
                        memcpy(bp + k * nr + j0, src + offs[k], (size_t)len * sizeof(MG_T));
                    j0 += len;
                }
            }
            MG_T *c = inside ? yp + img * M * Q + q0 : tmp;
            const ptrdiff_t rsc = inside ? Q : nr;
            for (ptrdiff_t pc = 0; pc < K; pc += kc_block) {
                ptrdiff_t kc = K - pc < kc_block ? K - pc : kc_block;
                ops->macro(M, n, kc, ap + Mpad * pc, bp + pc * nr, c, rsc, 1, pc > 0, NULL,
                           0);
            }
            if (!inside)
                for (ptrdiff_t j0 = 0; j0 < n;) {
                    ptrdiff_t im = (col0 + j0) / Q, q = (col0 + j0) % Q;
                    ptrdiff_t len = Q - q < n - j0 ? Q - q : n - j0;
                    for (ptrdiff_t o = 0; o < M; o++)
                        memcpy(yp + (im * M + o) * Q + q, tmp + o * nr + j0,
                               (size_t)len * sizeof(MG_T));
                    j0 += len;
                }
        }
        mg_fp_leave(fp);
    }
    mg_leave();
    FN(conv_compact)(g, yp, Q, wp, b, relu, y);
done:
    free(xp);
    free(ap);
    free(yp);
    free(offs);
    free(bps);
    return rc;
}

/* The input gradient of a stride-1 convolution is the convolution of dy
 * with w flipped and its channel axes swapped, padded by d (k - 1) - p:
 * that convolution's geometry. */
static mg_conv2d_geom FN(conv_bwd_input_geom)(const mg_conv2d_geom *g)
{
    mg_conv2d_geom t = *g;
    t.c = g->oc;
    t.oc = g->c;
    t.h = g->oh;
    t.w = g->ow;
    t.oh = g->h;
    t.ow = g->w;
    t.ph = g->dh * (g->kh - 1) - g->ph;
    t.pw = g->dw * (g->kw - 1) - g->pw;
    return t;
}

static int FN(conv_bwd_input_folded_ok)(const mg_conv2d_geom *g)
{
    if (g->sh != 1 || g->sw != 1) return 0;
    if (g->ph > g->dh * (g->kh - 1) || g->pw > g->dw * (g->kw - 1)) return 0;
    mg_conv2d_geom t = FN(conv_bwd_input_geom)(g);
    return FN(conv_folded_ok)(&t);
}

static int FN(conv_bwd_input_folded)(const mg_conv2d_geom *g, const MG_T *dy, const MG_T *w,
                                     MG_T *dx)
{
    mg_conv2d_geom t = FN(conv_bwd_input_geom)(g);
    const ptrdiff_t kk = g->kh * g->kw;
    MG_T *wf = mg_conv_alloc((size_t)(g->oc * g->c * kk) * sizeof(MG_T));
    if (!wf) return -1;
    for (ptrdiff_t o = 0; o < g->oc; o++)
        for (ptrdiff_t c = 0; c < g->c; c++)
            for (ptrdiff_t e = 0; e < kk; e++)
                wf[(c * g->oc + o) * kk + e] = w[(o * g->c + c) * kk + kk - 1 - e];
    int rc = FN(conv_fwd_folded)(&t, dy, wf, NULL, 0, dx);
    free(wf);
    return rc;
}
