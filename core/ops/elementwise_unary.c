/*
 * elementwise_unary.c: one-input elementwise operators: Abs Neg Sign Relu
 * (numeric types); Sqrt Exp Log Reciprocal Erf Tanh Sigmoid LeakyRelu Elu
 * Selu Celu HardSigmoid HardSwish Softplus Softsign ThresholdedRelu Shrink
 * Gelu Mish Floor Ceil Round, the trigonometric and hyperbolic functions
 * (float types); IsNaN IsInf (float to bool); Not (bool); and Clip.
 *
 * Output and input have one shape, so each run is one loop over the
 * tensor. float16 goes through the float32 kernel in stack chunks, as
 * numpy computes its float16 ufuncs in float32. Attributes are read once
 * at prepare into the node's kernel state.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "ops.h"
#include "ops_vec.h"

/* see elementwise.c: the loops need the cheap vectoriser cost model */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=cheap", "no-trapping-math")
#endif

enum { TI_F32, TI_F64, TI_I8, TI_I16, TI_I32, TI_I64, TI_U8, TI_U16, TI_U32, TI_U64, TI_BOOL, TI_N };

/* Kernel table index of a dtype; float16 maps to float32. -1 if none. */
static int type_index(int dtype)
{
    switch (dtype) {
    case NF_DT_FLOAT: case NF_DT_FLOAT16: return TI_F32;
    case NF_DT_DOUBLE: return TI_F64;
    case NF_DT_INT8: return TI_I8;
    case NF_DT_INT16: return TI_I16;
    case NF_DT_INT32: return TI_I32;
    case NF_DT_INT64: return TI_I64;
    case NF_DT_UINT8: return TI_U8;
    case NF_DT_UINT16: return TI_U16;
    case NF_DT_UINT32: return TI_U32;
    case NF_DT_UINT64: return TI_U64;
    case NF_DT_BOOL: return TI_BOOL;
    default: return -1;
    }
}

/* Kernel parameters: the operator's attributes, and Clip's bounds as the
 * element type (raw bytes, written at each run from the min/max inputs). */
typedef struct un_par {
    float alpha, beta, gamma;
    bool neg, pos; /* IsInf: detect_negative, detect_positive */
    union {
        float f32;
        double f64;
        int8_t i8;
        int16_t i16;
        int32_t i32;
        int64_t i64;
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
    } lo, hi;
} un_par;

typedef void (*un_fn)(void *y, const void *x, int64_t n, const un_par *p);

/* y[i] = EXPR(x) for n elements; y may equal x. ATTR: nothing, or
 * NF_VEC_CLONES (UN_LOOP_V) */
#define UN_LOOP_A(ATTR, name, T, EXPR)                                       \
    ATTR static void name(void *y_, const void *x_, int64_t n, const un_par *p) \
    {                                                                        \
        T *y = y_;                                                           \
        const T *xs = x_;                                                    \
        (void)p;                                                             \
        for (int64_t i = 0; i < n; i++) {                                    \
            T x = xs[i];                                                     \
            y[i] = (T)(EXPR);                                                \
        }                                                                    \
    }
#define UN_LOOP(name, T, EXPR) UN_LOOP_A(, name, T, EXPR)
/* UN_LOOP compiled for each SIMD level (ops_vec.h): the float32 loops
 * whose arithmetic, not memory, sets the pace */
#define UN_LOOP_V(name, T, EXPR) UN_LOOP_A(NF_VEC_CLONES, name, T, EXPR)

/* the same with a bool output (IsNaN, IsInf) */
#define UN_LOOP_BOOL(name, T, EXPR)                                          \
    static void name(void *y_, const void *x_, int64_t n, const un_par *p)   \
    {                                                                        \
        uint8_t *y = y_;                                                     \
        const T *xs = x_;                                                    \
        (void)p;                                                             \
        for (int64_t i = 0; i < n; i++) {                                    \
            T x = xs[i];                                                     \
            y[i] = (uint8_t)(EXPR);                                          \
        }                                                                    \
    }

/* (op, table name, C type, wrap type): integer negation wraps in the
 * unsigned type instead of being undefined for the minimum */
