"""Logical processors, vCPUs and their scheduler, exits and interrupt delivery.

What it models
    The hypervisor schedules every vCPU, the parent's included, onto the host's logical
    processors (LPs). A vCPU runs a FIFO of work items, each a CPU cost charged to a
    category (``guest``, ``vsc``, ``vsp``, ``driver``, ``exit``, ``hypervisor``). A vCPU
    with no work blocks and gives its LP back; work for a blocked vCPU (an interrupt, a
    signal, a new request) wakes it. The time between "work arrived" and "vCPU running"
    is the **scheduling delay**; dispatching a blocked or preempted vCPU costs a world
    switch (``host.costs.vcpu_dispatch``), charged as ``hypervisor`` time.

Policy ``fair`` (this version)
    One global FIFO run queue over all LPs. A woken vCPU takes a free LP at once, or waits
    at the tail of the run queue. A running vCPU keeps its LP while it has work, until it
    has run ``time_slice`` while others wait: then, at the end of its current work item,
    it goes to the tail of the run queue and the head takes its LP (round robin).
    Preemption happens at work-item boundaries only: items are µs long, slices ms long.
    Weights, caps, BOOST, priorities and pinning (Xen credit, Hyper-V classic, minroot)
    are not in this version; asking for them is an error at load.

Interrupt delivery
    With posted interrupts (APICv / AVIC) an interrupt enters the vCPU without an exit;
    without, it costs an external-interrupt exit and an EOI exit on the target vCPU
    (ELI, Gordon et al., ASPLOS 2012: two exits per interrupt). A blocked target is woken
    either way and pays its scheduling delay.

Speed (DESIGN §8)
    The scheduler is a few lists and deques, not a SimPy resource per LP. Owning an
    uncontended running vCPU costs no event at all; a request that must wait costs one
    ``Event``; each item of work is one ``Timeout``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import Any

import simpy

from sim.env import SimEnv

RUNNING, RUNNABLE, BLOCKED = 0, 1, 2

Wait = Generator[simpy.Event, Any, tuple[float, float]]


class VCpu:
    """A virtual processor: a FIFO of work items that runs when it holds an LP."""

    __slots__ = (
        "_runnable_since",
        "busy",
        "busy_us",
        "debt",
        "dispatch_cost",
        "dispatches",
        "env",
        "hv",
        "index",
        "lp",
        "name",
        "partition",
        "preemptions",
        "slice_start",
        "state",
        "unscheduled",
        "waiters",
    )

    def __init__(self, hv: Hypervisor, partition: str, index: int, dispatch_cost: float) -> None:
        self.hv = hv
        self.env = hv.env
        self.partition = partition
        self.index = index
        self.name = f"{partition}.vcpu[{index}]"
        self.dispatch_cost = dispatch_cost
        self.state = BLOCKED
        self.busy = False
        self.waiters: deque[simpy.Event] = deque()
        self.lp: int | None = None
        self.slice_start = 0.0
        self.unscheduled = 0.0
        self._runnable_since = 0.0
        self.debt = 0.0
        self.busy_us: dict[str, float] = {}
        self.dispatches = 0
        self.preemptions = 0

    def acquire(self) -> Wait:
        """Wait until this vCPU runs on an LP and is free for the caller.

        Returns ``(scheduling delay, queueing delay)``: the part of the wait during which
        the vCPU was not on an LP, and the part spent behind other work while it was.
        The caller must :meth:`release` when its work is done.
        """
        state = self.state
        if state == RUNNING:
            if not self.busy:
                self.busy = True
                return 0.0, 0.0
        elif state == BLOCKED and self.hv.wake(self):
            self.busy = True
            return 0.0, 0.0
        env = self.env
        ev = simpy.Event(env)
        t0 = env.now
        u0 = self.unscheduled + (t0 - self._runnable_since if self.state == RUNNABLE else 0.0)
        self.waiters.append(ev)
        yield ev
        sched = self.unscheduled - u0
        return sched, env.now - t0 - sched

    def take_debt(self) -> float:
        """The world-switch time owed since the last dispatch (charged by the caller)."""
        debt = self.debt
        if debt:
            self.debt = 0.0
            self.busy_us["hypervisor"] = self.busy_us.get("hypervisor", 0.0) + debt
        return debt

    def charge(self, category: str, cost: float) -> None:
        """Account ``cost`` µs of this vCPU's time to ``category``."""
        self.busy_us[category] = self.busy_us.get(category, 0.0) + cost

    def release(self) -> None:
        """Done with the vCPU: hand it to the next item, yield the LP, or block."""
        if self.waiters:
            hv = self.hv
            if hv.runq and self.env.now - self.slice_start >= hv.time_slice:
                hv.preempt(self)
            else:
                self.waiters.popleft().succeed()
        else:
            self.busy = False
            self.state = BLOCKED
            self.hv.block(self)


