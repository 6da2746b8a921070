/*
 * elementwise.c: the broadcasting elementwise operators: Add Sub Mul Div
 * Pow Mod PRelu BitShift, the comparisons, And Or Xor, the variadic Max
 * Min Sum Mean, Where and Expand. Unary operators live in
 * elementwise_unary.c.
 *
 * Every operator runs on one engine (bc_build/bc_run): the output shape
 * is walked with an inner loop of unit or zero stride per input, after
 * dropping size-1 dimensions and merging neighbours that broadcast alike.
 * Same-shape and scalar operands become one call of a tight loop over the
 * whole tensor, "[.., K] op [K]" one call per row. Kernels exist per
 * element type; float16 runs through the float32 kernels in stack chunks.
 * Runs allocate nothing: broadcast plans live on the stack.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops.h"

/* The inner loops are written for the auto-vectoriser, which -O2 in GCC 12
 * runs only under the "very cheap" cost model: that model refuses loops of
 * unknown trip count and loops needing a runtime alias check, which is
 * every loop here (an accumulating Sum writes over an input). Without
 * trapping math, selects whose arms could raise a (masked, never enabled)
 * floating-point exception are still if-converted; results are the same. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=cheap", "no-trapping-math")
#endif

/* ---- element types ---------------------------------------------------------- */
enum { TI_F32, TI_F64, TI_I8, TI_I16, TI_I32, TI_I64, TI_U8, TI_U16, TI_U32, TI_U64, TI_BOOL, TI_STR, TI_N };

/* Kernel table index of a dtype; float16 maps to float32 (converted in
 * chunks). -1 when no kernel family knows it. */
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
    case NF_DT_STRING: return TI_STR;
    default: return -1;
    }
}

static int is_int_dtype(int dt)
{
    switch (dt) {
    case NF_DT_INT8: case NF_DT_INT16: case NF_DT_INT32: case NF_DT_INT64:
    case NF_DT_UINT8: case NF_DT_UINT16: case NF_DT_UINT32: case NF_DT_UINT64:
        return 1;
    default:
        return 0;
    }
}

/* ---- binary kernels ------------------------------------------------------------
 * Three loops per (op, type): vector-vector, vector-scalar (b is one
 * element), scalar-vector. o may equal a (accumulating variadic ops);
 * kernels read element i before writing it. */
typedef void (*bin_fn)(void *o, const void *a, const void *b, int64_t n);
typedef struct bin_k {
    bin_fn vv, vs, sv;
} bin_k;

#define BIN_LOOPS(name, T, TO, EXPR)                                       \
    static void name##_vv(void *o_, const void *a_, const void *b_, int64_t n) \
    {                                                                      \
        TO *o = o_;                                                        \
        const T *a = a_, *b = b_;                                          \
        for (int64_t i = 0; i < n; i++) {                                  \
            T x = a[i], y = b[i];                                          \
            o[i] = (TO)(EXPR);                                             \
        }                                                                  \
    }                                                                      \
    static void name##_vs(void *o_, const void *a_, const void *b_, int64_t n) \
    {                                                                      \
        TO *o = o_;                                                        \
        const T *a = a_, y = *(const T *)b_;                               \
        for (int64_t i = 0; i < n; i++) {                                  \
            T x = a[i];                                                    \
            o[i] = (TO)(EXPR);                                             \
        }                                                                  \
    }                                                                      \
    static void name##_sv(void *o_, const void *a_, const void *b_, int64_t n) \
    {                                                                      \
        TO *o = o_;                                                        \
        const T x = *(const T *)a_, *b = b_;                               \
        for (int64_t i = 0; i < n; i++) {                                  \
            T y = b[i];                                                    \
            o[i] = (TO)(EXPR);                                             \
        }                                                                  \
    }

/* Type lists: (op, table name, C type, wrap type). Integer arithmetic is
 * done in the unsigned wrap type: overflow wraps as in numpy and ONNX
 * Runtime instead of being undefined behaviour. */
#define FLT_TYPES(X, op) X(op, F32, float, float) X(op, F64, double, double)
#define SINT_TYPES(X, op)                                                   \
    X(op, I8, int8_t, uint32_t) X(op, I16, int16_t, uint32_t) X(op, I32, int32_t, uint32_t) \
    X(op, I64, int64_t, uint64_t)
#define UINT_TYPES(X, op)                                                   \
    X(op, U8, uint8_t, uint32_t) X(op, U16, uint16_t, uint32_t) X(op, U32, uint32_t, uint32_t) \
    X(op, U64, uint64_t, uint64_t)
#define INT_TYPES(X, op) SINT_TYPES(X, op) UINT_TYPES(X, op)
#define NUM_TYPES(X, op) FLT_TYPES(X, op) INT_TYPES(X, op)

#define DEF_ARITH(op, tn, T, U) BIN_LOOPS(op##_##tn, T, T, EX_##op(T, U))
#define DEF_CMP(op, tn, T, U) BIN_LOOPS(op##_##tn, T, uint8_t, EX_##op(T, U))
#define ENT(op, tn, T, U) [TI_##tn] = {op##_##tn##_vv, op##_##tn##_vs, op##_##tn##_sv},

#define EX_add(T, U) (T)((U)x + (U)y)
#define EX_sub(T, U) (T)((U)x - (U)y)
#define EX_mul(T, U) (T)((U)x * (U)y)
#define EX_fdiv(T, U) x / y
/* C division truncates toward zero, as ONNX integer Div does; INT_MIN / -1
 * traps on x86, so -1 is a negation (wrapping). Zero divisors are refused
 * before the kernel runs. */
#define EX_sdiv(T, U) (y == -1 ? (T)((U)0 - (U)x) : (T)(x / y))
#define EX_udiv(T, U) x / y
/* numpy.maximum/minimum: a NaN in either operand gives NaN */
#define EX_fmax(T, U) ((x > y || x != x) ? x : y)
#define EX_fmin(T, U) ((x < y || x != x) ? x : y)
#define EX_imax(T, U) (x > y ? x : y)
#define EX_imin(T, U) (x < y ? x : y)
#define EX_eq(T, U) x == y
#define EX_lt(T, U) x < y
#define EX_gt(T, U) x > y
#define EX_le(T, U) x <= y
#define EX_ge(T, U) x >= y
#define EX_and(T, U) (x != 0) & (y != 0)
#define EX_or(T, U) (x != 0) | (y != 0)
#define EX_xor(T, U) (x != 0) ^ (y != 0)
#define EX_beq(T, U) (x != 0) == (y != 0)

