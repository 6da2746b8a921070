/*
 * shape.c: operators that give the input's data a new shape (Reshape,
 * Flatten, Squeeze, Unsqueeze) or make a tensor from a shape (Shape, Size,
 * ConstantOfShape, Range); and the helpers every shape*.c file shares.
 *
 * Shapes, axes and counts read from input data are checked in infer, which
 * runs before every run: a negative or huge value that came with a request
 * is NF_EINVAL naming node and input, never an overflow or a wild copy.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops.h"

/* the largest element count nf_value_set accepts for one-byte elements */
#define SHAPE_LIMIT ((int64_t)1 << 40)

/* ---- shared helpers --------------------------------------------------------- */
int64_t nf__shape_mul(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}

int64_t nf__shape_add(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

int64_t nf__shape_prod(const int64_t *dims, int lo, int hi)
{
    int64_t p = 1;
    for (int i = lo; i < hi; i++)
        if (dims[i] == 0)
            return 0;
    for (int i = lo; i < hi; i++)
        p = nf__shape_mul(p, dims[i]);
    return p;
}

const char *nf__shape_str(char *buf, size_t cap, int n_dims, const int64_t *dims)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n_dims && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? "," : "", (long long)dims[i]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
    return buf;
}

int nf__shape_ints(nf_model *m, nf_node *n, int in, const char *what, int64_t *out, int max, int *count,
                   nf_err *err)
{
    const nf_value *v = nf_in(m, n, in);
    if (v == NULL)
        return nf_node_err(err, NF_EMODEL, n, "input '%s' is missing", what);
    if (v->dtype != NF_DT_INT64 && v->dtype != NF_DT_INT32)
        return nf_node_err(err, NF_EMODEL, n, "input '%s' ('%s') is %s, expected int64 or int32", what, v->name,
                           nf_dtype_name(v->dtype));
    if (v->n_dims > 1)
        return nf_node_err(err, nf__shape_code(m, NF_ESHAPE), n, "input '%s' ('%s') has rank %d, expected 1", what,
                           v->name, v->n_dims);
    if (v->size > max)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "input '%s' ('%s') has %lld elements, at most %d supported", what,
                           v->name, (long long)v->size, max);
    for (int64_t i = 0; i < v->size; i++)
        out[i] = nf__shape_int_at(v, i);
    *count = (int)v->size;
    return NF_OK;
}

int nf__shape_axis(nf_model *m, nf_node *n, int64_t axis, int rank, int inclusive, const char *what, int *out,
                   nf_err *err)
{
    int64_t a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a > (inclusive ? rank : rank - 1))
        return nf_node_err(err, nf__shape_code(m, NF_ESHAPE), n, "%s %lld is out of range for an input of rank %d",
                           what, (long long)axis, rank);
    *out = (int)a;
    return NF_OK;
}

int nf__shape_set(nf_model *m, nf_node *n, int out, int dtype, int n_dims, const int64_t *dims, nf_err *err)
{
    nf_value *y = nf_out(m, n, out);
    if (y == NULL)
        return NF_OK;
    /* nf_value_set checks the product, which is 0 when any dim is: a
     * saturated product beside a zero would pass as a wrong dim */
    for (int i = 0; i < n_dims; i++)
        if (dims[i] > SHAPE_LIMIT)
            return nf_node_err(err, nf__shape_code(m, NF_EINVAL), n, "output '%s': dimension %d is %lld, too large",
                               y->name, i, (long long)dims[i]);
    nf_err e;
    int rc = nf_value_set(y, dtype, n_dims, dims, &e);
    if (rc == NF_OK)
        return NF_OK;
    if (rc == NF_EMODEL) /* negative or too large: the dims came from data */
        rc = nf__shape_code(m, NF_EINVAL);
    return nf_node_err(err, rc, n, "output %s", e.msg);
}

