"""MCP servers the tests run as real subprocesses (stdio) or on 127.0.0.1 (streamable HTTP)."""

__all__: list[str] = []
