/*
 * nf_impl.h: the core's internal interfaces: arenas, the graph IR, the
 * operator table and the helpers kernels use. Not installed, not seen by
 * fcgi/.
 *
 * Ownership: everything reachable from an nf_model (values, nodes,
 * attributes, constant data, kernel state) lives in the model arena and is
 * freed with the model. Activation data lives in the run buffer planned by
 * plan.c; a run allocates nothing once its input shapes have been seen.
 */
#ifndef NF_IMPL_H
#define NF_IMPL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nf.h"

#define NF_ALIGN 64

/* ---- arena (arena.c) ----------------------------------------------------
 * Bump allocation from a list of blocks; freed all at once. Memory is
 * aligned to NF_ALIGN and zeroed. */
typedef struct nf_arena_block nf_arena_block;
typedef struct nf_arena {
    nf_arena_block *head;
    size_t used_total; /* bytes handed out */
} nf_arena;

void *nf_arena_alloc(nf_arena *a, size_t size);
char *nf_arena_strdup(nf_arena *a, const char *s);
char *nf_arena_strndup(nf_arena *a, const char *s, size_t n);
void nf_arena_fini(nf_arena *a);

/* ---- graph IR (graph.c) ------------------------------------------------- */
enum {
    NF_V_INTER = 0, /* produced by a node; data in the run buffer */
    NF_V_CONST = 1, /* initializer, Constant or folded; data in the model arena */
    NF_V_INPUT = 2  /* graph input; data points at the caller's tensor */
};

typedef struct nf_value {
    char *name;          /* owned by model arena */
    int dtype;
    int n_dims;
    int64_t dims[NF_MAX_DIMS];
    int64_t size;        /* element count, product of dims */
    void *data;          /* see kind; strings: char ** */
    int kind;            /* NF_V_* */
    bool is_output;      /* a graph output */
    bool shape_known;    /* dims valid (set by infer or at load) */
    int producer;        /* node index, -1 for inputs and constants */
    int last_use;        /* last node index that reads it */
    /* declared type from graph input/output/value_info (-1 = dynamic) */
    int decl_dtype;
    int decl_n_dims;     /* -1 when no shape was declared */
    int64_t decl_dims[NF_MAX_DIMS];
} nf_value;

typedef struct nf_attr {
    char *name;
    int type;            /* onnx AttributeProto.AttributeType */
    int64_t i;
    float f;
    char *s;             /* NUL-terminated copy */
    size_t s_len;
    int64_t n;           /* element count of ints/floats/strings */
    int64_t *ints;
    float *floats;
    char **strings;
    nf_value *t;         /* tensor attribute (a private value, data set) */
} nf_attr;

struct nf_opdef;
struct nf_model;
struct nf_node;

typedef int (*nf_node_fn)(struct nf_model *m, struct nf_node *n, nf_err *err);

typedef struct nf_node {
    char *name;          /* node name, or "<op>#<index>" if the file had none */
    char *op;
    char *domain;        /* "" for ai.onnx, "ai.onnx.ml" */
    int opset;           /* opset of its domain imported by the model */
    int n_in, n_out;
    int *in, *out;       /* value indices; -1 = optional input/output absent */
    int n_attrs;
    nf_attr *attrs;
    const struct nf_opdef *def;
    nf_node_fn run;      /* chosen at prepare; default def->run */
    void *priv;          /* kernel state, model arena */
    size_t scratch_bytes; /* set by infer: scratch the run needs */
    void *scratch;       /* set by the executor before run */
} nf_node;

/* One operator-table entry (optab.c). since_min..since_max is the range of
 * opset versions whose semantics the kernel implements. */
typedef struct nf_opdef {
    const char *domain;
    const char *op;
    int since_min, since_max;
    /* once at load: check attributes/inputs, build n->priv, pick n->run */
    nf_node_fn prepare;
    /* every run before `run` (and at load when shapes are known): set
     * output dtypes and dims from input dims (and from input data when an
     * input is a shape), set n->scratch_bytes. Must not allocate. */
    nf_node_fn infer;
    nf_node_fn run;
} nf_opdef;

const nf_opdef *nf__op_find(const char *domain, const char *op, int opset, int *near_opset);

/* ---- the model ---------------------------------------------------------- */
typedef struct nf_plan nf_plan;

struct nf_model {
    nf_arena arena;
    char *path;
    nf_opts opts;

