/* NCHW kernels for float and double: conv2d on the GEMM (mg_conv_tmpl.h),
 * pooling (mg_pool_tmpl.h) and batch norm (mg_bn_tmpl.h). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mg_conv.h"
#include "mg_internal.h"
#include "mg_kernels.h"

/* An im2col tile (K rows x some output rows) takes at most this many bytes. */
#define MG_CONV_COL_BYTES ((size_t)512 << 10)
/* Weight gradient: images are summed in at most this many fixed groups (the
 * groups run in parallel; their partial sums, added in order, need
 * groups x weight-size elements, capped by MG_CONV_PART_ELEMS). */
#define MG_CONV_PARTS 8
#define MG_CONV_PART_ELEMS ((ptrdiff_t)1 << 22)
/* Fewer multiply-adds (or elements for pooling and batch norm): one thread. */
#define MG_NCHW_SERIAL_WORK ((ptrdiff_t)1 << 16)

static int mg_conv_thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* 64-byte aligned, never NULL for 0 bytes unless memory ran out. */
static void *mg_conv_alloc(size_t bytes)
{
    return aligned_alloc(64, (bytes + 64) / 64 * 64);
}

/* Threads for `work` units spread over `items` independent items. */
static int mg_nchw_threads(ptrdiff_t work, ptrdiff_t items)
{
    int nt = work < MG_NCHW_SERIAL_WORK ? 1 : mg_get_num_threads();
    return items < nt ? (int)(items > 0 ? items : 1) : nt;
}

/* Runs the body (the trailing arguments) for var in [0, count), split
 * statically over the threads that
 * mg_enter grants for `work`. */
#define MG_NCHW_FOR(count, work, var, ...)                                      \
    do {                                                                        \
        int nt_ = mg_enter(mg_nchw_threads((work), (count)));                   \
        _Pragma("omp parallel for schedule(static) num_threads(nt_) if (nt_ > 1)") \
        for (ptrdiff_t var = 0; var < (count); var++) {                         \
            __VA_ARGS__;                                                        \
        }                                                                       \
        mg_leave();                                                             \
    } while (0)

#define MG_T float
#define MG_S f32
#include "mg_conv_tmpl.h"
#include "mg_pool_tmpl.h"
#include "mg_bn_tmpl.h"
#undef MG_T
#undef MG_S

#define MG_T double
#define MG_S f64
#include "mg_conv_tmpl.h"
#include "mg_pool_tmpl.h"
#include "mg_bn_tmpl.h"
#undef MG_T
#undef MG_S
