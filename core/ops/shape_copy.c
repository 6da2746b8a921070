/*
 * shape_copy.c: operators that move elements to new places: Transpose,
 * Concat, Split, Slice, Tile, Pad. Transpose, Slice and Tile are one
 * strided copy each (nf__strided_copy, shape.c); Concat and Split copy
 * contiguous blocks; Pad maps each output row back to an input row.
 *
 * infer computes the geometry of this run (perm, starts and steps, split
 * sizes, pads) into n->priv and run only reads it: every value read from
 * an input was checked there.
 */
#include <stdio.h>
#include <string.h>

#include "ops.h"

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

static void *priv_alloc(nf_model *m, nf_node *n, size_t size, nf_err *err)
{
    n->priv = nf_arena_alloc(&m->arena, size);
    if (n->priv == NULL)
        nf_err_set(err, NF_ENOMEM, "out of memory");
    return n->priv;
}

/* Row-major strides of dims, in elements; saturating, since an empty
 * request tensor may have dims whose product overflows (nothing is read
 * from it then). */
static void strides_of(int n_dims, const int64_t *dims, int64_t *st)
{
    int64_t s = 1;
    for (int i = n_dims - 1; i >= 0; i--) {
        st[i] = s;
        s = nf__shape_mul(s, dims[i]);
    }
}

/* ---- Transpose: perm, default reversed ------------------------------------- */
typedef struct transpose_priv {
    int n_perm;                /* from the attribute; -1 = reverse */
    int64_t perm[NF_MAX_DIMS];
    int cur[NF_MAX_DIMS];      /* this run's permutation */
} transpose_priv;

int nf_op_transpose_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    int rc = need_io(n, 1, err);
    if (rc != NF_OK)
        return rc;
    transpose_priv *p = priv_alloc(m, n, sizeof *p, err);
    if (p == NULL)
        return NF_ENOMEM;
    const int64_t *perm;
    int64_t np = nf_attr_ints(n, "perm", &perm);
    p->n_perm = -1;
    if (nf_attr_get(n, "perm") != NULL) {
        if (np > NF_MAX_DIMS)
            return nf_node_err(err, NF_EUNSUPPORTED, n, "attribute 'perm' has %lld values, at most %d supported",
                               (long long)np, NF_MAX_DIMS);
        p->n_perm = (int)np;
        for (int i = 0; i < np; i++)
            p->perm[i] = perm[i];
    }
    return NF_OK;
}

int nf_op_transpose_infer(nf_model *m, nf_node *n, nf_err *err)
{
    transpose_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0);
    int r = x->n_dims;
    int64_t dims[NF_MAX_DIMS];
    bool seen[NF_MAX_DIMS] = {false};
    if (p->n_perm >= 0 && p->n_perm != r)
        return nf_node_err(err, nf__shape_code(m, NF_ESHAPE), n, "attribute 'perm' has %d values for an input of rank %d",
                           p->n_perm, r);
    for (int i = 0; i < r; i++) {
        int64_t a = p->n_perm >= 0 ? p->perm[i] : r - 1 - i;
        if (a < 0 || a >= r || seen[a])
            return nf_node_err(err, NF_EMODEL, n, "attribute 'perm' is not a permutation of 0..%d", r - 1);
        seen[a] = true;
        p->cur[i] = (int)a;
        dims[i] = x->dims[a];
    }
    return nf__shape_set(m, n, 0, x->dtype, r, dims, err);
}

/* Output axis i steps input axis perm[i]. nf__strided_copy merges axes
 * the permutation keeps together, copies rows whole when the innermost axis
 * stays innermost, and works in tiles otherwise (the 2-D case). */
int nf_op_transpose_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const transpose_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0), *y = nf_out(m, n, 0);
    int64_t ist[NF_MAX_DIMS], st[NF_MAX_DIMS];
    if (y->size == 0)
        return NF_OK;
    strides_of(x->n_dims, x->dims, ist);
    for (int i = 0; i < x->n_dims; i++)
        st[i] = ist[p->cur[i]];
    nf__strided_copy(y->data, x->data, y->n_dims, y->dims, st, nf_dtype_size(x->dtype));
    return NF_OK;
}

/* ---- Concat ------------------------------------------------------------------ */
typedef struct concat_priv {
    int axis;       /* this run's, non-negative */
    size_t *chunk;  /* this run: bytes of input i per output row */
} concat_priv;