void nf__shape_fill(void *dst, const void *elem, int64_t count, size_t esz)
{
    if (count <= 0)
        return;
    char *d = dst;
    nf__shape_copy_elem(d, elem, esz);
    /* doubling copies: log2(count) memcpy calls */
    size_t done = esz, total = (size_t)count * esz;
    while (done < total) {
        size_t step = done < total - done ? done : total - done;
        memcpy(d + done, d, step);
        done += step;
    }
}

/* ---- strided copy (Transpose, Slice, Tile) ---------------------------------- */
/* 16 x 16 tiles: on a power-of-two row stride (2048 x 2048 float) 32 x 32
 * tiles ran twice as slow from cache-set conflicts; 16 was as fast or
 * faster on every shape measured (NCHW <-> NHWC, 77 x 512). */
#define TILE 16

/* dst[r][c] = src[r * rs + c * cs] for one plane; tiles of TILE x TILE keep
 * the lines read and the lines written in cache when cs is large (a
 * transpose). */
#define COPY_TILES(T)                                                                  \
    do {                                                                               \
        T *o = (T *)(void *)dst;                                                       \
        const T *s = (const T *)(const void *)src;                                     \
        for (int64_t r0 = 0; r0 < rows; r0 += TILE) {                                  \
            int64_t r1 = r0 + TILE < rows ? r0 + TILE : rows;                          \
            for (int64_t c0 = 0; c0 < cols; c0 += TILE) {                              \
                int64_t c1 = c0 + TILE < cols ? c0 + TILE : cols;                      \
                for (int64_t r = r0; r < r1; r++)                                      \
                    for (int64_t c = c0; c < c1; c++)                                  \
                        memcpy(&o[r * cols + c], &s[r * rs + c * cs], sizeof(T));      \
            }                                                                          \
        }                                                                              \
    } while (0)

static void copy_plane(char *dst, const char *src, int64_t rows, int64_t cols, int64_t rs, int64_t cs, size_t esz)
{
    if (cs == 1) {
        size_t row = (size_t)cols * esz;
        for (int64_t r = 0; r < rows; r++)
            memcpy(dst + (size_t)r * row, src + r * rs * (int64_t)esz, row);
        return;
    }
    switch (esz) {
    case 1: COPY_TILES(uint8_t); break;
    case 2: COPY_TILES(uint16_t); break;
    case 4: COPY_TILES(uint32_t); break;
    case 8: COPY_TILES(uint64_t); break;
    default:
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++)
                memcpy(dst + (size_t)(r * cols + c) * esz, src + (r * rs + c * cs) * (int64_t)esz, esz);
        break;
    }
}

void nf__strided_copy(void *dst, const void *src, int n_dims, const int64_t *dims, const int64_t *strides,
                      size_t esz)
{
    int64_t d[2 * NF_MAX_DIMS + 2], s[2 * NF_MAX_DIMS + 2], idx[2 * NF_MAX_DIMS + 2];
    int k = 0;
    for (int i = 0; i < n_dims; i++)
        if (dims[i] == 0)
            return;
    /* drop unit axes; merge axis i into the previous one when stepping the
     * previous one is the same as stepping i over its whole extent */
    for (int i = 0; i < n_dims; i++) {
        if (dims[i] == 1)
            continue;
        if (k > 0 && s[k - 1] == strides[i] * dims[i]) {
            d[k - 1] *= dims[i];
            s[k - 1] = strides[i];
            continue;
        }
        d[k] = dims[i];
        s[k] = strides[i];
        k++;
    }
    if (k < 2) { /* at least one plane: unit axes in front */
        d[1] = k ? d[0] : 1;
        s[1] = k ? s[0] : 0;
        d[0] = 1;
        s[0] = 0;
        k = 2;
    }
    int outer = k - 2;
    int64_t rows = d[k - 2], cols = d[k - 1];
    size_t plane = (size_t)(rows * cols) * esz;
    char *o = dst;
    int64_t off = 0;
    for (int i = 0; i < outer; i++)
        idx[i] = 0;
    for (;;) {
        copy_plane(o, (const char *)src + off * (int64_t)esz, rows, cols, s[k - 2], s[k - 1], esz);
        o += plane;
        int j = outer - 1;
        for (; j >= 0; j--) {
            off += s[j];
            if (++idx[j] < d[j])
                break;
            off -= s[j] * d[j];
            idx[j] = 0;
        }
        if (j < 0)
            break;
    }
}

