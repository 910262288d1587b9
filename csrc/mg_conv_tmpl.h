/* conv2d for one element type (MG_T, MG_S) on the project's GEMM.
 *
 * Per image, the output rows are cut into tiles whose im2col matrix
 * (K = c*kh*kw rows, one column per output position) fits MG_CONV_COL_BYTES:
 *   forward        y[:, tile]  = w (oc x K) @ col   (bias preloaded; ReLU fused)
 *   input grad     col = w.T @ dy[:, tile], then col2im adds col into dx
 *   weight grad    dw += dy[:, tile] @ col.T
 * A 1x1 convolution with stride 1 and no padding uses x itself as col.
 * Stride-1 convolutions with enough channels take one GEMM over the whole
 * batch instead (mg_conv_gemm.h), and so does their input gradient.
 * Tiles depend only on the shapes, each output is summed in a fixed order, and
 * the GEMM is bit-identical for any thread count, so the results are too. */

/* The one call into the GEMM: C (ldc) (+)= A B, then max(C, 0) if relu
 * (NaN kept); strides in elements. The ReLU is a pass of its own: mg_gemm
 * may pick another blocking when asked to fuse it, and relu=True must give
 * exactly max(conv2d(...), 0). */
static int FN(conv_gemm)(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const MG_T *A,
                         ptrdiff_t rsa, ptrdiff_t csa, const MG_T *B, ptrdiff_t rsb,
                         ptrdiff_t csb, MG_T *C, ptrdiff_t ldc, int accumulate, int relu)
{
    int rc = FN(mg_gemm)(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, NULL, 0);
    if (relu)
        for (ptrdiff_t i = 0; i < M; i++)
            for (ptrdiff_t j = 0; j < N; j++) {
                MG_T v = C[i * ldc + j];
                C[i * ldc + j] = v <= 0 ? 0 : v;
            }
    return rc;
}

static int FN(conv_pointwise)(const mg_conv2d_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 &&
           g->pw == 0;
}

/* A convolution whose one output position reads the whole image: a 1x1
 * output of a kernel the size of the unpadded image (ResNet-18's layer4 and
 * layer4.0 once their taps that read only padding are left out). x is then
 * an (n, c h w) matrix and w an (oc, c kh kw) one, in the same order, and each
 * product is one GEMM on them, with no im2col, col2im or copies (64x512x1x1
 * with a 3x3 weight through its window, one thread: forward 0.383 -> 0.331
 * ms, input gradient 0.423 -> 0.259, weight gradient 0.389 -> 0.286; col2im
 * of one element a (image, channel) took a third of the input gradient). */
static int FN(conv_dense)(const mg_conv2d_geom *g)
{
    return g->oh == 1 && g->ow == 1 && g->kh == g->h && g->kw == g->w && g->ph == 0 &&
           g->pw == 0 && (g->kh == 1 || g->dh == 1) && (g->kw == 1 || g->dw == 1);
}

/* Output rows per im2col tile. */
static ptrdiff_t FN(conv_rows)(const mg_conv2d_geom *g)
{
    size_t per_row = (size_t)g->c * g->kh * g->kw * g->ow * sizeof(MG_T);
    ptrdiff_t rows = (ptrdiff_t)(MG_CONV_COL_BYTES / (per_row ? per_row : 1));
    return rows < 1 ? 1 : rows > g->oh ? g->oh : rows;
}

static size_t FN(conv_col_elems)(const mg_conv2d_geom *g)
{
    if (FN(conv_pointwise)(g)) return 0;
    return (size_t)g->c * g->kh * g->kw * FN(conv_rows)(g) * g->ow;
}

/* The output columns [lo, hi) whose input column ow*sw + off is inside [0, w). */
static void FN(conv_cols)(const mg_conv2d_geom *g, ptrdiff_t off, ptrdiff_t *lo,
                          ptrdiff_t *hi)
{
    ptrdiff_t a = off >= 0 ? 0 : (-off + g->sw - 1) / g->sw;
    ptrdiff_t b = g->w - 1 - off >= 0 ? (g->w - 1 - off) / g->sw + 1 : 0;
    if (a > g->ow) a = g->ow;
    if (b > g->ow) b = g->ow;
    *lo = a;
    *hi = b < a ? a : b;
}

/* The im2col rows of one channel (kh * kw rows, T apart): the windows of
 * output rows [r0, r1) of its plane, zeros for padding. */
static void FN(im2col_plane)(const mg_conv2d_geom *g, const MG_T *plane, ptrdiff_t r0,
                             ptrdiff_t r1, MG_T *rows, ptrdiff_t T)
{
    for (ptrdiff_t i = 0; i < g->kh; i++)
        for (ptrdiff_t j = 0; j < g->kw; j++) {
            MG_T *row = rows + (i * g->kw + j) * T;
            ptrdiff_t off = j * g->dw - g->pw, lo, hi;
            FN(conv_cols)(g, off, &lo, &hi);
            for (ptrdiff_t r = r0; r < r1; r++) {
                MG_T *dst = row + (r - r0) * g->ow;
                ptrdiff_t ih = r * g->sh - g->ph + i * g->dh;
                if (ih < 0 || ih >= g->h) {
                    memset(dst, 0, (size_t)g->ow * sizeof(MG_T));
                    continue;
                }
                const MG_T *src = plane + ih * g->w + off;
                for (ptrdiff_t o = 0; o < lo; o++) dst[o] = 0;
                if (g->sw == 1)
                    memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof(MG_T));
                else
                    for (ptrdiff_t o = lo; o < hi; o++) dst[o] = src[o * g->sw];
                for (ptrdiff_t o = hi; o < g->ow; o++) dst[o] = 0;
            }
        }
}

