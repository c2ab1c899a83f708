"""The package's layout: data flows one way, scenario → model → analysis → results →
experiment → report → cli, with no import circle and nothing importing upward. Every
import counts, at the top of a module, inside a function or under TYPE_CHECKING."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import sim

SIM = Path(__file__).resolve().parents[1] / "sim"
LAYERS = ("scenario", "model", "analysis", "results", "experiment", "report", "cli")
"""The rooms of ``sim/``, lowest first: a room may import only from itself and below."""


def _module(path: Path) -> str:
    parts = path.relative_to(SIM.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every module of ``sim`` → the ``sim`` modules it imports, anywhere in its text."""
    modules = {_module(p): p for p in SIM.rglob("*.py")}
    out: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    found.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        out[name] = {m for m in found if m in modules and m != name}
    return out


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_rooms_are_the_layers() -> None:
    """``ls sim/`` shows exactly the layers (and the public API module)."""
    rooms = {
        p.stem
        for p in SIM.iterdir()
        if p.name != "__pycache__" and p.suffix not in (".typed", ".so", ".pyd")
    }  # .so: the compiled model's shared library (docs/design.md §8, Speed)
    assert rooms == {*LAYERS, "__init__"}


def test_nothing_imports_upward() -> None:
    """No module imports from a room above its own; only ``sim/__init__`` reaches all."""
    upward = [
        f"{m} → {t}"
        for m, targets in _imports().items()
        for t in targets
        if (lm := _layer(m)) is not None and (lt := _layer(t)) is not None and lt > lm
    ]
    assert upward == []


def test_no_room_imports_the_public_api() -> None:
    """The rooms never import ``sim`` itself (the API sits on top of them)."""
    assert [m for m, targets in _imports().items() if "sim" in targets and m != "sim"] == []


def test_no_import_circle() -> None:
    """The import graph of the package's modules has no cycle."""
    graph = _imports()
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                circles.append([*stack[stack.index(t) :], t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert circles == []


@pytest.mark.parametrize("room", ["model"])
def test_model_rooms_are_pure(room: str) -> None:
    """The simulated host does no file I/O and uses neither pandas nor matplotlib."""
    banned = {"pandas", "matplotlib", "pathlib", "yaml", "json"}
    for path in (SIM / room).rglob("*.py"):
        if path == SIM / "model" / "__init__.py":  # its loader reads the build's record of
            continue  # the compiled modules, before any of them is imported
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {
            a.name.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.Import)
            for a in n.names
        } | {
            n.module.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module
        }
        assert not names & banned, f"{path.name} imports {sorted(names & banned)}"
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
        assert not any(
            isinstance(c.func, ast.Name) and c.func.id in ("open", "print") for c in calls
        )


def test_the_command_line_path_loads_no_plotting_or_scipy_stats() -> None:
    """Running, sweeping and printing tables import neither matplotlib nor scipy.stats
    (about a second of every command's start and of every worker process's): the plot
    functions of :mod:`sim.report` load on first use."""
    code = (
        "import sys, sim.experiment.run, sim.experiment.study, sim.report.text, sim.cli; "
        "print(sorted(m for m in ('matplotlib', 'scipy.stats') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    import sim.report

    assert sim.report.latency_cdf.__module__ == "sim.report.plots"


def test_public_api_is_exactly_the_documented_names() -> None:
    """``dir(sim)`` shows the public API and nothing of the rooms behind it."""
    assert dir(sim) == sorted(sim.__all__)
    for name in sim.__all__:
        assert getattr(sim, name) is not None
