/*
 * onnx_load.c: ONNX ModelProto (protobuf-c, generated at build time from
 * the onnx.proto Debian's libonnx-dev ships) to our graph IR.
 *
 * Everything the IR keeps is copied into the model arena, so the unpacked
 * message and the file bytes are freed before nf_model_load returns: the
 * weights are stored once. No kernels here, no HTTP.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nf_impl.h"
#include "onnx.pb-c.h"

typedef Onnx__TensorProto TensorProto;

/* ---- name table: value name -> index, open addressing in the arena ----- */
typedef struct name_map {
    size_t cap; /* power of two */
    int *slots; /* value index + 1, 0 = empty */
    nf_value *values;
} name_map;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

static int map_find(const name_map *mp, const char *name)
{
    for (size_t i = hash_str(name) & (mp->cap - 1);; i = (i + 1) & (mp->cap - 1)) {
        int s = mp->slots[i];
        if (s == 0)
            return -1;
        if (strcmp(mp->values[s - 1].name, name) == 0)
            return s - 1;
    }
}

static void map_put(name_map *mp, int idx)
{
    size_t i = hash_str(mp->values[idx].name) & (mp->cap - 1);
    while (mp->slots[i] != 0)
        i = (i + 1) & (mp->cap - 1);
    mp->slots[i] = idx + 1;
}

/* ---- tensors ------------------------------------------------------------- */

/* Reads external data for t into dst (nbytes). Only files inside dir, by a
 * relative path with no "..", no symlink, are accepted (ONNX
 * ExternalData.md: location is relative to the model's directory). */
static int read_external(const TensorProto *t, const char *dir, void *dst, size_t nbytes,
                         const char *what, nf_err *err)
{
    const char *loc = NULL;
    long long off = 0, len = -1;
    for (size_t i = 0; i < t->n_external_data; i++) {
        const char *k = t->external_data[i]->key, *v = t->external_data[i]->value;
        if (k == NULL || v == NULL)
            continue;
        if (strcmp(k, "location") == 0)
            loc = v;
        else if (strcmp(k, "offset") == 0)
            off = strtoll(v, NULL, 10);
        else if (strcmp(k, "length") == 0)
            len = strtoll(v, NULL, 10);
    }
    if (dir == NULL)
        return nf_err_set(err, NF_EMODEL, "%s: external data is not allowed for a model loaded from memory", what);
    if (loc == NULL || loc[0] == '\0')
        return nf_err_set(err, NF_EMODEL, "%s: external data without a location", what);
    if (loc[0] == '/' || strstr(loc, "..") != NULL)
        return nf_err_set(err, NF_EMODEL, "%s: external data location '%s' is outside the model directory", what, loc);
    if (off < 0 || (len >= 0 && (size_t)len != nbytes))
        return nf_err_set(err, NF_EMODEL, "%s: external data length %lld, expected %zu bytes", what, len, nbytes);
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, loc) >= sizeof path)
        return nf_err_set(err, NF_EMODEL, "%s: external data path too long", what);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return nf_err_set(err, NF_EIO, "%s: external data '%s': %s", what, loc, strerror(errno));
    struct stat st;
    int rc = NF_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (unsigned long long)st.st_size < (unsigned long long)off + nbytes) {
        rc = nf_err_set(err, NF_EMODEL, "%s: external data '%s' is shorter than offset %lld + %zu bytes", what, loc, off, nbytes);
    } else {
        size_t done = 0;
        while (done < nbytes) {
            ssize_t r = pread(fd, (char *)dst + done, nbytes - done, off + (off_t)done);
            if (r <= 0) {
                rc = nf_err_set(err, NF_EIO, "%s: reading external data '%s': %s", what, loc,
                                r < 0 ? strerror(errno) : "unexpected end of file");
                break;
            }
            done += (size_t)r;
        }
    }
    close(fd);
    return rc;
}

