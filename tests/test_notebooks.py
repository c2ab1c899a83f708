"""The notebooks: committed without outputs, and each runs top to bottom without an error,
in a kernel of this interpreter, leaving nothing behind in the repository."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 300
# not the notebooks' business, or edited by other processes while the tests run
SKIP_DIRS = {".git", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
             ".hypothesis", ".ipynb_checkpoints", "sim", "tests", "benchmarks"}  # fmt: skip
PROBE = "import sys\nprint(sys.prefix)"


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def _files() -> dict[str, tuple[int, int]]:
    """Every file of the repository outside SKIP_DIRS: relative path → (mtime, size)."""
    found: dict[str, tuple[int, int]] = {}
    for root, dirs, files in os.walk(REPO_ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in files:
            path = Path(root) / name
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            found[str(path.relative_to(REPO_ROOT))] = (st.st_mtime_ns, st.st_size)
    return found


def test_there_are_notebooks() -> None:
    """The three notebooks the README lists are there."""
    names = {p.name for p in NOTEBOOKS}
    assert {"01-quickstart.ipynb", "02-routed-vs-direct.ipynb",
            "03-capacity-planning.ipynb"} <= names  # fmt: skip


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    """No outputs and no execution counts in the file as committed; a valid notebook."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.get("outputs") == [], f"{path.name}: cell {i} has outputs"
        assert cell.get("execution_count") is None, f"{path.name}: cell {i} has a count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs(path: Path) -> None:
    """Every cell runs without an error (in a kernel of this interpreter, from the
    notebooks' directory, as Jupyter would run it); figures render; the notebook writes
    nothing into the repository and is not modified by running it."""
    before = _files()
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))  # which Python ran the cells
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on an error

    probe = nb.cells[-1].outputs
    printed = "".join(o.get("text", "") for o in probe if o.get("output_type") == "stream")
    assert Path(printed.strip()).resolve() == Path(sys.prefix).resolve(), (
        f"the kernel ran {printed.strip()!r}, not this interpreter ({sys.prefix})"
    )
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    has_figure = any("image/png" in o.get("data", {}) for o in outputs)
    assert has_figure, f"{path.name}: no figure was rendered"

    after = _files()
    new = sorted(set(after) - set(before))
    assert not new, f"{path.name} wrote into the repository: {new}"
    changed = [p for p in before if p.startswith("notebooks/") and after.get(p) != before[p]]
    assert not changed, f"running {path.name} changed {changed}"
