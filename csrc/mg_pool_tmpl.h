/* Max, average and adaptive average pooling for one element type (MG_T,
 * MG_S): direct loops, one (image, channel) plane per work item, so every
 * plane is computed by one thread in a fixed order. Geometry as for conv2d
 * with oc == c; padding never enters a maximum. */

/* Clipped window [*lo, *hi) along one axis for output position o. */
static inline void FN(pool_range)(ptrdiff_t o, ptrdiff_t k, ptrdiff_t s, ptrdiff_t p,
                                  ptrdiff_t size, ptrdiff_t *lo, ptrdiff_t *hi,
                                  ptrdiff_t *padded)
{
    ptrdiff_t a = o * s - p, b = a + k;
    if (b > size + p) b = size + p;
    *padded = b - a;
    *lo = a < 0 ? 0 : a;
    *hi = b > size ? size : b;
}

/* 16-byte vectors of MG_PL lanes for the 2x2 stride-2 max pool. */
#define MG_PL ((int)(16 / sizeof(MG_T)))
typedef MG_T FN(pv) __attribute__((vector_size(16)));
#ifndef MG_POOL_LANE_f32
#define MG_POOL_LANE_f32 int32_t
#define MG_POOL_LANE_f64 int64_t
#endif
typedef MG_CAT(MG_POOL_LANE, MG_S) FN(pi);                 /* lane masks and indices */
typedef FN(pi) FN(pm) __attribute__((vector_size(16)));

/* take b where b > a or b is NaN (PyTorch's rule), else a. */
static inline void FN(pool_take)(FN(pv) *m, FN(pm) *at, FN(pv) b, FN(pm) bi)
{
    FN(pm) t = (b > *m) | (b != b);
    *m = (FN(pv))(((FN(pm))b & t) | ((FN(pm))*m & ~t));
    *at = (bi & t) | (*at & ~t);
}

/* Outputs [ow, ow + n) (n <= MG_PL) of output row oh of a 2x2 stride-2
 * window, MG_PL at a time in vectors: no branch on the data. */
static inline void FN(max_pool_2x2)(const MG_T *xp, ptrdiff_t w, ptrdiff_t oh, ptrdiff_t ow,
                                    ptrdiff_t n, MG_T *yp, int64_t *ip)
{
    MG_T v[4][MG_PL];
    FN(pi) at[4][MG_PL];
    for (int r = 0; r < 2; r++)
        for (int e = 0; e < 2; e++)
            for (int k = 0; k < MG_PL; k++) {
                ptrdiff_t off = (2 * oh + r) * w + 2 * (ow + (k < n ? k : 0)) + e;
                v[2 * r + e][k] = xp[off];
                at[2 * r + e][k] = off;
            }
    FN(pv) m, b;
    memcpy(&m, v[0], sizeof m);
    FN(pm) best, bi;
    memcpy(&best, at[0], sizeof best);
    for (int q = 1; q < 4; q++) {
        memcpy(&b, v[q], sizeof b);
        memcpy(&bi, at[q], sizeof bi);
        FN(pool_take)(&m, &best, b, bi);
    }
    for (int k = 0; k < n; k++) {
        yp[k] = m[k];
        ip[k] = best[k];
    }
}

/* One plane without padding: every window is inside the plane, so the
 * first element starts the maximum and the rest are branch-free selects
 * (random data would mispredict a branch per element). */
static void FN(max_pool_plane_nopad)(const mg_conv2d_geom *g, const MG_T *xp, MG_T *yp,
                                     int64_t *ip)
{
    if (g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->dh == 1 && g->dw == 1) {
        for (ptrdiff_t oh = 0; oh < g->oh; oh++)
            for (ptrdiff_t ow = 0; ow < g->ow; ow += MG_PL)
                FN(max_pool_2x2)(xp, g->w, oh, ow, g->ow - ow < MG_PL ? g->ow - ow : MG_PL,
                                 yp + oh * g->ow + ow, ip + oh * g->ow + ow);
        return;
    }
    for (ptrdiff_t oh = 0; oh < g->oh; oh++)
        for (ptrdiff_t ow = 0; ow < g->ow; ow++) {
            const ptrdiff_t h0 = oh * g->sh, w0 = ow * g->sw;
            int64_t best = h0 * g->w + w0;
            MG_T m = xp[best];
            for (ptrdiff_t i = 0; i < g->kh; i++)
                for (ptrdiff_t j = i == 0; j < g->kw; j++) {
                    int64_t at = (h0 + i * g->dh) * g->w + w0 + j * g->dw;
                    MG_T v = xp[at];
                    int take = (v > m) | (v != v);
                    m = take ? v : m;
                    best = take ? at : best;
                }
            yp[oh * g->ow + ow] = m;
            ip[oh * g->ow + ow] = best;
        }
}

