"""Builds the simulation core (``sim/model``) as compiled modules with mypyc when it can
(docs/design.md §8, Speed): the same source, the same results to the bit, about twice the
requests per second. Everything else is in ``pyproject.toml``.

The compiled modules are optional: without a C compiler, with ``HVSIM_PURE=1`` in the
environment, or when the compilation fails, the install goes on with the interpreted
model (and says so). Beside the compiled modules the build writes
``sim/model/_compiled.json``, the SHA-256 of each compiled source: ``sim.model`` runs the
interpreted source instead of a compiled module whose source has changed since.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
MODEL = HERE / "sim" / "model"
INTERPRETED = ("__init__.py", "errors.py")
"""Modules of ``sim/model`` never compiled: the package's loader (it decides whether the
compiled modules are used) and the exceptions (a compiled class cannot derive from
``AssertionError``)."""


def _sources() -> list[Path]:
    return sorted(p for p in MODEL.glob("*.py") if p.name not in INTERPRETED)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _say(text: str) -> None:
    print(f"hvsim: {text}", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """``build_ext`` that never fails the install: a compiler missing or failing leaves
    the interpreted model; on success it records the compiled sources' hashes."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, a compile error: the pure model serves
            _say(f"compiled model not built ({type(exc).__name__}: {exc}); "
                 "the interpreted model will run (same results, about half the speed)")  # fmt: skip
            hashes = {}  # recorded all the same: nothing compiled, nothing to try again
        else:  # nothing to build (HVSIM_PURE, no mypyc): nothing compiled either
            hashes = {p.stem: _sha256(p) for p in _sources()} if self.extensions else {}
        text = json.dumps(hashes, indent=1, sort_keys=True) + "\n"
        dirs = {MODEL} if self.inplace else {Path(self.build_lib) / "sim" / "model"}
        for d in dirs:
            d.mkdir(parents=True, exist_ok=True)
            (d / "_compiled.json").write_text(text)


def _extensions() -> list:  # type: ignore[type-arg]
    if os.environ.get("HVSIM_PURE", "") not in ("", "0"):
        _say("HVSIM_PURE is set: the interpreted model only")
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _say("mypyc is not available: the interpreted model only")
        return []
    try:  # mypyc reads the types of what the model imports: they must be installed
        for name in ("numpy", "pydantic", "simpy", "yaml"):
            __import__(name)
    except ImportError as exc:
        _say(f"{exc.name} is not installed yet: the interpreted model only for now "
             "(the Makefile compiles once the dependencies are in)")  # fmt: skip
        return []
    old = os.getcwd()
    os.chdir(HERE)  # mypyc names the modules from paths relative to here
    try:
        return mypycify(
            [str(p.relative_to(HERE)) for p in _sources()], opt_level="3", group_name="sim.model"
        )
    except (Exception, SystemExit) as exc:  # a type error mypyc finds: not the user's concern
        _say(f"compiled model not generated ({type(exc).__name__}: {exc}); the interpreted "
             "model will run (same results, about half the speed)")  # fmt: skip
        return []
    finally:
        os.chdir(old)


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
