/*
 * graph.c: the IR after loading: topological order, operator lookup and
 * preparation, constant folding, value lifetimes, and the accessors the
 * public header promises.
 *
 * Invariant after nf__graph_finish: m->nodes holds only the nodes a run
 * executes, in an order where every input is produced before it is read;
 * every node has def and run set; last_use of every value is the index of
 * its last reader (n_nodes for graph outputs).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nf_impl.h"

/* ---- attributes -------------------------------------------------------- */
const nf_attr *nf_attr_get(const nf_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0)
            return &n->attrs[i];
    return NULL;
}

int64_t nf_attr_int(const nf_node *n, const char *name, int64_t def)
{
    const nf_attr *a = nf_attr_get(n, name);
    return a ? a->i : def;
}

float nf_attr_float(const nf_node *n, const char *name, float def)
{
    const nf_attr *a = nf_attr_get(n, name);
    return a ? a->f : def;
}

const char *nf_attr_str(const nf_node *n, const char *name, const char *def)
{
    const nf_attr *a = nf_attr_get(n, name);
    return (a && a->s) ? a->s : def;
}

int64_t nf_attr_ints(const nf_node *n, const char *name, const int64_t **out)
{
    const nf_attr *a = nf_attr_get(n, name);
    *out = a ? a->ints : NULL;
    return (a && a->ints) ? a->n : 0;
}

int64_t nf_attr_floats(const nf_node *n, const char *name, const float **out)
{
    const nf_attr *a = nf_attr_get(n, name);
    *out = a ? a->floats : NULL;
    return (a && a->floats) ? a->n : 0;
}

int64_t nf_attr_strings(const nf_node *n, const char *name, char *const **out)
{
    const nf_attr *a = nf_attr_get(n, name);
    *out = a ? a->strings : NULL;
    return (a && a->strings) ? a->n : 0;
}

/* ---- values -------------------------------------------------------------- */
int64_t nf_dims_count(int n_dims, const int64_t *dims)
{
    int64_t c = 1;
    for (int i = 0; i < n_dims; i++)
        c *= dims[i];
    return c;
}

int nf_value_set(nf_value *v, int dtype, int n_dims, const int64_t *dims, nf_err *err)
{
    if (n_dims < 0 || n_dims > NF_MAX_DIMS)
        return nf_err_set(err, NF_EUNSUPPORTED, "tensor '%s': rank %d, at most %d supported", v->name, n_dims,
                          NF_MAX_DIMS);
    size_t esz = nf_dtype_size(dtype);
    if (esz == 0)
        return nf_err_set(err, NF_EUNSUPPORTED, "tensor '%s': element type %d is not supported", v->name, dtype);
    /* 2^40 bytes is far beyond any model we would run and keeps every
     * later size_t product of a count and an element size exact. Checked
     * by multiplying, not dividing: every node's infer calls this on every
     * run, and a 64-bit division costs more than a multiply. */
    const int64_t limit = (int64_t)1 << 40;
    int64_t c = 1;
    for (int i = 0; i < n_dims; i++) {
        if (dims[i] < 0)
            return nf_err_set(err, NF_EMODEL, "tensor '%s': dimension %d is negative (%lld)", v->name, i,
                              (long long)dims[i]);
        int64_t cd;
        if (dims[i] > limit || __builtin_mul_overflow(c, dims[i], &cd) || cd > limit)
            return nf_err_set(err, NF_EMODEL, "tensor '%s': shape too large (dimension %d is %lld)", v->name, i,
                              (long long)dims[i]);
        c = cd;
    }
    if (c * (int64_t)esz > limit) /* c <= 2^40, esz <= 8: no overflow */
        return nf_err_set(err, NF_EMODEL, "tensor '%s': %lld elements is too large", v->name, (long long)c);
    v->dtype = dtype;
    v->n_dims = n_dims;
    for (int i = 0; i < n_dims; i++)
        v->dims[i] = dims[i];
    v->size = c;
    v->shape_known = true;
    return NF_OK;
}

