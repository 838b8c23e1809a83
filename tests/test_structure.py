"""The shape of the code: imports point inward without cycles, public names are what is exported,
and the typed transcript round-trips with its trust labels.

Imports are read with `ast`, so an import under `if TYPE_CHECKING:` or inside a function counts
as much as one at the top: a cycle hidden that way still ties the modules together for whoever
changes them.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from agent.transcript import (
    Message,
    PausedState,
    TextPart,
    ToolResultPart,
    ToolUsePart,
    dump_transcript,
    load_transcript,
    to_api,
)

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agent", "memory", "bot")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(name: str, path: Path) -> set[str]:
    """Every project module `name` imports, wherever the import statement is."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        for target in targets:
            resolved = _resolve(target)
            if resolved and resolved != name:
                found.add(resolved)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("package", ["agent", "memory", "bot"])
def test_no_import_cycles(package: str) -> None:
    inside = {n: {m for m in deps if m.startswith(package)} for n, deps in GRAPH.items()}
    inside = {n: deps for n, deps in inside.items() if n.startswith(package)}
    assert _cycles(inside) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    """The check itself can fail: a made-up graph with a hidden cycle is caught."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_dependencies_point_inward() -> None:
    for name, deps in GRAPH.items():
        if name.startswith("memory"):
            assert not [d for d in deps if d.startswith(("agent", "bot"))], name
        if name.startswith("agent"):
            assert not [d for d in deps if d.startswith("bot")], name


_SQL = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|PRAGMA|DROP|ALTER|WITH)\s")
# the CLI names SQLite's exception types to say "damaged" in one line; it runs no SQL
_SQLITE_TYPES_ONLY = {"bot.cli"}


def test_only_memory_speaks_sql() -> None:
    """SQL lives in memory/: nothing else reaches the database handle, opens SQLite itself
    (R108: the restore check did, in bot/backup.py), or holds a statement."""
    for name, path in MODULES.items():
        if name.startswith("memory"):
            continue
        source = path.read_text(encoding="utf-8")
        assert "stores.db" not in source and "._db." not in source, name
        tree = ast.parse(source)
        statements = [
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _SQL.match(node.value)
        ]
        assert statements == [], name
        if name in _SQLITE_TYPES_ONLY:
            continue
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in (
                node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
            )
        }
        assert not imported & {"sqlite3", "aiosqlite"}, name


_LENGTH_REASON = re.compile(r"\([^()]*\blines\b[^():]*:")


def test_a_module_over_400_lines_says_why_at_its_top() -> None:
    """R108: six modules had grown past 400 lines without the reason the style asks for."""
    unexplained = []
    for name, path in MODULES.items():
        source = path.read_text(encoding="utf-8")
        if source.count("\n") > 400:
            doc = ast.get_docstring(ast.parse(source)) or ""
            if not _LENGTH_REASON.search(doc):
                unexplained.append(name)
    assert unexplained == []


_STATED_LENGTH = re.compile(r"\((?:Some|About)\s+(\d[\d,]*)\s+lines")


def test_a_module_s_stated_length_is_near_its_length() -> None:
    """R260: `recall.py` said "Some 415 lines" at 495; a reason whose count is stale is a reason
    nobody re-read when the module grew."""
    stale = {}
    for name, path in MODULES.items():
        source = path.read_text(encoding="utf-8")
        doc = ast.get_docstring(ast.parse(source)) or ""
        if (found := _STATED_LENGTH.search(doc)) is not None:
            stated, actual = int(found.group(1).replace(",", "")), source.count("\n")
            if abs(actual - stated) > 60:
                stale[name] = (stated, actual)
    assert stale == {}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_public_names_are_what_is_exported(name: str) -> None:
    """Every name in `__all__` exists, once, and every public class the module defines is
    listed (functions made into tools or commands are exported through their families)."""
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        return
    assert len(exported) == len(set(exported)), f"{name}: __all__ repeats a name"
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ names {item!r}, which does not exist"
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    defined = {
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_")
    }
    assert defined <= set(exported), f"{name}: public but not in __all__: {defined - set(exported)}"


def test_the_transcript_round_trips_with_its_labels() -> None:
    messages = [
        Message(role="user", content=[TextPart(text="read it", cache=True)]),
        Message(
            role="assistant",
            content=[ToolUsePart(id="t1", name="web_fetch", input={"url": "https://x.example"})],
        ),
        Message(
            role="user",
            content=[
                ToolResultPart(tool_use_id="t1", content="page", label=("web:x.example",)),
                ToolResultPart(tool_use_id="t2", content="no", is_error=True),
            ],
        ),
    ]
    again = load_transcript(dump_transcript(messages))
    assert again == messages
    assert again[2].content[0].trust.tainted  # type: ignore[union-attr]
    api = to_api(again)
    assert api[0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert "label" not in str(api) and "cache" not in api[1]["content"][0]
    assert api[2]["content"][1]["is_error"] is True and "is_error" not in api[2]["content"][0]


def test_a_transcript_stored_before_the_typed_one_still_loads() -> None:
    old = (
        '[{"role": "user", "content": [{"type": "text", "text": "hi", '
        '"cache_control": {"type": "ephemeral"}}]}]'
    )
    (message,) = load_transcript(old)
    assert message.content == [TextPart(text="hi")]
    state = PausedState.model_validate_json(
        '{"order": ["a"], "results": {}, "usage": {"input_tokens": 3}, "taint_sources": []}'
    )
    assert state.token_usage.input_tokens == 3 and state.label == ()


def test_a_label_with_named_sources_is_never_trusted() -> None:
    """`Label.of(False, sources)` dropped the sources and called it trusted; every caller
    kept the flag and the sources in step, but one that did not would lose the taint."""
    from memory.labels import TRUSTED, Label

    assert Label.of(False, ("web:evil.example",)).tainted
    assert Label.of(False, iter(["feed:x.example"])).sources == ("feed:x.example",)
    assert Label.of(False, ("",)) == TRUSTED and Label.of(False) == TRUSTED
    assert Label.of(True).tainted
