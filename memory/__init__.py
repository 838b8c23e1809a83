"""Steward's state: SQLite, the source of truth, and long-term memory. Knows no chat or agent."""

import os as _os

# onnxruntime's Linux wheels send usage events to Microsoft (mobile.events.data.microsoft.com)
# from threads of their own, idle or not, and `disable_telemetry_events()` does not stop them
# (review 73); this variable, read when the library loads, does. Set before anything imports it.
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