/* The adjoint of im2col_plane: adds the rows' elements into the plane. */
static void FN(col2im_plane)(const mg_conv2d_geom *g, const MG_T *rows, ptrdiff_t r0,
                             ptrdiff_t r1, ptrdiff_t T, MG_T *plane)
{
    for (ptrdiff_t i = 0; i < g->kh; i++)
        for (ptrdiff_t j = 0; j < g->kw; j++) {
            const MG_T *row = rows + (i * g->kw + j) * T;
            ptrdiff_t off = j * g->dw - g->pw, lo, hi;
            FN(conv_cols)(g, off, &lo, &hi);
            for (ptrdiff_t r = r0; r < r1; r++) {
                ptrdiff_t ih = r * g->sh - g->ph + i * g->dh;
                if (ih < 0 || ih >= g->h) continue;
                const MG_T *src = row + (r - r0) * g->ow;
                MG_T *dst = plane + ih * g->w + off;
                for (ptrdiff_t o = lo; o < hi; o++) dst[o * g->sw] += src[o];
            }
        }
}

/* col (K x T) = the windows of output rows [r0, r1) of the image x, rows
 * ordered (channel, i, j) like w's columns, in columns [0, (r1 - r0) ow). */
static void FN(im2col_ld)(const mg_conv2d_geom *g, const MG_T *x, ptrdiff_t r0,
                          ptrdiff_t r1, MG_T *col, ptrdiff_t T)
{
    MG_NCHW_FOR(g->c, g->c * g->kh * g->kw * T, c,
                FN(im2col_plane)(g, x + c * g->h * g->w, r0, r1,
                                 col + c * g->kh * g->kw * T, T));
}

static void FN(im2col)(const mg_conv2d_geom *g, const MG_T *x, ptrdiff_t r0,
                       ptrdiff_t r1, MG_T *col)
{
    FN(im2col_ld)(g, x, r0, r1, col, (r1 - r0) * g->ow);
}

/* The adjoint of im2col: adds col's elements into the image dx. Each channel
 * is added in a fixed order by one thread. */
static void FN(col2im)(const mg_conv2d_geom *g, const MG_T *col, ptrdiff_t r0,
                       ptrdiff_t r1, MG_T *dx)
{
    const ptrdiff_t T = (r1 - r0) * g->ow;
    MG_NCHW_FOR(g->c, g->c * g->kh * g->kw * T, c,
                FN(col2im_plane)(g, col + c * g->kh * g->kw * T, r0, r1, T,
                                 dx + c * g->h * g->w));
}

/* Forward of one image. */
static int FN(conv_fwd_image)(const mg_conv2d_geom *g, const MG_T *x, const MG_T *w,
                              const MG_T *b, int relu, MG_T *y, MG_T *col)
{
    const ptrdiff_t K = g->c * g->kh * g->kw, ohw = g->oh * g->ow;
    if (b)
        for (ptrdiff_t o = 0; o < g->oc; o++)
            for (ptrdiff_t p = 0; p < ohw; p++) y[o * ohw + p] = b[o];
    if (FN(conv_pointwise)(g))
        return FN(conv_gemm)(g->oc, ohw, K, w, K, 1, x, ohw, 1, y, ohw, b != NULL, relu);
    const ptrdiff_t rows = FN(conv_rows)(g);
    int rc = 0;
    for (ptrdiff_t r0 = 0; r0 < g->oh; r0 += rows) {
        ptrdiff_t r1 = r0 + rows < g->oh ? r0 + rows : g->oh, T = (r1 - r0) * g->ow;
        FN(im2col)(g, x, r0, r1, col);
        rc |= FN(conv_gemm)(g->oc, T, K, w, K, 1, col, T, 1, y + r0 * g->ow, ohw,
                            b != NULL, relu);
    }
    return rc;
}

static int FN(conv_bwd_input_image)(const mg_conv2d_geom *g, const MG_T *dy,
                                    const MG_T *w, MG_T *dx, MG_T *col)
{
    const ptrdiff_t K = g->c * g->kh * g->kw, ohw = g->oh * g->ow;
    if (FN(conv_pointwise)(g))
        return FN(conv_gemm)(g->c, ohw, g->oc, w, 1, K, dy, ohw, 1, dx, ohw, 0, 0);
    memset(dx, 0, (size_t)g->c * g->h * g->w * sizeof(MG_T));
    const ptrdiff_t rows = FN(conv_rows)(g);
    int rc = 0;
    for (ptrdiff_t r0 = 0; r0 < g->oh; r0 += rows) {
        ptrdiff_t r1 = r0 + rows < g->oh ? r0 + rows : g->oh, T = (r1 - r0) * g->ow;
        rc |= FN(conv_gemm)(K, T, g->oc, w, 1, K, dy + r0 * g->ow, ohw, 1, col, T, 0, 0);
        FN(col2im)(g, col, r0, r1, dx);
    }
    return rc;
}

/* For images of few output positions, im2col and col2im go through a table:
 * the offset in an input plane that each (tap, output position) reads, -1
 * for padding -- the same for every image and channel (kh kw ohw entries). */
