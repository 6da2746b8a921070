/*
 * dense_conv.c: Conv and ConvTranspose (ONNX opsets 1 and 11), 1-D to 3-D,
 * float32 and float64. Conv is im2col into n->scratch plus one GEMM per
 * group and image (Chellapilla et al. 2006, as Caffe does it); a 1x1,
 * stride-1, unpadded Conv is the GEMM alone. ConvTranspose is the adjoint:
 * one GEMM with W^T into the scratch columns, then col2im adds them into Y.
 * Weights are used in place: ONNX's (M, C/group, k...) layout already is
 * the row-major GEMM operand, so nothing is repacked.
 *
 * Faster paths, chosen at infer (set_output) for the current shapes:
 * - shift (float32 on our AVX-512 GEMM, stride 1, Y as large as X): a
 *   tap's column row is X's plane shifted by one offset, so the GEMM reads
 *   X in place through nf__sgemm_rows, the padding masked off; no columns.
 * - batched (N > 1, images of a few hundred positions): per-image GEMMs of
 *   16 columns cost more in calls and in packing W than in arithmetic, and
 *   their im2col copies lines of 4 elements. The batch is transposed so
 *   the image index is innermost, X (n, C, big) -> xt (C, big, n): a tap
 *   at one output position then reads n contiguous images. With our
 *   kernel (gather) the GEMM reads those rows of xt in place and skips the
 *   taps in the padding; else (OpenBLAS) a column matrix is built. The
 *   result comes out as (M, small, n), and one transposing pass writes Y
 *   (n, M, small). Images whose im2col lines are long enough are batched
 *   side by side instead, for OpenBLAS only.
 * The dense part of the digits CNN at batch 64 went from 470 to 60 us.
 */
#include <string.h>

#include "ops_dense.h"
#include "ops_vec.h"

/* as in elementwise.c: let -O2 vectorise loops of unknown trip count
 * (the copies and bias additions below) */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=cheap")
#endif

typedef struct conv_priv {
    nf__winattr wa;
    int64_t group;
    bool transpose;
    int64_t n_out_pad, n_out_shape;      /* ConvTranspose; 0 = absent */
    const int64_t *out_pad, *out_shape;  /* node attributes, model arena */
    /* set by infer for the current shapes, read by run. The window runs
     * over the large image: X for Conv, Y for ConvTranspose (w.in), and
     * w.out is the small one (Y for Conv, X for ConvTranspose). */
    nf__win w;
    int64_t N, C, M, kprod, big, small; /* big, small: spatial element counts */
    bool direct;                        /* no columns: the GEMM reads X */
    int64_t chunk_lines;                /* small-image lines (out[0] x out[1]) per column chunk */
    int64_t batch_imgs;                 /* Conv: images per batched GEMM; 0 = one GEMM per image */
    bool img_inner;                     /* batched columns with the image index innermost */
    bool gather;                        /* img_inner through nf__sgemm_rows: no column matrix */
    bool shift;                         /* per image through nf__sgemm_rows on shifted X: no columns */
} conv_priv;

/* Conv batches images whose output has at most this many positions. */
#ifndef NF_CONV_BATCH_SMALL
#define NF_CONV_BATCH_SMALL 512
#endif

/* Columns are built for a chunk of the small image's lines at a time, at
 * most this many bytes (at least one line): full-image columns of a 3x3
 * convolution are 9x its input (115 MB for 64 channels at 224x224), and a
 * chunk that stays in cache is also faster to fill and to multiply. */
#ifndef NF_CONV_COL_BYTES
#define NF_CONV_COL_BYTES (2u << 20)
#endif

/* ---- columns -------------------------------------------------------------------
 * Row r = (c, k0, k1, k2) of the column matrix holds, for every small-image
 * position o, the big-image element at o*s + k*d - pb (0 outside). */

/* The o in [0, n_small) with 0 <= o*s + off < n_big are [*lo, *hi). */
NF_VEC_INLINE void span(int64_t n_small, int64_t n_big, int64_t s, int64_t off, int64_t *lo, int64_t *hi)
{
    /* stride 1 without divisions: im2col calls this per column row */
    int64_t l = off >= 0 ? 0 : s == 1 ? -off : (-off + s - 1) / s;
    int64_t h = n_big - off <= 0 ? 0 : s == 1 ? n_big - off : (n_big - off + s - 1) / s;
    if (h > n_small)
        h = n_small;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

/* Unfolds x (C channels of the big image) into col for the small-image
 * lines [l0, l1) (a line is one (o0, o1), out[2] positions): row r =
 * (c, k0, k1, k2) of the column matrix starts at col + r * row_len and
 * gets (l1 - l0) * out[2] elements. Elements are moved as bits (T is an
 * unsigned integer of the element's size), so one version serves float
 * and double. Typed loops with the bounds found per row, not calls of
 * memcpy/memset per line: lines are often 4 to 16 elements. */
/* One column row's planes o0 in [a0, b0) when lines are input rows
 * shifted (strides 1 along the two inner dims, no dilation along the
 * innermost, in[2] == out[2]): the valid lines of a plane then read one
 * contiguous run of X, moved in one loop; the columns a shift pushes out
 * of the row ([0, lo) and [hi, out[2])) are zeroed after, line by line.
 * The run starts at the first valid element and ends at the last, so it
 * reads nothing outside the plane. */
#define IM2COL_RUNS(SFX, T)                                                                             \
    NF_VEC_INLINE void im2col_runs_##SFX(const T *xc, const nf__win *w, int64_t off0, int64_t off1, int64_t off2, \
                                  int64_t lo, int64_t hi, int64_t a0, int64_t b0, T *dst)               \
    {                                                                                                   \
        const int64_t *in = w->in, *out = w->out;                                                       \
        int64_t n1 = out[1], n2 = out[2], a1, b1;                                                       \
        span(n1, in[1], 1, off1, &a1, &b1);                                                             \
        for (int64_t o0 = a0; o0 < b0; o0++, dst += n1 * n2) {                                          \
            int64_t i0 = o0 * w->s[0] + off0;                                                           \
            if (i0 < 0 || i0 >= in[0] || a1 >= b1 || lo >= hi) {                                        \
                memset(dst, 0, (size_t)(n1 * n2) * sizeof(T));                                          \
                continue;                                                                               \
            }                                                                                           \
            /* loops, not memset calls: the zero runs are a few elements */                           \
            int64_t first = a1 * n2 + lo, last = (b1 - 1) * n2 + hi; /* [first, last) */                \
            for (int64_t j = 0; j < first; j++)                                                         \
                dst[j] = 0;                                                                             \
            /* position j = o1 * n2 + o2 reads X's plane at base + j (in[2] == n2) */                 \
            int64_t base = (i0 * in[1] + off1) * in[2] + off2;                                          \
            for (int64_t j = first; j < last; j++)                                                      \
                dst[j] = xc[base + j];                                                                  \
            for (int64_t j = last; j < n1 * n2; j++)                                                    \
                dst[j] = 0;                                                                             \
            for (int64_t o1 = a1; o1 < b1; o1++) {                                                      \
                for (int64_t o2 = 0; o2 < lo; o2++)                                                     \
                    dst[o1 * n2 + o2] = 0;                                                              \
                for (int64_t o2 = hi; o2 < n2; o2++)                                                    \
                    dst[o1 * n2 + o2] = 0;                                                              \
            }                                                                                           \
        }                                                                                               \
    }
