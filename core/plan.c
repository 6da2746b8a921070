/*
 * plan.c: running a model, and the memory plan that makes a run allocate
 * nothing.
 *
 * The first run with a new set of input shapes is the planning run: each
 * node's infer sets its output shapes (they may depend on values computed
 * by earlier nodes, as torch exports' Shape -> Gather -> Reshape chains
 * do), outputs are bump-allocated, and every activation's size and lifetime
 * [producer, last reader] are recorded. From those a plan assigns each
 * activation an offset in one buffer, reusing the memory of tensors that
 * are dead (greedy by size, as TFLite's and ggml-alloc's planners do). Later
 * runs with the same input shapes only call infer (no allocation) and run
 * the kernels on planned offsets. Plans are cached per input shape set
 * (LRU, opts.max_plans).
 */
#include <stdlib.h>
#include <string.h>

#include "nf_impl.h"

struct nf_plan {
    int64_t *in_dims;   /* concatenated input dims: the cache key */
    int n_key;
    int64_t *offset;    /* per value: byte offset in run_buf, -1 = not planned */
    int64_t *bytes;     /* per value: planned bytes */
    int64_t *scr_off;   /* per node: scratch offset */
    int64_t *scr_bytes; /* per node */
    size_t total;
    size_t used_clock;
};

static void plan_free(nf_plan *p)
{
    free(p->in_dims);
    free(p->offset);
    free(p->bytes);
    free(p->scr_off);
    free(p->scr_bytes);
    memset(p, 0, sizeof *p);
}

void nf__plans_free(nf_model *m)
{
    for (size_t i = 0; i < m->n_plans; i++)
        plan_free(&m->plans[i]);
    free(m->plans);
    m->plans = NULL;
    m->n_plans = 0;
    free(m->run_buf);
    m->run_buf = NULL;
    m->run_cap = 0;
}

size_t nf_model_run_bytes(const nf_model *m)
{
    return m->run_cap;
}

static size_t align_up(size_t x)
{
    return (x + NF_ALIGN - 1) & ~(size_t)(NF_ALIGN - 1);
}

static int key_len(const nf_model *m)
{
    int n = 0;
    for (int i = 0; i < m->n_inputs; i++)
        n += 1 + m->values[m->inputs[i]].n_dims;
    return n;
}

static void key_fill(const nf_model *m, int64_t *key)
{
    int n = 0;
    for (int i = 0; i < m->n_inputs; i++) {
        const nf_value *v = &m->values[m->inputs[i]];
        key[n++] = v->n_dims;
        for (int d = 0; d < v->n_dims; d++)
            key[n++] = v->dims[d];
    }
}

static nf_plan *plan_lookup(nf_model *m)
{
    int n = key_len(m);
    for (size_t i = 0; i < m->n_plans; i++) {
        nf_plan *p = &m->plans[i];
        if (p->n_key != n)
            continue;
        int k = 0, same = 1;
        for (int j = 0; j < m->n_inputs && same; j++) {
            const nf_value *v = &m->values[m->inputs[j]];
            if (p->in_dims[k++] != v->n_dims) {
                same = 0;
                break;
            }
            for (int d = 0; d < v->n_dims; d++)
                if (p->in_dims[k++] != v->dims[d]) {
                    same = 0;
                    break;
                }
        }
        if (same)
            return p;
    }
    return NULL;
}

/* Binds and checks the caller's inputs against the declared types. */
static int bind_inputs(nf_model *m, const nf_tensor *in, nf_err *err)
{
    for (int i = 0; i < m->n_inputs; i++) {
        nf_value *v = &m->values[m->inputs[i]];
        const nf_tensor *t = &in[i];
        if (t->dtype != v->decl_dtype)
            return nf_err_set(err, NF_ESHAPE, "input '%s': type %s, the model expects %s", v->name,
                              nf_dtype_name(t->dtype), nf_dtype_name(v->decl_dtype));
        if (v->decl_n_dims >= 0 && t->n_dims != v->decl_n_dims)
            return nf_err_set(err, NF_ESHAPE, "input '%s': rank %d, the model expects rank %d", v->name, t->n_dims,
                              v->decl_n_dims);
        if (t->n_dims < 0 || t->n_dims > NF_MAX_DIMS)
            return nf_err_set(err, NF_ESHAPE, "input '%s': rank %d is not supported", v->name, t->n_dims);
        for (int d = 0; d < t->n_dims; d++) {
            if (t->dims[d] < 0)
                return nf_err_set(err, NF_ESHAPE, "input '%s': dim %d is negative", v->name, d);
            if (v->decl_n_dims >= 0 && v->decl_dims[d] >= 0 && v->decl_dims[d] != t->dims[d])
                return nf_err_set(err, NF_ESHAPE, "input '%s': dim %d is %lld, the model expects %lld", v->name, d,
                                  (long long)t->dims[d], (long long)v->decl_dims[d]);
        }
        nf_err e2;
        if (nf_value_set(v, t->dtype, t->n_dims, t->dims, &e2) != NF_OK)
            return nf_err_set(err, NF_ESHAPE, "input '%s': %s", v->name, e2.msg);
        if (t->data == NULL && v->size > 0)
            return nf_err_set(err, NF_EINVAL, "input '%s': no data", v->name);
        v->data = t->data;
    }
    return NF_OK;
}

