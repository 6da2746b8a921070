/*
 * err.c: the one error type (code + message) and dtype names.
 */
#include <stdio.h>
#include <string.h>

#include "nf_impl.h"

int nf__verr(nf_err *err, int code, const char *fmt, va_list ap)
{
    if (err != NULL) {
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    }
    return code;
}

int nf_err_set(nf_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nf__verr(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int nf_node_err(nf_err *err, int code, const nf_node *n, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return nf_err_set(err, code, "node '%s' (%s%s%s): %s", n->name, n->domain[0] ? n->domain : "",
                      n->domain[0] ? "." : "", n->op, what);
}

static const struct {
    int dtype;
    const char *name;
    size_t size;
} dtypes[] = {
    {NF_DT_FLOAT, "float32", 4},   {NF_DT_UINT8, "uint8", 1},    {NF_DT_INT8, "int8", 1},
    {NF_DT_UINT16, "uint16", 2},   {NF_DT_INT16, "int16", 2},    {NF_DT_INT32, "int32", 4},
    {NF_DT_INT64, "int64", 8},     {NF_DT_STRING, "string", sizeof(char *)},
    {NF_DT_BOOL, "bool", 1},       {NF_DT_FLOAT16, "float16", 2}, {NF_DT_DOUBLE, "float64", 8},
    {NF_DT_UINT32, "uint32", 4},   {NF_DT_UINT64, "uint64", 8},
};

const char *nf_dtype_name(int dtype)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].dtype == dtype)
            return dtypes[i].name;
    return "undefined";
}

size_t nf_dtype_size(int dtype)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].dtype == dtype)
            return dtypes[i].size;
    return 0;
}

int nf_dtype_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dtypes[i].name, name) == 0)
            return dtypes[i].dtype;
    return NF_DT_UNDEFINED;
}

int64_t nf_tensor_count(const nf_tensor *t)
{
    return nf_dims_count(t->n_dims, t->dims);
}
