"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    """The repository root, where ``scenarios/`` lives."""
    return REPO_ROOT


@pytest.fixture
def write_scenario(tmp_path: Path) -> Callable[..., Path]:
    """A factory that writes scenario text to a file under ``tmp_path`` and returns its path."""

    def write(text: str, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
