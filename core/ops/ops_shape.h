/*
 * ops_shape.h: hooks of core/ops/shape*.c, the shape and data-movement
 * operators, and the few helpers those files share (defined in shape.c).
 * None of these kernels does arithmetic on the data: every element type
 * is copied by its size (strings as their char * pointers).
 */
#ifndef NF_OPS_SHAPE_H
#define NF_OPS_SHAPE_H

#include <string.h>

/* shape.c: shapes in, shapes out */
NF_DECLARE_OP(nf_op_reshape);
NF_DECLARE_OP(nf_op_flatten);
NF_DECLARE_OP(nf_op_squeeze);
NF_DECLARE_OP(nf_op_unsqueeze);
NF_DECLARE_OP(nf_op_shape);
NF_DECLARE_OP(nf_op_size);
NF_DECLARE_OP(nf_op_constant_of_shape);
NF_DECLARE_OP(nf_op_range);
/* shape_copy.c: strided copies */
NF_DECLARE_OP(nf_op_transpose);
NF_DECLARE_OP(nf_op_concat);
NF_DECLARE_OP(nf_op_split);
NF_DECLARE_OP(nf_op_slice);
NF_DECLARE_OP(nf_op_tile);
NF_DECLARE_OP(nf_op_pad);
/* shape_gather.c: indices from data */
NF_DECLARE_OP(nf_op_gather);
NF_DECLARE_OP(nf_op_gather_elements);
NF_DECLARE_OP(nf_op_gather_nd);

/* ---- helpers shared by shape*.c (shape.c) ------------------------------- */

/* The code for a bad value found while running node kernels: during
 * constant folding every input is part of the model (NF_EMODEL); at run
 * time the value came from the request (runtime_code, NF_EINVAL for a bad
 * number, NF_ESHAPE for shapes that do not fit). */
static inline int nf__shape_code(const nf_model *m, int runtime_code)
{
    return m->folding ? NF_EMODEL : runtime_code;
}

/* Element i of an int32 or int64 tensor (callers checked the dtype). */
static inline int64_t nf__shape_int_at(const nf_value *v, int64_t i)
{
    return v->dtype == NF_DT_INT32 ? ((const int32_t *)v->data)[i] : ((const int64_t *)v->data)[i];
}

/* Reads input `in` of n, an int32 or int64 tensor of rank 0 or 1 named
 * `what` in messages, into out[0..max). Sets *count. Fails naming node and
 * input when the input is absent, of another type, or longer than max. */
int nf__shape_ints(nf_model *m, nf_node *n, int in, const char *what, int64_t *out, int max, int *count,
                   nf_err *err);

/* Maps axis from [-rank, rank) (or [-rank, rank] when inclusive) to
 * [0, rank); fails naming node and `what`. */
int nf__shape_axis(nf_model *m, nf_node *n, int64_t axis, int rank, int inclusive, const char *what, int *out,
                   nf_err *err);

/* nf_value_set on output `out` of n; a shape that is negative or too large
 * fails naming the node, with nf__shape_code(m, NF_EINVAL). */
int nf__shape_set(nf_model *m, nf_node *n, int out, int dtype, int n_dims, const int64_t *dims, nf_err *err);

/* Product of dims[lo..hi), saturating at INT64_MAX: a tensor with a zero
 * dimension is empty however large its other dimensions, whose product may
 * overflow; nf_value_set refuses the saturated value as too large. */
int64_t nf__shape_prod(const int64_t *dims, int lo, int hi);

/* a * b and a + b for a, b >= 0, saturating at INT64_MAX. */
int64_t nf__shape_mul(int64_t a, int64_t b);
int64_t nf__shape_add(int64_t a, int64_t b);

/* "[2,3,4]" into buf (for messages); returns buf. */
const char *nf__shape_str(char *buf, size_t cap, int n_dims, const int64_t *dims);

/* Writes count copies of the esz-byte element at elem to dst. */
void nf__shape_fill(void *dst, const void *elem, int64_t count, size_t esz);

/* dst[i0..ik] = src[i0 * strides[0] + ... + ik * strides[k]]: a copy of
 * esz-byte elements into contiguous dst from a strided view of src.
 * strides are in elements and may be zero or negative; n_dims <=
 * 2 * NF_MAX_DIMS. Merges axes first, so contiguous rows become memcpy and
 * the last two axes are copied in cache-sized tiles. */
void nf__strided_copy(void *dst, const void *src, int n_dims, const int64_t *dims, const int64_t *strides,
                      size_t esz);

/* Copies one element of esz bytes; the constant sizes compile to one move
 * and need no alignment. */
static inline void nf__shape_copy_elem(void *dst, const void *src, size_t esz)
{
    switch (esz) {
    case 1: memcpy(dst, src, 1); break;
    case 2: memcpy(dst, src, 2); break;
    case 4: memcpy(dst, src, 4); break;
    case 8: memcpy(dst, src, 8); break;
    default: memcpy(dst, src, esz); break;
    }
}

#endif