/* ---- common hooks ----------------------------------------------------------- */

/* Checks that inputs 0..n_req-1 and output 0 are present. */
static int need_io(const nf_node *n, int n_req, nf_err *err)
{
    if (n->n_out < 1 || n->out[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs an output");
    for (int i = 0; i < n_req; i++)
        if (i >= n->n_in || n->in[i] < 0)
            return nf_node_err(err, NF_EMODEL, n, "needs %d input%s, input %d is missing", n_req,
                               n_req > 1 ? "s" : "", i);
    return NF_OK;
}

/* Axes from an ints attribute, at most NF_MAX_DIMS of them. */
static int attr_axes(const nf_node *n, const char *name, int64_t *out, int *count, nf_err *err)
{
    const int64_t *a;
    int64_t na = nf_attr_ints(n, name, &a);
    if (na > NF_MAX_DIMS)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "attribute '%s' has %lld values, at most %d supported", name,
                           (long long)na, NF_MAX_DIMS);
    for (int64_t i = 0; i < na; i++)
        out[i] = a[i];
    *count = (int)na;
    return NF_OK;
}

/* The run of every operator whose output is its input under a new shape.
 * A copy: the planner gives every value its own buffer. */
static int copy_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    nf_value *x = nf_in(m, n, 0), *y = nf_out(m, n, 0);
    if (x->size > 0)
        memcpy(y->data, x->data, (size_t)x->size * nf_dtype_size(x->dtype));
    return NF_OK;
}

/* ---- Reshape (5-13; 14+ adds allowzero) ---------------------------------- */
typedef struct reshape_priv {
    int allowzero; /* 0 in shape: 1 = a zero dim, 0 = copy the input's dim */
} reshape_priv;

int nf_op_reshape_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    int rc = need_io(n, 2, err);
    if (rc != NF_OK)
        return rc;
    reshape_priv *p = nf_arena_alloc(&m->arena, sizeof *p);
    if (p == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    int64_t az = n->opset >= 14 ? nf_attr_int(n, "allowzero", 0) : 0;
    if (az != 0 && az != 1)
        return nf_node_err(err, NF_EMODEL, n, "attribute 'allowzero' is %lld, expected 0 or 1", (long long)az);
    p->allowzero = (int)az;
    n->priv = p;
    return NF_OK;
}

int nf_op_reshape_infer(nf_model *m, nf_node *n, nf_err *err)
{
    nf_value *x = nf_in(m, n, 0);
    int64_t shape[NF_MAX_DIMS], dims[NF_MAX_DIMS];
    int nd, minus = -1, rc = nf__shape_ints(m, n, 1, "shape", shape, NF_MAX_DIMS, &nd, err);
    if (rc != NF_OK)
        return rc;
    int allowzero = ((const reshape_priv *)n->priv)->allowzero;
    int64_t known = 1;
    for (int i = 0; i < nd; i++) {
        int64_t s = shape[i];
        if (s == -1) {
            if (minus >= 0)
                return nf_node_err(err, nf__shape_code(m, NF_EINVAL), n,
                                   "input 'shape' has -1 at positions %d and %d; at most one is allowed", minus, i);
            minus = i;
            s = 1;
        } else if (s < -1) {
            return nf_node_err(err, nf__shape_code(m, NF_EINVAL), n, "input 'shape' has %lld at position %d",
                               (long long)s, i);
        } else if (s == 0 && !allowzero) {
            if (i >= x->n_dims)
                return nf_node_err(err, nf__shape_code(m, NF_ESHAPE), n,
                                   "input 'shape' has 0 at position %d but the data has rank %d", i, x->n_dims);
            s = x->dims[i];
        }
        dims[i] = s;
        known = nf__shape_mul(known, s);
    }
    char a[160], b[160];
    if (minus >= 0) {
        if (known == 0 || x->size % known != 0)
            return nf_node_err(err, nf__shape_code(m, NF_ESHAPE), n, "cannot reshape data of shape %s to %s",
                               nf__shape_str(a, sizeof a, x->n_dims, x->dims), nf__shape_str(b, sizeof b, nd, shape));
        dims[minus] = x->size / known;
    } else if (known != x->size) {
        return nf_node_err(err, nf__shape_code(m, NF_ESHAPE), n, "cannot reshape data of shape %s to %s",
                           nf__shape_str(a, sizeof a, x->n_dims, x->dims), nf__shape_str(b, sizeof b, nd, shape));
    }
    return nf__shape_set(m, n, 0, x->dtype, nd, dims, err);
}