IM2COL_RUNS(b32, uint32_t)
IM2COL_RUNS(b64, uint64_t)

#define IM2COL(SFX, T)                                                                                  \
    NF_VEC_CLONES static void im2col_##SFX(const T *x, int64_t C, const nf__win *w, int64_t l0, int64_t l1, \
                                           T *col, int64_t row_len)                                     \
    {                                                                                                   \
        const int64_t *in = w->in, *out = w->out, *s = w->s, *d = w->d, *pb = w->pb;                  \
        int64_t n2 = out[2], s2 = s[2];                                                                 \
        bool runs = s[1] == 1 && s2 == 1 && d[2] == 1 && in[2] == n2 && l0 % out[1] == 0 && l1 % out[1] == 0; \
        int64_t a0 = l0 / out[1], b0 = l1 / out[1], p0 = l0 / out[1], p1 = l0 % out[1];               \
        T *row = col;                                                                                   \
        for (int64_t c = 0; c < C; c++)                                                                 \
            for (int64_t k0 = 0; k0 < w->k[0]; k0++)                                                    \
                for (int64_t k1 = 0; k1 < w->k[1]; k1++)                                                \
                    for (int64_t k2 = 0; k2 < w->k[2]; k2++, row += row_len) {                          \
                        int64_t off0 = k0 * d[0] - pb[0], off1 = k1 * d[1] - pb[1];                     \
                        int64_t off2 = k2 * d[2] - pb[2], lo, hi;                                       \
                        span(n2, in[2], s2, off2, &lo, &hi);                                            \
                        T *dst = row;                                                                   \
                        if (runs) {                                                                     \
                            im2col_runs_##SFX(x + c * in[0] * in[1] * in[2], w, off0, off1, off2, lo, hi, \
                                              a0, b0, dst);                                             \
                            continue;                                                                   \
                        }                                                                               \
                        int64_t o0 = p0, o1 = p1;                                                       \
                        for (int64_t l = l0; l < l1; l++, dst += n2) {                                  \
                            int64_t i0 = o0 * s[0] + off0, i1 = o1 * s[1] + off1, o = 0;                \
                            if (++o1 == out[1]) {                                                       \
                                o1 = 0;                                                                 \
                                o0++;                                                                   \
                            }                                                                           \
                            if (i0 >= 0 && i0 < in[0] && i1 >= 0 && i1 < in[1]) {                      \
                                /* element o of the line is at base + o * s2, o in [lo, hi) */          \
                                int64_t base = ((c * in[0] + i0) * in[1] + i1) * in[2] + off2;          \
                                for (; o < lo; o++)                                                     \
                                    dst[o] = 0;                                                         \
                                if (s2 == 1)                                                            \
                                    for (; o < hi; o++)                                                 \
                                        dst[o] = x[base + o];                                           \
                                else                                                                    \
                                    for (; o < hi; o++)                                                 \
                                        dst[o] = x[base + o * s2];                                      \
                            }                                                                           \
                            for (; o < n2; o++)                                                         \
                                dst[o] = 0;                                                             \
                        }                                                                               \
                    }                                                                                   \
    }
IM2COL(b32, uint32_t)
IM2COL(b64, uint64_t)

/* im2col for an element size es (4 or 8 bytes); row_len in elements */
static void im2col(const char *x, int64_t C, const nf__win *w, size_t es, int64_t l0, int64_t l1, char *col,
                   int64_t row_len)
{
    if (es == 4)
        im2col_b32((const uint32_t *)x, C, w, l0, l1, (uint32_t *)col, row_len);
    else
        im2col_b64((const uint64_t *)x, C, w, l0, l1, (uint64_t *)col, row_len);
}

#define ADD_STRIDED(T)                                          \
    do {                                                        \
        T *yy = (T *)dst;                                       \
        const T *cc = (const T *)src;                           \
        for (int64_t i = 0; i < count; i++)                     \
            yy[i * s] += cc[i];                                 \
    } while (0)

static void add_strided(int dtype, char *dst, const char *src, int64_t count, int64_t s)
{
    if (dtype == NF_DT_FLOAT)
        ADD_STRIDED(float);
    else
        ADD_STRIDED(double);
}

/* Folds col back: y (C channels of the big image) += every column element
 * at its position, for the small-image lines [l0, l1); the adjoint of
 * im2col. */
static void col2im(int dtype, const char *col, int64_t C, const nf__win *w, int64_t l0, int64_t l1, char *y)
{
    const int64_t *in = w->in, *out = w->out, *s = w->s, *d = w->d, *pb = w->pb;
    size_t es = nf_dtype_size(dtype);
    size_t line = (size_t)out[2] * es, row_bytes = (size_t)(l1 - l0) * line;
    const char *row = col;
    for (int64_t c = 0; c < C; c++)
        for (int64_t k0 = 0; k0 < w->k[0]; k0++)
            for (int64_t k1 = 0; k1 < w->k[1]; k1++)
                for (int64_t k2 = 0; k2 < w->k[2]; k2++, row += row_bytes) {
                    int64_t off2 = k2 * d[2] - pb[2], lo, hi;
                    span(out[2], in[2], s[2], off2, &lo, &hi);
                    const char *src = row;
                    for (int64_t l = l0; l < l1; l++, src += line) {
                        int64_t i0 = l / out[1] * s[0] + k0 * d[0] - pb[0];
                        int64_t i1 = l % out[1] * s[1] + k1 * d[1] - pb[1];
                        if (i0 < 0 || i0 >= in[0] || i1 < 0 || i1 >= in[1] || hi <= lo)
                            continue;
                        char *dst = y + (size_t)(((c * in[0] + i0) * in[1] + i1) * in[2]) * es;
                        add_strided(dtype, dst + (size_t)(lo * s[2] + off2) * es, src + (size_t)lo * es, hi - lo, s[2]);
                    }
                }
}

