/*
 * test_dense.c: the dense kernels' fast paths against plain references:
 * nf__gemm, nf__gemm_bias and the packed-B product (our AVX-512 kernel
 * where the CPU has it, OpenBLAS elsewhere) over shapes that hit every
 * edge of the kernel's blocking; Conv models built here (1-D to 3-D,
 * groups, strides, dilations, padding, batches that take each of Conv's
 * paths) against a direct loop; the float32 erf; and the models in
 * models/ run as one batch against the same rows run one at a time.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "nf.h"
#include "onnx.pb-c.h"
#include "ops/ops_dense.h"
#include "ops/ops_vec.h"

static unsigned rng = 12345;
static float frand(void)
{
    rng = rng * 1103515245u + 12345u;
    return (float)((rng >> 8) & 0xffff) / 65536.0f - 0.5f;
}

/* max over C of |got - ref| / (sum_k |a b| + |beta c| + |bias| + 1e-30),
 * and whether C's padding columns (ldc > N) kept their canary */
static double gemm_err(int dtype, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, double beta,
                       bool use_bias, int packed, bool *pad_ok)
{
    int64_t lda = ta ? M + 3 : K + 2, ldb = tb ? K + 1 : N + 5, ldc = N + 4;
    size_t es = dtype == NF_DT_FLOAT ? 4 : 8;
    int64_t na = (ta ? K : M) * lda, nbb = (tb ? N : K) * ldb;
    char *A = malloc((size_t)na * es + 1), *B = malloc((size_t)nbb * es + 1), *C = malloc((size_t)(M * ldc) * es + 1);
    double *C0 = malloc(sizeof(double) * (size_t)(M * ldc + 1)), *bias = malloc(sizeof(double) * (size_t)(M + 1));
    float *fbias = malloc(sizeof(float) * (size_t)(M + 1));
#define SET(p, i, v) (dtype == NF_DT_FLOAT ? (void)(((float *)(p))[i] = (float)(v)) : (void)(((double *)(p))[i] = (v)))
#define GET(p, i) (dtype == NF_DT_FLOAT ? (double)((float *)(p))[i] : ((double *)(p))[i])
    for (int64_t i = 0; i < na; i++)
        SET(A, i, frand());
    for (int64_t i = 0; i < nbb; i++)
        SET(B, i, frand());
    for (int64_t i = 0; i < M; i++)
        fbias[i] = (float)(bias[i] = frand());
    for (int64_t i = 0; i < M * ldc; i++) {
        /* beta == 0 must not read C: NaN there must not come through */
        double v = (i % ldc >= N) ? 777.0 : beta == 0 ? NAN : frand();
        SET(C, i, v);
        C0[i] = GET(C, i);
    }
    if (packed) {
        float *pk = aligned_alloc(64, (nf__sgemm_pack_size(K, N) + 63) / 64 * 64);
        nf__sgemm_pack(tb, K, N, (const float *)B, ldb, pk);
        nf__sgemm_packed(ta, M, N, K, (float)alpha, (const float *)A, lda, pk, (float)beta, (float *)C, ldc);
        free(pk);
    } else if (use_bias) {
        nf__gemm_bias(dtype, M, N, K, A, lda, B, ldb, dtype == NF_DT_FLOAT ? (void *)fbias : (void *)bias, C, ldc);
    } else {
        nf__gemm(dtype, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    }
    double worst = 0;
    *pad_ok = true;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < ldc; j++) {
            double got = GET(C, i * ldc + j);
            if (j >= N) {
                if (got != 777.0)
                    *pad_ok = false;
                continue;
            }
            double ref = 0, mag = 0;
            for (int64_t k = 0; k < K; k++) {
                double a = GET(A, ta ? k * lda + i : i * lda + k), b = GET(B, tb ? j * ldb + k : k * ldb + j);
                ref += a * b;
                mag += fabs(a * b);
            }
            ref *= alpha;
            mag *= fabs(alpha);
            if (use_bias) {
                ref += dtype == NF_DT_FLOAT ? fbias[i] : bias[i];
                mag += fabs(bias[i]);
            } else if (beta != 0) {
                ref += beta * C0[i * ldc + j];
                mag += fabs(beta * C0[i * ldc + j]);
            }
            double e = fabs(got - ref) / (mag + 1e-30);
            if (!(e <= worst)) /* NaN counts as the worst */
                worst = isnan(e) ? INFINITY : e;
        }
#undef SET
#undef GET
    free(A);
    free(B);
    free(C);
    free(C0);
    free(bias);
    free(fbias);
    return worst;
}