NUM_TYPES(DEF_ARITH, add)
NUM_TYPES(DEF_ARITH, sub)
NUM_TYPES(DEF_ARITH, mul)
FLT_TYPES(DEF_ARITH, fdiv)
SINT_TYPES(DEF_ARITH, sdiv)
UINT_TYPES(DEF_ARITH, udiv)
FLT_TYPES(DEF_ARITH, fmax)
FLT_TYPES(DEF_ARITH, fmin)
INT_TYPES(DEF_ARITH, imax)
INT_TYPES(DEF_ARITH, imin)
/* Mod (Mod-13): fmod=1 is C's remainder (sign of the dividend), fmod=0
 * the integer modulus with the sign of the divisor, as Python's %. x % -1
 * is 0 here: INT_MIN % -1 traps on x86. */
#define EX_fmodf(T, U) fmodf(x, y)
#define EX_fmodd(T, U) fmod(x, y)
#define EX_sfmod(T, U) (y == -1 ? 0 : x % y)
#define EX_ufmod(T, U) x % y
#define EX_smod(T, U) imod_##T(x, y)
#define IMOD_FN(T)                                   \
    static inline T imod_##T(T x, T y)               \
    {                                                \
        if (y == -1)                                 \
            return 0;                                \
        T r = (T)(x % y);                            \
        return (r != 0 && (r < 0) != (y < 0)) ? (T)(r + y) : r; \
    }
IMOD_FN(int8_t)
IMOD_FN(int16_t)
IMOD_FN(int32_t)
IMOD_FN(int64_t)
/* PRelu: slope * x below zero; unsigned x never is */
#define EX_prelu(T, U) (x < 0 ? (T)((U)y * (U)x) : x)
#define EX_uprelu(T, U) ((void)y, x)
/* BitShift (unsigned types): shifts by the width or more give 0, as numpy */
#define EX_shl(T, U) (y >= sizeof(T) * 8 ? 0 : (T)((U)x << y))
#define EX_shr(T, U) (y >= sizeof(T) * 8 ? 0 : (T)(x >> y))

BIN_LOOPS(fmod_F32, float, float, EX_fmodf(T, U))
BIN_LOOPS(fmod_F64, double, double, EX_fmodd(T, U))
SINT_TYPES(DEF_ARITH, sfmod)
UINT_TYPES(DEF_ARITH, ufmod)
SINT_TYPES(DEF_ARITH, smod)
FLT_TYPES(DEF_ARITH, prelu)
SINT_TYPES(DEF_ARITH, prelu)
UINT_TYPES(DEF_ARITH, uprelu)
UINT_TYPES(DEF_ARITH, shl)
UINT_TYPES(DEF_ARITH, shr)

NUM_TYPES(DEF_CMP, eq)
NUM_TYPES(DEF_CMP, lt)
NUM_TYPES(DEF_CMP, gt)
NUM_TYPES(DEF_CMP, le)
NUM_TYPES(DEF_CMP, ge)
#define BOOL_TYPE(X, op) X(op, BOOL, uint8_t, uint32_t)
BOOL_TYPE(DEF_CMP, and)
BOOL_TYPE(DEF_CMP, or)
BOOL_TYPE(DEF_CMP, xor)
BOOL_TYPE(DEF_CMP, beq)

/* Equal on strings (opset 19): byte equality. A typedef, as the loops
 * declare `const T *a, y`. */
typedef const char *cstr;
#define EX_seq(T, U) strcmp(x, y) == 0
BIN_LOOPS(seq_STR, cstr, uint8_t, EX_seq(T, U))

/* Pow on floats with the exponent shared by the row: x^2 and x^3 (variance
 * and tanh-GELU in exported transformers) are products; powf otherwise. */
static void pow_F32_vv(void *o_, const void *a_, const void *b_, int64_t n)
{
    float *o = o_;
    const float *a = a_, *b = b_;
    for (int64_t i = 0; i < n; i++)
        o[i] = powf(a[i], b[i]);
}

static void pow_F32_vs(void *o_, const void *a_, const void *b_, int64_t n)
{
    float *o = o_;
    const float *a = a_, y = *(const float *)b_;
    if (y == 1.0f) {
        memmove(o, a, (size_t)n * sizeof(float));
    } else if (y == 2.0f) {
        for (int64_t i = 0; i < n; i++)
            o[i] = a[i] * a[i];
    } else if (y == 3.0f) {
        for (int64_t i = 0; i < n; i++)
            o[i] = a[i] * a[i] * a[i];
    } else {
        for (int64_t i = 0; i < n; i++)
            o[i] = powf(a[i], y);
    }
}

static void pow_F32_sv(void *o_, const void *a_, const void *b_, int64_t n)
{
    float *o = o_;
    const float x = *(const float *)a_, *b = b_;
    for (int64_t i = 0; i < n; i++)
        o[i] = powf(x, b[i]);
}

static void pow_F64_vv(void *o_, const void *a_, const void *b_, int64_t n)
{
    double *o = o_;
    const double *a = a_, *b = b_;
    for (int64_t i = 0; i < n; i++)
        o[i] = pow(a[i], b[i]);
}

static void pow_F64_vs(void *o_, const void *a_, const void *b_, int64_t n)
{
    double *o = o_;
    const double *a = a_, y = *(const double *)b_;
    if (y == 2.0) {
        for (int64_t i = 0; i < n; i++)
            o[i] = a[i] * a[i];
    } else {
        for (int64_t i = 0; i < n; i++)
            o[i] = pow(a[i], y);
    }
}

static void pow_F64_sv(void *o_, const void *a_, const void *b_, int64_t n)
{
    double *o = o_;
    const double x = *(const double *)a_, *b = b_;
    for (int64_t i = 0; i < n; i++)
        o[i] = pow(x, b[i]);
}

static const bin_k k_add[TI_N] = {NUM_TYPES(ENT, add)};
static const bin_k k_sub[TI_N] = {NUM_TYPES(ENT, sub)};
static const bin_k k_mul[TI_N] = {NUM_TYPES(ENT, mul)};
static const bin_k k_div[TI_N] = {FLT_TYPES(ENT, fdiv) SINT_TYPES(ENT, sdiv) UINT_TYPES(ENT, udiv)};
static const bin_k k_pow[TI_N] = {FLT_TYPES(ENT, pow)};
static const bin_k k_max[TI_N] = {FLT_TYPES(ENT, fmax) INT_TYPES(ENT, imax)};
static const bin_k k_min[TI_N] = {FLT_TYPES(ENT, fmin) INT_TYPES(ENT, imin)};
static const bin_k k_eq[TI_N] = {NUM_TYPES(ENT, eq) BOOL_TYPE(ENT, beq)
                                 [TI_STR] = {seq_STR_vv, seq_STR_vs, seq_STR_sv}};
