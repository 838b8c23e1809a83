"""Steward's state: SQLite, the source of truth, and long-term memory. Knows no chat or agent."""
