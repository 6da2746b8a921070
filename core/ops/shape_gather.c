/*
 * shape_gather.c: Gather, GatherElements and GatherND, the operators whose
 * indices are data. Indices often come with the request (token ids into an
 * embedding table), so run checks every index against its axis before
 * reading: one out of range fails the run with NF_EINVAL naming node,
 * index, axis and size, and nothing outside the data is ever read.
 */
#include <string.h>

#include "ops.h"

typedef struct gather_priv {
    int axis; /* this run's, non-negative */
} gather_priv;

static int gather_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    if (n->n_in < 2 || n->in[0] < 0 || n->in[1] < 0 || n->n_out < 1 || n->out[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs inputs 'data' and 'indices' and an output");
    n->priv = nf_arena_alloc(&m->arena, sizeof(gather_priv));
    return n->priv ? NF_OK : nf_err_set(err, NF_ENOMEM, "out of memory");
}

/* Checks dtypes and the axis; data must have rank >= 1. */
static int gather_check(nf_model *m, nf_node *n, const nf_value *x, const nf_value *ind, nf_err *err)
{
    gather_priv *p = n->priv;
    if (ind->dtype != NF_DT_INT64 && ind->dtype != NF_DT_INT32)
        return nf_node_err(err, NF_EMODEL, n, "input 'indices' is %s, expected int64 or int32",
                           nf_dtype_name(ind->dtype));
    if (x->n_dims < 1)
        return nf_node_err(err, nf__shape_code(m, NF_ESHAPE), n, "input 'data' is a scalar, expected rank >= 1");
    return nf__shape_axis(m, n, nf_attr_int(n, "axis", 0), x->n_dims, 0, "attribute 'axis'", &p->axis, err);
}

/* The first index of ind outside [-size, size), as an error; NF_OK if none. */
static int check_indices(nf_model *m, nf_node *n, const nf_value *ind, int axis, int64_t size, nf_err *err)
{
    int64_t bad = 0;
    int found = 0;
    if (ind->dtype == NF_DT_INT32) {
        const int32_t *k = ind->data;
        for (int64_t i = 0; i < ind->size && !found; i++)
            if (k[i] < -size || k[i] >= size)
                found = 1, bad = k[i];
    } else {
        const int64_t *k = ind->data;
        for (int64_t i = 0; i < ind->size && !found; i++)
            if (k[i] < -size || k[i] >= size)
                found = 1, bad = k[i];
    }
    if (!found)
        return NF_OK;
    return nf_node_err(err, nf__shape_code(m, NF_EINVAL), n, "index %lld is out of range for axis %d of size %lld",
                       (long long)bad, axis, (long long)size);
}

/* ---- Gather: out[a.., i.., b..] = data[a.., indices[i..], b..] ------------------ */
int nf_op_gather_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    return gather_prepare(m, n, err);
}

int nf_op_gather_infer(nf_model *m, nf_node *n, nf_err *err)
{
    const gather_priv *p = n->priv;
    const nf_value *x = nf_in(m, n, 0), *ind = nf_in(m, n, 1);
    int rc = gather_check(m, n, x, ind, err);
    if (rc != NF_OK)
        return rc;
    int nd = x->n_dims - 1 + ind->n_dims;
    if (nd > NF_MAX_DIMS)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "output rank %d, at most %d supported", nd, NF_MAX_DIMS);
    int64_t dims[NF_MAX_DIMS];
    int k = 0;
    for (int d = 0; d < p->axis; d++)
        dims[k++] = x->dims[d];
    for (int d = 0; d < ind->n_dims; d++)
        dims[k++] = ind->dims[d];
    for (int d = p->axis + 1; d < x->n_dims; d++)
        dims[k++] = x->dims[d];
    return nf__shape_set(m, n, 0, x->dtype, nd, dims, err);
}

