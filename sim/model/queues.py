"""A device's functions and how they are served: one queue per function (the PF's for
the parent's routed traffic and native traffic, one per VF), the arbitration that picks
the next request when a server (the NIC's transmitter, an NVMe channel) frees, queue-depth
limits, the controller's command start rate, and per-vCPU interrupt vectors with
moderation. :mod:`sim.model.devices` describes the physics and builds devices on these."""

from __future__ import annotations

import math
import sys
from collections import deque
from collections.abc import Generator
from typing import Any

import simpy

from sim.model.env import SimEnv, Waitable
from sim.model.hypervisor import VCpu
from sim.model.metrics import Level
from sim.model.request import AbortError
from sim.scenario import names

UNLIMITED = sys.maxsize
"""Queue depth of a function that has no limit (the NIC's)."""


class Function:
    """One PCIe function of a device: the PF (``vf`` None) or VF ``vf``.

    ``queue`` holds the events of its requests in the device waiting for a server;
    ``backlog`` those waiting on the host for a queue entry (beyond ``depth`` in the
    device); ``vectors`` its interrupt vectors by target vCPU (under moderation)."""

    __slots__ = (
        "backlog",
        "completed",
        "completions_key",
        "depth",
        "in_device",
        "interrupts_key",
        "max_in_device",
        "name",
        "queue",
        "vectors",
        "vf",
        "waited",
        "weight",
    )

    def __init__(self, vf: int | None, weight: int, depth: int, device: str = "device") -> None:
        self.vf = vf
        self.name = names.function(device, vf)
        self.weight = weight
        self.depth = depth
        self.queue: deque[simpy.Event] = deque()
        self.backlog: deque[simpy.Event] = deque()
        self.in_device = 0
        self.max_in_device = 0
        self.completed = 0
        self.waited = 0.0
        self.vectors: dict[VCpu, Vector] = {}
        self.completions_key = names.metric(self.name, "completions")
        self.interrupts_key = names.metric(self.name, "interrupts")


class Interrupt:
    """One interrupt of a vector: the completions it delivers share its per-interrupt
    costs, which the first of them to run on the target vCPU pays."""

    __slots__ = ("handled",)

    def __init__(self) -> None:
        self.handled = False

    def take(self) -> bool:
        """Whether the caller runs this interrupt's handler: the first to ask does."""
        if self.handled:
            return False
        self.handled = True
        return True


class Vector:
    """One interrupt vector of a function (the one that targets one vCPU): the interrupt
    being gathered, the completions pending on it and the events of those waiting."""

    __slots__ = ("gen", "irq", "pending", "waiting")

    def __init__(self) -> None:
        self.irq = Interrupt()
        self.pending = 0
        self.waiting: list[simpy.Event] = []
        self.gen = 0  # changes at every interrupt: a stale timer sees it and does nothing