int nf_op_concat_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    int rc = need_io(n, 1, err);
    if (rc != NF_OK)
        return rc;
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] < 0)
            return nf_node_err(err, NF_EMODEL, n, "input %d is empty", i);
    if (nf_attr_get(n, "axis") == NULL)
        return nf_node_err(err, NF_EMODEL, n, "attribute 'axis' is missing");
    concat_priv *p = priv_alloc(m, n, sizeof *p, err);
    if (p == NULL)
        return NF_ENOMEM;
    if ((p->chunk = nf_arena_alloc(&m->arena, (size_t)n->n_in * sizeof(size_t))) == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    return NF_OK;
}

int nf_op_concat_infer(nf_model *m, nf_node *n, nf_err *err)
{
    concat_priv *p = n->priv;
    const nf_value *x0 = nf_in(m, n, 0);
    int r = x0->n_dims, rc = nf__shape_axis(m, n, nf_attr_int(n, "axis", 0), r, 0, "attribute 'axis'", &p->axis, err);
    if (rc != NF_OK)
        return rc;
    int64_t dims[NF_MAX_DIMS];
    memcpy(dims, x0->dims, sizeof dims);
    dims[p->axis] = 0;
    for (int i = 0; i < n->n_in; i++) {
        const nf_value *x = nf_in(m, n, i);
        char a[160], b[160];
        if (x->dtype != x0->dtype)
            return nf_node_err(err, NF_EMODEL, n, "input %d ('%s') is %s, input 0 is %s", i, x->name,
                               nf_dtype_name(x->dtype), nf_dtype_name(x0->dtype));
        int same = x->n_dims == r;
        for (int d = 0; same && d < r; d++)
            same = d == p->axis || x->dims[d] == x0->dims[d];
        if (!same)
            return nf_node_err(err, nf__shape_code(m, NF_ESHAPE), n,
                               "input %d ('%s') has shape %s, input 0 has %s; only axis %d may differ", i, x->name,
                               nf__shape_str(a, sizeof a, x->n_dims, x->dims), nf__shape_str(b, sizeof b, r, x0->dims),
                               p->axis);
        dims[p->axis] = nf__shape_add(dims[p->axis], x->dims[p->axis]);
    }
    if ((rc = nf__shape_set(m, n, 0, x0->dtype, r, dims, err)) != NF_OK)
        return rc;
    /* with a non-empty output, every input's row is smaller than it */
    size_t esz = nf_dtype_size(x0->dtype);
    for (int i = 0; i < n->n_in; i++) {
        const nf_value *x = nf_in(m, n, i);
        p->chunk[i] = nf_out(m, n, 0)->size ? (size_t)nf__shape_prod(x->dims, p->axis, r) * esz : 0;
    }
    return NF_OK;
}

/* Output row o (over the axes before axis) is the rows o of every input,
 * one after the other. */
int nf_op_concat_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const concat_priv *p = n->priv;
    nf_value *y = nf_out(m, n, 0);
    if (y->size == 0)
        return NF_OK;
    int64_t outer = nf__shape_prod(y->dims, 0, p->axis);
    char *dst = y->data;
    for (int64_t o = 0; o < outer; o++) {
        for (int i = 0; i < n->n_in; i++) {
            size_t chunk = p->chunk[i];
            if (chunk == 0)
                continue;
            memcpy(dst, (const char *)nf_in(m, n, i)->data + (size_t)o * chunk, chunk);
            dst += chunk;
        }
    }
    return NF_OK;
}

/* ---- Split: split attribute (2-12) or input (13-17), else equal parts ------- */
typedef struct split_priv {
    int axis;            /* this run's */
    const int64_t *attr; /* n_out sizes from the attribute, or NULL */
    int64_t *cur;        /* n_out sizes of this run */
} split_priv;

