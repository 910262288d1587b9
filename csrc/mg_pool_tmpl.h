/* Max, average and adaptive average pooling for one element type (MG_T,
 * MG_S): direct loops, one (image, channel) plane per work item (max
 * pooling: a block of the ISA's vector length of planes, mg_pool_lanes.h), so
 * every plane is computed by one thread in a fixed order. Geometry as for
 * conv2d with oc == c; padding never enters a maximum. */

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

/* One plane, window by window over the taps inside the plane (for planes
 * too large for mg_pool_lanes.h's copies), with its rule: each window starts
 * at -inf with the index of its first tap inside, and a tap wins where it is
 * greater or NaN. */
static void FN(max_pool_plane)(const mg_conv2d_geom *g, const MG_T *xp, MG_T *yp, int64_t *ip)
{
    for (ptrdiff_t oh = 0; oh < g->oh; oh++) {
        ptrdiff_t i0, i1;
        mg_window_taps(oh, g->kh, g->sh, g->ph, g->dh, g->h, &i0, &i1);
        const ptrdiff_t r0 = oh * g->sh - g->ph;
        for (ptrdiff_t ow = 0; ow < g->ow; ow++) {
            ptrdiff_t j0, j1;
            mg_window_taps(ow, g->kw, g->sw, g->pw, g->dw, g->w, &j0, &j1);
            const ptrdiff_t c0 = ow * g->sw - g->pw;
            MG_T m = -INFINITY;
            int64_t best = -1;
            if (i0 < i1 && j0 < j1) {
                best = (r0 + i0 * g->dh) * g->w + c0 + j0 * g->dw;
                for (ptrdiff_t i = i0; i < i1; i++) {
                    const MG_T *row = xp + (r0 + i * g->dh) * g->w + c0;
                    for (ptrdiff_t j = j0; j < j1; j++) {
                        /* picked by index, not by a branch the data would mispredict */
                        const MG_T v[2] = {m, row[j * g->dw]};
                        const int64_t at[2] = {best, (r0 + i * g->dh) * g->w + c0 + j * g->dw};
                        const int take = (v[1] > m) | (v[1] != v[1]);
                        m = v[take];
                        best = at[take];
                    }
                }
            }
            yp[oh * g->ow + ow] = m;
            ip[oh * g->ow + ow] = best;
        }
    }
}

void FN(mg_max_pool2d)(const mg_conv2d_geom *g, const MG_T *x, MG_T *y, int64_t *indices)
{
    const OPS *ops = FN(ops)();
    const ptrdiff_t hw = g->h * g->w, ohw = g->oh * g->ow, planes = g->n * g->c, vl = ops->vl;
    const size_t per = ((size_t)(hw + 2 * ohw) * vl * sizeof(MG_T) + 63) / 64 * 64;
    char *scratch = hw <= MG_POOL_LANES_PLANE
                        ? mg_conv_alloc((size_t)mg_get_num_threads() * per) : NULL;
    if (!scratch) { /* planes too large, or no memory for the copies: plane by plane */
        MG_NCHW_FOR(planes, planes * ohw * g->kh * g->kw, q,
                    FN(max_pool_plane)(g, x + q * hw, y + q * ohw, indices + q * ohw));
        return;
    }
    MG_NCHW_FOR((planes + vl - 1) / vl, planes * ohw * g->kh * g->kw, b, {
        const ptrdiff_t q = b * vl;
        ops->max_pool_planes(g, x + q * hw, planes - q < vl ? planes - q : vl, y + q * ohw,
                             indices + q * ohw, scratch + (size_t)mg_thread_id() * per);
    });
    free(scratch);
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
