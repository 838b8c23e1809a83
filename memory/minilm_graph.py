"""The ONNX graphs of all-MiniLM-L6-v2 that `memory.onnx_minilm` runs: `build_graph` writes the
fp32 graph node by node with the `onnx` helper API from the model's safetensors weights (no
torch, no export, no download); `quantize` makes the int8 graph of it. Only building needs
`onnx` (and onnxruntime's quantiser); a cached graph loads without either. `graph_weights` reads
the weights back out of a built graph (for the numpy embedder once `make model` removed them).
Caching, hashing and sessions are in `memory.onnx_minilm`.
"""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from memory.errors import EmbedderUnavailable

__all__ = [
    "BUILDER_VERSION",
    "KEY_FIELD",
    "OPSET",
    "QUANT_VERSION",
    "build_graph",
    "graph_weights",
    "quantize",
]

# Bump when build_graph() changes what it writes: cached graphs of other versions are rebuilt.
BUILDER_VERSION = "1"
# Bump when quantize() changes what it writes: cached int8 graphs of other versions are rebuilt.
QUANT_VERSION = "3"
KEY_FIELD = "steward.source"  # the model's metadata entry that holds graph_key()
OPSET = 20  # Gelu (20), LayerNormalization (17), Split with num_outputs (18)
# MatMuls left in fp32 by quantize() (their weight's name ends so): the feed-forward output
# projections, whose inputs (after GELU) have the outliers that per-call int8 loses most on.
KEEP_FP32 = (".down.w",)

_F32 = np.float32