static const bin_k k_lt[TI_N] = {NUM_TYPES(ENT, lt)};
static const bin_k k_gt[TI_N] = {NUM_TYPES(ENT, gt)};
static const bin_k k_le[TI_N] = {NUM_TYPES(ENT, le)};
static const bin_k k_ge[TI_N] = {NUM_TYPES(ENT, ge)};
static const bin_k k_fmod[TI_N] = {FLT_TYPES(ENT, fmod) SINT_TYPES(ENT, sfmod) UINT_TYPES(ENT, ufmod)};
static const bin_k k_mod[TI_N] = {SINT_TYPES(ENT, smod) UINT_TYPES(ENT, ufmod)};
static const bin_k k_prelu[TI_N] = {FLT_TYPES(ENT, prelu) SINT_TYPES(ENT, prelu) UINT_TYPES(ENT, uprelu)};
static const bin_k k_shl[TI_N] = {UINT_TYPES(ENT, shl)};
static const bin_k k_shr[TI_N] = {UINT_TYPES(ENT, shr)};
static const bin_k k_and[TI_N] = {BOOL_TYPE(ENT, and)};
static const bin_k k_or[TI_N] = {BOOL_TYPE(ENT, or)};
static const bin_k k_xor[TI_N] = {BOOL_TYPE(ENT, xor)};

/* ---- broadcasting --------------------------------------------------------------- */
#define BC_MAX_IN 3

/* The output walked as rank dims; st[j][d] is input j's element stride
 * along d (0 where it broadcasts). dims[rank-1] is the inner loop. */
typedef struct bc_plan {
    int rank, n_in;
    int64_t total;
    int64_t dims[NF_MAX_DIMS];
    int64_t st[BC_MAX_IN][NF_MAX_DIMS];
} bc_plan;

static void fmt_dims(char *buf, size_t cap, int rank, const int64_t *dims)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < rank && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", d ? "," : "", (long long)dims[d]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
}

/* numpy multidirectional broadcasting (onnx/docs/Broadcasting.md): shapes
 * aligned on the right, in each dimension equal sizes or 1. Fills *rank
 * and out; NF_ESHAPE naming the node and the shapes when they clash. */
static int bc_shape(const nf_node *n, int n_in, const int *ranks, const int64_t *const *dims, int *rank,
                    int64_t *out, nf_err *err)
{
    int r = 0;
    for (int j = 0; j < n_in; j++)
        r = ranks[j] > r ? ranks[j] : r;
    for (int d = 0; d < r; d++) {
        int64_t v = 1;
        for (int j = 0; j < n_in; j++) {
            int k = d - (r - ranks[j]);
            if (k < 0 || dims[j][k] == v || dims[j][k] == 1)
                continue;
            if (v != 1) {
                char s[3][128] = {"", "", ""};
                for (int i = 0; i < n_in && i < 3; i++)
                    fmt_dims(s[i], sizeof s[i], ranks[i], dims[i]);
                return nf_node_err(err, NF_ESHAPE, n, "input shapes %s%s%s and %s cannot be broadcast together", s[0],
                                   n_in > 2 ? ", " : "", n_in > 2 ? s[1] : "", s[n_in > 2 ? 2 : 1]);
            }
            v = dims[j][k];
        }
        out[d] = v;
    }
    *rank = r;
    return NF_OK;
}

/* Plans the walk of the output (rank, dims) over n_in inputs of the given
 * shapes, which broadcast to it. Size-1 output dims are dropped; neighbours
 * where every input broadcasts alike merge, so [B,S,K] + [K] is [B*S, K]
 * and same-shape or scalar operands are one inner loop. */
static void bc_build(bc_plan *p, int rank, const int64_t *dims, int n_in, const int *ranks,
                     const int64_t *const *in_dims)
{
    bool bcast[BC_MAX_IN][NF_MAX_DIMS];
    int r = 0;
    p->n_in = n_in;
    p->total = nf_dims_count(rank, dims);
    for (int d = 0; d < rank; d++) {
        if (dims[d] == 1)
            continue;
        bool b[BC_MAX_IN], same = r > 0;
        for (int j = 0; j < n_in; j++) {
            int k = d - (rank - ranks[j]);
            b[j] = k < 0 || in_dims[j][k] == 1;
            if (same && b[j] != bcast[j][r - 1])
                same = false;
        }
        if (same) {
            p->dims[r - 1] *= dims[d];
            continue;
        }
        p->dims[r] = dims[d];
        for (int j = 0; j < n_in; j++)
            bcast[j][r] = b[j];
        r++;
    }
    if (r == 0) { /* one element */
        p->dims[0] = 1;
        for (int j = 0; j < n_in; j++)
            bcast[j][0] = true;
        r = 1;
    }
    p->rank = r;
    for (int j = 0; j < n_in; j++) {
        int64_t s = 1;
        for (int d = r - 1; d >= 0; d--) {
            p->st[j][d] = bcast[j][d] ? 0 : s;
            if (!bcast[j][d])
                s *= p->dims[d];
        }
    }
}

/* The inner loop: n output elements at o; input j starts at in[j] and
 * steps st[j] (0 or 1) elements. */
typedef void (*bc_inner_fn)(const void *ctx, char *o, char *const *in, const int64_t *st, int64_t n);

/* Walks the plan: an odometer over the outer dims keeps each input's
 * offset; eo and es[] are element sizes in bytes. */
