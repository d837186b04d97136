"""The layering of docs/architecture.md, checked from the imports: arrows only downward.

Every import of a worldpool module (at the top of a file or inside a function) must name
the importer's own package or one in a lower layer. A new top-level package or module
must be placed in ``LAYERS`` (and in the architecture page's table).
"""

from __future__ import annotations

import ast
from pathlib import Path

import worldpool

SRC = Path(worldpool.__file__).parent

# Top to bottom; a component may import only from the rows below its own.
LAYERS: list[set[str]] = [
    {"__main__"},
    {"cli"},
    {"demo", "__init__"},
    {"api", "testing"},
    {"embedded", "executors", "bridges"},
    {"client"},
    {"orchestrator", "worker"},
    {"artifacts", "epoch", "event_log", "sim"},
    {"routing", "backends"},
    {"config", "geo", "envelope", "identity", "lifecycle", "workflow", "render", "typed"},
    {"models", "plugins"},
    {"errors", "tracing", "unchecked", "service", "redact"},
]
RANK = {name: depth for depth, row in enumerate(LAYERS) for name in row}


def _component(path: Path) -> str:
    """The top-level package or module a source file belongs to."""
    return path.relative_to(SRC).with_suffix("").parts[0]


def _imported_components(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] != "worldpool":
                continue
            if len(parts) > 1:
                found.add(parts[1])
            else:  # from worldpool import geo, Orchestrator: modules, or the package itself
                for alias in node.names:
                    found.add(
                        alias.name
                        if (SRC / alias.name).exists() or (SRC / f"{alias.name}.py").exists()
                        else "__init__"
                    )
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "worldpool":
                    found.add(parts[1] if len(parts) > 1 else "__init__")
    return found


def _sources() -> list[Path]:
    return [p for p in sorted(SRC.rglob("*.py")) if "project" not in p.relative_to(SRC).parts]


def test_every_component_has_a_layer() -> None:
    unplaced = sorted({_component(p) for p in _sources()} - set(RANK))
    assert unplaced == [], f"place these in LAYERS (and docs/architecture.md): {unplaced}"


def test_imports_point_only_downward() -> None:
    upward = []
    for path in _sources():
        me = _component(path)
        for other in _imported_components(ast.parse(path.read_text())):
            if other != me and other in RANK and RANK[other] <= RANK[me]:
                upward.append(f"{path.relative_to(SRC)} imports worldpool.{other}")
    assert upward == []


def test_the_check_sees_an_upward_import() -> None:
    # Given a module of a low layer that imports the orchestrator, the check finds it.
    tree = ast.parse("from worldpool.orchestrator.core import Orchestrator\n")
    assert _imported_components(tree) == {"orchestrator"}
    assert RANK["orchestrator"] < RANK["backends"]
