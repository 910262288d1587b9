/* Batch norm over NCHW for one element type (MG_T, MG_S), and per-channel
 * sums. One channel per work item: its statistics are summed by one thread,
 * image by image, in double, over eight fixed lanes (so the compiler can
 * vectorize without reordering anything). Deviations from the mean are
 * taken in double too: in float32 they would lose digits when the mean is
 * large next to the spread. */

#define MG_LANES 8

static double FN(lanes_total)(const double *acc, double tail)
{
    double s = 0;
    for (int k = 0; k < MG_LANES; k++) s += acc[k];
    return s + tail;
}

static double FN(plane_sum)(const MG_T *x, ptrdiff_t n)
{
    double acc[MG_LANES] = {0}, tail = 0;
    ptrdiff_t i = 0;
    for (; i + MG_LANES <= n; i += MG_LANES)
        for (int k = 0; k < MG_LANES; k++) acc[k] += x[i + k];
    for (; i < n; i++) tail += x[i];
    return FN(lanes_total)(acc, tail);
}

/* sum of (x - mean)^2 */
static double FN(plane_sqdev)(const MG_T *x, ptrdiff_t n, double mean)
{
    double acc[MG_LANES] = {0}, tail = 0;
    ptrdiff_t i = 0;
    for (; i + MG_LANES <= n; i += MG_LANES)
        for (int k = 0; k < MG_LANES; k++) {
            double d = x[i + k] - mean;
            acc[k] += d * d;
        }
    for (; i < n; i++) tail += (x[i] - mean) * (x[i] - mean);
    return FN(lanes_total)(acc, tail);
}

/* *sg += sum g, *sgx += sum g * (x - mean). */
static void FN(plane_grad_sums)(const MG_T *g, const MG_T *x, ptrdiff_t n, double mean,
                                double *sg, double *sgx)
{
    double a[MG_LANES] = {0}, b[MG_LANES] = {0}, ta = 0, tb = 0;
    ptrdiff_t i = 0;
    for (; i + MG_LANES <= n; i += MG_LANES)
        for (int k = 0; k < MG_LANES; k++) {
            double gv = g[i + k];
            a[k] += gv;
            b[k] += gv * ((double)x[i + k] - mean);
        }
    for (; i < n; i++) {
        ta += g[i];
        tb += g[i] * ((double)x[i] - mean);
    }
    *sg += FN(lanes_total)(a, ta);
    *sgx += FN(lanes_total)(b, tb);
}

void FN(mg_channel_sum)(ptrdiff_t n, ptrdiff_t c, ptrdiff_t hw, const MG_T *x, MG_T *out)
{
    MG_NCHW_FOR(c, n * c * hw, ch, {
        double s = 0;
        for (ptrdiff_t i = 0; i < n; i++) s += FN(plane_sum)(x + (i * c + ch) * hw, hw);
        out[ch] = (MG_T)s;
    });
}

void FN(mg_batch_norm)(ptrdiff_t n, ptrdiff_t c, ptrdiff_t hw, const MG_T *x,
                       const MG_T *weight, const MG_T *bias, MG_T *running_mean,
                       MG_T *running_var, int training, double momentum, double eps,
                       int relu, MG_T *y, MG_T *save_mean, MG_T *save_invstd)
{
    const double m = (double)n * hw;
    MG_NCHW_FOR(c, n * c * hw, ch, {
        double mean, var;
        if (training) {
            double s = 0, v = 0;
            for (ptrdiff_t i = 0; i < n; i++) s += FN(plane_sum)(x + (i * c + ch) * hw, hw);
            mean = s / m;
            for (ptrdiff_t i = 0; i < n; i++)
                v += FN(plane_sqdev)(x + (i * c + ch) * hw, hw, mean);
            var = v / m;
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
        for (ptrdiff_t i = 0; i < n; i++) {
            const MG_T *xp = x + (i * c + ch) * hw;
            MG_T *yp = y + (i * c + ch) * hw;
            if (relu)
                for (ptrdiff_t k = 0; k < hw; k++) {
                    MG_T v = (MG_T)((xp[k] - mean) * scale + b);
                    yp[k] = v > 0 ? v : 0;
                }
            else
                for (ptrdiff_t k = 0; k < hw; k++) yp[k] = (MG_T)((xp[k] - mean) * scale + b);
        }
    });
}

void FN(mg_batch_norm_backward)(ptrdiff_t n, ptrdiff_t c, ptrdiff_t hw, const MG_T *dy,
                                const MG_T *x, const MG_T *weight, const MG_T *save_mean,
                                const MG_T *save_invstd, int training, const MG_T *y,
                                MG_T *dx, MG_T *dweight, MG_T *dbias)
{
    const double m = (double)n * hw;
    MG_NCHW_FOR(c, n * c * hw, ch, {
        const double mean = save_mean[ch], invstd = save_invstd[ch];
        const double gamma = weight ? weight[ch] : 1;
        /* With a fused ReLU, grad_out masked by y > 0 goes to dx first (a
         * select loop that vectorizes), and everything after reads it there. */
        const MG_T *g = dy;
        if (y) {
            for (ptrdiff_t i = 0; i < n; i++) {
                ptrdiff_t off = (i * c + ch) * hw;
                const MG_T *gp = dy + off, *yp = y + off;
                MG_T *dp = dx + off;
                for (ptrdiff_t j = 0; j < hw; j++) {
                    MG_T gv = gp[j]; /* loaded either way, so the select vectorizes */
                    dp[j] = yp[j] > 0 ? gv : 0;
                }
            }
            g = dx;
        }
        double sg = 0, sgx = 0;
        for (ptrdiff_t i = 0; i < n; i++) {
            ptrdiff_t off = (i * c + ch) * hw;
            FN(plane_grad_sums)(g + off, x + off, hw, mean, &sg, &sgx);
        }
        if (dweight) dweight[ch] = (MG_T)(sgx * invstd);
        if (dbias) dbias[ch] = (MG_T)sg;
        /* training: dx = gamma*invstd * (g - sg/m - (x - mean) * invstd^2 * sgx/m);
         * eval: dx = gamma*invstd * g */
        const double k = gamma * invstd;
        const double u = training ? invstd * invstd * sgx / m : 0;
        const double sub = training ? sg / m : 0;
        for (ptrdiff_t i = 0; i < n; i++) {
            ptrdiff_t off = (i * c + ch) * hw;
            const MG_T *gp = g + off, *xp = x + off;
            MG_T *dp = dx + off;
            for (ptrdiff_t j = 0; j < hw; j++)
                dp[j] = (MG_T)(k * (gp[j] - (xp[j] - mean) * u - sub));
        }
    });
}

#undef MG_LANES