int nf_op_reshape_run(nf_model *m, nf_node *n, nf_err *err)
{
    return copy_run(m, n, err);
}

/* ---- Flatten: [d0 * .. * d(axis-1), d(axis) * .. * d(r-1)] ------------------ */
int nf_op_flatten_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    (void)m;
    return need_io(n, 1, err);
}

int nf_op_flatten_infer(nf_model *m, nf_node *n, nf_err *err)
{
    nf_value *x = nf_in(m, n, 0);
    int axis, rc = nf__shape_axis(m, n, nf_attr_int(n, "axis", 1), x->n_dims, 1, "attribute 'axis'", &axis, err);
    if (rc != NF_OK)
        return rc;
    int64_t dims[2] = {nf__shape_prod(x->dims, 0, axis), nf__shape_prod(x->dims, axis, x->n_dims)};
    return nf__shape_set(m, n, 0, x->dtype, 2, dims, err);
}

int nf_op_flatten_run(nf_model *m, nf_node *n, nf_err *err)
{
    return copy_run(m, n, err);
}

/* ---- Squeeze and Unsqueeze: axes as attribute (< 13) or input (13+) -------- */
typedef struct axes_priv {
    int n_axes;            /* from the attribute; -1 = none given */
    int64_t axes[NF_MAX_DIMS];
} axes_priv;

static int axes_prepare(nf_model *m, nf_node *n, int required, nf_err *err)
{
    int rc = need_io(n, 1, err);
    if (rc != NF_OK)
        return rc;
    axes_priv *p = nf_arena_alloc(&m->arena, sizeof *p);
    if (p == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    p->n_axes = -1;
    if (n->opset < 13) {
        if (nf_attr_get(n, "axes") != NULL && (rc = attr_axes(n, "axes", p->axes, &p->n_axes, err)) != NF_OK)
            return rc;
        if (required && p->n_axes < 0)
            return nf_node_err(err, NF_EMODEL, n, "attribute 'axes' is missing");
    } else if (required && (n->n_in < 2 || n->in[1] < 0)) {
        return nf_node_err(err, NF_EMODEL, n, "input 'axes' is missing");
    }
    n->priv = p;
    return NF_OK;
}

/* The axes of this run: the attribute's, or input 1's; *count = -1 when
 * neither is given. */
static int axes_get(nf_model *m, nf_node *n, int64_t *axes, int *count, nf_err *err)
{
    const axes_priv *p = n->priv;
    if (n->opset < 13) {
        *count = p->n_axes;
        for (int i = 0; i < p->n_axes; i++)
            axes[i] = p->axes[i];
        return NF_OK;
    }
    if (n->n_in < 2 || n->in[1] < 0) {
        *count = -1;
        return NF_OK;
    }
    return nf__shape_ints(m, n, 1, "axes", axes, NF_MAX_DIMS, count, err);
}

int nf_op_squeeze_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    return axes_prepare(m, n, 0, err);
}