static void bc_run(const bc_plan *p, void *out, size_t eo, const void *const *in, const size_t *es,
                   bc_inner_fn f, const void *ctx)
{
    if (p->total == 0)
        return;
    int r = p->rank, ni = p->n_in;
    int64_t inner = p->dims[r - 1], outer = p->total / inner;
    int64_t idx[NF_MAX_DIMS] = {0}, off[BC_MAX_IN] = {0}, st[BC_MAX_IN];
    for (int j = 0; j < ni; j++)
        st[j] = p->st[j][r - 1];
    char *o = out;
    for (int64_t k = 0; k < outer; k++) {
        char *ip[BC_MAX_IN];
        for (int j = 0; j < ni; j++)
            ip[j] = (char *)in[j] + off[j] * (int64_t)es[j];
        f(ctx, o + k * inner * (int64_t)eo, ip, st, inner);
        for (int d = r - 2; d >= 0; d--) {
            for (int j = 0; j < ni; j++)
                off[j] += p->st[j][d];
            if (++idx[d] < p->dims[d])
                break;
            for (int j = 0; j < ni; j++)
                off[j] -= p->st[j][d] * p->dims[d];
            idx[d] = 0;
        }
    }
}

/* ---- binary inner loops ---------------------------------------------------------- */
typedef struct bin_ctx {
    const bin_k *k;  /* kernels of the element type (float32's for float16) */
    bool f16;        /* inputs are float16: convert through float32 */
    bool out_bool;   /* output is bool (comparisons), else the input type */
    size_t eo;       /* output element size */
} bin_ctx;

#define F16_CHUNK 256

/* float16 through the float32 kernel, F16_CHUNK elements at a time on the
 * stack; va/vb say whether a/b are vectors (else one element). */
static void bin_f16(const bin_ctx *c, bin_fn f, int va, int vb, char *o, const void *a, const void *b, int64_t n)
{
    const uint16_t *ha = a, *hb = b;
    float fa[F16_CHUNK], fb[F16_CHUNK], fo[F16_CHUNK];
    if (!va)
        fa[0] = nf_half_to_float(ha[0]);
    if (!vb)
        fb[0] = nf_half_to_float(hb[0]);
    for (int64_t off = 0; off < n; off += F16_CHUNK) {
        int64_t m = n - off < F16_CHUNK ? n - off : F16_CHUNK;
        for (int64_t i = 0; va && i < m; i++)
            fa[i] = nf_half_to_float(ha[off + i]);
        for (int64_t i = 0; vb && i < m; i++)
            fb[i] = nf_half_to_float(hb[off + i]);
        if (c->out_bool) {
            f(o + off, fa, fb, m);
        } else {
            f(fo, fa, fb, m);
            for (int64_t i = 0; i < m; i++)
                ((uint16_t *)o)[off + i] = nf_float_to_half(fo[i]);
        }
    }
}

static void bin_inner(const void *ctx, char *o, char *const *in, const int64_t *st, int64_t n)
{
    const bin_ctx *c = ctx;
    if (!st[0] && !st[1]) { /* only a one-element walk has two scalars */
        for (int64_t i = 0; i < n; i++) {
            if (c->f16)
                bin_f16(c, c->k->vv, 1, 1, o + i * (int64_t)c->eo, in[0], in[1], 1);
            else
                c->k->vv(o + i * (int64_t)c->eo, in[0], in[1], 1);
        }
        return;
    }
    bin_fn f = st[0] && st[1] ? c->k->vv : st[0] ? c->k->vs : c->k->sv;
    if (c->f16)
        bin_f16(c, f, st[0] != 0, st[1] != 0, o, in[0], in[1], n);
    else
        f(o, in[0], in[1], n);
}

/* Pow with mixed types (opset 12+: base int32/int64/float16/float/double,
 * exponent any numeric) element by element: integer ^ integer by repeated
 * squaring (wrapping, as numpy), anything else in double and converted to
 * the base type (truncating toward zero for integer bases). */
typedef struct pow_ctx {
    int ta, tb; /* dtypes of base (and output) and exponent */
} pow_ctx;

static int64_t get_i64(const void *p, int dt, int64_t i)
{
    switch (dt) {
    case NF_DT_INT64: return ((const int64_t *)p)[i];
    case NF_DT_UINT64: return (int64_t)((const uint64_t *)p)[i];
    default: return (int64_t)nf_get_f64(p, dt, i);
    }
}

static double get_f64(const void *p, int dt, int64_t i)
{
    return dt == NF_DT_FLOAT16 ? nf_half_to_float(((const uint16_t *)p)[i]) : nf_get_f64(p, dt, i);
}

static int64_t ipow(int64_t x, int64_t y)
{
    if (y < 0) /* what pow() gives, truncated */
        return x == 1 ? 1 : x == -1 ? ((y & 1) ? -1 : 1) : 0;
    uint64_t r = 1, b = (uint64_t)x;
    for (; y > 0; y >>= 1) {
        if (y & 1)
            r *= b;
        b *= b;
    }
    return (int64_t)r;
}

/* double to int64 as x86 converts: out of range and NaN give INT64_MIN */
static int64_t d2i(double v)
{
    return (v >= -9223372036854775808.0 && v < 9223372036854775808.0) ? (int64_t)v : INT64_MIN;
}

static void pow_inner(const void *ctx, char *o, char *const *in, const int64_t *st, int64_t n)
{
    const pow_ctx *c = ctx;
    bool ints = is_int_dtype(c->ta) && is_int_dtype(c->tb);
    for (int64_t i = 0; i < n; i++) {
        int64_t ia = i * st[0], ib = i * st[1];
        switch (c->ta) {
        case NF_DT_INT32:
        case NF_DT_INT64: {
            int64_t r = ints ? ipow(get_i64(in[0], c->ta, ia), get_i64(in[1], c->tb, ib))
                             : d2i(pow(get_f64(in[0], c->ta, ia), get_f64(in[1], c->tb, ib)));
            if (c->ta == NF_DT_INT32)
                ((int32_t *)o)[i] = (int32_t)r;
            else
                ((int64_t *)o)[i] = r;
            break;
        }
        case NF_DT_FLOAT16:
            ((uint16_t *)o)[i] = nf_float_to_half((float)pow(get_f64(in[0], c->ta, ia), get_f64(in[1], c->tb, ib)));
            break;
        default:
            nf_set_f64(o, c->ta, i, pow(get_f64(in[0], c->ta, ia), get_f64(in[1], c->tb, ib)));
            break;
        }
    }
}

/* ---- Add Sub Mul Div Pow, comparisons, And Or Xor -------------------------------- */
enum { K_ARITH, K_CMP, K_LOGIC, K_POW };

typedef struct bin_op {
    const char *name;
    int kind;
    const bin_k *k; /* by TI_*; an empty entry is an unsupported type */
    bool int_div;   /* integer zero divisors are an error */
    bool unidir;    /* B broadcasts to A's shape, not both ways (PRelu) */
} bin_op;

