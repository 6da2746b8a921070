/*
 * test_core.c: the core through its public header: loading refuses broken
 * files with a message, runs check inputs, and a run on seen shapes
 * allocates nothing (counted by a malloc hook, as STYLE.md asks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nf.h"
#include "harness.h"
#include "nf_impl.h"    /* nf__wire_check, nf__wire_pack */
#include "onnx.pb-c.h"

/* ---- malloc counting (not under sanitizers, which own malloc) ---------- */
/* The runs nf__wire_pack moved into an attribute's field 12 (kind byte,
 * then the packed elements) put back where protobuf-c reads them, for the
 * top-level graph's nodes: then the message is the original one (the
 * loader reads moved runs after the kept ones, in order: onnx_load.c). */
static int restore_moved(Onnx__ModelProto *mp)
{
    for (size_t i = 0; mp->graph && i < mp->graph->n_node; i++) {
        Onnx__NodeProto *np = mp->graph->node[i];
        for (size_t j = 0; j < np->n_attribute; j++) {
            Onnx__AttributeProto *ap = np->attribute[j];
            size_t cap_f = ap->n_floats, cap_i = ap->n_ints, cap_s = ap->n_strings; /* protobuf-c's: exact */
            for (unsigned k = 0; k < ap->base.n_unknown_fields; k++) {
                ProtobufCMessageUnknownField *u = &ap->base.unknown_fields[k];
                if (u->tag != NF_WIRE_DETACHED)
                    return -1;
                size_t q = 0;
                while (u->data[q] & 0x80)
                    q++;
                q++;
                unsigned kind = u->data[q++];
                const uint8_t *d = u->data + q;
                size_t len = u->len - q;
                for (size_t r = 0; r < len;) {
                    uint64_t v = 0;
                    int sh = 0;
                    if (kind == NF_WIRE_ATTR_FLOATS) {
                        float f;
                        memcpy(&f, d + r, 4);
                        r += 4;
                        if (ap->n_floats == cap_f)
                            ap->floats = realloc(ap->floats, (cap_f = 2 * cap_f + 16) * sizeof(float));
                        ap->floats[ap->n_floats++] = f;
                        continue;
                    }
                    while (d[r] & 0x80) {
                        v |= (uint64_t)(d[r++] & 0x7f) << sh;
                        sh += 7;
                    }
                    v |= (uint64_t)d[r++] << sh;
                    if (kind == NF_WIRE_ATTR_INTS) {
                        if (ap->n_ints == cap_i)
                            ap->ints = realloc(ap->ints, (cap_i = 2 * cap_i + 16) * sizeof(int64_t));
                        ap->ints[ap->n_ints++] = (int64_t)v;
                    } else {
                        if (ap->n_strings == cap_s)
                            ap->strings = realloc(ap->strings, (cap_s = 2 * cap_s + 16) * sizeof(ProtobufCBinaryData));
                        ProtobufCBinaryData *bd = &ap->strings[ap->n_strings++];
                        bd->len = (size_t)v;
                        bd->data = malloc(v + 1);
                        memcpy(bd->data, d + r, (size_t)v);
                        r += (size_t)v;
                    }
                }
                free(u->data);
            }
            free(ap->base.unknown_fields);
            ap->base.unknown_fields = NULL;
            ap->base.n_unknown_fields = 0;
        }
    }
    return 0;
}