#define FLT_TYPES(X, op) X(op, F32, float, float) X(op, F64, double, double)
#define SINT_TYPES(X, op)                                                   \
    X(op, I8, int8_t, uint32_t) X(op, I16, int16_t, uint32_t) X(op, I32, int32_t, uint32_t) \
    X(op, I64, int64_t, uint64_t)
#define UINT_TYPES(X, op)                                                   \
    X(op, U8, uint8_t, uint32_t) X(op, U16, uint16_t, uint32_t) X(op, U32, uint32_t, uint32_t) \
    X(op, U64, uint64_t, uint64_t)
#define DEF(op, tn, T, U) UN_LOOP(op##_##tn, T, EX_##op(T, U))
#define ENT(op, tn, T, U) [TI_##tn] = op##_##tn,

#define EX_fabs(T, U) x < 0 ? -x : x
#define EX_sabs(T, U) x < 0 ? (T)((U)0 - (U)x) : x
#define EX_uabs(T, U) x
#define EX_fneg(T, U) -x
#define EX_sneg(T, U) (T)((U)0 - (U)x)
/* numpy.sign: NaN stays NaN */
#define EX_fsign(T, U) x > 0 ? 1 : x < 0 ? -1 : x
#define EX_ssign(T, U) x > 0 ? 1 : x < 0 ? -1 : 0
#define EX_usign(T, U) x > 0
/* max(x, 0); NaN stays NaN */
#define EX_relu(T, U) x < 0 ? 0 : x
#define EX_clip(T, U) clamp_##T(x, p)

FLT_TYPES(DEF, fabs)
SINT_TYPES(DEF, sabs)
UINT_TYPES(DEF, uabs)
FLT_TYPES(DEF, fneg)
SINT_TYPES(DEF, sneg)
FLT_TYPES(DEF, fsign)
SINT_TYPES(DEF, ssign)
UINT_TYPES(DEF, usign)
UN_LOOP_V(relu_F32, float, EX_relu(float, float))
UN_LOOP(relu_F64, double, EX_relu(double, double))
SINT_TYPES(DEF, relu)

/* Clip: min(max(x, lo), hi), which gives hi when lo > hi as the spec
 * (Clip-13) asks; NaN passes through. */
#define CLAMP_FN(tn, T, U)                                        \
    static inline T clamp_##T(T x, const un_par *p)               \
    {                                                             \
        T lo = p->lo.tn, hi = p->hi.tn, t = x < lo ? lo : x;      \
        return t > hi ? hi : t;                                   \
    }
#define CLAMP(op, tn, T, U) CLAMP_FN(op, T, U)
CLAMP(f32, F32, float, float)
CLAMP(f64, F64, double, double)
CLAMP(i8, I8, int8_t, uint32_t)
CLAMP(i16, I16, int16_t, uint32_t)
CLAMP(i32, I32, int32_t, uint32_t)
CLAMP(i64, I64, int64_t, uint64_t)
CLAMP(u8, U8, uint8_t, uint32_t)
CLAMP(u16, U16, uint16_t, uint32_t)
CLAMP(u32, U32, uint32_t, uint32_t)
CLAMP(u64, U64, uint64_t, uint64_t)
FLT_TYPES(DEF, clip)
SINT_TYPES(DEF, clip)
UINT_TYPES(DEF, clip)

/* ---- exp, sigmoid, tanh and erf in float32 without libm ----------------------
 * glibc's expf, tanhf and erff are scalar calls (13, 37 and 11 ns an
 * element on our test machine); nf__exp_f32 and nf__erf_f32 (ops_vec.h)
 * and these are branch-free, so the loops vectorise. Cephes tanhf
 * polynomial. Checked against exp/tanh in double over all 2^32 floats:
 * sigmoid within 3 ulp, tanh 2 (glibc's tanhf is also 2). */
/* 1 / (1 + e^-x) from e = e^-|x| <= 1, which cannot overflow: e / (1 + e)
 * for x < 0 */
NF_VEC_INLINE float sigmoid_f32(float x)
{
    float e = nf__exp_f32(x < 0 ? x : -x);
    float s = 1.0f / (1.0f + e);
    return x < 0 ? e * s : s;
}

/* |x| < 0.625: odd polynomial; else (1 - e) / (1 + e) with e = e^-2|x|,
 * where 1 - e does not cancel */