int nf_op_squeeze_infer(nf_model *m, nf_node *n, nf_err *err)
{
    nf_value *x = nf_in(m, n, 0);
    int64_t axes[NF_MAX_DIMS], dims[NF_MAX_DIMS];
    bool drop[NF_MAX_DIMS] = {false};
    int na, rc = axes_get(m, n, axes, &na, err);
    if (rc != NF_OK)
        return rc;
    for (int i = 0; i < na; i++) {
        int a = 0;
        if ((rc = nf__shape_axis(m, n, axes[i], x->n_dims, 0, "axis", &a, err)) != NF_OK)
            return rc;
        if (drop[a])
            return nf_node_err(err, nf__shape_code(m, NF_EINVAL), n, "axis %d is given twice", a);
        if (x->dims[a] != 1)
            return nf_node_err(err, nf__shape_code(m, NF_ESHAPE), n, "cannot squeeze axis %d of size %lld", a,
                               (long long)x->dims[a]);
        drop[a] = true;
    }
    /* no axes, or an empty list (as onnxruntime reads it): every unit axis */
    int nd = 0;
    for (int d = 0; d < x->n_dims; d++)
        if (!(na <= 0 ? x->dims[d] == 1 : drop[d]))
            dims[nd++] = x->dims[d];
    return nf__shape_set(m, n, 0, x->dtype, nd, dims, err);
}

int nf_op_squeeze_run(nf_model *m, nf_node *n, nf_err *err)
{
    return copy_run(m, n, err);
}

int nf_op_unsqueeze_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    return axes_prepare(m, n, 1, err);
}

int nf_op_unsqueeze_infer(nf_model *m, nf_node *n, nf_err *err)
{
    nf_value *x = nf_in(m, n, 0);
    int64_t axes[NF_MAX_DIMS], dims[NF_MAX_DIMS];
    bool ins[NF_MAX_DIMS] = {false};
    int na, rc = axes_get(m, n, axes, &na, err);
    if (rc != NF_OK)
        return rc;
    int out_rank = x->n_dims + (na > 0 ? na : 0);
    if (out_rank > NF_MAX_DIMS)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "output rank %d, at most %d supported", out_rank, NF_MAX_DIMS);
    for (int i = 0; i < na; i++) {
        int a = 0;
        if ((rc = nf__shape_axis(m, n, axes[i], out_rank, 0, "axis", &a, err)) != NF_OK)
            return rc;
        if (ins[a])
            return nf_node_err(err, nf__shape_code(m, NF_EINVAL), n, "axis %d is given twice", a);
        ins[a] = true;
    }
    for (int d = 0, j = 0; d < out_rank; d++)
        dims[d] = ins[d] ? 1 : x->dims[j++];
    return nf__shape_set(m, n, 0, x->dtype, out_rank, dims, err);
}

int nf_op_unsqueeze_run(nf_model *m, nf_node *n, nf_err *err)
{
    return copy_run(m, n, err);
}

/* ---- Shape (1-14; 15+ adds start and end) and Size ------------------------- */
typedef struct shape_priv {
    int lo, len; /* this run's slice of the input's dims */
} shape_priv;

int nf_op_shape_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    int rc = need_io(n, 1, err);
    if (rc != NF_OK)
        return rc;
    if ((n->priv = nf_arena_alloc(&m->arena, sizeof(shape_priv))) == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    return NF_OK;
}

/* start and end count from the back when negative and are clamped to
 * [0, rank] (Shape-15). */
static int64_t clamp_axis(int64_t a, int rank)
{
    if (a < 0)
        a += rank;
    return a < 0 ? 0 : a > rank ? rank : a;
}

