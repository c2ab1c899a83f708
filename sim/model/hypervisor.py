"""Logical processors, vCPUs and their scheduler, exits and interrupt delivery.

What it models
    The hypervisor schedules every vCPU, the parent's included, onto the host's logical
    processors (LPs). A vCPU runs two kinds of work:

    * **work items** of the I/O paths (a FIFO of µs-long costs charged to ``guest``,
      ``vsc``, ``vsp``, ``driver``, ``exit``, ``hypervisor``), and of the per-vCPU and
      per-VM work of :mod:`sim.model.periodic` (``timer``, ``timer_exit``,
      ``housekeeping``; ``halt``, owed when a vCPU blocks, runs with its next work); and
    * **background load** (:class:`Background`, ``cpu_load`` of a child or the parent): CPU-bound
      work charged to ``guest``, which runs whenever the vCPU has no work item, and which
      work items (interrupt handlers, drivers) take the vCPU from at once.

    A vCPU with neither blocks and gives its LP back. Work for a blocked vCPU (an
    interrupt, a signal, a new burst) wakes it; the time until it runs is its **wake-up
    delay**, and the time any work waits for its vCPU to be on an LP is the request's
    ``sched_wait``. Dispatching a vCPU costs a world switch (``host.costs.vcpu_dispatch``,
    charged as ``hypervisor`` time). Every µs of every LP is either charged to a vCPU and a
    category or idle.

Scheduler (Xen credit, sched/credit.c; Hyper-V classic)
    Each LP has a run queue ordered by priority, BOOST > UNDER > OVER, FIFO within a
    priority. Policies:

    ``credit``  Every ``accounting_period`` the LPs' time is handed out as credit to the
                partitions with work, in proportion to their ``weight`` (at most their
                ``cap``), split evenly over their active vCPUs; credit is held within
                ±``time_slice``. A running vCPU burns credit by the µs it runs. Credit ≥ 0
                is UNDER, < 0 is OVER. A vCPU woken from blocked while UNDER is BOOSTed
                (if ``boost``) until the next ``tick``. A waking vCPU preempts a running
                one of lower priority, but never one that has run less than ``ratelimit``.
                A partition with a ``cap`` is parked (none of its vCPUs runs) from the
                moment it has used its cap of the period until the next period, idle LPs
                or not.
    ``fair``    No credit and no priorities: round robin with ``time_slice``.
    ``pinned``  As ``fair``, on a fixed vCPU → LP map (``pin`` of every partition).
    ``core``    As ``credit``, and the SMT siblings of a core (``host.threads_per_core``
                LPs in a row) run vCPUs of one partition at a time (Hyper-V's core
                scheduler): an LP takes a vCPU of the best priority waiting for it that
                its siblings allow, or none and idles while a better vCPU of another
                partition waits for the core; that vCPU's arrival ends the siblings'
                slices, and an LP that frees its core lets idle siblings pick again.

    Under every policy a vCPU runs at most ``time_slice`` while another vCPU of equal or
    higher priority waits for its LP; an LP that goes idle, or whose queue holds only
    worse work, steals the best runnable vCPU from another LP's queue
    (``load_balance``); a waking vCPU takes an idle LP if there is one. ``pin`` gives hard
    affinity; ``root: pinned`` places parent vCPU i on LP i (Hyper-V root); ``minroot: N``
    reserves LPs 0..N-1 for the parent and keeps children off them.

Accounting
    A work item is charged when it starts (:meth:`VCpu.hold`), background load when it
    stops, the world switch with the first work after a dispatch. An account closed while
    an item runs (end of warm-up, end of run) takes exactly the part inside it, so the
    charges of all vCPUs equal the LPs' busy time, measured independently from dispatch to
    deschedule, and with the idle time add up to LPs × window.

Simplified
    Work items are not preempted midway: a preemption takes effect at the end of the item
    in progress (items are µs long, slices ms long); background load is preempted at once.
    Credits are burned exactly (µs run), not sampled at ticks. A busy SMT sibling (one
    that runs a vCPU) slows everything run on the LP by ``host.smt_slowdown``, the lost
    time charged as ``smt``: background load for as long as the sibling is busy, a work
    item (guest, parent or hypervisor I/O costs) as a whole when the sibling is busy at
    its start (items are µs long); no NUMA.
    Priorities of queued vCPUs change only at accounting.

Faults (:mod:`sim.model.faults`)
    :meth:`Hypervisor.suspend` parks a whole partition (a crashed or hung parent, a
    crashed child) as a cap does, but until :meth:`Hypervisor.resume`, whatever the
    accounting period; the time its work waits is ``sched_wait``.
    :meth:`Hypervisor.lp_offline` takes an LP out: it is neither idle nor running, its
    vCPU and run queue move to LPs their affinity allows (a vCPU pinned to it alone
    waits on it), and its offline time is idle time in the accounts.

Speed (docs/design.md §8)
    No polling: the scheduler costs events only when something changes (a slice ending, a
    tick or accounting period under ``credit``, a cap running out, a background burst
    ending). Owning an uncontended running vCPU costs no event and no generator
    (:meth:`VCpu.take`; only a request that must wait runs :meth:`VCpu.wait`, one
    ``Event``); each work item is one timeout (:class:`~sim.model.env.Hold`), the vCPU's
    own reused once processed.
    The idle LPs are a stack kept as an ordered dict (taken from anywhere in O(1)).
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Callable, Generator, Sequence
from typing import Any, Final

import simpy

from sim.model.env import Hold, SimEnv, Waitable
from sim.scenario import names
from sim.scenario.distributions import Draw
from sim.scenario.hardware import Host

BOOST: Final = 0
UNDER: Final = 1
OVER: Final = 2
PRIORITIES = ("boost", "under", "over")
RUNNING: Final = 0
RUNNABLE: Final = 1
BLOCKED: Final = 2
PARKED: Final = 3

Wait = Generator[Waitable, Any, tuple[float, float]]
NO_WAIT = (0.0, 0.0)  # what taking a vCPU at once returns: no scheduling or queueing delay


class Domain:
    """A partition as the scheduler sees it: weight, cap, credit use in the period."""

    __slots__ = ("allowance", "cap_gen", "down", "name", "parked", "used", "vcpus", "weight")

    def __init__(self, name: str, weight: int, allowance: float | None) -> None:
        self.name = name
        self.weight = weight
        self.allowance = allowance  # µs of CPU per accounting period (cap), None = no cap
        self.vcpus: list[VCpu] = []
        self.used = 0.0
        self.parked = False
        self.cap_gen = 0
        self.down = 0  # suspensions in force (sim.model.faults): parked until none is left


class LogicalProcessor:
    """One LP: the vCPU it runs and its run queue, one deque per priority."""

    __slots__ = (
        "busy_us",
        "current",
        "gen",
        "idle",
        "index",
        "offline",
        "preempt",
        "runq",
        "since",
        "timed",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.current: VCpu | None = None
        self.runq: tuple[deque[VCpu], deque[VCpu], deque[VCpu]] = (deque(), deque(), deque())
        self.gen = 0  # changes at every dispatch: stale timers see it and do nothing
        self.preempt = False  # switch at the end of the current work item
        self.timed = False  # a slice timer is armed for the current run
        self.idle = True  # in the hypervisor's idle list
        self.since = 0.0
        self.busy_us = 0.0
        self.offline = False  # takes no work (sim.model.faults): neither idle nor running


class Background:
    """CPU-bound work of one vCPU: bursts of ``busy`` µs of CPU, ``idle`` µs apart."""

    __slots__ = ("active", "busy", "gen", "idle", "remaining")

    def __init__(self, busy: Draw | None, idle: Draw) -> None:
        self.busy = busy
        self.idle = idle
        self.active = False
        self.remaining = 0.0
        self.gen = 0


class VCpu:
    """A virtual processor."""

    __slots__ = (
        "_runnable_since",
        "_timeout",
        "affinity",
        "bg",
        "bg_since",
        "boosts",
        "burn_mark",
        "busy",
        "busy_us",
        "credit",
        "debt",
        "dispatch_cost",
        "dispatches",
        "domain",
        "env",
        "halt_cost",
        "halt_owed",
        "hv",
        "index",
        "item",
        "last_lp",
        "lp",
        "name",
        "partition",
        "period_used",
        "preemptions",
        "pri",
        "run_start",
        "smt_lost",
        "state",
        "unscheduled",
        "waiters",
        "wake_max",
        "wake_total",
        "wakeups",
        "woke_at",
    )

    def __init__(
        self,
        hv: Hypervisor,
        domain: Domain,
        index: int,
        dispatch_cost: float,
        affinity: frozenset[int] | None,
    ) -> None:
        self.hv = hv
        self.env = hv.env
        self.domain = domain
        self.partition = domain.name
        self.index = index
        self.name = names.vcpu(domain.name, index)
        self.dispatch_cost = dispatch_cost
        self.affinity = affinity
        self.state = BLOCKED
        self.busy = False
        self.waiters: deque[simpy.Event] = deque()
        self.lp: LogicalProcessor | None = None
        self.last_lp = min(affinity) if affinity else 0
        self.pri = UNDER
        self.credit = 0.0
        self.period_used = 0.0
        self.burn_mark = 0.0
        self.run_start = 0.0
        self.bg: Background | None = None
        self.bg_since: float | None = None
        self.unscheduled = 0.0
        self._runnable_since = 0.0
        self.debt = 0.0
        self.halt_cost = 0.0  # host.costs.halt_exit, owed each time the vCPU blocks
        self.halt_owed = 0.0
        # µs charged by category; a category appears with its first charge (0.0 + cost is
        # cost, as get(category, 0.0) + cost was)
        self.busy_us: defaultdict[str, float] = defaultdict(float)
        self.item: tuple[float, float, tuple[tuple[str, float], ...]] = (0.0, 0.0, ())
        self.smt_lost = 0.0  # µs the last work item lost to a busy SMT sibling
        self._timeout = Hold(self.env, 0.0)  # the timeout of its work items (hold)
        self._timeout.callbacks = None  # not scheduled: as once processed
        self.dispatches = 0
        self.preemptions = 0
        self.boosts = 0
        self.woke_at: float | None = None
        self.wakeups = 0
        self.wake_total = 0.0
        self.wake_max = 0.0

    def has_work(self) -> bool:
        """Whether the vCPU wants an LP."""
        bg = self.bg
        return self.busy or bool(self.waiters) or (bg is not None and bg.active)

    def acquire(self) -> Wait:
        """Wait until this vCPU runs on an LP and is free for the caller's work item.

        Returns ``(scheduling delay, queueing delay)``: the part of the wait during which
        the vCPU was not on an LP, and the part spent behind other work while it was.
        A work item takes the vCPU from background load at once. The caller must
        :meth:`release` when its work is done. The hot paths write it
        ``v.take() or (yield from v.wait())``: no generator when nothing waits."""
        got = self.take()
        if got is not None:
            return got
        return (yield from self.wait())

    def take(self) -> tuple[float, float] | None:
        """Take the vCPU at once if it is running and free, or blocked with an idle LP to
        wake on: ``(0.0, 0.0)``; else None, and the caller must :meth:`wait`."""
        state = self.state
        if state == RUNNING:
            if not self.busy:
                if self.bg_since is not None:
                    self.hv.stop_background(self)
                self.busy = True
                return NO_WAIT
        elif state == BLOCKED and self.hv.wake_on_idle(self):
            self.busy = True
            return NO_WAIT
        return None

    def wait(self) -> Wait:
        """The rest of :meth:`acquire` after :meth:`take` found the vCPU busy or off an
        LP: queue behind its work (waking it if blocked) until it is the caller's."""
        env = self.env
        ev = env.event()
        t0 = env.now
        state = self.state
        waiting = state in (RUNNABLE, PARKED)
        u0 = self.unscheduled + (t0 - self._runnable_since if waiting else 0.0)
        self.waiters.append(ev)
        if state == BLOCKED:  # queued after the item: a preempting wake-up dispatches it
            self.hv.wake_queued(self)
        yield ev
        sched = self.unscheduled - u0
        return sched, env.now - t0 - sched

    def take_debt(self) -> float:
        """The world-switch time owed since the last dispatch; the caller runs it as
        ``hypervisor`` time in its next :meth:`hold`."""
        debt = self.debt
        self.debt = 0.0
        return debt

    def charge(self, category: str, cost: float) -> None:
        """Account ``cost`` µs of this vCPU's time to ``category``."""
        self.busy_us[category] += cost

    def hold(self, *charges: tuple[str, float]) -> Hold:
        """Run one work item: its costs by category, back to back, as one timeout.

        The item is charged now and remembered, so that an account closed while it runs
        (end of warm-up, end of the run) gets exactly the part that falls inside it. On
        an LP whose SMT sibling runs a vCPU it takes ``host.smt_slowdown`` times as long;
        the extra is charged as ``smt`` and left in :attr:`smt_lost` for the caller's
        request components."""
        busy = self.busy_us
        total = 0.0
        if self.halt_owed:  # the halt before this run (sim.model.periodic)
            charges = (("halt", self.halt_owed), *charges)
            self.halt_owed = 0.0
        for category, cost in charges:
            if cost:
                busy[category] += cost
                total += cost
        lost = 0.0
        hv = self.hv
        if hv.smt_slow and total:
            lp = self.lp
            if lp is not None and any(s.current is not None for s in hv.siblings[lp.index]):
                # a sibling runs a vCPU: the item takes smt_slowdown times as long, the
                # extra charged as 'smt' (its speed is set when it starts: items are µs long)
                lost = total * (hv.smt_slow - 1.0)
                busy["smt"] += lost
                charges = (*charges, ("smt", lost))
                total += lost
        self.smt_lost = lost
        # a timeout of total µs, scheduled as SimEnv.timeout schedules one. The vCPU's
        # last item's timeout serves again once it has been processed (only the walk
        # that yields it holds it; a vCPU runs one item at a time)
        if total < 0:
            raise ValueError(f"Negative delay {total}")
        env = self.env
        now = env.now
        end = now + total
        self.item = (now, end, charges)
        ev = self._timeout
        if ev.callbacks is not None:  # still pending: a new one
            ev = self._timeout = Hold(env, 0.0)
        env.hold_until(end, ev)
        return ev

    def unfinished(self) -> list[tuple[str, float]]:
        """The part of the work item in progress that lies after now, by category."""
        start, end, charges = self.item
        now = self.env.now
        if end <= now or end <= start:
            return []
        left = (end - now) / (end - start)
        return [(category, cost * left) for category, cost in charges if cost]

    def release(self) -> None:
        """Done with the work item: next item, background, preemption or block."""
        lp = self.lp
        assert lp is not None
        if lp.preempt:
            self.busy = False
            self.hv.switch(lp)
        elif self.waiters:
            self.waiters.popleft().succeed()
        else:
            self.busy = False
            bg = self.bg
            if bg is not None and bg.active:
                self.hv.start_background(self)
            else:
                self.hv.switch(lp)


