"""Workload streams and the requests they issue.

What it models
    Each child runs one or more streams (docs/design.md §3.4):

    * **open loop**: arrivals at ``rate`` per second, ``poisson`` (exponential gaps),
      ``deterministic``, or ``mmpp`` (bursts: a two-state Markov-modulated Poisson process
      whose high and low rates average to ``rate``, :func:`mmpp_gaps`); each arrival
      starts its own request, whatever is in flight.
    * **closed loop**: ``outstanding`` users, each issuing a request at time 0 and, after
      every completion, a think time and the next request (with no think time:
      ``outstanding`` requests always in flight).

    A request has an op drawn from the stream's mix, a size from its size distribution,
    an issuing vCPU (the stream's ``vcpu``, or round robin over the child's vCPUs) and a
    completing vCPU (the child's ``irq_vcpu``, or the issuing one) and the device
    function it goes through (``vf``: the child's VF on the direct path, ``None`` for the
    physical function on the routed and native paths). It walks its child's I/O path
    (:mod:`sim.model.iopaths`) as one generator, and ends as one flat record.

    A NIC ``receive`` op (open loop only) is a message of ``size`` bytes arriving from
    the wire for the child at the stream's arrival: the request is created when its first
    frame starts to arrive, and its ``t_submit`` moves to the arrival of its last frame
    at the NIC (:mod:`sim.model.iopaths`), where its latency starts; the issuing vCPU is the
    one receive side scaling steers the message to (round robin over the child's vCPUs,
    as flows spread), the completing vCPU the one that processes it.

Randomness
    Arrivals, sizes, op choices, think times and device service times each have their own
    generator, keyed by ``child.NAME/stream.J/...``: changing the I/O path of a child
    changes none of them (common random numbers).

Attempts, failures and retries (:mod:`sim.model.faults`)
    With faults scheduled, or a command timer that can expire within the run, a request
    is served as one or more **attempts** (:meth:`Stream.tolerate`): the
    guest's I/O policy (``children[].io_policy``) gives up an attempt that has not
    completed ``timeout`` after it was sent (its command timer, armed only where it can
    expire within the run), one whose device was reset, and, with ``on_parent_failure:
    wait``, resubmits those a crashed parent lost when the parent is back. A given-up
    attempt is retried at once as a new attempt (a new :class:`Request` with the same id,
    walking the path the stream is on then) while fewer than ``retries`` retries were
    made; then the request **fails** for good ("retries exhausted"; with ``retries: 0``
    the attempt's own reason). A crashed child's requests fail at once ("child
    crashed"), without retry. The walk of a given-up attempt stops at its next check
    (:class:`AbortError`, at the device and at the parent) or is discarded when it ends; a
    closed-loop user waits for its request to end, however many attempts it takes.

    A request is one record whatever its attempts: ``t_submit`` is its first submission,
    its latency runs to the end of the attempt that completed, and the time before that
    attempt is its ``retry`` component, so that components still add up to the latency
    of every completed request. :attr:`Stream.attempts` has the attempts of those that
    took more than one, :attr:`Stream.paths` the path of those whose last attempt took
    another path than the stream's own (a revoked VF), :attr:`Stream.failures` the
    reason of each failed one. A failed record's ``t_complete`` is when it failed; its
    components are its last attempt's as far as it got (they do not add up).

    The timer's queue holds each attempt's deadline, id and attempt number in columns
    (:class:`Deadlines`), not the attempt: a completed request is not kept alive until its
    deadline (30 s of requests, gigabytes, in a long run).

    Without faults, and where no command timer can expire within the run (the default
    30 s against runs of seconds), none of this runs: streams serve as before.

Conservation
    Every issued request is, at the end of a run, in exactly one of: completed (recorded
    in :attr:`Stream.done`, a :class:`~sim.model.records.RequestLog`: its columns, as
    ``run.requests`` says), failed (in :attr:`Stream.failed`) or still in flight (in
    :attr:`Stream.live`): the three add up to :attr:`Stream.issued`, the ids handed out
    (checked by the host when it collects, :class:`ConservationError`).
"""

from __future__ import annotations

import bisect
import itertools
import math
from array import array
from collections.abc import Callable, Generator
from typing import Any

import simpy

from sim.model.devices import Device, RemotePeer
from sim.model.env import URGENT, SimEnv, Task, Waitable
from sim.model.hypervisor import VCpu
from sim.model.iopaths import LocalPeer, Path
from sim.model.partitions import ChildPartition
from sim.model.records import RequestLog
from sim.model.request import AbortError, Record, Request
from sim.scenario import distributions, names
from sim.scenario.schema import requests_kept
from sim.scenario.workload import Burst
from sim.scenario.workload import Stream as StreamSpec


