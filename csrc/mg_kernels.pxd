# Cython declarations of the C kernels in mg_kernels.h.
from libc.stdint cimport int64_t


cdef extern from "mg_kernels.h" nogil:
    int mg_isa_best()
    int mg_isa_active()
    int mg_set_isa(int isa)
    const char *mg_isa_name(int isa)
    int mg_get_num_threads()
    void mg_set_num_threads(int n)
    int mg_openmp_enabled()
    const char *mg_build_flags()

    int mg_gemm_f32(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                    const float *A, Py_ssize_t rsa, Py_ssize_t csa,
                    const float *B, Py_ssize_t rsb, Py_ssize_t csb,
                    float *C, Py_ssize_t ldc, int accumulate, const float *bias, int relu)
    int mg_gemm_f64(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                    const double *A, Py_ssize_t rsa, Py_ssize_t csa,
                    const double *B, Py_ssize_t rsb, Py_ssize_t csb,
                    double *C, Py_ssize_t ldc, int accumulate, const double *bias, int relu)
    void mg_relu_f32(Py_ssize_t n, const float *x, float *y)
    void mg_relu_f64(Py_ssize_t n, const double *x, double *y)
    void mg_relu_backward_f32(Py_ssize_t n, const float *g, const float *x, float *dx)
    void mg_relu_backward_f64(Py_ssize_t n, const double *g, const double *x, double *dx)
    void mg_relu_backward_bias_f32(Py_ssize_t m, Py_ssize_t n, const float *g,
                                   const float *y, float *dx, float *db)
    void mg_relu_backward_bias_f64(Py_ssize_t m, Py_ssize_t n, const double *g,
                                   const double *y, double *dx, double *db)
    void mg_sigmoid_f32(Py_ssize_t n, const float *x, float *y)
    void mg_sigmoid_f64(Py_ssize_t n, const double *x, double *y)
    void mg_sigmoid_backward_f32(Py_ssize_t n, const float *g, const float *y, float *dx)
    void mg_sigmoid_backward_f64(Py_ssize_t n, const double *g, const double *y, double *dx)
    void mg_bias_grad_f32(Py_ssize_t m, Py_ssize_t n, const float *g, float *db)
    void mg_bias_grad_f64(Py_ssize_t m, Py_ssize_t n, const double *g, double *db)
    int mg_mnist_loss_f32(Py_ssize_t n, const float *z, const float *t, float *grad,
                          double *loss)
    int mg_mnist_loss_f64(Py_ssize_t n, const double *z, const double *t, double *grad,
                          double *loss)
    int mg_bce_logits_f32(Py_ssize_t n, const float *z, const float *t, float *grad,
                          double *loss)
    int mg_bce_logits_f64(Py_ssize_t n, const double *z, const double *t, double *grad,
                          double *loss)
    int mg_softmax_ce_f32(Py_ssize_t m, Py_ssize_t c, const float *z,
                          const int64_t *labels, float *grad, double *loss)
    int mg_softmax_ce_f64(Py_ssize_t m, Py_ssize_t c, const double *z,
                          const int64_t *labels, double *grad, double *loss)
    void mg_sgd_f32(Py_ssize_t n, float *p, const float *g, float *v, float lr,
                    float momentum, float weight_decay)
    void mg_sgd_f64(Py_ssize_t n, double *p, const double *g, double *v, double lr,
                    double momentum, double weight_decay)
