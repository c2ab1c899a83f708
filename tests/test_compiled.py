"""The compiled model (mypyc, ``setup.py``): it gives the interpreted model's results to the
bit, ``HVSIM_PURE`` runs the interpreted one, and a compiled module whose source changed
is never run (docs/design.md §8, Speed)."""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sim.model
from sim.model import stale_modules

ROOT = Path(__file__).resolve().parents[1]
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
needs_compiled = pytest.mark.skipif(
    not sim.model.COMPILED,
    reason="the model is not compiled in this install (no C compiler, HVSIM_PURE, or its "
    "source changed since: `make build`)",
)

RECORDS = """
import hashlib, sys
import numpy as np
import sim, sim.model
from sim.model.host import simulate
scn = sim.load(sys.argv[1], {"run.duration": sys.argv[2], "run.warmup": "3ms"})
data = simulate(scn, 0, 7)
h = hashlib.sha256()
for s in data.streams:
    for part in (s.done, s.failed, s.in_flight):
        h.update(np.ascontiguousarray(part).tobytes())
for rec in data.cpu:
    h.update(repr(rec).encode())
print(sim.model.COMPILED, sum(len(s.done) for s in data.streams), h.hexdigest())
"""


def _run(code: str, *args: str, pure: bool, cwd: Path = ROOT, path: Path = ROOT) -> str:
    env = {k: v for k, v in os.environ.items() if k != "HVSIM_PURE"}
    env["PYTHONPATH"] = str(path)
    if pure:
        env["HVSIM_PURE"] = "1"
    out = subprocess.run(
        [sys.executable, "-W", "always", "-c", code, *args],
        capture_output=True, text=True, check=True, cwd=cwd, env=env,
    )  # fmt: skip
    return out.stdout.strip() + out.stderr.strip()


@needs_compiled
@pytest.mark.parametrize(
    ("scenario", "duration"),
    [("baseline.yaml", "30ms"), ("parent-failure.yaml", "450ms"), ("overcommit.yaml", "30ms")],
)
def test_compiled_and_interpreted_models_give_the_same_records(
    scenario: str, duration: str
) -> None:
    """Every request's record and every CPU account, compiled and interpreted, to the bit
    (the parent's failure at 400 ms included)."""
    path = str(ROOT / "scenarios" / scenario)
    compiled = _run(RECORDS, path, duration, pure=False).split()
    pure = _run(RECORDS, path, duration, pure=True).split()
    assert compiled[0] == "True"
    assert pure[0] == "False"
    assert int(compiled[1]) > 100
    assert compiled[1:] == pure[1:]


@needs_compiled
def test_hvsim_pure_loads_every_model_module_from_its_source() -> None:
    code = (
        "import sim.model, sim.model.host, sim.model.env; "
        "print(sim.model.COMPILED, sim.model.host.__file__, sim.model.env.__file__)"
    )
    flag, *files = _run(code, pure=True).split()
    assert flag == "False"
    assert all(f.endswith(".py") for f in files)
    flag, *files = _run(code, pure=False).split()
    assert flag == "True"
    assert all(f.endswith(SUFFIX) for f in files)


@needs_compiled
def test_a_model_module_edited_after_compiling_runs_interpreted(tmp_path: Path) -> None:
    """A copy of the package whose hypervisor.py changed: the whole model runs from source,
    with a warning naming the module and how to compile it again."""
    shutil.copytree(ROOT / "sim", tmp_path / "sim")
    src = tmp_path / "sim" / "model" / "hypervisor.py"
    src.write_text(src.read_text() + "\n# edited\n")
    code = "import sim.model, sim.model.host as h; print(sim.model.COMPILED, h.__file__)"
    out = _run(code, pure=False, cwd=tmp_path, path=tmp_path)
    assert "False" in out
    assert "host.py" in out
    assert "hypervisor.py changed" in out
    assert "make build" in out


def _folder(tmp_path: Path, hashes: dict[str, str] | None, binaries: list[str]) -> Path:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    for name in binaries:
        (tmp_path / f"{name}{SUFFIX}").write_bytes(b"")
    if hashes is not None:
        (tmp_path / "_compiled.json").write_text(json.dumps(hashes))
    return tmp_path


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_stale_modules_compares_each_source_with_its_recorded_hash(tmp_path: Path) -> None:
    good = {"a": _sha("x = 1\n"), "b": _sha("y = 2\n")}
    assert stale_modules(_folder(tmp_path, good, ["a", "b"])) == []
    (tmp_path / "b.py").write_text("y = 3\n")
    assert stale_modules(tmp_path) == ["b"]
    (tmp_path / f"a{SUFFIX}").unlink()  # a binary gone
    assert stale_modules(tmp_path) == ["a", "b"]


@pytest.mark.parametrize("hashes", [None, {}])
def test_nothing_recorded_means_nothing_compiled(tmp_path: Path, hashes: dict | None) -> None:
    assert stale_modules(_folder(tmp_path, hashes, ["a"])) is None
