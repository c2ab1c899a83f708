"""Work that recurs per vCPU and per VM whatever the I/O: guest timer ticks, per-VM
housekeeping in the parent (docs/design.md §3.1, "Per-VM and per-vCPU costs").

What it models
    **Guest timer ticks** (``child.timer``): each vCPU of a child ticks ``hz`` times a
    second, each tick one work item on the vCPU, charged as

    * ``timer_exit``: the tick's delivery, an external-interrupt exit and an EOI exit
      unless interrupts are posted (``host.costs.interrupt_exit + eoi_exit``, as any
      interrupt on the paths), and the guest re-arming its one-shot LAPIC timer
      (``host.costs.timer_arm_exit``); a native child pays neither;
    * ``timer``: the guest's tick handler (``timer.handler_cost``).

    ``periodic`` ticks whether the vCPU is idle or not: a tick that finds it blocked wakes
    it (a wake-up, with its world switch ``vcpu_dispatch`` charged as ``hypervisor``) and
    the vCPU halts again after it. ``tickless`` (Linux NO_HZ_IDLE) skips the ticks that
    find the vCPU blocked; a vCPU with work (I/O in progress, background load) still ticks.
    Ticks are laid out at a fixed phase per vCPU (vCPU ``k`` of the host, counting every
    child's, starts at ``k · 0.618… mod 1`` of a period), so that the vCPUs of a host do not
    all tick at once; no randomness is drawn. A tick that finds the previous one still
    waiting for its vCPU (a starved vCPU) is dropped, as Linux counts missed jiffies
    rather than running every handler.

    **Halt exits** (``host.costs.halt_exit``, default 0): each time a vCPU of a partition
    blocks (nothing left to run) it pays the hypervisor's block path, charged as ``halt``
    with its next work (:meth:`~sim.model.hypervisor.VCpu.hold`).

    **Per-VM housekeeping** (``host.housekeeping``): every ``interval``, ``cost`` µs on
    the parent vCPU that serves the child (the child's first channel's, else the child's
    index modulo the parent's vCPUs), charged as ``housekeeping``. One round per child
    instance, phases spread as the ticks are.

Simplified
    The tick rate does not change with load (no adaptive tick, no NO_HZ_FULL); a tick's
    cost is the same on every vCPU; the host's own timer ticks on the LPs are not charged.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from sim.model.env import SimEnv, Waitable
from sim.model.hypervisor import BLOCKED, VCpu
from sim.scenario.distributions import Draw

PHASE = 0.6180339887498949
"""Golden-ratio fraction: phases ``k · PHASE mod 1`` spread any number of vCPUs evenly."""


def phase(k: int, period: float) -> float:
    """Offset of the ``k``-th periodic source of the host within one period."""
    return (k * PHASE) % 1.0 * period


def tick_exit_cost(native: bool, irq_cost: float, arm_exit: float) -> float:
    """µs of exits per tick: its delivery and its re-arming, none on bare metal."""
    return 0.0 if native else irq_cost + arm_exit


class Ticker:
    """The timer tick of one vCPU."""

    def __init__(
        self,
        env: SimEnv,
        vcpu: VCpu,
        hz: int,
        tickless: bool,
        exit_cost: float,
        handler: Draw,
        offset: float,
        irq_exits: bool,
    ) -> None:
        self.env = env
        self.vcpu = vcpu
        self.irq_exits = irq_exits  # delivery by exits (interrupts not posted)
        self.period = 1e6 / hz
        self.tickless = tickless
        self.exit_cost = exit_cost
        self.handler = handler
        self.offset = offset
        self.pending = False
        self.ticks = 0
        self.skipped = 0

    def start(self) -> None:
        self.env.process(self._run())

    def _run(self) -> Generator[Waitable, Any, None]:
        env = self.env
        yield env.timeout(self.offset)
        deadline = env.now
        while True:
            if self.pending or (self.tickless and self.vcpu.state == BLOCKED):
                self.skipped += 1
            else:
                self.pending = True
                env.process(self._tick())
            deadline += self.period
            yield env.timeout(deadline - env.now)

    def _tick(self) -> Generator[Waitable, Any, None]:
        v = self.vcpu
        yield from v.acquire()
        self.ticks += 1
        c = self.env.counters
        c["timer_ticks"] += 1
        if self.exit_cost:
            c["exits.timer_arm"] += 1
            if self.irq_exits:
                c["exits.external_interrupt"] += 1
                c["exits.eoi"] += 1
        yield v.hold(
            ("hypervisor", v.take_debt()), ("timer_exit", self.exit_cost), ("timer", self.handler())
        )
        self.pending = False
        v.release()


class Housekeeper:
    """The per-VM housekeeping of one child, on one parent vCPU."""

    def __init__(self, env: SimEnv, vcpu: VCpu, interval: float, cost: Draw, offset: float) -> None:
        self.env = env
        self.vcpu = vcpu
        self.interval = interval
        self.cost = cost
        self.offset = offset

    def start(self) -> None:
        self.env.process(self._run())

    def _run(self) -> Generator[Waitable, Any, None]:
        env = self.env
        yield env.timeout(self.offset)
        deadline = env.now
        while True:
            env.process(self._round())
            deadline += self.interval
            yield env.timeout(deadline - env.now)

    def _round(self) -> Generator[Waitable, Any, None]:
        v = self.vcpu
        yield from v.acquire()
        self.env.counters["housekeeping_rounds"] += 1
        yield v.hold(("hypervisor", v.take_debt()), ("housekeeping", self.cost()))
        v.release()