static ptrdiff_t *FN(conv_taps)(const mg_conv2d_geom *g)
{
    const ptrdiff_t ohw = g->oh * g->ow;
    ptrdiff_t *taps = mg_conv_alloc((size_t)(g->kh * g->kw * ohw) * sizeof(ptrdiff_t));
    if (!taps) return NULL;
    for (ptrdiff_t i = 0; i < g->kh; i++)
        for (ptrdiff_t j = 0; j < g->kw; j++)
            for (ptrdiff_t r = 0; r < g->oh; r++)
                for (ptrdiff_t q = 0; q < g->ow; q++) {
                    const ptrdiff_t ih = r * g->sh - g->ph + i * g->dh;
                    const ptrdiff_t iw = q * g->sw - g->pw + j * g->dw;
                    taps[((i * g->kw + j) * g->oh + r) * g->ow + q] =
                        ih >= 0 && ih < g->h && iw >= 0 && iw < g->w ? ih * g->w + iw : -1;
                }
    return taps;
}

/* The im2col rows of channel c (kh kw rows, T apart) for m images side by
 * side, image i in columns [i ohw, (i + 1) ohw); x is the first image. */
MG_NCHW_CLONES static void FN(im2col_images)(const mg_conv2d_geom *g, const ptrdiff_t *taps,
                                            const MG_T *x, ptrdiff_t m, ptrdiff_t c,
                                            MG_T *rows, ptrdiff_t T)
{
    const ptrdiff_t ohw = g->oh * g->ow, hw = g->h * g->w, xs = g->c * hw;
    for (ptrdiff_t t = 0; t < g->kh * g->kw; t++) {
        const ptrdiff_t *tap = taps + t * ohw;
        for (ptrdiff_t img = 0; img < m; img++) {
            const MG_T *plane = x + img * xs + c * hw;
            MG_T *dst = rows + t * T + img * ohw;
            for (ptrdiff_t p = 0; p < ohw; p++) dst[p] = tap[p] >= 0 ? plane[tap[p]] : 0;
        }
    }
}

/* The adjoint of im2col_images: adds the rows into channel c of m images
 * (dx the first), each plane in a fixed order. */
MG_NCHW_CLONES static void FN(col2im_images)(const mg_conv2d_geom *g, const ptrdiff_t *taps,
                                            const MG_T *rows, ptrdiff_t T, ptrdiff_t m,
                                            ptrdiff_t c, MG_T *dx)
{
    const ptrdiff_t ohw = g->oh * g->ow, hw = g->h * g->w, xs = g->c * hw;
    for (ptrdiff_t img = 0; img < m; img++) {
        MG_T *plane = dx + img * xs + c * hw;
        for (ptrdiff_t t = 0; t < g->kh * g->kw; t++) {
            const ptrdiff_t *tap = taps + t * ohw;
            const MG_T *src = rows + t * T + img * ohw;
            for (ptrdiff_t p = 0; p < ohw; p++)
                if (tap[p] >= 0) plane[tap[p]] += src[p];
        }
    }
}

/* Images taken side by side by one GEMM of the forward pass or the input
 * gradient when an image has few output positions: image by image, each
 * GEMM would pack all of w for a few columns (ResNet-18's 2x2 layer on 64
 * images: 18.8 ms image by image). 1: image by image. Depends on the shapes
 * only, so results do not depend on the thread count. */
static ptrdiff_t FN(conv_batch_images)(const mg_conv2d_geom *g)
{
    const ptrdiff_t ohw = g->oh * g->ow, K = g->c * g->kh * g->kw;
    if (ohw >= MG_CONV_BATCH_COLS || g->n < 2 || ohw < 1 || K < 1) return 1;
    size_t fit = MG_CONV_BATCH_BYTES / ((size_t)K * ohw * sizeof(MG_T));
    ptrdiff_t nb = (MG_CONV_BATCH_COLS + ohw - 1) / ohw;
    if ((size_t)nb > fit) nb = (ptrdiff_t)fit;
    if (nb > g->n) nb = g->n;
    if (nb < 2) return 1;
    const ptrdiff_t groups = (g->n + nb - 1) / nb;
    return (g->n + groups - 1) / groups;
}

/* conv2d of images [n0, n0 + nb) (fewer at the end) side by side: their
 * im2col matrices (K x T) in col, one GEMM into out (oc x T, after col's
 * nb-image room), then each image's columns copied into y. */
static int FN(conv_fwd_group)(const mg_conv2d_geom *g, const ptrdiff_t *taps, ptrdiff_t nb,
                              ptrdiff_t n0, const MG_T *x, const MG_T *w, const MG_T *b,
                              int relu, MG_T *y, MG_T *col)
{
    const ptrdiff_t K = g->c * g->kh * g->kw, ohw = g->oh * g->ow, kk = g->kh * g->kw;
    const ptrdiff_t xs = g->c * g->h * g->w, ys = g->oc * ohw;
    const ptrdiff_t m = g->n - n0 < nb ? g->n - n0 : nb, T = m * ohw;
    MG_T *out = col + K * nb * ohw;
    MG_NCHW_FOR(g->c, K * T, c,
                FN(im2col_images)(g, taps, x + n0 * xs, m, c, col + c * kk * T, T));
    if (b)
        for (ptrdiff_t o = 0; o < g->oc; o++)
            for (ptrdiff_t t = 0; t < T; t++) out[o * T + t] = b[o];
    int rc = FN(conv_gemm)(g->oc, T, K, w, K, 1, col, T, 1, out, T, b != NULL, relu);
    for (ptrdiff_t img = 0; img < m; img++)
        for (ptrdiff_t o = 0; o < g->oc; o++)
            memcpy(y + (n0 + img) * ys + o * ohw, out + o * T + img * ohw,
                   (size_t)ohw * sizeof(MG_T));
    return rc;
}