static void test_gemm(void)
{
    static const int64_t Ms[] = {1, 2, 5, 6, 7, 12, 13, 33};
    static const int64_t Ns[] = {1, 15, 16, 17, 63, 64, 65, 130};
    static const int64_t Ks[] = {1, 9, 127, 128, 129, 300};
    int cases = 0, bad_err = 0, bad_pad = 0;
    char first_bad[200] = "";
    for (int dt = 0; dt < 2; dt++)
        for (size_t a = 0; a < sizeof Ms / sizeof Ms[0]; a++)
            for (size_t b = 0; b < sizeof Ns / sizeof Ns[0]; b++)
                for (size_t c = 0; c < sizeof Ks / sizeof Ks[0]; c++) {
                    int64_t M = Ms[a], N = Ns[b], K = Ks[c];
                    int variant = (int)((a + b + c) % 6); /* spread the variants over the shapes */
                    bool ta = variant & 1, tb = variant & 2, bias = variant == 4;
                    double alpha = variant == 5 ? -1.5 : 1.0, beta = variant == 1 ? 0.5 : variant == 3 ? 1.0 : 0.0;
                    int packed = dt == 0 && variant == 5 && nf__sgemm_fast();
                    if (packed)
                        tb = b % 2; /* Gemm packs B^T, a plain B packs too */
                    bool pad_ok;
                    int dtype = dt == 0 ? NF_DT_FLOAT : NF_DT_DOUBLE;
                    double e = gemm_err(dtype, ta, tb, M, N, K, alpha, beta, bias, packed, &pad_ok);
                    double tol = dt == 0 ? 1e-5 : 1e-13;
                    cases++;
                    if (!(e <= tol) || !pad_ok) {
                        bad_err += !(e <= tol);
                        bad_pad += !pad_ok;
                        if (!first_bad[0])
                            snprintf(first_bad, sizeof first_bad,
                                     "%s M=%lld N=%lld K=%lld ta=%d tb=%d alpha=%g beta=%g bias=%d packed=%d: "
                                     "error %.3g, padding %s",
                                     dt == 0 ? "float" : "double", (long long)M, (long long)N, (long long)K, ta, tb,
                                     alpha, beta, bias, packed, e, pad_ok ? "kept" : "overwritten");
                    }
                }
    T_CHECK("dense/gemm matches a double reference over 768 shapes and variants", bad_err == 0 && bad_pad == 0,
            "%d of %d cases wrong (%d errors, %d padding overwrites); first: %s", bad_err + bad_pad, cases, bad_err,
            bad_pad, first_bad);
    bool pad_ok;
    T_CHECK("dense/gemm with M = 0 or N = 0 leaves C alone",
            gemm_err(NF_DT_FLOAT, false, false, 0, 5, 3, 1, 0, false, 0, &pad_ok) == 0 && pad_ok &&
                gemm_err(NF_DT_FLOAT, false, false, 3, 0, 3, 1, 0, false, 0, &pad_ok) == 0 && pad_ok,
            "an empty product wrote into C");
}

static void test_erf(void)
{
    double worst = 0, wx = 0;
    for (int i = -400000; i <= 400000; i++) {
        float x = (float)i * 1e-5f; /* [-4, 4], every branch and the 3.925 cut */
        double e = erf((double)x);
        float y = nf__erf_f32(x);
        double ulp = nextafterf((float)fabs(e), INFINITY) - (float)fabs(e);
        if (fabs(e) < 1e-30)
            ulp = 1e-45;
        double d = fabs((double)y - e) / ulp;
        if (d > worst) {
            worst = d;
            wx = x;
        }
    }
    T_CHECK("dense/erf_f32 within 3 ulp of erf on [-4, 4]", worst <= 3.0, "%.2f ulp at x = %.9g", worst, wx);
    T_CHECK("dense/erf_f32 of NaN, +-inf, -0", isnan(nf__erf_f32(NAN)) && nf__erf_f32(INFINITY) == 1.0f &&
                                                   nf__erf_f32(-INFINITY) == -1.0f && signbit(nf__erf_f32(-0.0f)),
            "erf(nan) %g, erf(inf) %g, erf(-inf) %g", nf__erf_f32(NAN), nf__erf_f32(INFINITY), nf__erf_f32(-INFINITY));
}

