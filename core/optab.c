/*
 * optab.c: the operator table. One line per (domain, op, opset range),
 * with its prepare / infer / run hooks. The range is of the opset the
 * model imports for the op's domain: an op whose latest version is 1 keeps
 * its meaning in every later opset until a new version replaces it.
 * nf__op_find() is called once per node at load; the run loop never looks
 * anything up.
 */
#include <string.h>

#include "nf_impl.h"
#include "ops/ops.h"

#define ONNX ""
#define ML "ai.onnx.ml"
#define OP(dom, name, lo, hi, pfx) {dom, name, lo, hi, pfx##_prepare, pfx##_infer, pfx##_run}

static const nf_opdef optab[] = {
    /* ai.onnx.ml: classic machine learning (ONNX-ML operators.md) */
    OP(ML, "LinearClassifier", 1, 5, nf_op_linear_classifier),
    OP(ML, "LinearRegressor", 1, 5, nf_op_linear_regressor),
    OP(ML, "Normalizer", 1, 5, nf_op_normalizer),
    OP(ML, "Scaler", 1, 5, nf_op_scaler),
    OP(ML, "TreeEnsembleClassifier", 1, 4, nf_op_tree_classifier),
    OP(ML, "TreeEnsembleRegressor", 1, 4, nf_op_tree_regressor),
    /* ai.onnx */
    OP(ONNX, "Cast", 1, 19, nf_op_cast),
    OP(ONNX, "Constant", 1, 19, nf_op_constant),
    OP(ONNX, "Dropout", 1, 19, nf_op_dropout),
    OP(ONNX, "Identity", 1, 19, nf_op_identity),
#include "ops/optab_nn.inc"
};

/* Returns the entry for op at the model's opset of its domain, or NULL.
 * *near_opset gets an opset we do support for this op (for the message),
 * or 0 if we know no version of it. */
const nf_opdef *nf__op_find(const char *domain, const char *op, int opset, int *near_opset)
{
    *near_opset = 0;
    for (size_t i = 0; i < sizeof optab / sizeof optab[0]; i++) {
        const nf_opdef *d = &optab[i];
        if (strcmp(d->op, op) != 0 || strcmp(d->domain, domain) != 0)
            continue;
        if (opset >= d->since_min && opset <= d->since_max)
            return d;
        *near_opset = opset < d->since_min ? d->since_min : d->since_max;
    }
    return NULL;
}
