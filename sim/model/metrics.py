"""Measurement primitives: latency components, CPU categories, time-weighted levels.

Tallies (one value per request: :mod:`sim.model.request` records them) and levels (queue
depth, ring occupancy, busy servers, weighted by the time they hold) are different kinds
of monitor. The model rooms update them with plain arithmetic on the hot path; nothing
here allocates per event. A finished request is recorded in its stream's columns
(:class:`sim.model.records.RequestLog`), read as NumPy arrays at the end of a run
(:mod:`sim.results.tables` turns them into DataFrames).

Latency components (docs/design.md §3.2) are the places a request's time goes; they add up
to its latency exactly:

``guest_cpu``       CPU on the child's vCPU (guest driver / VSC).
``sched_wait``      waiting for a vCPU to be given a logical processor, and the world
                    switch when it is.
``guest_queue``     waiting behind other work on the child's own vCPU while it runs.
``ring_wait``       waiting in a VMBus ring: for space when it is full, and for the other
                    side to take the entry out.
``parent_cpu``      CPU on the parent's vCPU (VSP and physical driver).
``parent_queue``    waiting behind other work on the parent's vCPU while it runs (outside
                    a ring: completion processing): where routed children meet.
``iommu``           DMA translation misses and per-request map/unmap (strict mode).
``device_queue``    waiting for the device (port or channel).
``device_service``  the device's own service time.
``interrupt``       signalling hypercalls, interrupt and EOI exits.
``retry``           before the attempt that completed: the time the request's earlier
                    attempts took until they failed or were given up (:mod:`sim.model.faults`;
                    0 for a request that completed at its first attempt).
"""

from __future__ import annotations

from typing import Final

COMPONENTS: tuple[str, ...] = (
    "guest_cpu",
    "sched_wait",
    "guest_queue",
    "ring_wait",
    "parent_cpu",
    "parent_queue",
    "iommu",
    "device_queue",
    "device_service",
    "interrupt",
    "retry",
)
# the components' indices, in COMPONENTS' order (Final: constants in the compiled model)
GUEST_CPU: Final = 0
SCHED_WAIT: Final = 1
GUEST_QUEUE: Final = 2
RING_WAIT: Final = 3
PARENT_CPU: Final = 4
PARENT_QUEUE: Final = 5
IOMMU: Final = 6
DEVICE_QUEUE: Final = 7
DEVICE_SERVICE: Final = 8
INTERRUPT: Final = 9
RETRY: Final = 10
COMPONENT_COLUMNS: tuple[str, ...] = tuple(f"{c}_us" for c in COMPONENTS)
"""The components as columns of the request and summary tables: every column that holds a
time in microseconds ends in ``_us`` (docs/outputs.md)."""

CATEGORIES: tuple[str, ...] = (
    "guest",
    "vsc",
    "vsp",
    "driver",
    "exit",
    "hypervisor",
    "smt",
    # per-VM and per-vCPU work (sim.model.periodic), present only where it is on
    "timer",
    "timer_exit",
    "halt",
    "housekeeping",
)


class Level:
    """A time-weighted level (queue length, bytes in a ring, busy servers).

    The area under the level is kept since the start of the run (``area()``), so a
    trace can take interval means without touching the hot path; ``reset`` (end of
    warm-up) only moves the origin of ``mean`` and ``max``."""

    __slots__ = ("_area", "_env", "_origin", "_since", "_start", "max", "value")

    def __init__(self, env: object) -> None:
        self._env = env
        self.value = 0.0
        self.max = 0.0
        self._area = 0.0
        self._origin = 0.0
        self._since = 0.0
        self._start = 0.0

    def add(self, delta: float) -> None:
        """Change the level by ``delta`` now."""
        now: float = self._env.now  # type: ignore[attr-defined]
        self._area += self.value * (now - self._since)
        self._since = now
        self.value += delta
        if self.value > self.max:
            self.max = self.value

    def area(self) -> float:
        """Integral of the level over time since the start of the run (level × µs)."""
        now: float = self._env.now  # type: ignore[attr-defined]
        return self._area + self.value * (now - self._since)

    def reset(self) -> None:
        """Forget the history (end of warm-up); the current value stays."""
        self._origin = self.area()
        self._start = self._env.now  # type: ignore[attr-defined]
        self.max = self.value

    def mean(self) -> float:
        """Time-average of the level since the last reset."""
        now: float = self._env.now  # type: ignore[attr-defined]
        span = now - self._start
        return (self.area() - self._origin) / span if span > 0 else self.value
