/* Stride-1 conv2d and its two gradients as implicit GEMMs over the whole
 * batch, for one element type (included by mg_conv_tmpl.h; MG_T, FN, OPS as
 * there).
 *
 * Each image is expanded (conv_expand_image) to NHWC rows of its zero-padded
 * input with every position widened to the kw taps of a kernel row: element
 * (r, q, j, channel) = padded x at (r, q + j dw), r < hp, q < ow. For kernel
 * row i, the im2col matrix of the output positions p = r * ow + q is then
 * read in place: row p, column k = j * c + channel at p * kw * c + k, shifted
 * by i dh ow positions -- no im2col buffer, kw (not kh kw) copies of x, and
 * no position computed in vain.
 *   forward (and the input gradient, a forward convolution of grad_out):
 *     the micro-kernel's rows (mr, broadcast) are output positions and its
 *     columns (nr = 32 floats, vectors) output channels, so 32, 64 and 128
 *     channels fill its tiles exactly; ops->macro_direct reads mr positions
 *     in place, kh passes accumulate in a tile buffer of a few slivers that
 *     is transposed in registers into NCHW y (+ bias, ReLU). The rows of a
 *     sliver across two images are first copied side by side.
 *   weight gradient: dw.T (rows k, columns output channels) += the expanded
 *     image read transposed in place (rows k, positions kw * c apart) times
 *     dy.T packed by ops->pack_bt, image by image.
 * Every output is computed by one thread in a fixed order, so results do not
 * depend on the thread count. */

/* This path is taken for stride 1 when an expanded image stays modest. */
static int FN(conv_folded_ok)(const mg_conv2d_geom *g)
{
    if (g->sh != 1 || g->sw != 1 || g->ph < 0 || g->pw < 0 || g->n < 1 || g->oh < 1 ||
        g->ow < 1)
        return 0;
    double hp = (double)g->h + 2 * g->ph, wp = (double)g->w + 2 * g->pw;
    double waste = hp * wp / ((double)g->oh * g->ow);
    /* each thread keeps a few expanded images */
    if (hp * g->ow * g->kw * g->c * sizeof(MG_T) > MG_CONV_EXPAND_BYTES) return 0;
    /* With fewer than 32 output channels most vector lanes would be
     * padding, and with a short K the tile buffer's loads and stores weigh:
     * the per-image im2col tiles are faster there. (Input gradient of
     * 64x32x14x14 -> 64, 32 channels out: 5.69 -> 4.39 ms folded.) */
    return waste < 2.5 && g->kh * g->kw > 1 && g->oc >= 32 && g->c * g->kh * g->kw >= 32;
}

/* 64-byte vectors of MG_T for the transposes between NCHW and the GEMM's
 * position-major layouts (512-bit registers where the AVX-512 clone runs). */
typedef MG_T FN(cv) __attribute__((vector_size(64)));
typedef __typeof__((FN(cv)){0} < (FN(cv)){0}) FN(cvi);
#define MG_CVL ((int)(64 / sizeof(MG_T)))

/* Transposes the MG_CVL x MG_CVL block r in registers (log2 MG_CVL stages of
 * two-source shuffles). */
static inline __attribute__((always_inline)) void FN(cv_transpose)(FN(cv) r[MG_CVL])
{
#pragma GCC unroll 4
    for (int h = MG_CVL / 2; h >= 1; h /= 2) {
        FN(cvi) lo, hi;
#pragma GCC unroll 16
        for (int c = 0; c < MG_CVL; c++) {
            lo[c] = (c & h) ? MG_CVL + c - h : c;
            hi[c] = (c & h) ? MG_CVL + c : c + h;
        }
#pragma GCC unroll 16
        for (int i = 0; i < MG_CVL; i++)
            if (!(i & h)) {
                FN(cv) a = r[i], q = r[i + h];
                r[i] = __builtin_shuffle(a, q, lo);
                r[i + h] = __builtin_shuffle(a, q, hi);
            }
    }
}

