/*
 * wire.c: a bounded, iterative pre-scan of the protobuf wire format
 * (protobuf.dev "Encoding") driven by the generated descriptors, run before
 * protobuf-c unpacks a model. protobuf-c recurses once per nested message
 * and has no depth limit, so a small crafted file (a GraphProto ->
 * NodeProto -> AttributeProto chain thousands deep) overflows its stack.
 * Here nesting is counted with an explicit stack and refused beyond
 * NF_WIRE_MAX_DEPTH; truncated fields and bad tags are reported with their
 * byte offset.
 *
 * The same pass can write the message back with every run of unpacked
 * repeated scalars packed. onnx.proto is proto2, so AttributeProto.ints and
 * .floats are unpacked: a tree ensemble is ~500k one-number fields, and
 * protobuf-c spends ~150 instructions on each (a scanned-member record, a
 * dispatch, a copy) against ~20 for an element of a packed field. Parsers
 * must read both encodings alike (protobuf.dev "Encoding", packed repeated
 * fields), so the rewrite changes cost, never meaning.
 *
 * Long runs of an AttributeProto's ints, floats or strings (a tree
 * ensemble's node arrays: 50k-900k elements each) go further: they are
 * moved, packed, into field 12 of the attribute (reserved in onnx.proto,
 * so protobuf-c keeps it as one unknown field, a single copy of bytes)
 * behind a byte naming the field they came from, and the loader decodes
 * them itself (onnx_load.c, NF_WIRE_DETACHED): protobuf-c's per-element
 * work (a scanned-member record, a dispatch; an allocation and a copy per
 * string) was 25M of the 62M instructions of loading the default forest.
 * A field 12 already in the input is dropped (it has no meaning in ONNX),
 * so only ours reach the loader. Once a field is moved in an attribute,
 * its later runs are moved too, so the loader reads the field as the
 * elements protobuf-c kept followed by the moved runs in order.
 */
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "nf_impl.h"
#include "onnx.pb-c.h"

/* Real ONNX models nest Model > Graph > Node > Attribute > Graph > ... a
 * few levels per control-flow subgraph; 64 leaves room for deep If/Loop
 * nests and keeps protobuf-c's recursion far from any stack limit. */
#define NF_WIRE_MAX_DEPTH 64

