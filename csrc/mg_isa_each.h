/* Instantiates mg_isa_tmpl.h for the element type defined by the includer
 * (MG_T, MG_UT, MG_IS_F64, MG_IS_F64_NAME) on each instruction set, each
 * compiled for its own target: `#pragma GCC target` on GCC, which Clang
 * ignores, so `#pragma clang attribute` there (MG_TARGET_PUSH/POP).
 * Micro-tiles: 12 x 2 vectors with 32 vector registers (AVX-512), 6 x 2 with
 * 16 (AVX2, SSE2). */
#define MG_EACH_CAT2(a, b) a##_##b
#define MG_EACH_CAT(a, b) MG_EACH_CAT2(a, b)

#ifdef __clang__
#define MG_TARGET_PUSH(isa) \
    _Pragma(MG_EACH_STR(clang attribute push(__attribute__((target(isa))), apply_to = function)))
#define MG_TARGET_POP() _Pragma("clang attribute pop")
#else
#define MG_TARGET_PUSH(isa) _Pragma("GCC push_options") _Pragma(MG_EACH_STR(GCC target(isa)))
#define MG_TARGET_POP() _Pragma("GCC pop_options")
#endif
#define MG_EACH_STR(x) #x

#if defined(__x86_64__) || defined(__i386__)
MG_TARGET_PUSH("avx512f,avx512vl,avx512dq,avx2,fma")
#define MG_SFX MG_EACH_CAT(MG_IS_F64_NAME, avx512)
#define MG_VB 64
#define MG_MR 12
#define MG_NV 2
#include "mg_isa_tmpl.h"
#undef MG_SFX
#undef MG_VB
#undef MG_MR
#undef MG_NV
MG_TARGET_POP()

MG_TARGET_PUSH("avx2,fma")
#define MG_SFX MG_EACH_CAT(MG_IS_F64_NAME, avx2)
#define MG_VB 32
#define MG_MR 6
#define MG_NV 2
#include "mg_isa_tmpl.h"
#undef MG_SFX
#undef MG_VB
#undef MG_MR
#undef MG_NV
MG_TARGET_POP()
#endif

#define MG_SFX MG_EACH_CAT(MG_IS_F64_NAME, generic)
#define MG_VB 16
#define MG_MR 6
#define MG_NV 2
#include "mg_isa_tmpl.h"
#undef MG_SFX
#undef MG_VB
#undef MG_MR
#undef MG_NV

#undef MG_TARGET_PUSH
#undef MG_TARGET_POP
#undef MG_EACH_STR
#undef MG_EACH_CAT
#undef MG_EACH_CAT2
