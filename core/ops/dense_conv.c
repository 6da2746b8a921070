/*
 * dense_conv.c: Conv and ConvTranspose (ONNX opsets 1 and 11), 1-D to 3-D,
 * float32 and float64. Conv is im2col into n->scratch plus one GEMM per
 * group and image (Chellapilla et al. 2006, as Caffe does it); a 1x1,
 * stride-1, unpadded Conv is the GEMM alone. ConvTranspose is the adjoint:
 * one GEMM with W^T into the scratch columns, then col2im adds them into Y.
 * Weights are used in place: ONNX's (M, C/group, k...) layout already is
 * the row-major GEMM operand, so nothing is repacked.
 */
#include <string.h>

#include "ops_dense.h"

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
} conv_priv;

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
static void span(int64_t n_small, int64_t n_big, int64_t s, int64_t off, int64_t *lo, int64_t *hi)
{
    int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t h = n_big - off <= 0 ? 0 : (n_big - off + s - 1) / s;
    if (h > n_small)
        h = n_small;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

static void copy_strided(char *dst, const char *src, int64_t count, int64_t s, size_t es)
{
    if (s == 1) {
        memcpy(dst, src, (size_t)count * es);
    } else if (es == 4) {
        uint32_t *d = (uint32_t *)dst;
        const uint32_t *x = (const uint32_t *)src;
        for (int64_t i = 0; i < count; i++)
            d[i] = x[i * s];
    } else {
        uint64_t *d = (uint64_t *)dst;
        const uint64_t *x = (const uint64_t *)src;
        for (int64_t i = 0; i < count; i++)
            d[i] = x[i * s];
    }
}

/* Unfolds x (C channels of the big image) into col for the small-image
 * lines [l0, l1) (a line is one (o0, o1), out[2] positions); col has
 * (l1 - l0) * out[2] columns. Elements are moved as bits, so one version
 * serves float and double. */
static void im2col(const char *x, int64_t C, const nf__win *w, size_t es, int64_t l0, int64_t l1, char *col)
{
    const int64_t *in = w->in, *out = w->out, *s = w->s, *d = w->d, *pb = w->pb;
    size_t line = (size_t)out[2] * es, row_bytes = (size_t)(l1 - l0) * line;
    char *row = col;
    for (int64_t c = 0; c < C; c++)
        for (int64_t k0 = 0; k0 < w->k[0]; k0++)
            for (int64_t k1 = 0; k1 < w->k[1]; k1++)
                for (int64_t k2 = 0; k2 < w->k[2]; k2++, row += row_bytes) {
                    int64_t off2 = k2 * d[2] - pb[2], lo, hi;
                    span(out[2], in[2], s[2], off2, &lo, &hi);
                    char *dst = row;
                    for (int64_t l = l0; l < l1; l++, dst += line) {
                        int64_t i0 = l / out[1] * s[0] + k0 * d[0] - pb[0];
                        int64_t i1 = l % out[1] * s[1] + k1 * d[1] - pb[1];
                        if (i0 < 0 || i0 >= in[0] || i1 < 0 || i1 >= in[1]) {
                            memset(dst, 0, line);
                            continue;
                        }
                        const char *src = x + (size_t)(((c * in[0] + i0) * in[1] + i1) * in[2]) * es;
                        memset(dst, 0, (size_t)lo * es);
                        copy_strided(dst + (size_t)lo * es, src + (size_t)(lo * s[2] + off2) * es, hi - lo, s[2], es);
                        memset(dst + (size_t)hi * es, 0, (size_t)(out[2] - hi) * es);
                    }
                }
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
    nf__dense_blas_init(m);
    return NF_OK;
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

int nf_op_conv_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const conv_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0), *w = nf_in(m, n, 1), *b = nf_in(m, n, 2), *y = nf_out(m, n, 0);
    int dt = y->dtype;
    size_t es = nf_dtype_size(dt);
    int64_t G = p->group, cg = p->C / G, mg = p->M / G, kg = cg * p->kprod;
    int64_t n_lines = p->w.out[0] * p->w.out[1], line = p->w.out[2];
    for (int64_t i = 0; i < p->N; i++)
        for (int64_t g = 0; g < G; g++) {
            const char *xg = (const char *)x->data + (size_t)((i * p->C + g * cg) * p->big) * es;
            const char *wg = (const char *)w->data + (size_t)(g * mg * kg) * es;
            char *yg = (char *)y->data + (size_t)((i * p->M + g * mg) * p->small) * es;
            double beta = 0;
            if (b != NULL) {
                fill_rows(dt, yg, mg, p->small, (const char *)b->data + (size_t)(g * mg) * es);
                beta = 1;
            }
            if (p->direct) {
                nf__gemm(dt, false, false, mg, p->small, cg, 1.0, wg, cg, xg, p->big, beta, yg, p->small);
                continue;
            }
            /* Y_g[:, chunk] (M/g, cols) = W_g (M/g, C/g * k) col (C/g * k, cols) */
            for (int64_t l0 = 0; l0 < n_lines; l0 += p->chunk_lines) {
                int64_t l1 = l0 + p->chunk_lines < n_lines ? l0 + p->chunk_lines : n_lines, cols = (l1 - l0) * line;
                im2col(xg, cg, &p->w, es, l0, l1, n->scratch);
                nf__gemm(dt, false, false, mg, cols, kg, 1.0, wg, kg, n->scratch, cols, beta,
                         yg + (size_t)(l0 * line) * es, p->small);
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