int nf_op_gather_run(nf_model *m, nf_node *n, nf_err *err)
{
    const gather_priv *p = n->priv;
    const nf_value *x = nf_in(m, n, 0), *ind = nf_in(m, n, 1);
    nf_value *y = nf_out(m, n, 0);
    int64_t size = x->dims[p->axis];
    int rc = check_indices(m, n, ind, p->axis, size, err);
    if (rc != NF_OK || y->size == 0)
        return rc;
    size_t esz = nf_dtype_size(x->dtype);
    int64_t outer = nf__shape_prod(x->dims, 0, p->axis), count = ind->size;
    size_t block = (size_t)nf__shape_prod(x->dims, p->axis + 1, x->n_dims) * esz;
    const char *src = x->data;
    char *dst = y->data;
    for (int64_t o = 0; o < outer; o++) {
        const char *base = src + (size_t)o * (size_t)size * block;
        for (int64_t i = 0; i < count; i++) {
            int64_t k = nf__shape_int_at(ind, i);
            if (k < 0)
                k += size;
            if (block == esz)
                nf__shape_copy_elem(dst, base + (size_t)k * block, esz);
            else
                memcpy(dst, base + (size_t)k * block, block);
            dst += block;
        }
    }
    return NF_OK;
}

/* ---- GatherElements: out[i] = data[i with i[axis] = indices[i]] ---------------- */
int nf_op_gather_elements_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    return gather_prepare(m, n, err);
}

int nf_op_gather_elements_infer(nf_model *m, nf_node *n, nf_err *err)
{
    const gather_priv *p = n->priv;
    const nf_value *x = nf_in(m, n, 0), *ind = nf_in(m, n, 1);
    int rc = gather_check(m, n, x, ind, err);
    if (rc != NF_OK)
        return rc;
    /* indices may be smaller than data on the other axes (as torch.gather
     * and onnxruntime allow), never larger */
    int ok = ind->n_dims == x->n_dims;
    for (int d = 0; ok && d < x->n_dims; d++)
        ok = d == p->axis || ind->dims[d] <= x->dims[d];
    if (!ok) {
        char a[160], b[160];
        return nf_node_err(err, nf__shape_code(m, NF_ESHAPE), n, "input 'indices' has shape %s, input 'data' %s",
                           nf__shape_str(a, sizeof a, ind->n_dims, ind->dims),
                           nf__shape_str(b, sizeof b, x->n_dims, x->dims));
    }
    return nf__shape_set(m, n, 0, x->dtype, ind->n_dims, ind->dims, err);
}

int nf_op_gather_elements_run(nf_model *m, nf_node *n, nf_err *err)
{
    const gather_priv *p = n->priv;
    const nf_value *x = nf_in(m, n, 0), *ind = nf_in(m, n, 1);
    nf_value *y = nf_out(m, n, 0);
    int r = x->n_dims, axis = p->axis;
    int64_t size = x->dims[axis];
    int rc = check_indices(m, n, ind, axis, size, err);
    if (rc != NF_OK || y->size == 0)
        return rc;
    /* y is not empty, so no axis of x is (indices are in range): the
     * strides below are at most x->size */
    size_t esz = nf_dtype_size(x->dtype);
    int64_t st[NF_MAX_DIMS], idx[NF_MAX_DIMS] = {0}, s = 1;
    for (int d = r - 1; d >= 0; d--) {
        st[d] = s;
        s *= x->dims[d];
    }
    /* base: the data offset of the output position without its axis term */
    int64_t base = 0;
    char *dst = y->data;
    const char *src = x->data;
    for (int64_t e = 0; e < y->size; e++) {
        int64_t k = nf__shape_int_at(ind, e);
        if (k < 0)
            k += size;
        nf__shape_copy_elem(dst + (size_t)e * esz, src + (size_t)(base + k * st[axis]) * esz, esz);
        for (int d = r - 1; d >= 0; d--) {
            if (d != axis)
                base += st[d];
            if (++idx[d] < ind->dims[d])
                break;
            if (d != axis)
                base -= st[d] * ind->dims[d];
            idx[d] = 0;
        }
    }
    return NF_OK;
}

/* ---- GatherND: out[b.., i..] = data[b.., indices[b.., i.., 0..k-1], ..] ----------
 * The first batch_dims axes (12+; 0 in 11) of data and indices pair up; the
 * last axis of indices holds k coordinates into the next k axes of data,
 * and the rest of data is copied whole (ONNX GatherND-13). */
typedef struct gather_nd_priv {
    int b, k; /* this run: batch_dims, coordinates per index */
} gather_nd_priv;

