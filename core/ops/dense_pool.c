/*
 * dense_pool.c: MaxPool (float, double, int8, uint8; optional Indices),
 * AveragePool (float, double), GlobalMaxPool and GlobalAveragePool, 1-D to
 * 3-D windows through the canonical 3-D nf__win (dense_win.c). Direct
 * loops: a pool reads each input element about k times, BLAS has nothing
 * to add. No scratch; kernel state in n->priv (model arena).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ops_dense.h"
#include "ops_vec.h"

/* as in elementwise.c: let -O2 vectorise loops of unknown trip count */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=cheap", "no-trapping-math")
#endif

typedef struct pool_priv {
    nf__winattr wa;
    bool is_max;
    bool count_include_pad; /* AveragePool */
    bool col_major;         /* MaxPool storage_order = 1: Indices column-major */
    /* set by infer */
    nf__win w;
    int64_t nc;             /* N * C planes */
} pool_priv;

/* kernel taps j in [lo, hi) with 0 <= st + j*d < n */
static inline void taps(int64_t st, int64_t d, int64_t k, int64_t n, int64_t *lo, int64_t *hi)
{
    if (st >= 0 && st + (k - 1) * d < n) { /* the common case: inside, no divisions */
        *lo = 0;
        *hi = k;
        return;
    }
    int64_t l = st >= 0 ? 0 : (-st + d - 1) / d;
    int64_t h = n - st <= 0 ? 0 : (n - st + d - 1) / d;
    if (h > k)
        h = k;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

/* MaxPool with Indices: one window at a time, remembering where the max
 * was (the first one on ties, as onnxruntime does). A window that saw only
 * padding gives the lowest value and index 0 of its plane. */
#define MAXPOOL_IDX(sfx, T, LOWEST)                                                                          \
    static void maxpool_idx_##sfx(const T *x, T *y, int64_t *ind, int64_t nc, const nf__win *w, bool col_major) \
    {                                                                                                        \
        const int64_t *in = w->in, *out = w->out, *k = w->k, *s = w->s, *d = w->d, *pb = w->pb;              \
        int64_t plane = in[0] * in[1] * in[2];                                                               \
        for (int64_t pl = 0; pl < nc; pl++, x += plane)                                                      \
            for (int64_t o0 = 0; o0 < out[0]; o0++) {                                                        \
                int64_t st0 = o0 * s[0] - pb[0], lo0, hi0;                                                   \
                taps(st0, d[0], k[0], in[0], &lo0, &hi0);                                                    \
                for (int64_t o1 = 0; o1 < out[1]; o1++) {                                                    \
                    int64_t st1 = o1 * s[1] - pb[1], lo1, hi1;                                               \
                    taps(st1, d[1], k[1], in[1], &lo1, &hi1);                                                \
                    for (int64_t o2 = 0; o2 < out[2]; o2++) {                                                \
                        int64_t st2 = o2 * s[2] - pb[2], lo2, hi2;                                           \
                        taps(st2, d[2], k[2], in[2], &lo2, &hi2);                                            \
                        T best = LOWEST;                                                                     \
                        int64_t b0 = -1, b1 = 0, b2 = 0;                                                     \
                        for (int64_t j0 = lo0; j0 < hi0; j0++)                                               \
                            for (int64_t j1 = lo1; j1 < hi1; j1++) {                                         \
                                int64_t i0 = st0 + j0 * d[0], i1 = st1 + j1 * d[1];                          \
                                const T *row = x + (i0 * in[1] + i1) * in[2];                                \
                                for (int64_t j2 = lo2; j2 < hi2; j2++) {                                     \
                                    T v = row[st2 + j2 * d[2]];                                              \
                                    if (b0 < 0 || v > best) {                                                \
                                        best = v;                                                            \
                                        b0 = i0;                                                             \
                                        b1 = i1;                                                             \
                                        b2 = st2 + j2 * d[2];                                                \
                                    }                                                                        \
                                }                                                                            \
                            }                                                                                \
                        if (b0 < 0)                                                                          \
                            b0 = 0;                                                                          \
                        *y++ = best;                                                                         \
                        *ind++ = pl * plane + (col_major ? b0 + b1 * in[0] + b2 * in[0] * in[1]             \
                                                         : (b0 * in[1] + b1) * in[2] + b2);                  \
                    }                                                                                        \
                }                                                                                            \
            }                                                                                                \
    }
MAXPOOL_IDX(f32, float, -INFINITY)
MAXPOOL_IDX(f64, double, -INFINITY)
MAXPOOL_IDX(i8, int8_t, INT8_MIN)
MAXPOOL_IDX(u8, uint8_t, 0)

/* The o in [0, n_out) whose tap o*s + off lies in [0, n_in) are [*lo, *hi). */
static void span(int64_t n_out, int64_t n_in, int64_t s, int64_t off, int64_t *lo, int64_t *hi)
{
    int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t h = n_in - off <= 0 ? 0 : (n_in - off + s - 1) / s;
    if (h > n_out)
        h = n_out;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

enum { POOL_MAX, POOL_AVG, POOL_AVG_PAD };

/* taps along the innermost dim whose output span pool_rows finds once */
#define POOL_TAPS 16

/* MaxPool without Indices and AveragePool, one output row (the innermost
 * spatial dim) at a time: for each tap the row accumulates
 * y[o] op= x[o*s + off] over the o that tap reaches, a loop the compiler
 * vectorizes; windows are not visited one by one. AveragePool's
 * count_include_pad counts the taps inside [-pad_begin, in + pad_end), not
 * those a ceil_mode window hangs beyond the end pad (PyTorch's and
 * onnxruntime's divisor). */
#define POOL_ROWS(sfx, T, LOWEST)                                                                   \
    static void pool_rows_##sfx(const T *restrict x, T *restrict y, int64_t nc, const nf__win *w, int mode) \
    {                                                                                               \
        const int64_t *in = w->in, *out = w->out, *k = w->k, *s = w->s, *d = w->d, *pb = w->pb;    \
        int64_t plane = in[0] * in[1] * in[2];                                                      \
        /* the o2 reached by tap j2 are the same on every row: found once */                       \
        int64_t los[POOL_TAPS], his[POOL_TAPS];                                                     \
        for (int64_t j2 = 0; j2 < k[2] && j2 < POOL_TAPS; j2++)                                     \
            span(out[2], in[2], s[2], j2 * d[2] - pb[2], &los[j2], &his[j2]);                       \
        for (int64_t pl = 0; pl < nc; pl++)                                                         \
            for (int64_t o0 = 0; o0 < out[0]; o0++) {                                               \
                int64_t st0 = o0 * s[0] - pb[0], lo0, hi0;                                          \
                taps(st0, d[0], k[0], in[0], &lo0, &hi0);                                           \
                for (int64_t o1 = 0; o1 < out[1]; o1++, y += out[2]) {                              \
                    int64_t st1 = o1 * s[1] - pb[1], lo1, hi1;                                      \
                    taps(st1, d[1], k[1], in[1], &lo1, &hi1);                                       \
                    for (int64_t o2 = 0; o2 < out[2]; o2++)                                         \
                        y[o2] = mode == POOL_MAX ? LOWEST : 0;                                      \
                    for (int64_t j0 = lo0; j0 < hi0; j0++)                                          \
                        for (int64_t j1 = lo1; j1 < hi1; j1++) {                                    \
                            const T *row = x + pl * plane +                                         \
                                           ((st0 + j0 * d[0]) * in[1] + st1 + j1 * d[1]) * in[2];   \
                            for (int64_t j2 = 0; j2 < k[2]; j2++) {                                 \
                                int64_t off = j2 * d[2] - pb[2], lo, hi, s2 = s[2];                 \
                                if (j2 < POOL_TAPS)                                                 \
                                    lo = los[j2], hi = his[j2];                                     \
                                else                                                                \
                                    span(out[2], in[2], s2, off, &lo, &hi);                         \
                                if (mode == POOL_MAX && s2 == 1)                                    \
                                    for (int64_t o2 = lo; o2 < hi; o2++)                            \
                                        y[o2] = row[o2 + off] > y[o2] ? row[o2 + off] : y[o2];      \
                                else if (mode == POOL_MAX)                                          \
                                    for (int64_t o2 = lo; o2 < hi; o2++)                            \
                                        y[o2] = row[o2 * s2 + off] > y[o2] ? row[o2 * s2 + off] : y[o2]; \
                                else if (s2 == 1)                                                   \
                                    for (int64_t o2 = lo; o2 < hi; o2++)                            \
                                        y[o2] += row[o2 + off];                                     \
                                else                                                                \
                                    for (int64_t o2 = lo; o2 < hi; o2++)                            \
                                        y[o2] += row[o2 * s2 + off];                                \
                            }                                                                       \
                        }                                                                           \
                    if (mode == POOL_MAX)                                                           \
                        continue;                                                                   \
                    for (int64_t o2 = 0; o2 < out[2]; o2++) {                                       \
                        int64_t st2 = o2 * s[2] - pb[2], lo2, hi2, cnt;                             \
                        if (mode == POOL_AVG_PAD) {                                                 \
                            int64_t z, a, b, c;                                                     \
                            taps(st0 + pb[0], d[0], k[0], in[0] + pb[0] + w->pe[0], &z, &a);        \
                            taps(st1 + pb[1], d[1], k[1], in[1] + pb[1] + w->pe[1], &z, &b);        \
                            taps(st2 + pb[2], d[2], k[2], in[2] + pb[2] + w->pe[2], &z, &c);        \
                            cnt = a * b * c;                                                        \
                        } else {                                                                    \
                            taps(st2, d[2], k[2], in[2], &lo2, &hi2);                               \
                            cnt = (hi0 - lo0) * (hi1 - lo1) * (hi2 - lo2);                          \
                        }                                                                           \
                        y[o2] = cnt > 0 ? y[o2] / (T)cnt : (T)NAN;                                  \
                    }                                                                               \
                }                                                                                   \
            }                                                                                       \
    }
POOL_ROWS(f32, float, -INFINITY)
POOL_ROWS(f64, double, -INFINITY)
POOL_ROWS(i8, int8_t, INT8_MIN)
POOL_ROWS(u8, uint8_t, 0)

/* True for the common 2x2, stride-2 window without padding or dilation
 * over the two inner dims (each output reads a 2x2 block inside X). */
static bool is_2x2(const nf__win *w)
{
    return w->k[0] == 1 && w->s[0] == 1 && w->pb[0] == 0 && w->in[0] == w->out[0] && w->k[1] == 2 &&
           w->k[2] == 2 && w->s[1] == 2 && w->s[2] == 2 && w->d[1] == 1 && w->d[2] == 1 && w->pb[1] == 0 &&
           w->pb[2] == 0 && 2 * w->out[1] <= w->in[1] && 2 * w->out[2] <= w->in[2];
}

/* MaxPool over 2x2 blocks (is_2x2); the taps in pool_rows' order, so the
 * result (NaN handling included) is the same: m = v > m ? v : m from -inf
 * over r0[2o], r0[2o + 1], r1[2o], r1[2o + 1]. The o loop vectorises 4
 * wide (SSE2), which suits the short rows of small feature maps; wider
 * clones would leave rows of 4 or 8 to their scalar epilogues. */
static void max2x2_f32(const float *restrict x, float *restrict y, int64_t nc, const nf__win *w)
{
    int64_t in2 = w->in[2], out2 = w->out[2], plane_in = w->in[1] * in2, out1 = w->out[1];
    for (int64_t pl = 0; pl < nc * w->out[0]; pl++, x += plane_in)
        for (int64_t o1 = 0; o1 < out1; o1++, y += out2) {
            const float *restrict r0 = x + 2 * o1 * in2, *restrict r1 = r0 + in2;
            for (int64_t o = 0; o < out2; o++) {
                float m = -INFINITY, t;
                t = r0[2 * o];
                m = t > m ? t : m;
                t = r0[2 * o + 1];
                m = t > m ? t : m;
                t = r1[2 * o];
                m = t > m ? t : m;
                t = r1[2 * o + 1];
                m = t > m ? t : m;
                y[o] = m;
            }
        }
}

static int pool_prepare(nf_model *m, nf_node *n, bool is_max, nf_err *err)
{
    if (n->n_in < 1 || n->in[0] < 0 || n->n_out < 1 || n->out[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs input X and output Y");
    pool_priv *p = nf_arena_alloc(&m->arena, sizeof *p);
    if (p == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    int rc = nf__winattr_parse(n, &p->wa, err);
    if (rc != NF_OK)
        return rc;
    if (p->wa.n_kernel == 0)
        return nf_node_err(err, NF_EMODEL, n, "attribute kernel_shape is missing");
    if (p->wa.n_kernel > NF_WIN_DIMS)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "%lld spatial dimensions, at most %d are supported",
                           (long long)p->wa.n_kernel, NF_WIN_DIMS);
    p->is_max = is_max;
    if (is_max) {
        int64_t so = nf_attr_int(n, "storage_order", 0);
        if (so != 0 && so != 1)
            return nf_node_err(err, NF_EMODEL, n, "attribute storage_order = %lld, must be 0 or 1", (long long)so);
        p->col_major = so == 1;
    } else {
        if (p->wa.n_dilations) /* AveragePool has dilations from opset 19 */
            for (int64_t i = 0; i < p->wa.n_dilations; i++)
                if (p->wa.dilations[i] != 1)
                    return nf_node_err(err, NF_EMODEL, n, "attribute dilations is not an AveragePool attribute "
                                       "before opset 19");
        p->count_include_pad = nf_attr_int(n, "count_include_pad", 0) != 0;
    }
    n->priv = p;
    return NF_OK;
}

static int pool_infer(nf_model *m, nf_node *n, nf_err *err)
{
    pool_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0), *ind = nf_out(m, n, 1);
    int t = x->dtype;
    bool ok = t == NF_DT_FLOAT || t == NF_DT_DOUBLE || (p->is_max && (t == NF_DT_INT8 || t == NF_DT_UINT8));
    if (!ok)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "input X ('%s') is %s; %s are supported", x->name,
                           nf_dtype_name(t), p->is_max ? "float, double, int8 and uint8" : "float and double");
    int code = nf__dense_shape_code(x, NULL);
    if (x->n_dims != p->wa.n_kernel + 2)
        return nf_node_err(err, code, n, "input X ('%s') has rank %d; kernel_shape has %lld dims, X needs %lld",
                           x->name, x->n_dims, (long long)p->wa.n_kernel, (long long)p->wa.n_kernel + 2);
    int nd = x->n_dims - 2;
    int rc = nf__win_infer(n, &p->wa, x, p->wa.kernel, code, &p->w, err);
    if (rc != NF_OK)
        return rc;
    p->nc = x->dims[0] * x->dims[1];
    int64_t ydims[NF_MAX_DIMS] = {x->dims[0], x->dims[1]};
    for (int i = 0; i < nd; i++)
        ydims[2 + i] = p->w.out[NF_WIN_DIMS - nd + i];
    if ((rc = nf_value_set(nf_out(m, n, 0), t, x->n_dims, ydims, err)) != NF_OK)
        return rc;
    return ind ? nf_value_set(ind, NF_DT_INT64, x->n_dims, ydims, err) : NF_OK;
}

/* ---- MaxPool ------------------------------------------------------------------ */
int nf_op_max_pool_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    return pool_prepare(m, n, true, err);
}

int nf_op_max_pool_infer(nf_model *m, nf_node *n, nf_err *err)
{
    return pool_infer(m, n, err);
}

int nf_op_max_pool_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const pool_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0), *y = nf_out(m, n, 0), *ind = nf_out(m, n, 1);
    if (ind != NULL) {
        switch (x->dtype) {
        case NF_DT_FLOAT: maxpool_idx_f32(x->data, y->data, ind->data, p->nc, &p->w, p->col_major); break;
        case NF_DT_DOUBLE: maxpool_idx_f64(x->data, y->data, ind->data, p->nc, &p->w, p->col_major); break;
        case NF_DT_INT8: maxpool_idx_i8(x->data, y->data, ind->data, p->nc, &p->w, p->col_major); break;
        case NF_DT_UINT8: maxpool_idx_u8(x->data, y->data, ind->data, p->nc, &p->w, p->col_major); break;
        default: break;
        }
        return NF_OK;
    }
    if (x->dtype == NF_DT_FLOAT && is_2x2(&p->w)) {
        max2x2_f32(x->data, y->data, p->nc, &p->w);
        return NF_OK;
    }
    switch (x->dtype) {
    case NF_DT_FLOAT: pool_rows_f32(x->data, y->data, p->nc, &p->w, POOL_MAX); break;
    case NF_DT_DOUBLE: pool_rows_f64(x->data, y->data, p->nc, &p->w, POOL_MAX); break;
    case NF_DT_INT8: pool_rows_i8(x->data, y->data, p->nc, &p->w, POOL_MAX); break;
    case NF_DT_UINT8: pool_rows_u8(x->data, y->data, p->nc, &p->w, POOL_MAX); break;
    default: break;
    }
    return NF_OK;
}