#define CHECK_COUNT(n_have)                                                                          \
    do {                                                                                             \
        if ((int64_t)(n_have) != count)                                                              \
            return nf_err_set(err, NF_EMODEL, "%s: has %zu values, its shape needs %lld", what,      \
                              (size_t)(n_have), (long long)count);                                   \
    } while (0)

/* Converts a TensorProto into v (data copied into arena a). what names the
 * tensor in messages. dir: model directory for external data (or NULL). */
static int tensor_convert(const TensorProto *t, nf_arena *a, const char *dir, nf_value *v,
                          const char *what, nf_err *err)
{
    int dtype = t->has_data_type ? t->data_type : NF_DT_UNDEFINED;
    size_t esz = nf_dtype_size(dtype);
    if (esz == 0)
        return nf_err_set(err, NF_EUNSUPPORTED, "%s: data type %d is not supported", what, dtype);
    if (t->n_dims > NF_MAX_DIMS)
        return nf_err_set(err, NF_EUNSUPPORTED, "%s: %zu dimensions, at most %d supported", what, t->n_dims, NF_MAX_DIMS);
    if (t->segment != NULL)
        return nf_err_set(err, NF_EUNSUPPORTED, "%s: segmented tensors are not supported", what);
    nf_err e2;
    if (nf_value_set(v, dtype, (int)t->n_dims, t->dims, &e2) != NF_OK)
        return nf_err_set(err, NF_EMODEL, "%s: %s", what, e2.msg);
    int64_t count = v->size;
    size_t nbytes = (size_t)count * esz;
    v->data = nf_arena_alloc(a, nbytes);
    if (v->data == NULL)
        return nf_err_set(err, NF_ENOMEM, "%s: out of memory for %zu bytes", what, nbytes);
    v->shape_known = true;

    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        if (dtype == NF_DT_STRING)
            return nf_err_set(err, NF_EUNSUPPORTED, "%s: external string data is not supported", what);
        return read_external(t, dir, v->data, nbytes, what, err);
    }
    if (dtype == NF_DT_STRING) {
        CHECK_COUNT(t->n_string_data);
        char **s = v->data;
        for (int64_t i = 0; i < count; i++) {
            s[i] = nf_arena_strndup(a, (const char *)t->string_data[i].data, t->string_data[i].len);
            if (s[i] == NULL)
                return nf_err_set(err, NF_ENOMEM, "%s: out of memory", what);
        }
        return NF_OK;
    }
    if (t->has_raw_data) {
        /* raw_data is little-endian (onnx.proto); so is every host we build for */
        if (t->raw_data.len != nbytes)
            return nf_err_set(err, NF_EMODEL, "%s: raw_data has %zu bytes, shape and type need %zu", what,
                              t->raw_data.len, nbytes);
        if (nbytes)
            memcpy(v->data, t->raw_data.data, nbytes);
        return NF_OK;
    }
    switch (dtype) {
    case NF_DT_FLOAT:
        CHECK_COUNT(t->n_float_data);
        if (nbytes)
            memcpy(v->data, t->float_data, nbytes);
        break;
    case NF_DT_DOUBLE:
        CHECK_COUNT(t->n_double_data);
        if (nbytes)
            memcpy(v->data, t->double_data, nbytes);
        break;
    case NF_DT_INT64:
        CHECK_COUNT(t->n_int64_data);
        if (nbytes)
            memcpy(v->data, t->int64_data, nbytes);
        break;
    case NF_DT_UINT32:
    case NF_DT_UINT64:
        CHECK_COUNT(t->n_uint64_data);
        for (int64_t i = 0; i < count; i++) {
            if (dtype == NF_DT_UINT32)
                ((uint32_t *)v->data)[i] = (uint32_t)t->uint64_data[i];
            else
                ((uint64_t *)v->data)[i] = t->uint64_data[i];
        }
        break;
    default: /* int32, int16, int8, uint16, uint8, bool, float16: in int32_data */
        CHECK_COUNT(t->n_int32_data);
        for (int64_t i = 0; i < count; i++) {
            int32_t x = t->int32_data[i];
            switch (esz) {
            case 4: ((int32_t *)v->data)[i] = x; break;
            case 2: ((uint16_t *)v->data)[i] = (uint16_t)x; break;
            default: ((uint8_t *)v->data)[i] = (uint8_t)x; break;
            }
        }
        break;
    }
    return NF_OK;
}

