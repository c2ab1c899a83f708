"""What one replication produces: plain, typed records, no pandas (:mod:`sim.results.tables`
makes the tables; their columns are these records' fields)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from sim.model.request import Record


class CpuRecord(NamedTuple):
    """Busy time of one vCPU in one category over the measurement window."""

    partition: str
    vcpu: str
    category: str
    busy_us: float


class SchedRecord(NamedTuple):
    """What the scheduler did for one vCPU over the measurement window."""

    partition: str
    vcpu: str
    wakeups: int
    wake_total_us: float
    max_wakeup_us: float
    dispatches: int
    preemptions: int
    boosts: int


class ResourceRecord(NamedTuple):
    """Utilisation and occupancy of one device or VMBus ring over the window."""

    resource: str
    kind: str
    utilization: float
    mean_level: float
    max_level: float


class TraceRecord(NamedTuple):
    """The mean occupancy of one resource over one trace interval ending at ``time_us``."""

    time_us: float
    resource: str
    kind: str
    quantity: str
    value: float


@dataclass
class StreamData:
    """What one stream did in one replication."""

    partition: str
    stream: int
    requested_path: str
    io_path: str
    device: str
    ops: tuple[str, ...]
    done: list[Record]
    in_flight: list[Record]
    offered_rps: float | None
    failed: list[Record] = field(default_factory=list)
    failures: dict[int, str] = field(default_factory=dict)  # id → why it failed
    attempts: dict[int, int] = field(default_factory=dict)  # id → attempts, where > 1
    paths: dict[int, str] = field(default_factory=dict)  # id → path, where not io_path
    # request-response with a remote peer: id → (network, peer, one-way) µs of the
    # completed requests; None for a stream without a peer
    trips: dict[int, tuple[float, float, float]] | None = None
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
    cpu: list[CpuRecord]
    counters: dict[str, int]
    resources: list[ResourceRecord]
    sched: list[SchedRecord] = field(default_factory=list)
    lp_busy_us: list[float] = field(default_factory=list)
    trace: list[TraceRecord] = field(default_factory=list)
    wall_s: float = 0.0