/* Runs model path on rows [0, n) at once and one at a time; inputs are
 * filled by fill(input index, element index, dtype, dst). Returns the
 * largest |batched - single| / (|single| + 1e-3) over output 0. */
typedef void (*fill_fn)(int input, int64_t i, void *dst);

static double batch_vs_single(const char *path, int64_t n, fill_fn fill, char *why, size_t cap)
{
    nf_model *m = NULL;
    nf_err err = {0};
    nf_opts opts = {.n_threads = 1};
    double worst = -1;
    if (nf_model_load(path, &opts, &m, &err) != NF_OK) {
        snprintf(why, cap, "%s: %s", path, err.msg);
        return -1;
    }
    int ni = nf_model_n_inputs(m);
    nf_tensor in[4], one[4], out[4];
    int64_t row[4];
    float *batched = NULL;
    int64_t per_row = 0;
    for (int i = 0; i < ni && i < 4; i++) {
        const nf_tensor *d = nf_model_input(m, i);
        in[i] = *d;
        in[i].dims[0] = n;
        row[i] = 1;
        for (int k = 1; k < d->n_dims; k++)
            row[i] *= d->dims[k];
        size_t es = nf_dtype_size(d->dtype);
        in[i].data = malloc((size_t)(n * row[i]) * es);
        for (int64_t e = 0; e < n * row[i]; e++)
            fill(i, e, (char *)in[i].data + (size_t)e * es);
        one[i] = in[i];
        one[i].dims[0] = 1;
    }
    if (nf_model_run(m, in, out, &err) != NF_OK) {
        snprintf(why, cap, "batch of %lld: %s", (long long)n, err.msg);
        goto done;
    }
    per_row = nf_tensor_count(&out[0]) / n;
    batched = malloc(sizeof(float) * (size_t)(n * per_row));
    memcpy(batched, out[0].data, sizeof(float) * (size_t)(n * per_row));
    worst = 0;
    for (int64_t r = 0; r < n; r++) {
        for (int i = 0; i < ni; i++)
            one[i].data = (char *)in[i].data + (size_t)(r * row[i]) * nf_dtype_size(in[i].dtype);
        if (nf_model_run(m, one, out, &err) != NF_OK) {
            snprintf(why, cap, "row %lld alone: %s", (long long)r, err.msg);
            worst = -1;
            goto done;
        }
        for (int64_t j = 0; j < per_row; j++) {
            double s = ((float *)out[0].data)[j], b = batched[r * per_row + j];
            double d = fabs(b - s) / (fabs(s) + 1e-3);
            if (!(d <= worst))
                worst = isnan(d) ? INFINITY : d;
        }
    }
done:
    free(batched);
    for (int i = 0; i < ni && i < 4; i++)
        free(in[i].data);
    nf_model_free(m);
    return worst;
}

static void fill_float(int input, int64_t i, void *dst)
{
    (void)input, (void)i;
    *(float *)dst = frand() * 8.0f;
}

static void fill_bert(int input, int64_t i, void *dst)
{
    /* input_ids in [0, 1000); attention_mask 1 but the last few tokens */
    *(int64_t *)dst = input == 0 ? (int64_t)((frand() + 0.5f) * 999.0f) : (i % 32 < 28);
}

static void test_models(void)
{
    static const struct {
        const char *path;
        int64_t n;
        fill_fn fill;
    } cases[] = {
        {"models/digits_cnn.onnx", 64, fill_float}, /* batched Conv: whole tiles */
        {"models/digits_cnn.onnx", 7, fill_float},  /* transposes with edges */
        {"models/digits_mlp.onnx", 13, fill_float},
        {"models/text_bert.onnx", 5, fill_bert},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char name[160], why[600] = "";
        snprintf(name, sizeof name, "dense/%s batch of %lld = rows one by one", cases[c].path, (long long)cases[c].n);
        double e = batch_vs_single(cases[c].path, cases[c].n, cases[c].fill, why, sizeof why);
        T_CHECK(name, e >= 0 && e <= 1e-4, "%s%s%.3g", why, why[0] ? "; " : "largest relative difference ", e);
    }
}

/* ---- Conv against a direct loop ---------------------------------------------- */
typedef struct conv_case {
    const char *what;
    int nd;                 /* spatial dims */
    int64_t N, C, M, group;
    int64_t in[3], k[3], s[3], d[3], pads[6];
    int bias;
} conv_case;

