"""What one replication produces: plain, typed records, no pandas (:mod:`sim.results.tables`
makes the tables; their columns are these records' fields).

Requests are recorded in columns, not objects (:class:`RequestLog`, docs/design.md §3.7):
a finished request adds its :data:`~sim.model.request.REQUEST_FIELDS` as float64 values to
one flat buffer of its stream (``array('d')``, 8 bytes a field, no Python object kept per
request), read back as one ``(n, fields)`` array. ``run.requests`` decides what is kept:

``all``       every request's whole row (17 fields, 136 bytes): the requests table.
``sample N``  per stream, the time stamps and size of every completed request (24 bytes:
              exactly what the latency statistics, percentiles, throughput and MSER-5
              need), a one-byte mark per id (the conservation check, exact), the latency
              components summed over the requests submitted after the warm-up (their
              means), and the whole rows of N completed requests drawn uniformly
              (reservoir sampling) for the table.
``none``      the same without the sample.

Whole rows of the last :data:`CHUNK` requests are buffered and folded into the sums
and the sample when the buffer is full. The sums need the warm-up before the run:
``sample`` and ``none`` are refused under ``warmup_method: mser5``
(:mod:`sim.scenario.checks`).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

import numpy as np

from sim.model.request import REQUEST_FIELDS, Record, Request

WIDTH: Final = len(REQUEST_FIELDS)
"""Fields of a request's whole row."""
CHUNK = 8192
"""Whole rows buffered before they are folded into sums and the sample (lean modes)."""
LEAN = ("t_submit_us", "t_complete_us", "size_bytes")
"""What the lean modes keep of every completed request."""
_ID, _SIZE, _SUBMIT, _END = (REQUEST_FIELDS.index(f) for f in (
    "id", "size_bytes", "t_submit_us", "t_complete_us"))  # fmt: skip
_COMP: Final = REQUEST_FIELDS.index("t_complete_us") + 1  # the first latency component