double nf_get_f64(const void *p, int dtype, int64_t i)
{
    switch (dtype) {
    case NF_DT_FLOAT: return ((const float *)p)[i];
    case NF_DT_DOUBLE: return ((const double *)p)[i];
    case NF_DT_INT64: return (double)((const int64_t *)p)[i];
    case NF_DT_INT32: return ((const int32_t *)p)[i];
    case NF_DT_INT16: return ((const int16_t *)p)[i];
    case NF_DT_INT8: return ((const int8_t *)p)[i];
    case NF_DT_UINT8: return ((const uint8_t *)p)[i];
    case NF_DT_UINT16: return ((const uint16_t *)p)[i];
    case NF_DT_UINT32: return ((const uint32_t *)p)[i];
    case NF_DT_UINT64: return (double)((const uint64_t *)p)[i];
    case NF_DT_BOOL: return ((const uint8_t *)p)[i] ? 1.0 : 0.0;
    default: return NAN;
    }
}

void nf_set_f64(void *p, int dtype, int64_t i, double v)
{
    switch (dtype) {
    case NF_DT_FLOAT: ((float *)p)[i] = (float)v; break;
    case NF_DT_DOUBLE: ((double *)p)[i] = v; break;
    case NF_DT_INT64: ((int64_t *)p)[i] = (int64_t)v; break;
    case NF_DT_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
    case NF_DT_INT16: ((int16_t *)p)[i] = (int16_t)v; break;
    case NF_DT_INT8: ((int8_t *)p)[i] = (int8_t)v; break;
    case NF_DT_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case NF_DT_UINT16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case NF_DT_UINT32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case NF_DT_UINT64: ((uint64_t *)p)[i] = (uint64_t)v; break;
    case NF_DT_BOOL: ((uint8_t *)p)[i] = v != 0.0; break;
    default: break;
    }
}

/* ---- topological order (Kahn) -------------------------------------------- */
static int topo_sort(nf_model *m, nf_err *err)
{
    int nn = m->n_nodes;
    if (nn == 0)
        return NF_OK;
    int *indeg = calloc((size_t)nn, sizeof(int));
    int *order = calloc((size_t)nn, sizeof(int));
    /* consumers as a CSR list: value -> nodes reading it */
    int *cnt = calloc((size_t)m->n_values + 1, sizeof(int));
    int rc = NF_OK;
    int *adj = NULL;
    nf_node *sorted = NULL;
    if (!indeg || !order || !cnt) {
        rc = nf_err_set(err, NF_ENOMEM, "out of memory");
        goto out;
    }
    int64_t total = 0;
    for (int k = 0; k < nn; k++)
        for (int j = 0; j < m->nodes[k].n_in; j++) {
            int v = m->nodes[k].in[j];
            if (v >= 0 && m->values[v].producer >= 0) {
                indeg[k]++;
                cnt[v + 1]++;
                total++;
            }
        }
    for (int v = 0; v < m->n_values; v++)
        cnt[v + 1] += cnt[v];
    adj = malloc((size_t)(total + 1) * sizeof(int));
    int *fill = calloc((size_t)m->n_values + 1, sizeof(int));
    if (adj == NULL || fill == NULL) {
        free(fill);
        rc = nf_err_set(err, NF_ENOMEM, "out of memory");
        goto out;
    }
    for (int k = 0; k < nn; k++)
        for (int j = 0; j < m->nodes[k].n_in; j++) {
            int v = m->nodes[k].in[j];
            if (v >= 0 && m->values[v].producer >= 0)
                adj[cnt[v] + fill[v]++] = k;
        }
    free(fill);
    /* a queue in file order: keeps the file's order when it is already
     * topological, as ONNX requires */
    int head = 0, tail = 0;
    for (int k = 0; k < nn; k++)
        if (indeg[k] == 0)
            order[tail++] = k;
    while (head < tail) {
        int k = order[head++];
        for (int j = 0; j < m->nodes[k].n_out; j++) {
            int v = m->nodes[k].out[j];
            if (v < 0)
                continue;
            for (int c = cnt[v]; c < cnt[v + 1]; c++)
                if (--indeg[adj[c]] == 0)
                    order[tail++] = adj[c];
        }
    }
    if (tail < nn) {
        for (int k = 0; k < nn; k++)
            if (indeg[k] > 0) {
                rc = nf_node_err(err, NF_EMODEL, &m->nodes[k], "is part of a cycle (its inputs depend on its own outputs)");
                goto out;
            }
    }
    sorted = malloc((size_t)(unsigned)nn * sizeof(nf_node));
    if (sorted == NULL) {
        rc = nf_err_set(err, NF_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < nn; i++)
        sorted[i] = m->nodes[order[i]];
    memcpy(m->nodes, sorted, (size_t)nn * sizeof(nf_node));
out:
    free(sorted);
    free(adj);
    free(indeg);
    free(order);
    free(cnt);
    return rc;
}

static void index_values(nf_model *m)
{
    for (int v = 0; v < m->n_values; v++) {
        m->values[v].last_use = -1;
        if (m->values[v].kind == NF_V_INTER)
            m->values[v].producer = -1;
    }
    for (int k = 0; k < m->n_nodes; k++) {
        nf_node *n = &m->nodes[k];
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] >= 0)
                m->values[n->in[j]].last_use = k;
        for (int j = 0; j < n->n_out; j++)
            if (n->out[j] >= 0)
                m->values[n->out[j]].producer = k;
    }
    for (int i = 0; i < m->n_outputs; i++)
        m->values[m->outputs[i]].last_use = m->n_nodes;
}

