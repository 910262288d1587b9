/* Batch norm over NCHW for one element type (MG_T, MG_S), and per-channel
 * sums. One channel per work item: its statistics are summed by one thread,
 * image by image, in double, over eight fixed lanes (so the compiler can
 * vectorize without reordering anything); planes of one element (x of shape
 * (n, c), 1x1 maps) go in fixed blocks of MG_BN_ROWS channels side by side
 * instead. Deviations from the mean are
 * taken in double too: in float32 they would lose digits when the mean is
 * large next to the spread. */

#define MG_LANES 8

/* Eight lanes as one vector (in double for the sums), so each loop below
 * vectorizes whatever the instruction set (and MG_NCHW_CLONES compiles them
 * for AVX-512 too); the lanes are added in the same order either way. */
typedef MG_T FN(t8) __attribute__((vector_size(MG_LANES * sizeof(MG_T))));
typedef double FN(d8) __attribute__((vector_size(MG_LANES * sizeof(double))));
typedef int64_t FN(m8) __attribute__((vector_size(MG_LANES * sizeof(double))));

/* (Vectors pass through macros and pointers: an AVX-512-sized vector as a
 * value would change the default clone's calling convention.) */
#define MG_BN_LOAD(dst, p)                                                      \
    do {                                                                        \
        FN(t8) t_;                                                              \
        memcpy(&t_, (p), sizeof t_);                                            \
        (dst) = __builtin_convertvector(t_, FN(d8));                            \
    } while (0)

#define MG_BN_STORE(p, v)                                                       \
    do {                                                                        \
        FN(t8) t_ = __builtin_convertvector((v), FN(t8));                       \
        memcpy((p), &t_, sizeof t_);                                            \
    } while (0)

/* dst = g where y > 0, else 0 (y NULL: g) */
#define MG_BN_MASKED(dst, g, y, i)                                              \
    do {                                                                        \
        MG_BN_LOAD(dst, (g) + (i));                                             \
        if (y) {                                                                \
            FN(d8) y_;                                                          \
            MG_BN_LOAD(y_, (y) + (i));                                          \
            (dst) = (FN(d8))((FN(m8))(dst) & (y_ > (FN(d8)){0}));               \
        }                                                                       \
    } while (0)

/* grad_out at i, or 0 where the fused ReLU's output is not positive (y NULL:
 * grad_out), by a select on the bits: a branch on a ReLU's mask would be
 * mispredicted half the time. */
static inline double FN(bn_g)(const MG_T *dy, const MG_T *y, ptrdiff_t i)
{
    double g = dy[i];
    if (!y) return g;
    uint64_t bits;
    const uint64_t keep = -(uint64_t)(y[i] > 0);
    memcpy(&bits, &g, sizeof bits);
    bits &= keep;
    memcpy(&g, &bits, sizeof g);
    return g;
}

static double FN(lanes_total)(const FN(d8) *acc, double tail)
{
    double s = 0;
    for (int k = 0; k < MG_LANES; k++) s += (*acc)[k];
    return s + tail;
}

/* Each function below walks one channel: `images` planes of hw elements,
 * `stride` apart, summing each plane over the lanes and a scalar tail, then
 * the planes in order. Planes under MG_LANES elements have only the tail
 * (the lanes would add zeros): ResNet's 1x1 and 2x2 maps, where a call per
 * plane had cost 10x PyTorch's time. */

MG_NCHW_CLONES static double FN(channel_sum)(const MG_T *x, ptrdiff_t images,
                                             ptrdiff_t stride, ptrdiff_t hw)
{
    double s = 0;
    for (ptrdiff_t im = 0; im < images; im++, x += stride) {
        double tail = 0;
        ptrdiff_t i = 0;
        if (hw >= MG_LANES) {
            FN(d8) acc = {0};
            for (; i + MG_LANES <= hw; i += MG_LANES) {
                FN(d8) v;
                MG_BN_LOAD(v, x + i);
                acc += v;
            }
            for (ptrdiff_t j = i; j < hw; j++) tail += x[j];
            s += FN(lanes_total)(&acc, tail);
            continue;
        }
        for (; i < hw; i++) tail += x[i];
        s += tail;
    }
    return s;
}

