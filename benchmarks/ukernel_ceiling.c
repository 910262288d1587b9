/* The GEMM micro-kernel's own ceiling on this core: the float AVX-512
 * macro-kernel on one 12 x 32 tile (kc 256) with every operand in L1,
 * alternated with the suite's FMA probe (csrc/mg_probe.h), 31 samples each.
 * What a whole GEMM could reach at best, before packing, C traffic and L2.
 *
 *   gcc -O3 -Icsrc benchmarks/ukernel_ceiling.c csrc/mg_isa.c -o /tmp/ceiling -lm
 *   taskset -c 1 /tmp/ceiling
 *
 * Needs an AVX-512 CPU (it calls the AVX-512 table directly). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_ops.h"
#include "mg_probe.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    enum { SAMPLES = 31, CALLS = 20000 };
    const mg_ops_f32 *ops = &mg_ops_f32_avx512;
    const long mc = ops->mr, nc = ops->nr, kc = 256;
    float *a = aligned_alloc(64, mc * kc * 4), *b = aligned_alloc(64, nc * kc * 4);
    float *c = aligned_alloc(64, mc * nc * 4);
    for (long i = 0; i < mc * kc; i++) a[i] = 1e-3f * (i % 7);
    for (long i = 0; i < nc * kc; i++) b[i] = 1e-3f * (i % 5);
    memset(c, 0, mc * nc * 4);
    double probe[SAMPLES], kernel[SAMPLES];
    float sink;
    for (int s = 0; s < SAMPLES; s++) {
        double t0 = now(), flops = mg_peak_probe(2, 200000, &sink);
        probe[s] = flops / (now() - t0) / 1e9;
        t0 = now();
        for (int r = 0; r < CALLS; r++) ops->macro(mc, nc, kc, a, b, c, nc, 1, 1, NULL, 0);
        kernel[s] = 2.0 * mc * nc * kc * CALLS / (now() - t0) / 1e9;
    }
    qsort(probe, SAMPLES, sizeof probe[0], by_value);
    qsort(kernel, SAMPLES, sizeof kernel[0], by_value);
    printf("FMA probe: median %.1f, best %.1f GFLOP/s\n", probe[SAMPLES / 2], probe[SAMPLES - 1]);
    printf("micro-kernel %ldx%ld, kc %ld, in L1: median %.1f, best %.1f GFLOP/s = %.0f%% of the "
           "probe's median, %.0f%% of its best\n", mc, nc, kc, kernel[SAMPLES / 2],
           kernel[SAMPLES - 1], 100 * kernel[SAMPLES / 2] / probe[SAMPLES / 2],
           100 * kernel[SAMPLES - 1] / probe[SAMPLES - 1]);
    printf("(sink %g)\n", (double)sink + c[0]);
    free(a);
    free(b);
    free(c);
    return 0;
}
