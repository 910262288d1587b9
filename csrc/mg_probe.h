/* Benchmark helpers (not part of the public API; reached as
 * minigrad._kernels._peak_probe and _set_ftz): the machine's fp32 FMA peak on
 * one core, measured by chains of independent fused multiply-adds, and the
 * calling thread's flush-to-zero switch, so that NumPy can be timed with
 * and without it. Included by the Cython extension only. */
#ifndef MG_PROBE_H
#define MG_PROBE_H
#include <stdint.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MG_PROBE_X86 1
#else
#define MG_PROBE_X86 0
#endif

/* 24 independent accumulators: more than latency x FMA units on any core
 * (4 x 2 on Intel, 4 x 2 on Zen 4), so the FMA ports never wait. */
#define MG_PROBE_CHAINS 24

#if MG_PROBE_X86
__attribute__((target("avx512f"))) static float mg_probe_avx512(int64_t iters)
{
    __m512 acc[MG_PROBE_CHAINS];
    const __m512 m = _mm512_set1_ps(0.9999999f), a = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < MG_PROBE_CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (int64_t t = 0; t < iters; t++) {
#pragma GCC unroll 24
        for (int i = 0; i < MG_PROBE_CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
    }
    __m512 s = acc[0];
    for (int i = 1; i < MG_PROBE_CHAINS; i++) s = _mm512_add_ps(s, acc[i]);
    float r = _mm512_reduce_add_ps(s);
    __asm__ volatile("" : "+x"(r)); /* not a pure function: the call stays */
    return r;
}

__attribute__((target("avx2,fma"))) static float mg_probe_avx2(int64_t iters)
{
    __m256 acc[12];
    const __m256 m = _mm256_set1_ps(0.9999999f), a = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps((float)i);
    for (int64_t t = 0; t < iters; t++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
    }
    float out[8], s = 0;
    for (int i = 1; i < 12; i++) acc[0] = _mm256_add_ps(acc[0], acc[i]);
    _mm256_storeu_ps(out, acc[0]);
    for (int i = 0; i < 8; i++) s += out[i];
    __asm__ volatile("" : "+x"(s));
    return s;
}
#endif

/* Runs `iters` rounds of independent FMAs on instruction set `isa` (2:
 * AVX-512, 1: AVX2, else scalar-vectorized SSE) and returns the number of
 * floating-point operations done (2 per lane per FMA); *sink receives
 * the sum of the accumulators. */
static double mg_peak_probe(int isa, int64_t iters, float *sink)
{
#if MG_PROBE_X86
    if (isa == 2) {
        *sink = mg_probe_avx512(iters);
        return 2.0 * 16 * MG_PROBE_CHAINS * (double)iters;
    }
    if (isa == 1) {
        *sink = mg_probe_avx2(iters);
        return 2.0 * 8 * 12 * (double)iters;
    }
#endif
    float acc[32];
    for (int i = 0; i < 32; i++) acc[i] = (float)i;
    for (int64_t t = 0; t < iters; t++) {
        for (int i = 0; i < 32; i++) acc[i] = acc[i] * 0.9999999f + 1e-7f;
        __asm__ volatile("" : : "r"(acc) : "memory");
    }
    float s = 0;
    for (int i = 0; i < 32; i++) s += acc[i];
    *sink = s;
    return 2.0 * 32 * (double)iters;
}

/* Sets (on != 0) or clears flush-to-zero and denormals-are-zero on the
 * calling thread; returns whether they were set before. */
static int mg_set_ftz(int on)
{
#if MG_PROBE_X86
    unsigned csr = _mm_getcsr();
    _mm_setcsr(on ? (csr | 0x8040u) : (csr & ~0x8040u));
    return (csr & 0x8040u) == 0x8040u;
#else
    (void)on;
    return 0;
#endif
}
#endif
