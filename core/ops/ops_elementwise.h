/* hooks of core/ops/elementwise*.c */
/* elementwise.c: Add Sub Mul Div Mod Pow PRelu BitShift, Equal Less
 * Greater LessOrEqual GreaterOrEqual, And Or Xor (one family, the operator
 * found by name at prepare) */
NF_DECLARE_OP(nf_op_ew_binary);
/* elementwise.c: Max Min Sum Mean */
NF_DECLARE_OP(nf_op_ew_variadic);
NF_DECLARE_OP(nf_op_where);
NF_DECLARE_OP(nf_op_expand);
/* elementwise_unary.c: the one-input operators except Clip */
NF_DECLARE_OP(nf_op_ew_unary);
NF_DECLARE_OP(nf_op_clip);