/* One image of x as the GEMMs read it: its padded rows with each position
 * expanded to the kw taps of a kernel row, element (r, q, j, channel) =
 * padded x at (r, q + j dw), r < hp, q < ow (kw * c values a position).
 * Blocks of MG_CVL channels x MG_CVL input positions are transposed in
 * registers; each position's vector is stored once per tap that reads it. */
MG_NCHW_CLONES static void FN(conv_expand_image)(const mg_conv2d_geom *g, const MG_T *x,
                                                ptrdiff_t hp, MG_T *xe)
{
    const ptrdiff_t C = g->c, kw = g->kw, ow = g->ow, w = g->w, hw = g->h * w;
    const ptrdiff_t kp = kw * C, c_full = C / MG_CVL * MG_CVL;
    /* zeros: the padding rows, and the taps of a position that fall in the
     * padding columns */
    memset(xe, 0, (size_t)(g->ph * ow * kp) * sizeof(MG_T));
    memset(xe + (g->ph + g->h) * ow * kp, 0,
           (size_t)((hp - g->ph - g->h) * ow * kp) * sizeof(MG_T));
    for (ptrdiff_t q = 0; q < ow; q++)
        for (ptrdiff_t j = 0; j < kw; j++) {
            const ptrdiff_t col = q + j * g->dw - g->pw;
            if (col >= 0 && col < w) continue;
            for (ptrdiff_t r = g->ph; r < g->ph + g->h; r++)
                memset(xe + (r * ow + q) * kp + j * C, 0, (size_t)C * sizeof(MG_T));
        }
    /* input position p = ir * w + col goes to row ir + ph, positions
     * q = col + pw - j dw that exist (one for each tap j reading it) */
    ptrdiff_t p0 = 0, ir = 0, col = 0;
    for (; p0 + MG_CVL <= hw; p0 += MG_CVL) {
        MG_T *row[MG_CVL];
        ptrdiff_t cols[MG_CVL];
        for (int i = 0; i < MG_CVL; i++) {
            row[i] = xe + (ir + g->ph) * ow * kp;
            cols[i] = col + g->pw;
            if (++col == w) col = 0, ir++;
        }
        for (ptrdiff_t c0 = 0; c0 < c_full; c0 += MG_CVL) {
            FN(cv) r[MG_CVL];
#pragma GCC unroll 16
            for (int i = 0; i < MG_CVL; i++) memcpy(&r[i], x + (c0 + i) * hw + p0, sizeof r[i]);
            FN(cv_transpose)(r);
            for (ptrdiff_t j = 0; j < kw; j++)
#pragma GCC unroll 16
                for (int i = 0; i < MG_CVL; i++) {
                    const ptrdiff_t q = cols[i] - j * g->dw;
                    if (q >= 0 && q < ow) memcpy(row[i] + q * kp + j * C + c0, &r[i], sizeof r[i]);
                }
        }
        for (int i = 0; i < MG_CVL; i++)
            for (ptrdiff_t j = 0; j < kw; j++) {
                const ptrdiff_t q = cols[i] - j * g->dw;
                if (q >= 0 && q < ow)
                    for (ptrdiff_t c = c_full; c < C; c++)
                        row[i][q * kp + j * C + c] = x[c * hw + p0 + i];
            }
    }
    for (ptrdiff_t p = p0; p < hw; p++) {
        for (ptrdiff_t j = 0; j < kw; j++) {
            const ptrdiff_t q = col + g->pw - j * g->dw;
            if (q >= 0 && q < ow)
                for (ptrdiff_t c = 0; c < C; c++)
                    xe[((ir + g->ph) * ow + q) * kp + j * C + c] = x[c * hw + p];
        }
        if (++col == w) col = 0, ir++;
    }
}

/* Output channels [0, oc) of positions t0 + [0, len) of one image (y, oc
 * planes of ohw) from their rows src[t] (+ bias, ReLU): blocks of MG_CVL
 * positions x MG_CVL channels are transposed in registers. */