static size_t value_bytes(const nf_value *v)
{
    return (size_t)v->size * nf_dtype_size(v->dtype);
}

/* Greedy by size: place the largest tensors first, each at the lowest
 * offset that does not overlap a placed tensor alive at the same time. */
typedef struct item {
    int64_t bytes;
    int first, last; /* node indices, inclusive */
    int64_t *slot;   /* where the offset goes */
} item;

static int cmp_item(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    return x->first - y->first;
}

static int build_plan(nf_model *m, nf_plan *p, nf_err *err)
{
    int nv = m->n_values, nn = m->n_nodes;
    p->n_key = key_len(m);
    p->in_dims = malloc(sizeof(int64_t) * (size_t)(p->n_key + 1));
    p->offset = malloc(sizeof(int64_t) * (size_t)(nv + 1));
    p->bytes = calloc((size_t)nv + 1, sizeof(int64_t));
    p->scr_off = malloc(sizeof(int64_t) * (size_t)(nn + 1));
    p->scr_bytes = calloc((size_t)nn + 1, sizeof(int64_t));
    item *items = malloc(sizeof(item) * (size_t)(nv + nn + 1));
    int64_t *placed = malloc(sizeof(int64_t) * (size_t)(nv + nn + 1));
    if (!p->in_dims || !p->offset || !p->bytes || !p->scr_off || !p->scr_bytes || !items || !placed) {
        free(items);
        free(placed);
        plan_free(p);
        return nf_err_set(err, NF_ENOMEM, "out of memory planning");
    }
    key_fill(m, p->in_dims);
    int ni = 0;
    for (int v = 0; v < nv; v++) {
        p->offset[v] = -1;
        const nf_value *x = &m->values[v];
        if (x->kind != NF_V_INTER || x->producer < 0)
            continue;
        p->bytes[v] = (int64_t)align_up(value_bytes(x));
        items[ni++] = (item){p->bytes[v], x->producer, x->last_use < x->producer ? x->producer : x->last_use,
                             &p->offset[v]};
    }
    for (int k = 0; k < nn; k++) {
        p->scr_off[k] = -1;
        p->scr_bytes[k] = (int64_t)align_up(m->nodes[k].scratch_bytes);
        if (p->scr_bytes[k] > 0)
            items[ni++] = (item){p->scr_bytes[k], k, k, &p->scr_off[k]};
    }
    qsort(items, (size_t)ni, sizeof(item), cmp_item);
    size_t total = 0;
    for (int i = 0; i < ni; i++) {
        /* candidate offsets: 0 and the end of every overlapping placed item;
         * O(n^2) per plan, done once per input shape set */
        int64_t best = -1;
        for (int c = -1; c < i; c++) {
            int64_t off = 0;
            if (c >= 0) {
                if (items[c].last < items[i].first || items[c].first > items[i].last)
                    continue;
                off = placed[c] + items[c].bytes;
            }
            if (best >= 0 && off >= best)
                continue;
            int ok = 1;
            for (int o = 0; o < i && ok; o++) {
                if (items[o].last < items[i].first || items[o].first > items[i].last)
                    continue;
                if (off < placed[o] + items[o].bytes && placed[o] < off + items[i].bytes)
                    ok = 0;
            }
            if (ok)
                best = off;
        }
        placed[i] = best;
        *items[i].slot = best;
        if ((size_t)(best + items[i].bytes) > total)
            total = (size_t)(best + items[i].bytes);
    }
    p->total = total;
    free(items);
    free(placed);
    return NF_OK;
}