int nf__tensor_read_pb(const void *buf, size_t len, nf_arena *a, nf_value *v, nf_err *err)
{
    TensorProto *t = onnx__tensor_proto__unpack(NULL, len, buf);
    if (t == NULL)
        return nf_err_set(err, NF_EMODEL, "not a valid TensorProto");
    memset(v, 0, sizeof *v);
    v->name = nf_arena_strdup(a, t->name ? t->name : "");
    int rc = v->name ? tensor_convert(t, a, NULL, v, t->name ? t->name : "tensor", err)
                     : nf_err_set(err, NF_ENOMEM, "out of memory");
    v->kind = NF_V_CONST;
    v->producer = -1;
    onnx__tensor_proto__free_unpacked(t, NULL);
    return rc;
}

/* ---- value infos ---------------------------------------------------------- */

/* Records the declared dtype and shape of a graph input/output. */
static int decl_type(nf_value *v, const Onnx__ValueInfoProto *vi, const char *role, nf_err *err)
{
    v->decl_dtype = NF_DT_UNDEFINED;
    v->decl_n_dims = -1;
    const Onnx__TypeProto *tp = vi->type;
    if (tp == NULL)
        return NF_OK;
    if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return nf_err_set(err, NF_EUNSUPPORTED, "graph %s '%s': only tensor types are supported (sequence, map, optional are not)",
                          role, v->name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type)
        v->decl_dtype = tt->elem_type;
    if (tt->shape != NULL) {
        if (tt->shape->n_dim > NF_MAX_DIMS)
            return nf_err_set(err, NF_EUNSUPPORTED, "graph %s '%s': %zu dimensions, at most %d supported", role,
                              v->name, tt->shape->n_dim, NF_MAX_DIMS);
        v->decl_n_dims = (int)tt->shape->n_dim;
        for (size_t d = 0; d < tt->shape->n_dim; d++) {
            const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
            int64_t x = -1;
            if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
                x = dim->dim_value;
                if (x < 0 || x > INT32_MAX)
                    return nf_err_set(err, NF_EMODEL, "graph %s '%s': dimension %zu is %lld", role, v->name, d,
                                      (long long)x);
            }
            v->decl_dims[d] = x;
        }
    }
    return NF_OK;
}