int nf_op_shape_infer(nf_model *m, nf_node *n, nf_err *err)
{
    nf_value *x = nf_in(m, n, 0);
    shape_priv *p = n->priv;
    int64_t lo = 0, hi = x->n_dims;
    if (n->opset >= 15) {
        lo = clamp_axis(nf_attr_int(n, "start", 0), x->n_dims);
        hi = clamp_axis(nf_attr_int(n, "end", x->n_dims), x->n_dims);
    }
    p->lo = (int)lo;
    p->len = hi > lo ? (int)(hi - lo) : 0;
    int64_t len = p->len;
    return nf__shape_set(m, n, 0, NF_DT_INT64, 1, &len, err);
}

int nf_op_shape_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const shape_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0), *y = nf_out(m, n, 0);
    for (int i = 0; i < p->len; i++)
        ((int64_t *)y->data)[i] = x->dims[p->lo + i];
    return NF_OK;
}

int nf_op_size_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    (void)m;
    return need_io(n, 1, err);
}

int nf_op_size_infer(nf_model *m, nf_node *n, nf_err *err)
{
    return nf__shape_set(m, n, 0, NF_DT_INT64, 0, NULL, err);
}

int nf_op_size_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    *(int64_t *)nf_out(m, n, 0)->data = nf_in(m, n, 0)->size;
    return NF_OK;
}

/* ---- ConstantOfShape: the value attribute (default float 0) everywhere ------- */
typedef struct cos_priv {
    int dtype;
    const void *elem; /* one element: the attribute's data, or zero */
} cos_priv;

static const uint64_t zero_elem; /* float 0.0f */

int nf_op_constant_of_shape_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    int rc = need_io(n, 1, err);
    if (rc != NF_OK)
        return rc;
    cos_priv *p = nf_arena_alloc(&m->arena, sizeof *p);
    if (p == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    p->dtype = NF_DT_FLOAT;
    p->elem = &zero_elem;
    const nf_attr *a = nf_attr_get(n, "value");
    if (a != NULL) {
        if (a->t == NULL || a->t->size != 1)
            return nf_node_err(err, NF_EMODEL, n, "attribute 'value' must be a tensor of one element");
        if (nf_dtype_size(a->t->dtype) == 0)
            return nf_node_err(err, NF_EUNSUPPORTED, n, "attribute 'value' has element type %d", a->t->dtype);
        p->dtype = a->t->dtype;
        p->elem = a->t->data;
    }
    n->priv = p;
    return NF_OK;
}

int nf_op_constant_of_shape_infer(nf_model *m, nf_node *n, nf_err *err)
{
    const cos_priv *p = n->priv;
    int64_t dims[NF_MAX_DIMS];
    int nd, rc = nf__shape_ints(m, n, 0, "input", dims, NF_MAX_DIMS, &nd, err);
    if (rc != NF_OK)
        return rc;
    for (int i = 0; i < nd; i++)
        if (dims[i] < 0)
            return nf_node_err(err, nf__shape_code(m, NF_EINVAL), n, "input 'input' has %lld at position %d",
                               (long long)dims[i], i);
    return nf__shape_set(m, n, 0, p->dtype, nd, dims, err);
}

int nf_op_constant_of_shape_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const cos_priv *p = n->priv;
    nf_value *y = nf_out(m, n, 0);
    nf__shape_fill(y->data, p->elem, y->size, nf_dtype_size(y->dtype));
    return NF_OK;
}

/* ---- Range: start + i * delta for i < max(ceil((limit - start) / delta), 0) --- */
typedef struct range_priv {
    int64_t count;
    int64_t istart, idelta; /* integer types */
    double fstart, fdelta;  /* float, double */
} range_priv;

int nf_op_range_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    int rc = need_io(n, 3, err);
    if (rc != NF_OK)
        return rc;
    if ((n->priv = nf_arena_alloc(&m->arena, sizeof(range_priv))) == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    return NF_OK;
}

static int64_t range_int(const nf_value *v)
{
    switch (v->dtype) {
    case NF_DT_INT16: return ((const int16_t *)v->data)[0];
    case NF_DT_INT32: return ((const int32_t *)v->data)[0];
    default: return ((const int64_t *)v->data)[0];
    }
}