NF_VEC_INLINE float tanh_f32(float x)
{
    float a = fabsf(x), z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                    1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    float e = nf__exp_f32(-2.0f * a);
    float big = (1.0f - e) / (1.0f + e);
    big = x < 0 ? -big : big;
    return a < 0.625f ? small : big;
}

/* float-only operators, float32 and float64 spelled out (libm names) */
UN_LOOP_V(sqrt_F32, float, sqrtf(x))
UN_LOOP(sqrt_F64, double, sqrt(x))
UN_LOOP_V(exp_F32, float, nf__exp_f32(x))
UN_LOOP(exp_F64, double, exp(x))
UN_LOOP(log_F32, float, logf(x))
UN_LOOP(log_F64, double, log(x))
UN_LOOP_V(recip_F32, float, 1.0f / x)
UN_LOOP(recip_F64, double, 1.0 / x)
UN_LOOP_V(erf_F32, float, nf__erf_f32(x))
UN_LOOP(erf_F64, double, erf(x))
UN_LOOP_V(tanh_F32, float, tanh_f32(x))
UN_LOOP(tanh_F64, double, tanh(x))
UN_LOOP(floor_F32, float, floorf(x))
UN_LOOP(floor_F64, double, floor(x))
UN_LOOP(ceil_F32, float, ceilf(x))
UN_LOOP(ceil_F64, double, ceil(x))
UN_LOOP(sin_F32, float, sinf(x))
UN_LOOP(sin_F64, double, sin(x))
UN_LOOP(cos_F32, float, cosf(x))
UN_LOOP(cos_F64, double, cos(x))
UN_LOOP_V(sigmoid_F32, float, sigmoid_f32(x))
/* 1 / (1 + e^-x), as e^x / (1 + e^x) for x < 0 where e^-x would overflow */
UN_LOOP(sigmoid_F64, double, x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)))
/* log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large x */
UN_LOOP(softplus_F32, float, (x > 0 ? x : 0.0f) + log1pf(expf(x > 0 ? -x : x)))
UN_LOOP(softplus_F64, double, (x > 0 ? x : 0.0) + log1p(exp(x > 0 ? -x : x)))
UN_LOOP(leaky_F32, float, x < 0 ? p->alpha * x : x)
UN_LOOP(leaky_F64, double, x < 0 ? (double)p->alpha * x : x)
UN_LOOP(elu_F32, float, x < 0 ? p->alpha * expm1f(x) : x)
UN_LOOP(elu_F64, double, x < 0 ? (double)p->alpha * expm1(x) : x)
UN_LOOP(selu_F32, float, x > 0 ? p->gamma * x : p->gamma * p->alpha * expm1f(x))
UN_LOOP(selu_F64, double, x > 0 ? (double)p->gamma * x : (double)p->gamma * (double)p->alpha * expm1(x))
/* max(0, min(1, alpha * x + beta)) */
static inline float hsig_f32(float x, const un_par *p)
{
    float t = p->alpha * x + p->beta;
    return t < 0 ? 0 : t > 1 ? 1 : t;
}
static inline double hsig_f64(double x, const un_par *p)
{
    double t = (double)p->alpha * x + (double)p->beta;
    return t < 0 ? 0 : t > 1 ? 1 : t;
}
UN_LOOP(hsig_F32, float, hsig_f32(x, p))
UN_LOOP(hsig_F64, double, hsig_f64(x, p))
UN_LOOP(not_BOOL, uint8_t, x == 0)
UN_LOOP(tan_F32, float, tanf(x))
UN_LOOP(tan_F64, double, tan(x))
UN_LOOP(asin_F32, float, asinf(x))
UN_LOOP(asin_F64, double, asin(x))
UN_LOOP(acos_F32, float, acosf(x))
UN_LOOP(acos_F64, double, acos(x))
UN_LOOP(atan_F32, float, atanf(x))
UN_LOOP(atan_F64, double, atan(x))
UN_LOOP(sinh_F32, float, sinhf(x))
UN_LOOP(sinh_F64, double, sinh(x))
UN_LOOP(cosh_F32, float, coshf(x))
UN_LOOP(cosh_F64, double, cosh(x))
UN_LOOP(asinh_F32, float, asinhf(x))
UN_LOOP(asinh_F64, double, asinh(x))
UN_LOOP(acosh_F32, float, acoshf(x))
UN_LOOP(acosh_F64, double, acosh(x))
UN_LOOP(atanh_F32, float, atanhf(x))
UN_LOOP(atanh_F64, double, atanh(x))
/* Round-11: halves to even, which rint does in the default rounding mode */
UN_LOOP(round_F32, float, rintf(x))
UN_LOOP(round_F64, double, rint(x))
UN_LOOP(softsign_F32, float, x / (1.0f + fabsf(x)))
UN_LOOP(softsign_F64, double, x / (1.0 + fabs(x)))
UN_LOOP(thrrelu_F32, float, x > p->alpha ? x : 0)
UN_LOOP(thrrelu_F64, double, x > (double)p->alpha ? x : 0)
/* Shrink-9 (float types; the spec also lists integers, refused) */
UN_LOOP(shrink_F32, float, x < -p->beta ? x + p->alpha : x > p->beta ? x - p->alpha : 0)
UN_LOOP(shrink_F64, double,
        x < -(double)p->beta ? x + (double)p->alpha : x > (double)p->beta ? x - (double)p->alpha : 0)