/* The planning run: infer, bump-allocate, run, node by node. */
static int run_planning(nf_model *m, nf_err *err)
{
    nf_arena_fini(&m->plan_arena);
    for (int k = 0; k < m->n_nodes; k++) {
        nf_node *n = &m->nodes[k];
        n->scratch_bytes = 0;
        int rc = n->def->infer(m, n, err);
        if (rc != NF_OK)
            return rc;
        for (int j = 0; j < n->n_out; j++) {
            nf_value *v = nf_out(m, n, j);
            if (v == NULL)
                continue;
            v->data = nf_arena_alloc(&m->plan_arena, value_bytes(v));
            if (v->data == NULL)
                return nf_err_set(err, NF_ENOMEM, "out of memory for '%s'", v->name);
        }
        n->scratch = n->scratch_bytes ? nf_arena_alloc(&m->plan_arena, n->scratch_bytes) : NULL;
        if (n->scratch_bytes && n->scratch == NULL)
            return nf_err_set(err, NF_ENOMEM, "out of memory for scratch of node '%s'", n->name);
        rc = n->run(m, n, err);
        if (rc != NF_OK)
            return rc;
    }
    /* A graph output named as a node's output that its operator does not
     * compute (a Squeeze listed with two outputs: found by fuzz_onnx) was
     * never set: refused, naming the node, instead of answering nothing. */
    for (int i = 0; i < m->n_outputs; i++) {
        const nf_value *v = &m->values[m->outputs[i]];
        if (nf_dtype_size(v->dtype) == 0 && v->producer >= 0) {
            const nf_node *n = &m->nodes[v->producer];
            return nf_node_err(err, NF_EMODEL, n, "graph output '%s' is an output this operator does not compute",
                               v->name);
        }
    }
    return NF_OK;
}

/* A run on a cached plan. Returns 1 when a node's shapes differ from the
 * plan's (data-dependent shapes), so the caller replans. */
static int run_planned(nf_model *m, nf_plan *p, nf_err *err)
{
    char *base = m->run_buf;
    for (int k = 0; k < m->n_nodes; k++) {
        nf_node *n = &m->nodes[k];
        n->scratch_bytes = 0;
        int rc = n->def->infer(m, n, err);
        if (rc != NF_OK)
            return rc;
        for (int j = 0; j < n->n_out; j++) {
            int vi = n->out[j];
            if (vi < 0)
                continue;
            nf_value *v = &m->values[vi];
            if (p->offset[vi] < 0 || (int64_t)value_bytes(v) > p->bytes[vi])
                return 1;
            v->data = base + p->offset[vi];
        }
        if ((int64_t)n->scratch_bytes > p->scr_bytes[k])
            return 1;
        n->scratch = n->scratch_bytes ? base + p->scr_off[k] : NULL;
        rc = n->run(m, n, err);
        if (rc != NF_OK)
            return rc;
    }
    return 0;
}

static nf_plan *plan_slot(nf_model *m)
{
    size_t max = m->opts.max_plans ? m->opts.max_plans : 16;
    if (m->plans == NULL) {
        m->plans = calloc(max, sizeof(nf_plan));
        if (m->plans == NULL)
            return NULL;
    }
    if (m->n_plans < max)
        return &m->plans[m->n_plans++];
    nf_plan *old = &m->plans[0];
    for (size_t i = 1; i < m->n_plans; i++)
        if (m->plans[i].used_clock < old->used_clock)
            old = &m->plans[i];
    plan_free(old);
    return old;
}

int nf_model_run(nf_model *m, const nf_tensor *inputs, nf_tensor *outputs, nf_err *err)
{
    /* the previous run may have been a planning run whose outputs lived in
     * plan_arena; they are no longer promised to anyone */
    if (m->plan_arena.head != NULL)
        nf_arena_fini(&m->plan_arena);
    int rc = bind_inputs(m, inputs, err);
    if (rc != NF_OK)
        return rc;
    nf_plan *p = plan_lookup(m);
    if (p != NULL && p->total <= m->run_cap) {
        p->used_clock = ++m->plan_clock;
        rc = run_planned(m, p, err);
        if (rc < 0)
            return rc;
        if (rc == 0)
            goto done;
        /* shapes moved under a cached plan: drop it and plan anew */
        plan_free(p);
        *p = m->plans[--m->n_plans];
        memset(&m->plans[m->n_plans], 0, sizeof(nf_plan));
    }
    rc = run_planning(m, err);
    if (rc != NF_OK)
        return rc;
    nf_plan *np = plan_slot(m);
    if (np != NULL && build_plan(m, np, err) == NF_OK) {
        np->used_clock = ++m->plan_clock;
        /* a plan of 0 bytes (only empty tensors) still needs a base:
         * run_planned adds offsets to it */
        if (np->total > m->run_cap || m->run_buf == NULL) {
            void *buf = NULL;
            if (posix_memalign(&buf, NF_ALIGN, np->total ? np->total : NF_ALIGN) == 0) {
                free(m->run_buf);
                m->run_buf = buf;
                m->run_cap = np->total;
            }
        }
    }
    /* a failed plan is not an error: the next run plans again */
done:
    for (int i = 0; i < m->n_outputs; i++) {
        const nf_value *v = &m->values[m->outputs[i]];
        nf_tensor *t = &outputs[i];
        t->name = v->name;
        t->dtype = v->dtype;
        t->n_dims = v->n_dims;
        for (int d = 0; d < v->n_dims; d++)
            t->dims[d] = v->dims[d];
        t->data = v->data;
    }
    return NF_OK;
}