int nf_op_split_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    if (n->n_out < 1)
        return nf_node_err(err, NF_EMODEL, n, "needs an output");
    if (n->n_in < 1 || n->in[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs an input");
    split_priv *p = priv_alloc(m, n, sizeof *p, err);
    if (p == NULL)
        return NF_ENOMEM;
    p->cur = nf_arena_alloc(&m->arena, (size_t)n->n_out * sizeof(int64_t));
    if (p->cur == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    const int64_t *s;
    int64_t ns = nf_attr_ints(n, "split", &s);
    if (n->opset < 13 && ns > 0) {
        if (ns != n->n_out)
            return nf_node_err(err, NF_EMODEL, n, "attribute 'split' has %lld values for %d outputs", (long long)ns,
                               n->n_out);
        for (int i = 0; i < ns; i++)
            if (s[i] < 0)
                return nf_node_err(err, NF_EMODEL, n, "attribute 'split' has %lld at position %d", (long long)s[i], i);
        p->attr = s;
    }
    return NF_OK;
}

int nf_op_split_infer(nf_model *m, nf_node *n, nf_err *err)
{
    split_priv *p = n->priv;
    const nf_value *x = nf_in(m, n, 0), *sv = n->opset >= 13 ? nf_in(m, n, 1) : NULL;
    int rc = nf__shape_axis(m, n, nf_attr_int(n, "axis", 0), x->n_dims, 0, "attribute 'axis'", &p->axis, err);
    if (rc != NF_OK)
        return rc;
    int64_t dim = x->dims[p->axis], sum = 0;
    if (sv != NULL) {
        if (sv->dtype != NF_DT_INT64 && sv->dtype != NF_DT_INT32)
            return nf_node_err(err, NF_EMODEL, n, "input 'split' is %s, expected int64", nf_dtype_name(sv->dtype));
        if (sv->n_dims > 1 || sv->size != n->n_out)
            return nf_node_err(err, nf__shape_code(m, NF_ESHAPE), n, "input 'split' has %lld values for %d outputs",
                               (long long)sv->size, n->n_out);
        for (int i = 0; i < n->n_out; i++) {
            p->cur[i] = nf__shape_int_at(sv, i);
            if (p->cur[i] < 0)
                return nf_node_err(err, nf__shape_code(m, NF_EINVAL), n, "input 'split' has %lld at position %d",
                                   (long long)p->cur[i], i);
        }
    } else if (p->attr != NULL) {
        memcpy(p->cur, p->attr, (size_t)n->n_out * sizeof(int64_t));
    } else {
        if (dim % n->n_out != 0)
            return nf_node_err(err, nf__shape_code(m, NF_ESHAPE), n, "axis %d of size %lld does not split into %d equal parts",
                               p->axis, (long long)dim, n->n_out);
        for (int i = 0; i < n->n_out; i++)
            p->cur[i] = dim / n->n_out;
    }
    for (int i = 0; i < n->n_out; i++)
        sum = nf__shape_add(sum, p->cur[i]);
    if (sum != dim)
        return nf_node_err(err, nf__shape_code(m, NF_ESHAPE), n, "split sizes add up to %lld, axis %d has size %lld",
                           (long long)sum, p->axis, (long long)dim);
    int64_t dims[NF_MAX_DIMS];
    memcpy(dims, x->dims, sizeof dims);
    for (int i = 0; i < n->n_out; i++) {
        dims[p->axis] = p->cur[i];
        if ((rc = nf__shape_set(m, n, i, x->dtype, x->n_dims, dims, err)) != NF_OK)
            return rc;
    }
    return NF_OK;
}

int nf_op_split_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const split_priv *p = n->priv;
    const nf_value *x = nf_in(m, n, 0);
    if (x->size == 0)
        return NF_OK;
    size_t esz = nf_dtype_size(x->dtype);
    int64_t outer = nf__shape_prod(x->dims, 0, p->axis);
    size_t inner = (size_t)nf__shape_prod(x->dims, p->axis + 1, x->n_dims) * esz;
    const char *src = x->data;
    for (int64_t o = 0; o < outer; o++) {
        for (int i = 0; i < n->n_out; i++) {
            size_t chunk = (size_t)p->cur[i] * inner;
            nf_value *y = nf_out(m, n, i);
            if (y != NULL && chunk > 0)
                memcpy((char *)y->data + (size_t)o * chunk, src, chunk);
            src += chunk;
        }
    }
    return NF_OK;
}

/* ---- Slice: attributes (1-9) or inputs (10+) ------------------------------- */
typedef struct slice_priv {
    int n_attr;                   /* starts/ends/axes from attributes (< 10) */
    int64_t starts[NF_MAX_DIMS], ends[NF_MAX_DIMS], axes[NF_MAX_DIMS];
    bool has_axes;
    int64_t offset;               /* this run: first element read */
    int64_t stride[NF_MAX_DIMS];  /* this run: input step per output axis */
} slice_priv;

int nf_op_slice_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    int rc = need_io(n, n->opset < 10 ? 1 : 3, err);
    if (rc != NF_OK)
        return rc;
    slice_priv *p = priv_alloc(m, n, sizeof *p, err);
    if (p == NULL)
        return NF_ENOMEM;
    if (n->opset >= 10)
        return NF_OK;
    const int64_t *s, *e, *a;
    int64_t ns = nf_attr_ints(n, "starts", &s), ne = nf_attr_ints(n, "ends", &e), na = nf_attr_ints(n, "axes", &a);
    p->has_axes = nf_attr_get(n, "axes") != NULL;
    if (ns != ne || (p->has_axes && na != ns))
        return nf_node_err(err, NF_EMODEL, n, "attributes 'starts', 'ends' and 'axes' have %lld, %lld and %lld values",
                           (long long)ns, (long long)ne, (long long)na);
    if (ns > NF_MAX_DIMS)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "attribute 'starts' has %lld values, at most %d supported",
                           (long long)ns, NF_MAX_DIMS);
    p->n_attr = (int)ns;
    for (int i = 0; i < ns; i++) {
        p->starts[i] = s[i];
        p->ends[i] = e[i];
        p->axes[i] = p->has_axes ? a[i] : i;
    }
    return NF_OK;
}

