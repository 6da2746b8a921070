#!/usr/bin/python3
"""make.py -- writes the hostile model files tests/unit/test_hostile.c loads:
files that are not ONNX at all (truncated, random, empty, a length prefix
past the end, nesting deeper than core/wire.c's bound of 64), tensors that
lie about their size (dimensions >= 2^31, products that overflow, data that
disagrees with the shape), external data that points outside the model
directory, and graphs that are wrong (unsupported operators, dangling
names, cycles, duplicate names). nginfer must refuse each one at load with
a status and a message; none may crash, hang or allocate what the shape
claims. The table is README.md next to this file.

    /usr/bin/python3 tests/models/hostile/make.py      (writes next to itself)

Deterministic (rerunning gives identical bytes). Models are built with
onnx.helper (no checker: they are invalid on purpose) or, where onnx.helper
cannot express the damage, as raw protobuf wire bytes. Tree nodes pointing
outside their tree or forming cycles are tests/models/bad/ (bad_true_id,
bad_false_other_tree, bad_cycle, bad_self_child): not repeated here.
"""

import os
import random

from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def save(name, m):
    write(name, m.SerializeToString())


def model(nodes, inputs, outputs, inits=(), opsets=(("", 17),)):
    g = helper.make_graph(nodes, "hostile", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets],
                          producer_name="hostile")
    m.ir_version = 8
    return m


def vi(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def tensor(name, dtype, dims, floats=None, raw=None, int32s=None, strings=None):
    """A TensorProto as given: unlike helper.make_tensor, no check that the
    data fits the shape."""
    t = TensorProto()
    t.name, t.data_type = name, dtype
    t.dims.extend(dims)
    if floats is not None:
        t.float_data.extend(floats)
    if raw is not None:
        t.raw_data = raw
    if int32s is not None:
        t.int32_data.extend(int32s)
    if strings is not None:
        t.string_data.extend(strings)
    return t


def add_const(init):
    """y = x + init: a graph that reads the initializer."""
    return model([helper.make_node("Add", ["x", init.name], ["y"], name="add")],
                 [vi("x", [1])], [vi("y", None)], [init])


# ---- protobuf wire bytes (protobuf.dev "Encoding") --------------------------
def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, payload):
    """A length-delimited field (wire type 2)."""
    return varint(num << 3 | 2) + varint(len(payload)) + payload


# ModelProto.graph = 7, GraphProto.node = 1, NodeProto.attribute = 5,
# AttributeProto.g = 6: Model > Graph > (Node > Attribute > Graph) * n
def nested(levels):
    g = b""
    for _ in range(levels):
        g = field(1, field(5, field(6, g)))
    return varint(1 << 3) + varint(8) + field(7, g)  # ir_version 8, graph