int nf_op_gather_nd_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    if (n->n_in < 2 || n->in[0] < 0 || n->in[1] < 0 || n->n_out < 1 || n->out[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs inputs 'data' and 'indices' and an output");
    int64_t b = nf_attr_int(n, "batch_dims", 0);
    if (b < 0 || b >= NF_MAX_DIMS)
        return nf_node_err(err, NF_EMODEL, n, "attribute 'batch_dims' is %lld", (long long)b);
    n->priv = nf_arena_alloc(&m->arena, sizeof(gather_nd_priv));
    if (n->priv == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    ((gather_nd_priv *)n->priv)->b = (int)b;
    return NF_OK;
}

int nf_op_gather_nd_infer(nf_model *m, nf_node *n, nf_err *err)
{
    gather_nd_priv *p = n->priv;
    const nf_value *x = nf_in(m, n, 0), *ind = nf_in(m, n, 1);
    int r = x->n_dims, q = ind->n_dims, b = p->b;
    char a[160], c[160];
    if (ind->dtype != NF_DT_INT64)
        return nf_node_err(err, NF_EMODEL, n, "input 'indices' is %s, expected int64", nf_dtype_name(ind->dtype));
    if (r < 1 || q < 1 || b >= q || b >= r)
        return nf_node_err(err, nf__shape_code(m, NF_ESHAPE), n,
                           "input 'data' has rank %d, input 'indices' rank %d: both need more than batch_dims = %d axes", r,
                           q, b);
    int64_t k = ind->dims[q - 1];
    int ok = k >= 1 && k <= r - b;
    for (int d = 0; ok && d < b; d++)
        ok = ind->dims[d] == x->dims[d];
    if (!ok)
        return nf_node_err(err, nf__shape_code(m, NF_ESHAPE), n, "input 'indices' has shape %s, input 'data' %s",
                           nf__shape_str(a, sizeof a, q, ind->dims), nf__shape_str(c, sizeof c, r, x->dims));
    p->k = (int)k;
    int nd = q - 1 + r - b - p->k;
    if (nd > NF_MAX_DIMS)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "output rank %d, at most %d supported", nd, NF_MAX_DIMS);
    int64_t dims[NF_MAX_DIMS];
    int j = 0;
    for (int d = 0; d < q - 1; d++)
        dims[j++] = ind->dims[d];
    for (int d = b + p->k; d < r; d++)
        dims[j++] = x->dims[d];
    return nf__shape_set(m, n, 0, x->dtype, nd, dims, err);
}

int nf_op_gather_nd_run(nf_model *m, nf_node *n, nf_err *err)
{
    const gather_nd_priv *p = n->priv;
    const nf_value *x = nf_in(m, n, 0), *ind = nf_in(m, n, 1);
    nf_value *y = nf_out(m, n, 0);
    int r = x->n_dims, q = ind->n_dims, b = p->b, k = p->k;
    const int64_t *idx = ind->data;
    int64_t tuples = ind->size / k; /* k >= 1; ind->size is a multiple of k */
    for (int64_t t = 0; t < tuples; t++)
        for (int j = 0; j < k; j++) {
            int64_t v = idx[t * k + j], s = x->dims[b + j];
            if (v < -s || v >= s)
                return nf_node_err(err, nf__shape_code(m, NF_EINVAL), n,
                                   "index %lld is out of range for axis %d of size %lld", (long long)v, b + j,
                                   (long long)s);
        }
    if (y->size == 0)
        return NF_OK;
    /* y non-empty: every product below is at most the size of x */
    size_t esz = nf_dtype_size(x->dtype);
    int64_t batches = nf__shape_prod(ind->dims, 0, b), per = nf__shape_prod(ind->dims, b, q - 1);
    int64_t batch_stride = nf__shape_prod(x->dims, b, r), slice = nf__shape_prod(x->dims, b + k, r);
    int64_t st[NF_MAX_DIMS];
    for (int j = 0; j < k; j++)
        st[j] = nf__shape_prod(x->dims, b + j + 1, r);
    size_t block = (size_t)slice * esz;
    const char *src = x->data;
    char *dst = y->data;
    for (int64_t bi = 0; bi < batches; bi++) {
        for (int64_t t = 0; t < per; t++) {
            const int64_t *c = idx + (bi * per + t) * k;
            int64_t off = bi * batch_stride;
            for (int j = 0; j < k; j++)
                off += (c[j] < 0 ? c[j] + x->dims[b + j] : c[j]) * st[j];
            memcpy(dst, src + (size_t)off * esz, block);
            dst += block;
        }
    }
    return NF_OK;
}