class Servers:
    """``capacity`` identical servers fed from per-function queues by an arbiter.

    ``arbitration`` is ``round_robin`` or ``fifo`` (module docstring); ``start_gap`` > 0
    spaces successive starts by at least that many µs (a command-rate limit)."""

    __slots__ = (
        "_active",
        "_armed",
        "_armed_for",
        "_current",
        "_fifo",
        "_full_key",
        "_gap",
        "_left",
        "_limited_key",
        "_next_start",
        "_round_robin",
        "backlog",
        "busy",
        "capacity",
        "depth",
        "env",
        "functions",
        "name",
        "pf_weight",
        "queue_level",
    )

    def __init__(
        self,
        env: SimEnv,
        capacity: int,
        *,
        name: str = "device",
        arbitration: str = "round_robin",
        pf_weight: int = 1,
        depth: int = UNLIMITED,
        start_gap: float = 0.0,
    ) -> None:
        self.env = env
        self.name = name
        self.capacity = capacity
        self.busy = Level(env)
        self.queue_level = Level(env)
        self.backlog = Level(env)
        self.pf_weight = pf_weight
        self.depth = depth
        self.functions: dict[int | None, Function] = {}
        self._round_robin = arbitration == "round_robin"
        self._active: deque[Function] = deque()  # round robin: functions with waiting requests
        self._fifo: deque[tuple[Function, simpy.Event]] = deque()  # fifo: arrival order
        self._current: Function | None = None  # round robin: whose turn it is
        self._left = 0  # starts left in that turn
        self._gap = start_gap
        self._next_start = -math.inf  # no start before this time (start_gap)
        self._armed = False  # a timer is set for the end of the gap
        self._armed_for = 0.0
        self._full_key = names.metric(name, "queue_full")
        self._limited_key = names.metric(name, "iops_limited")

    def function(self, vf: int | None) -> Function:
        """The function ``vf`` (``None``: the PF), created on first use."""
        f = self.functions.get(vf)
        if f is None:
            f = Function(vf, self.pf_weight if vf is None else 1, self.depth, self.name)
            self.functions[vf] = f
        return f

    def acquire(self, f: Function) -> Generator[Waitable, Any, float]:
        """Wait for a server for a request of function ``f``; returns the time waited.
        The hot paths call :meth:`take` first and this (its waiting part, :meth:`wait`)
        only when it finds no server: no generator when none is needed."""
        got = self.take(f)
        if got is not None:
            return got
        return (yield from self.wait(f))

    def take(self, f: Function) -> float | None:
        """A server at once for a request of ``f`` (0.0 µs waited) if one is free, ``f``
        has room in the device and nothing waits; else None, and the caller must
        :meth:`wait`."""
        if (
            f.in_device < f.depth
            and self.busy.value < self.capacity
            and not self.queue_level.value
            and self.env.now >= self._next_start
        ):
            f.in_device += 1
            if f.in_device > f.max_in_device:
                f.max_in_device = f.in_device
            self.busy.add(1)
            self._started(f)
            return 0.0
        return None

    def wait(self, f: Function) -> Generator[Waitable, Any, float]:
        """The rest of :meth:`acquire` after :meth:`take` found no server: queue for one
        (or, with ``f``'s place in the device full, in its backlog) and return the time
        waited."""
        env = self.env
        if f.in_device < f.depth:
            f.in_device += 1
            if f.in_device > f.max_in_device:
                f.max_in_device = f.in_device
            ev = env.event()
            self._enqueue(f, ev)
            if self._gap and self.busy.value < self.capacity:  # a server is free: the limit
                env.counters[self._limited_key] += 1
                self._arm()
        else:
            ev = env.event()
            f.backlog.append(ev)
            self.backlog.add(1)
            env.counters[self._full_key] += 1
        t0 = env.now
        yield ev
        waited = env.now - t0
        f.waited += waited
        return waited

    def release(self, f: Function) -> None:
        """A request of ``f`` leaves its server: admit ``f``'s next backlogged request,
        and hand the server to the request the arbiter picks (or free it)."""
        f.completed += 1
        gate_open = self.env.now >= self._next_start
        if f.backlog:  # its place in the device passes on
            self.backlog.add(-1)
            admitted = f.backlog.popleft()
            if gate_open and not self.queue_level.value:  # nothing else waits: it starts
                self._started(f)
                admitted.succeed()
                return
            self._enqueue(f, admitted)
        else:
            f.in_device -= 1
        if self.queue_level.value and gate_open:
            g, ev = self._pick()
            self._started(g)
            ev.succeed()
        else:
            self.busy.add(-1)
            if self._gap and self.queue_level.value:
                self._arm()

    def _enqueue(self, f: Function, ev: simpy.Event) -> None:
        self.queue_level.add(1)
        if self._round_robin:
            if not f.queue:
                self._active.append(f)
            f.queue.append(ev)
        else:
            self._fifo.append((f, ev))

    def _pick(self) -> tuple[Function, simpy.Event]:
        """The next request to start, by the arbitration rule."""
        self.queue_level.add(-1)
        if not self._round_robin:
            return self._fifo.popleft()
        active = self._active
        f = active[0]
        if f is self._current and not self._left and len(active) > 1:
            # its turn is over: it goes behind every function waiting now
            active.rotate(-1)
            f = active[0]
        ev = f.queue.popleft()
        if not f.queue:
            active.popleft()
        return f, ev

    def _started(self, f: Function) -> None:
        if f is self._current and self._left:
            self._left -= 1
        else:  # a new turn
            self._current = f
            self._left = f.weight - 1
        if self._gap:
            self._next_start = self.env.now + self._gap

    def _arm(self) -> None:
        """Set a timer for the end of the start gap when a server is free and a request
        waits for it."""
        if self._armed or not self.queue_level.value or self.busy.value >= self.capacity:
            return
        self._armed = True
        self._armed_for = self._next_start
        delay = max(0.0, self._next_start - self.env.now)
        self.env.after(delay, self._gate_open)

    def _gate_open(self, _ev: simpy.Event) -> None:
        self._armed = False
        # no start since the timer was set: the gap is over (whatever the rounding of now)
        if (
            self._next_start == self._armed_for
            and self.queue_level.value
            and self.busy.value < self.capacity
        ):
            g, ev = self._pick()
            self.busy.add(1)
            self._started(g)
            ev.succeed()
        self._arm()

    def halt(self, until: float) -> None:
        """A device reset until ``until``: fail every request waiting in the device or for
        a queue entry (their events fail with :class:`AbortError`); start nothing before
        ``until``. Requests in service keep their servers to the end of their service."""
        dropped: list[tuple[Function, simpy.Event]] = []
        if self._round_robin:
            for f in self._active:
                dropped += [(f, ev) for ev in f.queue]
                f.queue.clear()
            self._active.clear()
        else:
            dropped += self._fifo
            self._fifo.clear()
        for f, _ev in dropped:
            f.in_device -= 1
        if dropped:
            self.queue_level.add(-len(dropped))
        for f in self.functions.values():
            if f.backlog:
                self.backlog.add(-len(f.backlog))
                dropped += [(f, ev) for ev in f.backlog]
                f.backlog.clear()
        self._current, self._left = None, 0
        self._next_start = max(self._next_start, until)
        gate = self._next_start
        for _f, ev in dropped:
            ev.fail(AbortError())
        self.env.after(gate - self.env.now, lambda _ev: self._reopen(gate))

    def _reopen(self, gate: float) -> None:
        """The reset is over: start what arrived meanwhile, as far as servers allow."""
        if self._next_start == gate:  # nothing started since: open the gate now exactly
            self._next_start = self.env.now
        while (
            self.queue_level.value
            and self.busy.value < self.capacity
            and self.env.now >= self._next_start
        ):
            f, ev = self._pick()
            self.busy.add(1)
            self._started(f)
            ev.succeed()
        if self._gap:
            self._arm()

    def reset(self) -> None:
        """End of warm-up: forget level histories and per-function counts."""
        self.busy.reset()
        self.queue_level.reset()
        self.backlog.reset()
        for f in self.functions.values():
            f.completed = 0
            f.waited = 0.0
            f.max_in_device = f.in_device