/* ---- attributes ------------------------------------------------------------ */
static int attr_convert(nf_model *m, const Onnx__AttributeProto *ap, nf_attr *at, const char *node_name,
                        const char *dir, nf_err *err)
{
    nf_arena *a = &m->arena;
    at->name = nf_arena_strdup(a, ap->name ? ap->name : "");
    if (at->name == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    at->type = ap->has_type ? (int)ap->type : 0;
    if (ap->ref_attr_name != NULL && ap->ref_attr_name[0])
        return nf_err_set(err, NF_EUNSUPPORTED, "node '%s': attribute '%s' refers to a function attribute", node_name, at->name);
    switch (at->type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: at->f = ap->f; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: at->i = ap->i; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
        at->s = nf_arena_strndup(a, (const char *)ap->s.data, ap->s.len);
        at->s_len = ap->s.len;
        if (at->s == NULL)
            return nf_err_set(err, NF_ENOMEM, "out of memory");
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
        at->n = (int64_t)ap->n_floats;
        at->floats = nf_arena_alloc(a, ap->n_floats * sizeof(float));
        if (at->floats == NULL)
            return nf_err_set(err, NF_ENOMEM, "out of memory");
        if (ap->n_floats)
            memcpy(at->floats, ap->floats, ap->n_floats * sizeof(float));
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
        at->n = (int64_t)ap->n_ints;
        at->ints = nf_arena_alloc(a, ap->n_ints * sizeof(int64_t));
        if (at->ints == NULL)
            return nf_err_set(err, NF_ENOMEM, "out of memory");
        if (ap->n_ints)
            memcpy(at->ints, ap->ints, ap->n_ints * sizeof(int64_t));
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS:
        at->n = (int64_t)ap->n_strings;
        at->strings = nf_arena_alloc(a, (ap->n_strings + 1) * sizeof(char *));
        if (at->strings == NULL)
            return nf_err_set(err, NF_ENOMEM, "out of memory");
        for (size_t i = 0; i < ap->n_strings; i++) {
            at->strings[i] = nf_arena_strndup(a, (const char *)ap->strings[i].data, ap->strings[i].len);
            if (at->strings[i] == NULL)
                return nf_err_set(err, NF_ENOMEM, "out of memory");
        }
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: {
        if (ap->t == NULL)
            return nf_err_set(err, NF_EMODEL, "node '%s': tensor attribute '%s' has no tensor", node_name, at->name);
        at->t = nf_arena_alloc(a, sizeof(nf_value));
        if (at->t == NULL)
            return nf_err_set(err, NF_ENOMEM, "out of memory");
        char what[300];
        snprintf(what, sizeof what, "node '%s' attribute '%s'", node_name, at->name);
        at->t->name = at->name;
        at->t->kind = NF_V_CONST;
        at->t->producer = -1;
        return tensor_convert(ap->t, a, dir, at->t, what, err);
    }
    default:
        /* graphs (If/Loop/Scan bodies), sparse tensors, type protos: kept
         * by type only; an operator that needs them is not in our table. */
        break;
    }
    return NF_OK;
}

/* ---- the model ----------------------------------------------------------- */
static int opset_of(const Onnx__ModelProto *mp, const char *domain)
{
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const char *d = mp->opset_import[i]->domain ? mp->opset_import[i]->domain : "";
        if (strcmp(d, "ai.onnx") == 0)
            d = "";
        if (strcmp(d, domain) == 0)
            return (int)mp->opset_import[i]->version;
    }
    return -1;
}

static int new_value(nf_model *m, name_map *mp, const char *name, int kind, const char *role, nf_err *err)
{
    if (map_find(mp, name) >= 0)
        return nf_err_set(err, NF_EMODEL, "%s '%s' is defined twice (ONNX graphs are single-assignment)", role, name);
    int idx = m->n_values++;
    nf_value *v = &m->values[idx];
    v->name = nf_arena_strdup(&m->arena, name);
    if (v->name == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    v->kind = kind;
    v->producer = -1;
    v->last_use = -1;
    v->decl_n_dims = -1;
    map_put(mp, idx);
    return idx;
}

static int build_model(nf_model *m, const Onnx__ModelProto *mp, const char *dir, nf_err *err)
{
    nf_arena *a = &m->arena;
    const Onnx__GraphProto *g = mp->graph;
    if (g == NULL)
        return nf_err_set(err, NF_EMODEL, "the model has no graph");
    m->opset_onnx = opset_of(mp, "");
    m->opset_ml = opset_of(mp, "ai.onnx.ml");

    /* metadata */
    m->n_meta = 0;
    size_t n_meta_max = mp->n_metadata_props + 6;
    m->meta_keys = nf_arena_alloc(a, n_meta_max * sizeof(char *));
    m->meta_vals = nf_arena_alloc(a, n_meta_max * sizeof(char *));
    if (!m->meta_keys || !m->meta_vals)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
#define META(k, v)                                                     \
    do {                                                               \
        if ((v) != NULL && (v)[0] != '\0') {                           \
            m->meta_keys[m->n_meta] = nf_arena_strdup(a, (k));         \
            m->meta_vals[m->n_meta] = nf_arena_strdup(a, (v));         \
            if (!m->meta_keys[m->n_meta] || !m->meta_vals[m->n_meta])  \
                return nf_err_set(err, NF_ENOMEM, "out of memory");    \
            m->n_meta++;                                               \
        }                                                              \
    } while (0)
    for (size_t i = 0; i < mp->n_metadata_props; i++)
        if (mp->metadata_props[i]->key != NULL)
            META(mp->metadata_props[i]->key, mp->metadata_props[i]->value);
    META("producer_name", mp->producer_name);
    META("producer_version", mp->producer_version);
    META("graph_name", g->name);
    META("doc_string", mp->doc_string);
    if (mp->has_model_version) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)mp->model_version);
        META("onnx_model_version", buf);
    }
