/* Run-time settings (instruction set, thread count), the floating-point
 * state of kernel threads, the one parallel loop that runs every kernel but
 * GEMM, the kernel catalogue, and the per-type drivers (mg_drivers_tmpl.h,
 * mg_gemm.h, and the NCHW kernels of mg_nchw.h) that the Cython layer calls. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mg_ops.h"
#include "mg_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define MG_X86 1
#else
#define MG_X86 0
#endif

#define MG_CHUNK ((ptrdiff_t)1 << 15)           /* elementwise work unit */
#define MG_STACK_PARTS 64     /* partial sums kept on the stack */
#define MG_GEMM_SERIAL_WORK (64.0 * 64.0 * 256.0) /* fewer MACs: one thread */
#define MG_DIRECT_SLIVERS 4   /* N <= this many micro-tile columns: A unpacked */
#define MG_KC_DIRECT 4096     /* K block when A is read in place */
#define MG_SWAP_SLIVERS 2     /* M <= this many micro-tile columns: C.T = B.T A.T */
#define MG_BYCOLS_ROWS 256    /* threads split C's columns up to this many rows (and when N > M) */
#define MG_PRIV_B_THREADS 4   /* at most this many threads each pack a private narrow B panel */

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

int mg_get_num_threads(void) { return __atomic_load_n(&mg_threads, __ATOMIC_RELAXED); }

/* Kernel calls in flight. A call that starts while another is running (from
 * another Python thread: kernels release the GIL) runs on one thread, so
 * concurrent callers never oversubscribe the cores with nested teams.
 * Results do not depend on the thread count, so this changes only speed. */
static int mg_active = 0;

static int mg_enter(int wanted)
{
    int busy = __atomic_fetch_add(&mg_active, 1, __ATOMIC_ACQ_REL);
    return busy ? 1 : wanted;
}

static void mg_leave(void) { __atomic_fetch_sub(&mg_active, 1, __ATOMIC_ACQ_REL); }

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

/* The threads of the current team: fewer than asked for when the OpenMP
 * runtime limits them (OMP_THREAD_LIMIT, OMP_DYNAMIC). */
static int mg_team_size(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* 64-byte aligned buffer for packed panels (free() releases it). */
static void *mg_alloc(size_t bytes)
{
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

/* ---- floating-point state ---- */

unsigned mg_fp_state(void)
{
#if MG_X86
    return _mm_getcsr();
#else
    return 0;
#endif
}

/* Sets flush-to-zero and denormals-are-zero on this thread; returns the
 * state to restore with mg_fp_leave. Subnormal floats (SGD velocities decay
 * into them) slow x86 arithmetic some 30-fold; results change only where a
 * value is below the smallest normal number. */
static inline unsigned mg_fp_enter(void)
{
#if MG_X86
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | 0x8040); /* FTZ (bit 15) | DAZ (bit 6) */
    return old;
#else
    return 0;
#endif
}

static inline void mg_fp_leave(unsigned old)
{
#if MG_X86
    _mm_setcsr(old);
#else
    (void)old;
#endif
}

/* ---- the parallel loop of every kernel but GEMM ---- */

typedef void (*mg_piece_fn)(const void *job, ptrdiff_t k);

static inline ptrdiff_t mg_pieces(ptrdiff_t n, ptrdiff_t per) { return (n + per - 1) / per; }

/* Length of piece k when n items are cut into pieces of `per`. */
static inline ptrdiff_t mg_piece_len(ptrdiff_t k, ptrdiff_t per, ptrdiff_t n)
{
    return n - k * per < per ? n - k * per : per;
}

/* Threads wanted for `work` elements: one below two chunks. */
static inline int mg_want(double work)
{
    return work >= 2 * MG_CHUNK ? mg_get_num_threads() : 1;
}

/* Runs piece(job, k) for every k in [0, pieces) on the team size mg_enter
 * grants, with flush-to-zero on in each thread. One thread runs them outside
 * any OpenMP region: even an if(0) region costs ~0.45 us a call. */
static void mg_run_pieces(ptrdiff_t pieces, int want, mg_piece_fn piece, const void *job)
{
    int nt = pieces > 1 ? mg_enter(want) : (mg_enter(1), 1);
    if (nt <= 1) {
        unsigned fp = mg_fp_enter();
        for (ptrdiff_t k = 0; k < pieces; k++) piece(job, k);
        mg_fp_leave(fp);
    } else {
#pragma omp parallel num_threads(nt)
        {
            unsigned fp = mg_fp_enter();
#pragma omp for schedule(static)
            for (ptrdiff_t k = 0; k < pieces; k++) piece(job, k);
            mg_fp_leave(fp);
        }
    }
    mg_leave();
}

/* A buffer for one partial sum per piece (`stack` when it fits), or NULL. */
static double *mg_parts(ptrdiff_t pieces, double *stack)
{
    return pieces <= MG_STACK_PARTS ? stack : malloc((size_t)pieces * sizeof(double));
}

/* The sum of the parts in piece order; frees a buffer mg_parts allocated. */
static double mg_sum_parts(double *part, ptrdiff_t pieces, const double *stack)
{
    double total = 0;
    for (ptrdiff_t k = 0; k < pieces; k++) total += part[k];
    if (part != stack) free(part);
    return total;
}

/* ---- the catalogue of mg_kernels.def ---- */

const mg_kernel_info mg_kernel_catalog[MG_KERNEL_COUNT] = {
#define MG_ENTRY(k, kind_, arg_, doc_) \
    [MG_K_##k] = {.kind = kind_, .name = #k, .arg = arg_, .doc = doc_},
#define MG_UNARY(k, d) MG_ENTRY(k, MG_KIND_UNARY, "", d)
#define MG_BINARY(k, a, d) MG_ENTRY(k, MG_KIND_BINARY, #a, d)
#define MG_ROWS(k, d) MG_ENTRY(k, MG_KIND_ROWS, "", d)
#define MG_ROWS_BACKWARD(k, d) MG_ENTRY(k, MG_KIND_ROWS_BACKWARD, "y", d)
#define MG_LOSS(k, d) MG_ENTRY(k, MG_KIND_LOSS, "", d)
#include "mg_kernels.def"
#undef MG_ENTRY
};

#include "mg_nchw.h"

/* ---- per-type drivers ---- */

#define MG_CAT2(a, b) a##_##b
#define MG_CAT(a, b) MG_CAT2(a, b)
#define FN(name) MG_CAT(name, MG_S)
#define OPS MG_CAT(mg_ops, MG_S)

#define MG_T float
#define MG_S f32
#define MG_KC 384
#define MG_MC 144
#define MG_NC 768
#include "mg_drivers_tmpl.h"
#include "mg_gemm.h"
#include "mg_conv_tmpl.h"
#include "mg_pool_tmpl.h"
#include "mg_bn_tmpl.h"
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
#include "mg_drivers_tmpl.h"
#include "mg_gemm.h"
#include "mg_conv_tmpl.h"
#include "mg_pool_tmpl.h"
#include "mg_bn_tmpl.h"
