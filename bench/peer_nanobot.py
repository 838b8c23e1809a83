"""The peer in `make bench`: nanobot (PyPI nanobot-ai 0.3.5), measured like Steward.

Its venv is made by the bench at bench/.peer-venv. Its Telegram library (python-telegram-bot)
has no base-URL setting, so bench/peer_shim/sitecustomize.py, put on PYTHONPATH for the peer
process only, points it at the fake. nanobot counts tokens with tiktoken's cl100k_base, which
tiktoken downloads on first use; offline, the bench rebuilds that file from the npm package
js-tiktoken (its ranks are the same BPE table) and checks tiktoken's own sha256 before using it;
without it nanobot falls back to a byte-count estimate (noted in the results).
Findings behind this: /tmp/nanobot-research/REPORT.md (nanobot's 200 ms per-chat reorder window
is part of every Telegram turn it handles).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from common import (
    ROOT,
    TimedAnthropic,
    TimedTelegram,
    cpu_seconds,
    dir_mib,
    drive_turns,
    first_poll,
    free_port,
    summary_ms,
    terminate,
    token_figures,
    tree_rss_mib,
)

VENV = ROOT / "bench" / ".peer-venv"
SHIM = ROOT / "bench" / "peer_shim"
PACKAGES = [
    "nanobot-ai==0.3.5",
    "python-telegram-bot[socks,webhooks]>=22.6,<23.0",
    "socksio>=1.0.0,<2.0.0",
    "python-socks[asyncio]>=2.8.0,<3.0.0",
]
TIKTOKEN_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
TIKTOKEN_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
JS_TIKTOKEN = "js-tiktoken@1.0.21"
OWNER_TG = 1001


def ensure_venv() -> str | None:
    """Create the peer's venv once; None when ready, else why it could not be made."""
    stamp = VENV / ".installed"
    if stamp.exists() and stamp.read_text() == "\n".join(PACKAGES):
        return None
    print("  peer: creating bench/.peer-venv (pip install nanobot-ai==0.3.5 ...)", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "--quiet", *PACKAGES],
            check=True,
            timeout=600,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        return f"could not install nanobot-ai into bench/.peer-venv: {exc}"
    stamp.write_text("\n".join(PACKAGES))
    return None


def ensure_tiktoken_cache() -> tuple[Path | None, str]:
    """TIKTOKEN_CACHE_DIR holding cl100k_base, rebuilt from the npm package js-tiktoken."""
    cache = VENV / "tiktoken-cache"
    target = cache / hashlib.sha1(TIKTOKEN_URL.encode()).hexdigest()
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == TIKTOKEN_SHA256:
        return cache, "cl100k_base from npm js-tiktoken (sha256 checked)"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                ["npm", "pack", JS_TIKTOKEN, "--silent"],
                cwd=tmp,
                check=True,
                capture_output=True,
                timeout=120,
            )
            tgz = next(Path(tmp).glob("js-tiktoken-*.tgz"))
            with tarfile.open(tgz) as tar:
                member = tar.extractfile("package/dist/ranks/cl100k_base.cjs")
                assert member is not None
                source = member.read().decode()
        ranks = json.loads(source.split("=", 1)[1].strip().rstrip(";"))["bpe_ranks"]
        lines: list[tuple[int, str]] = []
        for row in ranks.split("\n"):
            if not row:
                continue
            _, offset, *tokens = row.split(" ")
            lines.extend((int(offset) + i, token) for i, token in enumerate(tokens))
        lines.sort()
        blob = "".join(f"{token} {rank}\n" for rank, token in lines).encode()
        base64.b64decode(lines[0][1])  # sanity: tokens are base64
        if hashlib.sha256(blob).hexdigest() != TIKTOKEN_SHA256:
            return None, "rebuilt cl100k_base does not match tiktoken's sha256; byte estimate used"
        cache.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
        return cache, "cl100k_base from npm js-tiktoken (sha256 checked)"
    except Exception as exc:  # any failure means: run without it, and say why
        return None, f"no cl100k_base offline ({exc.__class__.__name__}); byte estimate used"


@dataclass(frozen=True)
class Prepared:
    """The peer's venv and token table, made once (bench/run.py does it while a store fills)."""

    error: str | None
    tiktoken_cache: Path | None = None
    tiktoken_note: str = ""


