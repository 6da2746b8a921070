/* hooks of core/ops/norm*.c */
/* norm.c */
NF_DECLARE_OP(nf_op_batchnorm);     /* opset 6-13: inference outputs only */
NF_DECLARE_OP(nf_op_batchnorm14);   /* opset 14+: training_mode */
NF_DECLARE_OP(nf_op_instancenorm);
NF_DECLARE_OP(nf_op_layernorm);
/* norm_softmax.c: Softmax, LogSoftmax, Hardmax */
NF_DECLARE_OP(nf_op_softmax);       /* opset 13+: along one axis */
NF_DECLARE_OP(nf_op_softmax_2d);    /* opset < 13: coerced to 2-D at axis */
/* norm_reduce.c: Reduce*, ArgMax, ArgMin */
NF_DECLARE_OP(nf_op_reduce);        /* axes attribute */
NF_DECLARE_OP(nf_op_reduce_axes_in); /* axes input: ReduceSum 13+, the others 18+ */
NF_DECLARE_OP(nf_op_argminmax);