MG_NCHW_CLONES static void FN(conv_store_nchw)(ptrdiff_t oc, ptrdiff_t ohw, const MG_T **src,
                                              ptrdiff_t len, const MG_T *b, int relu,
                                              MG_T *y)
{
    const ptrdiff_t o_full = oc / MG_CVL * MG_CVL;
    const FN(cv) zero = {0};
    for (ptrdiff_t t0 = 0; t0 < len; t0 += MG_CVL) {
        const int L = (int)(len - t0 < MG_CVL ? len - t0 : MG_CVL);
        for (ptrdiff_t o0 = 0; o0 < o_full; o0 += MG_CVL) {
            FN(cv) r[MG_CVL];
#pragma GCC unroll 16
            for (int i = 0; i < MG_CVL; i++) {
                r[i] = zero;
                if (i < L) memcpy(&r[i], src[t0 + i] + o0, sizeof r[i]);
            }
            FN(cv_transpose)(r);
#pragma GCC unroll 16
            for (int j = 0; j < MG_CVL; j++) {
                FN(cv) v = r[j];
                if (b) v += b[o0 + j];
                if (relu) v = (FN(cv))((FN(cvi))v & ~(FN(cvi))(v <= zero));
                MG_T *d = y + (o0 + j) * ohw + t0;
                if (L == MG_CVL)
                    memcpy(d, &v, sizeof v);
                else
                    for (int i = 0; i < L; i++) d[i] = v[i];
            }
        }
        for (ptrdiff_t o = o_full; o < oc; o++)
            for (int i = 0; i < L; i++) {
                MG_T v = src[t0 + i][o];
                if (b) v += b[o];
                if (relu) v = v <= 0 ? 0 : v; /* NaN stays, as the GEMM's fused ReLU */
                y[o * ohw + t0 + i] = v;
            }
    }
}

/* The output of positions [c0, c1) of the whole batch (rows tmp[col - c0],
 * ldt apart), image by image. */
static void FN(conv_store_block)(const mg_conv2d_geom *g, ptrdiff_t c0, ptrdiff_t c1,
                                 const MG_T *tmp, ptrdiff_t ldt, const MG_T *b, int relu,
                                 const MG_T **rows, MG_T *y)
{
    const ptrdiff_t ohw = g->oh * g->ow;
    for (ptrdiff_t img = c0 / ohw; img * ohw < c1; img++) {
        ptrdiff_t t0 = c0 - img * ohw > 0 ? c0 - img * ohw : 0;
        ptrdiff_t t1 = c1 - img * ohw < ohw ? c1 - img * ohw : ohw;
        for (ptrdiff_t t = t0; t < t1; t++) rows[t - t0] = tmp + (img * ohw + t - c0) * ldt;
        FN(conv_store_nchw)(g->oc, ohw, rows, t1 - t0, b, relu, y + img * g->oc * ohw + t0);
    }
}

/* w (oc, c, kh, kw) packed for the micro-kernel's B operand: for each
 * kernel row i, k = j * c + channel in blocks of kc, slivers of nr output
 * channels. */
static void FN(conv_pack_weight)(const mg_conv2d_geom *g, const MG_T *w, ptrdiff_t kc_block,
                                 ptrdiff_t nr, ptrdiff_t ocp, MG_T *wk)
{
    const ptrdiff_t C = g->c, kp = g->kw * C;
    for (ptrdiff_t i = 0; i < g->kh; i++)
        for (ptrdiff_t pc = 0; pc < kp; pc += kc_block) {
            const ptrdiff_t kc = kp - pc < kc_block ? kp - pc : kc_block;
            MG_T *dst = wk + (i * kp + pc) * ocp;
            for (ptrdiff_t k = pc; k < pc + kc; k++) {
                const MG_T *src = w + (k % C * g->kh + i) * g->kw + k / C;
                MG_T *d = dst + (k - pc) * nr;
                for (ptrdiff_t o0 = 0; o0 < ocp; o0 += nr, d += kc * nr)
                    for (ptrdiff_t o = o0; o < o0 + nr; o++)
                        d[o - o0] = o < g->oc ? src[o * C * g->kh * g->kw] : 0;
            }
        }
}