/* The input gradient of images [n0, n0 + nb) side by side: their grad_out
 * (oc x T, after col's room) copied beside, col = w.T @ that, then col2im
 * adds col into each image of dx (zeroed by the caller). */
static int FN(conv_bwd_input_group)(const mg_conv2d_geom *g, const ptrdiff_t *taps,
                                    ptrdiff_t nb, ptrdiff_t n0, const MG_T *dy, const MG_T *w,
                                    MG_T *dx, MG_T *col)
{
    const ptrdiff_t K = g->c * g->kh * g->kw, ohw = g->oh * g->ow, kk = g->kh * g->kw;
    const ptrdiff_t xs = g->c * g->h * g->w, ys = g->oc * ohw;
    const ptrdiff_t m = g->n - n0 < nb ? g->n - n0 : nb, T = m * ohw;
    MG_T *dyc = col + K * nb * ohw;
    for (ptrdiff_t img = 0; img < m; img++)
        for (ptrdiff_t o = 0; o < g->oc; o++)
            memcpy(dyc + o * T + img * ohw, dy + (n0 + img) * ys + o * ohw,
                   (size_t)ohw * sizeof(MG_T));
    int rc = FN(conv_gemm)(K, T, g->oc, w, 1, K, dyc, T, 1, col, T, 0, 0);
    if (!rc)
        MG_NCHW_FOR(g->c, K * T, c,
                    FN(col2im_images)(g, taps, col + c * kk * T, T, m, c, dx + n0 * xs));
    return rc;
}

/* ---- kernel taps that read only padding ----
 * Where the output is small against the padding (ResNet-18's 1x1 layer: 8
 * of a 3x3 kernel's 9 taps), whole kernel rows or columns read only zeros
 * for every output position. The convolution is then that of the smallest
 * kernel window holding every tap that reads x (padding shifted to match,
 * negative where it crops), on a copy of w's window; the weight gradient
 * of the other taps is zero. */

/* The kernel rows [*lo, *hi) that cover every tap reading x along one axis
 * (kernel k, stride s, padding p, dilation d, input in, output out); an
 * empty range when none does. */
static void FN(conv_live)(ptrdiff_t k, ptrdiff_t s, ptrdiff_t p, ptrdiff_t d, ptrdiff_t in,
                          ptrdiff_t out, ptrdiff_t *lo, ptrdiff_t *hi)
{
    *lo = k;
    *hi = 0;
    for (ptrdiff_t i = 0; i < k; i++) {
        const ptrdiff_t off = i * d - p, r = off >= 0 ? 0 : (-off + s - 1) / s;
        if (r < out && r * s + off < in) {
            if (*lo == k) *lo = i;
            *hi = i + 1;
        }
    }
    if (*hi <= *lo) *lo = *hi = 0;
}

/* Whether g has taps that read only padding: then *r is the geometry of
 * the window [i0, i0 + r->kh) x [j0, j0 + r->kw) (kh or kw 0: no tap reads x). */
static int FN(conv_window)(const mg_conv2d_geom *g, mg_conv2d_geom *r, ptrdiff_t *i0,
                           ptrdiff_t *j0)
{
    ptrdiff_t i1, j1;
    FN(conv_live)(g->kh, g->sh, g->ph, g->dh, g->h, g->oh, i0, &i1);
    FN(conv_live)(g->kw, g->sw, g->pw, g->dw, g->w, g->ow, j0, &j1);
    if (i1 - *i0 == g->kh && j1 - *j0 == g->kw) return 0;
    *r = *g;
    r->kh = i1 - *i0;
    r->kw = j1 - *j0;
    r->ph = g->ph - *i0 * g->dh;
    r->pw = g->pw - *j0 * g->dw;
    return 1;
}

/* Whether the n values at v are finite. NaN and inf have every exponent bit
 * set, and adding the exponent's lowest bit to the exponent field alone
 * carries into the sign bit only then: integer and, add and or, which
 * vectorize on any instruction set (a float compare ran 4 lanes at a time
 * and took most of conv_window_weight's 0.68 ms on a 512x512x3x3 weight). */
MG_NCHW_CLONES static int FN(conv_all_finite)(const MG_T *v, ptrdiff_t n)
{
    if (sizeof(MG_T) == sizeof(uint32_t)) {
        uint32_t acc = 0;
        for (ptrdiff_t i = 0; i < n; i++) {
            uint32_t b;
            memcpy(&b, (const char *)v + i * sizeof(uint32_t), sizeof b);
            acc |= (b & 0x7f800000u) + 0x00800000u;
        }
        return !(acc >> 31);
    }
    uint64_t acc = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        uint64_t b;
        memcpy(&b, (const char *)v + i * sizeof(uint64_t), sizeof b);
        acc |= (b & 0x7ff0000000000000u) + 0x0010000000000000u;
    }
    return !(acc >> 63);
}

