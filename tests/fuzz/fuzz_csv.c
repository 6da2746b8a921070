/*
 * fuzz_csv.c: nf_decode_body(NF_FMT_CSV) against the default model's input
 * ([-1, 10] float32), rows of strings (quoting), and int64 and bool rows of
 * any width (exact integers, range checks, true/false).
 */
#include "fuzz.h"

static const fz_decl decls[] = {FZ_DEFAULT, FZ_STRINGS, FZ_INTS(NF_DT_INT64), FZ_INTS(NF_DT_BOOL)};
static nf_input_slot slots[1];
static nf_buf aux;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < sizeof decls / sizeof decls[0]; i++)
        fz_decode(NF_FMT_CSV, data, size, &decls[i], slots, &aux);
    return 0;
}