static int64_t conv_out(const conv_case *c, int i)
{
    return (c->in[i] + c->pads[i] + c->pads[c->nd + i] - (c->d[i] * (c->k[i] - 1) + 1)) / c->s[i] + 1;
}

/* A one-node model: Y = Conv(X, W[, B]) with X (N, C, in...) declared. */
static void *conv_model(const conv_case *c, const float *w, const float *b, size_t *len)
{
    int64_t wdims[5] = {c->M, c->C / c->group, c->k[0], c->k[1], c->k[2]}, bdims[1] = {c->M};
    int64_t nw = c->M * (c->C / c->group);
    for (int i = 0; i < c->nd; i++)
        nw *= c->k[i];
    Onnx__TensorProto tw = ONNX__TENSOR_PROTO__INIT, tb = ONNX__TENSOR_PROTO__INIT;
    tw.name = "W";
    tw.n_dims = (size_t)c->nd + 2;
    tw.dims = wdims;
    tw.has_data_type = 1;
    tw.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tw.n_float_data = (size_t)nw;
    tw.float_data = (float *)w;
    tb.name = "B";
    tb.n_dims = 1;
    tb.dims = bdims;
    tb.has_data_type = 1;
    tb.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tb.n_float_data = (size_t)c->M;
    tb.float_data = (float *)b;
    Onnx__TensorProto *inits[2] = {&tw, &tb};

    Onnx__AttributeProto a[6];
    Onnx__AttributeProto *ap[6];
    int64_t ks[3], st[3], dl[3], pd[6];
    const char *names[5] = {"kernel_shape", "strides", "dilations", "pads", "group"};
    int64_t *vals[4] = {ks, st, dl, pd};
    for (int i = 0; i < c->nd; i++) {
        ks[i] = c->k[i];
        st[i] = c->s[i];
        dl[i] = c->d[i];
        pd[i] = c->pads[i];
        pd[c->nd + i] = c->pads[c->nd + i];
    }
    for (int i = 0; i < 5; i++) {
        onnx__attribute_proto__init(&a[i]);
        a[i].name = (char *)names[i];
        a[i].has_type = 1;
        if (i < 4) {
            a[i].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
            a[i].n_ints = (size_t)(i == 3 ? 2 * c->nd : c->nd);
            a[i].ints = vals[i];
        } else {
            a[i].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
            a[i].has_i = 1;
            a[i].i = c->group;
        }
        ap[i] = &a[i];
    }
    char *ins[3] = {"X", "W", "B"}, *outs[1] = {"Y"};
    Onnx__NodeProto node = ONNX__NODE_PROTO__INIT;
    node.op_type = "Conv";
    node.name = "conv";
    node.n_input = c->bias ? 3 : 2;
    node.input = ins;
    node.n_output = 1;
    node.output = outs;
    node.n_attribute = 5;
    node.attribute = ap;
    Onnx__NodeProto *nodes[1] = {&node};

    Onnx__TensorShapeProto__Dimension dims[5], *dp[5];
    for (int i = 0; i < c->nd + 2; i++) {
        onnx__tensor_shape_proto__dimension__init(&dims[i]);
        if (i == 0) {
            dims[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dims[i].dim_param = "N";
        } else {
            dims[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dims[i].dim_value = i == 1 ? c->C : c->in[i - 2];
        }
        dp[i] = &dims[i];
    }
    Onnx__TensorShapeProto shape = ONNX__TENSOR_SHAPE_PROTO__INIT;
    shape.n_dim = (size_t)c->nd + 2;
    shape.dim = dp;
    Onnx__TypeProto__Tensor tt = ONNX__TYPE_PROTO__TENSOR__INIT, tty = ONNX__TYPE_PROTO__TENSOR__INIT;
    tt.has_elem_type = tty.has_elem_type = 1;
    tt.elem_type = tty.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt.shape = &shape;
    Onnx__TypeProto tx = ONNX__TYPE_PROTO__INIT, ty = ONNX__TYPE_PROTO__INIT;
    tx.value_case = ty.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tx.tensor_type = &tt;
    ty.tensor_type = &tty;
    Onnx__ValueInfoProto vx = ONNX__VALUE_INFO_PROTO__INIT, vy = ONNX__VALUE_INFO_PROTO__INIT;
    vx.name = "X";
    vx.type = &tx;
    vy.name = "Y";
    vy.type = &ty;
    Onnx__ValueInfoProto *vin[1] = {&vx}, *vout[1] = {&vy};

    Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
    graph.name = "conv_test";
    graph.n_node = 1;
    graph.node = nodes;
    graph.n_initializer = c->bias ? 2 : 1;
    graph.initializer = inits;
    graph.n_input = 1;
    graph.input = vin;
    graph.n_output = 1;
    graph.output = vout;
    Onnx__OperatorSetIdProto op = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    op.domain = "";
    op.has_version = 1;
    op.version = 17;
    Onnx__OperatorSetIdProto *ops[1] = {&op};
    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    model.has_ir_version = 1;
    model.ir_version = 8;
    model.n_opset_import = 1;
    model.opset_import = ops;
    model.graph = &graph;
    *len = onnx__model_proto__get_packed_size(&model);
    void *buf = malloc(*len);
    onnx__model_proto__pack(&model, buf);
    return buf;
}

/* Largest |Y - ref| / (sum |w x| + |b| + 1e-30) over the case's output. */
static double conv_check(const conv_case *c, char *why, size_t cap)
{
    int64_t kp = 1, plane = 1, op = 1, out[3];
    for (int i = 0; i < c->nd; i++) {
        kp *= c->k[i];
        plane *= c->in[i];
        out[i] = conv_out(c, i);
        op *= out[i];
    }
    int64_t cg = c->C / c->group, mg = c->M / c->group, nw = c->M * cg * kp, nx = c->N * c->C * plane;
    float *w = malloc(sizeof(float) * (size_t)nw), *b = malloc(sizeof(float) * (size_t)c->M);
    float *x = malloc(sizeof(float) * (size_t)nx);
    for (int64_t i = 0; i < nw; i++)
        w[i] = frand();
    for (int64_t i = 0; i < c->M; i++)
        b[i] = frand();
    for (int64_t i = 0; i < nx; i++)
        x[i] = frand() * 4.0f;
    size_t len;
    void *buf = conv_model(c, w, b, &len);
    nf_model *m = NULL;
    nf_err err = {0};
    double worst = -1;
    if (nf_model_load_buffer(buf, len, NULL, NULL, &m, &err) != NF_OK) {
        snprintf(why, cap, "load: %s", err.msg);
        goto done;
    }
    nf_tensor in = {.name = "X", .dtype = NF_DT_FLOAT, .n_dims = c->nd + 2, .data = x}, out_t;
    in.dims[0] = c->N;
    in.dims[1] = c->C;
    for (int i = 0; i < c->nd; i++)
        in.dims[2 + i] = c->in[i];
    if (nf_model_run(m, &in, &out_t, &err) != NF_OK) {
        snprintf(why, cap, "run: %s", err.msg);
        goto done;
    }
    if (nf_tensor_count(&out_t) != c->N * c->M * op) {
        snprintf(why, cap, "output has %lld elements, expected %lld", (long long)nf_tensor_count(&out_t),
                 (long long)(c->N * c->M * op));
        goto done;
    }
    const float *y = out_t.data;
    worst = 0;
    /* canonical 3-D: leading spatial dims of size 1 */
    int lead = 3 - c->nd;
    int64_t I[3] = {1, 1, 1}, O[3] = {1, 1, 1}, K[3] = {1, 1, 1}, S[3] = {1, 1, 1}, D[3] = {1, 1, 1}, P[3] = {0, 0, 0};
    for (int i = 0; i < c->nd; i++) {
        I[lead + i] = c->in[i];
        O[lead + i] = out[i];
        K[lead + i] = c->k[i];
        S[lead + i] = c->s[i];
        D[lead + i] = c->d[i];
        P[lead + i] = c->pads[i];
    }
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t mo = 0; mo < c->M; mo++) {
            int64_t g = mo / mg;
            for (int64_t o0 = 0; o0 < O[0]; o0++)
                for (int64_t o1 = 0; o1 < O[1]; o1++)
                    for (int64_t o2 = 0; o2 < O[2]; o2++) {
                        double ref = c->bias ? b[mo] : 0, mag = c->bias ? fabs(b[mo]) : 0;
                        for (int64_t ci = 0; ci < cg; ci++)
                            for (int64_t k0 = 0; k0 < K[0]; k0++)
                                for (int64_t k1 = 0; k1 < K[1]; k1++)
                                    for (int64_t k2 = 0; k2 < K[2]; k2++) {
                                        int64_t i0 = o0 * S[0] + k0 * D[0] - P[0], i1 = o1 * S[1] + k1 * D[1] - P[1];
                                        int64_t i2 = o2 * S[2] + k2 * D[2] - P[2];
                                        if (i0 < 0 || i0 >= I[0] || i1 < 0 || i1 >= I[1] || i2 < 0 || i2 >= I[2])
                                            continue;
                                        double xv = x[((n * c->C + g * cg + ci) * I[0] + i0) * I[1] * I[2] + i1 * I[2] + i2];
                                        double wv = w[((mo * cg + ci) * K[0] + k0) * K[1] * K[2] + k1 * K[2] + k2];
                                        ref += xv * wv;
                                        mag += fabs(xv * wv);
                                    }
                        double got = y[((n * c->M + mo) * O[0] + o0) * O[1] * O[2] + o1 * O[2] + o2];
                        double e = fabs(got - ref) / (mag + 1e-30);
                        if (!(e <= worst))
                            worst = isnan(e) ? INFINITY : e;
                    }
        }
done:
    nf_model_free(m);
    free(buf);
    free(w);
    free(b);
    free(x);
    return worst;
}

static void test_conv(void)
{
    static const conv_case cases[] = {
        /* what, nd, N, C, M, group, in, k, s, d, pads, bias */
        {"2-D same, one image", 2, 1, 3, 8, 1, {5, 5}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1},
        {"2-D same, batch of 5 on 4x4", 2, 5, 16, 32, 1, {4, 4}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1},
        {"2-D same, batch of 70 (two image panels)", 2, 70, 2, 6, 1, {6, 6}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 0},
        {"2-D same, 4 groups of 3 output channels", 2, 3, 8, 12, 4, {7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1},
        {"2-D same, 4 groups, one image", 2, 1, 8, 12, 4, {7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1},
        {"2-D same, dilation 2 x 1", 2, 2, 4, 5, 1, {9, 9}, {3, 3}, {1, 1}, {2, 1}, {2, 1, 2, 1}, 1},
        {"2-D same, dilation 2 x 1, one image", 2, 1, 4, 5, 1, {9, 9}, {3, 3}, {1, 1}, {2, 1}, {2, 1, 2, 1}, 1},
        {"3-D same, one image", 3, 1, 2, 3, 1, {4, 5, 6}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1, 1, 1, 1}, 1},
        {"2-D same, dilation 2 x 2", 2, 2, 4, 5, 1, {9, 9}, {3, 3}, {1, 1}, {2, 2}, {2, 2, 2, 2}, 1},
        {"2-D stride 2, batch of 4", 2, 4, 3, 7, 1, {9, 9}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 1},
        {"2-D stride 2, one image", 2, 1, 3, 7, 1, {9, 9}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 1},
        {"2-D valid, batch of 2", 2, 2, 3, 4, 1, {8, 8}, {3, 3}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 1},
        {"2-D asymmetric pads", 2, 3, 2, 3, 1, {6, 7}, {2, 3}, {1, 1}, {1, 1}, {1, 0, 0, 2}, 1},
        {"2-D 20x20 (7 position panels)", 2, 1, 2, 4, 1, {20, 20}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1},
        {"2-D 1x1, batch of 6", 2, 6, 8, 4, 1, {5, 5}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 1},
        {"2-D 1x1, one image", 2, 1, 8, 13, 1, {5, 5}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 0},
        {"1-D same, batch of 3", 1, 3, 4, 6, 1, {20}, {5}, {1}, {1}, {2, 2}, 1},
        {"1-D stride 3, one image", 1, 1, 4, 6, 1, {20}, {4}, {3}, {1}, {1, 1}, 1},
        {"3-D same, batch of 2", 3, 2, 2, 3, 1, {4, 5, 6}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1, 1, 1, 1}, 1},
        {"3-D stride 2, one image", 3, 1, 2, 3, 1, {5, 5, 5}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1, 1, 1, 1}, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[160], why[600] = "";
        snprintf(name, sizeof name, "dense/conv %s matches a direct loop", cases[i].what);
        double e = conv_check(&cases[i], why, sizeof why);
        T_CHECK(name, e >= 0 && e <= 1e-5, "%s%s%.3g", why, why[0] ? "; " : "largest relative error ", e);
    }
}

int main(void)
{
    test_gemm();
    test_conv();
    test_erf();
    test_models();
    return T_DONE();
}
