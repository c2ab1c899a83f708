"""The simulated host: hypervisor and its scheduler, partitions, VMBus, IOMMU, devices,
I/O paths, workloads and faults, built from a scenario's deployment plan
(:mod:`sim.model.host`). No file I/O, no pandas, no plotting here: a replication returns
plain records (:mod:`sim.model.records`).

Compiled or interpreted (docs/design.md §8, Speed): the install may have compiled these
modules with mypyc (``setup.py``), the same source giving the same results to the bit at
about twice the speed. This package's own module decides, before any of them is imported,
which runs: the compiled ones when ``_compiled.json`` (written by the build) holds the
SHA-256 of every compiled module's current source; otherwise, or when ``HVSIM_PURE`` is set
(to anything but 0), every module of the model is loaded from its source, with a warning
naming the modules whose source changed since they were compiled. :data:`COMPILED` says
which it is."""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

_HERE = Path(__file__).resolve().parent


def stale_modules(folder: Path) -> list[str] | None:
    """The compiled modules in ``folder`` whose source no longer matches the hash the
    build recorded (or whose binary is missing); None when nothing was compiled there."""
    record = folder / "_compiled.json"
    try:
        hashes: dict[str, str] = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    if not hashes:
        return None
    stale = []
    for name, digest in sorted(hashes.items()):
        src = folder / f"{name}.py"
        binary = any(
            (folder / f"{name}{suffix}").exists()
            for suffix in importlib.machinery.EXTENSION_SUFFIXES
        )
        if not binary or not src.exists() or hashlib.sha256(src.read_bytes()).hexdigest() != digest:
            stale.append(name)
    return stale


class _FromSource:
    """Finds ``sim.model.X`` in ``X.py`` (never in a compiled binary beside it)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        prefix, _, name = fullname.rpartition(".")
        if prefix != __name__:
            return None
        src = _HERE / f"{name}.py"
        return importlib.util.spec_from_file_location(fullname, src) if src.exists() else None


def _choose() -> bool:
    stale = stale_modules(_HERE)
    pure = os.environ.get("HVSIM_PURE", "") not in ("", "0")
    if stale and not pure:
        warnings.warn(
            f"hvsim: the compiled model is older than its source ({', '.join(stale)}.py "
            "changed): running the interpreted model (same results, about half the speed); "
            "`make build` compiles it again",
            RuntimeWarning,
            stacklevel=3,
        )
    if stale is None or stale or pure:  # any binary left beside the source stays unused
        sys.meta_path.insert(0, _FromSource())
        return False
    return True


COMPILED: bool = _choose()
"""Whether the model runs compiled (mypyc) in this process."""
