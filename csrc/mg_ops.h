/* The per-ISA ops table (mg_ops_f32, mg_ops_f64): one named field per kernel
 * body, filled by mg_isa_tmpl.h for each (type, ISA) with designated
 * initializers and used by the drivers. */
#ifndef MG_OPS_H
#define MG_OPS_H
#include <stddef.h>
#include <stdint.h>

#include "mg_kernels.h" /* mg_conv2d_geom */

#define MG_OPS_T float
#define MG_OPS_S(name) name##_f32
#include "mg_ops_tmpl.h"
#undef MG_OPS_T
#undef MG_OPS_S

#define MG_OPS_T double
#define MG_OPS_S(name) name##_f64
#include "mg_ops_tmpl.h"
#undef MG_OPS_T
#undef MG_OPS_S

extern const mg_ops_f32 mg_ops_f32_generic, mg_ops_f32_avx2, mg_ops_f32_avx512;
extern const mg_ops_f64 mg_ops_f64_generic, mg_ops_f64_avx2, mg_ops_f64_avx512;

#endif
