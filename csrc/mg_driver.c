/* Run-time choice of instruction set and thread count, and the per-type
 * drivers (mg_driver_tmpl.h) that the Cython layer calls. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mg_internal.h"
#include "mg_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#define MG_X86 1
#else
#define MG_X86 0
#endif

#define MG_CHUNK ((ptrdiff_t)1 << 15)           /* elementwise work unit */
#define MG_GEMM_SERIAL_WORK (64.0 * 64.0 * 256.0) /* fewer MACs: one thread */
#define MG_DIRECT_SLIVERS 4   /* N <= this many micro-tile columns: A unpacked */
#define MG_KC_DIRECT 4096     /* K block when A is read in place */
#define MG_SWAP_SLIVERS 2     /* M <= this many micro-tile columns: C.T = B.T A.T */

static int mg_isa = -1;
static int mg_threads = 1;

int mg_isa_best(void)
{
#if MG_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
        return MG_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return MG_ISA_AVX2;
#endif
    return MG_ISA_GENERIC;
}

int mg_isa_active(void)
{
    int isa = __atomic_load_n(&mg_isa, __ATOMIC_RELAXED);
    if (isa < 0) {
        isa = mg_isa_best();
        __atomic_store_n(&mg_isa, isa, __ATOMIC_RELAXED);
    }
    return isa;
}

int mg_set_isa(int isa)
{
    if (isa < MG_ISA_GENERIC || isa > mg_isa_best()) return -1;
    __atomic_store_n(&mg_isa, isa, __ATOMIC_RELAXED);
    return 0;
}

const char *mg_isa_name(int isa)
{
    switch (isa) {
    case MG_ISA_AVX512: return "avx512";
    case MG_ISA_AVX2: return "avx2";
    default: return "generic";
    }
}

int mg_get_num_threads(void) { return __atomic_load_n(&mg_threads, __ATOMIC_RELAXED); }

/* Kernel calls in flight. A call that starts while another is running (from
 * another Python thread: kernels release the GIL) runs on one thread, so
 * concurrent callers never oversubscribe the cores with nested teams.
 * Results do not depend on the thread count, so this changes only speed. */
static int mg_active = 0;

int mg_enter(int wanted)
{
    int busy = __atomic_fetch_add(&mg_active, 1, __ATOMIC_ACQ_REL);
    return busy ? 1 : wanted;
}

void mg_leave(void) { __atomic_fetch_sub(&mg_active, 1, __ATOMIC_ACQ_REL); }

void mg_set_num_threads(int n)
{
    __atomic_store_n(&mg_threads, n < 1 ? 1 : n, __ATOMIC_RELAXED);
}

#ifndef MG_BUILD_FLAGS
#define MG_BUILD_FLAGS "unknown"
#endif

const char *mg_build_flags(void) { return MG_BUILD_FLAGS; }

int mg_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

static int mg_thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* 64-byte aligned buffer for packed panels (free() releases it). */
static void *mg_alloc(size_t bytes)
{
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

#define MG_T float
#define MG_S f32
#define MG_KC 384
#define MG_MC 144
#define MG_NC 768
#include "mg_driver_tmpl.h"
#undef MG_T
#undef MG_S
#undef MG_KC
#undef MG_MC
#undef MG_NC

#define MG_T double
#define MG_S f64
#define MG_KC 256
#define MG_MC 72
#define MG_NC 384
#include "mg_driver_tmpl.h"