/* sum of (x - mean)^2 */
MG_NCHW_CLONES static double FN(channel_sqdev)(const MG_T *x, ptrdiff_t images,
                                               ptrdiff_t stride, ptrdiff_t hw, double mean)
{
    double s = 0;
    for (ptrdiff_t im = 0; im < images; im++, x += stride) {
        double tail = 0;
        ptrdiff_t i = 0;
        if (hw >= MG_LANES) {
            FN(d8) acc = {0};
            for (; i + MG_LANES <= hw; i += MG_LANES) {
                FN(d8) d;
                MG_BN_LOAD(d, x + i);
                d -= mean;
                acc += d * d;
            }
            for (ptrdiff_t j = i; j < hw; j++) tail += (x[j] - mean) * (x[j] - mean);
            s += FN(lanes_total)(&acc, tail);
            continue;
        }
        for (; i < hw; i++) tail += (x[i] - mean) * (x[i] - mean);
        s += tail;
    }
    return s;
}

/* y = (x - mean) * scale + b, then max(y, 0) if relu. */
MG_NCHW_CLONES static void FN(channel_normalize)(const MG_T *x, ptrdiff_t images,
                                                 ptrdiff_t stride, ptrdiff_t hw, double mean,
                                                 double scale, double b, int relu, MG_T *y)
{
    for (ptrdiff_t im = 0; im < images; im++, x += stride, y += stride) {
        ptrdiff_t i = 0;
        for (; i + MG_LANES <= hw; i += MG_LANES) {
            FN(d8) v;
            MG_BN_LOAD(v, x + i);
            v = (v - mean) * scale + b;
            if (relu) v = (FN(d8))((FN(m8))v & (v > (FN(d8)){0}));
            MG_BN_STORE(y + i, v);
        }
        for (; i < hw; i++) {
            MG_T v = (MG_T)((x[i] - mean) * scale + b);
            y[i] = relu && !(v > 0) ? 0 : v;
        }
    }
}

/* *sg = sum g, *sgx = sum g * (x - mean), g = dy masked by y > 0 when y. */
MG_NCHW_CLONES static void FN(channel_grad_sums)(const MG_T *dy, const MG_T *y, const MG_T *x,
                                                 ptrdiff_t images, ptrdiff_t stride,
                                                 ptrdiff_t hw, double mean, double *sg,
                                                 double *sgx)
{
    double sa = 0, sb = 0;
    for (ptrdiff_t im = 0; im < images; im++, dy += stride, x += stride, y += y ? stride : 0) {
        double ta = 0, tb = 0;
        ptrdiff_t i = 0;
        if (hw >= MG_LANES) {
            FN(d8) a = {0}, b = {0};
            for (; i + MG_LANES <= hw; i += MG_LANES) {
                FN(d8) gv, xv;
                MG_BN_MASKED(gv, dy, y, i);
                MG_BN_LOAD(xv, x + i);
                a += gv;
                b += gv * (xv - mean);
            }
            for (ptrdiff_t j = i; j < hw; j++) {
                double gv = FN(bn_g)(dy, y, j);
                ta += gv;
                tb += gv * ((double)x[j] - mean);
            }
            sa += FN(lanes_total)(&a, ta);
            sb += FN(lanes_total)(&b, tb);
            continue;
        }
        for (; i < hw; i++) {
            double gv = FN(bn_g)(dy, y, i);
            ta += gv;
            tb += gv * ((double)x[i] - mean);
        }
        sa += ta;
        sb += tb;
    }
    *sg = sa;
    *sgx = sb;
}

/* dx = k * (g - (x - mean) * u - sub), g as above. */
MG_NCHW_CLONES static void FN(channel_grad_x)(const MG_T *dy, const MG_T *y, const MG_T *x,
                                              ptrdiff_t images, ptrdiff_t stride, ptrdiff_t hw,
                                              double mean, double k, double u, double sub,
                                              MG_T *dx)
{
    for (ptrdiff_t im = 0; im < images;
         im++, dy += stride, x += stride, dx += stride, y += y ? stride : 0) {
        ptrdiff_t i = 0;
        for (; i + MG_LANES <= hw; i += MG_LANES) {
            FN(d8) gv, xv;
            MG_BN_MASKED(gv, dy, y, i);
            MG_BN_LOAD(xv, x + i);
            MG_BN_STORE(dx + i, k * (gv - (xv - mean) * u - sub));
        }
        for (; i < hw; i++) {
            double gv = FN(bn_g)(dy, y, i);
            dx[i] = (MG_T)(k * (gv - ((double)x[i] - mean) * u - sub));
        }
    }
}

/* One-element planes (x of shape (n, c), or 1x1 maps): channels
 * [c0, c0 + cb) side by side, image by image, so the loops run along the
 * channels (each channel's sums still in image order). */
#define MG_BN_ROWS 64

