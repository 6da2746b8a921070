/*
 * onnx_load.c: ONNX ModelProto (protobuf-c, generated at build time from
 * the onnx.proto Debian's libonnx-dev ships) to our graph IR.
 *
 * Everything the IR keeps is copied into the model arena, so the unpacked
 * message and the file bytes are freed before nf_model_load returns: the
 * weights are stored once. The exception, attributes only a kernel's
 * prepare reads (a tree ensemble's node arrays), are lent from the
 * unpacked message until prepare is done, then emptied. No kernels here,
 * no HTTP.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
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

/* Opens loc (relative, no "..") under dir following no symlink: every
 * component is opened with O_NOFOLLOW, since O_NOFOLLOW on the whole path
 * guards only the last one and "lnk/passwd", lnk -> /etc, would read
 * outside dir. Returns an fd or -1 with errno set (ELOOP for a symlink). */
static int open_beneath(const char *dir, const char *loc)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    for (const char *s = loc; fd >= 0;) {
        size_t n = strcspn(s, "/");
        bool last = s[n] == '\0';
        if (n == 0 && !last) { /* "a//b" */
            s++;
            continue;
        }
        char part[NAME_MAX + 1];
        if (n > NAME_MAX) {
            close(fd);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(part, s, n);
        part[n] = '\0';
        int next = openat(fd, part, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (last ? 0 : O_DIRECTORY));
        struct stat st;
        if (next < 0 && errno == ENOTDIR && fstatat(fd, part, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
            errno = ELOOP; /* a symlinked directory: say so, as for the last component */
        int e = errno;
        close(fd);
        errno = e;
        if (last)
            return next;
        fd = next;
        s += n + 1;
    }
    return -1;
}

/* Reads external data for t into v->data (nbytes, allocated in a once the
 * file is known to hold them). Only files inside dir, by a relative path
 * with no "..", no symlink, are accepted (ONNX ExternalData.md: location
 * is relative to the model's directory). */
static int read_external(const TensorProto *t, const char *dir, nf_arena *a, nf_value *v, size_t nbytes,
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
    int fd = open_beneath(dir, loc);
    if (fd < 0 && errno == ELOOP)
        return nf_err_set(err, NF_EMODEL, "%s: external data location '%s' is or passes through a symbolic link", what,
                          loc);
    if (fd < 0)
        return nf_err_set(err, NF_EIO, "%s: external data '%s': %s", what, loc, strerror(errno));
    struct stat st;
    int rc = NF_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (unsigned long long)st.st_size < (unsigned long long)off + nbytes) {
        rc = nf_err_set(err, NF_EMODEL, "%s: external data '%s' is shorter than offset %lld + %zu bytes", what, loc, off, nbytes);
    } else if ((v->data = nf_arena_alloc(a, nbytes)) == NULL) {
        rc = nf_err_set(err, NF_ENOMEM, "%s: out of memory for %zu bytes", what, nbytes);
    } else {
        size_t done = 0;
        while (done < nbytes) {
            ssize_t r = pread(fd, (char *)v->data + done, nbytes - done, off + (off_t)done);
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

/* Elements in the typed field that holds dtype's data (onnx.proto,
 * TensorProto: which *_data field carries which type). */
static size_t typed_count(const TensorProto *t, int dtype)
{
    switch (dtype) {
    case NF_DT_STRING: return t->n_string_data;
    case NF_DT_FLOAT: return t->n_float_data;
    case NF_DT_DOUBLE: return t->n_double_data;
    case NF_DT_INT64: return t->n_int64_data;
    case NF_DT_UINT32: case NF_DT_UINT64: return t->n_uint64_data;
    default: return t->n_int32_data; /* int32, int16, int8, uint16, uint8, bool, float16 */
    }
}

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
    v->shape_known = true;

    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        if (dtype == NF_DT_STRING)
            return nf_err_set(err, NF_EUNSUPPORTED, "%s: external string data is not supported", what);
        return read_external(t, dir, a, v, nbytes, what, err);
    }
    /* the data must fit the shape before the shape's bytes are allocated
     * (and zeroed): a 90-byte file declaring [2^31] floats and no data must
     * not cost 8 GB */
    if (dtype != NF_DT_STRING && t->has_raw_data) {
        if (t->raw_data.len != nbytes)
            return nf_err_set(err, NF_EMODEL, "%s: raw_data has %zu bytes, shape and type need %zu", what,
                              t->raw_data.len, nbytes);
    } else {
        CHECK_COUNT(typed_count(t, dtype));
    }
    v->data = nf_arena_alloc(a, nbytes);
    if (v->data == NULL)
        return nf_err_set(err, NF_ENOMEM, "%s: out of memory for %zu bytes", what, nbytes);
    if (dtype == NF_DT_STRING) {
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
        if (nbytes)
            memcpy(v->data, t->raw_data.data, nbytes);
        return NF_OK;
    }
    switch (dtype) {
    case NF_DT_FLOAT:
        if (nbytes)
            memcpy(v->data, t->float_data, nbytes);
        break;
    case NF_DT_DOUBLE:
        if (nbytes)
            memcpy(v->data, t->double_data, nbytes);
        break;
    case NF_DT_INT64:
        if (nbytes)
            memcpy(v->data, t->int64_data, nbytes);
        break;
    case NF_DT_UINT32:
    case NF_DT_UINT64:
        for (int64_t i = 0; i < count; i++) {
            if (dtype == NF_DT_UINT32)
                ((uint32_t *)v->data)[i] = (uint32_t)t->uint64_data[i];
            else
                ((uint64_t *)v->data)[i] = t->uint64_data[i];
        }
        break;
    default: /* int32, int16, int8, uint16, uint8, bool, float16: in int32_data */
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
        /* every dim fits, their product may not: refuse at load a shape
         * no tensor can have (nf_value_set's bound, dynamic dims as 1)
         * rather than at every request */
        int64_t dims[NF_MAX_DIMS];
        for (int d = 0; d < v->decl_n_dims; d++)
            dims[d] = v->decl_dims[d] < 0 ? 1 : v->decl_dims[d];
        nf_value probe = {.name = v->name};
        nf_err e2;
        int dt = nf_dtype_size(v->decl_dtype) ? v->decl_dtype : NF_DT_UINT8;
        if (nf_value_set(&probe, dt, v->decl_n_dims, dims, &e2) != NF_OK)
            return nf_err_set(err, NF_EMODEL, "graph %s '%s': %s", role, v->name, e2.msg);
    }
    return NF_OK;
}

/* ---- attributes ------------------------------------------------------------ */

/* Copies n strings into arena a (NUL-terminated). A string equal to one of
 * the last few distinct ones shares that copy: attribute strings are
 * read-only, and a tree ensemble's nodes_modes is one string per node
 * (50k+) with two or three values, which would otherwise cost an arena
 * allocation (64 bytes, zeroed) each. */
static int strings_copy(nf_arena *a, const ProtobufCBinaryData *src, size_t n, char **out)
{
    enum { N_RECENT = 4 };
    const char *recent[N_RECENT];
    size_t recent_len[N_RECENT], n_recent = 0, next = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = (const char *)src[i].data;
        size_t len = src[i].len, j = 0;
        while (j < n_recent && !(recent_len[j] == len && (len == 0 || memcmp(recent[j], s, len) == 0)))
            j++;
        if (j < n_recent) {
            out[i] = (char *)recent[j];
            continue;
        }
        out[i] = nf_arena_strndup(a, s, len);
        if (out[i] == NULL)
            return NF_ENOMEM;
        recent[next] = out[i];
        recent_len[next] = len;
        next = (next + 1) % N_RECENT;
        if (n_recent < N_RECENT)
            n_recent++;
    }
    return NF_OK;
}

/* Attribute arrays lent from the unpacked message instead of copied (see
 * attr_convert); lent_return empties them before the message is freed. */
typedef struct lent_list {
    void **at; /* nf_attr * */
    size_t n, cap;
    void **own; /* arrays decoded from moved runs for lent attributes: freed with the list */
    size_t n_own, cap_own;
} lent_list;

/* Appends p to the pointer array *v (n used, cap allocated). */
static int ptr_push(void ***v, size_t *n, size_t *cap, void *p)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 16;
        void **g = realloc(*v, c * sizeof *g);
        if (g == NULL)
            return NF_ENOMEM;
        *v = g;
        *cap = c;
    }
    (*v)[(*n)++] = p;
    return NF_OK;
}