/* Effective start and element count on an axis of size d (Slice-13):
 * negative start/end count from the back, then clamp to [0, d] stepping
 * forward, start to [0, d-1] and end to [-1, d-1] stepping backward.
 * One departure, as onnxruntime does: an end of INT32_MAX or INT64_MAX
 * means "no end" in either direction, so stepping backward it reaches
 * index 0 (read literally the spec clamps it to d-1: an empty slice that
 * no exporter means). */
static int64_t slice_axis(int64_t start, int64_t end, int64_t step, int64_t d, int64_t *first)
{
    *first = 0;
    if (d == 0)
        return 0;
    if (start < 0)
        start += d;
    if (step < 0 && (end == INT64_MAX || end == INT32_MAX))
        end = -1;
    else if (end < 0)
        end += d;
    if (step > 0) {
        start = start < 0 ? 0 : start > d ? d : start;
        end = end < 0 ? 0 : end > d ? d : end;
        if (end <= start)
            return 0;
        *first = start;
        return (end - start - 1) / step + 1;
    }
    start = start < 0 ? 0 : start > d - 1 ? d - 1 : start;
    end = end < -1 ? -1 : end > d - 1 ? d - 1 : end;
    if (start <= end)
        return 0;
    *first = start;
    /* -step overflows for INT64_MIN: divide as unsigned */
    return (int64_t)((uint64_t)(start - end - 1) / (0 - (uint64_t)step)) + 1;
}

