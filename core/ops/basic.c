/*
 * basic.c: Cast, Constant, Dropout (inference) and Identity.
 * Specs: onnx/docs/Operators.md for each; Cast follows opset 13's table
 * (float to int truncates toward zero, to bool is x != 0, strings parse
 * and print as numbers).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* IEEE 754 binary16 <-> binary32, round to nearest even. */
float nf_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t nf_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t man = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff)
        return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31)
        return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10)
            return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1)))
            h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = sign | (uint32_t)exp << 10 | man >> 13, rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
        h++;
    return (uint16_t)h;
}

/* ---- Identity ------------------------------------------------------------ */
int nf_op_identity_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    (void)m;
    if (n->n_in < 1 || n->in[0] < 0 || n->n_out < 1)
        return nf_node_err(err, NF_EMODEL, n, "needs one input and one output");
    return NF_OK;
}

int nf_op_identity_infer(nf_model *m, nf_node *n, nf_err *err)
{
    nf_value *x = nf_in(m, n, 0), *y = nf_out(m, n, 0);
    return y ? nf_value_set(y, x->dtype, x->n_dims, x->dims, err) : NF_OK;
}

int nf_op_identity_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    nf_value *x = nf_in(m, n, 0), *y = nf_out(m, n, 0);
    if (y != NULL && y->data != x->data && x->size > 0)
        memcpy(y->data, x->data, (size_t)x->size * nf_dtype_size(x->dtype));
    return NF_OK;
}

/* ---- Dropout: at inference the identity, mask all true ------------------- */
int nf_op_dropout_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    return nf_op_identity_prepare(m, n, err);
}

int nf_op_dropout_infer(nf_model *m, nf_node *n, nf_err *err)
{
    /* opset 12+: training_mode (input 2) true means random dropping, which
     * an inference server never wants; ratio 0 is still the identity */
    nf_value *tm = nf_in(m, n, 2), *ratio = nf_in(m, n, 1);
    if (tm != NULL && tm->size > 0 && ((uint8_t *)tm->data)[0]) {
        double r = (ratio != NULL && ratio->size > 0) ? nf_get_f64(ratio->data, ratio->dtype, 0) : 0.5;
        if (r != 0.0)
            return nf_node_err(err, NF_EUNSUPPORTED, n, "training_mode = true with ratio %g (training is not supported)", r);
    }
    int rc = nf_op_identity_infer(m, n, err);
    nf_value *x = nf_in(m, n, 0), *mask = nf_out(m, n, 1);
    if (rc == NF_OK && mask != NULL)
        rc = nf_value_set(mask, NF_DT_BOOL, x->n_dims, x->dims, err);
    return rc;
}

int nf_op_dropout_run(nf_model *m, nf_node *n, nf_err *err)
{
    nf_op_identity_run(m, n, err);
    nf_value *mask = nf_out(m, n, 1);
    if (mask != NULL && mask->size > 0)
        memset(mask->data, 1, (size_t)mask->size);
    return NF_OK;
}

/* ---- Constant -------------------------------------------------------------- */
typedef struct constant_priv {
    nf_value v; /* the value, data in the model arena */
} constant_priv;

