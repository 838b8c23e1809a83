"""R239: the numpy fallback in the model folder `make model` leaves (model.onnx and
model.sha256.json, no model.safetensors): STEWARD_EMBEDDER=minilm still falls back to numpy
when onnxruntime cannot load, with the same vectors, reading the weights back from the graph."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from memory.embedder import EmbedderUnavailable, MiniLMEmbedder, load_embedder
from memory.minilm_common import default_model_dir
from memory.onnx_minilm import DIGESTS_FILE, GRAPH_FILE, OnnxMiniLMEmbedder

TEXTS = [
    "my sister's birthday is in March",
    "the boiler needs a service",
    "Café crème, naïve résumé 😀 东京",
    "",
    "a long one " * 120,
]


def pruned(root: Path, graph: bytes | None = None) -> Path:
    """A model folder as `make model` leaves it: config, tokenizer, the fp32 graph (hard links
    to the installed ones, or `graph`) and the recorded digests; no weights."""
    source = default_model_dir()
    root.mkdir()
    for name in ("config.json", "tokenizer.json", GRAPH_FILE):
        if name == GRAPH_FILE and graph is not None:
            (root / name).write_bytes(graph)
        else:
            try:
                os.link(source / name, root / name)
            except OSError:  # another file system than the model's
                shutil.copyfile(source / name, root / name)
    digests = {
        "weights_sha256": sha256(source / "model.safetensors"),
        "graph_sha256": sha256(source / GRAPH_FILE),
    }
    (root / DIGESTS_FILE).write_text(json.dumps(digests))
    return root


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_default_falls_back_to_numpy_in_a_pruned_folder_with_the_same_vectors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    onnx_vectors = OnnxMiniLMEmbedder.load(default_model_dir()).embed(TEXTS)
    numpy_vectors = MiniLMEmbedder.load(default_model_dir()).embed(TEXTS)
    model = pruned(tmp_path / "model")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it could not load
    with caplog.at_level(logging.WARNING, logger="memory.embedder"):
        fallback = load_embedder("minilm", model)
    assert isinstance(fallback, MiniLMEmbedder)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "numpy" in warnings[0]
    vectors = fallback.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), 384)
    assert (vectors * onnx_vectors).sum(1).min() >= 0.99999  # what the ONNX runner gives
    np.testing.assert_allclose(vectors, numpy_vectors, atol=1e-5)  # numpy on the weights
    assert isinstance(load_embedder("minilm-numpy", model), MiniLMEmbedder)
    assert not (model / "model.safetensors").exists()  # nothing written back


def test_a_damaged_graph_in_a_pruned_folder_is_refused_naming_the_make_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bytearray((default_model_dir() / GRAPH_FILE).read_bytes())
    data[-1000] ^= 0x01  # one bit of one weight
    model = pruned(tmp_path / "model", graph=bytes(data))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    for spec in ("minilm", "minilm-numpy"):
        with pytest.raises(EmbedderUnavailable, match=r"recorded sha256; run `make model-weights`"):
            load_embedder(spec, model)
