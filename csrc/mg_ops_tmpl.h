/* The ops table of one element type (included by mg_ops.h with MG_OPS_T and
 * MG_OPS_S). Fields of the kernels in mg_kernels.def are generated from the
 * list; the GEMM macro-kernels and the kernels of their own shape are
 * declared by hand. */
#define T MG_OPS_T
#define S MG_OPS_S

typedef struct {
    T lr, beta1, beta2, eps, weight_decay;
    T step_size; /* lr / (1 - beta1^step) */
    T bc2_sqrt;  /* sqrt(1 - beta2^step) */
    int decoupled;
} S(mg_adam);

typedef void (*S(mg_unary_fn))(ptrdiff_t n, const T *x, T *y);
typedef void (*S(mg_binary_fn))(ptrdiff_t n, const T *g, const T *a, T *dx);
typedef void (*S(mg_rows_fn))(ptrdiff_t m, ptrdiff_t n, const T *x, T *y);
typedef void (*S(mg_rows_backward_fn))(ptrdiff_t m, ptrdiff_t n, const T *g, const T *y,
                                       T *dx);
/* returns the sum of the loss terms and sets grad = scale * d(term)/dz */
typedef double (*S(mg_loss_fn))(ptrdiff_t n, const T *z, const T *t, T *grad, T scale);

typedef struct {
    int mr, nr; /* micro-tile of the GEMM micro-kernel */
    int vl;     /* elements in a vector */
    void (*macro)(ptrdiff_t mc, ptrdiff_t nc, ptrdiff_t kc, const T *ap, const T *bp, T *c,
                  ptrdiff_t rsc, ptrdiff_t csc, int load_c, const T *bias, int relu);
    void (*macro_direct)(ptrdiff_t mc, ptrdiff_t nc, ptrdiff_t kc, const T *a, ptrdiff_t rsa,
                         ptrdiff_t csa, T *edge, const T *bp, T *c, ptrdiff_t rsc,
                         ptrdiff_t csc, int load_c, const T *bias, int relu);
    void (*small)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *a, ptrdiff_t rsa, const T *b,
                  ptrdiff_t csb, T *c, ptrdiff_t rsc, ptrdiff_t csc, int load_c, const T *bias,
                  int relu);
    void (*head_logits)(ptrdiff_t m, ptrdiff_t k, ptrdiff_t c, const T *x, ptrdiff_t rs,
                        const T *wt, const T *bias, T *z);
    void (*head_input_grad)(ptrdiff_t m, ptrdiff_t k, ptrdiff_t c, const T *dz, const T *w,
                            const T *wtail, const T *x, int relu, T *dx);
    void (*pack_a)(ptrdiff_t mc, ptrdiff_t kc, const T *a, ptrdiff_t rs, T *dst);
    void (*pack_bt)(ptrdiff_t kc, int n, const T *b, ptrdiff_t cs, T *dst);
    void (*u8_rows)(ptrdiff_t rows, ptrdiff_t n, const uint8_t *src, ptrdiff_t rs, T *dst,
                    ptrdiff_t ds, T s, T r, int divide);
    void (*bias_grad)(ptrdiff_t m, ptrdiff_t n, const T *g_mn, T *db_n);
    void (*relu_backward_bias_grad)(ptrdiff_t m, ptrdiff_t n, const T *g_mn, const T *y_mn,
                                    T *dx_mn, T *db_n);
    double (*softmax_cross_entropy)(ptrdiff_t m, ptrdiff_t c, const T *z_mc,
                                    const int64_t *labels_m, T *grad_mc, T scale);
    void (*sgd_step)(ptrdiff_t n, T *p, const T *g, T *v, T lr, T momentum, T weight_decay);
    void (*adam_step)(ptrdiff_t n, T *p, const T *g, T *m, T *v, const S(mg_adam) *h);
    /* max pooling of vl planes side by side (mg_pool_lanes.h) */
    void (*max_pool_planes)(const mg_conv2d_geom *g, const T *x, ptrdiff_t planes, T *y,
                            int64_t *indices, void *scratch);
#define MG_UNARY(name, doc) S(mg_unary_fn) name;
#define MG_BINARY(name, arg, doc) S(mg_binary_fn) name;
#define MG_ROWS(name, doc) S(mg_rows_fn) name;
#define MG_ROWS_BACKWARD(name, doc) S(mg_rows_backward_fn) name;
#define MG_LOSS(name, doc) S(mg_loss_fn) name;
#include "mg_kernels.def"
} S(mg_ops);

#undef T
#undef S