int nf_op_slice_infer(nf_model *m, nf_node *n, nf_err *err)
{
    slice_priv *p = n->priv;
    const nf_value *x = nf_in(m, n, 0);
    int r = x->n_dims, ns, rc;
    int64_t starts[NF_MAX_DIMS], ends[NF_MAX_DIMS], axes[NF_MAX_DIMS], steps[NF_MAX_DIMS];
    if (n->opset < 10) {
        ns = p->n_attr;
        memcpy(starts, p->starts, sizeof starts);
        memcpy(ends, p->ends, sizeof ends);
        memcpy(axes, p->axes, sizeof axes);
        for (int i = 0; i < ns; i++)
            steps[i] = 1;
    } else {
        int ne, na = -1, nst = -1;
        if ((rc = nf__shape_ints(m, n, 1, "starts", starts, NF_MAX_DIMS, &ns, err)) != NF_OK ||
            (rc = nf__shape_ints(m, n, 2, "ends", ends, NF_MAX_DIMS, &ne, err)) != NF_OK)
            return rc;
        if (nf_in(m, n, 3) && (rc = nf__shape_ints(m, n, 3, "axes", axes, NF_MAX_DIMS, &na, err)) != NF_OK)
            return rc;
        if (nf_in(m, n, 4) && (rc = nf__shape_ints(m, n, 4, "steps", steps, NF_MAX_DIMS, &nst, err)) != NF_OK)
            return rc;
        if (ne != ns || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
            return nf_node_err(err, nf__shape_code(m, NF_ESHAPE), n,
                               "inputs 'starts', 'ends', 'axes' and 'steps' have %d, %d, %d and %d values", ns, ne, na,
                               nst);
        for (int i = 0; i < ns; i++) {
            if (na < 0)
                axes[i] = i;
            if (nst < 0)
                steps[i] = 1;
        }
    }
    int64_t dims[NF_MAX_DIMS], ist[NF_MAX_DIMS];
    bool seen[NF_MAX_DIMS] = {false};
    memcpy(dims, x->dims, sizeof dims);
    strides_of(r, x->dims, ist);
    memcpy(p->stride, ist, sizeof ist);
    p->offset = 0;
    for (int i = 0; i < ns; i++) {
        int a = 0;
        if ((rc = nf__shape_axis(m, n, axes[i], r, 0, "axis", &a, err)) != NF_OK)
            return rc;
        if (seen[a])
            return nf_node_err(err, nf__shape_code(m, NF_EINVAL), n, "axis %d is given twice", a);
        seen[a] = true;
        if (steps[i] == 0)
            return nf_node_err(err, nf__shape_code(m, NF_EINVAL), n, "input 'steps' is 0 for axis %d", a);
        int64_t first;
        dims[a] = slice_axis(starts[i], ends[i], steps[i], x->dims[a], &first);
        if (x->size == 0) /* the output is empty too: nothing is read */
            continue;
        p->offset += first * ist[a];
        /* a step is at most the axis size once two elements are read */
        p->stride[a] = dims[a] > 1 ? ist[a] * steps[i] : 0;
    }
    return nf__shape_set(m, n, 0, x->dtype, r, dims, err);
}

int nf_op_slice_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const slice_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0), *y = nf_out(m, n, 0);
    size_t esz = nf_dtype_size(x->dtype);
    if (y->size > 0)
        nf__strided_copy(y->data, (const char *)x->data + (size_t)p->offset * esz, y->n_dims, y->dims, p->stride, esz);
    return NF_OK;
}

/* ---- Tile: output axis d is repeats[d] copies of input axis d ---------------- */
int nf_op_tile_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    (void)m;
    return need_io(n, 2, err);
}

int nf_op_tile_infer(nf_model *m, nf_node *n, nf_err *err)
{
    const nf_value *x = nf_in(m, n, 0);
    int64_t rep[NF_MAX_DIMS], dims[NF_MAX_DIMS];
    int nr, rc = nf__shape_ints(m, n, 1, "repeats", rep, NF_MAX_DIMS, &nr, err);
    if (rc != NF_OK)
        return rc;
    if (nr != x->n_dims)
        return nf_node_err(err, nf__shape_code(m, NF_ESHAPE), n, "input 'repeats' has %d values for an input of rank %d",
                           nr, x->n_dims);
    for (int i = 0; i < nr; i++) {
        if (rep[i] < 0)
            return nf_node_err(err, nf__shape_code(m, NF_EINVAL), n, "input 'repeats' has %lld at position %d",
                               (long long)rep[i], i);
        dims[i] = nf__shape_mul(x->dims[i], rep[i]);
    }
    return nf__shape_set(m, n, 0, x->dtype, nr, dims, err);
}

/* The output seen as [rep0, d0, rep1, d1, ...] reads the input with
 * strides [0, s0, 0, s1, ...]: one strided copy. */
int nf_op_tile_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const nf_value *x = nf_in(m, n, 0);
    nf_value *y = nf_out(m, n, 0);
    if (y->size == 0)
        return NF_OK;
    int r = x->n_dims;
    int64_t ist[NF_MAX_DIMS], dims[2 * NF_MAX_DIMS], st[2 * NF_MAX_DIMS];
    strides_of(r, x->dims, ist);
    for (int i = 0; i < r; i++) {
        dims[2 * i] = y->dims[i] / x->dims[i];
        st[2 * i] = 0;
        dims[2 * i + 1] = x->dims[i];
        st[2 * i + 1] = ist[i];
    }
    nf__strided_copy(y->data, x->data, 2 * r, dims, st, nf_dtype_size(x->dtype));
    return NF_OK;
}

/* ---- Pad: pads and value as attributes (2-10) or inputs (11-17) ------------- */
enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE };

