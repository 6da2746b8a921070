/*
 * test_hostile.c: hostile model files (tests/models/hostile/, written by
 * its make.py; the table is its README.md) must fail to load with the
 * status and message listed here: no crash, no hang, and no allocation of
 * what a lying shape claims (the whole table loads in well under 256 MB).
 * Tree nodes pointing outside their tree or forming cycles are
 * tests/models/bad/, checked by test_ml_ops.c. Run from the repository root.
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "harness.h"
#include "nf.h"

#define DIR "tests/models/hostile/"

static const struct hcase {
    const char *file;
    int code;
    const char *frag; /* must occur in the message */
} cases[] = {
    /* not ONNX */
    {"no_such_file.onnx", NF_EIO, "cannot open: No such file or directory"},
    {".", NF_EIO, "not a regular file"},
    {"empty.onnx", NF_EMODEL, "file is empty"},
    {"truncated.onnx", NF_EMODEL, "claims more bytes than remain (file truncated?)"},
    {"random.onnx", NF_EMODEL, "not a valid ONNX model"},
    {"text.onnx", NF_EMODEL, "not a valid ONNX model"},
    {"huge_length.onnx", NF_EMODEL, "field 7 at byte 2 claims more bytes than remain"},
    {"long_varint.onnx", NF_EMODEL, "truncated varint at byte"},
    {"nested_64.onnx", NF_EMODEL, "has no op_type"},
    {"nested_67.onnx", NF_EMODEL, "messages nested deeper than 64 levels"},
    {"nested_5000.onnx", NF_EMODEL, "messages nested deeper than 64 levels"},
    /* tensors that lie about their size */
    {"init_dim_2p31.onnx", NF_EMODEL, "initializer 'w': has 0 values, its shape needs 2147483648"},
    {"init_dims_product.onnx", NF_EMODEL, "initializer 'w': tensor 'w': shape too large"},
    {"init_dims_overflow.onnx", NF_EMODEL, "initializer 'w': tensor 'w': shape too large"},
    {"init_dim_negative.onnx", NF_EMODEL, "dimension 0 is negative (-4)"},
    {"init_rank_9.onnx", NF_EUNSUPPORTED, "9 dimensions, at most 8 supported"},
    {"init_dtype_99.onnx", NF_EUNSUPPORTED, "data type 99 is not supported"},
    {"raw_short.onnx", NF_EMODEL, "raw_data has 8 bytes, shape and type need 16"},
    {"raw_long.onnx", NF_EMODEL, "raw_data has 8 bytes, shape and type need 4"},
    {"float_data_short.onnx", NF_EMODEL, "has 3 values, its shape needs 4"},
    {"int8_data_long.onnx", NF_EMODEL, "has 3 values, its shape needs 2"},
    {"string_data_short.onnx", NF_EMODEL, "has 2 values, its shape needs 3"},
    {"constant_attr_short.onnx", NF_EMODEL, "node 'const' attribute 'value': has 1 values, its shape needs 2147483648"},
    {"fold_huge.onnx", NF_EMODEL, "node 'cos' (ConstantOfShape): output tensor 'c': 1099511627776 elements is too large"},
    {"input_dim_2p31.onnx", NF_EMODEL, "graph input 'x': dimension 1 is 2147483648"},
    {"input_dims_product.onnx", NF_EMODEL, "graph input 'x': tensor 'x': shape too large"},
    {"input_rank_9.onnx", NF_EUNSUPPORTED, "graph input 'x': 9 dimensions, at most 8 supported"},
    {"input_sequence.onnx", NF_EUNSUPPORTED, "only tensor types are supported"},
    /* external data */
    {"ext_parent.onnx", NF_EMODEL, "location '../x.bin' is outside the model directory"},
    {"ext_parent_inner.onnx", NF_EMODEL, "location 'sub/../../x.bin' is outside the model directory"},
    {"ext_absolute.onnx", NF_EMODEL, "location '/etc/passwd' is outside the model directory"},
    {"ext_symlink.onnx", NF_EMODEL, "location 'ext_link_passwd' is or passes through a symbolic link"},
    {"ext_symlink_dir.onnx", NF_EMODEL, "location 'ext_link_etc/passwd' is or passes through a symbolic link"},
    {"ext_missing.onnx", NF_EIO, "external data 'no_such_file.bin': No such file or directory"},
    {"ext_short.onnx", NF_EMODEL, "'ext_16.bin' is shorter than offset 0 + 32 bytes"},
    {"ext_offset.onnx", NF_EMODEL, "'ext_16.bin' is shorter than offset 1099511627776 + 16 bytes"},
    {"ext_length.onnx", NF_EMODEL, "external data length 12, expected 16 bytes"},
    {"ext_huge.onnx", NF_EMODEL, "'ext_16.bin' is shorter than offset 0 + 8589934592 bytes"},
    {"ext_no_location.onnx", NF_EMODEL, "external data without a location"},
    /* graphs */
    {"op_unsupported.onnx", NF_EUNSUPPORTED, "1 node with unsupported operators: LSTM (node 'lstm_1', opset 17)"},
    {"op_custom_domain.onnx", NF_EUNSUPPORTED, "com.evil.Frobnicate (node 'f', opset 1)"},
    {"op_domain_not_imported.onnx", NF_EUNSUPPORTED, "domain 'ai.onnx.ml' is not imported"},
    {"op_empty.onnx", NF_EMODEL, "node 0 ('anon') has no op_type"},
    {"dangling_input.onnx", NF_EMODEL, "input 1 'nope' is not produced by any node, initializer or graph input"},
    {"dangling_output.onnx", NF_EMODEL, "graph output 'z' is not produced"},
    {"cycle.onnx", NF_EMODEL, "is part of a cycle"},
    {"self_loop.onnx", NF_EMODEL, "node 'n' (Add): is part of a cycle"},
    {"dup_output.onnx", NF_EMODEL, "output 0 of node 'r2' 'y' is defined twice"},
    {"dup_input.onnx", NF_EMODEL, "graph input 'x' is defined twice"},
    {"dup_initializer.onnx", NF_EMODEL, "initializer 'w' is defined twice"},
    {"output_shadows_input.onnx", NF_EMODEL, "output 0 of node 'r' 'x' is defined twice"},
    {"no_outputs.onnx", NF_EMODEL, "the graph has no outputs"},
    {"no_graph.onnx", NF_EMODEL, "the model has no graph"},
};

