/* Run-time settings (instruction set, thread count), the floating-point
 * state of kernel threads, the one parallel loop that runs every kernel but
 * GEMM, the kernel catalogue, and the per-type drivers (mg_drivers_tmpl.h,
 * mg_gemm.h, and the NCHW kernels of mg_nchw.h) that the Cython layer calls. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

static int64_t mg_clock_ns(clockid_t clock)
{
    struct timespec t = {0, 0};
    clock_gettime(clock, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int64_t mg_now_ns(void) { return mg_clock_ns(CLOCK_MONOTONIC); }

/* ---- backing off to one thread while the cores are taken ----
 *
 * Another library's idle threads in the same process (OpenBLAS spins for
 * ~2^28 cycles after each NumPy product) or another process can hold the
 * core a team thread needs: a worker then starts late, or a team thread is
 * switched out mid-kernel, and on two threads a product alternated with
 * NumPy products took 1.9-12x as long as on one thread. Each team thread
 * measures how long it was absent (a worker late to start, or any thread
 * off its core) against how long it worked, and a watched team compares
 * its time with its threads' CPU time (mg_team_enter, mg_team_leave): for
 * two threads sharing a kernel evenly, absent longer than worked, or a team
 * slower than its CPU time, means the team was slower than one thread.
 * Either (absent over MG_LATE_NS; slower by over MG_LATE_NS) is a strike,
 * and MG_STRIKES strikes, each at most MG_STRIKE_TEAMS teams after the last
 * (a one-off hiccup of the scheduler or the hypervisor is not worth a
 * wait), send the following kernel calls to one thread for 5 ms, doubled
 * up to 1.28 s while it keeps happening right after each wait; then a team
 * is tried again. Results do not depend on the thread count, so this
 * changes only speed. */
#define MG_LATE_NS 30000
#define MG_BACKOFF_MAX_DOUBLINGS 8
#define MG_STRIKES 3
#define MG_STRIKE_TEAMS 2
#define MG_CPU_EVERY 8
#define MG_BACKOFF_FIRST_NS 5000000 /* the first wait by default */

/* When the last team was forked (mg_team_enter measures lateness from it),
 * and how many teams have been. */
static int64_t mg_fork_ns, mg_teams;

static int mg_backoff_enabled = 1;
static int64_t mg_backoff_ns = MG_BACKOFF_FIRST_NS; /* the first wait */
static int64_t mg_serial_until_ns, mg_last_wait_ns;
static int mg_backoff_doublings;
static int64_t mg_strike_team;  /* the number of the last team that was a strike */
static int mg_strikes;          /* strikes in a row, each soon after the last */
static int64_t mg_row_ns;       /* when the row's first team was forked */
static int mg_watch_all;        /* since a wait started, until a team is judged clean */
static int64_t mg_backoff_waits, mg_backoff_strikes, mg_backoff_serial_calls;
static int mg_cpu_clock_fine = -1; /* the thread CPU clock resolves 1 us (-1: not asked yet) */
/* tests: each worker sleeps this long as it enters a team, before its
 * clocks start (late) or after (off its core) */
static int64_t mg_test_late_ns, mg_test_off_ns;

static int mg_backoff_on(void) { return __atomic_load_n(&mg_backoff_enabled, __ATOMIC_RELAXED); }

static int mg_backoff_serial(int64_t now)
{
    if (now >= __atomic_load_n(&mg_serial_until_ns, __ATOMIC_RELAXED)) return 0;
    __atomic_fetch_add(&mg_backoff_serial_calls, 1, __ATOMIC_RELAXED);
    return 1;
}

/* A team thread found itself absent longer than it worked (and over
 * MG_LATE_NS): team number `team` is a strike. The MG_STRIKES-th in a row,
 * each at most MG_STRIKE_TEAMS teams after the one before, starts the
 * one-thread wait, doubled when the row began within the last wait's length
 * after it ended. */