int nf_op_constant_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    if (n->n_out != 1 || n->n_attrs != 1)
        return nf_node_err(err, NF_EMODEL, n, "needs exactly one output and one value attribute");
    constant_priv *p = nf_arena_alloc(&m->arena, sizeof *p);
    if (p == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    const nf_attr *a = &n->attrs[0];
    nf_value *v = &p->v;
    v->name = n->name;
    int64_t one = 1;
    int rc = NF_OK;
    if (strcmp(a->name, "value") == 0 && a->t != NULL) {
        *v = *a->t;
    } else if (strcmp(a->name, "value_float") == 0) {
        rc = nf_value_set(v, NF_DT_FLOAT, 0, NULL, err);
        v->data = nf_arena_alloc(&m->arena, sizeof(float));
        if (v->data)
            *(float *)v->data = a->f;
    } else if (strcmp(a->name, "value_int") == 0) {
        rc = nf_value_set(v, NF_DT_INT64, 0, NULL, err);
        v->data = nf_arena_alloc(&m->arena, sizeof(int64_t));
        if (v->data)
            *(int64_t *)v->data = a->i;
    } else if (strcmp(a->name, "value_floats") == 0) {
        one = a->n;
        rc = nf_value_set(v, NF_DT_FLOAT, 1, &one, err);
        v->data = a->floats ? (void *)a->floats : nf_arena_alloc(&m->arena, 1);
    } else if (strcmp(a->name, "value_ints") == 0) {
        one = a->n;
        rc = nf_value_set(v, NF_DT_INT64, 1, &one, err);
        v->data = a->ints ? (void *)a->ints : nf_arena_alloc(&m->arena, 1);
    } else if (strcmp(a->name, "value_string") == 0) {
        rc = nf_value_set(v, NF_DT_STRING, 0, NULL, err);
        v->data = nf_arena_alloc(&m->arena, sizeof(char *));
        if (v->data)
            *(char **)v->data = a->s ? a->s : "";
    } else if (strcmp(a->name, "value_strings") == 0) {
        one = a->n;
        rc = nf_value_set(v, NF_DT_STRING, 1, &one, err);
        v->data = a->strings;
    } else {
        return nf_node_err(err, NF_EUNSUPPORTED, n, "attribute '%s' is not supported (sparse_value is not)", a->name);
    }
    if (rc != NF_OK)
        return rc;
    if (v->data == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    n->priv = p;
    return NF_OK;
}

int nf_op_constant_infer(nf_model *m, nf_node *n, nf_err *err)
{
    const nf_value *c = &((constant_priv *)n->priv)->v;
    return nf_value_set(nf_out(m, n, 0), c->dtype, c->n_dims, c->dims, err);
}

int nf_op_constant_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const nf_value *c = &((constant_priv *)n->priv)->v;
    nf_value *y = nf_out(m, n, 0);
    if (c->size > 0)
        memcpy(y->data, c->data, (size_t)c->size * nf_dtype_size(c->dtype));
    return NF_OK;
}

/* ---- Cast ------------------------------------------------------------------ */
static int cast_ok(int t)
{
    switch (t) {
    case NF_DT_FLOAT: case NF_DT_DOUBLE: case NF_DT_FLOAT16: case NF_DT_INT8: case NF_DT_INT16:
    case NF_DT_INT32: case NF_DT_INT64: case NF_DT_UINT8: case NF_DT_UINT16: case NF_DT_UINT32:
    case NF_DT_UINT64: case NF_DT_BOOL: case NF_DT_STRING:
        return 1;
    default:
        return 0;
    }
}

int nf_op_cast_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    (void)m;
    const nf_attr *to = nf_attr_get(n, "to");
    if (to == NULL)
        return nf_node_err(err, NF_EMODEL, n, "attribute 'to' is missing");
    if (!cast_ok((int)to->i))
        return nf_node_err(err, NF_EUNSUPPORTED, n, "attribute 'to' = %lld: type not supported", (long long)to->i);
    if (n->n_in < 1 || n->in[0] < 0 || n->n_out < 1)
        return nf_node_err(err, NF_EMODEL, n, "needs one input and one output");
    return NF_OK;
}

int nf_op_cast_infer(nf_model *m, nf_node *n, nf_err *err)
{
    nf_value *x = nf_in(m, n, 0);
    if (!cast_ok(x->dtype))
        return nf_node_err(err, NF_EUNSUPPORTED, n, "input type %s not supported", nf_dtype_name(x->dtype));
    return nf_value_set(nf_out(m, n, 0), (int)nf_attr_int(n, "to", 0), x->n_dims, x->dims, err);
}

/* Shortest decimal that reads back as the same float32 (what numpy's str
 * prints), written into the scratch area of the output. */