/* Celu-12: max(0, x) + min(0, alpha * (e^(x / alpha) - 1)) */
UN_LOOP(celu_F32, float, x > 0 ? x : p->alpha * expm1f(x / p->alpha))
UN_LOOP(celu_F64, double, x > 0 ? x : (double)p->alpha * expm1(x / (double)p->alpha))
/* HardSwish-14: x * HardSigmoid(x) with alpha 1/6, beta 0.5 */
UN_LOOP(hswish_F32, float, x * (x < -3.0f ? 0.0f : x > 3.0f ? 1.0f : x / 6.0f + 0.5f))
UN_LOOP(hswish_F64, double, x * (x < -3.0 ? 0.0 : x > 3.0 ? 1.0 : x / 6.0 + 0.5))
/* Mish-18: x * tanh(softplus(x)) */
UN_LOOP(mish_F32, float, x * tanh_f32((x > 0 ? x : 0.0f) + log1pf(expf(x > 0 ? -x : x))))
UN_LOOP(mish_F64, double, x * tanh((x > 0 ? x : 0.0) + log1p(exp(x > 0 ? -x : x))))
/* Gelu-20: x * Phi(x), exactly or by approximate="tanh". Written without
 * 1 + erf(.) and 1 + tanh(u), which cancel for negative x: Phi(x) =
 * erfc(-x / sqrt 2) / 2, and (1 + tanh u) / 2 = sigmoid(2u). */
UN_LOOP(gelu_F32, float, 0.5f * x * erfcf(x * -0.70710678118654752f))
UN_LOOP(gelu_F64, double, 0.5 * x * erfc(x * -0.70710678118654752))
UN_LOOP_V(gelut_F32, float, x * sigmoid_f32(1.59576912160573072f * (x + 0.044715f * x * x * x)))
UN_LOOP(gelut_F64, double, x / (1.0 + exp(-1.59576912160573072 * (x + 0.044715 * x * x * x))))
UN_LOOP_BOOL(isnan_F32, float, x != x)
UN_LOOP_BOOL(isnan_F64, double, x != x)
UN_LOOP_BOOL(isinf_F32, float, (p->pos && x == INFINITY) || (p->neg && x == -INFINITY))
UN_LOOP_BOOL(isinf_F64, double, (p->pos && x == INFINITY) || (p->neg && x == -INFINITY))

/* ---- operator table ---------------------------------------------------------- */
typedef struct un_op {
    const char *name;
    un_fn k[TI_N]; /* by TI_*; float16 uses k[TI_F32] */
    bool out_bool; /* output is bool (IsNaN, IsInf), else the input type */
} un_op;

#define FLT_K(f) {[TI_F32] = f##_F32, [TI_F64] = f##_F64}