/* rows x cols of y = bias[row], or 0 without a bias */
static void fill_rows(int dtype, char *y, int64_t rows, int64_t cols, const char *bias)
{
    for (int64_t r = 0; r < rows; r++) {
        if (dtype == NF_DT_FLOAT) {
            float *yr = (float *)y + r * cols, v = bias ? ((const float *)bias)[r] : 0.0f;
            for (int64_t j = 0; j < cols; j++)
                yr[j] = v;
        } else {
            double *yr = (double *)y + r * cols, v = bias ? ((const double *)bias)[r] : 0.0;
            for (int64_t j = 0; j < cols; j++)
                yr[j] = v;
        }
    }
}

/* ---- shared checks ------------------------------------------------------------- */

static int prepare_common(nf_model *m, nf_node *n, bool transpose, nf_err *err)
{
    if (n->n_in < 2 || n->in[0] < 0 || n->in[1] < 0 || n->n_out < 1 || n->out[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs inputs X, W and output Y");
    conv_priv *p = nf_arena_alloc(&m->arena, sizeof *p);
    if (p == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    int rc = nf__winattr_parse(n, &p->wa, err);
    if (rc != NF_OK)
        return rc;
    if (p->wa.ceil_mode)
        return nf_node_err(err, NF_EMODEL, n, "attribute ceil_mode is not a %s attribute", n->op);
    p->group = nf_attr_int(n, "group", 1);
    if (p->group < 1)
        return nf_node_err(err, NF_EMODEL, n, "attribute group = %lld, must be at least 1", (long long)p->group);
    p->transpose = transpose;
    if (transpose) {
        p->n_out_pad = nf_attr_ints(n, "output_padding", &p->out_pad);
        p->n_out_shape = nf_attr_ints(n, "output_shape", &p->out_shape);
        for (int64_t i = 0; i < p->n_out_pad; i++)
            if (p->out_pad[i] < 0)
                return nf_node_err(err, NF_EMODEL, n, "attribute output_padding[%lld] = %lld is negative",
                                   (long long)i, (long long)p->out_pad[i]);
        for (int64_t i = 0; i < p->n_out_shape; i++)
            if (p->out_shape[i] < 1)
                return nf_node_err(err, NF_EMODEL, n, "attribute output_shape[%lld] = %lld, must be at least 1",
                                   (long long)i, (long long)p->out_shape[i]);
    }
    n->priv = p;
    return nf__dense_blas_init(m, n, err);
}

/* Checks W (and B) against the attributes; X is not looked at. Called at
 * prepare when W is a constant, so a broken model fails at load, and at
 * every infer. Sets *nd and kernel[0..nd). */
static int check_weights(const nf_node *n, const conv_priv *p, const nf_value *w, const nf_value *b, int *nd,
                         int64_t *kernel, nf_err *err)
{
    int code = nf__dense_shape_code(w, NULL);
    if (w->dtype != NF_DT_FLOAT && w->dtype != NF_DT_DOUBLE)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "input W ('%s') is %s; float and double are supported",
                           w->name, nf_dtype_name(w->dtype));
    if (w->n_dims < 3)
        return nf_node_err(err, code, n, "input W ('%s') has rank %d, needs at least 3", w->name, w->n_dims);
    *nd = w->n_dims - 2;
    if (*nd > NF_WIN_DIMS)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "%d spatial dimensions, at most %d are supported", *nd,
                           NF_WIN_DIMS);
    if (p->wa.n_kernel != 0 && p->wa.n_kernel != *nd)
        return nf_node_err(err, code, n, "attribute kernel_shape has %lld values, input W ('%s') has %d spatial dims",
                           (long long)p->wa.n_kernel, w->name, *nd);
    for (int i = 0; i < *nd; i++) {
        kernel[i] = w->dims[2 + i];
        if (p->wa.n_kernel == *nd && p->wa.kernel[i] != kernel[i])
            return nf_node_err(err, code, n, "attribute kernel_shape[%d] = %lld, input W ('%s') dim %d is %lld", i,
                               (long long)p->wa.kernel[i], w->name, 2 + i, (long long)kernel[i]);
    }
    /* Conv W is (M, C/group, k...), ConvTranspose W is (C, M/group, k...) */
    int64_t wm = p->transpose ? w->dims[1] * p->group : w->dims[0];
    if (!p->transpose && wm % p->group != 0)
        return nf_node_err(err, code, n, "input W ('%s') has %lld output channels, not a multiple of group %lld",
                           w->name, (long long)wm, (long long)p->group);
    if (p->transpose && w->dims[0] % p->group != 0)
        return nf_node_err(err, code, n, "input W ('%s') has %lld input channels, not a multiple of group %lld",
                           w->name, (long long)w->dims[0], (long long)p->group);
    if (b != NULL) {
        if (b->dtype != w->dtype)
            return nf_node_err(err, NF_EMODEL, n, "input B is %s, input W is %s", nf_dtype_name(b->dtype),
                               nf_dtype_name(w->dtype));
        if (b->n_dims != 1 || b->dims[0] != wm)
            return nf_node_err(err, nf__dense_shape_code(b, w), n,
                               "input B ('%s') must be a vector of %lld values (output channels), has rank %d, "
                               "dim 0 %lld",
                               b->name, (long long)wm, b->n_dims, b->n_dims ? (long long)b->dims[0] : 0LL);
    }
    return NF_OK;
}

static int check_x(const nf_node *n, const conv_priv *p, const nf_value *x, const nf_value *w, int nd,
                   nf_err *err)
{
    int code = nf__dense_shape_code(x, w);
    if (x->dtype != w->dtype)
        return nf_node_err(err, NF_EMODEL, n, "input X is %s, input W is %s", nf_dtype_name(x->dtype),
                           nf_dtype_name(w->dtype));
    if (x->n_dims != nd + 2)
        return nf_node_err(err, code, n, "input X ('%s') has rank %d, W ('%s') has rank %d", x->name, x->n_dims,
                           w->name, w->n_dims);
    int64_t c = x->dims[1];
    int64_t expect = p->transpose ? w->dims[0] : w->dims[1] * p->group;
    if (c != expect)
        return nf_node_err(err, code, n, "input X ('%s') has %lld channels (dim 1), W ('%s') expects %lld", x->name,
                           (long long)c, w->name, (long long)expect);
    return NF_OK;
}

static int prepare_check_const(nf_model *m, nf_node *n, nf_err *err)
{
    const conv_priv *p = n->priv;
    nf_value *w = nf_in(m, n, 1), *b = nf_in(m, n, 2);
    if (w->kind != NF_V_CONST || (b != NULL && b->kind != NF_V_CONST))
        return NF_OK;
    int nd;
    int64_t kernel[NF_MAX_DIMS];
    return check_weights(n, p, w, b, &nd, kernel, err);
}

static int set_output(nf_model *m, nf_node *n, conv_priv *p, nf_err *err)
{
    nf_value *x = nf_in(m, n, 0), *w = nf_in(m, n, 1);
    nf__win *g = &p->w;
    const int64_t *ysp = p->transpose ? g->in : g->out;
    int64_t ydims[NF_MAX_DIMS];
    ydims[0] = p->N;
    ydims[1] = p->M;
    for (int i = 0; i < g->nd; i++)
        ydims[2 + i] = ysp[NF_WIN_DIMS - g->nd + i];
    p->big = g->in[0] * g->in[1] * g->in[2];
    p->small = g->out[0] * g->out[1] * g->out[2];
    p->kprod = g->k[0] * g->k[1] * g->k[2];
    bool unit = true;
    for (int i = 0; i < NF_WIN_DIMS; i++)
        if (g->k[i] != 1 || g->s[i] != 1 || g->pb[i] != 0 || g->in[i] != g->out[i])
            unit = false;
    p->direct = unit;
    /* the GEMM's dims: Conv (M/g) x small x (C/g * k), ConvTranspose
     * (M/g * k) x small x (C/g) */
    int64_t bd[4] = {p->M * p->kprod, p->C * p->kprod, p->small, p->big};
    int rc = nf__dense_blas_dims(n, 4, bd, err);
    if (rc != NF_OK)
        return rc;
    size_t es = nf_dtype_size(x->dtype);
    int64_t rows = p->transpose ? p->M / p->group * p->kprod : p->C / p->group * p->kprod;
    int64_t n_lines = g->out[0] * g->out[1], line_bytes = rows * g->out[2] * (int64_t)es;
    p->chunk_lines = line_bytes > 0 ? (int64_t)NF_CONV_COL_BYTES / line_bytes : n_lines;
    if (p->chunk_lines < 1)
        p->chunk_lines = 1;
    if (p->chunk_lines > n_lines)
        p->chunk_lines = n_lines;
    n->scratch_bytes = p->direct || p->N == 0 ? 0 : (size_t)(p->chunk_lines * line_bytes);
    /* batched Conv: the transposed images, their columns and the GEMM's
     * result (M/g rows) for batch_imgs whole images at a time */
    p->batch_imgs = 0;
    /* Layout by estimated cost per image, in element moves: im2col pays
     * about 16 per line of a column row, the image-innermost layout two
     * transposes (X and Y) at about 2 per element (measured on the digits
     * CNN at batch 64: its 3x3 conv on 8x8 with one input channel is
     * faster in image blocks, the one on 4x4 with 16 image-innermost). */
    int64_t lines_cost = 16 * rows * g->out[0] * g->out[1];
    int64_t tr_cost = (p->C * p->big + p->M * p->small) * 2;
    p->img_inner = tr_cost < lines_cost;
    /* image blocks pay for batching with a pass over Y (T's rows to Y):
     * worth it for OpenBLAS's per-call cost, not for our float kernel,
     * which writes Y and the bias per image at once */
    bool fast = x->dtype == NF_DT_FLOAT && nf__sgemm_fast();
    bool batch = p->img_inner || !fast;
    /* with our float kernel the image-innermost layout needs no columns:
     * the GEMM reads each tap's 64 images straight from the transposed X,
     * and skips the taps that fall in the padding */
    p->gather = p->img_inner && fast;
    int64_t img_bytes = ((p->img_inner ? p->C * p->big : 0) + (p->gather ? 0 : rows * p->small) +
                         p->M / p->group * p->small) * (int64_t)es;
    if (!p->transpose && batch && p->N > 1 && p->small <= NF_CONV_BATCH_SMALL && img_bytes > 0 &&
        img_bytes <= (int64_t)NF_CONV_COL_BYTES) {
        p->batch_imgs = (int64_t)NF_CONV_COL_BYTES / img_bytes;
        if (p->batch_imgs > p->N)
            p->batch_imgs = p->N;
        /* columns of a batch must fit BLAS's int too */
        int64_t cols = p->batch_imgs * p->small;
        if ((rc = nf__dense_blas_dims(n, 1, &cols, err)) != NF_OK)
            return rc;
        n->scratch_bytes = (size_t)(p->batch_imgs * img_bytes);
        if (p->gather) /* the tap list of one output position, after T */
            n->scratch_bytes = (n->scratch_bytes + 63) / 64 * 64 + (size_t)rows * (sizeof(int32_t) + sizeof(float *));
    }
    /* Stride 1 with X and Y of one spatial size (padding "same"), no
     * dilation along the innermost dim: a tap's column row is X's plane
     * shifted by one offset, so our float kernel reads it in place, the
     * positions the shift pushes into the padding masked off. Per image;
     * the batched image-innermost layout stays better for tiny images. */
    p->shift = false;
    if (!p->transpose && fast && p->batch_imgs == 0 && !p->direct && g->s[0] == 1 && g->s[1] == 1 &&
        g->s[2] == 1 && g->d[2] == 1 && g->in[1] == g->out[1] && g->in[2] == g->out[2] && g->in[0] == g->out[0]) {
        int64_t kg = p->C / p->group * p->kprod, np = (p->small + 63) / 64;
        p->shift = true;
        n->scratch_bytes = (size_t)kg * (sizeof(float *) + sizeof(int32_t) + (size_t)np * sizeof(uint64_t)) +
                           (size_t)p->kprod * sizeof(int64_t) + 64;
    }
    int brc = nf__dense_blas_dtype(n, w->dtype, err);
    if (brc != NF_OK)
        return brc;
    return nf_value_set(nf_out(m, n, 0), w->dtype, g->nd + 2, ydims, err);
}

/* ---- Conv -------------------------------------------------------------------------- */

int nf_op_conv_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    int rc = prepare_common(m, n, false, err);
    return rc == NF_OK ? prepare_check_const(m, n, err) : rc;
}

