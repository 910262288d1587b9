/* Public C API of minigrad's kernels, called from Cython (_kernels.pyx).
 * Functions returning int return 0, or -1 when memory ran out.
 *
 * Every function trusts its arguments: shapes, strides and aliasing are
 * validated once at the Cython boundary. All of them are safe to call without
 * the GIL. Strides are in elements, not bytes. */
#ifndef MG_KERNELS_H
#define MG_KERNELS_H
#include <stddef.h>
#include <stdint.h>

enum { MG_ISA_GENERIC = 0, MG_ISA_AVX2 = 1, MG_ISA_AVX512 = 2 };

int mg_isa_best(void);
int mg_isa_active(void);
int mg_set_isa(int isa);            /* returns 0, or -1 if the CPU lacks it */
const char *mg_isa_name(int isa);
int mg_get_num_threads(void);
void mg_set_num_threads(int n);
int mg_openmp_enabled(void);
const char *mg_build_flags(void);   /* the C compiler flags of this build */

#define MG_DECLARE(T, S)                                                        \
    int mg_gemm_##S(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,                      \
                    const T *A, ptrdiff_t rsa, ptrdiff_t csa,                   \
                    const T *B, ptrdiff_t rsb, ptrdiff_t csb,                   \
                    T *C, ptrdiff_t ldc, int accumulate,                        \
                    const T *bias, int relu);                                   \
    void mg_relu_##S(ptrdiff_t n, const T *x, T *y);                            \
    void mg_relu_backward_##S(ptrdiff_t n, const T *g, const T *x, T *dx);      \
    void mg_relu_backward_bias_##S(ptrdiff_t m, ptrdiff_t n, const T *g,        \
                                   const T *y, T *dx, T *db);                   \
    void mg_sigmoid_##S(ptrdiff_t n, const T *x, T *y);                         \
    void mg_sigmoid_backward_##S(ptrdiff_t n, const T *g, const T *y, T *dx);   \
    void mg_bias_grad_##S(ptrdiff_t m, ptrdiff_t n, const T *g, T *db);         \
    int mg_mnist_loss_##S(ptrdiff_t n, const T *z, const T *t, T *grad,         \
                          double *loss);                                        \
    int mg_bce_logits_##S(ptrdiff_t n, const T *z, const T *t, T *grad,         \
                          double *loss);                                        \
    int mg_softmax_ce_##S(ptrdiff_t m, ptrdiff_t c, const T *z,                 \
                          const int64_t *labels, T *grad, double *loss);        \
    void mg_sgd_##S(ptrdiff_t n, T *p, const T *g, T *v, T lr, T momentum,      \
                    T weight_decay);

MG_DECLARE(float, f32)
MG_DECLARE(double, f64)
#undef MG_DECLARE

#endif
