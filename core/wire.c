/*
 * wire.c: a bounded, iterative pre-scan of the protobuf wire format
 * (protobuf.dev "Encoding") driven by the generated descriptors, run before
 * protobuf-c unpacks a model. protobuf-c recurses once per nested message
 * and has no depth limit, so a small crafted file (a GraphProto ->
 * NodeProto -> AttributeProto chain thousands deep) overflows its stack.
 * Here nesting is counted with an explicit stack and refused beyond
 * NF_WIRE_MAX_DEPTH; truncated fields and bad tags are reported with their
 * byte offset.
 */
#include <protobuf-c/protobuf-c.h>

#include "nf_impl.h"
#include "onnx.pb-c.h"

/* Real ONNX models nest Model > Graph > Node > Attribute > Graph > ... a
 * few levels per control-flow subgraph; 64 leaves room for deep If/Loop
 * nests and keeps protobuf-c's recursion far from any stack limit. */
#define NF_WIRE_MAX_DEPTH 64

static int read_varint(const uint8_t *p, size_t end, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pos >= end)
            return -1;
        uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

int nf__wire_check(const void *buf, size_t len, nf_err *err)
{
    struct frame {
        const ProtobufCMessageDescriptor *desc;
        size_t end;
    } stack[NF_WIRE_MAX_DEPTH + 1];
    const uint8_t *p = buf;
    int depth = 0;
    size_t pos = 0;
    stack[0].desc = &onnx__model_proto__descriptor;
    stack[0].end = len;
    for (;;) {
        while (depth > 0 && pos == stack[depth].end)
            depth--;
        if (pos == stack[depth].end)
            break; /* depth 0 and all read */
        size_t end = stack[depth].end;
        uint64_t key;
        size_t at = pos;
        if (read_varint(p, end, &pos, &key) != 0)
            return nf_err_set(err, NF_EMODEL, "not a valid ONNX model: truncated field tag at byte %zu", at);
        uint32_t field = (uint32_t)(key >> 3), wt = (uint32_t)(key & 7);
        if (field == 0 || (key >> 3) > 0x1fffffff)
            return nf_err_set(err, NF_EMODEL, "not a valid ONNX model: bad field number at byte %zu", at);
        uint64_t n;
        switch (wt) {
        case 0: /* varint */
            if (read_varint(p, end, &pos, &n) != 0)
                return nf_err_set(err, NF_EMODEL, "not a valid ONNX model: truncated varint at byte %zu", at);
            break;
        case 1: /* 64-bit */
            if (end - pos < 8)
                return nf_err_set(err, NF_EMODEL, "not a valid ONNX model: truncated at byte %zu", at);
            pos += 8;
            break;
        case 5: /* 32-bit */
            if (end - pos < 4)
                return nf_err_set(err, NF_EMODEL, "not a valid ONNX model: truncated at byte %zu", at);
            pos += 4;
            break;
        case 2: { /* length-delimited: bytes, string, packed, or a message */
            if (read_varint(p, end, &pos, &n) != 0 || n > end - pos)
                return nf_err_set(err, NF_EMODEL,
                                  "not a valid ONNX model: field %u at byte %zu claims more bytes than remain (file truncated?)",
                                  field, at);
            const ProtobufCFieldDescriptor *fd =
                stack[depth].desc ? protobuf_c_message_descriptor_get_field(stack[depth].desc, field) : NULL;
            if (fd != NULL && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (depth == NF_WIRE_MAX_DEPTH)
                    return nf_err_set(err, NF_EMODEL,
                                      "not a valid ONNX model: messages nested deeper than %d levels at byte %zu",
                                      NF_WIRE_MAX_DEPTH, at);
                depth++;
                stack[depth].desc = fd->descriptor;
                stack[depth].end = pos + (size_t)n;
            } else {
                pos += (size_t)n;
            }
            break;
        }
        default: /* 3, 4: groups (not in onnx.proto); 6, 7: invalid */
            return nf_err_set(err, NF_EMODEL, "not a valid ONNX model: wire type %u at byte %zu", wt, at);
        }
    }
    return NF_OK;
}