/* Finds every node's operator; one message lists all that are missing. */
static int find_ops(nf_model *m, nf_err *err)
{
    char missing[400] = "";
    size_t used = 0;
    int n_missing = 0;
    const nf_node *first = NULL;
    for (int k = 0; k < m->n_nodes; k++) {
        nf_node *n = &m->nodes[k];
        if (n->opset < 0) {
            return nf_node_err(err, NF_EUNSUPPORTED, n, "domain '%s' is not imported by the model or not supported",
                               n->domain[0] ? n->domain : "ai.onnx");
        }
        int near = 0;
        n->def = nf__op_find(n->domain, n->op, n->opset, &near);
        if (n->def != NULL) {
            n->run = n->def->run;
            continue;
        }
        if (n_missing++ == 0)
            first = n;
        if (used < sizeof missing - 1) {
            int w = snprintf(missing + used, sizeof missing - used, "%s%s%s%s (node '%s', opset %d%s)",
                             used ? ", " : "", n->domain, n->domain[0] ? "." : "", n->op, n->name, n->opset,
                             near ? "; other opsets supported" : "");
            used += (w > 0) ? (size_t)w : 0;
            if (used >= sizeof missing)
                used = sizeof missing - 1;
        }
    }
    if (n_missing == 0)
        return NF_OK;
    (void)first;
    return nf_err_set(err, NF_EUNSUPPORTED, "%d node%s with unsupported operators: %s", n_missing,
                      n_missing > 1 ? "s" : "", missing);
}

/* Constant folding: a node all of whose inputs are constants is run once
 * now, its outputs become constants in the model arena, and it leaves the
 * run list. Shape subgraphs on fixed dimensions and Constant nodes go. */
static int fold_constants(nf_model *m, nf_err *err)
{
    int kept = 0;
    m->folding = true;
    for (int k = 0; k < m->n_nodes; k++) {
        nf_node *n = &m->nodes[k];
        bool all_const = true;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] >= 0 && m->values[n->in[j]].kind != NF_V_CONST)
                all_const = false;
        if (!all_const) {
            m->nodes[kept++] = *n;
            continue;
        }
        int rc = n->def->infer(m, n, err);
        if (rc != NF_OK)
            return m->folding = false, rc;
        for (int j = 0; j < n->n_out; j++) {
            nf_value *v = nf_out(m, n, j);
            if (v == NULL)
                continue;
            v->data = nf_arena_alloc(&m->arena, (size_t)v->size * nf_dtype_size(v->dtype));
            if (v->data == NULL)
                return nf_err_set(err, NF_ENOMEM, "out of memory folding node '%s'", n->name);
        }
        n->scratch = n->scratch_bytes ? nf_arena_alloc(&m->arena, n->scratch_bytes) : NULL;
        if (n->scratch_bytes && n->scratch == NULL)
            return nf_err_set(err, NF_ENOMEM, "out of memory folding node '%s'", n->name);
        rc = n->run(m, n, err);
        if (rc != NF_OK)
            return m->folding = false, rc;
        for (int j = 0; j < n->n_out; j++) {
            nf_value *v = nf_out(m, n, j);
            if (v != NULL) {
                v->kind = NF_V_CONST;
                v->producer = -1;
            }
        }
    }
    m->n_nodes = kept;
    m->folding = false;
    return NF_OK;
}

