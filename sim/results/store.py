"""The result store: how a result directory is written.

A directory is written whole or not at all: everything goes to a temporary directory
beside it, which is renamed into place when every file is written.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import shutil
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_directory(out: str | Path) -> Iterator[Path]:
    """A temporary directory beside ``out`` that replaces ``out`` when the block succeeds
    and vanishes when it fails: a result directory is either whole or absent."""
    out = Path(out)
    if out.exists() and not (out / "meta.json").exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not an hvsim result directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def hvsim_version() -> str:
    """The installed hvsim's version."""
    try:
        return importlib.metadata.version("hvsim")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"


def versions() -> dict[str, str]:
    """hvsim's, Python's and the model's libraries' versions, and the platform."""
    import numpy as np
    import pandas as pd
    import scipy
    import simpy

    return {
        "hvsim": hvsim_version(),
        "python": platform.python_version(),
        "simpy": simpy.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "platform": platform.platform(),
    }
