# Cython declarations of the NCHW kernels in mg_conv.h.
from libc.stdint cimport int64_t


cdef extern from "mg_conv.h" nogil:
    ctypedef struct mg_conv2d_geom:
        Py_ssize_t n, c, h, w, oc, oh, ow
        Py_ssize_t kh, kw, sh, sw, ph, pw, dh, dw

    int mg_conv2d_f32(const mg_conv2d_geom *g, const float *x, const float *w,
                      const float *b, float *y)
    int mg_conv2d_f64(const mg_conv2d_geom *g, const double *x, const double *w,
                      const double *b, double *y)
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