static int lent_add(lent_list *l, nf_attr *at)
{
    return ptr_push(&l->at, &l->n, &l->cap, at);
}

static void lent_return(lent_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        nf_attr *at = l->at[i];
        at->n = 0;
        at->ints = NULL;
        at->floats = NULL;
    }
    free(l->at);
    for (size_t i = 0; i < l->n_own; i++)
        free(l->own[i]);
    free(l->own);
    memset(l, 0, sizeof *l);
}

/* nbytes for an attribute array: from the arena, or (lent) malloc'd and
 * kept in l to be freed after prepare */
static void *attr_array(nf_model *m, lent_list *l, size_t nbytes)
{
    if (l == NULL)
        return nf_arena_alloc(&m->arena, nbytes ? nbytes : 1);
    void *a = malloc(nbytes ? nbytes : 1);
    if (a != NULL && ptr_push(&l->own, &l->n_own, &l->cap_own, a) != NF_OK) {
        free(a);
        return NULL;
    }
    return a;
}

/* Whether u is a run of field kind (NF_WIRE_ATTR_*) that nf__wire_pack
 * moved into the attribute's field 12; then *d, *len: its elements.
 * protobuf-c keeps an unknown field's bytes after the tag, the length
 * prefix included: the kind byte follows it. */
static bool moved_chunk(const ProtobufCMessageUnknownField *u, unsigned kind, const uint8_t **d, size_t *len)
{
    if (u->tag != NF_WIRE_DETACHED || u->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
        return false;
    size_t q = 0;
    while (q < u->len && q < 10 && (u->data[q] & 0x80))
        q++;
    q++; /* the last byte of the length */
    if (q >= u->len || u->data[q] != kind)
        return false;
    *d = u->data + q + 1;
    *len = u->len - q - 1;
    return true;
}

static bool has_moved(const Onnx__AttributeProto *ap, unsigned kind)
{
    const uint8_t *d;
    size_t len;
    for (unsigned i = 0; i < ap->base.n_unknown_fields; i++)
        if (moved_chunk(&ap->base.unknown_fields[i], kind, &d, &len))
            return true;
    return false;
}

/* Element count of the moved runs of kind in ap; -1 when one is malformed
 * (cannot happen: nf__wire_pack checked every element it moved). */
static int64_t moved_count(const Onnx__AttributeProto *ap, unsigned kind)
{
    int64_t n = 0;
    for (unsigned i = 0; i < ap->base.n_unknown_fields; i++) {
        const uint8_t *d;
        size_t len;
        if (!moved_chunk(&ap->base.unknown_fields[i], kind, &d, &len))
            continue;
        if (kind == NF_WIRE_ATTR_FLOATS) {
            if (len % 4 != 0)
                return -1;
            n += (int64_t)(len / 4);
        } else if (kind == NF_WIRE_ATTR_INTS) {
            if (len > 0 && (d[len - 1] & 0x80))
                return -1;
            for (size_t k = 0; k < len; k++)
                n += !(d[k] & 0x80);
        } else {
            for (size_t q = 0; q < len; n++) {
                uint64_t sl = 0;
                int shift = 0;
                while (q < len && (d[q] & 0x80) && shift < 63) {
                    sl |= (uint64_t)(d[q++] & 0x7f) << shift;
                    shift += 7;
                }
                if (q >= len)
                    return -1;
                sl |= (uint64_t)d[q++] << shift;
                if (sl > len - q)
                    return -1;
                q += (size_t)sl;
            }
        }
    }
    return n;
}

/* Appends the moved runs of kind to dst (ints: int64_t, floats: float,
 * strings: char * copies in the arena, a repeated value sharing one copy
 * as strings_copy does); moved_count has checked them. */
static int moved_copy(nf_model *m, const Onnx__AttributeProto *ap, unsigned kind, void *dst)
{
    int64_t *di = dst;
    float *df = dst;
    char **ds = dst;
    enum { N_RECENT = 4 };
    const char *recent[N_RECENT];
    size_t recent_len[N_RECENT], n_recent = 0, next = 0;
    for (unsigned i = 0; i < ap->base.n_unknown_fields; i++) {
        const uint8_t *d;
        size_t len;
        if (!moved_chunk(&ap->base.unknown_fields[i], kind, &d, &len))
            continue;
        if (kind == NF_WIRE_ATTR_FLOATS) {
            for (size_t k = 0; k < len; k += 4) { /* fixed32, little-endian on the wire */
                uint32_t b = (uint32_t)d[k] | (uint32_t)d[k + 1] << 8 | (uint32_t)d[k + 2] << 16 | (uint32_t)d[k + 3] << 24;
                memcpy(df++, &b, 4);
            }
        } else if (kind == NF_WIRE_ATTR_INTS) {
            for (size_t q = 0; q < len;) {
                if (d[q] < 0x80) { /* ids and counts: one byte */
                    *di++ = d[q++];
                    continue;
                }
                uint64_t v = 0;
                int shift = 0;
                while (d[q] & 0x80) {
                    if (shift < 64)
                        v |= (uint64_t)(d[q] & 0x7f) << shift;
                    shift += 7;
                    q++;
                }
                if (shift < 64)
                    v |= (uint64_t)d[q] << shift;
                q++;
                *di++ = (int64_t)v; /* int64 varints are two's complement */
            }
        } else {
            for (size_t q = 0; q < len;) {
                uint64_t sl = 0;
                int shift = 0;
                while (d[q] & 0x80) {
                    sl |= (uint64_t)(d[q++] & 0x7f) << shift;
                    shift += 7;
                }
                sl |= (uint64_t)d[q++] << shift;
                const char *str = (const char *)d + q;
                size_t j = 0;
                while (j < n_recent && !(recent_len[j] == sl && (sl == 0 || memcmp(recent[j], str, sl) == 0)))
                    j++;
                if (j < n_recent) {
                    *ds++ = (char *)recent[j];
                } else {
                    char *c = nf_arena_strndup(&m->arena, str, (size_t)sl);
                    if (c == NULL)
                        return NF_ENOMEM;
                    *ds++ = c;
                    recent[next] = c;
                    recent_len[next] = (size_t)sl;
                    next = (next + 1) % N_RECENT;
                    if (n_recent < N_RECENT)
                        n_recent++;
                }
                q += (size_t)sl;
            }
        }
    }
    return NF_OK;
}

/* at (FLOATS or INTS, at->n elements kept by protobuf-c in kept) with
 * the runs of kind moved past protobuf-c appended: the array in *dst,
 * lent like the message's own when lent != NULL. */
static int moved_attach(nf_model *m, const Onnx__AttributeProto *ap, nf_attr *at, unsigned kind, const void *kept,
                        size_t esz, void **dst, const char *node_name, lent_list *lent, nf_err *err)
{
    int64_t moved = moved_count(ap, kind);
    if (moved < 0)
        return nf_err_set(err, NF_EMODEL, "node '%s': attribute '%s': malformed %s", node_name, at->name,
                          kind == NF_WIRE_ATTR_INTS ? "ints" : "floats");
    char *a = attr_array(m, lent, (size_t)(at->n + moved) * esz);
    if (a == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    if (at->n > 0)
        memcpy(a, kept, (size_t)at->n * esz);
    moved_copy(m, ap, kind, a + (size_t)at->n * esz);
    *dst = a;
    at->n += moved;
    if (lent != NULL && lent_add(lent, at) != NF_OK)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    return NF_OK;
}

/* Converts one attribute into at (strings, arrays and tensors copied into
 * the model arena). With lent != NULL the attribute is one only its
 * kernel's prepare reads (nf__attr_prepare_only): INTS and FLOATS then
 * point into the unpacked message, which outlives prepare, and are
 * emptied after it: a tree ensemble's node arrays (megabytes) are read
 * once to build the kernel's own layout and never copied. */
static int attr_convert(nf_model *m, const Onnx__AttributeProto *ap, nf_attr *at, const char *node_name,
                        const char *dir, lent_list *lent, nf_err *err)
{
    nf_arena *a = &m->arena;
    int64_t moved;
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
        if (has_moved(ap, NF_WIRE_ATTR_FLOATS))
            return moved_attach(m, ap, at, NF_WIRE_ATTR_FLOATS, ap->floats, sizeof(float), (void **)&at->floats,
                                node_name, lent, err);
        if (lent != NULL && ap->n_floats > 0) {
            at->floats = ap->floats;
            if (lent_add(lent, at) != NF_OK)
                return nf_err_set(err, NF_ENOMEM, "out of memory");
            break;
        }
        at->floats = nf_arena_alloc(a, ap->n_floats * sizeof(float));
        if (at->floats == NULL)
            return nf_err_set(err, NF_ENOMEM, "out of memory");
        if (ap->n_floats)
            memcpy(at->floats, ap->floats, ap->n_floats * sizeof(float));
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
        at->n = (int64_t)ap->n_ints;
        if (has_moved(ap, NF_WIRE_ATTR_INTS))
            return moved_attach(m, ap, at, NF_WIRE_ATTR_INTS, ap->ints, sizeof(int64_t), (void **)&at->ints, node_name,
                                lent, err);
        if (lent != NULL && ap->n_ints > 0) {
            at->ints = ap->ints;
            if (lent_add(lent, at) != NF_OK)
                return nf_err_set(err, NF_ENOMEM, "out of memory");
            break;
        }
        at->ints = nf_arena_alloc(a, ap->n_ints * sizeof(int64_t));
        if (at->ints == NULL)
            return nf_err_set(err, NF_ENOMEM, "out of memory");
        if (ap->n_ints)
            memcpy(at->ints, ap->ints, ap->n_ints * sizeof(int64_t));
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS:
        if ((moved = moved_count(ap, NF_WIRE_ATTR_STRINGS)) < 0)
            return nf_err_set(err, NF_EMODEL, "node '%s': attribute '%s': malformed strings", node_name, at->name);
        at->n = (int64_t)ap->n_strings + moved;
        at->strings = nf_arena_alloc(a, ((size_t)at->n + 1) * sizeof(char *));
        if (at->strings == NULL)
            return nf_err_set(err, NF_ENOMEM, "out of memory");
        if (strings_copy(a, ap->strings, ap->n_strings, at->strings) != NF_OK ||
            (moved > 0 && moved_copy(m, ap, NF_WIRE_ATTR_STRINGS, at->strings + ap->n_strings) != NF_OK))
            return nf_err_set(err, NF_ENOMEM, "out of memory");
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

static int build_model(nf_model *m, const Onnx__ModelProto *mp, const char *dir, lent_list *lent, nf_err *err)
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
            const char *an = np->attribute[j]->name ? np->attribute[j]->name : "";
            int rc = attr_convert(m, np->attribute[j], &n->attrs[j], n->name, dir,
                                  nf__attr_prepare_only(n->domain, n->op, an) ? lent : NULL, err);
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
        /* a graph input passed straight through keeps its input
         * declaration: requests are checked against it */
        int rc = v->kind == NF_V_INPUT ? NF_OK : decl_type(v, g->output[i], "output", err);
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
 * free one pass over a few blocks. Large requests (big arrays, and the
 * scanned-member slabs protobuf-c keeps while it parses a field with 50k
 * elements) get blocks of their own; one protobuf-c frees goes to the next
 * large request it fits, so the arrays parsed after a big string field
 * reuse pages already touched instead of faulting in new ones. The
 * unpacked message lives only while build_model copies what it keeps and
 * prepare reads what is lent. */
#define PB_CHUNK (1u << 20)
#define PB_BIG (64u << 10)

typedef struct pb_block {
    struct pb_block *next;
    size_t used, cap;
    bool freed; /* a large block protobuf-c gave back */
    max_align_t data[];
} pb_block;

typedef struct pb_heap {
    pb_block *chunks; /* small allocations, newest first */
    pb_block *big;    /* one large allocation each */
} pb_heap;

static void *pb_alloc(void *data, size_t size)
{
    pb_heap *h = data;
    size = (size + 15) & ~(size_t)15;
    if (size >= PB_BIG) {
        pb_block *best = NULL;
        for (pb_block *b = h->big; b != NULL; b = b->next)
            if (b->freed && b->cap >= size && (best == NULL || b->cap < best->cap))
                best = b;
        if (best == NULL) {
            best = malloc(sizeof *best + size);
            if (best == NULL)
                return NULL;
            best->cap = size;
            best->next = h->big;
            h->big = best;
        }
        best->freed = false;
        best->used = size;
        return best->data;
    }
    pb_block *c = h->chunks;
    if (c == NULL || c->cap - c->used < size) {
        c = malloc(sizeof *c + PB_CHUNK);
        if (c == NULL)
            return NULL;
        c->used = 0;
        c->cap = PB_CHUNK;
        c->next = h->chunks;
        h->chunks = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += size;
    return p;
}

static void pb_free(void *data, void *p)
{
    pb_heap *h = data;
    for (pb_block *b = h->big; b != NULL; b = b->next)
        if ((void *)b->data == p) {
            b->freed = true;
            return;
        }
    /* small ones: all at once in pb_release */
}

static void pb_release(pb_heap *h)
{
    pb_block *lists[2] = {h->chunks, h->big};
    for (int i = 0; i < 2; i++)
        for (pb_block *c = lists[i], *next; c != NULL; c = next) {
            next = c->next;
            free(c);
        }
    h->chunks = h->big = NULL;
}

/* Loads the model in buf[0..len). work (len + 16 bytes, owned: freed here)
 * receives the packed message: either separate from buf or work + 32 ==
 * buf, the file read behind its own rewrite (nf__wire_pack reads ahead of
 * what it writes), which saves a second copy of the file in memory. */
static int load_common(const void *buf, size_t len, uint8_t *work, const char *path, const char *dir,
                       const nf_opts *opts, nf_model **out, nf_err *err)
{
    *out = NULL;
    nf_model *m = calloc(1, sizeof *m);
    if (m == NULL) {
        free(work);
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    }
    if (opts != NULL)
        m->opts = *opts;
    m->path = nf_arena_strdup(&m->arena, path ? path : "<memory>");
    int rc;
    if (m->path == NULL) {
        free(work);
        rc = nf_err_set(err, NF_ENOMEM, "out of memory");
        goto fail;
    }
    /* checked and rewritten with repeated scalars packed (wire.c): what
     * protobuf-c reads fastest */
    size_t plen = 0;
    rc = nf__wire_pack(buf, len, work, &plen, err);
    if (rc != NF_OK) {
        free(work);
        goto fail;
    }
    pb_heap heap = {0};
    ProtobufCAllocator al = {.alloc = pb_alloc, .free = pb_free, .allocator_data = &heap};
    Onnx__ModelProto *mp = onnx__model_proto__unpack(&al, plen, work);
    free(work); /* the unpacked message copies what it keeps */
    if (mp == NULL) {
        pb_release(&heap);
        rc = nf_err_set(err, NF_EMODEL, "not a valid ONNX model (protobuf decoding failed)");
        goto fail;
    }
    lent_list lent = {0};
    rc = build_model(m, mp, dir, &lent, err);
    if (rc == NF_OK)
        rc = nf__graph_finish(m, err);
    lent_return(&lent);
    pb_release(&heap);
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
    uint8_t *work = malloc(len + 16); /* nf__wire_pack may write 10 bytes past its output */
    if (work == NULL) {
        *out = NULL;
        return nf_err_set(err, NF_ENOMEM, "out of memory for %zu bytes", len);
    }
    return load_common(buf, len, work, NULL, dir, opts, out, err);
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
    /* the file goes 32 bytes in: load_common packs it in place */
    uint8_t *work = malloc(len + 32), *buf = work + 32;
    if (work == NULL) {
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
            free(work);
            close(fd);
            return nf_err_set(err, NF_EIO, "read failed: %s", r < 0 ? strerror(e) : "file shrank while reading");
        }
        done += (size_t)r;
    }
    close(fd);
    if (len == 0) {
        free(work);
        return nf_err_set(err, NF_EMODEL, "file is empty");
    }
    char dir[PATH_MAX];
    dir_of(path, dir, sizeof dir);
    int rc = load_common(buf, len, work, path, dir, opts, out, err);
#ifdef __GLIBC__
    /* Loading freed megabytes (file bytes, the unpacked message, prepare's
     * scratch) that glibc keeps in the heap once its mmap threshold has
     * risen; a worker loads once, so hand them back (RSS, not speed). */
    malloc_trim(0);
#endif
    return rc;
}