/* The window of w (oc, c, kh, kw) that r keeps, as its own (oc, c, r.kh, r.kw).
 * With finite: whether all of w is finite, checked per output channel right
 * after its copy read those cache lines. A NaN or inf outside the window
 * times the padding it reads gives NaN, as the unreduced convolution (and
 * PyTorch) do, so the forward pass takes the window only where w is finite. */
static MG_T *FN(conv_window_weight)(const mg_conv2d_geom *g, const mg_conv2d_geom *r,
                                    ptrdiff_t i0, ptrdiff_t j0, const MG_T *w, int *finite)
{
    const ptrdiff_t planes = g->oc * g->c, kk = g->kh * g->kw;
    MG_T *ws = mg_conv_alloc((size_t)(planes * r->kh * r->kw) * sizeof(MG_T));
    int bad = 0;
    if (ws) /* (a loop, not memcpy: rows of a tap or two) */
        MG_NCHW_FOR(g->oc, planes * kk, o, {
            if (r->kh == 1 && r->kw == 1) { /* one tap: a strided copy */
                const MG_T *src = w + i0 * g->kw + j0;
                for (ptrdiff_t q = o * g->c; q < (o + 1) * g->c; q++) ws[q] = src[q * kk];
            } else {
                for (ptrdiff_t q = o * g->c; q < (o + 1) * g->c; q++)
                    for (ptrdiff_t i = 0; i < r->kh; i++)
                        for (ptrdiff_t j = 0; j < r->kw; j++)
                            ws[(q * r->kh + i) * r->kw + j] =
                                w[(q * g->kh + i0 + i) * g->kw + j0 + j];
            }
            if (finite && !FN(conv_all_finite)(w + o * g->c * kk, g->c * kk))
                __atomic_store_n(&bad, 1, __ATOMIC_RELAXED);
        });
    if (finite) *finite = !bad;
    return ws;
}

/* With few output channels the weight gradient is computed transposed,
 * col (K x T) @ dy.T (T x oc): the GEMM then stores whole vectors, where dw =
 * dy @ col.T would be computed through its transpose with element-by-element
 * stores (dW of 64x32x14x14 -> 64: 5.6 -> 5.0 ms; 64x1x28x28 -> 32: 1.7 ->
 * 0.6 ms; 64x64x7x7 -> 128, untransposed: 6.0 vs 7.3 ms). */
static int FN(conv_dw_transposed)(const mg_conv2d_geom *g) { return g->oc <= 64; }

/* Images whose im2col matrices are taken side by side for one GEMM of the
 * weight gradient, so that it sums over more than one image's positions
 * before dw's block is stored (1: image by image, in row tiles); dW of
 * 64x64x7x7 -> 128: 5.9 -> 5.3 ms. */
static ptrdiff_t FN(conv_dw_images)(const mg_conv2d_geom *g)
{
    const int small = g->oh * g->ow < MG_CONV_BATCH_COLS;
    /* (small outputs: their grad_out rows, copied beside, count too) */
    const size_t per_image =
        (size_t)(g->c * g->kh * g->kw + (small ? g->oc : 0)) * g->oh * g->ow * sizeof(MG_T);
    /* (with K < 32, 64x1x28x28 -> 32 measured 0.66 ms image by image, 0.74 batched) */
    /* (a 1x1 convolution reads x in place, unless its images are small) */
    if ((FN(conv_pointwise)(g) && g->oh * g->ow >= MG_CONV_BATCH_COLS) ||
        FN(conv_rows)(g) < g->oh || !per_image || g->c * g->kh * g->kw < 32)
        return 1;
    size_t fit = (small ? MG_CONV_BATCH_BYTES : MG_CONV_COL_BYTES) / per_image;
    if (fit > (size_t)g->n) fit = (size_t)g->n;
    return fit < 1 ? 1 : (ptrdiff_t)fit;
}

/* The col buffer of one thread for the weight gradient: im2col of
 * conv_dw_images images, then their grad_out rows side by side. */
static size_t FN(conv_dw_elems)(const mg_conv2d_geom *g)
{
    const ptrdiff_t nb = FN(conv_dw_images)(g);
    if (nb == 1) return FN(conv_col_elems)(g);
    return (size_t)nb * (g->c * g->kh * g->kw + g->oc) * g->oh * g->ow;
}

/* dwt = the weight gradient of images [n0, n1): (K x oc) if
 * conv_dw_transposed, else (oc x K) as dw. */