#undef META

    /* values: initializers, inputs, node outputs */
    size_t n_max = g->n_initializer + g->n_input;
    for (size_t i = 0; i < g->n_node; i++)
        n_max += g->node[i]->n_output;
    if (n_max > INT32_MAX / 4 || g->n_node > INT32_MAX / 4)
        return nf_err_set(err, NF_EMODEL, "graph too large");
    m->values = nf_arena_alloc(a, (n_max + 1) * sizeof(nf_value));
    name_map map = {.values = m->values};
    map.cap = 16;
    while (map.cap < 2 * (n_max + 1))
        map.cap <<= 1;
    map.slots = nf_arena_alloc(a, map.cap * sizeof(int));
    if (m->values == NULL || map.slots == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");

    for (size_t i = 0; i < g->n_initializer; i++) {
        const TensorProto *t = g->initializer[i];
        const char *name = t->name ? t->name : "";
        if (name[0] == '\0')
            return nf_err_set(err, NF_EMODEL, "initializer %zu has no name", i);
        int idx = new_value(m, &map, name, NF_V_CONST, "initializer", err);
        if (idx < 0)
            return idx;
        char what[300];
        snprintf(what, sizeof what, "initializer '%s'", name);
        int rc = tensor_convert(t, a, dir, &m->values[idx], what, err);
        if (rc != NF_OK)
            return rc;
    }
    if (g->n_sparse_initializer > 0)
        return nf_err_set(err, NF_EUNSUPPORTED, "sparse initializers are not supported");

    /* graph inputs: those that are also initializers are defaults (IR >= 4)
     * and stay constants, as ONNX Runtime treats them unless overridden */
    m->inputs = nf_arena_alloc(a, (g->n_input + 1) * sizeof(int));
    m->in_info = nf_arena_alloc(a, (g->n_input + 1) * sizeof(nf_tensor));
    if (!m->inputs || !m->in_info)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->n_input; i++) {
        const char *name = g->input[i]->name ? g->input[i]->name : "";
        int idx = map_find(&map, name);
        if (idx >= 0 && m->values[idx].kind == NF_V_CONST)
            continue;
        if (name[0] == '\0')
            return nf_err_set(err, NF_EMODEL, "graph input %zu has no name", i);
        idx = new_value(m, &map, name, NF_V_INPUT, "graph input", err);
        if (idx < 0)
            return idx;
        int rc = decl_type(&m->values[idx], g->input[i], "input", err);
        if (rc != NF_OK)
            return rc;
        if (m->values[idx].decl_dtype == NF_DT_UNDEFINED || nf_dtype_size(m->values[idx].decl_dtype) == 0)
            return nf_err_set(err, NF_EUNSUPPORTED, "graph input '%s': element type %d is not supported", name,
                              m->values[idx].decl_dtype);
        m->inputs[m->n_inputs++] = idx;
    }

    /* nodes */
    m->nodes = nf_arena_alloc(a, (g->n_node + 1) * sizeof(nf_node));
    if (m->nodes == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    for (size_t k = 0; k < g->n_node; k++) {
        const Onnx__NodeProto *np = g->node[k];
        nf_node *n = &m->nodes[k];
        char buf[64];
        const char *op = np->op_type ? np->op_type : "";
        if (np->name != NULL && np->name[0]) {
            n->name = nf_arena_strdup(a, np->name);
        } else {
            snprintf(buf, sizeof buf, "%s#%zu", op, k);
            n->name = nf_arena_strdup(a, buf);
        }
        n->op = nf_arena_strdup(a, op);
        const char *dom = np->domain ? np->domain : "";
        n->domain = nf_arena_strdup(a, strcmp(dom, "ai.onnx") == 0 ? "" : dom);
        n->n_in = (int)np->n_input;
        n->n_out = (int)np->n_output;
        n->in = nf_arena_alloc(a, (np->n_input + 1) * sizeof(int));
        n->out = nf_arena_alloc(a, (np->n_output + 1) * sizeof(int));
        n->n_attrs = (int)np->n_attribute;
        n->attrs = nf_arena_alloc(a, (np->n_attribute + 1) * sizeof(nf_attr));
        if (!n->name || !n->op || !n->domain || !n->in || !n->out || !n->attrs)
            return nf_err_set(err, NF_ENOMEM, "out of memory");
        if (op[0] == '\0')
            return nf_err_set(err, NF_EMODEL, "node %zu ('%s') has no op_type", k, n->name);
        n->opset = opset_of(mp, n->domain);
        for (size_t j = 0; j < np->n_attribute; j++) {
            int rc = attr_convert(m, np->attribute[j], &n->attrs[j], n->name, dir, err);
            if (rc != NF_OK)
                return rc;
        }
        for (size_t j = 0; j < np->n_output; j++) {
            const char *name = np->output[j] ? np->output[j] : "";
            if (name[0] == '\0') {
                n->out[j] = -1; /* optional output not wanted */
                continue;
            }
            char role[128];
            snprintf(role, sizeof role, "output %zu of node '%s'", j, n->name);
            int idx = new_value(m, &map, name, NF_V_INTER, role, err);
            if (idx < 0)
                return idx;
            m->values[idx].producer = (int)k;
            n->out[j] = idx;
        }
    }
    m->n_nodes = (int)g->n_node;
    /* inputs resolved after all outputs exist, so a file whose nodes are
     * out of order still loads; graph.c sorts and finds cycles */
    for (int k = 0; k < m->n_nodes; k++) {
        const Onnx__NodeProto *np = g->node[k];
        nf_node *n = &m->nodes[k];
        for (size_t j = 0; j < np->n_input; j++) {
            const char *name = np->input[j] ? np->input[j] : "";
            if (name[0] == '\0') {
                n->in[j] = -1;
                continue;
            }
            int idx = map_find(&map, name);
            if (idx < 0)
                return nf_node_err(err, NF_EMODEL, n, "input %zu '%s' is not produced by any node, initializer or graph input",
                                   j, name);
            n->in[j] = idx;
        }
    }

    /* graph outputs */
    m->outputs = nf_arena_alloc(a, (g->n_output + 1) * sizeof(int));
    m->out_info = nf_arena_alloc(a, (g->n_output + 1) * sizeof(nf_tensor));
    if (!m->outputs || !m->out_info)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    if (g->n_output == 0)
        return nf_err_set(err, NF_EMODEL, "the graph has no outputs");
    for (size_t i = 0; i < g->n_output; i++) {
        const char *name = g->output[i]->name ? g->output[i]->name : "";
        int idx = map_find(&map, name);
        if (idx < 0)
            return nf_err_set(err, NF_EMODEL, "graph output '%s' is not produced by any node, initializer or input", name);
        nf_value *v = &m->values[idx];
        int rc = decl_type(v, g->output[i], "output", err);
        if (rc != NF_OK)
            return rc;
        v->is_output = true;
        m->outputs[m->n_outputs++] = idx;
    }
    return NF_OK;
}

