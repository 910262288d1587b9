/* C API of the NCHW kernels: conv2d, pooling and batch norm (mg_conv.c).
 * Same rules as mg_kernels.h: arguments are trusted (validated in Cython),
 * int-returning functions return 0 or -1 when memory ran out, all are safe
 * without the GIL, and results are bit-identical for any thread count. */
#ifndef MG_CONV_H
#define MG_CONV_H
#include <stddef.h>
#include <stdint.h>

/* Geometry of a 2-D sliding window over x (n, c, h, w) giving (n, oc, oh, ow);
 * for pooling oc == c. Window (kh, kw), stride, zero padding, dilation. */
typedef struct {
    ptrdiff_t n, c, h, w, oc, oh, ow;
    ptrdiff_t kh, kw, sh, sw, ph, pw, dh, dw;
} mg_conv2d_geom;

#define MG_CONV_DECLARE(T, S)                                                   \
    int mg_conv2d_##S(const mg_conv2d_geom *g, const T *x, const T *w,          \
                      const T *b, T *y);                                        \
    int mg_conv2d_backward_input_##S(const mg_conv2d_geom *g, const T *dy,      \
                                     const T *w, T *dx);                        \
    int mg_conv2d_backward_weight_##S(const mg_conv2d_geom *g, const T *x,      \
                                      const T *dy, T *dw, int accumulate);      \
    void mg_channel_sum_##S(ptrdiff_t n, ptrdiff_t c, ptrdiff_t hw,             \
                            const T *x, T *out);                                \
    void mg_max_pool2d_##S(const mg_conv2d_geom *g, const T *x, T *y,           \
                           int64_t *indices);                                   \
    void mg_max_pool2d_backward_##S(const mg_conv2d_geom *g, const T *dy,       \
                                    const int64_t *indices, T *dx);             \
    void mg_avg_pool2d_##S(const mg_conv2d_geom *g, const T *x, T *y,           \
                           int count_include_pad);                              \
    void mg_avg_pool2d_backward_##S(const mg_conv2d_geom *g, const T *dy,       \
                                    T *dx, int count_include_pad);              \
    void mg_adaptive_avg_pool2d_##S(const mg_conv2d_geom *g, const T *x, T *y); \
    void mg_adaptive_avg_pool2d_backward_##S(const mg_conv2d_geom *g,           \
                                             const T *dy, T *dx);               \
    void mg_batch_norm_##S(ptrdiff_t n, ptrdiff_t c, ptrdiff_t hw, const T *x,  \
                           const T *weight, const T *bias, T *running_mean,     \
                           T *running_var, int training, double momentum,       \
                           double eps, int relu, T *y, T *save_mean,            \
                           T *save_invstd);                                     \
    void mg_batch_norm_backward_##S(ptrdiff_t n, ptrdiff_t c, ptrdiff_t hw,     \
                                    const T *dy, const T *x, const T *weight,   \
                                    const T *save_mean, const T *save_invstd,   \
                                    int training, const T *y, T *dx,            \
                                    T *dweight, T *dbias);

MG_CONV_DECLARE(float, f32)
MG_CONV_DECLARE(double, f64)
#undef MG_CONV_DECLARE

#endif