static int fmt_float(char *buf, size_t cap, double v, int is_f32)
{
    if (isnan(v))
        return snprintf(buf, cap, "NaN");
    if (isinf(v))
        return snprintf(buf, cap, v < 0 ? "-INF" : "INF");
    for (int prec = 1; prec <= 17; prec++) {
        int w = snprintf(buf, cap, "%.*g", prec, v);
        double back = strtod(buf, NULL);
        if (is_f32 ? (float)back == (float)v : back == v)
            return w;
    }
    return snprintf(buf, cap, "%.17g", v);
}

static double read_any(const void *p, int dt, int64_t i)
{
    if (dt == NF_DT_FLOAT16)
        return nf_half_to_float(((const uint16_t *)p)[i]);
    return nf_get_f64(p, dt, i);
}

int nf_op_cast_run(nf_model *m, nf_node *n, nf_err *err)
{
    nf_value *x = nf_in(m, n, 0), *y = nf_out(m, n, 0);
    int from = x->dtype, to = y->dtype;
    int64_t count = x->size;
    if (from == to) {
        if (count > 0)
            memcpy(y->data, x->data, (size_t)count * nf_dtype_size(from));
        return NF_OK;
    }
    if (to == NF_DT_STRING) {
        /* strings written into the model arena would grow it per run; a
         * numeric-to-string Cast is folded at load or refused at run */
        if (!m->folding)
            return nf_node_err(err, NF_EUNSUPPORTED, n, "Cast to string is supported on constants only");
        char **out = y->data;
        for (int64_t i = 0; i < count; i++) {
            char buf[64];
            if (from == NF_DT_BOOL)
                snprintf(buf, sizeof buf, "%s", ((uint8_t *)x->data)[i] ? "true" : "false");
            else if (from == NF_DT_INT64)
                snprintf(buf, sizeof buf, "%lld", (long long)((int64_t *)x->data)[i]);
            else
                fmt_float(buf, sizeof buf, read_any(x->data, from, i), from == NF_DT_FLOAT || from == NF_DT_FLOAT16);
            out[i] = nf_arena_strdup(&m->arena, buf);
            if (out[i] == NULL)
                return nf_err_set(err, NF_ENOMEM, "out of memory");
        }
        return NF_OK;
    }
    for (int64_t i = 0; i < count; i++) {
        if (from == NF_DT_STRING) {
            const char *s = ((char **)x->data)[i];
            double v = strtod(s, NULL);
            if (to == NF_DT_INT64)
                ((int64_t *)y->data)[i] = strtoll(s, NULL, 10);
            else if (to == NF_DT_FLOAT16)
                ((uint16_t *)y->data)[i] = nf_float_to_half((float)v);
            else
                nf_set_f64(y->data, to, i, v);
            continue;
        }
        if (from == NF_DT_INT64 && to != NF_DT_FLOAT && to != NF_DT_DOUBLE && to != NF_DT_FLOAT16) {
            int64_t v = ((int64_t *)x->data)[i]; /* exact beyond 2^53 */
            switch (to) {
            case NF_DT_INT32: ((int32_t *)y->data)[i] = (int32_t)v; break;
            case NF_DT_INT16: ((int16_t *)y->data)[i] = (int16_t)v; break;
            case NF_DT_INT8: ((int8_t *)y->data)[i] = (int8_t)v; break;
            case NF_DT_UINT8: ((uint8_t *)y->data)[i] = (uint8_t)v; break;
            case NF_DT_UINT16: ((uint16_t *)y->data)[i] = (uint16_t)v; break;
            case NF_DT_UINT32: ((uint32_t *)y->data)[i] = (uint32_t)v; break;
            case NF_DT_UINT64: ((uint64_t *)y->data)[i] = (uint64_t)v; break;
            case NF_DT_BOOL: ((uint8_t *)y->data)[i] = v != 0; break;
            default: break;
            }
            continue;
        }
        double v = read_any(x->data, from, i);
        if (to == NF_DT_FLOAT16)
            ((uint16_t *)y->data)[i] = nf_float_to_half((float)v);
        else if (to == NF_DT_FLOAT && from == NF_DT_DOUBLE)
            ((float *)y->data)[i] = (float)((double *)x->data)[i];
        else
            nf_set_f64(y->data, to, i, v);
    }
    return NF_OK;
}