static void dir_of(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, cap, ".");
    else if (slash == path)
        snprintf(dir, cap, "/");
    else
        snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

/* protobuf-c allocates every repeated field, string and sub-message of
 * the unpacked model separately (a tree model: one string per node mode);
 * a bump allocator makes those allocations a pointer increment and the
 * free one pass over a few large chunks. The unpacked message lives only
 * while build_model copies what it keeps. */
typedef struct pb_chunk {
    struct pb_chunk *next;
    size_t used, cap;
    max_align_t data[];
} pb_chunk;

static void *pb_alloc(void *data, size_t size)
{
    pb_chunk **head = data;
    size = (size + 15) & ~(size_t)15;
    pb_chunk *c = *head;
    if (c == NULL || c->cap - c->used < size) {
        size_t cap = size > (1u << 20) ? size : (1u << 20);
        c = malloc(sizeof *c + cap);
        if (c == NULL)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = *head;
        *head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += size;
    return p;
}

static void pb_free(void *data, void *p)
{
    (void)data;
    (void)p; /* all at once in pb_release */
}

static void pb_release(pb_chunk *c)
{
    while (c != NULL) {
        pb_chunk *next = c->next;
        free(c);
        c = next;
    }
}

static int load_common(const void *buf, size_t len, const char *path, const char *dir, const nf_opts *opts,
                       nf_model **out, nf_err *err)
{
    *out = NULL;
    nf_model *m = calloc(1, sizeof *m);
    if (m == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    if (opts != NULL)
        m->opts = *opts;
    m->path = nf_arena_strdup(&m->arena, path ? path : "<memory>");
    int rc;
    if (m->path == NULL) {
        rc = nf_err_set(err, NF_ENOMEM, "out of memory");
        goto fail;
    }
    rc = nf__wire_check(buf, len, err);
    if (rc != NF_OK)
        goto fail;
    pb_chunk *chunks = NULL;
    ProtobufCAllocator al = {.alloc = pb_alloc, .free = pb_free, .allocator_data = &chunks};
    Onnx__ModelProto *mp = onnx__model_proto__unpack(&al, len, buf);
    if (mp == NULL) {
        pb_release(chunks);
        rc = nf_err_set(err, NF_EMODEL, "not a valid ONNX model (protobuf decoding failed)");
        goto fail;
    }
    rc = build_model(m, mp, dir, err);
    pb_release(chunks);
    if (rc != NF_OK)
        goto fail;
    rc = nf__graph_finish(m, err);
    if (rc != NF_OK)
        goto fail;
    *out = m;
    return NF_OK;
fail:
    nf_model_free(m);
    return rc;
}

int nf_model_load_buffer(const void *buf, size_t len, const char *dir, const nf_opts *opts, nf_model **out,
                         nf_err *err)
{
    return load_common(buf, len, NULL, dir, opts, out, err);
}

int nf_model_load(const char *path, const nf_opts *opts, nf_model **out, nf_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return nf_err_set(err, NF_EIO, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return nf_err_set(err, NF_EIO, "not a regular file");
    }
    /* protobuf's own limit for a message is 2 GB; weights beyond that must
     * be external data */
    if (st.st_size > INT32_MAX) {
        close(fd);
        return nf_err_set(err, NF_EMODEL, "file is %lld bytes, over protobuf's 2 GB message limit", (long long)st.st_size);
    }
    size_t len = (size_t)st.st_size;
    char *buf = malloc(len ? len : 1);
    if (buf == NULL) {
        close(fd);
        return nf_err_set(err, NF_ENOMEM, "out of memory reading %zu bytes", len);
    }
    size_t done = 0;
    while (done < len) {
        ssize_t r = read(fd, buf + done, len - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = errno;
            free(buf);
            close(fd);
            return nf_err_set(err, NF_EIO, "read failed: %s", r < 0 ? strerror(e) : "file shrank while reading");
        }
        done += (size_t)r;
    }
    close(fd);
    if (len == 0) {
        free(buf);
        return nf_err_set(err, NF_EMODEL, "file is empty");
    }
    char dir[PATH_MAX];
    dir_of(path, dir, sizeof dir);
    int rc = load_common(buf, len, path, dir, opts, out, err);
    free(buf);
    return rc;
}
