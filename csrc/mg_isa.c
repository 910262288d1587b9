/* Instantiates the per-ISA kernels (mg_isa_tmpl.h, through mg_isa_each.h) for
 * float and double. mg_driver.c picks one instruction set at run time from
 * the CPU's features, so one binary runs on any x86-64. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h> /* before any target region: mg_gemm_kernels.h's byte widening */
#endif

#include "mg_ops.h"

#define MG_T float
#define MG_UT uint32_t
#define MG_IS_F64 0
#define MG_IS_F64_NAME f32
#include "mg_isa_each.h"
#undef MG_T
#undef MG_UT
#undef MG_IS_F64
#undef MG_IS_F64_NAME

#define MG_T double
#define MG_UT uint64_t
#define MG_IS_F64 1
#define MG_IS_F64_NAME f64
#include "mg_isa_each.h"