void FN(mg_max_pool2d)(const mg_conv2d_geom *g, const MG_T *x, MG_T *y, int64_t *indices)
{
    const ptrdiff_t hw = g->h * g->w, ohw = g->oh * g->ow;
    MG_NCHW_FOR(g->n * g->c, g->n * g->c * ohw * g->kh * g->kw, q, {
        const MG_T *xp = x + q * hw;
        MG_T *yp = y + q * ohw;
        int64_t *ip = indices + q * ohw;
        if (g->ph == 0 && g->pw == 0) {
            FN(max_pool_plane_nopad)(g, xp, yp, ip);
            continue;
        }
        for (ptrdiff_t oh = 0; oh < g->oh; oh++)
            for (ptrdiff_t ow = 0; ow < g->ow; ow++) {
                ptrdiff_t h0 = oh * g->sh - g->ph, w0 = ow * g->sw - g->pw, best = -1;
                MG_T m = -INFINITY;
                for (ptrdiff_t i = 0; i < g->kh; i++) {
                    ptrdiff_t ih = h0 + i * g->dh;
                    if (ih < 0 || ih >= g->h) continue;
                    for (ptrdiff_t j = 0; j < g->kw; j++) {
                        ptrdiff_t iw = w0 + j * g->dw;
                        if (iw < 0 || iw >= g->w) continue;
                        MG_T v = xp[ih * g->w + iw];
                        /* PyTorch's rule: the first maximum; a NaN always wins */
                        if (best < 0 || v > m || v != v) {
                            m = v;
                            best = ih * g->w + iw;
                        }
                    }
                }
                yp[oh * g->ow + ow] = m;
                ip[oh * g->ow + ow] = best;
            }
    });
}

void FN(mg_max_pool2d_backward)(const mg_conv2d_geom *g, const MG_T *dy,
                                const int64_t *indices, MG_T *dx)
{
    const ptrdiff_t hw = g->h * g->w, ohw = g->oh * g->ow;
    MG_NCHW_FOR(g->n * g->c, g->n * g->c * (hw + ohw), q, {
        MG_T *dp = dx + q * hw;
        const MG_T *gp = dy + q * ohw;
        const int64_t *ip = indices + q * ohw;
        memset(dp, 0, (size_t)hw * sizeof(MG_T));
        for (ptrdiff_t o = 0; o < ohw; o++)
            if (ip[o] >= 0) dp[ip[o]] += gp[o];
    });
}

void FN(mg_avg_pool2d)(const mg_conv2d_geom *g, const MG_T *x, MG_T *y,
                       int count_include_pad)
{
    const ptrdiff_t hw = g->h * g->w, ohw = g->oh * g->ow;
    MG_NCHW_FOR(g->n * g->c, g->n * g->c * ohw * g->kh * g->kw, q, {
        const MG_T *xp = x + q * hw;
        MG_T *yp = y + q * ohw;
        for (ptrdiff_t oh = 0; oh < g->oh; oh++) {
            ptrdiff_t h0, h1, hp;
            FN(pool_range)(oh, g->kh, g->sh, g->ph, g->h, &h0, &h1, &hp);
            for (ptrdiff_t ow = 0; ow < g->ow; ow++) {
                ptrdiff_t w0, w1, wp;
                FN(pool_range)(ow, g->kw, g->sw, g->pw, g->w, &w0, &w1, &wp);
                MG_T s = 0;
                for (ptrdiff_t ih = h0; ih < h1; ih++)
                    for (ptrdiff_t iw = w0; iw < w1; iw++) s += xp[ih * g->w + iw];
                ptrdiff_t div = count_include_pad ? hp * wp : (h1 - h0) * (w1 - w0);
                yp[oh * g->ow + ow] = s / (MG_T)div;
            }
        }
    });
}