/* y = conv2d(x, w) + b (ReLU if relu), stride 1. */
static int FN(conv_fwd_folded)(const mg_conv2d_geom *g, const MG_T *x, const MG_T *w,
                               const MG_T *b, int relu, MG_T *y)
{
    const OPS *ops = FN(ops)();
    const ptrdiff_t mr = ops->mr, nr = ops->nr;
    const ptrdiff_t hp = g->h + 2 * g->ph, C = g->c;
    const ptrdiff_t kp = g->kw * C, xs = hp * g->ow * kp, ohw = g->oh * g->ow;
    const ptrdiff_t OC = g->oc, ocp = (OC + nr - 1) / nr * nr;
    const mg_blocking blk = FN(gemm_blocking)((int)mr, (int)nr);
    const ptrdiff_t kc_parts = (kp + blk.kc - 1) / blk.kc;
    const ptrdiff_t kc_block = (kp + kc_parts - 1) / kc_parts;
    const ptrdiff_t cols = g->n * ohw, slivers = (cols + mr - 1) / mr;
    const ptrdiff_t bs = MG_CONV_BLOCK_SLIVERS, blocks = (slivers + bs - 1) / bs;
    /* expanded images a thread keeps: more than a block can span */
    const ptrdiff_t slots = (bs * mr + ohw - 1) / ohw + 2;
    const ptrdiff_t ldt = ocp, tmp_elems = bs * mr * ldt, ap_elems = mr * kc_block;
    const size_t ptr_bytes =
        ((size_t)bs * mr * sizeof(MG_T *) + (size_t)slots * sizeof(ptrdiff_t) + 63) / 64 * 64;
    const size_t per_thread =
        ((size_t)(tmp_elems + 2 * ap_elems + slots * xs) * sizeof(MG_T) + ptr_bytes + 63) / 64 *
        64;

    int nt = FN(conv_work)(g) < MG_NCHW_SERIAL_WORK ? 1 : mg_get_num_threads();
    if (nt > blocks) nt = (int)blocks;
    MG_T *wk = mg_conv_alloc((size_t)(g->kh * kp * ocp) * sizeof(MG_T));
    char *bufs = mg_conv_alloc((size_t)nt * per_thread);
    int rc = -1;
    if (!wk || !bufs) goto done;
    rc = 0;
    FN(conv_pack_weight)(g, w, kc_block, nr, ocp, wk);
    nt = mg_enter(nt);
    mg_team_fork(nt);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        mg_team_clock tc = mg_team_enter();
        /* the pointers first: the element buffers may end off their alignment */
        char *mine = bufs + (size_t)mg_thread_id() * per_thread;
        const MG_T **rows = (const MG_T **)mine;
        ptrdiff_t *held = (ptrdiff_t *)(rows + bs * mr);
        MG_T *tmp = (MG_T *)(mine + ptr_bytes), *ap = tmp + tmp_elems, *edge = ap + ap_elems;
        MG_T *xe = edge + ap_elems;
        for (ptrdiff_t k = 0; k < slots; k++) held[k] = -1;
#pragma omp for schedule(static)
        for (ptrdiff_t blkno = 0; blkno < blocks; blkno++) {
            const ptrdiff_t s0 = blkno * bs, s1 = s0 + bs < slivers ? s0 + bs : slivers;
            const ptrdiff_t c1 = s1 * mr < cols ? s1 * mr : cols;
            for (ptrdiff_t img = s0 * mr / ohw; img * ohw < c1; img++)
                if (held[img % slots] != img) {
                    FN(conv_expand_image)(g, x + img * C * g->h * g->w, hp,
                                          xe + img % slots * xs);
                    held[img % slots] = img;
                }
            for (ptrdiff_t i = 0; i < g->kh; i++) {
                const ptrdiff_t shift = i * g->dh * g->ow * kp;
                for (ptrdiff_t pc = 0; pc < kp; pc += kc_block) {
                    const ptrdiff_t kc = kp - pc < kc_block ? kp - pc : kc_block;
                    const MG_T *bw = wk + (i * kp + pc) * ocp;
                    const int load = i > 0 || pc > 0;
                    for (ptrdiff_t sl = s0; sl < s1; sl++) {
                        const ptrdiff_t col0 = sl * mr, n = cols - col0 < mr ? cols - col0 : mr;
                        const ptrdiff_t t0 = col0 % ohw;
                        const MG_T *xi = xe + col0 / ohw % slots * xs + shift + pc;
                        MG_T *c = tmp + (sl - s0) * mr * ldt;
                        if (n == mr && t0 + mr <= ohw) {
                            ops->macro_direct(mr, OC, kc, xi + t0 * kp, kp, 1, edge, bw, c, ldt,
                                              1, load, NULL, 0);
                            continue;
                        }
                        /* across two images (or the last, short sliver): its
                         * rows side by side, read in place from there */
                        for (ptrdiff_t ii = 0; ii < n; ii++) {
                            const ptrdiff_t col = col0 + ii;
                            memcpy(ap + ii * kc,
                                   xe + col / ohw % slots * xs + col % ohw * kp + shift + pc,
                                   (size_t)kc * sizeof(MG_T));
                        }
                        ops->macro_direct(n, OC, kc, ap, kc, 1, edge, bw, c, ldt, 1, load,
                                          NULL, 0);
                    }
                }
            }
            FN(conv_store_block)(g, s0 * mr, c1, tmp, ldt, b, relu, rows, y);
        }
        mg_team_leave(&tc);
    }
    mg_leave();
