/* Branch-free scalar math for one element type and one instruction set, so
 * that loops calling it vectorize under `#pragma omp simd` (included by
 * mg_isa_tmpl.h). float kernels compute exp and erfc in double where
 * float alone would lose accuracy, then round once. */

/* exp(x) in double for x <= 0 (small x > 0 too; NaN propagates; below the
 * smallest normal it returns 0). */
static inline double FN(expneg_d)(double x)
{
    const double lo = -708.0, magic = 6755399441055744.0; /* 1.5 * 2^52 */
    double n = (x * 1.4426950408889634 + magic) - magic;
    double r = (x - n * 0.6931471803691238) - n * 1.9082149292705877e-10;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int32_t e = (int32_t)n + 1023; /* int32: converts in vector registers on AVX2 too */
    uint64_t bits = (uint64_t)(e < 1 ? 1 : e) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    double y = p * scale;
    return x < lo ? 0.0 : y;
}

/* exp(x) for x <= 0 in the element type. */
static inline MG_T FN(expneg)(MG_T x)
{
#if MG_IS_F64
    return FN(expneg_d)(x);
#else
    const float lo = -87.3f, magic = 12582912.0f; /* 1.5 * 2^23 */
    float n = (x * 1.44269504f + magic) - magic;
    float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t e = (int32_t)n + 127;
    uint32_t bits = (uint32_t)(e < 1 ? 1 : e) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float y = p * scale;
    return x < lo ? 0.0f : y;
#endif
}

/* log1p(u) for u in [0, 1]: 2 atanh(s) with s = u / (2 + u) <= 1/3. */
static inline MG_T FN(log1p01)(MG_T u)
{
    MG_T s = u / (2 + u), s2 = s * s, q;
#if MG_IS_F64
    q = 1.0 / 33;
    q = q * s2 + 1.0 / 31; q = q * s2 + 1.0 / 29; q = q * s2 + 1.0 / 27;
    q = q * s2 + 1.0 / 25; q = q * s2 + 1.0 / 23; q = q * s2 + 1.0 / 21;
    q = q * s2 + 1.0 / 19; q = q * s2 + 1.0 / 17; q = q * s2 + 1.0 / 15;
    q = q * s2 + 1.0 / 13; q = q * s2 + 1.0 / 11; q = q * s2 + 1.0 / 9;
    q = q * s2 + 1.0 / 7;  q = q * s2 + 1.0 / 5;  q = q * s2 + 1.0 / 3;
#else
    q = 1.0f / 17;
    q = q * s2 + 1.0f / 15; q = q * s2 + 1.0f / 13; q = q * s2 + 1.0f / 11;
    q = q * s2 + 1.0f / 9;  q = q * s2 + 1.0f / 7;  q = q * s2 + 1.0f / 5;
    q = q * s2 + 1.0f / 3;
#endif
    return 2 * s * (q * s2 + 1);
}

/* erfc(u) in double to a relative error below 1.2e-7 for every u
 * (Numerical Recipes' Chebyshev fit `erfcc`): enough for float results.
 * (double kernels call the C library's erfc.) */
static inline double FN(erfc_f)(double u)
{
    double z = u < 0 ? -u : u, t = 1 / (1 + 0.5 * z);
    double q = 0.17087277;
    q = q * t - 0.82215223; q = q * t + 1.48851587; q = q * t - 1.13520398;
    q = q * t + 0.27886807; q = q * t - 0.18628806; q = q * t + 0.09678418;
    q = q * t + 0.37409196; q = q * t + 1.00002368; q = q * t - 1.26551223;
    double r = t * FN(expneg_d)(q - z * z);
    return u >= 0 ? r : 2 - r;
}