def mmpp_gaps(burst: Burst, rate: float, rng: Any) -> Callable[[], float]:
    """Gaps (µs) between arrivals of a two-state MMPP with mean ``rate`` per second: in each
    state, arrivals are Poisson at its rate and the state lasts an exponential time (mean
    ``burst.length`` high, ``burst.between`` low). Both being memoryless, a gap is drawn in the
    current state and, when the state ends first, the rest is drawn in the next one. The
    process starts in its stationary state, so no warm-up is needed for it."""
    high, low = (r / 1e6 for r in burst.rates(rate))  # per µs
    hold = (burst.length, burst.between)
    state = [0 if rng.random() < burst.length / (burst.length + burst.between) else 1]
    left = [rng.exponential(hold[state[0]])]

    def gap() -> float:
        waited = 0.0
        while True:
            lam = high if state[0] == 0 else low
            g = rng.exponential(1.0 / lam)
            if g < left[0]:
                left[0] -= g
                return waited + g
            waited += left[0]
            state[0] ^= 1
            left[0] = rng.exponential(hold[state[0]])

    return gap


def trace_gaps(
    plan: tuple[Any, Any, Any, float], loop: bool, shift: float, row: list[int]
) -> Callable[[], float]:
    """Gaps (µs) between the replayed arrivals of a trace (:meth:`Trace.plan
    <sim.scenario.workload.Trace.plan>`: times from the window's start, the window's
    length ``period``), the window started ``shift`` µs in (wrapping round), once or, with
    ``loop``, again and again; after the last, an infinite gap. ``row[0]`` is set to the
    trace row of the arrival each gap leads to (its op and size)."""
    times, _, _, period = plan
    t = times.tolist()
    n = len(t)
    first = bisect.bisect_left(t, shift) if shift > 0 else 0
    nxt = [first, 0]  # the next row, arrivals served
    clock = [0.0 - shift, 0.0]  # when the current pass started, the last arrival

    def gap() -> float:
        i = nxt[0]
        base, now = clock
        if i >= n:
            i, base = 0, base + period
        if nxt[1] >= n and not loop:
            return math.inf
        at = base + t[i]
        row[0] = i
        nxt[0], nxt[1] = i + 1, nxt[1] + 1
        clock[0], clock[1] = base, at
        return at - now

    return gap


def warped(
    gap: Callable[[], float], starts: list[float], factors: list[float], period: float | None
) -> Callable[[], float]:
    """Gaps of a process run on a clock going ``factor`` times as fast as simulated time
    (steps from ``starts``, repeated every ``period``): the base process's gaps are spent
    on that clock, so its rate is multiplied by the factor of the moment."""
    ends = [*starts[1:], period if period is not None else math.inf]
    cum = [0.0]
    for s0, e, f in zip(starts, ends, factors, strict=True):
        cum.append(cum[-1] + (f * (e - s0) if math.isfinite(e) else math.inf))
    per = cum[-1]  # the clock's advance over one period (inf without one)
    state = [0.0, 0.0]  # the clock, simulated time

    def real(u: float) -> float:
        """Simulated time at which the clock reads ``u``."""
        k = 0.0
        if period is not None:
            k = float(math.floor(u / per))
            u -= k * per
            if u >= per:  # rounding
                k, u = k + 1.0, 0.0
        # the last step begun by clock u: a step of factor 0 (no advance) is passed by
        j = min(bisect.bisect_right(cum, u) - 1, len(factors) - 1)
        t = starts[j] + (u - cum[j]) / factors[j]
        return t + (k * period if period is not None else 0.0)

    def next_gap() -> float:
        g = gap()
        if math.isinf(g):
            return g
        u = state[0] + g
        t = real(u)
        out = max(t - state[1], 0.0)
        state[0], state[1] = u, t
        return out

    return next_gap


class Deadlines:
    """A first-in first-out queue of (deadline, id, attempt) in three columns (24 bytes an
    entry, no object), compacted as its head moves on."""

    __slots__ = ("attempts", "head", "ids", "times")

    def __init__(self) -> None:
        self.times = array("d")
        self.ids = array("q")
        self.attempts = array("q")
        self.head = 0

    def append(self, deadline: float, rid: int, attempt: int) -> None:
        self.times.append(deadline)
        self.ids.append(rid)
        self.attempts.append(attempt)

    def __bool__(self) -> bool:
        return self.head < len(self.times)

    def first(self) -> tuple[float, int, int]:
        h = self.head
        return self.times[h], self.ids[h], self.attempts[h]

    def pop(self) -> None:
        self.head += 1
        if self.head >= 4096 and 2 * self.head >= len(self.times):  # drop the spent half
            h = self.head
            del self.times[:h], self.ids[:h], self.attempts[:h]
            self.head = 0


