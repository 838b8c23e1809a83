"""The fault suite's helpers import one another by name; its summary lines are printed by
tests/conftest.py (one per category: cases tried, cases held, data lost)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
