/*
 * dense_win.c: sliding-window geometry shared by Conv and the pools:
 * parsing auto_pad / kernel_shape / strides / dilations / pads, and the
 * output sizes and effective pads for one input shape. Owns nothing; the
 * result is written into the caller's nf__win (kernel state, model arena).
 */
#include <string.h>

#include "ops_dense.h"

int nf__dense_shape_code(const nf_value *a, const nf_value *b)
{
    if ((a != NULL && a->kind != NF_V_CONST) || (b != NULL && b->kind != NF_V_CONST))
        return NF_ESHAPE;
    return NF_EMODEL;
}

static int check_positive(const nf_node *n, const char *name, int64_t count, const int64_t *v, int64_t min,
                          nf_err *err)
{
    for (int64_t i = 0; i < count; i++)
        if (v[i] < min)
            return nf_node_err(err, NF_EMODEL, n, "attribute %s[%lld] = %lld, must be at least %lld", name,
                               (long long)i, (long long)v[i], (long long)min);
    return NF_OK;
}

int nf__winattr_parse(const nf_node *n, nf__winattr *a, nf_err *err)
{
    memset(a, 0, sizeof *a);
    const char *ap = nf_attr_str(n, "auto_pad", "NOTSET");
    /* some exporters write an empty string for the default */
    if (strcmp(ap, "NOTSET") == 0 || ap[0] == '\0')
        a->auto_pad = NF_PAD_NOTSET;
    else if (strcmp(ap, "SAME_UPPER") == 0)
        a->auto_pad = NF_PAD_SAME_UPPER;
    else if (strcmp(ap, "SAME_LOWER") == 0)
        a->auto_pad = NF_PAD_SAME_LOWER;
    else if (strcmp(ap, "VALID") == 0)
        a->auto_pad = NF_PAD_VALID;
    else
        return nf_node_err(err, NF_EMODEL, n, "attribute auto_pad = \"%s\" is not one of NOTSET, SAME_UPPER, "
                           "SAME_LOWER, VALID", ap);
    int64_t cm = nf_attr_int(n, "ceil_mode", 0);
    if (cm != 0 && cm != 1)
        return nf_node_err(err, NF_EMODEL, n, "attribute ceil_mode = %lld, must be 0 or 1", (long long)cm);
    a->ceil_mode = (int)cm;
    a->n_kernel = nf_attr_ints(n, "kernel_shape", &a->kernel);
    a->n_strides = nf_attr_ints(n, "strides", &a->strides);
    a->n_dilations = nf_attr_ints(n, "dilations", &a->dilations);
    a->n_pads = nf_attr_ints(n, "pads", &a->pads);
    int rc;
    if ((rc = check_positive(n, "kernel_shape", a->n_kernel, a->kernel, 1, err)) != NF_OK ||
        (rc = check_positive(n, "strides", a->n_strides, a->strides, 1, err)) != NF_OK ||
        (rc = check_positive(n, "dilations", a->n_dilations, a->dilations, 1, err)) != NF_OK ||
        (rc = check_positive(n, "pads", a->n_pads, a->pads, 0, err)) != NF_OK)
        return rc;
    if (a->n_pads % 2 != 0)
        return nf_node_err(err, NF_EMODEL, n, "attribute pads has %lld values, must be 2 per spatial axis",
                           (long long)a->n_pads);
    return NF_OK;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

int nf__win_infer(const nf_node *n, const nf__winattr *a, const nf_value *x, const int64_t *kernel, int shape_code,
                  nf__win *w, nf_err *err)
{
    int nd = x->n_dims - 2;
    const int64_t *in_sp = x->dims + 2;
    if (nd < 1)
        return nf_node_err(err, shape_code, n, "input X ('%s') has rank %d, needs (N, C, D1, ...)", x->name,
                           x->n_dims);
    if (nd > NF_WIN_DIMS)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "%d spatial dimensions, at most %d are supported", nd,
                           NF_WIN_DIMS);
    if (a->n_kernel != 0 && a->n_kernel != nd)
        return nf_node_err(err, NF_EMODEL, n, "attribute kernel_shape has %lld values for %d spatial dims",
                           (long long)a->n_kernel, nd);
    if (a->n_strides != 0 && a->n_strides != nd)
        return nf_node_err(err, NF_EMODEL, n, "attribute strides has %lld values for %d spatial dims",
                           (long long)a->n_strides, nd);
    if (a->n_dilations != 0 && a->n_dilations != nd)
        return nf_node_err(err, NF_EMODEL, n, "attribute dilations has %lld values for %d spatial dims",
                           (long long)a->n_dilations, nd);
    if (a->n_pads != 0 && a->n_pads != 2 * nd)
        return nf_node_err(err, NF_EMODEL, n, "attribute pads has %lld values for %d spatial dims",
                           (long long)a->n_pads, nd);
    int lead = NF_WIN_DIMS - nd;
    w->nd = nd;
    for (int i = 0; i < lead; i++) {
        w->in[i] = w->out[i] = w->k[i] = w->s[i] = w->d[i] = 1;
        w->pb[i] = w->pe[i] = 0;
    }
    for (int i = 0; i < nd; i++) {
        int c = lead + i;
        int64_t in = in_sp[i], k = kernel[i];
        int64_t s = a->n_strides ? a->strides[i] : 1, d = a->n_dilations ? a->dilations[i] : 1;
        int64_t pb = 0, pe = 0, out;
        if (k < 1)
            return nf_node_err(err, NF_EMODEL, n, "kernel dim %d is %lld", i, (long long)k);
        int64_t ext = (k - 1) * d + 1; /* extent of the dilated kernel */
        switch (a->auto_pad) {
        case NF_PAD_SAME_UPPER:
        case NF_PAD_SAME_LOWER: {
            out = ceil_div(in, s);
            int64_t total = (out - 1) * s + ext - in;
            if (total < 0)
                total = 0;
            /* the odd pixel goes at the end for SAME_UPPER, at the begin
             * for SAME_LOWER */
            pb = a->auto_pad == NF_PAD_SAME_UPPER ? total / 2 : total - total / 2;
            pe = total - pb;
            break;
        }
        case NF_PAD_VALID:
            out = in >= ext ? (in - ext) / s + 1 : 0;
            break;
        default:
            if (a->n_pads) {
                pb = a->pads[i];
                pe = a->pads[nd + i];
            }
            if (in + pb + pe < ext) {
                out = 0;
                break;
            }
            if (a->ceil_mode) {
                out = ceil_div(in + pb + pe - ext, s) + 1;
                /* a window must start inside the input or the begin pad */
                if ((out - 1) * s >= in + pb)
                    out--;
            } else {
                out = floor_div(in + pb + pe - ext, s) + 1;
            }
            break;
        }
        if (out < 1)
            return nf_node_err(err, shape_code, n,
                               "input X ('%s') dim %d is %lld, smaller than the window extent %lld "
                               "(kernel %lld, dilation %lld, pads %lld+%lld)",
                               x->name, 2 + i, (long long)in, (long long)ext, (long long)k, (long long)d,
                               (long long)pb, (long long)pe);
        w->in[c] = in;
        w->out[c] = out;
        w->k[c] = k;
        w->s[c] = s;
        w->d[c] = d;
        w->pb[c] = pb;
        w->pe[c] = pe;
    }
    return NF_OK;
}
