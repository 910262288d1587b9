/* Tables of per-ISA kernels, shared by mg_isa.c (which fills them) and
 * mg_driver.c (which picks one and runs it over threads). */
#ifndef MG_INTERNAL_H
#define MG_INTERNAL_H
#include <stddef.h>
#include <stdint.h>

#define MG_OPS_STRUCT(T, S)                                                     \
    typedef struct {                                                            \
        int mr, nr; /* micro-tile of the GEMM micro-kernel */                   \
        void (*macro)(ptrdiff_t mc, ptrdiff_t nc, ptrdiff_t kc, const T *ap,    \
                      const T *bp, T *c, ptrdiff_t rsc, ptrdiff_t csc,          \
                      int load_c, const T *bias, int relu);                     \
        void (*macro_direct)(ptrdiff_t mc, ptrdiff_t nc, ptrdiff_t kc, const T *a,   \
                             ptrdiff_t rsa, ptrdiff_t csa, T *edge, const T *bp,      \
                             T *c, ptrdiff_t rsc, ptrdiff_t csc, int load_c,          \
                             const T *bias, int relu);                                \
        void (*relu)(ptrdiff_t n, const T *x, T *y);                            \
        void (*relu_backward)(ptrdiff_t n, const T *g, const T *x, T *dx);      \
        void (*relu_backward_bias)(ptrdiff_t m, ptrdiff_t n, const T *g,        \
                                   const T *y, T *dx, T *db);                   \
        void (*sigmoid)(ptrdiff_t n, const T *x, T *y);                         \
        void (*sigmoid_backward)(ptrdiff_t n, const T *g, const T *y, T *dx);   \
        void (*add_rows)(ptrdiff_t m, ptrdiff_t n, const T *g, T *db);          \
        double (*mnist_loss)(ptrdiff_t n, const T *z, const T *t, T *grad,      \
                             T scale);                                          \
        double (*bce_logits)(ptrdiff_t n, const T *z, const T *t, T *grad,      \
                             T scale);                                          \
        double (*softmax_ce)(ptrdiff_t m, ptrdiff_t c, const T *z,              \
                             const int64_t *labels, T *grad, T scale);          \
        void (*sgd)(ptrdiff_t n, T *p, const T *g, T *v, T lr, T momentum,      \
                    T weight_decay);                                            \
    } mg_ops_##S;

MG_OPS_STRUCT(float, f32)
MG_OPS_STRUCT(double, f64)
#undef MG_OPS_STRUCT

/* Brackets a kernel call (mg_driver.c): returns the threads it may use --
 * `wanted`, or 1 while another call is in flight; mg_leave ends the call. */
int mg_enter(int wanted);
void mg_leave(void);

extern const mg_ops_f32 mg_ops_f32_generic, mg_ops_f32_avx2, mg_ops_f32_avx512;
extern const mg_ops_f64 mg_ops_f64_generic, mg_ops_f64_avx2, mg_ops_f64_avx512;

#endif