static const un_op un_ops[] = {
    {.name = "Abs", .k = {FLT_TYPES(ENT, fabs) SINT_TYPES(ENT, sabs) UINT_TYPES(ENT, uabs)}},
    {.name = "Neg", .k = {FLT_TYPES(ENT, fneg) SINT_TYPES(ENT, sneg)}},
    {.name = "Sign", .k = {FLT_TYPES(ENT, fsign) SINT_TYPES(ENT, ssign) UINT_TYPES(ENT, usign)}},
    {.name = "Relu", .k = {FLT_TYPES(ENT, relu) SINT_TYPES(ENT, relu)}},
    {.name = "Sqrt", .k = FLT_K(sqrt)},
    {.name = "Exp", .k = FLT_K(exp)},
    {.name = "Log", .k = FLT_K(log)},
    {.name = "Reciprocal", .k = FLT_K(recip)},
    {.name = "Erf", .k = FLT_K(erf)},
    {.name = "Tanh", .k = FLT_K(tanh)},
    {.name = "Sigmoid", .k = FLT_K(sigmoid)},
    {.name = "Softplus", .k = FLT_K(softplus)},
    {.name = "LeakyRelu", .k = FLT_K(leaky)},
    {.name = "Elu", .k = FLT_K(elu)},
    {.name = "Selu", .k = FLT_K(selu)},
    {.name = "HardSigmoid", .k = FLT_K(hsig)},
    {.name = "Floor", .k = FLT_K(floor)},
    {.name = "Ceil", .k = FLT_K(ceil)},
    {.name = "Sin", .k = FLT_K(sin)},
    {.name = "Cos", .k = FLT_K(cos)},
    {.name = "Tan", .k = FLT_K(tan)},
    {.name = "Asin", .k = FLT_K(asin)},
    {.name = "Acos", .k = FLT_K(acos)},
    {.name = "Atan", .k = FLT_K(atan)},
    {.name = "Sinh", .k = FLT_K(sinh)},
    {.name = "Cosh", .k = FLT_K(cosh)},
    {.name = "Asinh", .k = FLT_K(asinh)},
    {.name = "Acosh", .k = FLT_K(acosh)},
    {.name = "Atanh", .k = FLT_K(atanh)},
    {.name = "Round", .k = FLT_K(round)},
    {.name = "Softsign", .k = FLT_K(softsign)},
    {.name = "ThresholdedRelu", .k = FLT_K(thrrelu)},
    {.name = "Shrink", .k = FLT_K(shrink)},
    {.name = "Celu", .k = FLT_K(celu)}, /* the spec has float32 only */
    {.name = "HardSwish", .k = FLT_K(hswish)},
    {.name = "Mish", .k = FLT_K(mish)},
    {.name = "Gelu", .k = FLT_K(gelu)},
    {.name = "IsNaN", .k = FLT_K(isnan), .out_bool = true},
    {.name = "IsInf", .k = FLT_K(isinf), .out_bool = true},
    {.name = "Not", .k = {[TI_BOOL] = not_BOOL}},
    {.name = "Clip", .k = {FLT_TYPES(ENT, clip) SINT_TYPES(ENT, clip) UINT_TYPES(ENT, clip)}},
};

/* Gelu with approximate="tanh", chosen at prepare */
static const un_op gelu_tanh = {.name = "Gelu", .k = FLT_K(gelut)};

typedef struct un_priv {
    const un_op *op;
    un_fn k;      /* the op's kernel for the input type, set by infer */
    un_par par;
    bool clip_inputs; /* Clip-11+: bounds are the optional inputs 1 and 2 */
    float attr_lo, attr_hi; /* Clip-6: bounds from the attributes */
} un_priv;

/* Runs kernel k over n elements; float16 in chunks through the float32
 * kernel on the stack (a bool output is written in place). */
static void un_apply(un_fn k, int dtype, bool out_bool, void *y, const void *x, int64_t n, const un_par *p)
{
    if (dtype != NF_DT_FLOAT16) {
        k(y, x, n, p);
        return;
    }
    float buf[256];
    const uint16_t *hx = x;
    uint16_t *hy = y;
    for (int64_t off = 0; off < n; off += 256) {
        int64_t m = n - off < 256 ? n - off : 256;
        for (int64_t i = 0; i < m; i++)
            buf[i] = nf_half_to_float(hx[off + i]);
        if (out_bool) {
            k((uint8_t *)y + off, buf, m, p);
            continue;
        }
        k(buf, buf, m, p);
        for (int64_t i = 0; i < m; i++)
            hy[off + i] = nf_float_to_half(buf[i]);
    }
}

