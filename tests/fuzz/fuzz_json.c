/*
 * fuzz_json.c: nf_json_parse, then nf_decode_body(NF_FMT_JSON) on the same
 * bytes against the default model's input ([-1, 10] float32), rows of
 * strings, and four named inputs of several ranks and dtypes.
 */
#include <json-c/json.h>

#include "fuzz.h"

static const fz_decl decls[] = {FZ_DEFAULT, FZ_STRINGS, FZ_NAMED};
static nf_input_slot slots[4];
static nf_buf aux;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct json_object *o = NULL;
    nf_err err = {0};
    int rc = nf_json_parse((const char *)data, size, &o, &err);
    FZ_ASSERT(rc == 0 || (rc == NF_ESYNTAX && strncmp(err.msg, "line ", 5) == 0));
    json_object_put(o);
    for (size_t i = 0; i < sizeof decls / sizeof decls[0]; i++)
        fz_decode(NF_FMT_JSON, data, size, &decls[i], slots, &aux);
    return 0;
}