typedef struct pad_priv {
    int mode;
    int n_attr;                        /* pads from the attribute (< 11) */
    int64_t attr[2 * NF_MAX_DIMS];
    float value;                       /* value attribute (< 11) */
    int64_t begin[NF_MAX_DIMS];        /* this run: pads before each axis */
    uint64_t cval;                     /* this run: the constant, as an element */
} pad_priv;

static char empty_string[] = "";

int nf_op_pad_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    int rc = need_io(n, n->opset < 11 ? 1 : 2, err);
    if (rc != NF_OK)
        return rc;
    pad_priv *p = priv_alloc(m, n, sizeof *p, err);
    if (p == NULL)
        return NF_ENOMEM;
    const char *mode = nf_attr_str(n, "mode", "constant");
    if (strcmp(mode, "constant") == 0)
        p->mode = PAD_CONSTANT;
    else if (strcmp(mode, "reflect") == 0)
        p->mode = PAD_REFLECT;
    else if (strcmp(mode, "edge") == 0)
        p->mode = PAD_EDGE;
    else
        return nf_node_err(err, NF_EUNSUPPORTED, n, "attribute 'mode' is '%s'; constant, reflect and edge are supported",
                           mode);
    if (n->opset < 11) {
        const int64_t *a;
        int64_t na = nf_attr_ints(n, "pads", &a);
        if (nf_attr_get(n, "pads") == NULL)
            return nf_node_err(err, NF_EMODEL, n, "attribute 'pads' is missing");
        if (na > 2 * NF_MAX_DIMS)
            return nf_node_err(err, NF_EUNSUPPORTED, n, "attribute 'pads' has %lld values, at most %d supported",
                               (long long)na, 2 * NF_MAX_DIMS);
        p->n_attr = (int)na;
        if (na > 0) /* an empty 'pads' has no array (a is NULL) */
            memcpy(p->attr, a, (size_t)na * sizeof(int64_t));
        p->value = nf_attr_float(n, "value", 0.0f);
    }
    return NF_OK;
}

/* The constant of this run as one element of dtype. */
static int pad_constant(nf_model *m, nf_node *n, pad_priv *p, int dtype, nf_err *err)
{
    p->cval = 0;
    if (dtype == NF_DT_STRING) {
        char *s = empty_string;
        memcpy(&p->cval, &s, sizeof s);
    }
    if (n->opset < 11) {
        if (dtype == NF_DT_FLOAT16) {
            uint16_t h = nf_float_to_half(p->value);
            memcpy(&p->cval, &h, sizeof h);
        } else if (dtype != NF_DT_STRING) {
            nf_set_f64(&p->cval, dtype, 0, p->value);
        }
        return NF_OK;
    }
    const nf_value *c = nf_in(m, n, 2);
    if (c == NULL)
        return NF_OK;
    if (c->dtype != dtype)
        return nf_node_err(err, NF_EMODEL, n, "input 'constant_value' is %s, the data is %s", nf_dtype_name(c->dtype),
                           nf_dtype_name(dtype));
    if (c->size == 0) /* an empty tensor for an absent value, as some exporters write */
        return NF_OK;
    if (c->size != 1)
        return nf_node_err(err, nf__shape_code(m, NF_ESHAPE), n, "input 'constant_value' has %lld elements, expected one",
                           (long long)c->size);
    memcpy(&p->cval, c->data, nf_dtype_size(dtype));
    return NF_OK;
}