int nf_op_conv_infer(nf_model *m, nf_node *n, nf_err *err)
{
    conv_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0), *w = nf_in(m, n, 1), *b = nf_in(m, n, 2);
    int nd, rc;
    int64_t kernel[NF_MAX_DIMS];
    if ((rc = check_weights(n, p, w, b, &nd, kernel, err)) != NF_OK || (rc = check_x(n, p, x, w, nd, err)) != NF_OK)
        return rc;
    rc = nf__win_infer(n, &p->wa, x, kernel, nf__dense_shape_code(x, w), &p->w, err);
    if (rc != NF_OK)
        return rc;
    p->N = x->dims[0];
    p->C = x->dims[1];
    p->M = w->dims[0];
    return set_output(m, n, p, err);
}

/* ---- batched Conv --------------------------------------------------------------- */

/* dst[c * ds + r] = src[r * ss + c] (+ *add when add is not NULL) for
 * r < R, c < Cc. 4-byte elements go in 4 x 4 blocks through vector
 * shuffles (GCC vector extensions: SSE2 on x86-64, NEON on arm64; the
 * shuffles move bits, so float and int32 data alike), the edges and
 * 8-byte elements one by one in 8 x 8 tiles. */
typedef float v4f __attribute__((vector_size(16)));

static inline v4f v4f_ld(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void v4f_st(float *p, v4f v)
{
    memcpy(p, &v, sizeof v);
}

#define TRANSPOSE_TILES(R0, C0)                                                                  \
    for (int64_t r0 = (R0); r0 < R; r0 += 8)                                                     \
        for (int64_t c0 = (C0); c0 < Cc; c0 += 8) {                                              \
            int64_t r1 = r0 + 8 < R ? r0 + 8 : R, c1 = c0 + 8 < Cc ? c0 + 8 : Cc;                \
            for (int64_t c = c0; c < c1; c++)                                                    \
                for (int64_t r = r0; r < r1; r++)                                                \
                    dst[c * ds + r] = add ? src[r * ss + c] + *add : src[r * ss + c];            \
        }

static void transpose_f32(const float *src, int64_t R, int64_t Cc, int64_t ss, float *dst, int64_t ds,
                          const float *add)
{
    int64_t R4 = R & ~(int64_t)3, C4 = Cc & ~(int64_t)3;
    v4f va = {0, 0, 0, 0};
    if (add)
        va = (v4f){*add, *add, *add, *add};
    /* Tiles of 16 source rows x 8 columns: a tile fills 8 whole
     * destination lines (16 floats each), and 8 lines fit one cache set
     * when the destination stride is a multiple of 4 KB (Y of a batch:
     * M * small floats per image), where 16 would evict each other. */
    for (int64_t rt = 0; rt < R4; rt += 16)
        for (int64_t ct = 0; ct < C4; ct += 8)
            for (int64_t r = rt; r < rt + 16 && r < R4; r += 4)
                for (int64_t c = ct; c < ct + 8 && c < C4; c += 4) {
                    const float *s0 = src + r * ss + c;
                    v4f a = v4f_ld(s0), b = v4f_ld(s0 + ss), e = v4f_ld(s0 + 2 * ss), f = v4f_ld(s0 + 3 * ss);
                    v4f t0 = __builtin_shufflevector(a, b, 0, 4, 1, 5), t1 = __builtin_shufflevector(a, b, 2, 6, 3, 7);
                    v4f t2 = __builtin_shufflevector(e, f, 0, 4, 1, 5), t3 = __builtin_shufflevector(e, f, 2, 6, 3, 7);
                    v4f o[4] = {__builtin_shufflevector(t0, t2, 0, 1, 4, 5), __builtin_shufflevector(t0, t2, 2, 3, 6, 7),
                                __builtin_shufflevector(t1, t3, 0, 1, 4, 5), __builtin_shufflevector(t1, t3, 2, 3, 6, 7)};
                    for (int q = 0; q < 4; q++)
                        v4f_st(dst + (c + q) * ds + r, add ? o[q] + va : o[q]);
                }
    /* the edges: columns past C4 of the first R4 rows, then rows past R4 */
    for (int64_t r = 0; r < R4; r++)
        for (int64_t c = C4; c < Cc; c++)
            dst[c * ds + r] = add ? src[r * ss + c] + *add : src[r * ss + c];
    TRANSPOSE_TILES(R4, 0)
}

static void transpose_f64(const double *src, int64_t R, int64_t Cc, int64_t ss, double *dst, int64_t ds,
                          const double *add)
{
    TRANSPOSE_TILES(0, 0)
}

/* Column rows (c, k0, k1, k2) of channels [0, C) of xt, over all
 * small-image positions and the nb images: col (C * k, small * nb). Each
 * line (o0, o1) of a row copies out[2] * nb elements, contiguous when the
 * stride is 1. T is an unsigned integer of the element's size: data moves
 * as bits. */
#define BATCH_COL(SFX, T)                                                                        \
    static void batch_col_##SFX(const T *xt, int64_t C, const nf__win *w, int64_t nb, T *col)    \
    {                                                                                            \
        const int64_t *in = w->in, *out = w->out, *s = w->s, *d = w->d, *pb = w->pb;            \
        int64_t n2 = out[2], line = n2 * nb, big = in[0] * in[1] * in[2];                       \
        T *dst = col;                                                                            \
        for (int64_t c = 0; c < C; c++)                                                          \
            for (int64_t k0 = 0; k0 < w->k[0]; k0++)                                             \
                for (int64_t k1 = 0; k1 < w->k[1]; k1++)                                         \
                    for (int64_t k2 = 0; k2 < w->k[2]; k2++) {                                   \
                        int64_t off2 = k2 * d[2] - pb[2], lo, hi;                                \
                        span(n2, in[2], s[2], off2, &lo, &hi);                                   \
                        for (int64_t o0 = 0; o0 < out[0]; o0++)                                  \
                            for (int64_t o1 = 0; o1 < out[1]; o1++, dst += line) {               \
                                int64_t i0 = o0 * s[0] + k0 * d[0] - pb[0];                      \
                                int64_t i1 = o1 * s[1] + k1 * d[1] - pb[1];                      \
                                if (i0 < 0 || i0 >= in[0] || i1 < 0 || i1 >= in[1] || hi <= lo) { \
                                    memset(dst, 0, (size_t)line * sizeof(T));                    \
                                    continue;                                                    \
                                }                                                                \
                                /* position o of the line reads element (o * s2 + off2) */       \
                                const T *src = xt + (c * big + (i0 * in[1] + i1) * in[2] + lo * s[2] + off2) * nb; \
                                memset(dst, 0, (size_t)(lo * nb) * sizeof(T));                   \
                                if (s[2] == 1)                                                   \
                                    memcpy(dst + lo * nb, src, (size_t)((hi - lo) * nb) * sizeof(T)); \
                                else                                                             \
                                    for (int64_t o = lo; o < hi; o++)                            \
                                        memcpy(dst + o * nb, src + (o - lo) * s[2] * nb, (size_t)nb * sizeof(T)); \
                                memset(dst + hi * nb, 0, (size_t)((n2 - hi) * nb) * sizeof(T)); \
                            }                                                                    \
                    }                                                                            \
    }
BATCH_COL(b32, uint32_t)
BATCH_COL(b64, uint64_t)

/* The image-innermost batch through the gathered GEMM (float32, our
 * kernel): for each output position o, the taps (c, k) that land inside
 * X are listed with the address of their nb images in xt (C, big, nb);
 * T[:, o * nb .. + nb] = W_g (those columns) x (those rows) + bias, and
 * T (M/g, small * nb) goes to Y by one transposing pass. t is followed in
 * scratch by room for the list (64-byte aligned). */
static void conv_gather(const conv_priv *p, const float *xt, const float *w, const float *bias, float *y, int64_t nb,
                        float *t)
{
    const nf__win *wn = &p->w;
    int64_t G = p->group, cg = p->C / G, mg = p->M / G, kg = cg * p->kprod, cols = nb * p->small;
    uintptr_t la = ((uintptr_t)(t + mg * cols) + 63) & ~(uintptr_t)63;
    const float **rows = (const float **)la;
    int32_t *acol = (int32_t *)(rows + kg);
    for (int64_t g = 0; g < G; g++) {
        const float *wg = w + g * mg * kg, *bg = bias ? bias + g * mg : NULL;
        for (int64_t o = 0; o < p->small; o++) {
            int64_t o2 = o % wn->out[2], o1 = o / wn->out[2] % wn->out[1], o0 = o / (wn->out[2] * wn->out[1]);
            /* the taps inside X for channel 0 of the group; the same taps of
             * channel c are c planes (and c * kprod weights) further */
            int64_t ns = 0, k = 0;
            for (int64_t k0 = 0; k0 < wn->k[0]; k0++)
                for (int64_t k1 = 0; k1 < wn->k[1]; k1++)
                    for (int64_t k2 = 0; k2 < wn->k[2]; k2++, k++) {
                        int64_t i0 = o0 * wn->s[0] + k0 * wn->d[0] - wn->pb[0];
                        int64_t i1 = o1 * wn->s[1] + k1 * wn->d[1] - wn->pb[1];
                        int64_t i2 = o2 * wn->s[2] + k2 * wn->d[2] - wn->pb[2];
                        if (i0 < 0 || i0 >= wn->in[0] || i1 < 0 || i1 >= wn->in[1] || i2 < 0 || i2 >= wn->in[2])
                            continue;
                        rows[ns] = xt + (g * cg * p->big + (i0 * wn->in[1] + i1) * wn->in[2] + i2) * nb;
                        acol[ns++] = (int32_t)k;
                    }
            for (int64_t c = 1; c < cg; c++)
                for (int64_t j = 0; j < ns; j++) {
                    rows[c * ns + j] = rows[j] + c * p->big * nb;
                    acol[c * ns + j] = acol[j] + (int32_t)(c * p->kprod);
                }
            nf__sgemm_rows(mg, nb, wg, kg, cg * ns, acol, rows, NULL, t + o * nb, cols, bg);
        }
        /* Y[i][m][o] = T[m][o][i] */
        for (int64_t r = 0; r < mg; r++)
            transpose_f32(t + r * cols, p->small, nb, nb, y + (g * mg + r) * p->small, p->M * p->small, NULL);
    }
}

/* conv_priv.shift: Y = W X_shifted + bias image by image, group by group.
 * Column row (c, t) for spatial tap t is X's channel c read from offset
 * shift_t = off0 * in1 * in2 + off1 * in2 + off2 (position j reads
 * element j + shift_t); bit b of mask[panel][t] says whether position
 * panel * 64 + b reads inside X (the rest are padding zeros, not read).
 * scratch (64-byte aligned): masks (panels x kg), row addresses (kg),
 * weight columns (kg), shifts (kprod); see set_output. */
static void conv_shift(const conv_priv *p, const float *x, const float *w, const float *bias, float *y, char *scratch)
{
    const nf__win *wn = &p->w;
    int64_t G = p->group, cg = p->C / G, mg = p->M / G, kg = cg * p->kprod, np = (p->small + 63) / 64;
    uint64_t *masks = (uint64_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    const float **rows = (const float **)(masks + np * kg);
    int64_t *shifts = (int64_t *)(rows + kg);
    int32_t *acol = (int32_t *)(shifts + p->kprod);
    int64_t in12 = wn->in[1] * wn->in[2], t = 0;
    /* the spatial taps' shifts and masks; every channel repeats them */
    for (int64_t k0 = 0; k0 < wn->k[0]; k0++)
        for (int64_t k1 = 0; k1 < wn->k[1]; k1++)
            for (int64_t k2 = 0; k2 < wn->k[2]; k2++, t++) {
                int64_t off0 = k0 * wn->d[0] - wn->pb[0], off1 = k1 * wn->d[1] - wn->pb[1];
                int64_t off2 = k2 - wn->pb[2];
                shifts[t] = off0 * in12 + off1 * wn->in[2] + off2;
                /* positions j = (o0, o1, o2) in order, counted, not divided */
                int64_t o0 = 0, o1 = 0, o2 = 0;
                for (int64_t pp = 0; pp < np; pp++) {
                    uint64_t mk = 0;
                    for (int64_t b = 0; b < 64 && pp * 64 + b < p->small; b++) {
                        if (o0 + off0 >= 0 && o0 + off0 < wn->in[0] && o1 + off1 >= 0 && o1 + off1 < wn->in[1] &&
                            o2 + off2 >= 0 && o2 + off2 < wn->in[2])
                            mk |= (uint64_t)1 << b;
                        if (++o2 == wn->out[2]) {
                            o2 = 0;
                            if (++o1 == wn->out[1]) {
                                o1 = 0;
                                o0++;
                            }
                        }
                    }
                    for (int64_t c = 0; c < cg; c++)
                        masks[pp * kg + c * p->kprod + t] = mk;
                }
            }
    for (int64_t k = 0; k < kg; k++)
        acol[k] = (int32_t)k;
    for (int64_t i = 0; i < p->N; i++)
        for (int64_t g = 0; g < G; g++) {
            const float *xg = x + (i * p->C + g * cg) * p->big;
            for (int64_t c = 0, k = 0; c < cg; c++)
                for (int64_t tt = 0; tt < p->kprod; tt++, k++)
                    /* an address that may lie before the plane (every element
                     * read there is masked to lie inside): integer math, as
                     * pointer arithmetic may not leave the array */
                    rows[k] = (const float *)((uintptr_t)(xg + c * p->big) + (uintptr_t)shifts[tt] * sizeof(float));
            nf__sgemm_rows(mg, p->small, w + g * mg * kg, kg, kg, acol, rows, masks, y + (i * p->M + g * mg) * p->small,
                           p->small, bias ? bias + g * mg : NULL);
        }
}

/* Y of images [i0, i0 + nb) = W col + bias, group by group, in one of two
 * column layouts (conv_priv.img_inner):
 *   image innermost: scratch holds xt (C, big, nb), col (C/g * k,
 *     small * nb) and T (M/g, small * nb); lines of out[2] * nb elements;
 *   image blocks: col (C/g * k, nb * small) and T (M/g, nb * small), each
 *     image's columns together, filled by im2col line by line; T's rows
 *     go to Y in runs of small elements, no transposes. */
static void conv_batch(const conv_priv *p, int dt, const char *x, const char *w, const char *bias, char *y,
                       int64_t i0, int64_t nb, char *scratch)
{
    size_t es = nf_dtype_size(dt);
    int64_t G = p->group, cg = p->C / G, mg = p->M / G, kg = cg * p->kprod, cols = nb * p->small;
    int64_t n_lines = p->w.out[0] * p->w.out[1];
    char *xt = scratch, *col = xt + (p->img_inner ? (size_t)(p->C * p->big * nb) * es : 0);
    char *t = col + (size_t)(kg * cols) * es;
    const char *xb = x + (size_t)(i0 * p->C * p->big) * es;
    char *yb = y + (size_t)(i0 * p->M * p->small) * es;
    /* xt (C, big, nb) = X (nb, C, big), one channel at a time */
    for (int64_t c = 0; p->img_inner && c < p->C; c++) {
        size_t so = (size_t)(c * p->big) * es, dof = (size_t)(c * p->big * nb) * es;
        if (es == 4)
            transpose_f32((const float *)(xb + so), nb, p->big, p->C * p->big, (float *)(xt + dof), nb, NULL);
        else
            transpose_f64((const double *)(xb + so), nb, p->big, p->C * p->big, (double *)(xt + dof), nb, NULL);
    }
    if (p->gather) {
        conv_gather(p, (const float *)xt, (const float *)w, (const float *)bias, (float *)yb, nb,
                    (float *)(xt + (size_t)(p->C * p->big * nb) * es));
        return;
    }
    for (int64_t g = 0; g < G; g++) {
        if (p->img_inner) {
            const char *xg = xt + (size_t)(g * cg * p->big * nb) * es;
            if (es == 4)
                batch_col_b32((const uint32_t *)xg, cg, &p->w, nb, (uint32_t *)col);
            else
                batch_col_b64((const uint64_t *)xg, cg, &p->w, nb, (uint64_t *)col);
        } else {
            for (int64_t i = 0; i < nb; i++)
                im2col(xb + (size_t)((i * p->C + g * cg) * p->big) * es, cg, &p->w, es, 0, n_lines,
                       col + (size_t)(i * p->small) * es, cols);
        }
        nf__gemm(dt, false, false, mg, cols, kg, 1.0, w + (size_t)(g * mg * kg) * es, kg, col, cols, 0.0, t, cols);
        for (int64_t r = 0; r < mg; r++) {
            int64_t ch = g * mg + r;
            size_t so = (size_t)(r * cols) * es, dof = (size_t)(ch * p->small) * es;
            if (p->img_inner) { /* Y[i][m][o] = T[m][o][i] + bias[m] */
                if (dt == NF_DT_FLOAT)
                    transpose_f32((const float *)(t + so), p->small, nb, nb, (float *)(yb + dof), p->M * p->small,
                                  bias ? (const float *)bias + ch : NULL);
                else
                    transpose_f64((const double *)(t + so), p->small, nb, nb, (double *)(yb + dof),
                                  p->M * p->small, bias ? (const double *)bias + ch : NULL);
                continue;
            }
            int64_t small = p->small;
            for (int64_t i = 0; i < nb; i++) { /* Y[i][m][o] = T[m][i][o] + bias[m] */
                size_t si = so + (size_t)(i * small) * es, di = dof + (size_t)(i * p->M * small) * es;
                if (dt == NF_DT_FLOAT) {
                    const float *restrict ts = (const float *)(t + si);
                    float *restrict ys = (float *)(yb + di), bv = bias ? ((const float *)bias)[ch] : 0.0f;
                    for (int64_t j = 0; j < small; j++)
                        ys[j] = ts[j] + bv;
                } else {
                    const double *restrict ts = (const double *)(t + si);
                    double *restrict ys = (double *)(yb + di), bv = bias ? ((const double *)bias)[ch] : 0.0;
                    for (int64_t j = 0; j < small; j++)
                        ys[j] = ts[j] + bv;
                }
            }
        }
    }
}

int nf_op_conv_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const conv_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0), *w = nf_in(m, n, 1), *b = nf_in(m, n, 2), *y = nf_out(m, n, 0);
    int dt = y->dtype;
    size_t es = nf_dtype_size(dt);
    if (p->shift) {
        conv_shift(p, x->data, w->data, b ? b->data : NULL, y->data, n->scratch);
        return NF_OK;
    }
    if (p->batch_imgs > 0) {
        for (int64_t i0 = 0; i0 < p->N; i0 += p->batch_imgs)
            conv_batch(p, dt, x->data, w->data, b ? b->data : NULL, y->data, i0,
                       p->N - i0 < p->batch_imgs ? p->N - i0 : p->batch_imgs, n->scratch);
        return NF_OK;
    }
    int64_t G = p->group, cg = p->C / G, mg = p->M / G, kg = cg * p->kprod;
    int64_t n_lines = p->w.out[0] * p->w.out[1], line = p->w.out[2];
    for (int64_t i = 0; i < p->N; i++)
        for (int64_t g = 0; g < G; g++) {
            const char *xg = (const char *)x->data + (size_t)((i * p->C + g * cg) * p->big) * es;
            const char *wg = (const char *)w->data + (size_t)(g * mg * kg) * es;
            char *yg = (char *)y->data + (size_t)((i * p->M + g * mg) * p->small) * es;
            const char *bg = b != NULL ? (const char *)b->data + (size_t)(g * mg) * es : NULL;
            if (p->direct) {
                nf__gemm_bias(dt, mg, p->small, cg, wg, cg, xg, p->big, bg, yg, p->small);
                continue;
            }
            /* Y_g[:, chunk] (M/g, cols) = W_g (M/g, C/g * k) col (C/g * k, cols) + B_g */
            for (int64_t l0 = 0; l0 < n_lines; l0 += p->chunk_lines) {
                int64_t l1 = l0 + p->chunk_lines < n_lines ? l0 + p->chunk_lines : n_lines, cols = (l1 - l0) * line;
                im2col(xg, cg, &p->w, es, l0, l1, n->scratch, cols);
                nf__gemm_bias(dt, mg, cols, kg, wg, kg, n->scratch, cols, bg, yg + (size_t)(l0 * line) * es, p->small);
            }
        }
    return NF_OK;
}

