/* All kernel bodies for one element type and one instruction set, and their
 * ops table (mg_ops.h) with one designated initializer per field.
 *
 * Included by mg_isa_each.h once per (type, ISA) under a `#pragma GCC target`:
 *   MG_T      element type (float or double)    MG_IS_F64  1 for double
 *   MG_UT     unsigned integer of the same width
 *   MG_SFX    name suffix, e.g. f32_avx512       MG_VB      vector width in bytes
 *   MG_MR     micro-tile rows                    MG_NV      vectors per micro-tile row
 * The GEMM micro-kernel uses GCC vector extensions, so one source serves every
 * vector width; the other kernels are scalar loops that the compiler
 * vectorizes. */

#define MG_CAT2(a, b) a##_##b
#define MG_CAT(a, b) MG_CAT2(a, b)
#define FN(name) MG_CAT(name, MG_SFX)

typedef MG_T FN(vec) __attribute__((vector_size(MG_VB)));
typedef MG_UT FN(uvec) __attribute__((vector_size(MG_VB)));
#define V FN(vec)
#define UV FN(uvec)
#define VL ((int)(MG_VB / sizeof(MG_T)))
#define NR (MG_NV * VL)

#include "mg_gemm_kernels.h"
#include "mg_math.h"
#include "mg_elementwise.h"
#include "mg_pool_lanes.h"

const MG_CAT(mg_ops, MG_IS_F64_NAME) MG_CAT(mg_ops, MG_SFX) = {
    .mr = MG_MR,
    .nr = NR,
    .vl = VL,
    .macro = FN(macro),
    .macro_direct = FN(macro_direct),
    .small = FN(small),
    .head_logits = FN(head_logits),
    .head_input_grad = FN(head_input_grad),
    .pack_a = FN(pack_a),
    .pack_bt = FN(pack_bt),
    .u8_rows = FN(u8_rows),
    .bias_grad = FN(bias_grad),
    .relu_backward_bias_grad = FN(relu_backward_bias_grad),
    .softmax_cross_entropy = FN(softmax_cross_entropy),
    .sgd_step = FN(sgd_step),
    .adam_step = FN(adam_step),
    .max_pool_planes = FN(max_pool_planes),
#define MG_UNARY(name, doc) .name = FN(name),
#define MG_BINARY(name, arg, doc) .name = FN(name),
#define MG_ROWS(name, doc) .name = FN(name),
#define MG_ROWS_BACKWARD(name, doc) .name = FN(name),
#define MG_LOSS(name, doc) .name = FN(name),
#include "mg_kernels.def"
};

#undef V
#undef UV
#undef VL
#undef NR
#undef FN
#undef MG_CAT
#undef MG_CAT2