class RequestLog:
    """The finished requests of one stream, in columns (module docstring).

    ``keep`` is ``"all"``, ``"none"`` or the size of the sample; ``warmup`` the fixed
    warm-up (components are summed over requests submitted at or after it); ``rng`` draws
    the sample
    (its own stream: no other draw moves); ``trips`` adds the three times of a
    request-response with a remote peer to the sums."""

    def __init__(
        self,
        keep: int | str = "all",
        warmup: float = 0.0,
        rng: np.random.Generator | None = None,
        trips: bool = False,
    ) -> None:
        self.keep = keep
        self.rows = array("d")  # whole rows: every one (all) or the unfolded ones
        self.lean = array("d")  # LEAN fields of every completed request (lean modes)
        self.seen = np.zeros(0, dtype=np.uint8)  # completed ids, marked (lean modes)
        self.count = 0
        self.warmup = warmup
        self.rng = rng
        self.width = WIDTH + (3 if trips else 0)
        self.trips = trips
        # per-request sums of the components (and trip times) over requests submitted at
        # or after the warm-up, and how many those are
        self.sums = np.zeros(self.width - _COMP, dtype=float)
        self.summed = 0
        self.timed = np.zeros(3, dtype=np.int64)  # requests with trip times, per time
        self.sample = np.zeros((0, self.width), dtype=float)  # the reservoir (sample N)
        self._chunk = CHUNK * self.width
        # bound once, so the hot path tests nothing: record completed request ``req``,
        # ended at ``t_end``
        self.add: Callable[[Request, float], None] = (
            self._add_whole if keep == "all" else self._add_lean
        )

    def _add_whole(self, req: Request, t_end: float) -> None:
        self.rows.extend(req.record(t_end))

    def _add_lean(self, req: Request, t_end: float) -> None:
        self.lean.extend((req.t_submit, t_end, req.size))
        if self.trips:
            trip = req.trip if req.trip is not None else (float("nan"),) * 3
            self.rows.extend((*req.record(t_end), *trip))
        else:
            self.rows.extend(req.record(t_end))
        if len(self.rows) >= self._chunk:
            self._fold()

    def __len__(self) -> int:
        return len(self.lean) // 3 if self.keep != "all" else len(self.rows) // WIDTH

    def close(self) -> None:
        """Fold what is left (call once, when the run ends)."""
        if self.keep != "all":
            self._fold()

    def whole(self) -> np.ndarray:
        """Every whole row, ``(n, WIDTH)`` (``run.requests: all``)."""
        return np.frombuffer(self.rows, dtype=float).reshape(-1, WIDTH)

    def columns(self) -> np.ndarray:
        """The lean fields of every completed request, ``(n, 3)`` in :data:`LEAN` order."""
        return np.frombuffer(self.lean, dtype=float).reshape(-1, 3)

    def _fold(self) -> None:
        if not self.rows:
            return
        rows = np.frombuffer(self.rows, dtype=float).reshape(-1, self.width)
        ids = rows[:, _ID].astype(np.int64)
        top = int(ids.max()) + 1
        if top > len(self.seen):  # grow the marks (doubling: amortised)
            grown = np.zeros(max(top, 2 * len(self.seen)), dtype=np.uint8)
            grown[: len(self.seen)] = self.seen
            self.seen = grown
        np.add.at(self.seen, ids, 1)
        inw = rows[:, _SUBMIT] >= self.warmup
        self.sums[: WIDTH - _COMP] += rows[inw, _COMP:WIDTH].sum(axis=0)
        self.summed += int(inw.sum())
        if self.trips:  # a request without its times (NaN) does not count for them
            times = rows[inw, WIDTH:]
            self.sums[WIDTH - _COMP :] += np.nansum(times, axis=0)
            self.timed += (~np.isnan(times)).sum(axis=0)
        if isinstance(self.keep, int) and self.keep > 0:
            self._draw(rows)
        self.count += len(rows)
        self.rows = array("d")

    def _draw(self, rows: np.ndarray) -> None:
        """Reservoir sampling (Vitter's algorithm R): the request numbered t (from 1, in
        completion order) replaces a uniformly drawn one of the N kept with probability
        N / t, once N are kept: every request is kept with the same probability."""
        n, first = self.keep, self.count
        assert isinstance(n, int)
        assert self.rng is not None
        fill = max(0, min(len(rows), n - first))
        if fill:
            self.sample = np.concatenate([self.sample, rows[:fill]])
        rest = rows[fill:]
        if not len(rest):
            return
        t = np.arange(first + fill + 1, first + len(rows) + 1, dtype=float)
        slot = np.floor(self.rng.random(len(rest)) * t).astype(np.int64)
        hit = slot < n
        slots, picked = slot[hit], np.flatnonzero(hit)
        # the last replacement of a slot is the one that stays
        _, last = np.unique(slots[::-1], return_index=True)
        keep = len(slots) - 1 - last
        self.sample[slots[keep]] = rest[picked[keep]]

    def summary(self) -> dict[str, Any]:
        """What the lean modes keep, for the records (:class:`StreamData`)."""
        order = np.argsort(self.sample[:, _ID], kind="stable")  # the sample in id order
        return {
            "sums": self.sums,
            "summed": self.summed,
            "timed": self.timed,
            "sample": self.sample[order],
        }


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
    done: np.ndarray  # whole rows of the completed requests (REQUEST_FIELDS; all)
    in_flight: np.ndarray  # whole rows of those in flight at the end
    offered_rps: float | None
    failed: np.ndarray = field(default_factory=lambda: rows_array([]))
    failures: dict[int, str] = field(default_factory=dict)  # id → why it failed
    attempts: dict[int, int] = field(default_factory=dict)  # id → attempts, where > 1
    paths: dict[int, str] = field(default_factory=dict)  # id → path, where not io_path
    # request-response with a remote peer: id → (network, peer, one-way) µs of the
    # completed requests; None for a stream without a peer
    trips: dict[int, tuple[float, float, float]] | None = None
    issued: int = 0
    # run.requests sample N / none (RequestLog): LEAN columns of every completed request,
    # the marks of their ids, the sums of components (and trip times) over the requests
    # submitted after the warm-up and their number, the sample's whole rows (with the
    # three trip times after the components where the stream has a remote peer)
    lean: np.ndarray | None = None
    seen: np.ndarray | None = None
    sums: np.ndarray | None = None
    summed: int = 0
    timed: np.ndarray | None = None
    sample: np.ndarray | None = None

    @property
    def completed(self) -> int:
        """How many requests completed."""
        return len(self.done) if self.lean is None else len(self.lean)


def rows_array(rows: list[Record]) -> np.ndarray:
    """Whole rows (tuples of :data:`REQUEST_FIELDS`) as a ``(n, WIDTH)`` float64 array."""
    return np.array(rows, dtype=float).reshape(-1, WIDTH)


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