int nf_op_pad_infer(nf_model *m, nf_node *n, nf_err *err)
{
    pad_priv *p = n->priv;
    const nf_value *x = nf_in(m, n, 0);
    int r = x->n_dims, np, rc;
    int64_t pads[2 * NF_MAX_DIMS], dims[NF_MAX_DIMS];
    const char *what = n->opset < 11 ? "attribute 'pads'" : "input 'pads'";
    if (n->opset < 11) {
        np = p->n_attr;
        memcpy(pads, p->attr, sizeof pads);
    } else if ((rc = nf__shape_ints(m, n, 1, "pads", pads, 2 * NF_MAX_DIMS, &np, err)) != NF_OK) {
        return rc;
    }
    if (np != 2 * r)
        return nf_node_err(err, nf__shape_code(m, NF_ESHAPE), n, "%s has %d values for an input of rank %d", what, np, r);
    const int64_t lim = (int64_t)1 << 40;
    for (int d = 0; d < r; d++) {
        int64_t b = pads[d], e = pads[r + d];
        if (b < -lim || b > lim || e < -lim || e > lim)
            return nf_node_err(err, nf__shape_code(m, NF_EINVAL), n, "%s has %lld, %lld for axis %d", what,
                               (long long)b, (long long)e, d);
        if (__builtin_add_overflow(x->dims[d], b + e, &dims[d])) /* a huge dim of an empty input */
            dims[d] = INT64_MAX;
        if (dims[d] < 0)
            return nf_node_err(err, nf__shape_code(m, NF_EINVAL), n,
                               "%s removes %lld elements from axis %d of size %lld", what, (long long)-(b + e), d,
                               (long long)x->dims[d]);
        if (p->mode != PAD_CONSTANT && x->dims[d] == 0 && dims[d] > 0)
            return nf_node_err(err, nf__shape_code(m, NF_EINVAL), n, "cannot pad the empty axis %d in mode '%s'", d,
                               p->mode == PAD_EDGE ? "edge" : "reflect");
        p->begin[d] = b;
    }
    if ((rc = pad_constant(m, n, p, x->dtype, err)) != NF_OK)
        return rc;
    return nf__shape_set(m, n, 0, x->dtype, r, dims, err);
}

/* Input index for output index i - begin on an axis of size d, or -1 for
 * the constant. Reflect mirrors about the first and last element without
 * repeating them (numpy.pad 'reflect', period 2(d-1)); pads wider than the
 * axis keep reflecting. */
static int64_t pad_map(int64_t i, int64_t d, int mode)
{
    if (i >= 0 && i < d)
        return i;
    if (mode == PAD_CONSTANT)
        return -1;
    if (mode == PAD_EDGE || d == 1)
        return i < 0 ? 0 : d - 1;
    int64_t period = 2 * (d - 1);
    i %= period;
    if (i < 0)
        i += period;
    return i < d ? i : period - i;
}

int nf_op_pad_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const pad_priv *p = n->priv;
    const nf_value *x = nf_in(m, n, 0);
    nf_value *y = nf_out(m, n, 0);
    size_t esz = nf_dtype_size(x->dtype);
    if (y->size == 0)
        return NF_OK;
    int r = x->n_dims;
    if (r == 0) {
        nf__shape_copy_elem(y->data, x->data, esz);
        return NF_OK;
    }
    if (x->size == 0) { /* constant mode (infer refused the others) */
        nf__shape_fill(y->data, &p->cval, y->size, esz);
        return NF_OK;
    }
    int last = r - 1;
    int64_t ist[NF_MAX_DIMS], idx[NF_MAX_DIMS] = {0};
    strides_of(r, x->dims, ist);
    /* on the last axis, output [lo, hi) is input [lo - b, hi - b) */
    int64_t row = y->dims[last], b = p->begin[last], d = x->dims[last];
    int64_t lo = b < 0 ? 0 : b > row ? row : b;
    int64_t hi = b + d < lo ? lo : b + d > row ? row : b + d;
    char *dst = y->data;
    for (;;) {
        int64_t off = 0;
        int outside = 0;
        for (int j = 0; j < last && !outside; j++) {
            int64_t i = pad_map(idx[j] - p->begin[j], x->dims[j], p->mode);
            if (i < 0)
                outside = 1;
            off += i * ist[j];
        }
        if (outside) {
            nf__shape_fill(dst, &p->cval, row, esz);
        } else {
            const char *src = (const char *)x->data + (size_t)off * esz;
            for (int64_t c = 0; c < lo; c++) {
                int64_t i = pad_map(c - b, d, p->mode);
                nf__shape_copy_elem(dst + (size_t)c * esz, i < 0 ? (const void *)&p->cval : src + (size_t)i * esz, esz);
            }
            if (hi > lo)
                memcpy(dst + (size_t)lo * esz, src + (size_t)(lo - b) * esz, (size_t)(hi - lo) * esz);
            for (int64_t c = hi; c < row; c++) {
                int64_t i = pad_map(c - b, d, p->mode);
                nf__shape_copy_elem(dst + (size_t)c * esz, i < 0 ? (const void *)&p->cval : src + (size_t)i * esz, esz);
            }
        }
        dst += (size_t)row * esz;
        int j = last - 1;
        for (; j >= 0; j--) {
            if (++idx[j] < y->dims[j])
                break;
            idx[j] = 0;
        }
        if (j < 0)
            break;
    }
    return NF_OK;
}
