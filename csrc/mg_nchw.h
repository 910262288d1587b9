/* Settings and helpers of the NCHW kernels (conv2d on the GEMM, pooling,
 * batch norm: mg_conv_tmpl.h, mg_pool_tmpl.h, mg_bn_tmpl.h). Included once by
 * mg_driver.c, after the thread and floating-point helpers they use. */
#ifndef MG_NCHW_H
#define MG_NCHW_H

/* An im2col tile (K rows x some output rows) takes at most this many bytes. */
#define MG_CONV_COL_BYTES ((size_t)512 << 10)
/* Outputs of fewer positions than this take several images a GEMM, their
 * im2col matrices side by side up to this many bytes (mg_conv_tmpl.h). */
#define MG_CONV_BATCH_COLS 256
#define MG_CONV_BATCH_BYTES ((size_t)4 << 20)
/* Such groups of images go in parallel, one thread each, when a group's GEMM
 * takes fewer multiply-adds than this (ResNet-18's stem: 1.2M a group); else
 * the groups go one after another, each GEMM on the team. */
#define MG_CONV_GROUP_WORK ((double)(1 << 22))
/* Stride-1 convolutions as implicit GEMMs over the batch (mg_conv_gemm.h)
 * when one expanded image (kw copies of its padded rows) takes at most this
 * many bytes: each thread keeps a few. */
#define MG_CONV_EXPAND_BYTES ((double)(4 << 20))
/* Micro-tile rows (output positions) a thread computes, over all passes,
 * before transposing them into the NCHW output (mg_conv_gemm.h); 16 measured
 * 1.00-1.05x faster than 8 and within noise of 32 (one thread, the convnet's
 * 14x14 and 7x7 layers). */
#define MG_CONV_BLOCK_SLIVERS 16
/* Weight gradient: images are summed in at most this many fixed groups (the
 * groups run in parallel; their partial sums, added in order, need
 * groups x weight-size elements, capped by MG_CONV_PART_ELEMS). */
#define MG_CONV_PARTS 8
#define MG_CONV_PART_ELEMS ((ptrdiff_t)1 << 22)
/* The weight gradient's parts are added channel block by channel block;
 * the folded one (mg_conv_gemm.h) takes a part per this many positions at
 * most: ResNet-18's 4x4 maps at batch 64 in 2 parts instead of 8, dW 3.26 ->
 * 2.73 ms on one thread and 2.30 -> 1.36 ms on two. */
#define MG_CONV_SUM_CHANNELS 8
#define MG_CONV_PART_COLS 512
/* Max pooling takes the ISA's vector length of planes at once
 * (mg_pool_lanes.h) for planes of up to this many elements, through a
 * transposed copy that stays in L2; larger planes go one by one. */
#define MG_POOL_LANES_PLANE ((ptrdiff_t)1 << 14)
/* Fewer multiply-adds (or elements for pooling and batch norm): one thread. */
#define MG_NCHW_SERIAL_WORK ((ptrdiff_t)1 << 16)

/* Plane loops of the NCHW kernels are also compiled for AVX-512 and picked
 * at load time where GCC can (target_clones needs ifunc: x86-64 Linux). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MG_NCHW_CLONES __attribute__((target_clones("avx512f", "default")))
#else
#define MG_NCHW_CLONES
#endif

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
 * statically over the threads that mg_enter grants for `work`, with
 * flush-to-zero on in each thread. */
#define MG_NCHW_FOR(count, work, var, ...)                                      \
    do {                                                                        \
        int nt_ = mg_enter(mg_nchw_threads((work), (count)));                   \
        mg_team_fork(nt_);                                                      \
        _Pragma("omp parallel num_threads(nt_) if (nt_ > 1)")                   \
        {                                                                       \
            mg_team_clock tc_ = mg_team_enter();                                \
            _Pragma("omp for schedule(static)")                                 \
            for (ptrdiff_t var = 0; var < (count); var++) {                     \
                __VA_ARGS__;                                                    \
            }                                                                   \
            mg_team_leave(&tc_);                                                \
        }                                                                       \
        mg_leave();                                                             \
    } while (0)

#endif