#if defined(__SANITIZE_ADDRESS__)
#define COUNTING 0
#else
#define COUNTING 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
static long n_allocs;
void *malloc(size_t n) { n_allocs++; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { n_allocs++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { n_allocs++; return __libc_realloc(p, n); }
int posix_memalign(void **p, size_t a, size_t n)
{
    n_allocs++;
    void *r = __libc_memalign(a, n);
    if (r == NULL)
        return 12; /* ENOMEM */
    *p = r;
    return 0;
}
#endif

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(*len + 1);
    if (fread(b, 1, *len, f) != *len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

static int load_bytes(const void *buf, size_t len, nf_err *err)
{
    nf_model *m = NULL;
    int rc = nf_model_load_buffer(buf, len, NULL, NULL, &m, err);
    nf_model_free(m);
    return rc;
}

/* varint + length-delimited field helpers to build hostile wire data */
static size_t put_varint(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

int main(void)
{
    nf_err err = {0};
    nf_model *m = NULL;

    int rc = nf_model_load("/nonexistent/model.onnx", NULL, &m, &err);
    T_CHECK("load missing file is NF_EIO", rc == NF_EIO && m == NULL, "rc %d %s", rc, err.msg);

    rc = load_bytes("", 0, &err);
    T_CHECK("load empty buffer refused", rc == NF_EMODEL, "rc %d %s", rc, err.msg);

    unsigned char junk[4096];
    srand(7);
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)rand();
    rc = load_bytes(junk, sizeof junk, &err);
    T_CHECK("load random bytes refused", rc == NF_EMODEL, "rc %d %s", rc, err.msg);

    size_t len = 0;
    char *model = slurp("models/default.onnx", &len);
    T_CHECK("default model readable", model != NULL && len > 1000, "models/default.onnx");
    if (model != NULL) {
        rc = load_bytes(model, len / 2, &err);
        T_CHECK("load truncated model refused", rc == NF_EMODEL && strstr(err.msg, "byte") != NULL, "rc %d %s", rc,
                err.msg);
    }

    /* Model.graph(7) > Graph.node(1) > Node.attribute(5) > Attribute.g(6)
     * > Graph.node(1) > ... 3000 deep: refused before protobuf-c recurses */
    {
        size_t cap = 3000 * 3 * 8 + 64, n = 0;
        unsigned char *buf = malloc(cap), *tmp = malloc(cap);
        static const int fields[] = {6, 5, 1}; /* innermost first: g, attribute, node */
        for (int depth = 0; depth < 3000 * 3; depth++) {
            int field = fields[depth % 3];
            size_t h = put_varint(tmp, (uint64_t)field << 3 | 2);
            h += put_varint(tmp + h, n);
            memcpy(tmp + h, buf, n);
            n += h;
            memcpy(buf, tmp, n);
        }
        size_t h = put_varint(tmp, 7 << 3 | 2);
        h += put_varint(tmp + h, n);
        memcpy(tmp + h, buf, n);
        rc = load_bytes(tmp, n + h, &err);
        T_CHECK("load 9000-deep nesting refused", rc == NF_EMODEL && strstr(err.msg, "nested deeper") != NULL,
                "rc %d %s", rc, err.msg);
        free(buf);
        free(tmp);
    }
    /* the loader hands protobuf-c the file with repeated scalars packed
     * (wire.c): the same message, checked exactly as the plain scan does */
    if (model != NULL) {
        unsigned char *packed = malloc(len + 16);
        size_t plen = 0;
        rc = nf__wire_pack(model, len, packed, &plen, &err);
        Onnx__ModelProto *a = onnx__model_proto__unpack(NULL, len, (const uint8_t *)model);
        Onnx__ModelProto *b = rc == NF_OK ? onnx__model_proto__unpack(NULL, plen, packed) : NULL;
        int same = 0, moved = 0;
        for (size_t i = 0; b && b->graph && i < b->graph->n_node; i++)
            for (size_t j = 0; j < b->graph->node[i]->n_attribute; j++)
                moved += (int)b->graph->node[i]->attribute[j]->base.n_unknown_fields;
        if (b && restore_moved(b) != 0)
            b = NULL; /* an unknown field that is not ours */
        if (a && b) { /* protobuf-c's own encoding of both: equal iff the messages are */
            size_t sa = onnx__model_proto__get_packed_size(a), sb = onnx__model_proto__get_packed_size(b);
            unsigned char *ea = malloc(sa + 1), *eb = malloc(sb + 1);
            onnx__model_proto__pack(a, ea);
            onnx__model_proto__pack(b, eb);
            same = sa == sb && memcmp(ea, eb, sa) == 0;
            free(ea);
            free(eb);
        }
        T_CHECK("packed model is the same message, smaller", rc == NF_OK && same && plen < len * 9 / 10,
                "rc %d, same %d, %zu -> %zu bytes", rc, same, len, plen);
        T_CHECK("packing moves the tree's node arrays out of protobuf-c's way", moved >= 10, "%d attributes moved", moved);
        /* in place, as nf_model_load does it: the file 32 bytes into the output */
        unsigned char *inplace = malloc(len + 32);
        size_t ilen = 0;
        memcpy(inplace + 32, model, len);
        int rc2 = nf__wire_pack(inplace + 32, len, inplace, &ilen, &err);
        T_CHECK("packing in place writes the same bytes", rc2 == NF_OK && ilen == plen && memcmp(inplace, packed, plen) == 0,
                "rc %d, %zu vs %zu bytes", rc2, ilen, plen);
        free(inplace);
        if (a)
            onnx__model_proto__free_unpacked(a, NULL);
        if (b)
            onnx__model_proto__free_unpacked(b, NULL);
        int differ = 0;
        size_t at = 0;
        for (size_t cut = 0; cut < len && !differ; cut += 1 + cut / 64) {
            nf_err e1 = {0}, e2 = {0};
            int r1 = nf__wire_check(model, cut, &e1), r2 = nf__wire_pack(model, cut, packed, &plen, &e2);
            differ = r1 != r2 || strcmp(e1.msg, e2.msg) != 0;
            at = cut;
        }
        T_CHECK("packing scan refuses truncations as the plain scan", !differ, "differ at %zu bytes", at);
        free(packed);
    }
    free(model);

    rc = nf_model_load("models/default.onnx", NULL, &m, &err);
    T_CHECK("load default model", rc == NF_OK, "%s", err.msg);
    if (rc != NF_OK)
        return T_DONE();
    const nf_tensor *in = nf_model_input(m, 0);
    T_CHECK("default model input is float32 [-1, 10]",
            nf_model_n_inputs(m) == 1 && in->dtype == NF_DT_FLOAT && in->n_dims == 2 && in->dims[0] == -1 &&
                in->dims[1] == 10,
            "dtype %d rank %d", in->dtype, in->n_dims);

    float x[64 * 10];
    for (int i = 0; i < 64 * 10; i++)
        x[i] = (float)((i * 37) % 100) / 1000.0f - 0.05f;
    nf_tensor t = {.dtype = NF_DT_FLOAT, .n_dims = 2, .dims = {64, 10}, .data = x};
    nf_tensor out[4];
    rc = nf_model_run(m, &t, out, &err);
    T_CHECK("run batch 64", rc == NF_OK && out[0].n_dims == 2 && out[0].dims[0] == 64 && out[0].dims[1] == 1, "%s",
            err.msg);
    float first[64];
    if (rc == NF_OK)
        memcpy(first, out[0].data, sizeof first);
    int in_range = rc == NF_OK;
    for (int i = 0; in_range && i < 64; i++)
        in_range = first[i] >= 25 && first[i] <= 346; /* the diabetes target's range */
    T_CHECK("predictions in the target's range", in_range, "got %g", (double)first[0]);

    t.dims[0] = 1;
    rc = nf_model_run(m, &t, out, &err);
    T_CHECK("run batch 1 after 64 agrees", rc == NF_OK && ((float *)out[0].data)[0] == first[0], "%s", err.msg);

    t.dims[0] = 64;
#if COUNTING
    long before = n_allocs;
#endif
    for (int rep = 0; rep < 100; rep++)
        rc |= nf_model_run(m, &t, out, &err);
    T_CHECK("planned runs agree", rc == NF_OK && memcmp(out[0].data, first, sizeof first) == 0, "%s", err.msg);
#if COUNTING
    T_CHECK("planned runs allocate nothing", n_allocs == before, "%ld allocations in 100 runs", n_allocs - before);
#endif

    nf_tensor bad = t;
    bad.dims[1] = 9;
    rc = nf_model_run(m, &bad, out, &err);
    T_CHECK("wrong feature count is NF_ESHAPE naming the dim",
            rc == NF_ESHAPE && strstr(err.msg, "dim 1 is 9") && strstr(err.msg, "expects 10"), "rc %d %s", rc,
            err.msg);
    bad = t;
    bad.dtype = NF_DT_DOUBLE;
    rc = nf_model_run(m, &bad, out, &err);
    T_CHECK("wrong dtype is NF_ESHAPE naming types", rc == NF_ESHAPE && strstr(err.msg, "float64"), "rc %d %s", rc,
            err.msg);
    bad = t;
    bad.n_dims = 1;
    rc = nf_model_run(m, &bad, out, &err);
    T_CHECK("wrong rank is NF_ESHAPE", rc == NF_ESHAPE && strstr(err.msg, "rank 1"), "rc %d %s", rc, err.msg);
    const char *ver = nf_model_meta(m, "model_version");
    T_CHECK("metadata model_version", ver != NULL, "missing");
    nf_model_free(m);
    return T_DONE();
}