def build_graph(weights: dict[str, np.ndarray], config: dict[str, Any], key: str = "") -> bytes:
    """The serialized ONNX model of a BERT sentence encoder with mean pooling; inputs
    `input_ids` and `attention_mask` (int64, batch x tokens), output `embedding` (float32,
    batch x hidden, unit rows). `key` goes into the model's metadata (see graph_key)."""
    import onnx  # only needed to build: a cached graph loads without it
    from onnx import TensorProto, helper, numpy_helper

    if config.get("hidden_act", "gelu") != "gelu":
        raise EmbedderUnavailable(f"unsupported activation {config.get('hidden_act')!r}")
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head_dim = hidden // heads
    eps = float(config.get("layer_norm_eps", 1e-12))

    # Tensors and nodes go straight into the model (make_graph / make_model would copy the
    # 90 MB of initializers twice more).
    model = helper.make_model(
        helper.make_graph(
            [],
            "all-MiniLM-L6-v2",
            [
                helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
                helper.make_tensor_value_info(
                    "attention_mask", TensorProto.INT64, ["batch", "tokens"]
                ),
            ],
            [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])],
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="steward.memory.onnx_minilm",
        producer_version=BUILDER_VERSION,
    )
    model.ir_version = 10  # onnxruntime >= 1.17 reads it
    helper.set_model_props(model, {KEY_FIELD: key})
    nodes = model.graph.node

    def const(name: str, array: Any) -> str:
        model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def matrix(tensor: str, scale: float = 1.0) -> np.ndarray:
        """A torch Linear weight (out, in) as the (in, out) right operand of MatMul."""
        return (weights[tensor].astype(_F32) * _F32(scale)).T

    def vector(tensor: str, scale: float = 1.0) -> np.ndarray:
        return weights[tensor].astype(_F32) * _F32(scale)

    def node(op: str, inputs: list[str], n_out: int = 1, **attrs: Any) -> Any:
        outputs = [f"{op.lower()}_{len(nodes)}_{i}" for i in range(n_out)]
        nodes.append(helper.make_node(op, inputs, outputs, **attrs))
        return outputs[0] if n_out == 1 else outputs

    def linear(x: str, name: str, w: np.ndarray, b: np.ndarray) -> str:
        return node("Add", [node("MatMul", [x, const(name + ".w", w)]), const(name + ".b", b)])

    def layer_norm(x: str, name: str, prefix: str) -> str:
        w = const(name + ".w", vector(prefix + ".weight"))
        b = const(name + ".b", vector(prefix + ".bias"))
        return node("LayerNormalization", [x, w, b], axis=-1, epsilon=eps)

    # Embeddings: token_type_ids are always 0, so that row is folded into the position table.
    e = "embeddings."
    word = const("word", vector(e + "word_embeddings.weight"))
    positions = vector(e + "position_embeddings.weight")
    pos = const("pos", positions + vector(e + "token_type_embeddings.weight")[0])
    tokens = node("Shape", ["input_ids"], start=1, end=2)  # [T]
    zero = const("zero", np.array([0], np.int64))
    pos_t = node("Slice", [pos, zero, tokens, zero])  # rows 0..T-1
    x = node("Add", [node("Gather", [word, "input_ids"]), pos_t])
    x = layer_norm(x, "emb_ln", e + "LayerNorm")

    # Attention mask as an additive bias on the scores: 0 for tokens, -1e9 for padding.
    mask = node("Cast", ["attention_mask"], to=TensorProto.FLOAT)  # (B, T)
    bias = node(
        "Mul",
        [
            node("Sub", [mask, const("one", np.array(1, _F32))]),
            const("big", np.array(1e9, _F32)),
        ],
    )
    bias = node("Unsqueeze", [bias, const("axes_1_2", np.array([1, 2], np.int64))])  # B,1,1,T
    qkv_shape = const("qkv_shape", np.array([0, 0, 3 * heads, head_dim], np.int64))
    merge_shape = const("merge_shape", np.array([0, 0, hidden], np.int64))

    scale = 1 / math.sqrt(head_dim)  # folded into the query projection
    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        a, o = p + "attention.self.", p + "attention.output."
        qkv_w = np.concatenate(
            [
                matrix(a + "query.weight", scale),
                matrix(a + "key.weight"),
                matrix(a + "value.weight"),
            ],
            axis=1,
        )
        qkv_b = np.concatenate(
            [vector(a + "query.bias", scale), vector(a + "key.bias"), vector(a + "value.bias")]
        )
        qkv = linear(x, f"l{i}.qkv", qkv_w, qkv_b)  # (B, T, 3H)
        qkv = node("Transpose", [node("Reshape", [qkv, qkv_shape])], perm=[0, 2, 1, 3])
        q, k, v = node("Split", [qkv], n_out=3, axis=1, num_outputs=3)  # (B, heads, T, hd)
        scores = node("MatMul", [q, node("Transpose", [k], perm=[0, 1, 3, 2])])
        probs = node("Softmax", [node("Add", [scores, bias])], axis=-1)
        ctx = node("Transpose", [node("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, merge_shape])  # (B, T, H)
        attn = linear(ctx, f"l{i}.out", matrix(o + "dense.weight"), vector(o + "dense.bias"))
        x = layer_norm(node("Add", [attn, x]), f"l{i}.ln1", o + "LayerNorm")
        up = linear(
            x,
            f"l{i}.up",
            matrix(p + "intermediate.dense.weight"),
            vector(p + "intermediate.dense.bias"),
        )
        up = node("Gelu", [up])  # exact (erf) form, as trained
        down = linear(
            up, f"l{i}.down", matrix(p + "output.dense.weight"), vector(p + "output.dense.bias")
        )
        x = layer_norm(node("Add", [down, x]), f"l{i}.ln2", p + "output.LayerNorm")

    # Mean over the real tokens, then unit length.
    axis1 = const("axis_1", np.array([1], np.int64))
    weighted = node("Mul", [x, node("Unsqueeze", [mask, const("axis_2", np.array([2], np.int64))])])
    total = node("ReduceSum", [weighted, axis1], keepdims=0)  # (B, H)
    count = node("ReduceSum", [mask, axis1], keepdims=1)  # (B, 1)
    nodes.append(
        helper.make_node(
            "LpNormalization", [node("Div", [total, count])], ["embedding"], axis=-1, p=2
        )
    )

    data = model.SerializeToString()
    model.Clear()  # frees its copy of the weights before the checker parses another
    onnx.checker.check_model(data)
    return data


def graph_weights(model: Any, config: dict[str, Any]) -> dict[str, np.ndarray]:
    """The weights that `build_graph` put into `model` (an fp32 onnx.ModelProto of this
    BUILDER_VERSION), under their safetensors names: what the numpy embedder runs once `make
    model` removed model.safetensors (R239). The same numbers, but for the query projection
    (unscaled again: within an ulp) and the token type row (folded into the positions by
    build_graph: returned as zeros)."""
    from onnx import numpy_helper

    t = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    e = "embeddings."
    out = {
        e + "word_embeddings.weight": t["word"],
        e + "position_embeddings.weight": t["pos"],
        e + "token_type_embeddings.weight": np.zeros((2, hidden), _F32),
        e + "LayerNorm.weight": t["emb_ln.w"],
        e + "LayerNorm.bias": t["emb_ln.b"],
    }
    scale = _F32(1 / math.sqrt(hidden // heads))
    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        a, o = p + "attention.self.", p + "attention.output."
        q, k, v = np.split(t[f"l{i}.qkv.w"].T, 3)
        qb, kb, vb = np.split(t[f"l{i}.qkv.b"], 3)
        out |= {
            a + "query.weight": q / scale,
            a + "query.bias": qb / scale,
            a + "key.weight": k,
            a + "key.bias": kb,
            a + "value.weight": v,
            a + "value.bias": vb,
            o + "dense.weight": t[f"l{i}.out.w"].T,
            o + "dense.bias": t[f"l{i}.out.b"],
            o + "LayerNorm.weight": t[f"l{i}.ln1.w"],
            o + "LayerNorm.bias": t[f"l{i}.ln1.b"],
            p + "intermediate.dense.weight": t[f"l{i}.up.w"].T,
            p + "intermediate.dense.bias": t[f"l{i}.up.b"],
            p + "output.dense.weight": t[f"l{i}.down.w"].T,
            p + "output.dense.bias": t[f"l{i}.down.b"],
            p + "output.LayerNorm.weight": t[f"l{i}.ln2.w"],
            p + "output.LayerNorm.bias": t[f"l{i}.ln2.b"],
        }
    return out


def quantize(fp32: Path | bytes, key: str) -> bytes:
    """The int8 graph of an fp32 one (a file, or its bytes): MatMul weights (but KEEP_FP32's)
    and the word embeddings quantised to int8 with one scale per channel, activations
    quantised per call (dynamic). Cosine to the fp32 vectors: per tensor 0.75-0.97; per
    channel 0.974-0.996; per channel with the down projections in fp32 (this) 0.984-0.999 on
    tests/test_embedder.py's odd sentences, >= 0.993 (mean 0.996) on the labelled set's
    memories. Deterministic: the same input gives the same bytes (its sha256 is recorded).
    `key` goes into the model's metadata (see graph_key)."""
    import onnx  # only needed to build, like build_graph
    from onnx import helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load_from_string(fp32) if isinstance(fp32, bytes) else onnx.load(str(fp32))
    keep: list[str] = []
    for i, n in enumerate(model.graph.node):  # the quantiser excludes nodes by name
        n.name = n.name or f"{n.op_type.lower()}_{i}"
        if n.op_type == "MatMul" and n.input[1].endswith(KEEP_FP32):
            keep.append(n.name)
    with tempfile.TemporaryDirectory(prefix="steward-int8-") as tmp:
        source = Path(tmp) / "fp32.onnx"
        onnx.save(model, str(source))
        del model
        target = Path(tmp) / "int8.onnx"
        quiet = logging.getLogger()  # the quantiser logs a pre-processing hint at WARNING
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            quantize_dynamic(
                source,
                target,
                op_types_to_quantize=["MatMul", "Gather"],
                per_channel=True,  # one scale per output column: per tensor lost too much
                reduce_range=False,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=keep,
            )
        finally:
            quiet.setLevel(level)
        model = onnx.load(str(target))
    del model.metadata_props[:]
    helper.set_model_props(model, {KEY_FIELD: key})
    model.producer_name = "steward.memory.onnx_minilm"
    model.producer_version = f"{BUILDER_VERSION}+int8.{QUANT_VERSION}"
    data = model.SerializeToString()
    onnx.checker.check_model(data)
    return data
