"""all-MiniLM-L6-v2 through onnxruntime: Steward's default embedder (STEWARD_EMBEDDER=minilm).

The ONNX graph is written here with the `onnx` helper API from the same model.safetensors the
numpy embedder reads (no torch, no export, no download): embeddings, six BERT layers with exact
(erf) GELU, mean pooling over the attention mask, L2 normalisation. It is built once and cached
as `model.onnx` in the model folder (`make model` builds it; `load()` builds it when it is
missing or stale). The file records the sha256 of the weights and config it was built from and
the version of this builder; a file that does not match is rebuilt. When the folder cannot be
written, the graph is built in memory on every load (about a second).

    python -m memory.onnx_minilm build [MODEL_DIR]      (what `make model` runs)

onnxruntime runs the graph on the calling thread (one intra-op thread, no spinning), so that
an embedding never competes with the event loop for the second core; callers on the event
loop run `embed()` in a worker thread. Sessions are thread-safe: concurrent `embed()` calls
are fine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from memory.errors import EmbedderUnavailable
from memory.minilm_common import (
    ModelFiles,
    embed_by_length,
    find_model_files,
    open_tokenizer,
    read_safetensors,
)

__all__ = [
    "DIGESTS_FILE",
    "GRAPH_FILE",
    "OnnxMiniLMEmbedder",
    "build_graph",
    "graph_key",
    "prepare_graph",
]

log = logging.getLogger(__name__)

GRAPH_FILE = "model.onnx"
# Written by scripts/install_model.py when it removes the weights once the graph is built (they
# would be kept twice): {"weights_sha256": …, "graph_sha256": …}. The graph is then checked
# against its recorded sha256 at every load, and the weights' digest stands in for them.
DIGESTS_FILE = "model.sha256.json"
# Bump when build_graph() changes what it writes: cached graphs of other versions are rebuilt.
BUILDER_VERSION = "1"
KEY_FIELD = "steward.source"  # the model's metadata entry that holds graph_key()
OPSET = 20  # Gelu (20), LayerNormalization (17), Split with num_outputs (18)

_F32 = np.float32


def graph_key(files: ModelFiles) -> str:
    """What a cached graph must have been built from: this builder's version and the sha256 of
    the weights and of the config (hashing the 90 MB of weights takes ~0.1 s). Without the
    weights (removed by `make model`), their sha256 as recorded in DIGESTS_FILE."""
    if files.weights.is_file():
        weights = _sha256(files.weights)
    else:
        weights = str(_recorded(files).get("weights_sha256", ""))
    config = hashlib.sha256(files.config.read_bytes()).hexdigest()
    return f"builder={BUILDER_VERSION} weights={weights} config={config}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _recorded(files: ModelFiles) -> dict[str, Any]:
    try:
        recorded = json.loads((files.dir / DIGESTS_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise EmbedderUnavailable(f"{files.dir / DIGESTS_FILE} is unreadable ({exc})") from None
    return recorded if isinstance(recorded, dict) else {}


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


def _session_options(threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle pool threads must sleep, not spin: the event loop and SQLite want that core.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    return options


def _session(model: str | bytes, threads: int) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(
        model, sess_options=_session_options(threads), providers=["CPUExecutionProvider"]
    )


def _write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same folder and os.replace."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prepare_graph(files: ModelFiles, *, threads: int = 1) -> tuple[Any, str]:
    """An onnxruntime session on the folder's cached graph, built (and cached when the folder
    is writable) if it is missing, unreadable or stale; and how it was found: "cached",
    "built" or "built in memory"."""
    path = files.dir / GRAPH_FILE
    key = graph_key(files)
    if not files.weights.is_file():  # only the graph was kept: it must be the one recorded
        return _recorded_graph(files, path, key, threads), "cached"
    if path.is_file():
        try:
            session = _session(str(path), threads)
        except Exception as exc:  # truncated or corrupt file: rebuild it
            log.info("the cached embedding graph %s is unreadable (%s); rebuilding it", path, exc)
        else:
            if session.get_modelmeta().custom_metadata_map.get(KEY_FIELD) == key:
                return session, "cached"
            log.info("the cached embedding graph %s is stale; rebuilding it", path)
            del session
    started = time.perf_counter()
    config = json.loads(files.config.read_text())
    model = build_graph(read_safetensors(files.weights), config, key)
    log.info("built the embedding graph in %.1f s", time.perf_counter() - started)
    try:
        _write_atomically(path, model)
    except OSError as exc:
        log.info("cannot cache the embedding graph in %s (%s); keeping it in memory", path, exc)
        return _session(model, threads), "built in memory"
    del model  # ~90 MB: let it go before onnxruntime reads the file
    return _session(str(path), threads), "built"


def _recorded_graph(files: ModelFiles, path: Path, key: str, threads: int) -> Any:
    """A session on the graph of a folder without weights, which cannot be rebuilt here: its
    sha256 must be the recorded one and its key that of the recorded weights and config."""
    again = "run `make model` to reinstall the model"
    if not path.is_file() or _sha256(path) != _recorded(files).get("graph_sha256"):
        raise EmbedderUnavailable(f"{path} does not match its recorded sha256; {again}")
    session = _session(str(path), threads)
    if session.get_modelmeta().custom_metadata_map.get(KEY_FIELD) != key:
        raise EmbedderUnavailable(f"{path} was built by another builder version; {again}")
    return session


class OnnxMiniLMEmbedder:
    """all-MiniLM-L6-v2 on onnxruntime. Thread-safe for concurrent `embed` calls."""

    name = "all-MiniLM-L6-v2"  # the same model and vectors as MiniLMEmbedder
    dim = 384
    max_tokens = 256  # sentence-transformers' max_seq_length for this model
    batch_tokens = 256  # padded tokens per run: sorted by length, little padding

    def __init__(self, session: Any, tokenizer: Tokenizer, *, how: str = "") -> None:
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_tokens)
        self._tok = tokenizer
        self._session = session
        self.dim = int(session.get_outputs()[0].shape[-1])
        self.graph = how  # "cached", "built" or "built in memory"

    @classmethod
    def load(cls, model_dir: Path | None = None, *, threads: int = 1) -> OnnxMiniLMEmbedder:
        """Load from `model_dir` (see memory.minilm_common.find_model_files), building the graph if
        needed. `threads` is onnxruntime's intra-op thread count. Raises EmbedderUnavailable
        when onnxruntime (or, to build the graph, onnx) cannot be imported, or the files are
        missing or unusable."""
        files = find_model_files(model_dir)
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise EmbedderUnavailable(f"onnxruntime cannot be imported: {exc}") from exc
        try:
            tokenizer = open_tokenizer(files.tokenizer, cls.max_tokens)
            session, how = prepare_graph(files, threads=threads)
            return cls(session, tokenizer, how=how)
        except EmbedderUnavailable:
            raise
        except ImportError as exc:
            raise EmbedderUnavailable(f"cannot build the embedding graph: {exc}") from exc
        except Exception as exc:  # corrupt files, an onnxruntime error...
            raise EmbedderUnavailable(f"cannot load the model in {files.dir}: {exc}") from exc

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return embed_by_length(texts, self._tok, self.dim, self.batch_tokens, self._forward)

    def _forward(self, seqs: list[list[int]]) -> np.ndarray:
        width = max(len(seq) for seq in seqs)
        input_ids = np.zeros((len(seqs), width), np.int64)
        mask = np.zeros((len(seqs), width), np.int64)
        for row, seq in enumerate(seqs):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        feed = {"input_ids": input_ids, "attention_mask": mask}
        return self._session.run(["embedding"], feed)[0]


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "build" or len(argv) > 2:
        print("usage: python -m memory.onnx_minilm build [MODEL_DIR]", file=sys.stderr)
        return 2
    try:
        files = find_model_files(Path(argv[1]) if len(argv) > 1 else None)
        _, how = prepare_graph(files)
    except EmbedderUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"embedding graph {files.dir / GRAPH_FILE}: {how}")
    return 1 if how == "built in memory" else 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(main(sys.argv[1:]))
