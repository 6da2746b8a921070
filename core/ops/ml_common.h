/*
 * ml_common.h: helpers every ai.onnx.ml kernel shares (defined in
 * ml_trees.c): attribute checking against a spec table, post transforms,
 * class labels, the [N, F] input.
 */
#ifndef NF_ML_COMMON_H
#define NF_ML_COMMON_H

#include "ops.h"

/* AttributeProto.AttributeType numbers */
enum { NF_AT_FLOAT = 1, NF_AT_INT = 2, NF_AT_STRING = 3, NF_AT_TENSOR = 4, NF_AT_FLOATS = 6, NF_AT_INTS = 7,
       NF_AT_STRINGS = 8 };

typedef struct nf_ml_attrspec {
    const char *name;
    int type;  /* NF_AT_* */
    int since; /* first ai.onnx.ml opset that has it */
} nf_ml_attrspec;

enum { NF_PT_NONE, NF_PT_LOGISTIC, NF_PT_SOFTMAX, NF_PT_SOFTMAX_ZERO, NF_PT_PROBIT };

int nf__ml_check_attrs(const nf_node *n, const nf_ml_attrspec *spec, nf_err *err);
int nf__ml_post_transform(const nf_node *n, int *out, nf_err *err);
int nf__ml_labels(nf_model *m, nf_node *n, const char *ints_name, int64_t *n_labels, const int64_t **ints,
                  char *const **strs, nf_err *err);
int nf__ml_input(nf_model *m, nf_node *n, int64_t *rows, int64_t *feats, nf_err *err);
double nf__ml_probit(double p);
double nf__ml_logistic(double x);
void nf__ml_transform(double *s, int64_t c, int pt);

#endif