void FN(mg_avg_pool2d_backward)(const mg_conv2d_geom *g, const MG_T *dy, MG_T *dx,
                                int count_include_pad)
{
    const ptrdiff_t hw = g->h * g->w, ohw = g->oh * g->ow;
    MG_NCHW_FOR(g->n * g->c, g->n * g->c * (hw + ohw * g->kh * g->kw), q, {
        MG_T *dp = dx + q * hw;
        const MG_T *gp = dy + q * ohw;
        memset(dp, 0, (size_t)hw * sizeof(MG_T));
        for (ptrdiff_t oh = 0; oh < g->oh; oh++) {
            ptrdiff_t h0, h1, hp;
            FN(pool_range)(oh, g->kh, g->sh, g->ph, g->h, &h0, &h1, &hp);
            for (ptrdiff_t ow = 0; ow < g->ow; ow++) {
                ptrdiff_t w0, w1, wp;
                FN(pool_range)(ow, g->kw, g->sw, g->pw, g->w, &w0, &w1, &wp);
                ptrdiff_t div = count_include_pad ? hp * wp : (h1 - h0) * (w1 - w0);
                MG_T v = gp[oh * g->ow + ow] / (MG_T)div;
                for (ptrdiff_t ih = h0; ih < h1; ih++)
                    for (ptrdiff_t iw = w0; iw < w1; iw++) dp[ih * g->w + iw] += v;
            }
        }
    });
}

/* PyTorch's adaptive window along one axis: [floor(o*n/out), ceil((o+1)*n/out)). */
static inline void FN(adaptive_range)(ptrdiff_t o, ptrdiff_t size, ptrdiff_t out,
                                      ptrdiff_t *lo, ptrdiff_t *hi)
{
    *lo = o * size / out;
    *hi = ((o + 1) * size + out - 1) / out;
}

void FN(mg_adaptive_avg_pool2d)(const mg_conv2d_geom *g, const MG_T *x, MG_T *y)
{
    const ptrdiff_t hw = g->h * g->w, ohw = g->oh * g->ow;
    MG_NCHW_FOR(g->n * g->c, g->n * g->c * (hw + ohw), q, {
        const MG_T *xp = x + q * hw;
        MG_T *yp = y + q * ohw;
        for (ptrdiff_t oh = 0; oh < g->oh; oh++) {
            ptrdiff_t h0, h1;
            FN(adaptive_range)(oh, g->h, g->oh, &h0, &h1);
            for (ptrdiff_t ow = 0; ow < g->ow; ow++) {
                ptrdiff_t w0, w1;
                FN(adaptive_range)(ow, g->w, g->ow, &w0, &w1);
                MG_T s = 0;
                for (ptrdiff_t ih = h0; ih < h1; ih++)
                    for (ptrdiff_t iw = w0; iw < w1; iw++) s += xp[ih * g->w + iw];
                yp[oh * g->ow + ow] = s / (MG_T)((h1 - h0) * (w1 - w0));
            }
        }
    });
}

void FN(mg_adaptive_avg_pool2d_backward)(const mg_conv2d_geom *g, const MG_T *dy, MG_T *dx)
{
    const ptrdiff_t hw = g->h * g->w, ohw = g->oh * g->ow;
    MG_NCHW_FOR(g->n * g->c, g->n * g->c * (hw + ohw), q, {
        MG_T *dp = dx + q * hw;
        const MG_T *gp = dy + q * ohw;
        memset(dp, 0, (size_t)hw * sizeof(MG_T));
        for (ptrdiff_t oh = 0; oh < g->oh; oh++) {
            ptrdiff_t h0, h1;
            FN(adaptive_range)(oh, g->h, g->oh, &h0, &h1);
            for (ptrdiff_t ow = 0; ow < g->ow; ow++) {
                ptrdiff_t w0, w1;
                FN(adaptive_range)(ow, g->w, g->ow, &w0, &w1);
                MG_T v = gp[oh * g->ow + ow] / (MG_T)((h1 - h0) * (w1 - w0));
                for (ptrdiff_t ih = h0; ih < h1; ih++)
                    for (ptrdiff_t iw = w0; iw < w1; iw++) dp[ih * g->w + iw] += v;
            }
        }
    });
}

#undef MG_PL
