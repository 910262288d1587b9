/* Max pooling of VL planes at once for one element type and instruction set
 * (included by mg_isa_tmpl.h): plane k in lane k of a vector, every lane on
 * the same window, so padding and dilation cost no masks. The planes are
 * first copied transposed (each position's VL values side by side) into
 * scratch, which the driver sizes (mg_pool_tmpl.h: pool_lanes_bytes).
 * PyTorch's rule: each window starts at -inf with the index of its first tap
 * inside the plane, and a tap wins where it is greater or NaN (so the first
 * maximum, or the last NaN); a window of padding only gives -inf and -1. */

#if MG_IS_F64
typedef int64_t FN(pool_at);
#else
typedef int32_t FN(pool_at);
#endif
typedef FN(pool_at) FN(pool_atv) __attribute__((vector_size(MG_VB)));

static void FN(max_pool_planes)(const mg_conv2d_geom *g, const MG_T *x, ptrdiff_t planes,
                                MG_T *y, int64_t *indices, void *scratch)
{
    const ptrdiff_t hw = g->h * g->w, ohw = g->oh * g->ow;
    MG_T *xt = scratch, *yt = xt + hw * VL;
    FN(pool_at) *it = (FN(pool_at) *)(yt + ohw * VL);
    for (ptrdiff_t pos = 0; pos < hw; pos++)
        for (int k = 0; k < VL; k++) xt[pos * VL + k] = x[(k < planes ? k : 0) * hw + pos];
    for (ptrdiff_t oh = 0; oh < g->oh; oh++) {
        ptrdiff_t i0, i1;
        mg_window_taps(oh, g->kh, g->sh, g->ph, g->dh, g->h, &i0, &i1);
        const ptrdiff_t r0 = oh * g->sh - g->ph;
        for (ptrdiff_t ow = 0; ow < g->ow; ow++) {
            ptrdiff_t j0, j1;
            mg_window_taps(ow, g->kw, g->sw, g->pw, g->dw, g->w, &j0, &j1);
            const ptrdiff_t c0 = ow * g->sw - g->pw;
            if (i0 >= i1) j1 = j0; /* no tap inside */
            V m = (V){0} - (MG_T)INFINITY;
            FN(pool_atv) best = (FN(pool_atv)){0} +
                (FN(pool_at))(j0 < j1 ? (r0 + i0 * g->dh) * g->w + c0 + j0 * g->dw : -1);
            for (ptrdiff_t i = i0; i < i1; i++)
                for (ptrdiff_t j = j0; j < j1; j++) {
                    const FN(pool_at) at = (FN(pool_at))((r0 + i * g->dh) * g->w + c0 + j * g->dw);
                    V b;
                    memcpy(&b, xt + (ptrdiff_t)at * VL, sizeof b);
                    FN(pool_atv) take = (b > m) | (b != b);
                    m = (V)(((FN(pool_atv))b & take) | ((FN(pool_atv))m & ~take));
                    best = (((FN(pool_atv)){0} + at) & take) | (best & ~take);
                }
            memcpy(yt + (oh * g->ow + ow) * VL, &m, sizeof m);
            memcpy(it + (oh * g->ow + ow) * VL, &best, sizeof best);
        }
    }
    for (ptrdiff_t k = 0; k < planes; k++)
        for (ptrdiff_t o = 0; o < ohw; o++) {
            y[k * ohw + o] = yt[o * VL + k];
            indices[k * ohw + o] = it[o * VL + k];
        }
}