/* ---- ConvTranspose ---------------------------------------------------------------------
 * Output size per spatial axis (ONNX ConvTranspose-11):
 *   y = s * (x - 1) + output_padding + (k - 1) * d + 1 - pad_begin - pad_end
 * With output_shape (or SAME_*, where y = x * s) the pads follow from y:
 *   total = s * (x - 1) + output_padding + (k - 1) * d + 1 - y,
 * split evenly with the odd one at the end for SAME_UPPER, at the begin
 * otherwise; the opset 1..10 text says the opposite (and onnxruntime's
 * ComputeTransposePadAndOutputShape long did that for every opset), so
 * the split follows the model's opset. A negative total (y larger than the
 * full result) adds zeros at the end, as onnxruntime does, and as
 * output_padding would. */

int nf_op_conv_transpose_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    int rc = prepare_common(m, n, true, err);
    return rc == NF_OK ? prepare_check_const(m, n, err) : rc;
}

int nf_op_conv_transpose_infer(nf_model *m, nf_node *n, nf_err *err)
{
    conv_priv *p = n->priv;
    const nf__winattr *a = &p->wa;
    nf_value *x = nf_in(m, n, 0), *w = nf_in(m, n, 1), *b = nf_in(m, n, 2);
    int nd, rc;
    int64_t kernel[NF_MAX_DIMS];
    if ((rc = check_weights(n, p, w, b, &nd, kernel, err)) != NF_OK || (rc = check_x(n, p, x, w, nd, err)) != NF_OK)
        return rc;
    const char *bad = NULL;
    if (a->n_strides && a->n_strides != nd)
        bad = "strides";
    else if (a->n_dilations && a->n_dilations != nd)
        bad = "dilations";
    else if (a->n_pads && a->n_pads != 2 * nd)
        bad = "pads";
    else if (p->n_out_pad && p->n_out_pad != nd)
        bad = "output_padding";
    else if (p->n_out_shape && p->n_out_shape != nd && p->n_out_shape != nd + 2)
        bad = "output_shape";
    if (bad != NULL)
        return nf_node_err(err, NF_EMODEL, n, "attribute %s has the wrong length for %d spatial dims", bad, nd);
    int code = nf__dense_shape_code(x, w);
    nf__win *g = &p->w;
    int lead = NF_WIN_DIMS - nd;
    g->nd = nd;
    for (int i = 0; i < lead; i++) {
        g->in[i] = g->out[i] = g->k[i] = g->s[i] = g->d[i] = 1;
        g->pb[i] = g->pe[i] = 0;
    }
    for (int i = 0; i < nd; i++) {
        int c = lead + i;
        int64_t xs = x->dims[2 + i], k = kernel[i];
        int64_t s = a->n_strides ? a->strides[i] : 1, d = a->n_dilations ? a->dilations[i] : 1;
        int64_t op = p->n_out_pad ? p->out_pad[i] : 0;
        int64_t full = s * (xs - 1) + op + (k - 1) * d + 1, pb = 0, pe = 0, ys;
        if (p->n_out_shape || a->auto_pad == NF_PAD_SAME_UPPER || a->auto_pad == NF_PAD_SAME_LOWER) {
            ys = p->n_out_shape ? p->out_shape[p->n_out_shape - nd + i] : xs * s;
            int64_t total = full - ys;
            /* opset >= 11: SAME_UPPER puts the odd pad at the end; before:
             * everything but SAME_UPPER did */
            bool odd_at_end = (a->auto_pad == NF_PAD_SAME_UPPER) == (n->opset >= 11);
            if (total < 0)
                pb = 0;
            else
                pb = odd_at_end ? total / 2 : total - total / 2;
            pe = total - pb;
        } else {
            if (a->auto_pad == NF_PAD_NOTSET && a->n_pads) {
                pb = a->pads[i];
                pe = a->pads[nd + i];
            }
            ys = full - pb - pe;
        }
        if (ys < 1)
            return nf_node_err(err, code, n, "output spatial dim %d would be %lld (input X ('%s') dim %d is %lld)", i,
                               (long long)ys, x->name, 2 + i, (long long)xs);
        g->in[c] = ys;
        g->out[c] = xs;
        g->k[c] = k;
        g->s[c] = s;
        g->d[c] = d;
        g->pb[c] = pb;
        g->pe[c] = pe;
    }
    p->N = x->dims[0];
    p->C = x->dims[1];
    p->M = w->dims[1] * p->group;
    return set_output(m, n, p, err);
}

