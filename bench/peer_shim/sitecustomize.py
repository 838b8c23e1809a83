"""Benchmark-only shim: point python-telegram-bot at a loopback Bot API.

nanobot 0.3.5 builds its PTB Application without .base_url(), and PTB reads no env var for it,
so when NANOBOT_BENCH_TELEGRAM_API=http://127.0.0.1:PORT is set we change ApplicationBuilder's
default base URLs. Put this directory on PYTHONPATH only for the benchmark run; nanobot's
venv stays untouched.
"""

import os

_base = os.environ.get("NANOBOT_BENCH_TELEGRAM_API", "").rstrip("/")
if _base:
    from telegram.ext import ApplicationBuilder

    _orig_init = ApplicationBuilder.__init__

    def _init(self, *args, **kwargs):
        _orig_init(self, *args, **kwargs)
        self._base_url = _base + "/bot"  # PTB appends the token
        self._base_file_url = _base + "/file/bot"

    ApplicationBuilder.__init__ = _init