MG_NCHW_CLONES static void FN(rows_stats)(ptrdiff_t n, ptrdiff_t c, ptrdiff_t cb,
                                          const MG_T *x, double *mean, double *var)
{
    for (ptrdiff_t k = 0; k < cb; k++) mean[k] = var[k] = 0;
    for (ptrdiff_t i = 0; i < n; i++)
        for (ptrdiff_t k = 0; k < cb; k++) mean[k] += x[i * c + k];
    for (ptrdiff_t k = 0; k < cb; k++) mean[k] /= (double)n;
    for (ptrdiff_t i = 0; i < n; i++)
        for (ptrdiff_t k = 0; k < cb; k++) {
            const double d = x[i * c + k] - mean[k];
            var[k] += d * d;
        }
    for (ptrdiff_t k = 0; k < cb; k++) var[k] /= (double)n;
}

MG_NCHW_CLONES static void FN(rows_normalize)(ptrdiff_t n, ptrdiff_t c, ptrdiff_t cb,
                                              const MG_T *x, const double *mean,
                                              const double *scale, const double *shift,
                                              int relu, MG_T *y)
{
    for (ptrdiff_t i = 0; i < n; i++)
        for (ptrdiff_t k = 0; k < cb; k++) {
            const MG_T v = (MG_T)((x[i * c + k] - mean[k]) * scale[k] + shift[k]);
            y[i * c + k] = relu && !(v > 0) ? 0 : v;
        }
}

/* sg = sum g, sgx = sum g * (x - mean), then dx = k * (g - (x - mean) * u - sub)
 * with k, u, sub from `coef` (3 x cb), which it calls between the two. */
MG_NCHW_CLONES static void FN(rows_grad)(ptrdiff_t n, ptrdiff_t c, ptrdiff_t cb,
                                         const MG_T *dy, const MG_T *y, const MG_T *x,
                                         const double *mean, double *sg, double *sgx,
                                         int pass, const double *coef, MG_T *dx)
{
    if (pass == 0) {
        for (ptrdiff_t k = 0; k < cb; k++) sg[k] = sgx[k] = 0;
        for (ptrdiff_t i = 0; i < n; i++)
            for (ptrdiff_t k = 0; k < cb; k++) {
                const ptrdiff_t e = i * c + k;
                const double g = FN(bn_g)(dy, y, e);
                sg[k] += g;
                sgx[k] += g * ((double)x[e] - mean[k]);
            }
        return;
    }
    for (ptrdiff_t i = 0; i < n; i++)
        for (ptrdiff_t k = 0; k < cb; k++) {
            const ptrdiff_t e = i * c + k;
            const double g = FN(bn_g)(dy, y, e);
            dx[e] = (MG_T)(coef[k] * (g - ((double)x[e] - mean[k]) * coef[cb + k] -
                                      coef[2 * cb + k]));
        }
}

void FN(mg_channel_sum)(ptrdiff_t n, ptrdiff_t c, ptrdiff_t hw, const MG_T *x, MG_T *out)
{
    MG_NCHW_FOR(c, n * c * hw, ch, out[ch] = (MG_T)FN(channel_sum)(x + ch * hw, n, c * hw, hw));
}

void FN(mg_batch_norm)(ptrdiff_t n, ptrdiff_t c, ptrdiff_t hw, const MG_T *x,
                       const MG_T *weight, const MG_T *bias, MG_T *running_mean,
                       MG_T *running_var, int training, double momentum, double eps,
                       int relu, MG_T *y, MG_T *save_mean, MG_T *save_invstd)
{
    const double m = (double)n * hw;
    if (hw == 1) {
        MG_NCHW_FOR((c + MG_BN_ROWS - 1) / MG_BN_ROWS, n * c, blk, {
            const ptrdiff_t c0 = blk * MG_BN_ROWS;
            const ptrdiff_t cb = c - c0 < MG_BN_ROWS ? c - c0 : MG_BN_ROWS;
            double mean[MG_BN_ROWS], var[MG_BN_ROWS], scale[MG_BN_ROWS], shift[MG_BN_ROWS];
            if (training) FN(rows_stats)(n, c, cb, x + c0, mean, var);
            for (ptrdiff_t k = 0; k < cb; k++) {
                const ptrdiff_t ch = c0 + k;
                if (training) {
                    if (running_mean)
                        running_mean[ch] = (MG_T)((1 - momentum) * running_mean[ch] +
                                                  momentum * mean[k]);
                    if (running_var)
                        running_var[ch] = (MG_T)((1 - momentum) * running_var[ch] +
                                                 momentum * var[k] * m / (m - 1));
                } else {
                    mean[k] = running_mean[ch];
                    var[k] = running_var[ch];
                }
                const double invstd = 1 / sqrt(var[k] + eps);
                save_mean[ch] = (MG_T)mean[k];
                save_invstd[ch] = (MG_T)invstd;
                scale[k] = invstd * (weight ? weight[ch] : 1);
                shift[k] = bias ? bias[ch] : 0;
            }
            FN(rows_normalize)(n, c, cb, x + c0, mean, scale, shift, relu, y + c0);
        });
        return;
    }
    MG_NCHW_FOR(c, n * c * hw, ch, {
        double mean, var;
        if (training) {
            mean = FN(channel_sum)(x + ch * hw, n, c * hw, hw) / m;
            var = FN(channel_sqdev)(x + ch * hw, n, c * hw, hw, mean) / m;
            if (running_mean)
                running_mean[ch] = (MG_T)((1 - momentum) * running_mean[ch] + momentum * mean);
            if (running_var)
                running_var[ch] = (MG_T)((1 - momentum) * running_var[ch] +
                                         momentum * var * m / (m - 1));
        } else {
            mean = running_mean[ch];
            var = running_var[ch];
        }
        double invstd = 1 / sqrt(var + eps);
        save_mean[ch] = (MG_T)mean;
        save_invstd[ch] = (MG_T)invstd;
        double scale = invstd * (weight ? weight[ch] : 1);
        const double b = bias ? bias[ch] : 0;
        FN(channel_normalize)(x + ch * hw, n, c * hw, hw, mean, scale, b, relu, y + ch * hw);
    });
}