/* The classifier kernels record the value indices of their label and score
 * outputs; map them to graph outputs, following a chain of single-output
 * nodes (Normalizer after a one-vs-rest LinearClassifier, a Cast, ...). */
static int graph_output_of(nf_model *m, int v)
{
    for (int hop = 0; v >= 0 && hop < 8; hop++) {
        for (int i = 0; i < m->n_outputs; i++)
            if (m->outputs[i] == v)
                return i;
        int next = -1;
        for (int k = 0; k < m->n_nodes && next < 0; k++) {
            nf_node *n = &m->nodes[k];
            if (n->n_in >= 1 && n->in[0] == v && n->n_out == 1)
                next = n->out[0];
        }
        v = next;
    }
    return -1;
}

int nf__graph_finish(nf_model *m, nf_err *err)
{
    int rc = topo_sort(m, err);
    if (rc != NF_OK)
        return rc;
    rc = find_ops(m, err);
    if (rc != NF_OK)
        return rc;
    m->classes.label_output = -1;
    m->classes.score_output = -1;
    for (int k = 0; k < m->n_nodes; k++) {
        nf_node *n = &m->nodes[k];
        if (n->def->prepare != NULL && (rc = n->def->prepare(m, n, err)) != NF_OK)
            return rc;
    }
    index_values(m);
    rc = fold_constants(m, err);
    if (rc != NF_OK)
        return rc;
    index_values(m);
    if (m->classes.n_labels > 0) {
        int lo = m->classes.label_output, so = m->classes.score_output;
        m->classes.label_output = graph_output_of(m, lo);
        m->classes.score_output = graph_output_of(m, so);
        if (m->classes.label_output < 0)
            m->classes.n_labels = 0; /* labels not exposed: not a classifier to callers */
    }
    /* public view of inputs and outputs */
    for (int i = 0; i < m->n_inputs; i++) {
        const nf_value *v = &m->values[m->inputs[i]];
        nf_tensor *t = &m->in_info[i];
        t->name = v->name;
        t->dtype = v->decl_dtype;
        t->n_dims = v->decl_n_dims < 0 ? 0 : v->decl_n_dims;
        for (int d = 0; d < t->n_dims; d++)
            t->dims[d] = v->decl_dims[d];
    }
    for (int i = 0; i < m->n_outputs; i++) {
        const nf_value *v = &m->values[m->outputs[i]];
        nf_tensor *t = &m->out_info[i];
        t->name = v->name;
        t->dtype = v->decl_dtype;
        t->n_dims = v->decl_n_dims < 0 ? 0 : v->decl_n_dims;
        for (int d = 0; d < t->n_dims; d++)
            t->dims[d] = v->decl_dims[d];
        if (v->kind == NF_V_CONST) { /* folded: its real type is known */
            t->dtype = v->dtype;
            t->n_dims = v->n_dims;
            for (int d = 0; d < t->n_dims; d++)
                t->dims[d] = v->dims[d];
        }
    }
    return NF_OK;
}

/* ---- public accessors ------------------------------------------------------ */
int nf_model_n_inputs(const nf_model *m) { return m->n_inputs; }
int nf_model_n_outputs(const nf_model *m) { return m->n_outputs; }

const nf_tensor *nf_model_input(const nf_model *m, int i)
{
    return (i >= 0 && i < m->n_inputs) ? &m->in_info[i] : NULL;
}

const nf_tensor *nf_model_output(const nf_model *m, int i)
{
    return (i >= 0 && i < m->n_outputs) ? &m->out_info[i] : NULL;
}

const char *nf_model_meta(const nf_model *m, const char *key)
{
    for (int i = 0; i < m->n_meta; i++)
        if (strcmp(m->meta_keys[i], key) == 0)
            return m->meta_vals[i];
    if (strcmp(key, "model_version") == 0)
        return nf_model_meta(m, "onnx_model_version");
    return NULL;
}

void nf_model_classes(const nf_model *m, nf_classes *out)
{
    *out = m->classes;
}

void nf_model_free(nf_model *m)
{
    if (m == NULL)
        return;
    nf__plans_free(m);
    nf_arena_fini(&m->plan_arena);
    nf_arena_fini(&m->arena);
    free(m);
}