static int FN(conv_bwd_weight_images)(const mg_conv2d_geom *g, const ptrdiff_t *taps,
                                      const MG_T *x, const MG_T *dy, ptrdiff_t n0,
                                      ptrdiff_t n1, MG_T *dwt, MG_T *col)
{
    const ptrdiff_t K = g->c * g->kh * g->kw, ohw = g->oh * g->ow;
    const ptrdiff_t xs = g->c * g->h * g->w, ys = g->oc * ohw;
    const ptrdiff_t rows = FN(conv_rows)(g), nb = FN(conv_dw_images)(g);
    const int trans = FN(conv_dw_transposed)(g), pw = FN(conv_pointwise)(g);
    int rc = 0, accumulate = 0;
    if (n0 == n1) memset(dwt, 0, (size_t)(K * g->oc) * sizeof(MG_T));
    if (nb > 1) {
        for (ptrdiff_t n = n0; n < n1; n += nb) {
            const ptrdiff_t m = n1 - n < nb ? n1 - n : nb, T = m * ohw;
            MG_T *dyc = col + (size_t)nb * K * ohw;
            /* (threaded where this call is not in a parallel region of parts) */
            MG_NCHW_FOR(g->c, K * T, c,
                        FN(im2col_images)(g, taps, x + n * xs, m, c,
                                          col + c * g->kh * g->kw * T, T));
            MG_NCHW_FOR(g->oc, g->oc * T, o, {
                for (ptrdiff_t i = 0; i < m; i++)
                    memcpy(dyc + o * T + i * ohw, dy + (n + i) * ys + o * ohw,
                           (size_t)ohw * sizeof(MG_T));
            });
            if (trans)
                rc |= FN(conv_gemm)(K, g->oc, T, col, T, 1, dyc, 1, T, dwt, g->oc, accumulate, 0);
            else
                rc |= FN(conv_gemm)(g->oc, K, T, dyc, T, 1, col, 1, T, dwt, K, accumulate, 0);
            accumulate = 1;
        }
        return rc;
    }
    for (ptrdiff_t n = n0; n < n1; n++) {
        const MG_T *xn = x + n * xs, *dyn = dy + n * ys;
        for (ptrdiff_t r0 = 0; r0 < g->oh; r0 += pw ? g->oh : rows) {
            ptrdiff_t r1 = pw || r0 + rows > g->oh ? g->oh : r0 + rows, T = (r1 - r0) * g->ow;
            const MG_T *cn = pw ? xn : col, *dr = dyn + r0 * g->ow;
            const ptrdiff_t ld = pw ? ohw : T;
            if (!pw) FN(im2col)(g, xn, r0, r1, col);
            if (trans)
                rc |= FN(conv_gemm)(K, g->oc, T, cn, ld, 1, dr, 1, ohw, dwt, g->oc, accumulate, 0);
            else
                rc |= FN(conv_gemm)(g->oc, K, T, dr, ohw, 1, cn, 1, ld, dwt, K, accumulate, 0);
            accumulate = 1;
        }
    }
    return rc;
}

static double FN(conv_work)(const mg_conv2d_geom *g)
{
    return (double)g->n * g->oc * g->oh * g->ow * g->c * g->kh * g->kw;
}

/* rc = the OR of item(n, col) for n in [0, count), col a buffer of ce
 * elements: in parallel over the items when `parallel` and the threads
 * granted for `work` allow it (each thread its own col, GEMMs on one
 * thread), else one item after another outside any parallel region, where
 * each GEMM takes the team: libgomp starts a team nested in a region (even an
 * inactive if (0) one) with a new thread each time, whose GEMM packing arena
 * is new too (ResNet-18's 256x1152x256 weight-gradient product took as long
 * on two threads as on one); a top-level team reuses the pool's threads. rc
 * is -1 when col cannot be allocated. */
#define MG_CONV_EACH(count, ce, work, parallel, rc, item)                       \
    do {                                                                        \
        const ptrdiff_t count_ = (count);                                       \
        const size_t ce_ = (ce);                                                \
        int nt_ = mg_enter((work) < MG_NCHW_SERIAL_WORK ? 1 : mg_get_num_threads()); \
        int par_ = (parallel) && nt_ > 1 && count_ >= nt_;                      \
        if (!par_) {                                                            \
            mg_leave();                                                         \
            nt_ = 1;                                                            \
        }                                                                       \
        MG_T *cols_ = mg_conv_alloc((size_t)nt_ * ce_ * sizeof(MG_T));          \
        int rc_ = cols_ ? 0 : -1;                                               \
        if (cols_ && par_) {                                                    \
            mg_team_fork(nt_);                                                  \
            _Pragma("omp parallel num_threads(nt_) reduction(|:rc_)")           \
            {                                                                   \
                mg_team_clock tc_ = mg_team_enter();                            \
                MG_T *col = cols_ + (size_t)mg_thread_id() * ce_;               \
                _Pragma("omp for schedule(static)")                             \
                for (ptrdiff_t n = 0; n < count_; n++) rc_ |= (item);           \
                mg_team_leave(&tc_);                                            \
            }                                                                   \
        } else if (cols_) {                                                     \
            for (ptrdiff_t n = 0; n < count_; n++) {                            \
                MG_T *col = cols_;                                              \
                rc_ |= (item);                                                  \
            }                                                                   \
        }                                                                       \
        if (par_) mg_leave();                                                   \
        free(cols_);                                                            \
        (rc) = rc_ ? -1 : 0;                                                    \
    } while (0)

/* Whether groups of nb images go in parallel, one thread each: when a
 * group's GEMM takes fewer multiply-adds than MG_CONV_GROUP_WORK (larger
 * GEMMs take the team, one group after another). */
static int FN(conv_groups_parallel)(const mg_conv2d_geom *g, ptrdiff_t nb)
{
    return (double)g->oc * g->c * g->kh * g->kw * nb * g->oh * g->ow < MG_CONV_GROUP_WORK;
}

#include "mg_conv_gemm.h"