/* ---- AveragePool ---------------------------------------------------------------- */
int nf_op_average_pool_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    return pool_prepare(m, n, false, err);
}

int nf_op_average_pool_infer(nf_model *m, nf_node *n, nf_err *err)
{
    return pool_infer(m, n, err);
}

int nf_op_average_pool_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const pool_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0), *y = nf_out(m, n, 0);
    int mode = p->count_include_pad ? POOL_AVG_PAD : POOL_AVG;
    if (x->dtype == NF_DT_FLOAT)
        pool_rows_f32(x->data, y->data, p->nc, &p->w, mode);
    else
        pool_rows_f64(x->data, y->data, p->nc, &p->w, mode);
    return NF_OK;
}

/* ---- GlobalAveragePool, GlobalMaxPool: one value per (N, C) plane ------------------ */
static int global_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    (void)m;
    if (n->n_in < 1 || n->in[0] < 0 || n->n_out < 1 || n->out[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs input X and output Y");
    return NF_OK;
}

static int global_infer(nf_model *m, nf_node *n, nf_err *err)
{
    nf_value *x = nf_in(m, n, 0);
    if (x->dtype != NF_DT_FLOAT && x->dtype != NF_DT_DOUBLE)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "input X ('%s') is %s; float and double are supported", x->name,
                           nf_dtype_name(x->dtype));
    if (x->n_dims < 3)
        return nf_node_err(err, nf__dense_shape_code(x, NULL), n,
                           "input X ('%s') has rank %d, needs (N, C, D1, ...)", x->name, x->n_dims);
    int64_t plane = nf_dims_count(x->n_dims - 2, x->dims + 2);
    if (plane == 0)
        return nf_node_err(err, nf__dense_shape_code(x, NULL), n, "input X ('%s') has an empty spatial dim",
                           x->name);
    int64_t ydims[NF_MAX_DIMS];
    for (int i = 0; i < x->n_dims; i++)
        ydims[i] = i < 2 ? x->dims[i] : 1;
    return nf_value_set(nf_out(m, n, 0), x->dtype, x->n_dims, ydims, err);
}

