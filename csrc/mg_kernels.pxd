# Cython declarations of the C kernels in mg_kernels.h.
from libc.stdint cimport int64_t


cdef extern from "mg_kernels.h" nogil:
    int mg_isa_best()
    int mg_isa_active()
    int mg_set_isa(int isa)
    int mg_get_num_threads()
    void mg_set_num_threads(int n)
    void mg_backoff_set(int enabled, double first_wait_seconds, double test_late_seconds,
                        double test_off_seconds)
    void mg_backoff_stats(int64_t *out)
    int mg_openmp_enabled()
    const char *mg_build_flags()
    unsigned mg_fp_state()

    enum: MG_KERNEL_COUNT
    enum: MG_KIND_UNARY, MG_KIND_BINARY, MG_KIND_ROWS, MG_KIND_ROWS_BACKWARD, MG_KIND_LOSS
    ctypedef struct mg_kernel_info:
        int kind
        const char *name
        const char *arg
        const char *doc
    const mg_kernel_info mg_kernel_catalog[]

    ctypedef struct mg_adam_params:
        double lr, beta1, beta2, eps, weight_decay
        int64_t step
        int decoupled

    int mg_gemm_f32(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                    const float *A, Py_ssize_t rsa, Py_ssize_t csa,
                    const float *B, Py_ssize_t rsb, Py_ssize_t csb,
                    float *C, Py_ssize_t ldc, int accumulate, const float *bias, int relu)
    int mg_gemm_f64(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                    const double *A, Py_ssize_t rsa, Py_ssize_t csa,
                    const double *B, Py_ssize_t rsb, Py_ssize_t csb,
                    double *C, Py_ssize_t ldc, int accumulate, const double *bias, int relu)

    int mg_unary_f32(int kernel, Py_ssize_t n, const float *x, float *y)
    int mg_unary_f64(int kernel, Py_ssize_t n, const double *x, double *y)
    int mg_binary_f32(int kernel, Py_ssize_t n, const float *g, const float *a, float *dx)
    int mg_binary_f64(int kernel, Py_ssize_t n, const double *g, const double *a, double *dx)
    int mg_rows_f32(int kernel, Py_ssize_t m, Py_ssize_t n, const float *x, float *y)
    int mg_rows_f64(int kernel, Py_ssize_t m, Py_ssize_t n, const double *x, double *y)
    int mg_rows_backward_f32(int kernel, Py_ssize_t m, Py_ssize_t n, const float *g,
                             const float *y, float *dx)
    int mg_rows_backward_f64(int kernel, Py_ssize_t m, Py_ssize_t n, const double *g,
                             const double *y, double *dx)
    int mg_loss_f32(int kernel, Py_ssize_t n, const float *z, const float *t, float *grad,
                    double *loss)
    int mg_loss_f64(int kernel, Py_ssize_t n, const double *z, const double *t, double *grad,
                    double *loss)

    void mg_bias_grad_f32(Py_ssize_t m, Py_ssize_t n, const float *g, float *db)
    void mg_bias_grad_f64(Py_ssize_t m, Py_ssize_t n, const double *g, double *db)
    void mg_relu_backward_bias_grad_f32(Py_ssize_t m, Py_ssize_t n, const float *g,
                                        const float *y, float *dx, float *db)
    void mg_relu_backward_bias_grad_f64(Py_ssize_t m, Py_ssize_t n, const double *g,
                                        const double *y, double *dx, double *db)
    int mg_softmax_cross_entropy_f32(Py_ssize_t m, Py_ssize_t c, const float *z,
                                     const int64_t *labels, float *grad, double *loss)
    int mg_softmax_cross_entropy_f64(Py_ssize_t m, Py_ssize_t c, const double *z,
                                     const int64_t *labels, double *grad, double *loss)
    int mg_linear_cross_entropy_f32(Py_ssize_t m, Py_ssize_t k, Py_ssize_t c, const float *x,
                                    const float *w, const float *bias, const int64_t *labels,
                                    int relu, float *z, float *dz, float *dx, double *loss)
    int mg_linear_cross_entropy_f64(Py_ssize_t m, Py_ssize_t k, Py_ssize_t c, const double *x,
                                    const double *w, const double *bias,
                                    const int64_t *labels, int relu, double *z, double *dz,
                                    double *dx, double *loss)
    void mg_sgd_step_f32(Py_ssize_t n, float *p, const float *g, float *v, float lr,
                         float momentum, float weight_decay)
    void mg_sgd_step_f64(Py_ssize_t n, double *p, const double *g, double *v, double lr,
                         double momentum, double weight_decay)
    void mg_adam_step_f32(Py_ssize_t n, float *p, const float *g, float *m, float *v,
                          const mg_adam_params *h)
    void mg_adam_step_f64(Py_ssize_t n, double *p, const double *g, double *m, double *v,
                          const mg_adam_params *h)

    ctypedef struct mg_conv2d_geom:
        Py_ssize_t n, c, h, w, oc, oh, ow
        Py_ssize_t kh, kw, sh, sw, ph, pw, dh, dw

    int mg_conv2d_f32(const mg_conv2d_geom *g, const float *x, const float *w,
                      const float *b, int relu, float *y)
    int mg_conv2d_f64(const mg_conv2d_geom *g, const double *x, const double *w,
                      const double *b, int relu, double *y)
    int mg_conv2d_backward_input_f32(const mg_conv2d_geom *g, const float *dy,
                                     const float *w, float *dx)
    int mg_conv2d_backward_input_f64(const mg_conv2d_geom *g, const double *dy,
                                     const double *w, double *dx)
    int mg_conv2d_backward_weight_f32(const mg_conv2d_geom *g, const float *x,
                                      const float *dy, float *dw, int accumulate)
    int mg_conv2d_backward_weight_f64(const mg_conv2d_geom *g, const double *x,
                                      const double *dy, double *dw, int accumulate)
    void mg_channel_sum_f32(Py_ssize_t n, Py_ssize_t c, Py_ssize_t hw, const float *x,
                            float *out)
    void mg_channel_sum_f64(Py_ssize_t n, Py_ssize_t c, Py_ssize_t hw, const double *x,
                            double *out)
    void mg_max_pool2d_f32(const mg_conv2d_geom *g, const float *x, float *y,
                           int64_t *indices)
    void mg_max_pool2d_f64(const mg_conv2d_geom *g, const double *x, double *y,
                           int64_t *indices)
    void mg_max_pool2d_backward_f32(const mg_conv2d_geom *g, const float *dy,
                                    const int64_t *indices, float *dx)
    void mg_max_pool2d_backward_f64(const mg_conv2d_geom *g, const double *dy,
                                    const int64_t *indices, double *dx)
    void mg_avg_pool2d_f32(const mg_conv2d_geom *g, const float *x, float *y,
                           int count_include_pad)
    void mg_avg_pool2d_f64(const mg_conv2d_geom *g, const double *x, double *y,
                           int count_include_pad)
    void mg_avg_pool2d_backward_f32(const mg_conv2d_geom *g, const float *dy, float *dx,
                                    int count_include_pad)
    void mg_avg_pool2d_backward_f64(const mg_conv2d_geom *g, const double *dy, double *dx,
                                    int count_include_pad)
    void mg_adaptive_avg_pool2d_f32(const mg_conv2d_geom *g, const float *x, float *y)
    void mg_adaptive_avg_pool2d_f64(const mg_conv2d_geom *g, const double *x, double *y)
    void mg_adaptive_avg_pool2d_backward_f32(const mg_conv2d_geom *g, const float *dy,
                                             float *dx)
    void mg_adaptive_avg_pool2d_backward_f64(const mg_conv2d_geom *g, const double *dy,
                                             double *dx)
    void mg_batch_norm_f32(Py_ssize_t n, Py_ssize_t c, Py_ssize_t hw, const float *x,
                           const float *weight, const float *bias, float *running_mean,
                           float *running_var, int training, double momentum, double eps,
                           int relu, float *y, float *save_mean, float *save_invstd)
    void mg_batch_norm_f64(Py_ssize_t n, Py_ssize_t c, Py_ssize_t hw, const double *x,
                           const double *weight, const double *bias, double *running_mean,
                           double *running_var, int training, double momentum, double eps,
                           int relu, double *y, double *save_mean, double *save_invstd)
    void mg_batch_norm_backward_f32(Py_ssize_t n, Py_ssize_t c, Py_ssize_t hw,
                                    const float *dy, const float *x, const float *weight,
                                    const float *save_mean, const float *save_invstd,
                                    int training, const float *y, float *dx,
                                    float *dweight, float *dbias)
    void mg_batch_norm_backward_f64(Py_ssize_t n, Py_ssize_t c, Py_ssize_t hw,
                                    const double *dy, const double *x, const double *weight,
                                    const double *save_mean, const double *save_invstd,
                                    int training, const double *y, double *dx,
                                    double *dweight, double *dbias)