int nf_op_range_infer(nf_model *m, nf_node *n, nf_err *err)
{
    static const char *const names[3] = {"start", "limit", "delta"};
    range_priv *p = n->priv;
    const nf_value *in[3];
    int dt = nf_in(m, n, 0)->dtype;
    if (dt != NF_DT_FLOAT && dt != NF_DT_DOUBLE && dt != NF_DT_INT16 && dt != NF_DT_INT32 && dt != NF_DT_INT64)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "element type %s is not supported", nf_dtype_name(dt));
    for (int i = 0; i < 3; i++) {
        in[i] = nf_in(m, n, i);
        if (in[i]->dtype != dt)
            return nf_node_err(err, NF_EMODEL, n, "input '%s' is %s, input 'start' is %s", names[i],
                               nf_dtype_name(in[i]->dtype), nf_dtype_name(dt));
        if (in[i]->size != 1)
            return nf_node_err(err, nf__shape_code(m, NF_ESHAPE), n, "input '%s' has %lld elements, expected a scalar",
                               names[i], (long long)in[i]->size);
    }
    int64_t count = 0;
    if (dt == NF_DT_FLOAT || dt == NF_DT_DOUBLE) {
        double s = nf_get_f64(in[0]->data, dt, 0), l = nf_get_f64(in[1]->data, dt, 0), d = nf_get_f64(in[2]->data, dt, 0);
        if (!isfinite(s) || !isfinite(l) || !isfinite(d) || d == 0)
            return nf_node_err(err, nf__shape_code(m, NF_EINVAL), n,
                               "start %g, limit %g, delta %g: need finite values and a non-zero delta", s, l, d);
        double c = ceil((l - s) / d);
        if (c > (double)SHAPE_LIMIT)
            return nf_node_err(err, nf__shape_code(m, NF_EINVAL), n, "start %g, limit %g, delta %g: %.0f elements is too many",
                               s, l, d, c);
        count = c > 0 ? (int64_t)c : 0;
        p->fstart = s;
        p->fdelta = d;
    } else {
        int64_t s = range_int(in[0]), l = range_int(in[1]), d = range_int(in[2]);
        if (d == 0)
            return nf_node_err(err, nf__shape_code(m, NF_EINVAL), n, "input 'delta' is 0");
        __int128 diff = (__int128)l - s, c = 0;
        if (diff > 0 && d > 0)
            c = (diff + d - 1) / d;
        else if (diff < 0 && d < 0)
            c = (diff + d + 1) / d;
        if (c > SHAPE_LIMIT)
            return nf_node_err(err, nf__shape_code(m, NF_EINVAL), n, "start %lld, limit %lld, delta %lld: too many elements",
                               (long long)s, (long long)l, (long long)d);
        count = (int64_t)c;
        p->istart = s;
        p->idelta = d;
    }
    p->count = count;
    return nf__shape_set(m, n, 0, dt, 1, &count, err);
}

static int64_t range_at(const range_priv *p, int64_t i)
{
    return (int64_t)((uint64_t)p->istart + (uint64_t)i * (uint64_t)p->idelta);
}

int nf_op_range_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const range_priv *p = n->priv;
    nf_value *y = nf_out(m, n, 0);
    for (int64_t i = 0; i < p->count; i++) {
        switch (y->dtype) {
        case NF_DT_FLOAT: ((float *)y->data)[i] = (float)(p->fstart + (double)i * p->fdelta); break;
        case NF_DT_DOUBLE: ((double *)y->data)[i] = p->fstart + (double)i * p->fdelta; break;
        /* the value lies between start and limit, but i * delta may not fit:
         * wrap-around arithmetic gives the exact result */
        case NF_DT_INT16: ((int16_t *)y->data)[i] = (int16_t)range_at(p, i); break;
        case NF_DT_INT32: ((int32_t *)y->data)[i] = (int32_t)range_at(p, i); break;
        default: ((int64_t *)y->data)[i] = range_at(p, i); break;
        }
    }
    return NF_OK;
}