static void mg_backoff_strike(int64_t team, int64_t now)
{
    const int64_t until = __atomic_load_n(&mg_serial_until_ns, __ATOMIC_RELAXED);
    if (now < until) return; /* already waiting */
    /* one strike a team: the first of its threads to get here counts it */
    int64_t last = __atomic_load_n(&mg_strike_team, __ATOMIC_RELAXED);
    if (last >= team || !__atomic_compare_exchange_n(&mg_strike_team, &last, team, 0,
                                                     __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return;
    __atomic_fetch_add(&mg_backoff_strikes, 1, __ATOMIC_RELAXED);
    int strikes =
        team - last <= MG_STRIKE_TEAMS ? __atomic_load_n(&mg_strikes, __ATOMIC_RELAXED) + 1 : 1;
    if (strikes == 1) /* the row began when this team was forked */
        __atomic_store_n(&mg_row_ns, __atomic_load_n(&mg_fork_ns, __ATOMIC_RELAXED),
                         __ATOMIC_RELAXED);
    if (strikes < MG_STRIKES) {
        __atomic_store_n(&mg_strikes, strikes, __ATOMIC_RELAXED);
        return;
    }
    __atomic_store_n(&mg_strikes, 0, __ATOMIC_RELAXED);
    int d = __atomic_load_n(&mg_backoff_doublings, __ATOMIC_RELAXED);
    const int64_t first = __atomic_load_n(&mg_backoff_ns, __ATOMIC_RELAXED);
    d = until > 0 && __atomic_load_n(&mg_row_ns, __ATOMIC_RELAXED) - until < (first << d)
            ? (d < MG_BACKOFF_MAX_DOUBLINGS ? d + 1 : d)
            : 0;
    __atomic_store_n(&mg_backoff_doublings, d, __ATOMIC_RELAXED);
    __atomic_store_n(&mg_last_wait_ns, first << d, __ATOMIC_RELAXED);
    __atomic_store_n(&mg_serial_until_ns, now + (first << d), __ATOMIC_RELAXED);
    __atomic_store_n(&mg_watch_all, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&mg_backoff_waits, 1, __ATOMIC_RELAXED);
}

void mg_backoff_set(int enabled, double first_wait_seconds, double test_late_seconds,
                    double test_off_seconds)
{
    __atomic_store_n(&mg_backoff_enabled, enabled != 0, __ATOMIC_RELAXED);
    const int64_t first = (int64_t)(first_wait_seconds * 1e9);
    __atomic_store_n(&mg_backoff_ns, first > 0 ? first : MG_BACKOFF_FIRST_NS, __ATOMIC_RELAXED);
    __atomic_store_n(&mg_test_late_ns, (int64_t)(test_late_seconds * 1e9), __ATOMIC_RELAXED);
    __atomic_store_n(&mg_test_off_ns, (int64_t)(test_off_seconds * 1e9), __ATOMIC_RELAXED);
    __atomic_store_n(&mg_serial_until_ns, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&mg_backoff_doublings, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&mg_strikes, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&mg_watch_all, 0, __ATOMIC_RELAXED);
}

/* out: enabled, strikes, waits started, calls sent to one thread, ns of
 * the current wait left (0 when none), ns the last wait started lasts. */
void mg_backoff_stats(int64_t *out)
{
    const int64_t left = __atomic_load_n(&mg_serial_until_ns, __ATOMIC_RELAXED) - mg_now_ns();
    out[0] = mg_backoff_on();
    out[1] = __atomic_load_n(&mg_backoff_strikes, __ATOMIC_RELAXED);
    out[2] = __atomic_load_n(&mg_backoff_waits, __ATOMIC_RELAXED);
    out[3] = __atomic_load_n(&mg_backoff_serial_calls, __ATOMIC_RELAXED);
    out[4] = left > 0 ? left : 0;
    out[5] = __atomic_load_n(&mg_last_wait_ns, __ATOMIC_RELAXED);
}

/* Kernel calls in flight. A call that starts while another is running (from
 * another Python thread: kernels release the GIL) runs on one thread, so
 * concurrent callers never oversubscribe the cores with nested teams; so
 * does a call made during a one-thread wait (above). Results do not depend
 * on the thread count, so this changes only speed. */
static int mg_active = 0;

static int mg_enter(int wanted)
{
    int busy = __atomic_fetch_add(&mg_active, 1, __ATOMIC_ACQ_REL);
    if (busy) return 1;
    if (wanted > 1 && mg_backoff_on() && mg_backoff_serial(mg_now_ns())) return 1;
    return wanted;
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

static void mg_sleep_ns(int64_t ns)
{
    struct timespec t = {ns / 1000000000, ns % 1000000000};
    nanosleep(&t, NULL);
}

/* The team being forked: whether its threads read their CPU clocks, the
 * CPU time they spent in it, and how many have left it. */
static int mg_team_watched, mg_team_left;
static int64_t mg_team_cpu_ns;

/* Right before a parallel region of nt threads: the fork time, the team's
 * number and whether it is watched, which its threads read in
 * mg_team_enter. The thread CPU clock (a system call, ~0.2 us) is read in
 * one team of MG_CPU_EVERY, and in every team after a strike, or after a
 * wait until one is clean. */
static inline void mg_team_fork(int nt)
{
    if (nt < 2 || !mg_backoff_on()) return;
    if (__atomic_load_n(&mg_cpu_clock_fine, __ATOMIC_RELAXED) < 0) {
        struct timespec res = {1, 0};
        const int fine = clock_getres(CLOCK_THREAD_CPUTIME_ID, &res) == 0 && res.tv_sec == 0 &&
                         res.tv_nsec <= 1000;
        __atomic_store_n(&mg_cpu_clock_fine, fine, __ATOMIC_RELAXED);
    }
    const int64_t team = __atomic_add_fetch(&mg_teams, 1, __ATOMIC_RELAXED);
    const int watched = __atomic_load_n(&mg_cpu_clock_fine, __ATOMIC_RELAXED) > 0 &&
                        (team % MG_CPU_EVERY == 0 ||
                         __atomic_load_n(&mg_strikes, __ATOMIC_RELAXED) > 0 ||
                         __atomic_load_n(&mg_watch_all, __ATOMIC_RELAXED));
    __atomic_store_n(&mg_team_watched, watched, __ATOMIC_RELAXED);
    __atomic_store_n(&mg_team_cpu_ns, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&mg_team_left, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&mg_fork_ns, mg_now_ns(), __ATOMIC_RELAXED);
}

/* A team thread's state: floating point, and its clocks when watched. */
typedef struct {
    unsigned fp;
    int64_t team, late, wall, cpu; /* wall 0: not watched; cpu -1: not read */
} mg_team_clock;

/* The first statement of a parallel region (forked after mg_team_fork):
 * mg_fp_enter, and in a team of two or more, the clocks mg_team_leave
 * judges by. */
static inline mg_team_clock mg_team_enter(void)
{
    mg_team_clock c = {0, 0, 0, 0, -1};
    if (mg_team_size() > 1 && mg_backoff_on()) {
        const int worker = mg_thread_id() > 0;
        const int64_t late_test = __atomic_load_n(&mg_test_late_ns, __ATOMIC_RELAXED);
        const int64_t off_test = __atomic_load_n(&mg_test_off_ns, __ATOMIC_RELAXED);
        if (late_test > 0 && worker) mg_sleep_ns(late_test);
        c.team = __atomic_load_n(&mg_teams, __ATOMIC_RELAXED);
        c.wall = mg_now_ns();
        if (worker) c.late = c.wall - __atomic_load_n(&mg_fork_ns, __ATOMIC_RELAXED);
        if (__atomic_load_n(&mg_team_watched, __ATOMIC_RELAXED))
            c.cpu = mg_clock_ns(CLOCK_THREAD_CPUTIME_ID);
        if (off_test > 0 && worker) mg_sleep_ns(off_test);
    }
    c.fp = mg_fp_enter();
    return c;
}

/* The last statement of a parallel region: mg_fp_leave, and the team's
 * judgement (mg_backoff_strike): it is a strike where a thread was absent (a
 * worker late to start, or any thread off its core: switched out, or asleep
 * at a barrier waiting for a thread that was) longer than it worked and over
 * MG_LATE_NS, or, in a watched team, where the team took over MG_LATE_NS
 * longer than the CPU time of all its threads in it (one thread doing all
 * the work would have done better: threads slowed down while on their
 * cores, not only off them). The last thread out of a watched team judges
 * it as a whole. */
static inline void mg_team_leave(const mg_team_clock *c)
{
    mg_fp_leave(c->fp);
    if (!c->wall) return;
    const int64_t now = mg_now_ns(), wall = now - c->wall;
    const int64_t off = c->cpu >= 0 ? wall - (mg_clock_ns(CLOCK_THREAD_CPUTIME_ID) - c->cpu) : 0;
    const int64_t absent = c->late + off, present = wall - off;
    if (absent > MG_LATE_NS && absent > present) mg_backoff_strike(c->team, now);
    if (c->cpu < 0) return;
    __atomic_fetch_add(&mg_team_cpu_ns, present, __ATOMIC_RELAXED);
    if (__atomic_add_fetch(&mg_team_left, 1, __ATOMIC_ACQ_REL) < mg_team_size()) return;
    const int64_t team_wall = now - __atomic_load_n(&mg_fork_ns, __ATOMIC_RELAXED);
    const int64_t worked = __atomic_load_n(&mg_team_cpu_ns, __ATOMIC_RELAXED);
    const int64_t struck = __atomic_load_n(&mg_strike_team, __ATOMIC_RELAXED);
    if (team_wall > worked + MG_LATE_NS) {
        mg_backoff_strike(c->team, now);
    } else if (c->team != struck) { /* a clean team, watched closely */
        __atomic_store_n(&mg_watch_all, 0, __ATOMIC_RELAXED);
        if (c->team - struck > MG_STRIKE_TEAMS) __atomic_store_n(&mg_strikes, 0, __ATOMIC_RELAXED);
    }
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
    if (nt > pieces) nt = (int)pieces; /* a thread with no piece would idle at the barrier */
    if (nt <= 1) {
        unsigned fp = mg_fp_enter();
        for (ptrdiff_t k = 0; k < pieces; k++) piece(job, k);
        mg_fp_leave(fp);
    } else {
        mg_team_fork(nt);
#pragma omp parallel num_threads(nt)
        {
            mg_team_clock tc = mg_team_enter();
#pragma omp for schedule(static)
            for (ptrdiff_t k = 0; k < pieces; k++) piece(job, k);
            mg_team_leave(&tc);
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