#define GLOBAL_POOL(name, T, INIT, STEP, FINISH)                         \
    static void name(const T *x, T *y, int64_t nc, int64_t plane)        \
    {                                                                    \
        for (int64_t c = 0; c < nc; c++, x += plane) {                   \
            T acc = INIT;                                                \
            for (int64_t i = 0; i < plane; i++)                          \
                STEP;                                                    \
            y[c] = FINISH;                                               \
        }                                                                \
    }
GLOBAL_POOL(gavg_f64, double, 0, acc += x[i], acc / (double)plane)

/* float planes: sixteen float lanes (GCC vector extension: four SSE2
 * registers in the baseline build, one zmm in the AVX-512 clone) summed
 * into a double every 1024 elements; one float accumulator would make
 * every addition wait for the previous one (the digits CNN's 2048 planes
 * of 16: 20 -> 4 us). */
typedef float v16f __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpsabi"
#elif defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi" /* v16f never crosses a call: inlined */
#endif

NF_VEC_INLINE float hsum16(v16f m)
{
    v8f a = __builtin_shufflevector(m, m, 0, 1, 2, 3, 4, 5, 6, 7) +
            __builtin_shufflevector(m, m, 8, 9, 10, 11, 12, 13, 14, 15);
    v4f c = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    return (c[0] + c[2]) + (c[1] + c[3]);
}