    int n_values;
    nf_value *values;
    int n_nodes;
    nf_node *nodes;      /* topological order; folded nodes removed */
    int n_inputs, n_outputs;
    int *inputs, *outputs; /* value indices */
    nf_tensor *in_info, *out_info; /* public view of declared types */

    int n_meta;
    char **meta_keys, **meta_vals;
    int opset_onnx, opset_ml;

    nf_classes classes;

    /* execution state (plan.c) */
    nf_plan *plans;      /* cached plans by input shapes */
    size_t n_plans;
    size_t plan_clock;
    void *run_buf;
    size_t run_cap;
    nf_arena plan_arena; /* first run of a new shape: bump allocations */
    int inited_threads;
    bool folding;        /* fold_constants is running kernels at load */
};

/* ---- helpers for kernels (graph.c) -------------------------------------- */
static inline nf_value *nf_in(nf_model *m, nf_node *n, int i)
{
    return (i < n->n_in && n->in[i] >= 0) ? &m->values[n->in[i]] : NULL;
}
static inline nf_value *nf_out(nf_model *m, nf_node *n, int i)
{
    return (i < n->n_out && n->out[i] >= 0) ? &m->values[n->out[i]] : NULL;
}

const nf_attr *nf_attr_get(const nf_node *n, const char *name);
int64_t nf_attr_int(const nf_node *n, const char *name, int64_t def);
float nf_attr_float(const nf_node *n, const char *name, float def);
const char *nf_attr_str(const nf_node *n, const char *name, const char *def);
/* arrays: return element count, 0 if absent; *out = NULL when absent */
int64_t nf_attr_ints(const nf_node *n, const char *name, const int64_t **out);
int64_t nf_attr_floats(const nf_node *n, const char *name, const float **out);
int64_t nf_attr_strings(const nf_node *n, const char *name, char *const **out);

/* Sets dtype and dims; computes size. Fails (NF_EMODEL naming the value)
 * when dims are negative or the product overflows 2^62 bytes. */
int nf_value_set(nf_value *v, int dtype, int n_dims, const int64_t *dims, nf_err *err);
int64_t nf_dims_count(int n_dims, const int64_t *dims);

/* Error helpers that name the node: "node 'x' (Op): ..." */
int nf_node_err(nf_err *err, int code, const nf_node *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

int nf__verr(nf_err *err, int code, const char *fmt, va_list ap);

/* ---- graph.c / plan.c internals ----------------------------------------- */
int nf__graph_finish(nf_model *m, nf_err *err); /* topo sort, prepare, fold */
int nf__run_node(nf_model *m, nf_node *n, nf_err *err);
void nf__plans_free(nf_model *m);
int nf__wire_check(const void *buf, size_t len, nf_err *err);
/* nf__wire_check plus a rewrite: out (len + 16 bytes, separate or exactly
 * buf - 32) gets the same message with runs of unpacked repeated scalars
 * packed, *out_len its size (wire.c). */
int nf__wire_pack(const void *buf, size_t len, void *out, size_t *out_len, nf_err *err);
/* nf__wire_pack moves long runs of an AttributeProto's floats (7), ints (8)
 * and strings (9), packed, into its field 12 (reserved in onnx.proto):
 * protobuf-c keeps that as an unknown field whose first byte names the
 * source field; the loader decodes it (wire.c, onnx_load.c). */
#define NF_WIRE_DETACHED 12u
#define NF_WIRE_ATTR_FLOATS 7u
#define NF_WIRE_ATTR_INTS 8u
#define NF_WIRE_ATTR_STRINGS 9u
/* True when attribute name of a node (domain, op) is read only by its
 * kernel's prepare, never after: the loader lends such INTS / FLOATS from
 * the unpacked message and empties them once prepare is done (ml_trees.c). */
bool nf__attr_prepare_only(const char *domain, const char *op, const char *name);
int nf__tensor_read_pb(const void *buf, size_t len, nf_arena *a, nf_value *v, nf_err *err);

/* A numeric element read as double / written from double (for generic
 * kernels over several dtypes). */
double nf_get_f64(const void *data, int dtype, int64_t i);
float nf_half_to_float(uint16_t h);
uint16_t nf_float_to_half(float f);
void nf_set_f64(void *data, int dtype, int64_t i, double v);

#endif
