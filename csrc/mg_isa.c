/* Instantiates mg_isa_tmpl.h for float and double on three instruction sets.
 * Each instantiation is compiled for its own target; mg_driver.c picks one at
 * run time from the CPU's features, so one binary runs on any x86-64. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "mg_internal.h"

/* float */
#define MG_T float
#define MG_UT uint32_t
#define MG_IS_F64 0
#define MG_IS_F64_NAME f32

#if defined(__x86_64__) || defined(__i386__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx2,fma")
#define MG_SFX f32_avx512
#define MG_VB 64
#define MG_MR 12
#define MG_NV 2
#include "mg_isa_tmpl.h"
#undef MG_SFX
#undef MG_VB
#undef MG_MR
#undef MG_NV
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define MG_SFX f32_avx2
#define MG_VB 32
#define MG_MR 6
#define MG_NV 2
#include "mg_isa_tmpl.h"
#undef MG_SFX
#undef MG_VB
#undef MG_MR
#undef MG_NV
#pragma GCC pop_options
#endif

#define MG_SFX f32_generic
#define MG_VB 16
#define MG_MR 6
#define MG_NV 2
#include "mg_isa_tmpl.h"
#undef MG_SFX
#undef MG_VB
#undef MG_MR
#undef MG_NV

#undef MG_T
#undef MG_UT
#undef MG_IS_F64
#undef MG_IS_F64_NAME

/* double */
#define MG_T double
#define MG_UT uint64_t
#define MG_IS_F64 1
#define MG_IS_F64_NAME f64

#if defined(__x86_64__) || defined(__i386__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx2,fma")
#define MG_SFX f64_avx512
#define MG_VB 64
#define MG_MR 12
#define MG_NV 2
#include "mg_isa_tmpl.h"
#undef MG_SFX
#undef MG_VB
#undef MG_MR
#undef MG_NV
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define MG_SFX f64_avx2
#define MG_VB 32
#define MG_MR 6
#define MG_NV 2
#include "mg_isa_tmpl.h"
#undef MG_SFX
#undef MG_VB
#undef MG_MR
#undef MG_NV
#pragma GCC pop_options
#endif

#define MG_SFX f64_generic
#define MG_VB 16
#define MG_MR 6
#define MG_NV 2
#include "mg_isa_tmpl.h"