NF_VEC_CLONES static void gavg_f32(const float *x, float *y, int64_t nc, int64_t plane)
{
    double inv = 1.0 / (double)plane; /* the mean in double, rounded to float once */
    for (int64_t c = 0; c < nc; c++, x += plane) {
        double total = 0;
        int64_t i = 0;
        while (i + 16 <= plane) {
            int64_t end = plane - i > 1024 ? i + 1024 : plane;
            v16f a = {0};
            for (; i + 16 <= end; i += 16) {
                v16f v;
                memcpy(&v, x + i, sizeof v);
                a += v;
            }
            total += (double)hsum16(a);
        }
        for (; i < plane; i++)
            total += x[i];
        y[c] = (float)(total * inv);
    }
}

GLOBAL_POOL(gmax_f32, float, x[0], acc = x[i] > acc ? x[i] : acc, acc)
GLOBAL_POOL(gmax_f64, double, x[0], acc = x[i] > acc ? x[i] : acc, acc)

int nf_op_global_average_pool_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    return global_prepare(m, n, err);
}

int nf_op_global_average_pool_infer(nf_model *m, nf_node *n, nf_err *err)
{
    return global_infer(m, n, err);
}

int nf_op_global_average_pool_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    nf_value *x = nf_in(m, n, 0), *y = nf_out(m, n, 0);
    int64_t nc = x->dims[0] * x->dims[1], plane = nf_dims_count(x->n_dims - 2, x->dims + 2);
    if (x->dtype == NF_DT_FLOAT)
        gavg_f32(x->data, y->data, nc, plane);
    else
        gavg_f64(x->data, y->data, nc, plane);
    return NF_OK;
}

int nf_op_global_max_pool_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    return global_prepare(m, n, err);
}

int nf_op_global_max_pool_infer(nf_model *m, nf_node *n, nf_err *err)
{
    return global_infer(m, n, err);
}

int nf_op_global_max_pool_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    nf_value *x = nf_in(m, n, 0), *y = nf_out(m, n, 0);
    int64_t nc = x->dims[0] * x->dims[1], plane = nf_dims_count(x->n_dims - 2, x->dims + 2);
    if (x->dtype == NF_DT_FLOAT)
        gmax_f32(x->data, y->data, nc, plane);
    else
        gmax_f64(x->data, y->data, nc, plane);
    return NF_OK;
}