/* Finds the operator, checks the node has 1..max_in inputs and one output,
 * and reads the attributes into a new un_priv. */
static int un_prepare(nf_model *m, nf_node *n, int max_in, nf_err *err)
{
    const un_op *op = NULL;
    for (size_t i = 0; i < sizeof un_ops / sizeof un_ops[0]; i++)
        if (strcmp(un_ops[i].name, n->op) == 0)
            op = &un_ops[i];
    if (op == NULL)
        return nf_node_err(err, NF_EINTERNAL, n, "not a unary elementwise operator");
    if (n->n_in < 1 || n->n_in > max_in || n->in[0] < 0 || n->n_out != 1 || n->out[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs %s and one output",
                           max_in == 1 ? "one input" : "one to three inputs");
    un_priv *p = nf_arena_alloc(&m->arena, sizeof *p);
    if (p == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    p->op = op;
    /* defaults of the versions claimed in the table (Selu-6, LeakyRelu-6
     * and -16, Elu-6, HardSigmoid-6) */
    if (strcmp(n->op, "LeakyRelu") == 0) {
        p->par.alpha = nf_attr_float(n, "alpha", 0.01f);
    } else if (strcmp(n->op, "Elu") == 0) {
        p->par.alpha = nf_attr_float(n, "alpha", 1.0f);
    } else if (strcmp(n->op, "Selu") == 0) {
        p->par.alpha = nf_attr_float(n, "alpha", 1.67326319217681884765625f);
        p->par.gamma = nf_attr_float(n, "gamma", 1.05070102214813232421875f);
    } else if (strcmp(n->op, "HardSigmoid") == 0) {
        p->par.alpha = nf_attr_float(n, "alpha", 0.2f);
        p->par.beta = nf_attr_float(n, "beta", 0.5f);
    } else if (strcmp(n->op, "ThresholdedRelu") == 0 || strcmp(n->op, "Celu") == 0) {
        p->par.alpha = nf_attr_float(n, "alpha", 1.0f);
    } else if (strcmp(n->op, "Shrink") == 0) {
        p->par.alpha = nf_attr_float(n, "bias", 0.0f);
        p->par.beta = nf_attr_float(n, "lambd", 0.5f);
    } else if (strcmp(n->op, "IsInf") == 0) {
        p->par.neg = nf_attr_int(n, "detect_negative", 1) != 0;
        p->par.pos = nf_attr_int(n, "detect_positive", 1) != 0;
    } else if (strcmp(n->op, "Gelu") == 0) {
        const char *approx = nf_attr_str(n, "approximate", "none");
        if (strcmp(approx, "tanh") == 0)
            p->op = &gelu_tanh;
        else if (strcmp(approx, "none") != 0)
            return nf_node_err(err, NF_EMODEL, n, "attribute approximate = '%s', expected none or tanh", approx);
    }
    n->priv = p;
    return NF_OK;
}

/* ---- the hooks: every operator above except Clip ---------------------------------- */
int nf_op_ew_unary_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    return un_prepare(m, n, 1, err);
}

int nf_op_ew_unary_infer(nf_model *m, nf_node *n, nf_err *err)
{
    un_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0);
    int ti = type_index(x->dtype);
    if (ti < 0 || p->op->k[ti] == NULL)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "input type %s is not supported", nf_dtype_name(x->dtype));
    p->k = p->op->k[ti];
    return nf_value_set(nf_out(m, n, 0), p->op->out_bool ? NF_DT_BOOL : x->dtype, x->n_dims, x->dims, err);
}

int nf_op_ew_unary_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const un_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0), *y = nf_out(m, n, 0);
    un_apply(p->k, x->dtype, p->op->out_bool, y->data, x->data, x->size, &p->par);
    return NF_OK;
}

/* ---- Clip ---------------------------------------------------------------------------
 * Opset 6: float attributes min/max (defaults: the float range). Opset 11+:
 * optional scalar inputs min/max of the input's type; an absent bound does
 * not clip. */
