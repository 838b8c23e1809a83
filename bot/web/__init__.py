"""The owner's web console (issue 16): served by the one HTTP server at `/`.

`WebConsole` (console.py) answers every path no channel mounted; `auth.py` issues the one-time
login links that `/web` and `steward web-link` hand out; `security.py` is the perimeter (Host,
Origin, CSRF, headers); `pages/` has one module per page, `templates/` and `static/` what they
render and serve.
"""

from __future__ import annotations

__all__: list[str] = []