int FN(mg_conv2d)(const mg_conv2d_geom *g, const MG_T *x, const MG_T *w, const MG_T *b,
                  int relu, MG_T *y)
{
    mg_conv2d_geom r;
    ptrdiff_t i0, j0;
    if (FN(conv_window)(g, &r, &i0, &j0)) {
        int finite, rc = 0;
        MG_T *ws = FN(conv_window_weight)(g, &r, i0, j0, w, &finite);
        if (!ws) return -1;
        if (finite && (!r.kh || !r.kw)) { /* every output is the bias */
            const ptrdiff_t ohw = g->oh * g->ow;
            for (ptrdiff_t q = 0; q < g->n * g->oc; q++) {
                MG_T v = b ? b[q % g->oc] : 0;
                v = relu && v <= 0 ? 0 : v;
                for (ptrdiff_t t = 0; t < ohw; t++) y[q * ohw + t] = v;
            }
        } else if (finite) {
            rc = FN(mg_conv2d)(&r, x, ws, b, relu, y);
        }
        free(ws);
        if (finite) return rc;
    }
    if (FN(conv_dense)(g)) { /* y (n x oc) = x (n x K) @ w.T, K = c h w */
        const ptrdiff_t K = g->c * g->h * g->w;
        if (b)
            for (ptrdiff_t n = 0; n < g->n; n++) memcpy(y + n * g->oc, b, g->oc * sizeof(MG_T));
        return FN(conv_gemm)(g->n, g->oc, K, x, K, 1, w, 1, K, y, g->oc, b != NULL, relu);
    }
    if (FN(conv_folded_ok)(g)) return FN(conv_fwd_folded)(g, x, w, b, relu, y);
    const ptrdiff_t nb = FN(conv_batch_images)(g);
    const ptrdiff_t xs = g->c * g->h * g->w, ys = g->oc * g->oh * g->ow;
    int rc;
    if (nb > 1) {
        const ptrdiff_t K = g->c * g->kh * g->kw, ohw = g->oh * g->ow;
        ptrdiff_t *taps = FN(conv_taps)(g);
        if (!taps) return -1;
        MG_CONV_EACH((g->n + nb - 1) / nb, (size_t)(K + g->oc) * nb * ohw, FN(conv_work)(g),
                     FN(conv_groups_parallel)(g, nb), rc,
                     FN(conv_fwd_group)(g, taps, nb, n * nb, x, w, b, relu, y, col));
        free(taps);
        return rc;
    }
    MG_CONV_EACH(g->n, FN(conv_col_elems)(g), FN(conv_work)(g), 1, rc,
                 FN(conv_fwd_image)(g, x + n * xs, w, b, relu, y + n * ys, col));
    return rc;
}

int FN(mg_conv2d_backward_input)(const mg_conv2d_geom *g, const MG_T *dy, const MG_T *w,
                                 MG_T *dx)
{
    mg_conv2d_geom r;
    ptrdiff_t i0, j0;
    if (FN(conv_window)(g, &r, &i0, &j0)) {
        if (!r.kh || !r.kw) {
            memset(dx, 0, (size_t)(g->n * g->c * g->h * g->w) * sizeof(MG_T));
            return 0;
        }
        /* (the input gradient reads no padding: any weight will do) */
        MG_T *ws = FN(conv_window_weight)(g, &r, i0, j0, w, NULL);
        int rc = ws ? FN(mg_conv2d_backward_input)(&r, dy, ws, dx) : -1;
        free(ws);
        return rc;
    }
    if (FN(conv_dense)(g)) { /* dx (n x K) = dy (n x oc) @ w */
        const ptrdiff_t K = g->c * g->h * g->w;
        return FN(conv_gemm)(g->n, K, g->oc, dy, g->oc, 1, w, K, 1, dx, K, 0, 0);
    }
    if (FN(conv_bwd_input_folded_ok)(g))
        return FN(conv_bwd_input_folded)(g, dy, w, dx);
    const ptrdiff_t nb = FN(conv_batch_images)(g);
    const ptrdiff_t xs = g->c * g->h * g->w, ys = g->oc * g->oh * g->ow;
    int rc;
    if (nb > 1) {
        const ptrdiff_t K = g->c * g->kh * g->kw, ohw = g->oh * g->ow;
        ptrdiff_t *taps = FN(conv_taps)(g);
        if (!taps) return -1;
        memset(dx, 0, (size_t)(g->n * xs) * sizeof(MG_T));
        MG_CONV_EACH((g->n + nb - 1) / nb, (size_t)(K + g->oc) * nb * ohw, FN(conv_work)(g),
                     FN(conv_groups_parallel)(g, nb), rc,
                     FN(conv_bwd_input_group)(g, taps, nb, n * nb, dy, w, dx, col));
        free(taps);
        return rc;
    }
    MG_CONV_EACH(g->n, FN(conv_col_elems)(g), FN(conv_work)(g), 1, rc,
                 FN(conv_bwd_input_image)(g, dy + n * ys, w, dx + n * xs, col));
    return rc;
}