static const bin_op bin_ops[] = {
    {"Add", K_ARITH, k_add, false, false},
    {"Sub", K_ARITH, k_sub, false, false},
    {"Mul", K_ARITH, k_mul, false, false},
    {"Div", K_ARITH, k_div, true, false},
    {"Mod", K_ARITH, k_mod, true, false}, /* k_fmod with fmod=1 */
    {"Pow", K_POW, k_pow, false, false},
    {"PRelu", K_ARITH, k_prelu, false, true},
    {"BitShift", K_ARITH, k_shl, false, false}, /* k_shr for RIGHT */
    {"Equal", K_CMP, k_eq, false, false},
    {"Less", K_CMP, k_lt, false, false},
    {"Greater", K_CMP, k_gt, false, false},
    {"LessOrEqual", K_CMP, k_le, false, false},
    {"GreaterOrEqual", K_CMP, k_ge, false, false},
    {"And", K_LOGIC, k_and, false, false},
    {"Or", K_LOGIC, k_or, false, false},
    {"Xor", K_LOGIC, k_xor, false, false},
};

typedef struct bin_priv {
    const bin_op *op;
    const bin_k *k; /* op->k, or the table an attribute chose (Mod, BitShift) */
    bool legacy;    /* opset < 7: attributes broadcast/axis instead of numpy rules */
} bin_priv;