int main(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct hcase *c = &cases[i];
        char path[256], name[300];
        snprintf(path, sizeof path, DIR "%s", c->file);
        snprintf(name, sizeof name, "hostile %s", c->file);
        nf_model *m = NULL;
        nf_err err = {0};
        int rc = nf_model_load(path, NULL, &m, &err);
        T_CHECK(name, rc == c->code && m == NULL && strstr(err.msg, c->frag) != NULL,
                "rc %d (want %d), message '%s' (want '%s')", rc, c->code, rc ? err.msg : "", c->frag);
        nf_model_free(m);
    }
    /* Loads: a graph input that is also a graph output, declared there as
     * int64 [3], keeps its input declaration (float32 [N, 2]). */
    {
        nf_model *m = NULL;
        nf_err err = {0};
        int rc = nf_model_load(DIR "output_is_input.onnx", NULL, &m, &err);
        const nf_tensor *in = rc == NF_OK ? nf_model_input(m, 0) : NULL;
        T_CHECK("hostile output_is_input.onnx keeps the input's declaration",
                in && in->dtype == NF_DT_FLOAT && in->n_dims == 2 && in->dims[0] == -1 && in->dims[1] == 2,
                "rc %d %s, dtype %d, rank %d", rc, err.msg, in ? in->dtype : -1, in ? in->n_dims : -1);
        nf_model_free(m);
    }
    /* A shape that lies must not be allocated: [2^31] floats is 8 GB. */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    T_CHECK("hostile models load in bounded memory", ru.ru_maxrss < 256 * 1024, "max RSS %ld KB", ru.ru_maxrss);
    return T_DONE();
}