/* Images are summed in `parts` fixed groups, each into its own buffer, then the groups are added in order (after dw when accumulating). */
int FN(mg_conv2d_backward_weight)(const mg_conv2d_geom *g, const MG_T *x, const MG_T *dy,
                                  MG_T *dw, int accumulate)
{
    const ptrdiff_t K = g->c * g->kh * g->kw, wsize = g->oc * K;
    if (g->n == 0) {
        if (!accumulate) memset(dw, 0, (size_t)wsize * sizeof(MG_T));
        return 0;
    }
    mg_conv2d_geom r;
    ptrdiff_t i0, j0;
    /* the window's gradient, zeros elsewhere (NaN there where grad_out has a
     * NaN or inf: not taken then) */
    if (FN(conv_window)(g, &r, &i0, &j0) &&
        FN(conv_all_finite)(dy, g->n * g->oc * g->oh * g->ow)) {
        const ptrdiff_t planes = g->oc * g->c, rk = r.kh * r.kw;
        MG_T *ws = mg_conv_alloc((size_t)(planes * (rk ? rk : 1)) * sizeof(MG_T));
        if (!ws) return -1;
        int rc = rk ? FN(mg_conv2d_backward_weight)(&r, x, dy, ws, 0) : 0;
        if (!rc)
            MG_NCHW_FOR(g->oc, wsize, o, {
                MG_T *dwo = dw + o * K;
                if (!accumulate) memset(dwo, 0, (size_t)K * sizeof(MG_T));
                if (rk == 1) { /* one tap: a strided add */
                    MG_T *dst = dw + i0 * g->kw + j0;
                    const ptrdiff_t kk = g->kh * g->kw;
                    for (ptrdiff_t q = o * g->c; q < (o + 1) * g->c; q++) dst[q * kk] += ws[q];
                } else {
                    for (ptrdiff_t q = o * g->c; q < (o + 1) * g->c && rk; q++)
                        for (ptrdiff_t i = 0; i < r.kh; i++)
                            for (ptrdiff_t j = 0; j < r.kw; j++)
                                dw[(q * g->kh + i0 + i) * g->kw + j0 + j] +=
                                    ws[(q * r.kh + i) * r.kw + j];
                }
            });
        free(ws);
        return rc;
    }
    if (FN(conv_dense)(g)) /* dw (oc x K) (+)= dy.T @ x */
        return FN(conv_gemm)(g->oc, K, g->n, dy, 1, g->oc, x, K, 1, dw, K, accumulate, 0);
    if (FN(conv_folded_ok)(g)) return FN(conv_bwd_weight_folded)(g, x, dy, dw, accumulate);
    ptrdiff_t parts = g->n < MG_CONV_PARTS ? g->n : MG_CONV_PARTS;
    ptrdiff_t fit = MG_CONV_PART_ELEMS / (wsize ? wsize : 1);
    if (parts > fit) parts = fit < 1 ? 1 : fit;
    /* a part of few positions would be a GEMM bound by storing its dw */
    const ptrdiff_t few = g->n * g->oh * g->ow / MG_CONV_BATCH_COLS;
    if (parts > few) parts = few < 1 ? 1 : few;
    const size_t ce = FN(conv_dw_elems)(g);
    const ptrdiff_t cs = FN(conv_dw_transposed)(g) ? g->oc : 1;
    /* one part in dw's own layout: the products write dw itself */
    const int direct = parts == 1 && cs == 1 && !accumulate;
    MG_T *part = direct ? dw : mg_conv_alloc((size_t)parts * wsize * sizeof(MG_T));
    if (!part) return -1;
    const int batched = FN(conv_dw_images)(g) > 1;
    ptrdiff_t *taps = batched ? FN(conv_taps)(g) : NULL;
    int rc = -1;
    if (taps || !batched)
        MG_CONV_EACH(parts, ce, FN(conv_work)(g), 1, rc,
                     FN(conv_bwd_weight_images)(g, taps, x, dy, g->n * n / parts,
                                                g->n * (n + 1) / parts, part + n * wsize, col));
    free(taps);
    if (!rc && !direct && cs == 1)
        MG_NCHW_FOR(g->oc, wsize * parts, o, {
            MG_T *d = dw + o * K;
            const MG_T *src = part + o * K;
            if (accumulate)
                for (ptrdiff_t k = 0; k < K; k++) d[k] += src[k];
            else
                memcpy(d, src, (size_t)K * sizeof(MG_T));
            for (ptrdiff_t p = 1; p < parts; p++)
                for (ptrdiff_t k = 0; k < K; k++) d[k] += src[p * wsize + k];
        });
    else if (!rc && !direct)
        MG_NCHW_FOR((g->oc + 15) / 16, wsize * parts, ob, {
            /* the parts hold dw's transpose: 16 x 16 tiles, so that rows k of
             * the parts and rows o of dw are each read or written a line at a time */
            const ptrdiff_t o0 = ob * 16, o1 = o0 + 16 < g->oc ? o0 + 16 : g->oc;
            for (ptrdiff_t k0 = 0; k0 < K; k0 += 16) {
                const ptrdiff_t k1 = k0 + 16 < K ? k0 + 16 : K;
                MG_T t[16][16];
                for (ptrdiff_t o = o0; o < o1; o++)
                    for (ptrdiff_t k = k0; k < k1; k++)
                        t[o - o0][k - k0] = accumulate ? dw[o * K + k] : 0;
                for (ptrdiff_t p = 0; p < parts; p++)
                    for (ptrdiff_t k = k0; k < k1; k++)
                        for (ptrdiff_t o = o0; o < o1; o++)
                            t[o - o0][k - k0] += part[p * wsize + o + k * cs];
                for (ptrdiff_t o = o0; o < o1; o++)
                    memcpy(dw + o * K + k0, t[o - o0], (size_t)(k1 - k0) * sizeof(MG_T));
            }
        });
    if (!direct) free(part);
    return rc ? -1 : 0;
}

#undef MG_CONV_EACH