int nf_op_ew_binary_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    const bin_op *op = NULL;
    for (size_t i = 0; i < sizeof bin_ops / sizeof bin_ops[0]; i++)
        if (strcmp(bin_ops[i].name, n->op) == 0)
            op = &bin_ops[i];
    if (op == NULL)
        return nf_node_err(err, NF_EINTERNAL, n, "not a binary elementwise operator");
    if (n->n_in != 2 || n->in[0] < 0 || n->in[1] < 0 || n->n_out != 1 || n->out[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs two inputs and one output");
    bin_priv *p = nf_arena_alloc(&m->arena, sizeof *p);
    if (p == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    p->op = op;
    p->k = op->k;
    p->legacy = n->opset < 7;
    if (strcmp(op->name, "Mod") == 0) {
        int64_t fmod_attr = nf_attr_int(n, "fmod", 0);
        if (fmod_attr != 0 && fmod_attr != 1)
            return nf_node_err(err, NF_EMODEL, n, "attribute fmod = %lld, expected 0 or 1", (long long)fmod_attr);
        p->k = fmod_attr ? k_fmod : k_mod;
    } else if (strcmp(op->name, "BitShift") == 0) {
        const char *dir = nf_attr_str(n, "direction", "");
        if (strcmp(dir, "LEFT") != 0 && strcmp(dir, "RIGHT") != 0)
            return nf_node_err(err, NF_EMODEL, n, "attribute direction = '%s', expected LEFT or RIGHT", dir);
        p->k = dir[0] == 'L' ? k_shl : k_shr;
    }
    n->priv = p;
    return NF_OK;
}

/* Opset 1-6 broadcasting (Add-6 in onnx/docs/Changelog.md): without
 * broadcast=1 the shapes must be equal; with it B is broadcast to A's
 * shape, placed at `axis` (default: aligned on the right), each of its
 * dims equal to A's or 1 (PyTorch's opset-6 exports rely on the 1s).
 * Writes B's shape in numpy terms: A's rank, 1 outside B. */
static int legacy_bdims(const nf_node *n, const nf_value *a, const nf_value *b, int64_t *dims, nf_err *err)
{
    char sa[128], sb[128];
    fmt_dims(sa, sizeof sa, a->n_dims, a->dims);
    fmt_dims(sb, sizeof sb, b->n_dims, b->dims);
    if (nf_attr_int(n, "broadcast", 0) == 0) {
        bool same = a->n_dims == b->n_dims;
        for (int d = 0; same && d < a->n_dims; d++)
            same = a->dims[d] == b->dims[d];
        if (!same)
            return nf_node_err(err, NF_ESHAPE, n, "input shapes %s and %s differ and broadcast is not set", sa, sb);
        memcpy(dims, b->dims, sizeof(int64_t) * (size_t)b->n_dims);
        return NF_OK;
    }
    for (int d = 0; d < a->n_dims; d++)
        dims[d] = 1;
    if (b->size == 1 && b->n_dims <= a->n_dims)
        return NF_OK;
    int64_t axis = nf_attr_int(n, "axis", a->n_dims - b->n_dims);
    if (axis < 0)
        axis += a->n_dims;
    if (axis < 0 || axis + b->n_dims > a->n_dims)
        return nf_node_err(err, NF_ESHAPE, n, "input shape %s does not fit %s at axis %lld", sb, sa, (long long)axis);
    for (int d = 0; d < b->n_dims; d++) {
        if (b->dims[d] != 1 && b->dims[d] != a->dims[axis + d])
            return nf_node_err(err, NF_ESHAPE, n, "input shape %s cannot be broadcast to %s at axis %lld", sb, sa,
                               (long long)axis);
        dims[axis + d] = b->dims[d];
    }
    return NF_OK;
}

/* PRelu-6 (Caffe2's PReLU): a slope of one element is shared, a 1-D slope
 * of X's channel count applies along axis 1; else as PRelu-7. Returns 1
 * when it wrote B's shape (rank of A) to dims. */
static int prelu6_bdims(const nf_value *a, const nf_value *b, int64_t *dims)
{
    bool shared = b->size == 1 && b->n_dims <= a->n_dims;
    bool channel = b->n_dims == 1 && a->n_dims >= 2 && b->dims[0] == a->dims[1];
    if (!shared && !channel)
        return 0;
    for (int d = 0; d < a->n_dims; d++)
        dims[d] = (channel && d == 1) ? b->dims[0] : 1;
    return 1;
}

/* Fills the output shape (and B's shape as broadcast uses it). */
static int bin_shapes(const nf_node *n, const bin_priv *p, const nf_value *a, const nf_value *b, int *rank,
                      int64_t *out, int *b_rank, int64_t *b_dims, nf_err *err)
{
    if (p->legacy && p->op->unidir && prelu6_bdims(a, b, b_dims)) {
        *b_rank = a->n_dims;
        *rank = a->n_dims;
        memcpy(out, a->dims, sizeof(int64_t) * (size_t)a->n_dims);
        return NF_OK;
    }
    if (p->legacy && !p->op->unidir) {
        int rc = legacy_bdims(n, a, b, b_dims, err);
        if (rc != NF_OK)
            return rc;
        *b_rank = a->n_dims;
        *rank = a->n_dims;
        memcpy(out, a->dims, sizeof(int64_t) * (size_t)a->n_dims);
        return NF_OK;
    }
    *b_rank = b->n_dims;
    memcpy(b_dims, b->dims, sizeof(int64_t) * (size_t)b->n_dims);
    const int ranks[2] = {a->n_dims, b->n_dims};
    const int64_t *dims[2] = {a->dims, b->dims};
    int rc = bc_shape(n, 2, ranks, dims, rank, out, err);
    if (rc != NF_OK || !p->op->unidir)
        return rc;
    bool same = *rank == a->n_dims;
    for (int d = 0; same && d < a->n_dims; d++)
        same = out[d] == a->dims[d];
    if (!same) {
        char sa[128], sb[128];
        fmt_dims(sa, sizeof sa, a->n_dims, a->dims);
        fmt_dims(sb, sizeof sb, b->n_dims, b->dims);
        return nf_node_err(err, NF_ESHAPE, n, "input shape %s cannot be broadcast to %s", sb, sa);
    }
    return NF_OK;
}

static bool pow_base_ok(int dt)
{
    return dt == NF_DT_FLOAT || dt == NF_DT_DOUBLE || dt == NF_DT_FLOAT16 || dt == NF_DT_INT32 || dt == NF_DT_INT64;
}

int nf_op_ew_binary_infer(nf_model *m, nf_node *n, nf_err *err)
{
    const bin_priv *p = n->priv;
    nf_value *a = nf_in(m, n, 0), *b = nf_in(m, n, 1);
    int ta = type_index(a->dtype);
    if (p->op->kind == K_POW) {
        if (!pow_base_ok(a->dtype) || (b->dtype != NF_DT_FLOAT16 && !is_int_dtype(b->dtype) &&
                                       b->dtype != NF_DT_FLOAT && b->dtype != NF_DT_DOUBLE))
            return nf_node_err(err, NF_EUNSUPPORTED, n, "input types %s ^ %s are not supported",
                               nf_dtype_name(a->dtype), nf_dtype_name(b->dtype));
    } else {
        if (a->dtype != b->dtype)
            return nf_node_err(err, NF_EMODEL, n, "inputs have different types (%s and %s)", nf_dtype_name(a->dtype),
                               nf_dtype_name(b->dtype));
        if (p->k == k_mod && (ta == TI_F32 || ta == TI_F64))
            return nf_node_err(err, NF_EMODEL, n, "fmod must be 1 for %s inputs", nf_dtype_name(a->dtype));
        if (ta < 0 || p->k[ta].vv == NULL)
            return nf_node_err(err, NF_EUNSUPPORTED, n, "input type %s is not supported", nf_dtype_name(a->dtype));
    }
    int rank, b_rank;
    int64_t dims[NF_MAX_DIMS], b_dims[NF_MAX_DIMS];
    int rc = bin_shapes(n, p, a, b, &rank, dims, &b_rank, b_dims, err);
    if (rc != NF_OK)
        return rc;
    int out_dt = (p->op->kind == K_CMP || p->op->kind == K_LOGIC) ? NF_DT_BOOL : a->dtype;
    return nf_value_set(nf_out(m, n, 0), out_dt, rank, dims, err);
}

static bool has_zero(const nf_value *v)
{
    for (int64_t i = 0; i < v->size; i++)
        if (get_i64(v->data, v->dtype, i) == 0)
            return true;
    return false;
}

int nf_op_ew_binary_run(nf_model *m, nf_node *n, nf_err *err)
{
    const bin_priv *p = n->priv;
    nf_value *a = nf_in(m, n, 0), *b = nf_in(m, n, 1), *y = nf_out(m, n, 0);
    int rank, b_rank;
    int64_t dims[NF_MAX_DIMS], b_dims[NF_MAX_DIMS];
    int rc = bin_shapes(n, p, a, b, &rank, dims, &b_rank, b_dims, err);
    if (rc != NF_OK)
        return rc;
    if (p->op->int_div && is_int_dtype(b->dtype) && has_zero(b))
        return nf_node_err(err, NF_EINVAL, n, "integer %s by zero", p->op->name[0] == 'D' ? "division" : "modulus");
    bc_plan plan;
    const int ranks[2] = {a->n_dims, b_rank};
    const int64_t *in_dims[2] = {a->dims, b_dims};
    bc_build(&plan, rank, dims, 2, ranks, in_dims);
    const void *in[2] = {a->data, b->data};
    const size_t es[2] = {nf_dtype_size(a->dtype), nf_dtype_size(b->dtype)};
    size_t eo = nf_dtype_size(y->dtype);
    int ta = type_index(a->dtype);
    if (p->op->kind == K_POW && (a->dtype != b->dtype || p->k[ta].vv == NULL)) {
        pow_ctx c = {a->dtype, b->dtype};
        bc_run(&plan, y->data, eo, in, es, pow_inner, &c);
        return NF_OK;
    }
    bin_ctx c = {&p->k[ta], a->dtype == NF_DT_FLOAT16, y->dtype == NF_DT_BOOL, eo};
    bc_run(&plan, y->data, eo, in, es, bin_inner, &c);
    return NF_OK;
}

/* ---- Max Min Sum Mean -------------------------------------------------------------
 * Folded pairwise into the output: y = x0 op x1, then y = y op xk. Before
 * opset 8 the inputs must have one shape (no broadcasting). */
typedef struct var_op {
    const char *name;
    const bin_k *k;
    bool mean;
    bool float_only;
} var_op;

static const var_op var_ops[] = {
    {"Max", k_max, false, false},
    {"Min", k_min, false, false},
    {"Sum", k_add, false, false}, /* integers too: a cheap superset of the spec's floats */
    {"Mean", k_add, true, true},
};

int nf_op_ew_variadic_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    (void)m;
    const var_op *op = NULL;
    for (size_t i = 0; i < sizeof var_ops / sizeof var_ops[0]; i++)
        if (strcmp(var_ops[i].name, n->op) == 0)
            op = &var_ops[i];
    if (op == NULL)
        return nf_node_err(err, NF_EINTERNAL, n, "not a variadic elementwise operator");
    if (n->n_in < 1 || n->n_out != 1 || n->out[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs at least one input and one output");
    for (int j = 0; j < n->n_in; j++)
        if (n->in[j] < 0)
            return nf_node_err(err, NF_EMODEL, n, "input %d is empty", j);
    n->priv = (void *)op;
    return NF_OK;
}

static int var_shape(nf_model *m, nf_node *n, int *rank, int64_t *dims, nf_err *err)
{
    nf_value *x0 = nf_in(m, n, 0);
    *rank = x0->n_dims;
    memcpy(dims, x0->dims, sizeof(int64_t) * (size_t)x0->n_dims);
    for (int j = 1; j < n->n_in; j++) {
        nf_value *x = nf_in(m, n, j);
        if (n->opset < 8) {
            bool same = x->n_dims == x0->n_dims;
            for (int d = 0; same && d < x->n_dims; d++)
                same = x->dims[d] == x0->dims[d];
            if (!same) {
                char s0[128], s1[128];
                fmt_dims(s0, sizeof s0, x0->n_dims, x0->dims);
                fmt_dims(s1, sizeof s1, x->n_dims, x->dims);
                return nf_node_err(err, NF_ESHAPE, n, "input shapes %s and %s differ (no broadcasting before opset 8)",
                                   s0, s1);
            }
            continue;
        }
        const int ranks[2] = {*rank, x->n_dims};
        int64_t cur[NF_MAX_DIMS];
        memcpy(cur, dims, sizeof cur);
        const int64_t *ds[2] = {cur, x->dims};
        int rc = bc_shape(n, 2, ranks, ds, rank, dims, err);
        if (rc != NF_OK)
            return rc;
    }
    return NF_OK;
}

int nf_op_ew_variadic_infer(nf_model *m, nf_node *n, nf_err *err)
{
    const var_op *op = n->priv;
    int dt = nf_in(m, n, 0)->dtype, ti = type_index(dt);
    for (int j = 1; j < n->n_in; j++)
        if (nf_in(m, n, j)->dtype != dt)
            return nf_node_err(err, NF_EMODEL, n, "inputs have different types (%s and %s)", nf_dtype_name(dt),
                               nf_dtype_name(nf_in(m, n, j)->dtype));
    if (ti < 0 || op->k[ti].vv == NULL || (op->float_only && ti != TI_F32 && ti != TI_F64))
        return nf_node_err(err, NF_EUNSUPPORTED, n, "input type %s is not supported", nf_dtype_name(dt));
    int rank;
    int64_t dims[NF_MAX_DIMS];
    int rc = var_shape(m, n, &rank, dims, err);
    if (rc != NF_OK)
        return rc;
    return nf_value_set(nf_out(m, n, 0), dt, rank, dims, err);
}

int nf_op_ew_variadic_run(nf_model *m, nf_node *n, nf_err *err)
{
    const var_op *op = n->priv;
    nf_value *y = nf_out(m, n, 0), *x0 = nf_in(m, n, 0);
    size_t es = nf_dtype_size(y->dtype);
    int ti = type_index(y->dtype);
    if (ti < 0 || (op->mean && ti != TI_F32 && ti != TI_F64))
        return nf_node_err(err, NF_EINTERNAL, n, "type %s reached the kernel", nf_dtype_name(y->dtype));
    bin_ctx c = {&op->k[ti], y->dtype == NF_DT_FLOAT16, false, es};
    bc_plan plan;
    if (n->n_in == 1) {
        if (y->size > 0)
            memcpy(y->data, x0->data, (size_t)y->size * es);
    } else {
        for (int j = 1; j < n->n_in; j++) {
            /* step 1 reads x0, later steps the partial result in y */
            const nf_value *a = j == 1 ? x0 : y, *b = nf_in(m, n, j);
            const int ranks[2] = {a->n_dims, b->n_dims};
            const int64_t *ds[2] = {a->dims, b->dims};
            bc_build(&plan, y->n_dims, y->dims, 2, ranks, ds);
            const void *in[2] = {a->data, b->data};
            const size_t ess[2] = {es, es};
            bc_run(&plan, y->data, es, in, ess, bin_inner, &c);
        }
    }
    if (op->mean && y->size > 0) {
        /* y / count, as numpy's mean of the stacked inputs */
        float cf = (float)n->n_in;
        double cd = n->n_in;
        uint16_t ch = nf_float_to_half(cf);
        const void *cnt = &cf;
        if (y->dtype == NF_DT_DOUBLE)
            cnt = &cd;
        else if (y->dtype == NF_DT_FLOAT16)
            cnt = &ch;
        bin_ctx d = {&k_div[ti], y->dtype == NF_DT_FLOAT16, false, es};
        if (d.f16)
            bin_f16(&d, d.k->vs, 1, 0, y->data, y->data, cnt, y->size);
        else
            d.k->vs(y->data, y->data, cnt, y->size);
    }
    return NF_OK;
}

/* ---- Where ------------------------------------------------------------------------
 * y = cond ? x : y over three broadcast inputs, by element size: any type,
 * strings included (their char * are copied, the text is the input's). */
/* both sides are loaded: a select, not a branch, which vectorises */
#define WHERE_LOOP(T, SC, SX, SY)                        \
    for (int64_t i = 0; i < n; i++) {                    \
        T xv = x[i * (SX)], yv = y[i * (SY)];            \
        o[i] = c[i * (SC)] ? xv : yv;                    \
    }                                                    \
    break
#define WHERE_T(T)                                                            \
    {                                                                         \
        T *o = (T *)o_;                                                       \
        const T *x = (const T *)in[1], *y = (const T *)in[2];                 \
        switch (sel) {                                                        \
        case 0: WHERE_LOOP(T, 0, 0, 0);                                       \
        case 1: WHERE_LOOP(T, 0, 0, 1);                                       \
        case 2: WHERE_LOOP(T, 0, 1, 0);                                       \
        case 3: WHERE_LOOP(T, 0, 1, 1);                                       \
        case 4: WHERE_LOOP(T, 1, 0, 0);                                       \
        case 5: WHERE_LOOP(T, 1, 0, 1);                                       \
        case 6: WHERE_LOOP(T, 1, 1, 0);                                       \
        default: WHERE_LOOP(T, 1, 1, 1);                                      \
        }                                                                     \
        return;                                                               \
    }

static void where_inner(const void *ctx, char *o_, char *const *in, const int64_t *st, int64_t n)
{
    size_t es = *(const size_t *)ctx;
    const uint8_t *c = (const uint8_t *)in[0];
    /* each stride is 0 or 1: one loop per pattern keeps them constant */
    int sel = (st[0] != 0) * 4 + (st[1] != 0) * 2 + (st[2] != 0);
    switch (es) {
    case 1: WHERE_T(uint8_t)
    case 2: WHERE_T(uint16_t)
    case 4: WHERE_T(uint32_t)
    default: WHERE_T(uint64_t)
    }
}

int nf_op_where_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    (void)m;
    if (n->n_in != 3 || n->in[0] < 0 || n->in[1] < 0 || n->in[2] < 0 || n->n_out != 1 || n->out[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs three inputs and one output");
    return NF_OK;
}

static int where_shape(nf_model *m, nf_node *n, int *rank, int64_t *dims, nf_err *err)
{
    const nf_value *v[3] = {nf_in(m, n, 0), nf_in(m, n, 1), nf_in(m, n, 2)};
    const int ranks[3] = {v[0]->n_dims, v[1]->n_dims, v[2]->n_dims};
    const int64_t *ds[3] = {v[0]->dims, v[1]->dims, v[2]->dims};
    return bc_shape(n, 3, ranks, ds, rank, dims, err);
}

int nf_op_where_infer(nf_model *m, nf_node *n, nf_err *err)
{
    nf_value *c = nf_in(m, n, 0), *x = nf_in(m, n, 1), *y = nf_in(m, n, 2);
    if (c->dtype != NF_DT_BOOL)
        return nf_node_err(err, NF_EMODEL, n, "condition has type %s, expected bool", nf_dtype_name(c->dtype));
    if (x->dtype != y->dtype)
        return nf_node_err(err, NF_EMODEL, n, "inputs X and Y have different types (%s and %s)",
                           nf_dtype_name(x->dtype), nf_dtype_name(y->dtype));
    size_t es = nf_dtype_size(x->dtype);
    if (es != 1 && es != 2 && es != 4 && es != 8)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "input type %s is not supported", nf_dtype_name(x->dtype));
    int rank;
    int64_t dims[NF_MAX_DIMS];
    int rc = where_shape(m, n, &rank, dims, err);
    if (rc != NF_OK)
        return rc;
    return nf_value_set(nf_out(m, n, 0), x->dtype, rank, dims, err);
}

int nf_op_where_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    nf_value *c = nf_in(m, n, 0), *x = nf_in(m, n, 1), *y = nf_in(m, n, 2), *out = nf_out(m, n, 0);
    bc_plan plan;
    const int ranks[3] = {c->n_dims, x->n_dims, y->n_dims};
    const int64_t *ds[3] = {c->dims, x->dims, y->dims};
    bc_build(&plan, out->n_dims, out->dims, 3, ranks, ds);
    size_t es = nf_dtype_size(x->dtype);
    const void *in[3] = {c->data, x->data, y->data};
    const size_t ess[3] = {1, es, es};
    bc_run(&plan, out->data, es, in, ess, where_inner, &es);
    return NF_OK;
}

/* ---- Expand ------------------------------------------------------------------------
 * Broadcasts the input against the int64 shape input (numpy rules both
 * ways: a 1 in the shape keeps the input's dim). The shape is data: it is
 * read at infer, after its producer ran. */
static void copy_inner(const void *ctx, char *o, char *const *in, const int64_t *st, int64_t n)
{
    size_t es = *(const size_t *)ctx;
    if (st[0] != 0) {
        memcpy(o, in[0], (size_t)n * es);
        return;
    }
    switch (es) {
    case 1: memset(o, *(const uint8_t *)in[0], (size_t)n); break;
    case 2: { uint16_t v = *(const uint16_t *)in[0]; for (int64_t i = 0; i < n; i++) ((uint16_t *)o)[i] = v; break; }
    case 4: { uint32_t v = *(const uint32_t *)in[0]; for (int64_t i = 0; i < n; i++) ((uint32_t *)o)[i] = v; break; }
    default: { uint64_t v = *(const uint64_t *)in[0]; for (int64_t i = 0; i < n; i++) ((uint64_t *)o)[i] = v; break; }
    }
}

int nf_op_expand_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    (void)m;
    if (n->n_in != 2 || n->in[0] < 0 || n->in[1] < 0 || n->n_out != 1 || n->out[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs two inputs (input, shape) and one output");
    return NF_OK;
}

int nf_op_expand_infer(nf_model *m, nf_node *n, nf_err *err)
{
    nf_value *x = nf_in(m, n, 0), *s = nf_in(m, n, 1);
    size_t es = nf_dtype_size(x->dtype);
    if (es != 1 && es != 2 && es != 4 && es != 8)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "input type %s is not supported", nf_dtype_name(x->dtype));
    if (s->dtype != NF_DT_INT64 || s->n_dims != 1)
        return nf_node_err(err, NF_EMODEL, n, "shape must be a 1-D int64 tensor (got %s of rank %d)",
                           nf_dtype_name(s->dtype), s->n_dims);
    if (s->size > NF_MAX_DIMS)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "shape has %lld dims, at most %d supported", (long long)s->size,
                           NF_MAX_DIMS);
    if (s->size > 0 && s->data == NULL)
        return nf_node_err(err, NF_EINTERNAL, n, "shape input has no data at infer");
    const int64_t *sd = s->data;
    for (int64_t i = 0; i < s->size; i++)
        if (sd[i] < 0)
            return nf_node_err(err, NF_EINVAL, n, "shape[%lld] is negative (%lld)", (long long)i, (long long)sd[i]);
    const int ranks[2] = {x->n_dims, (int)s->size};
    const int64_t *ds[2] = {x->dims, sd};
    int rank;
    int64_t dims[NF_MAX_DIMS];
    int rc = bc_shape(n, 2, ranks, ds, &rank, dims, err);
    if (rc != NF_OK)
        return rc;
    return nf_value_set(nf_out(m, n, 0), x->dtype, rank, dims, err);
}

int nf_op_expand_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    nf_value *x = nf_in(m, n, 0), *y = nf_out(m, n, 0);
    bc_plan plan;
    const int ranks[1] = {x->n_dims};
    const int64_t *ds[1] = {x->dims};
    bc_build(&plan, y->n_dims, y->dims, 1, ranks, ds);
    size_t es = nf_dtype_size(x->dtype);
    const void *in[1] = {x->data};
    bc_run(&plan, y->data, es, in, &es, copy_inner, &es);
    return NF_OK;
}
