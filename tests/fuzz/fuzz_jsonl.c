/*
 * fuzz_jsonl.c: nf_decode_body(NF_FMT_JSONL) against the default model's
 * input ([-1, 10] float32), rows of strings, and uint64 and int8 rows of
 * any width.
 */
#include "fuzz.h"

static const fz_decl decls[] = {FZ_DEFAULT, FZ_STRINGS, FZ_INTS(NF_DT_UINT64), FZ_INTS(NF_DT_INT8)};
static nf_input_slot slots[1];
static nf_buf aux;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < sizeof decls / sizeof decls[0]; i++)
        fz_decode(NF_FMT_JSONL, data, size, &decls[i], slots, &aux);
    return 0;
}