done:
    free(wk);
    free(bufs);
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

/* The weight gradient of a stride-1 convolution, implicit GEMM too: dw.T
 * (rows k = (i, j, channel), columns = output channels) += X (k x positions)
 * dy.T (positions x output channels), summed over each image's output
 * positions. Per image, x is expanded to kw copies of its rows, element
 * (r, q, j, channel) = padded x at (r, q + j dw), so for a kernel row i the
 * rows k = (j, channel) of 12 consecutive k are contiguous and a position
 * steps kw * c elements: ops->macro_direct reads X in place, dy's columns are
 * packed (ops->pack_bt). Images are summed in the fixed groups of
 * mg_conv2d_backward_weight, each into its own buffer, the groups in order. */
static int FN(conv_bwd_weight_folded)(const mg_conv2d_geom *g, const MG_T *x, const MG_T *dy,
                                      MG_T *dw, int accumulate)
{
    const OPS *ops = FN(ops)();
    const ptrdiff_t mr = ops->mr, nr = ops->nr;
    const ptrdiff_t C = g->c, OC = g->oc, ocp = (OC + nr - 1) / nr * nr, kw = g->kw;
    const ptrdiff_t hp = g->h + 2 * g->ph, kp = kw * C;
    const ptrdiff_t ohw = g->oh * g->ow, wsize = g->kh * kp * ocp;
    const mg_blocking blk = FN(gemm_blocking)((int)mr, (int)nr);
    const ptrdiff_t kc_parts = (ohw + blk.kc - 1) / blk.kc;
    const ptrdiff_t kc_block = (ohw + kc_parts - 1) / kc_parts;
    ptrdiff_t parts = g->n < MG_CONV_PARTS ? g->n : MG_CONV_PARTS;
    ptrdiff_t fit = MG_CONV_PART_ELEMS / wsize;
    /* adding a part costs about what its product does on MG_CONV_PART_COLS
     * positions: few positions, few parts (but two, for two threads) */
    const ptrdiff_t worth = g->n * ohw / MG_CONV_PART_COLS;
    if (fit > worth) fit = worth < 2 ? 2 : worth;
    if (parts > fit) parts = fit < 1 ? 1 : fit;
    /* dy's packed slivers start on a cache line: the micro-kernel loads them */
    const ptrdiff_t xe_elems = (hp * g->ow * kp + 15) / 16 * 16;
    const size_t per_thread =
        ((size_t)(xe_elems + kc_block * ocp + mr * kc_block) * sizeof(MG_T) + 63) / 64 * 64;
    MG_T *part = mg_conv_alloc((size_t)(parts * wsize) * sizeof(MG_T));
    int nt = mg_enter(FN(conv_work)(g) < MG_NCHW_SERIAL_WORK ? 1 : mg_get_num_threads());
    if (nt > parts) nt = (int)parts;
    char *bufs = mg_conv_alloc((size_t)nt * per_thread);
    int rc = part && bufs ? 0 : -1;
    if (!rc) {
        mg_team_fork(nt);
#pragma omp parallel num_threads(nt) if (nt > 1)
        {
            mg_team_clock tc = mg_team_enter();
            MG_T *xe = (MG_T *)(bufs + (size_t)mg_thread_id() * per_thread);
            MG_T *bp = xe + xe_elems, *edge = bp + kc_block * ocp;
#pragma omp for schedule(static)
            for (ptrdiff_t p = 0; p < parts; p++) {
                MG_T *acc = part + p * wsize;
                const ptrdiff_t first = g->n * p / parts;
                for (ptrdiff_t img = first; img < g->n * (p + 1) / parts; img++) {
                    FN(conv_expand_image)(g, x + img * C * g->h * g->w, hp, xe);
                    const MG_T *dyn = dy + img * OC * ohw;
                    for (ptrdiff_t pc = 0; pc < ohw; pc += kc_block) {
                        const ptrdiff_t kc = ohw - pc < kc_block ? ohw - pc : kc_block;
                        for (ptrdiff_t o0 = 0; o0 < OC; o0 += nr)
                            ops->pack_bt(kc, (int)(OC - o0 < nr ? OC - o0 : nr),
                                         dyn + o0 * ohw + pc, ohw, bp + o0 * kc);
                        /* the part's first product stores, the others add */
                        for (ptrdiff_t i = 0; i < g->kh; i++)
                            ops->macro_direct(kp, OC, kc, xe + (pc + i * g->dh * g->ow) * kp, 1,
                                              kp, edge, bp, acc + i * kp * ocp, ocp, 1,
                                              img > first || pc > 0, NULL, 0);
                    }
                }
            }
            mg_team_leave(&tc);
        }
    }
    mg_leave();
    free(bufs);
    if (!rc) {
        /* the parts added in order into dw (o, c, tap) from rows k = tap * C + c:
         * blocks of channels, so that for each o the block's kk taps are
         * contiguous in dw and its rows' lines stay in L1 from one o to the next */
        const ptrdiff_t kk = g->kh * kw, cb = MG_CONV_SUM_CHANNELS;
        MG_NCHW_FOR((C + cb - 1) / cb, wsize * parts, blk, {
            const ptrdiff_t c0 = blk * cb, c1 = c0 + cb < C ? c0 + cb : C;
            for (ptrdiff_t c = c0; c < c1; c++)
                for (ptrdiff_t t = 0; t < kk; t++) {
                    MG_T *sum = part + (t * C + c) * ocp;
                    for (ptrdiff_t p = 1; p < parts; p++)
                        for (ptrdiff_t o = 0; o < OC; o++) sum[o] += sum[p * wsize + o];
                }
            for (ptrdiff_t o = 0; o < OC; o++)
                for (ptrdiff_t c = c0; c < c1; c++)
                    for (ptrdiff_t t = 0; t < kk; t++) {
                        const MG_T s = part[(t * C + c) * ocp + o];
                        MG_T *d = dw + (o * C + c) * kk + t;
                        *d = accumulate ? *d + s : s;
                    }
        });
    }
    free(part);
    return rc;
}

#undef MG_CVL