int nf_op_conv_transpose_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const conv_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0), *w = nf_in(m, n, 1), *b = nf_in(m, n, 2), *y = nf_out(m, n, 0);
    int dt = y->dtype;
    size_t es = nf_dtype_size(dt);
    int64_t G = p->group, cg = p->C / G, mg = p->M / G, rows = mg * p->kprod;
    int64_t n_lines = p->w.out[0] * p->w.out[1], line = p->w.out[2];
    for (int64_t i = 0; i < p->N; i++)
        for (int64_t g = 0; g < G; g++) {
            const char *xg = (const char *)x->data + (size_t)((i * p->C + g * cg) * p->small) * es;
            const char *wg = (const char *)w->data + (size_t)(g * cg * rows) * es;
            char *yg = (char *)y->data + (size_t)((i * p->M + g * mg) * p->big) * es;
            fill_rows(dt, yg, mg, p->big, b ? (const char *)b->data + (size_t)(g * mg) * es : NULL);
            if (p->direct) {
                nf__gemm(dt, true, false, mg, p->small, cg, 1.0, wg, mg, xg, p->small, 1.0, yg, p->big);
                continue;
            }
            /* col (M/g * k, cols) = W_g^T (M/g * k, C/g) X_g[:, chunk] (C/g, cols) */
            for (int64_t l0 = 0; l0 < n_lines; l0 += p->chunk_lines) {
                int64_t l1 = l0 + p->chunk_lines < n_lines ? l0 + p->chunk_lines : n_lines, cols = (l1 - l0) * line;
                nf__gemm(dt, true, false, rows, cols, cg, 1.0, wg, rows, xg + (size_t)(l0 * line) * es, p->small, 0.0,
                         n->scratch, cols);
                col2im(dt, n->scratch, mg, &p->w, l0, l1, yg);
            }
        }
    return NF_OK;
}