def main():
    small = open(os.path.join(ROOT, "tests/models/sk_linreg/model.onnx"), "rb").read()

    # ---- not ONNX -----------------------------------------------------------
    write("empty.onnx", b"")
    write("truncated.onnx", small[: len(small) * 2 // 3])
    rnd = random.Random(20261123)
    write("random.onnx", bytes(rnd.randrange(256) for _ in range(4096)))
    write("text.onnx", b"this is not a model\n" * 8)
    # graph (field 7) claiming 2^62 bytes; a varint of eleven bytes
    write("huge_length.onnx", varint(8 << 0 | 0) + varint(8) + varint(7 << 3 | 2) + varint(1 << 62) + b"\0" * 16)
    write("long_varint.onnx", varint(1 << 3) + b"\xff" * 11 + b"\x01")
    # depth = 1 + 3 * levels (Model is 0, its graph 1, then Node > Attribute
    # > Graph per level): 21 levels reach 64, the bound (the wire check
    # passes, the nodes have no op_type); 22 levels reach 67 and are refused;
    # 5000 would overflow protobuf-c's stack without the pre-scan
    write("nested_64.onnx", nested(21))
    write("nested_67.onnx", nested(22))
    write("nested_5000.onnx", nested(5000))

    # ---- tensors that lie about their size -----------------------------------
    # dims >= 2^31 in an initializer, no data: refused before allocating 8 GB
    save("init_dim_2p31.onnx", add_const(tensor("w", TensorProto.FLOAT, [2 ** 31])))
    # each dim fits, the product (2^62 elements) does not fit our 2^40-byte bound
    save("init_dims_product.onnx", add_const(tensor("w", TensorProto.FLOAT, [2 ** 31 - 1] * 2)))
    # product overflows int64 (2^31-1)^3 > 2^63
    save("init_dims_overflow.onnx", add_const(tensor("w", TensorProto.FLOAT, [2 ** 31 - 1] * 3)))
    save("init_dim_negative.onnx", add_const(tensor("w", TensorProto.FLOAT, [-4])))
    save("init_rank_9.onnx", add_const(tensor("w", TensorProto.FLOAT, [1] * 9, floats=[1.0])))
    save("init_dtype_99.onnx", add_const(tensor("w", 99, [1], raw=b"\0\0\0\0")))
    # data that disagrees with the shape
    save("raw_short.onnx", add_const(tensor("w", TensorProto.FLOAT, [4], raw=b"\0" * 8)))
    save("raw_long.onnx", add_const(tensor("w", TensorProto.FLOAT, [1], raw=b"\0" * 8)))
    save("float_data_short.onnx", add_const(tensor("w", TensorProto.FLOAT, [4], floats=[1.0, 2.0, 3.0])))
    save("int8_data_long.onnx", model([helper.make_node("Add", ["x", "w"], ["y"], name="add")],
                                      [vi("x", [2], TensorProto.INT8)], [vi("y", None, TensorProto.INT8)],
                                      [tensor("w", TensorProto.INT8, [2], int32s=[1, 2, 3])]))
    save("string_data_short.onnx", model([helper.make_node("Identity", ["w"], ["y"], name="id")], [],
                                         [vi("y", None, TensorProto.STRING)],
                                         [tensor("w", TensorProto.STRING, [3], strings=[b"a", b"b"])]))
    # a Constant node's tensor attribute, too large for its data
    save("constant_attr_short.onnx", model(
        [helper.make_node("Constant", [], ["c"], name="const",
                          value=tensor("v", TensorProto.FLOAT, [2 ** 31], floats=[1.0]))
         , helper.make_node("Add", ["x", "c"], ["y"], name="add")],
        [vi("x", [1])], [vi("y", None)]))
    # graph input declarations
    save("input_dim_2p31.onnx", model([helper.make_node("Relu", ["x"], ["y"], name="relu")],
                                      [vi("x", [1, 2 ** 31])], [vi("y", None)]))
    save("input_dims_product.onnx", model([helper.make_node("Relu", ["x"], ["y"], name="relu")],
                                          [vi("x", ["N"] + [2 ** 31 - 1] * 7)], [vi("y", None)]))
    save("input_rank_9.onnx", model([helper.make_node("Relu", ["x"], ["y"], name="relu")],
                                    [vi("x", [1] * 9)], [vi("y", None)]))
    save("input_sequence.onnx", model([helper.make_node("Identity", ["x"], ["y"], name="id")],
                                      [helper.make_tensor_sequence_value_info("x", TensorProto.FLOAT, None)],
                                      [vi("y", None)]))

    # ---- external data ----------------------------------------------------------
    def ext(name, location, dims=(4,), **kv):
        t = tensor("w", TensorProto.FLOAT, list(dims))
        t.data_location = TensorProto.EXTERNAL
        for k, v in [("location", location)] + sorted(kv.items()):
            e = t.external_data.add()
            e.key, e.value = k, str(v)
        save(name, add_const(t))

    ext("ext_parent.onnx", "../x.bin")
    ext("ext_parent_inner.onnx", "sub/../../x.bin")
    ext("ext_absolute.onnx", "/etc/passwd")
    ext("ext_symlink.onnx", "ext_link_passwd")              # a symlink to /etc/passwd
    ext("ext_symlink_dir.onnx", "ext_link_etc/passwd")      # through a symlinked directory
    ext("ext_missing.onnx", "no_such_file.bin")
    ext("ext_short.onnx", "ext_16.bin", dims=(8,))          # 32 bytes wanted, 16 there
    ext("ext_offset.onnx", "ext_16.bin", offset=2 ** 40)
    ext("ext_length.onnx", "ext_16.bin", length=12)
    ext("ext_huge.onnx", "ext_16.bin", dims=(2 ** 31,))      # refused before allocating 8 GB
    ext("ext_no_location.onnx", "")
    write("ext_16.bin", b"\0" * 16)
    for link, target in (("ext_link_passwd", "/etc/passwd"), ("ext_link_etc", "/etc")):
        p = os.path.join(HERE, link)
        if os.path.lexists(p):
            os.unlink(p)
        os.symlink(target, p)

    # ---- graphs -------------------------------------------------------------------
    save("op_unsupported.onnx", model([helper.make_node("LSTM", ["x", "w", "r"], ["y"], name="lstm_1")],
                                      [vi("x", [1, 1, 2]), vi("w", [1, 4, 2]), vi("r", [1, 4, 1])],
                                      [vi("y", None)]))
    save("op_custom_domain.onnx", model([helper.make_node("Frobnicate", ["x"], ["y"], name="f", domain="com.evil")],
                                        [vi("x", [1])], [vi("y", None)], opsets=(("", 17), ("com.evil", 1))))
    save("op_domain_not_imported.onnx", model([helper.make_node("Scaler", ["x"], ["y"], name="s",
                                                                domain="ai.onnx.ml")],
                                              [vi("x", [1, 1])], [vi("y", None)]))
    save("op_empty.onnx", model([helper.make_node("", ["x"], ["y"], name="anon")], [vi("x", [1])], [vi("y", None)]))
    save("dangling_input.onnx", model([helper.make_node("Add", ["x", "nope"], ["y"], name="add")],
                                      [vi("x", [1])], [vi("y", None)]))
    save("dangling_output.onnx", model([helper.make_node("Relu", ["x"], ["y"], name="relu")],
                                       [vi("x", [1])], [vi("z", None)]))
    save("cycle.onnx", model([helper.make_node("Add", ["x", "b"], ["a"], name="n_a"),
                              helper.make_node("Relu", ["a"], ["b"], name="n_b"),
                              helper.make_node("Relu", ["a"], ["y"], name="n_y")],
                             [vi("x", [1])], [vi("y", None)]))
    save("self_loop.onnx", model([helper.make_node("Add", ["x", "y"], ["y"], name="n")],
                                 [vi("x", [1])], [vi("y", None)]))
    save("dup_output.onnx", model([helper.make_node("Relu", ["x"], ["y"], name="r1"),
                                   helper.make_node("Neg", ["x"], ["y"], name="r2")],
                                  [vi("x", [1])], [vi("y", None)]))
    save("dup_input.onnx", model([helper.make_node("Relu", ["x"], ["y"], name="r")],
                                 [vi("x", [1]), vi("x", [1])], [vi("y", None)]))
    save("dup_initializer.onnx", model([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [vi("x", [1])],
                                       [vi("y", None)], [helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0]),
                                                         helper.make_tensor("w", TensorProto.FLOAT, [1], [2.0])]))
    save("output_shadows_input.onnx", model([helper.make_node("Relu", ["x"], ["x"], name="r")],
                                            [vi("x", [1])], [vi("x", None)]))
    # loads: a graph input passed through as an output declared with another
    # type and shape; the input's declaration must stay the one requests meet
    save("output_is_input.onnx", model([], [vi("x", ["N", 2])], [vi("x", [3], TensorProto.INT64)]))
    save("no_outputs.onnx", model([helper.make_node("Relu", ["x"], ["y"], name="r")], [vi("x", [1])], []))
    m = helper.make_model(helper.make_graph([], "g", [], []))
    m.ClearField("graph")
    save("no_graph.onnx", m)
    # a Reshape whose shape makes a tensor of 2^40 elements at constant folding
    save("fold_huge.onnx", model([helper.make_node("ConstantOfShape", ["s"], ["c"], name="cos"),
                                  helper.make_node("Add", ["x", "c"], ["y"], name="add")],
                                 [vi("x", [1])], [vi("y", None)],
                                 [helper.make_tensor("s", TensorProto.INT64, [2], [2 ** 20, 2 ** 20])]))


if __name__ == "__main__":
    main()
