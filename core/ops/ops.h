/*
 * ops.h: the hooks of every kernel family, declared once. Each family lives
 * in one core/ops/<family>.c and is listed in core/optab.c.
 */
#ifndef NF_OPS_H
#define NF_OPS_H

#include "../nf_impl.h"

#define NF_DECLARE_OP(pfx)                                  \
    int pfx##_prepare(nf_model *m, nf_node *n, nf_err *err); \
    int pfx##_infer(nf_model *m, nf_node *n, nf_err *err);   \
    int pfx##_run(nf_model *m, nf_node *n, nf_err *err)

/* ml_trees.c */
NF_DECLARE_OP(nf_op_tree_regressor);
NF_DECLARE_OP(nf_op_tree_classifier);
/* ml_linear.c */
NF_DECLARE_OP(nf_op_linear_regressor);
NF_DECLARE_OP(nf_op_linear_classifier);
NF_DECLARE_OP(nf_op_scaler);
NF_DECLARE_OP(nf_op_normalizer);
/* basic.c */
NF_DECLARE_OP(nf_op_cast);
NF_DECLARE_OP(nf_op_constant);
NF_DECLARE_OP(nf_op_dropout);
NF_DECLARE_OP(nf_op_identity);

#include "ops_nn.h"

#endif