int nf_op_clip_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    int rc = un_prepare(m, n, n->opset >= 11 ? 3 : 1, err);
    if (rc != NF_OK)
        return rc;
    un_priv *p = n->priv;
    p->clip_inputs = n->opset >= 11;
    if (!p->clip_inputs) {
        p->attr_lo = nf_attr_float(n, "min", -FLT_MAX);
        p->attr_hi = nf_attr_float(n, "max", FLT_MAX);
    }
    return NF_OK;
}

int nf_op_clip_infer(nf_model *m, nf_node *n, nf_err *err)
{
    un_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0);
    int ti = type_index(x->dtype);
    if (ti < 0 || p->op->k[ti] == NULL || (!p->clip_inputs && ti != TI_F32 && ti != TI_F64))
        return nf_node_err(err, NF_EUNSUPPORTED, n, "input type %s is not supported", nf_dtype_name(x->dtype));
    p->k = p->op->k[ti];
    for (int j = 1; j < 3; j++) {
        nf_value *b = nf_in(m, n, j);
        if (b == NULL)
            continue;
        if (b->dtype != x->dtype)
            return nf_node_err(err, NF_EMODEL, n, "%s has type %s, the input %s", j == 1 ? "min" : "max",
                               nf_dtype_name(b->dtype), nf_dtype_name(x->dtype));
        if (b->size != 1)
            return nf_node_err(err, NF_ESHAPE, n, "%s must be a scalar (has %lld elements)", j == 1 ? "min" : "max",
                               (long long)b->size);
    }
    return nf_value_set(nf_out(m, n, 0), x->dtype, x->n_dims, x->dims, err);
}

/* The bound of input j (1 = min, 2 = max) in the kernel's type, or the
 * type's range end when absent. */
static void clip_bound(const nf_value *b, int dtype, int lower, void *out)
{
    union {
        float f32;
        double f64;
        int64_t i64;
        uint64_t u64;
        unsigned char raw[8];
    } v;
    memset(&v, 0, sizeof v);
    if (b != NULL) {
        if (dtype == NF_DT_FLOAT16)
            v.f32 = nf_half_to_float(*(const uint16_t *)b->data);
        else
            memcpy(v.raw, b->data, nf_dtype_size(dtype));
        memcpy(out, v.raw, 8);
        return;
    }
    switch (dtype) {
    case NF_DT_FLOAT: case NF_DT_FLOAT16: v.f32 = lower ? -INFINITY : INFINITY; break;
    case NF_DT_DOUBLE: v.f64 = lower ? -INFINITY : INFINITY; break;
    case NF_DT_INT8: { int8_t t = lower ? INT8_MIN : INT8_MAX; memcpy(v.raw, &t, 1); break; }
    case NF_DT_INT16: { int16_t t = lower ? INT16_MIN : INT16_MAX; memcpy(v.raw, &t, 2); break; }
    case NF_DT_INT32: { int32_t t = lower ? INT32_MIN : INT32_MAX; memcpy(v.raw, &t, 4); break; }
    case NF_DT_INT64: v.i64 = lower ? INT64_MIN : INT64_MAX; break;
    case NF_DT_UINT8: { uint8_t t = lower ? 0 : UINT8_MAX; memcpy(v.raw, &t, 1); break; }
    case NF_DT_UINT16: { uint16_t t = lower ? 0 : UINT16_MAX; memcpy(v.raw, &t, 2); break; }
    case NF_DT_UINT32: { uint32_t t = lower ? 0 : UINT32_MAX; memcpy(v.raw, &t, 4); break; }
    case NF_DT_UINT64: v.u64 = lower ? 0 : UINT64_MAX; break;
    default: break;
    }
    memcpy(out, v.raw, 8);
}

int nf_op_clip_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const un_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0), *y = nf_out(m, n, 0);
    un_par par = p->par;
    if (p->clip_inputs) {
        clip_bound(nf_in(m, n, 1), x->dtype, 1, &par.lo);
        clip_bound(nf_in(m, n, 2), x->dtype, 0, &par.hi);
    } else if (x->dtype == NF_DT_DOUBLE) {
        par.lo.f64 = p->attr_lo;
        par.hi.f64 = p->attr_hi;
    } else { /* float32, and float16 through the float32 kernel */
        par.lo.f32 = p->attr_lo;
        par.hi.f32 = p->attr_hi;
    }
    un_apply(p->k, x->dtype, false, y->data, x->data, x->size, &par);
    return NF_OK;
}