static inline int read_varint(const uint8_t *p, size_t end, size_t *pos, uint64_t *out)
{
    if (*pos < end && p[*pos] < 0x80) { /* one byte: most tags and lengths */
        *out = p[(*pos)++];
        return 0;
    }
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

static size_t put_varint(uint8_t *o, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        o[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    o[n++] = (uint8_t)v;
    return n;
}

/* One open message. The output fields are used only when writing. */
typedef struct frame {
    const ProtobufCMessageDescriptor *desc;
    unsigned moved;  /* AttributeProto: bit f set once field f (7, 8, 9) was moved to field 12 */
    size_t end;      /* input offset just past the message */
    size_t len_at;   /* output offset of its length prefix */
    size_t len_room; /* bytes the input's length prefix took: the rewritten one fits */
    uint32_t last_field;                       /* descriptor lookup cache: repeated */
    const ProtobufCFieldDescriptor *last_fd;   /* fields come one after another */
} frame;

static const ProtobufCFieldDescriptor *field_of(frame *f, uint32_t field)
{
    if (field != f->last_field) {
        f->last_field = field;
        f->last_fd = protobuf_c_message_descriptor_get_field(f->desc, field);
    }
    return f->last_fd;
}

/* The wire type of one element of fd when fd is a repeated scalar that
 * may be packed (protobuf-c's is_packable_type), else -1. */
static int packable_wt(const ProtobufCFieldDescriptor *fd)
{
    if (fd == NULL || fd->label != PROTOBUF_C_LABEL_REPEATED)
        return -1;
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_BOOL: case PROTOBUF_C_TYPE_ENUM:
        return 0;
    case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 1;
    case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_SFIXED32: case PROTOBUF_C_TYPE_FLOAT:
        return 5;
    default:
        return -1;
    }
}

/* Payload of one scalar element of wire type wt (0, 1 or 5) starting at
 * *pos; at is its tag's offset, for messages. Same checks and messages as
 * the field-by-field loop below. */
static inline int skip_scalar(const uint8_t *p, size_t end, size_t *pos, uint32_t wt, size_t at, nf_err *err)
{
    uint64_t n;
    switch (wt) {
    case 0:
        if (read_varint(p, end, pos, &n) != 0)
            return nf_err_set(err, NF_EMODEL, "not a valid ONNX model: truncated varint at byte %zu", at);
        return NF_OK;
    case 1:
        if (end - *pos < 8)
            return nf_err_set(err, NF_EMODEL, "not a valid ONNX model: truncated at byte %zu", at);
        *pos += 8;
        return NF_OK;
    default:
        if (end - *pos < 4)
            return nf_err_set(err, NF_EMODEL, "not a valid ONNX model: truncated at byte %zu", at);
        *pos += 4;
        return NF_OK;
    }
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Packs the run of elements with tag key that starts at input offset at
 * (its first tag read, *pos past it): checks each element as the
 * field-by-field loop would (same messages), copies the payloads (varints
 * as they are) to out + op behind one tag and the payload length, and stops
 * before the first field with another tag (or one that does not parse: the
 * caller reports it). Sets *n_el and *op_end; with one element the output
 * is to be discarded. Writes at most len + 10 bytes of out (see
 * nf__wire_pack). */
static int pack_run(const uint8_t *p, size_t end, size_t at, uint64_t key, size_t *pos, uint8_t *out,
                    size_t op, size_t *op_end, size_t *n_el, nf_err *err)
{
    const uint32_t wt = (uint32_t)(key & 7);
    const size_t w = wt == 1 ? 8 : 4;
    uint8_t *o = out + op;
    size_t t = put_varint(o, (key & ~(uint64_t)7) | 2);
    size_t room = varint_len(end - at); /* the payload is shorter than the rest of the message */
    uint8_t *d0 = o + t + room, *d = d0;
    size_t q = *pos, n = 0;
    if (key < 0x80) {
        /* one-byte tag, every ONNX field: tight loops */
        const uint8_t kb = (uint8_t)key;
        if (wt == 0) {
            for (;;) {
                if (q < end && p[q] < 0x80) { /* ids and counts: one or two bytes */
                    *d++ = p[q++];
                } else if (end - q >= 2 && p[q + 1] < 0x80) {
                    d[0] = p[q];
                    d[1] = p[q + 1];
                    d += 2;
                    q += 2;
                } else {
                    size_t lim = end - q < 10 ? end : q + 10;
                    const size_t s = q;
                    while (q < lim && (p[q] & 0x80))
                        *d++ = p[q++];
                    if (q == lim)
                        return nf_err_set(err, NF_EMODEL, "not a valid ONNX model: truncated varint at byte %zu",
                                          s - 1);
                    *d++ = p[q++];
                }
                n++;
                if (q == end || p[q] != kb)
                    break;
                q++;
            }
        } else {
            for (;;) {
                if (end - q < w)
                    return nf_err_set(err, NF_EMODEL, "not a valid ONNX model: truncated at byte %zu", q - 1);
                memcpy(d, p + q, w);
                d += w;
                q += w;
                n++;
                if (q == end || p[q] != kb)
                    break;
                q++;
            }
        }
    } else {
        for (;;) {
            size_t s = q;
            int rc = skip_scalar(p, end, &q, wt, at, err);
            if (rc != NF_OK)
                return rc;
            memcpy(d, p + s, q - s);
            d += q - s;
            n++;
            if (q == end)
                break;
            size_t next = q;
            uint64_t k2;
            if (read_varint(p, end, &q, &k2) != 0 || k2 != key) {
                q = next;
                break;
            }
            at = next;
        }
    }
    *pos = q;
    *n_el = n;
    size_t payload = (size_t)(d - d0), l = put_varint(o + t, payload);
    if (l < room && n >= 2)
        memmove(o + t + l, d0, payload);
    *op_end = op + t + l + payload;
    return NF_OK;
}

/* An AttributeProto field whose runs are moved (see the file comment),
 * from this many elements on. */
#define NF_WIRE_MOVE_MIN 16

/* Whether at least NF_WIRE_MOVE_MIN - 1 more length-delimited elements
 * with one-byte tag kb follow at q (a bounded look ahead). */
static size_t count_run(const uint8_t *p, size_t end, size_t q, uint8_t kb)
{
    size_t k = 0;
    while (k < NF_WIRE_MOVE_MIN && q < end && p[q] == kb) {
        size_t r = q + 1;
        uint64_t n;
        if (read_varint(p, end, &r, &n) != 0 || n > end - r)
            break;
        q = r + (size_t)n;
        k++;
    }
    return k;
}


static bool movable_field(const frame *f, uint32_t field)
{
    return f->desc == &onnx__attribute_proto__descriptor &&
           (field == NF_WIRE_ATTR_FLOATS || field == NF_WIRE_ATTR_INTS || field == NF_WIRE_ATTR_STRINGS);
}

/* Turns the packed field pack_run wrote at out[op, *op_end) (tag, length,
 * payload) into field 12 (tag, length, the source field's number, the
 * payload). Grows it by one or two bytes: only when that stays behind the
 * input not yet read (in place), *op_end <= in_pos after the move; else 1
 * and nothing changed. */
static int move_packed(uint8_t *out, size_t op, size_t *op_end, size_t in_pos, uint32_t field)
{
    size_t q = op + 1, payload = 0; /* ONNX's attribute tags are one byte */
    int shift = 0;
    while (out[q] & 0x80) {
        payload |= (size_t)(out[q] & 0x7f) << shift;
        shift += 7;
        q++;
    }
    payload |= (size_t)out[q] << shift;
    q++;
    uint8_t hdr[12];
    size_t h = 0;
    hdr[h++] = (uint8_t)((NF_WIRE_DETACHED << 3) | 2);
    h += put_varint(hdr + h, payload + 1);
    hdr[h++] = (uint8_t)field;
    size_t old_h = q - op, new_end = op + h + payload;
    if (new_end > in_pos)
        return 1;
    memmove(out + op + h, out + q, payload);
    memcpy(out + op, hdr, h);
    (void)old_h;
    *op_end = new_end;
    return 0;
}

/* Moves the run of strings (field 9, one-byte tag kb) starting with the
 * tag at input offset at (*pos just past that tag) into field 12 at out +
 * op: the tag, room for the length, 9, then each element's length and
 * bytes as they were. Stops before the first field that is not another
 * such string; each element passes the checks the main loop makes (its
 * length within the message). 1 when it cannot be written behind the
 * input (in place), nothing consumed. */
static int move_strings(const uint8_t *p, size_t end, size_t at, uint8_t kb, size_t *pos, uint8_t *out, size_t op,
                        size_t *op_end, nf_err *err)
{
    size_t room = varint_len(end - at + 1);
    if (op + 2 + room > at + 1)
        return 1;
    uint8_t *d0 = out + op + 1 + room, *d = d0;
    *d++ = NF_WIRE_ATTR_STRINGS;
    size_t q = *pos;
    for (;;) {
        size_t s = q;
        uint64_t n;
        if (read_varint(p, end, &q, &n) != 0 || n > end - q)
            return nf_err_set(err, NF_EMODEL,
                              "not a valid ONNX model: field 9 at byte %zu claims more bytes than remain (file truncated?)",
                              s - 1);
        q += (size_t)n;
        memmove(d, p + s, q - s); /* d trails p + s: the tags dropped */
        d += q - s;
        if (q == end || p[q] != kb)
            break;
        q++;
    }
    *pos = q;
    size_t payload = (size_t)(d - d0);
    out[op] = (uint8_t)((NF_WIRE_DETACHED << 3) | 2);
    size_t l = put_varint(out + op + 1, payload);
    if (l < room)
        memmove(out + op + 1 + l, d0, payload);
    *op_end = op + 1 + l + payload;
    return 0;
}

/* Ends the message of f: writes its new length where the old prefix was,
 * moving the content down when the minimal prefix is shorter. */
static size_t close_frame(uint8_t *out, size_t op, const frame *f)
{
    size_t body = f->len_at + f->len_room, clen = op - body;
    uint8_t tmp[10];
    size_t vl = put_varint(tmp, clen);
    memcpy(out + f->len_at, tmp, vl);
    if (vl < f->len_room) {
        memmove(out + f->len_at + vl, out + body, clen);
        op -= f->len_room - vl;
    }
    return op;
}

/* Checks buf[0..len) as an ONNX ModelProto on the wire (see the file
 * comment). With out != NULL (len + 16 bytes of room) it also writes the same
 * message with runs of two or more unpacked elements of a repeated scalar
 * field packed and *out_len = bytes written (never more than len: a packed
 * run is no longer than its elements, a rewritten length prefix no longer
 * than the input's; the output offset never passes the input offset, and
 * pack_run writes at most 10 bytes beyond the input it read). out may also
 * be buf - 32 (in place: the scan reads every byte before the rewrite,
 * which trails it by at least 22 bytes, writes there; a run of one element,
 * whose scratch writes are dropped, reaches at most 25 bytes past the
 * output offset, short of its own input). Errors name the input byte
 * offset. */
int nf__wire_pack(const void *buf, size_t len, void *outv, size_t *out_len, nf_err *err)
{
    frame stack[NF_WIRE_MAX_DEPTH + 1];
    const uint8_t *p = buf;
    uint8_t *out = outv;
    int depth = 0;
    size_t pos = 0;
    size_t op = 0, lit = 0; /* output offset; input bytes [lit, pos) still to copy */
    memset(&stack[0], 0, sizeof stack[0]);
    stack[0].desc = &onnx__model_proto__descriptor;
    stack[0].end = len;
#define FLUSH(upto)                                                  \
    do {                                                             \
        memmove(out + op, p + lit, (upto) - lit);                    \
        op += (upto) - lit;                                          \
        lit = (upto);                                                \
    } while (0)
    for (;;) {
        while (depth > 0 && pos == stack[depth].end) {
            if (out) {
                FLUSH(pos);
                op = close_frame(out, op, &stack[depth]);
            }
            depth--;
        }
        frame *fr = &stack[depth];
        if (pos == fr->end)
            break; /* depth 0 and all read */
        size_t end = fr->end;
        uint64_t key;
        size_t at = pos;
        if (read_varint(p, end, &pos, &key) != 0)
            return nf_err_set(err, NF_EMODEL, "not a valid ONNX model: truncated field tag at byte %zu", at);
        uint32_t field = (uint32_t)(key >> 3), wt = (uint32_t)(key & 7);
        if (field == 0 || (key >> 3) > 0x1fffffff)
            return nf_err_set(err, NF_EMODEL, "not a valid ONNX model: bad field number at byte %zu", at);
        uint64_t n;
        /* a field 12 in the input means nothing in ONNX: dropped, so the
         * only ones the loader sees are the moved runs */
        const bool drop = out != NULL && field == NF_WIRE_DETACHED && fr->desc == &onnx__attribute_proto__descriptor;
        switch (wt) {
        case 0: /* varint */
        case 1: /* 64-bit */
        case 5: /* 32-bit */
            if (out != NULL && packable_wt(field_of(fr, field)) == (int)wt) {
                size_t n_el = 0, op_end = op;
                FLUSH(at);
                int rc = pack_run(p, end, at, key, &pos, out, op, &op_end, &n_el, err);
                if (rc != NF_OK)
                    return rc;
                if (movable_field(fr, field) && key < 0x80 &&
                    (n_el >= NF_WIRE_MOVE_MIN || (fr->moved & (1u << field)))) {
                    if (move_packed(out, op, &op_end, pos, field) != 0) {
                        if (fr->moved & (1u << field)) /* never seen from a protobuf serializer */
                            return nf_err_set(err, NF_EUNSUPPORTED, "ONNX model: an attribute's field %u comes in "
                                              "runs split by other fields at byte %zu, which nginfer does not read", field, at);
                    } else {
                        fr->moved |= 1u << field;
                        op = op_end;
                        lit = pos;
                        break;
                    }
                }
                if (n_el >= 2) { /* else the one element stays in the literal bytes */
                    op = op_end;
                    lit = pos;
                }
                break;
            }
            {
                int rc = skip_scalar(p, end, &pos, wt, at, err);
                if (rc != NF_OK)
                    return rc;
            }
            if (drop) {
                FLUSH(at);
                lit = pos;
            }
            break;
        case 2: { /* length-delimited: bytes, string, packed, or a message */
            size_t pre = pos;
            if (read_varint(p, end, &pos, &n) != 0 || n > end - pos)
                return nf_err_set(err, NF_EMODEL,
                                  "not a valid ONNX model: field %u at byte %zu claims more bytes than remain (file truncated?)",
                                  field, at);
            const ProtobufCFieldDescriptor *fd = field_of(fr, field);
            if (fd != NULL && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (depth == NF_WIRE_MAX_DEPTH)
                    return nf_err_set(err, NF_EMODEL,
                                      "not a valid ONNX model: messages nested deeper than %d levels at byte %zu",
                                      NF_WIRE_MAX_DEPTH, at);
                frame *c = &stack[++depth];
                c->desc = fd->descriptor;
                c->end = pos + (size_t)n;
                c->last_field = 0; /* field 0 never looks up */
                c->last_fd = NULL;
                c->moved = 0;
                if (out) {
                    FLUSH(pre);
                    c->len_at = op;
                    c->len_room = pos - pre;
                    op += c->len_room;
                    lit = pos;
                }
            } else if (drop) {
                FLUSH(at);
                pos += (size_t)n;
                lit = pos;
            } else if (out != NULL && field != NF_WIRE_ATTR_STRINGS && movable_field(fr, field) &&
                       (fr->moved & (1u << field))) {
                /* packed elements after moved ones: the loader would put them first */
                return nf_err_set(err, NF_EUNSUPPORTED, "ONNX model: an attribute's field %u comes in runs split by "
                                  "other fields at byte %zu, which nginfer does not read", field, at);
            } else if (out != NULL && field == NF_WIRE_ATTR_STRINGS && key < 0x80 && movable_field(fr, field) &&
                       ((fr->moved & (1u << field)) || count_run(p, end, pos + (size_t)n, (uint8_t)key) + 1 >= NF_WIRE_MOVE_MIN)) {
                size_t op_end = op, q = pre;
                FLUSH(at);
                int rc = move_strings(p, end, at, (uint8_t)key, &q, out, op, &op_end, err);
                if (rc < 0 || rc > 1)
                    return rc;
                if (rc == 1) {
                    if (fr->moved & (1u << field))
                        return nf_err_set(err, NF_EUNSUPPORTED, "ONNX model: an attribute's field %u comes in runs "
                                          "split by other fields at byte %zu, which nginfer does not read", field, at);
                    pos += (size_t)n; /* left as it is */
                } else {
                    fr->moved |= 1u << field;
                    op = op_end;
                    pos = lit = q;
                }
            } else {
                pos += (size_t)n;
                /* a run of short strings under one one-byte tag (a tree's
                 * nodes_modes: 50k): each passes every check above, so
                 * skip them here; the first that does not goes round */
                if (key < 0x80)
                    while (end - pos >= 2 && p[pos] == (uint8_t)key && p[pos + 1] < 0x80 &&
                           p[pos + 1] <= end - pos - 2)
                        pos += 2 + (size_t)p[pos + 1];
            }
            break;
        }
        default: /* 3, 4: groups (not in onnx.proto); 6, 7: invalid */
            return nf_err_set(err, NF_EMODEL, "not a valid ONNX model: wire type %u at byte %zu", wt, at);
        }
    }
    if (out) {
        FLUSH(pos);
        *out_len = op;
    }
#undef FLUSH
    return NF_OK;
}

int nf__wire_check(const void *buf, size_t len, nf_err *err)
{
    return nf__wire_pack(buf, len, NULL, NULL, err);
}