class Hypervisor:
    """The host's LPs and the ``fair`` vCPU scheduler."""

    def __init__(
        self,
        env: SimEnv,
        cores: int,
        time_slice: float,
        posted: bool,
        interrupt_exit: float,
        eoi_exit: float,
    ) -> None:
        self.env = env
        self.cores = cores
        self.time_slice = time_slice
        self.posted = posted
        self.free: list[int] = list(range(cores - 1, -1, -1))
        self.runq: deque[VCpu] = deque()
        self.vcpus: list[VCpu] = []
        # CPU time one interrupt costs the vCPU that takes it (0 when posted)
        self.irq_cost = 0.0 if posted else interrupt_exit + eoi_exit
        self.interrupt_exit = interrupt_exit
        self.eoi_exit = eoi_exit

    def vcpu(self, partition: str, index: int, dispatch_cost: float) -> VCpu:
        """Create and register a vCPU."""
        v = VCpu(self, partition, index, dispatch_cost)
        self.vcpus.append(v)
        return v

    def interrupt(self, v: VCpu) -> float:
        """Count one interrupt delivered to ``v``; its CPU cost there (exits)."""
        c = self.env.counters
        c["interrupts"] += 1
        if not self.posted:
            c["exits.external_interrupt"] += 1
            c["exits.eoi"] += 1
        return self.irq_cost

    # -- scheduler ------------------------------------------------------------------------
    def wake(self, v: VCpu) -> bool:
        """``v`` has work: dispatch it on a free LP (True) or queue it (False)."""
        if self.free:
            self._dispatch(v, self.free.pop())
            return True
        v.state = RUNNABLE
        v._runnable_since = self.env.now
        self.runq.append(v)
        return False

    def block(self, v: VCpu) -> None:
        """``v`` ran out of work: its LP goes to the next runnable vCPU or idles."""
        lp = v.lp
        v.lp = None
        assert lp is not None
        self._next_on(lp)

    def preempt(self, v: VCpu) -> None:
        """``v`` used its slice while others wait: round robin."""
        lp = v.lp
        assert lp is not None
        v.lp = None
        v.busy = False
        v.state = RUNNABLE
        v._runnable_since = self.env.now
        v.preemptions += 1
        self.env.counters["preemptions"] += 1
        self.runq.append(v)
        self._next_on(lp)

    def _next_on(self, lp: int) -> None:
        if self.runq:
            nxt = self.runq.popleft()
            self._dispatch(nxt, lp)
            nxt.busy = True
            nxt.waiters.popleft().succeed()
        else:
            self.free.append(lp)

    def _dispatch(self, v: VCpu, lp: int) -> None:
        now = self.env.now
        if v.state == RUNNABLE:
            v.unscheduled += now - v._runnable_since
        v.state = RUNNING
        v.lp = lp
        v.slice_start = now
        v.debt += v.dispatch_cost
        v.dispatches += 1