def prepare() -> Prepared:
    why = ensure_venv()
    if why:
        return Prepared(why)
    cache, note = ensure_tiktoken_cache()
    return Prepared(None, cache, note)


def gateway_config(work: Path, tg: TimedTelegram, fa: TimedAnthropic) -> dict[str, Any]:
    return {
        "agents": {
            "defaults": {
                "workspace": str(work / "workspace"),
                "model": "claude-sonnet-4-5",
                "provider": "anthropic",
                "timezone": "UTC",
                "dream": {"enabled": False},
            }
        },
        "providers": {"anthropic": {"apiKey": "test-key", "apiBase": fa.base_url}},
        "channels": {
            "telegram": {
                "enabled": True,
                "token": tg.token,
                "allowFrom": ["*"],
                "streaming": False,
            },
            "websocket": {"enabled": False},
        },
        "gateway": {"heartbeat": {"enabled": False}},
    }


async def start_gateway(
    work: Path, tg: TimedTelegram, fa: TimedAnthropic, cache: Path | None, log: IO[bytes]
) -> asyncio.subprocess.Process:
    """`nanobot gateway` on a fresh config in `work` (its HOME is work/home), against the fakes."""
    (work / "home").mkdir(parents=True, exist_ok=True)
    cfg = work / "config.json"
    cfg.write_text(json.dumps(gateway_config(work, tg, fa), indent=2))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "NANOBOT"))}
    env |= {
        "HOME": str(work / "home"),
        "PYTHONPATH": str(SHIM),
        "NANOBOT_BENCH_TELEGRAM_API": tg.base_url,
        "NO_COLOR": "1",
    }
    if cache is not None:
        env["TIKTOKEN_CACHE_DIR"] = str(cache)
    return await asyncio.create_subprocess_exec(
        str(VENV / "bin" / "nanobot"),
        "gateway",
        "-c",
        str(cfg),
        "-p",
        str(free_port()),
        env=env,
        cwd=work,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )


async def measure(
    work: Path,
    *,
    turns: int,
    latency: float,
    idle_wait: float,
    gap: float,
    prepared: Prepared | None = None,
) -> dict:
    """start-to-ready, idle RSS, turn overhead over `turns` turns in one chat, RSS after."""
    ready = prepared or await asyncio.to_thread(prepare)
    if ready.error:
        return {"error": ready.error}
    cache, tiktoken_note = ready.tiktoken_cache, ready.tiktoken_note
    out: dict[str, Any] = {"version": "nanobot-ai 0.3.5", "tiktoken": tiktoken_note}
    await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
    async with TimedAnthropic(latency) as fa, TimedTelegram() as tg:
        with (work / "gateway.log").open("wb") as log:
            started = time.perf_counter()
            proc = await start_gateway(work, tg, fa, cache, log)
            try:
                if why := await first_poll(tg, proc, started):
                    return out | {"error": f"nanobot {why}; see {work / 'gateway.log'}"}
                assert tg.first_poll_at is not None
                out["start_to_ready_s"] = round(tg.first_poll_at - started, 3)
                await asyncio.sleep(idle_wait)
                out["idle_rss_mib"] = round(tree_rss_mib(proc.pid), 1)
                print(f"  peer: {turns} turns in one chat ...", flush=True)
                cpu0 = cpu_seconds(proc.pid)
                overheads = await drive_turns(tg, fa, turns, chat=OWNER_TG, gap=gap)
                out["cpu_ms_per_turn"] = round((cpu_seconds(proc.pid) - cpu0) / turns * 1000, 1)
                await asyncio.sleep(1.0)
                out["rss_after_turns_mib"] = round(tree_rss_mib(proc.pid), 1)
                out["turns"] = turns
                out["gap_s"] = gap
                out["overhead_ms"] = summary_ms(overheads)
                out["overhead_ms_per_100_p50"] = [
                    summary_ms(overheads[i : i + 100])["p50"] for i in range(0, len(overheads), 100)
                ]
                out["tokens"] = token_figures(fa, OWNER_TG, min(50, turns))
                out["disk_mib"] = round(await asyncio.to_thread(dir_mib, work), 2)
            except TimeoutError as exc:
                out["error"] = f"a turn got no reply: {exc}"
            finally:
                await terminate(proc)
    return out