void FN(mg_batch_norm_backward)(ptrdiff_t n, ptrdiff_t c, ptrdiff_t hw, const MG_T *dy,
                                const MG_T *x, const MG_T *weight, const MG_T *save_mean,
                                const MG_T *save_invstd, int training, const MG_T *y,
                                MG_T *dx, MG_T *dweight, MG_T *dbias)
{
    const double m = (double)n * hw;
    if (hw == 1) {
        MG_NCHW_FOR((c + MG_BN_ROWS - 1) / MG_BN_ROWS, n * c, blk, {
            const ptrdiff_t c0 = blk * MG_BN_ROWS;
            const ptrdiff_t cb = c - c0 < MG_BN_ROWS ? c - c0 : MG_BN_ROWS;
            double mean[MG_BN_ROWS], sg[MG_BN_ROWS], sgx[MG_BN_ROWS], coef[3 * MG_BN_ROWS];
            for (ptrdiff_t k = 0; k < cb; k++) mean[k] = save_mean[c0 + k];
            FN(rows_grad)(n, c, cb, dy + c0, y ? y + c0 : NULL, x + c0, mean, sg, sgx, 0,
                          NULL, NULL);
            for (ptrdiff_t k = 0; k < cb; k++) {
                const ptrdiff_t ch = c0 + k;
                const double invstd = save_invstd[ch], gamma = weight ? weight[ch] : 1;
                if (dweight) dweight[ch] = (MG_T)(sgx[k] * invstd);
                if (dbias) dbias[ch] = (MG_T)sg[k];
                coef[k] = gamma * invstd;
                coef[cb + k] = training ? invstd * invstd * sgx[k] / m : 0;
                coef[2 * cb + k] = training ? sg[k] / m : 0;
            }
            FN(rows_grad)(n, c, cb, dy + c0, y ? y + c0 : NULL, x + c0, mean, sg, sgx, 1, coef,
                          dx + c0);
        });
        return;
    }
    MG_NCHW_FOR(c, n * c * hw, ch, {
        const double mean = save_mean[ch], invstd = save_invstd[ch];
        const double gamma = weight ? weight[ch] : 1;
        /* with a fused ReLU, g = grad_out where y > 0, else 0 */
        double sg, sgx;
        FN(channel_grad_sums)(dy + ch * hw, y ? y + ch * hw : NULL, x + ch * hw, n, c * hw, hw,
                              mean, &sg, &sgx);
        if (dweight) dweight[ch] = (MG_T)(sgx * invstd);
        if (dbias) dbias[ch] = (MG_T)sg;
        /* training: dx = gamma*invstd * (g - sg/m - (x - mean) * invstd^2 * sgx/m);
         * eval: dx = gamma*invstd * g */
        const double k = gamma * invstd;
        const double u = training ? invstd * invstd * sgx / m : 0;
        const double sub = training ? sg / m : 0;
        FN(channel_grad_x)(dy + ch * hw, y ? y + ch * hw : NULL, x + ch * hw, n, c * hw, hw,
                           mean, k, u, sub, dx + ch * hw);
    });
}

#undef MG_LANES
#undef MG_BN_ROWS
#undef MG_BN_LOAD
#undef MG_BN_STORE
#undef MG_BN_MASKED
