/* Public C API of minigrad's kernels, called from Cython (_kernels.pyx).
 * Functions returning int return 0, or -1 when memory ran out (or, for the
 * kernels chosen by id, when the id is not of that kind).
 *
 * Every function trusts its arguments: shapes, strides and aliasing are
 * validated once at the Cython boundary. All of them are safe to call without
 * the GIL. Strides are in elements, not bytes. Every kernel runs with
 * flush-to-zero and denormals-are-zero set in each of its threads and
 * restores the caller's floating-point state before it returns. */
#ifndef MG_KERNELS_H
#define MG_KERNELS_H
#include <stddef.h>
#include <stdint.h>

enum { MG_ISA_GENERIC = 0, MG_ISA_AVX2 = 1, MG_ISA_AVX512 = 2 };

int mg_isa_best(void);
int mg_isa_active(void);
int mg_set_isa(int isa);            /* returns 0, or -1 if the CPU lacks it */
int mg_get_num_threads(void);
void mg_set_num_threads(int n);
/* Backing off to one thread while a team's threads are kept off their cores
 * (mg_driver.c): on or off, the first wait (0: 5 ms), and for tests
 * a sleep each worker takes as it enters a team, before its clocks start
 * (late) or after (off its core); all reset the current wait. Stats:
 * enabled, strikes, waits, calls sent to one thread, ns of the current wait
 * left, ns the last wait lasts. */
void mg_backoff_set(int enabled, double first_wait_seconds, double test_late_seconds,
                    double test_off_seconds);
void mg_backoff_stats(int64_t *out);
int mg_openmp_enabled(void);
const char *mg_build_flags(void);   /* the C compiler flags of this build */
unsigned mg_fp_state(void);         /* the calling thread's MXCSR (0 off x86) */

/* Ids of the kernels in mg_kernels.def, and their catalogue. */
enum { MG_KIND_UNARY, MG_KIND_BINARY, MG_KIND_ROWS, MG_KIND_ROWS_BACKWARD, MG_KIND_LOSS };
enum {
#define MG_UNARY(name, doc) MG_K_##name,
#define MG_BINARY(name, arg, doc) MG_K_##name,
#define MG_ROWS(name, doc) MG_K_##name,
#define MG_ROWS_BACKWARD(name, doc) MG_K_##name,
#define MG_LOSS(name, doc) MG_K_##name,
#include "mg_kernels.def"
    MG_KERNEL_COUNT
};
typedef struct {
    int kind;
    const char *name, *arg, *doc; /* arg: the second input of a BINARY kernel */
} mg_kernel_info;
extern const mg_kernel_info mg_kernel_catalog[MG_KERNEL_COUNT];

/* Hyper-parameters of one Adam step (PyTorch's torch.optim.Adam / AdamW). */
typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
    int64_t step;   /* >= 1: the number of this step */
    int decoupled;  /* 1: AdamW's decoupled weight decay */
} mg_adam_params;

/* Geometry of a 2-D sliding window over x (n, c, h, w) giving (n, oc, oh, ow);
 * for pooling oc == c. Window (kh, kw), stride, zero padding, dilation. */
typedef struct {
    ptrdiff_t n, c, h, w, oc, oh, ow;
    ptrdiff_t kh, kw, sh, sw, ph, pw, dh, dw;
} mg_conv2d_geom;

/* Taps [*lo, *hi) of a k-tap window along one axis at output o that read
 * inside [0, size) (tap t reads o * s - p + t * d); empty when *lo >= *hi. */
static inline void mg_window_taps(ptrdiff_t o, ptrdiff_t k, ptrdiff_t s, ptrdiff_t p,
                                  ptrdiff_t d, ptrdiff_t size, ptrdiff_t *lo, ptrdiff_t *hi)
{
    const ptrdiff_t a = o * s - p, last = a >= size ? 0 : (size - 1 - a) / d + 1;
    *lo = a < 0 ? (-a + d - 1) / d : 0;
    *hi = last < k ? last : k;
}

#define MG_DECLARE(T, S)                                                        \
    int mg_gemm_##S(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,                      \
                    const T *A, ptrdiff_t rsa, ptrdiff_t csa,                   \
                    const T *B, ptrdiff_t rsb, ptrdiff_t csb,                   \
                    T *C, ptrdiff_t ldc, int accumulate,                        \
                    const T *bias, int relu);                                   \
    int mg_unary_##S(int kernel, ptrdiff_t n, const T *x, T *y);                \
    int mg_binary_##S(int kernel, ptrdiff_t n, const T *g, const T *a, T *dx);  \
    int mg_rows_##S(int kernel, ptrdiff_t m, ptrdiff_t n, const T *x, T *y);    \
    int mg_rows_backward_##S(int kernel, ptrdiff_t m, ptrdiff_t n, const T *g,  \
                             const T *y, T *dx);                                \
    int mg_loss_##S(int kernel, ptrdiff_t n, const T *z, const T *t, T *grad,   \
                    double *loss);                                              \
    void mg_bias_grad_##S(ptrdiff_t m, ptrdiff_t n, const T *g, T *db);         \
    void mg_relu_backward_bias_grad_##S(ptrdiff_t m, ptrdiff_t n, const T *g,   \
                                        const T *y, T *dx, T *db);              \
    int mg_softmax_cross_entropy_##S(ptrdiff_t m, ptrdiff_t c, const T *z,      \
                                     const int64_t *labels, T *grad,            \
                                     double *loss);                             \
    int mg_linear_cross_entropy_##S(ptrdiff_t m, ptrdiff_t k, ptrdiff_t c,     \
                                    const T *x, const T *w, const T *bias,      \
                                    const int64_t *labels, int relu, T *z,      \
                                    T *dz, T *dx, double *loss);                \
    void mg_sgd_step_##S(ptrdiff_t n, T *p, const T *g, T *v, T lr, T momentum, \
                         T weight_decay);                                       \
    void mg_adam_step_##S(ptrdiff_t n, T *p, const T *g, T *m, T *v,            \
                          const mg_adam_params *h);                     \
    int mg_conv2d_##S(const mg_conv2d_geom *g, const T *x, const T *w,          \
                      const T *b, int relu, T *y);                              \
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

MG_DECLARE(float, f32)
MG_DECLARE(double, f64)
#undef MG_DECLARE

#endif
