"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sim.model.env import SimEnv
from sim.model.hypervisor import Hypervisor, VCpu

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


def bare_vcpus(env: SimEnv, n: int = 1) -> list[VCpu]:
    """``n`` vCPUs of one partition on a hypervisor of ``env``'s scenario, never scheduled:
    what a unit test gives model code that takes a vCPU it does not run on (the compiled
    model accepts no stand-in such as None)."""
    hv = Hypervisor(env, env.scenario.host)
    domain = hv.domain("test", 256, 0.0)
    return [hv.vcpu(domain, i, 0.0) for i in range(n)]
