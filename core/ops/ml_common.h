/*
 * ml_common.h: helpers every ai.onnx.ml kernel shares (defined in
 * ml_common.c): attribute checking against a spec table, the [N, F] input,
 * class labels, post transforms, and a classifier's outputs.
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

/* A classifier's labels: exactly one of ints / strs is set; both point
 * into the node's attributes (model arena, not owned). */
typedef struct nf_ml_labels {
    int64_t n;
    const int64_t *ints;
    char *const *strs;
} nf_ml_labels;

int nf__ml_check_attrs(const nf_node *n, const nf_ml_attrspec *spec, nf_err *err);
int nf__ml_check_io(const nf_node *n, int max_out, nf_err *err);
int nf__ml_post_transform(const nf_node *n, int *out, nf_err *err);
int nf__ml_labels(nf_model *m, nf_node *n, const char *ints_name, nf_ml_labels *lab, nf_err *err);
int nf__ml_input(nf_model *m, nf_node *n, int64_t *rows, int64_t *feats, nf_err *err);
double nf__ml_probit(double p);
double nf__ml_logistic(double x);
void nf__ml_transform(double *s, int64_t c, int pt);

/* classifier outputs */
int nf__ml_clf_infer(nf_model *m, nf_node *n, int64_t rows, const nf_ml_labels *lab, nf_err *err);
int64_t nf__ml_argmax(const double *s, const uint8_t *has, int64_t c);
int64_t nf__ml_binary(double s, int post, double thresh, bool complement, double *z);
void nf__ml_clf_write(nf_value *y, nf_value *zs, int64_t i, int64_t lab, const double *z, const nf_ml_labels *labs);

#endif