class Stream:
    """One workload stream of one child partition."""

    def __init__(
        self,
        env: SimEnv,
        child: ChildPartition,
        index: int,
        spec: StreamSpec,
        device: Device,
        path: Path,
        vf: int | None = None,
    ) -> None:
        self.env = env
        self.vf = vf  # a VF of another device than the child's own (else the child's VF)
        self.io_path: str | None = None  # its path where not the child's (another device's)
        self.child = child
        self.index = index
        self.spec = spec
        self.path = path
        self.device_name = device.name
        key = names.rng_key(child.scope, f"stream.{index}")
        self.key = key
        self.ops = tuple(spec.op)
        weights = [spec.op[o] for o in self.ops]
        total = sum(weights)
        self._cum = list(itertools.accumulate(w / total for w in weights))
        self._op_u = (
            distributions.Distribution("time", "uniform", {"low": 0.0, "high": 1.0}).sampler(
                env.rng(key, "ops")
            )
            if len(self.ops) > 1
            else None
        )
        self._sizes = spec.size.sampler(env.rng(key, "sizes"))
        service = device.samplers(env, key)
        # a hash-teamed NIC: the member port this flow sticks to (sim.scenario.hardware.Team)
        team = getattr(device.spec, "team", None)
        hashed = team is not None and team.policy == "hash"
        self._flow = team.port_of(f"{child.name}/{index}") if team and hashed else 0
        self._service = [service[o] for o in self.ops]
        self._receive = [o == "receive" for o in self.ops]
        if spec.vcpu is not None:
            self._vcpus: Callable[[], VCpu] = itertools.repeat(child.vcpus[spec.vcpu]).__next__
        else:
            self._vcpus = itertools.cycle(child.vcpus).__next__
        self._irq_vcpu = (
            child.vcpus[child.spec.irq_vcpu] if child.spec.irq_vcpu is not None else None
        )
        self._ids = itertools.count()
        # request-response with a remote peer (sim.model.devices.RemotePeer)
        self._peer: RemotePeer | LocalPeer | None = None
        self.trips: dict[int, tuple[float, float, float]] | None = None
        if spec.peer is not None:  # a child on this host: set by the host (set_peer)
            self.trips = {}
            if spec.peer.remote is not None:
                self._peer = RemotePeer(env, spec.peer.remote, device, key)
        run = env.scenario.run
        keep = requests_kept(run.requests)
        # completed requests, in columns (sim.model.records); the sample draws from a key
        # of its own, so no other stream's draws move
        self.done = RequestLog(
            keep,
            run.warmup,
            rng=env.rng(key, "requests.sample") if isinstance(keep, int) else None,
            trips=self.trips is not None,
        )
        self._record = self.done.add
        self.live: dict[int, Request] = {}
        # attempts, failures and retries (sim.model.faults): used once tolerate() is called
        self.failed: list[Record] = []
        self.failures: dict[int, str] = {}
        self.attempts: dict[int, int] = {}
        self.paths: dict[int, str] = {}
        self.home = path  # the stream's own path; ``path`` is the one new attempts take
        self.tolerant = False
        self.stopped = False
        self.timeout: float | None = None
        self.retries = 0
        # the attempts whose timer runs, in the order they were sent (so of their
        # deadlines): (deadline, id, attempt) in columns, not the requests themselves,
        # which would stay alive for the whole timeout after they completed
        self._deadlines = Deadlines()
        self._timer_armed = False
        self._ended: dict[int, simpy.Event] = {}
        self._users = 0  # generation of the closed-loop users (a crash ends one)
        self._row = [0]  # the trace row of the last arrival (arrival: trace)
        self._trace_op = self._trace_size = None
        if spec.trace is not None:
            tr = spec.trace
            plan = tr.plan()
            shift = 0.0
            if tr.offset == "random":  # its own key: no other stream's draws move
                shift = float(env.rng(key, "trace.offset").uniform(0.0, plan[3]))
            self._gap = trace_gaps(plan, tr.loop, shift, self._row)
            if plan[1] is not None:
                idx = {o: k for k, o in enumerate(self.ops)}
                written = tr.data.ops
                self._trace_op = [idx[written[c]] for c in plan[1].tolist()]
            if plan[2] is not None:
                self._trace_size = plan[2].tolist()
        elif spec.rate is not None and spec.arrival == "mmpp":
            self._gap = mmpp_gaps(spec.burst or Burst(), spec.rate, env.rng(key, "arrivals"))
        elif spec.rate is not None:
            mean_gap = 1e6 / spec.rate
            gap = (
                distributions.Distribution("time", "exponential", {"mean": mean_gap})
                if spec.arrival == "poisson"
                else distributions.constant(mean_gap)
            )
            self._gap = gap.sampler(env.rng(key, "arrivals"))
        else:
            self._think = spec.think.sampler(env.rng(key, "think"))
        if spec.profile is not None and spec.outstanding is None:
            self._gap = warped(self._gap, *spec.profile.steps())

    def set_peer(self, peer: LocalPeer) -> None:
        """Its sends go to ``peer``, a routed child on this host (sim.model.host)."""
        self._peer = peer

    @property
    def issued(self) -> int:
        """Requests issued so far (ids handed out)."""
        return int(repr(self._ids).removeprefix("count(").removesuffix(")"))

    def start(self) -> None:
        """Start the stream's processes."""
        env = self.env
        if self.tolerant:
            if self.spec.outstanding is None:
                env.process(self._open_loop_tolerant())
            else:
                self._start_users()
            return
        if self.spec.outstanding is None:
            self._open_loop()
        else:
            for _ in range(self.spec.outstanding):
                env.process(self._closed_loop())

    def _request(self) -> Request:
        if self._trace_op is not None:
            op = self._trace_op[self._row[0]]
        elif self._op_u is None:
            op = 0
        else:
            op = bisect.bisect_right(self._cum, self._op_u())
            op = min(op, len(self.ops) - 1)
        size = self._trace_size[self._row[0]] if self._trace_size is not None else self._sizes()
        vcpu = self._vcpus()
        req = Request(
            next(self._ids),
            op,
            int(size),
            self.env.now,
            vcpu,
            self._irq_vcpu or vcpu,
            self._service[op],
            # direct: the child's VF; routed (the parent's driver) and native: the PF
            self._vf(),
            self._receive[op],
            self._peer,
        )
        if self._flow:
            req.flow = self._flow
        self.live[req.id] = req
        return req

    def _serve(self, req: Request) -> Generator[Waitable, Any, None]:
        yield from self.path.walk(req)
        self._finish(req)

    def _finish(self, req: Request) -> None:
        """Request ``req``'s walk has ended: record it."""
        del self.live[req.id]
        self._record(req, self.env.now)
        if req.trip is not None and self.done.keep == "all":
            self.trips[req.id] = req.trip  # type: ignore[index]

    def _open_loop(self) -> None:
        """Arrivals as callbacks of their timeouts: each issues a request (its walk a
        :class:`Task`) and draws the next gap. The same events in the same order as a
        process looping over ``yield env.timeout(gap())``, first drawn by the urgent event
        such a process would start with, but no generator resumed per arrival."""
        env = self.env
        gap, walk, finish = self._gap, self.path.walk, self._finish

        def arrival(_ev: simpy.Event) -> None:
            req = self._request()
            env.after(gap(), arrival)
            # a process nobody waits for, without its end; its start event would be the
            # next one processed (the next arrival is already timed, as a process would
            # have it when it starts), so it starts at once
            Task(env, walk(req), finish, req, at_once=True)

        def first(_ev: simpy.Event) -> None:
            env.after(gap(), arrival)

        start = env.event()
        start._ok = True
        start._value = None
        assert start.callbacks is not None
        start.callbacks.append(first)
        env.schedule(start, URGENT)

    def _closed_loop(self) -> Generator[Waitable, Any, None]:
        env = self.env
        think = self._think
        while True:  # each user issues at once, then thinks after every completion
            yield from self._serve(self._request())
            t = think()
            if t > 0.0:
                yield env.timeout(t)

    # -- attempts, failures and retries (sim.model.faults) --------------------------------------
    def tolerate(self, timeout: float | None, retries: int) -> None:
        """Serve requests as attempts that may be given up and retried (module
        docstring): ``timeout`` arms the guest's command timer (None: no timer),
        ``retries`` bounds the retries of one request. Call before :meth:`start`."""
        self.tolerant = True
        self.timeout = timeout
        self.retries = retries

    def _vf(self) -> int | None:
        if self.path.name != "direct":
            return None
        return self.vf if self.vf is not None else self.child.vf

    def _send(self, req: Request) -> None:
        """Attempt ``req`` goes out on the stream's current path; its timer starts."""
        req.t_attempt = self.env.now
        req.path = self.path
        self.live[req.id] = req
        timeout = self.timeout
        if timeout is not None:
            self._deadlines.append(req.t_attempt + timeout, req.id, req.attempt)
            if not self._timer_armed:
                self._timer_armed = True
                self.env.after(timeout, self._expire)

    def _expire(self, _ev: simpy.Event) -> None:
        """The command timer: give up every attempt past its deadline, then wait for the
        earliest deadline of an attempt still current (deadlines come in order)."""
        now = self.env.now
        pending, live = self._deadlines, self.live
        while pending:
            deadline, rid, attempt = pending.first()
            req = live.get(rid)
            if req is None or req.attempt != attempt:  # ended, or superseded by a later attempt
                pending.pop()
                continue
            if deadline > now + 1e-6:
                break
            pending.pop()
            self.abort(req, "timeout")  # its retry's deadline goes to the back
        if pending:
            self.env.after(max(pending.first()[0] - now, 0.0), self._expire)
        else:
            self._timer_armed = False

    def _attempt(self, req: Request) -> Generator[Waitable, Any, None]:
        """Walk one attempt; record the request if the attempt completed and counts."""
        try:
            yield from req.path.walk(req)
        except AbortError:
            return
        if req.dead:
            return
        del self.live[req.id]
        self._record(req, self.env.now)
        if req.trip is not None and self.done.keep == "all":
            self.trips[req.id] = req.trip  # type: ignore[index]
        self._ended_with(req)

    def _ended_with(self, req: Request) -> None:
        """Request ``req`` ended (completed or failed) with this attempt."""
        if req.attempt > 1:
            self.attempts[req.id] = req.attempt
        if req.path is not self.home:
            self.paths[req.id] = req.path.name
        waiting = self._ended.pop(req.id, None)
        if waiting is not None:
            waiting.succeed()

    def abort(self, req: Request, reason: str, retry: bool = True) -> None:
        """Give up attempt ``req`` (if it is still its request's current one) for
        ``reason``: a new attempt while retries are left (and ``retry``), else the
        request fails."""
        if self.live.get(req.id) is not req:
            return
        req.dead = True
        self.env.counters[f"attempts.failed.{reason.replace(' ', '_')}"] += 1
        if retry and req.attempt <= self.retries:
            self._retry(req)
            return
        del self.live[req.id]
        why = "retries exhausted" if retry and self.retries else reason
        self.failed.append(req.record(self.env.now))
        self.failures[req.id] = why
        self.env.counters["requests.failed"] += 1
        self._ended_with(req)

    def resubmit(self, req: Request) -> None:
        """Send attempt ``req`` again as a new attempt (its guest learnt it was lost), not
        counted against the retries."""
        if self.live.get(req.id) is not req:
            return
        req.dead = True
        self.env.counters["attempts.resubmitted"] += 1
        self._retry(req)

    def _retry(self, req: Request) -> None:
        nxt = req.again(self.env.now, self._vf())
        self._send(nxt)
        self.env.process(self._attempt(nxt))

    def halt(self, reason: str) -> None:
        """The child crashed: it issues nothing more, and its requests in flight fail."""
        self.stopped = True
        self._users += 1
        for req in list(self.live.values()):
            self.abort(req, reason, retry=False)

    def restart(self) -> None:
        """The child is back: it issues again (open loop: from its next arrival)."""
        self.stopped = False
        if self.spec.outstanding is not None:
            self._start_users()

    def _open_loop_tolerant(self) -> Generator[Waitable, Any, None]:
        env = self.env
        gap = self._gap
        while True:
            yield env.timeout(gap())
            if not self.stopped:
                req = self._request()
                self._send(req)
                env.process(self._attempt(req))

    def _start_users(self) -> None:
        assert self.spec.outstanding is not None
        for _ in range(self.spec.outstanding):
            self.env.process(self._user(self._users))

    def _user(self, generation: int) -> Generator[Waitable, Any, None]:
        """A closed-loop user: the first attempt runs in the user itself (no event more
        than without faults); a retried request is waited for until it ends."""
        env = self.env
        think = self._think
        while self._users == generation:
            req = self._request()
            self._send(req)
            yield from self._attempt(req)
            if req.id in self.live:  # retried: wait for the request, not the attempt
                ended = self._ended[req.id] = env.event()
                yield ended
            if self._users != generation:
                return
            t = think()
            if t > 0.0:
                yield env.timeout(t)
