"""What one replication produces: plain records, no pandas (:mod:`sim.results.tables` makes
the tables)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StreamData:
    """What one stream did in one replication."""

    partition: str
    stream: int
    requested_path: str
    io_path: str
    device: str
    ops: tuple[str, ...]
    done: list[tuple[Any, ...]]
    in_flight: list[tuple[Any, ...]]
    offered_rps: float | None
    failed: list[tuple[Any, ...]] = field(default_factory=list)
    failures: dict[int, str] = field(default_factory=dict)  # id → why it failed
    attempts: dict[int, int] = field(default_factory=dict)  # id → attempts, where > 1
    paths: dict[int, str] = field(default_factory=dict)  # id → path, where not io_path
    issued: int = 0


@dataclass
class RunData:
    """Records of one replication (plain Python, turned into frames by the caller)."""

    replication: int
    seed: int
    warmup_us: float
    duration_us: float
    cores: int
    streams: list[StreamData]
    cpu: list[tuple[str, str, str, float]]
    counters: dict[str, int]
    resources: list[tuple[str, str, float, float, float]]
    sched: list[tuple[str, str, int, float, float, int, int, int]] = field(default_factory=list)
    lp_busy_us: list[float] = field(default_factory=list)
    trace: list[tuple[float, str, str, str, float]] = field(default_factory=list)
    wall_s: float = 0.0