class Hypervisor:
    """The host's LPs and the vCPU scheduler."""

    def __init__(self, env: SimEnv, host: Host) -> None:
        self.env = env
        sch = host.scheduler
        self.policy = sch.policy
        self.credit = sch.policy in ("credit", "core")
        # core scheduling: the SMT siblings of a core run vCPUs of one partition at a time
        self.core = sch.policy == "core"
        self.boost = self.credit and sch.boost
        self.time_slice = sch.time_slice
        self.ratelimit = sch.ratelimit if self.credit else 0.0
        self.tick = sch.tick
        self.period = sch.accounting_period
        self.load_balance = sch.load_balance and sch.policy != "pinned"
        self.lps = [LogicalProcessor(i) for i in range(host.cores)]
        t = host.threads_per_core  # LPs 2k and 2k+1 share core k with two threads
        # CPU-bound work runs this many times slower while a sibling LP is busy (0: off)
        self.smt_slow = host.smt_slowdown if t > 1 and host.smt_slowdown != 1.0 else 0.0
        self.siblings = [
            tuple(o for o in self.lps[i - i % t : i - i % t + t] if o.index != i)
            for i in range(host.cores)
        ]
        # the idle LPs, last idled last: a stack, as an insertion-ordered dict so that an LP
        # is taken off wherever it is in O(1)
        self.idle: dict[LogicalProcessor, None] = dict.fromkeys(reversed(self.lps))
        self.domains: list[Domain] = []
        self.vcpus: list[VCpu] = []
        self.queued = [0, 0, 0]  # vCPUs in all run queues, by priority
        self.posted = host.posted_interrupts
        # CPU time one interrupt costs the vCPU that takes it (0 when posted)
        costs = host.costs
        self.irq_cost = 0.0 if self.posted else costs.interrupt_exit + costs.eoi_exit
        self._started = False
        self.dispatch_log: list[tuple[VCpu, int]] | None = None
        """When a list, every dispatch is appended to it as (vCPU, LP index): a trace of
        the scheduler's decisions (the accounting tests read it)."""

    # -- building -------------------------------------------------------------------------
    def domain(self, name: str, weight: int, cap_percent: float) -> Domain:
        """Register a partition; ``cap_percent`` of one LP, 0 for none."""
        allowance = cap_percent / 100.0 * self.period if cap_percent > 0 and self.credit else None
        d = Domain(name, weight, allowance)
        self.domains.append(d)
        return d

    def vcpu(
        self,
        domain: Domain,
        index: int,
        dispatch_cost: float,
        affinity: Sequence[int] | None = None,
    ) -> VCpu:
        """Create and register a vCPU (``affinity``: the LPs it may run on)."""
        v = VCpu(self, domain, index, dispatch_cost, frozenset(affinity) if affinity else None)
        domain.vcpus.append(v)
        self.vcpus.append(v)
        return v

    def start(self) -> None:
        """Start the credit scheduler's periodic work (tick, accounting)."""
        if self.credit and not self._started:
            self._started = True
            self._every(self.tick, self._on_tick)
            self._every(self.period, self._on_accounting)
            self._on_accounting()

    def _every(self, interval: float, fn: Callable[[], None]) -> None:
        def fire(_ev: simpy.Event) -> None:
            fn()
            self.env.after(interval, fire)

        self.env.after(interval, fire)

    def _at(self, delay: float, fn: Callable[[], None]) -> None:
        self.env.after(delay, lambda _ev: fn())

    # -- interrupts -----------------------------------------------------------------------
    def interrupt(self, v: VCpu) -> float:
        """Count one interrupt delivered to ``v``; its CPU cost there (exits)."""
        c = self.env.counters
        c["interrupts"] += 1
        if not self.posted:
            c["exits.external_interrupt"] += 1
            c["exits.eoi"] += 1
        return self.irq_cost

    # -- waking and placing ---------------------------------------------------------------
    def wake_on_idle(self, v: VCpu) -> bool:
        """Blocked ``v`` has work: dispatch it on an idle LP if one may take it.

        Otherwise (False) the caller records the work and calls :meth:`wake_queued`."""
        if v.domain.parked:
            return False
        if self.boost and v.pri == UNDER:
            v.pri = BOOST
            v.boosts += 1
            self.env.counters["boosts"] += 1
        idle = self.idle
        if not idle:
            return False
        last = self.lps[v.last_lp]
        if last.idle and v.affinity is None and not self.core:
            del idle[last]  # _idle_lp's first choice: its last LP
            last.idle = False
            lp = last
        else:
            found = self._idle_lp(v)
            if found is None:
                return False
            lp = found
        v.wakeups += 1  # a wake-up without delay
        self._dispatch(v, lp)
        if self.core:
            self._kick_siblings(lp)
        return True

    def wake_queued(self, v: VCpu) -> None:
        """Blocked ``v`` found no idle LP: queue it (or park it) and see whom it preempts."""
        now = self.env.now
        v.woke_at = now
        if v.domain.parked:
            v.state = PARKED
            v._runnable_since = now
            return
        self._enqueue(v)
        self._tickle(v)

    def _affine(self, v: VCpu, lp: LogicalProcessor) -> bool:
        return v.affinity is None or lp.index in v.affinity

    def _allowed(self, v: VCpu, lp: LogicalProcessor) -> bool:
        """Whether ``v`` may run on ``lp`` now: its affinity, and under core scheduling
        no sibling of ``lp`` runs a vCPU of another partition."""
        if v.affinity is not None and lp.index not in v.affinity:
            return False
        return not self.core or self._core_free(v, lp)

    def _core_free(self, v: VCpu, lp: LogicalProcessor) -> bool:
        for s in self.siblings[lp.index]:
            cur = s.current
            if cur is not None and cur.domain is not v.domain:
                return False
        return True

    def _kick_siblings(self, lp: LogicalProcessor) -> None:
        """Core scheduling: ``lp`` changed partition or went idle; an idle sibling may
        now run a waiting vCPU it had to refuse."""
        if not (self.queued[0] or self.queued[1] or self.queued[2]):
            return
        for s in self.siblings[lp.index]:
            if s.idle and not s.offline:
                v = self._pick(s)
                if v is not None:
                    s.idle = False
                    del self.idle[s]
                    self._dispatch(v, s)
                    self._start(v)

    def _idle_lp(self, v: VCpu) -> LogicalProcessor | None:
        """Take an idle LP for ``v`` off the idle list: its last one if possible."""
        idle = self.idle
        if not idle:
            return None
        if self.core:
            return self._idle_core_lp(v)
        last = self.lps[v.last_lp]
        affinity = v.affinity
        if last.idle and (affinity is None or last.index in affinity):
            lp = last
            del idle[lp]
        elif affinity is None:
            lp = idle.popitem()[0]  # the top of the stack
        else:
            for lp in reversed(idle):
                if lp.index in affinity:
                    del idle[lp]
                    break
            else:
                return None
        lp.idle = False
        return lp

    def _idle_core_lp(self, v: VCpu) -> LogicalProcessor | None:
        """Core scheduling: an idle LP ``v`` may run on now, its last one if possible."""
        idle = self.idle
        last = self.lps[v.last_lp]
        if last.idle and self._allowed(v, last):
            lp: LogicalProcessor | None = last
        else:
            lp = next((o for o in reversed(idle) if self._allowed(v, o)), None)
        if lp is None:
            return None
        del idle[lp]
        lp.idle = False
        return lp

    def _enqueue(self, v: VCpu, keep_since: bool = False) -> None:
        v.state = RUNNABLE
        if not keep_since:
            v._runnable_since = self.env.now
        home = self.lps[v.last_lp]
        if not self._affine(v, home):
            assert v.affinity is not None
            home = self.lps[min(v.affinity)]
        if home.offline:
            home = self._online_home(v, home)
        home.runq[v.pri].append(v)
        self.queued[v.pri] += 1
        if home.current is not None and not home.timed:
            self._arm_slice(home)
        if self.core:  # siblings that keep it off the core end their slices too
            for s in self.siblings[home.index]:
                if s.current is not None and not s.timed:
                    self._arm_slice(s)

    def _tickle(self, v: VCpu) -> None:
        """Find an LP where ``v`` should preempt the running vCPU, and ask it to."""
        home = self.lps[v.last_lp]
        candidates = self.lps if self.load_balance else [home]
        target: LogicalProcessor | None = None
        for lp in candidates:
            cur = lp.current
            if cur is None or cur.pri <= v.pri or not self._allowed(v, lp):
                continue
            if target is None or cur.pri > target.current.pri:  # type: ignore[union-attr]
                target = lp
            if lp is home:
                break
        if target is not None:
            self._request_preempt(target)

    def _request_preempt(self, lp: LogicalProcessor, limited: bool = True) -> None:
        """Preempt the vCPU on ``lp``: now, at the end of its work item, or, if it has
        run less than ``ratelimit`` (and ``limited``), when it has."""
        cur = lp.current
        if cur is None:
            return
        ran = self.env.now - cur.run_start
        if limited and ran < self.ratelimit:
            gen = lp.gen
            self._at(self.ratelimit - ran, lambda: self._recheck(lp, gen))
        elif cur.busy:
            lp.preempt = True
        else:
            self.switch(lp)

    def _recheck(self, lp: LogicalProcessor, gen: int) -> None:
        """The ratelimit has passed: preempt if someone better still waits."""
        cur = lp.current
        if lp.gen == gen and cur is not None and self._best_pri(lp) < cur.pri:
            self._request_preempt(lp, limited=False)

    # -- choosing the next vCPU ------------------------------------------------------------
    def _best_pri(self, lp: LogicalProcessor, core: bool = True) -> int:
        """Priority of the best vCPU waiting for ``lp`` (3 if none); with ``core`` False,
        counting those core scheduling keeps off it only while a sibling runs another
        partition."""
        queued = self.queued
        allowed = self._allowed if core else self._affine
        if not (queued[0] or queued[1] or queued[2]):
            return 3
        for p in range(3):
            if lp.runq[p] and (not self.core or any(allowed(v, lp) for v in lp.runq[p])):
                best = p
                break
        else:
            best = 3
        if self.load_balance and best > 0 and any(self.queued[:best]):
            for other in self.lps:
                if other is lp:
                    continue
                for p in range(best):
                    if any(allowed(v, lp) for v in other.runq[p]):
                        best = p
                        break
        return best

    def _pick(self, lp: LogicalProcessor) -> VCpu | None:
        """Take the best vCPU for ``lp`` off a run queue (its own first, then steal)."""
        queued = self.queued
        if not (queued[0] or queued[1] or queued[2]):
            return None
        if self.core:
            return self._pick_core(lp)
        best: VCpu | None = None
        src: deque[VCpu] | None = None
        best_pri = 3
        for p in range(3):
            q = lp.runq[p]
            if q:
                best, src, best_pri = q[0], q, p
                break
        if self.load_balance and best_pri > 0 and any(self.queued[:best_pri]):
            for other in self.lps:
                if other is lp:
                    continue
                for p in range(best_pri):
                    for v in other.runq[p]:
                        if self._allowed(v, lp):
                            best, src, best_pri = v, other.runq[p], p
                            break
                    else:
                        continue
                    break
        if best is None or src is None:
            return None
        if src[0] is best:
            src.popleft()
        else:
            src.remove(best)
        self.queued[best_pri] -= 1
        if src is not lp.runq[best_pri]:
            self.env.counters["steals"] += 1
        return best

    def _pick_core(self, lp: LogicalProcessor) -> VCpu | None:
        """Core scheduling: the best priority waiting for ``lp`` decides; ``lp`` takes a
        vCPU of that priority its siblings allow (its own queue first), or none and idles
        (a better vCPU of another partition waits for the core to be free)."""
        best_pri = self._best_pri(lp, core=False)
        if best_pri == 3:
            return None
        src: deque[VCpu] = lp.runq[best_pri]
        best = next((v for v in src if self._allowed(v, lp)), None)
        if best is None and self.load_balance:
            for other in self.lps:
                if other is lp:
                    continue
                q = other.runq[best_pri]
                best = next((v for v in q if self._allowed(v, lp)), None)
                if best is not None:
                    src = q
                    self.env.counters["steals"] += 1
                    break
        if best is None:
            return None
        src.remove(best)
        self.queued[best_pri] -= 1
        return best

    # -- switching ------------------------------------------------------------------------
    def switch(self, lp: LogicalProcessor) -> None:
        """The vCPU on ``lp`` stops (blocked, parked or back to its queue); run the next."""
        v = lp.current
        assert v is not None
        lp.preempt = False
        if v.bg_since is not None:
            self.stop_background(v)
        now = self.env.now
        d = v.domain
        if self.credit:  # burn the credit it ran (as _burn, without a second clock read)
            used = now - v.burn_mark
            v.burn_mark = now
            v.credit -= used
            v.period_used += used
            d.used += used
        lp.busy_us += now - lp.since
        if self.smt_slow:
            self._siblings_account(lp)
            lp.current = None
            self._siblings_rearm(lp)
        else:
            lp.current = None
        v.lp = None
        lp.gen += 1
        bg = v.bg
        if v.busy or v.waiters or (bg is not None and bg.active):
            v._runnable_since = now
            if d.parked:
                v.state = PARKED
            else:
                v.state = RUNNABLE
                v.preemptions += 1
                self.env.counters["preemptions"] += 1
                if lp.offline:
                    self._move(v)
                else:
                    lp.runq[v.pri].append(v)
                    self.queued[v.pri] += 1
        else:
            v.state = BLOCKED
            v.halt_owed += v.halt_cost
        if d.allowance is not None:
            self._cap_timer(d)
        q = self.queued
        if q[0] or q[1] or q[2] or lp.offline or self.core:
            self._run_next(lp)
        else:  # _run_next with no vCPU queued anywhere: the LP goes idle
            lp.idle = True
            self.idle[lp] = None

    def _run_next(self, lp: LogicalProcessor) -> None:
        if lp.offline:
            return
        v = self._pick(lp)
        if v is None:
            lp.idle = True
            self.idle[lp] = None
        else:
            self._dispatch(v, lp)
            self._start(v)
        if self.core:
            self._kick_siblings(lp)

    def _start(self, v: VCpu) -> None:
        """A vCPU just dispatched runs its oldest work item, else its background load."""
        if v.waiters:
            v.busy = True
            v.waiters.popleft().succeed()
        else:
            self.start_background(v)

    def _dispatch(self, v: VCpu, lp: LogicalProcessor) -> None:
        now = self.env.now
        if v.state != BLOCKED:
            v.unscheduled += now - v._runnable_since
        if v.woke_at is not None:
            delay = now - v.woke_at
            v.wakeups += 1
            v.wake_total += delay
            if delay > v.wake_max:
                v.wake_max = delay
            v.woke_at = None
        v.state = RUNNING
        v.lp = lp
        v.last_lp = lp.index
        v.run_start = v.burn_mark = now
        v.debt += v.dispatch_cost
        v.dispatches += 1
        if self.dispatch_log is not None:
            self.dispatch_log.append((v, lp.index))
        if self.smt_slow:
            self._siblings_account(lp)
            lp.current = v
            self._siblings_rearm(lp)
        else:
            lp.current = v
        lp.since = now
        lp.gen += 1
        lp.timed = False
        q = self.queued
        if (q[0] or q[1] or q[2]) and self._best_pri(lp, core=not self.core) <= v.pri:
            self._arm_slice(lp)
        if v.domain.allowance is not None:
            self._cap_timer(v.domain)

    def _arm_slice(self, lp: LogicalProcessor) -> None:
        """Time the end of the running vCPU's slice, now that someone waits for the LP.

        Slices are not timed while nobody waits (no events for nothing); the running vCPU
        is then in its n-th slice since dispatch, as periodic renewal would have it."""
        lp.timed = True
        gen = lp.gen
        ran = self.env.now - lp.since
        self._at(self.time_slice - ran % self.time_slice, lambda: self._slice_end(lp, gen))

    def _slice_end(self, lp: LogicalProcessor, gen: int) -> None:
        cur = lp.current
        if lp.gen != gen or cur is None:
            return
        lp.timed = False
        # core scheduling: a partition kept off by a sibling still ends this slice; the
        # LP then runs what it may, or idles until its siblings leave the core
        if self._best_pri(lp, core=not self.core) <= cur.pri:
            self._request_preempt(lp, limited=False)

    # -- background load ------------------------------------------------------------------
    def start_background(self, v: VCpu) -> None:
        """Run ``v``'s background load on its LP (after any world-switch debt)."""
        bg = v.bg
        assert bg is not None
        assert bg.active
        v.bg_since = self.env.now
        bg.gen += 1
        if math.isfinite(bg.remaining):
            gen = bg.gen
            left = bg.remaining + v.debt + v.halt_owed
            if self.smt_slow:
                left /= self._bg_rate(v)
            self._at(left, lambda: self._burst_end(v, gen))

    def _bg_rate(self, v: VCpu) -> float:
        """Speed of ``v``'s background load: 1, or 1 / smt_slowdown while a sibling of
        its LP runs a vCPU."""
        lp = v.lp
        if lp is not None and any(s.current is not None for s in self.siblings[lp.index]):
            return 1.0 / self.smt_slow
        return 1.0

    def _siblings_account(self, lp: LogicalProcessor) -> None:
        """``lp`` is about to change between busy and idle: account the background load
        of its siblings at the speed it ran so far."""
        for s in self.siblings[lp.index]:
            w = s.current
            if w is not None and w.bg_since is not None:
                self._account_background(w)

    def _siblings_rearm(self, lp: LogicalProcessor) -> None:
        """``lp`` changed: the siblings' background bursts end at their new speed."""
        for s in self.siblings[lp.index]:
            w = s.current
            if w is not None and w.bg_since is not None:
                self.start_background(w)

    def stop_background(self, v: VCpu) -> None:
        """Account the background run since it started; it resumes later."""
        self._account_background(v)
        v.bg_since = None
        assert v.bg is not None
        v.bg.gen += 1  # its burst-end timer is void

    def _account_background(self, v: VCpu) -> None:
        """Charge the background run up to now (world switch first) and keep running."""
        bg = v.bg
        assert bg is not None
        assert v.bg_since is not None
        now = self.env.now
        elapsed = now - v.bg_since
        work = elapsed
        if self.smt_slow:  # a busy sibling: part of the time is lost to it
            rate = self._bg_rate(v)
            if rate != 1.0:
                work = elapsed * rate
                v.charge("smt", elapsed - work)
        debt = min(v.debt, work)
        if debt:
            v.debt -= debt
            v.charge("hypervisor", debt)
        halt = min(v.halt_owed, work - debt)
        if halt:
            v.halt_owed -= halt
            v.charge("halt", halt)
            debt += halt
        v.charge("guest", work - debt)
        bg.remaining -= work - debt
        v.bg_since = now

    def _burst_end(self, v: VCpu, gen: int) -> None:
        bg = v.bg
        assert bg is not None
        if bg.gen != gen:
            return
        self.stop_background(v)
        bg.active = False
        bg.remaining = 0.0
        self._at(bg.idle(), lambda: self.burst_start(v))
        if v.lp is not None:
            self.switch(v.lp)

    def burst_start(self, v: VCpu) -> None:
        """A new burst of background work: the vCPU wakes if it was blocked."""
        bg = v.bg
        assert bg is not None
        bg.active = True
        bg.remaining = bg.busy() if bg.busy is not None else math.inf
        if v.state == BLOCKED:
            if self.wake_on_idle(v):
                self.start_background(v)
            else:
                self.wake_queued(v)

    # -- credit ---------------------------------------------------------------------------
    def _burn(self, v: VCpu) -> None:
        if self.credit:
            now = self.env.now
            used = now - v.burn_mark
            v.burn_mark = now
            v.credit -= used
            v.period_used += used
            v.domain.used += used

    def _on_tick(self) -> None:
        for lp in self.lps:
            v = lp.current
            if v is None:
                continue
            self._burn(v)
            if v.pri == BOOST:
                v.pri = UNDER
            if v.pri == UNDER and v.credit < 0:
                v.pri = OVER
            self._contest(lp)

    def _on_accounting(self) -> None:
        for lp in self.lps:
            if lp.current is not None:
                self._burn(lp.current)
        active = [d for d in self.domains if d.used > 0 or any(v.has_work() for v in d.vcpus)]
        total_weight = sum(d.weight for d in active)
        pool = len(self.lps) * self.period
        for d in active:
            share = pool * d.weight / total_weight
            if d.allowance is not None:
                share = min(share, d.allowance)
            # credit goes to the vCPUs that ran in the period or want to run now
            busy = [v for v in d.vcpus if v.period_used > 0 or v.has_work()]
            each = share / max(len(busy), 1)
            for v in busy:
                v.credit = max(-self.time_slice, min(self.time_slice, v.credit + each))
        for v in self.vcpus:
            v.period_used = 0.0
        for v in self.vcpus:
            if v.pri != BOOST:
                v.pri = UNDER if v.credit >= 0 else OVER
        for lp in self.lps:  # queued vCPUs may have changed priority
            queued = [v for q in lp.runq for v in q]
            for q in lp.runq:
                q.clear()
            for v in queued:
                lp.runq[v.pri].append(v)
        self.queued = [sum(len(lp.runq[p]) for lp in self.lps) for p in range(3)]
        for d in self.domains:
            d.used = 0.0
            if d.parked and not d.down:
                self._unpark(d)
            elif d.allowance is not None:
                self._cap_timer(d)
        for lp in self.lps:
            if lp.current is None:
                if lp.idle and self._best_pri(lp) < 3:
                    del self.idle[lp]
                    lp.idle = False
                    self._run_next(lp)
            else:
                self._contest(lp)

    def _contest(self, lp: LogicalProcessor) -> None:
        """Priorities changed: preempt for a better waiter, or time the slice against an
        equal one."""
        cur = lp.current
        assert cur is not None
        best = self._best_pri(lp)
        if best < cur.pri:
            self._request_preempt(lp)
        elif best == cur.pri and not lp.timed:
            self._arm_slice(lp)

    # -- caps -----------------------------------------------------------------------------
    def _cap_timer(self, d: Domain) -> None:
        """(Re)arm the moment ``d`` will have used its cap at the current pace."""
        assert d.allowance is not None
        d.cap_gen += 1
        if d.parked:
            return
        now = self.env.now
        running = [v for v in d.vcpus if v.state == RUNNING]
        if not running:
            return
        left = d.allowance - d.used - sum(now - v.burn_mark for v in running)
        gen = d.cap_gen
        self._at(max(left, 0.0) / len(running), lambda: self._cap_check(d, gen))

    def _cap_check(self, d: Domain, gen: int) -> None:
        if d.cap_gen != gen or d.parked:
            return
        for v in d.vcpus:
            if v.state == RUNNING:
                self._burn(v)
        assert d.allowance is not None
        if d.used < d.allowance - 1e-9:
            self._cap_timer(d)
            return
        self.env.counters["cap_parks"] += 1
        self._park(d)

    def _park(self, d: Domain) -> None:
        """Take every vCPU of ``d`` off the LPs (a running one at the end of its work
        item) until :meth:`_unpark`."""
        d.parked = True
        for v in d.vcpus:
            if v.state == RUNNING:
                lp = v.lp
                assert lp is not None
                if v.busy:
                    lp.preempt = True
                else:
                    self.switch(lp)
            elif v.state == RUNNABLE:
                for lp in self.lps:
                    q = lp.runq[v.pri]
                    if v in q:
                        q.remove(v)
                        self.queued[v.pri] -= 1
                        break
                v.state = PARKED

    def _unpark(self, d: Domain) -> None:
        d.parked = False
        for v in d.vcpus:
            if v.state != PARKED:
                continue
            if not v.has_work():
                v.state = BLOCKED
                continue
            v.state = RUNNABLE  # waiting since it was parked
            lp = self._idle_lp(v)
            if lp is not None:
                self._dispatch(v, lp)
                self._start(v)
            else:
                self._enqueue(v, keep_since=True)
                self._tickle(v)
        if d.allowance is not None:
            self._cap_timer(d)

    # -- faults (sim.model.faults) ----------------------------------------------------------------
    def suspend(self, d: Domain) -> None:
        """Stop partition ``d`` (a crash or a hang): its vCPUs leave the LPs, a running one
        at the end of its work item, and none runs until :meth:`resume`; work that
        arrives meanwhile waits (as ``sched_wait``). Suspensions nest."""
        d.down += 1
        if not d.parked:
            self._park(d)

    def resume(self, d: Domain) -> None:
        """End one suspension of ``d``; with none left its vCPUs run again (unless its cap
        still parks it until the next accounting period)."""
        d.down -= 1
        if d.down == 0 and d.parked and (d.allowance is None or d.used < d.allowance):
            self._unpark(d)

    def lp_offline(self, index: int) -> None:
        """LP ``index`` takes no more work: the vCPU on it leaves at the end of its work
        item and, like those queued on it, runs on another LP its affinity allows (at
        once on an idle one); a vCPU pinned to it alone waits for it."""
        lp = self.lps[index]
        lp.offline = True
        if lp.idle:
            lp.idle = False
            del self.idle[lp]
        for p, q in enumerate(lp.runq):
            for v in [v for v in q if self._online_home(v, lp) is not lp]:
                q.remove(v)
                self.queued[p] -= 1
                self._move(v)
        cur = lp.current
        if cur is not None:
            if cur.busy:
                lp.preempt = True
            else:
                self.switch(lp)

    def lp_online(self, index: int) -> None:
        """LP ``index`` takes work again: it runs what waits for it, or goes idle."""
        lp = self.lps[index]
        lp.offline = False
        if lp.current is None:
            self._run_next(lp)

    def _online_home(self, v: VCpu, lp: LogicalProcessor) -> LogicalProcessor:
        """An online LP ``v`` may run on to queue it at instead of offline ``lp``: the
        lowest allowed one; ``lp`` itself if there is none (a pinned vCPU waits)."""
        for other in self.lps:
            if not other.offline and self._affine(v, other):
                return other
        return lp

    def _move(self, v: VCpu) -> None:
        """Runnable ``v`` leaves an offline LP: an idle LP takes it, else a run queue."""
        other = self._idle_lp(v) if self.idle else None
        if other is not None:
            self._dispatch(v, other)
            self._start(v)
        else:
            self._enqueue(v, keep_since=True)
            self._tickle(v)

    # -- accounting -----------------------------------------------------------------------
    def flush(self, closing: bool = False) -> None:
        """Bring every running account up to now. ``closing`` (the end of the run): take
        back the part of the work items in progress that lies after now."""
        now = self.env.now
        for lp in self.lps:
            v = lp.current
            if v is None:
                continue
            lp.busy_us += now - lp.since
            lp.since = now
            if v.bg_since is not None:
                self._account_background(v)  # its burst-end timer stays valid
        if closing:
            for v in self.vcpus:
                for category, cost in v.unfinished():
                    v.charge(category, -cost)

    def reset(self) -> None:
        """Forget CPU accounts (end of warm-up); running work keeps running, and the part
        of the work items in progress that lies after now is charged to the new window."""
        self.flush()
        for lp in self.lps:
            lp.busy_us = 0.0
        for v in self.vcpus:
            v.busy_us.clear()
            for category, cost in v.unfinished():
                v.charge(category, cost)
            v.wakeups = 0
            v.wake_total = 0.0
            v.wake_max = 0.0
            v.dispatches = v.preemptions = v.boosts = 0
