"""Workload streams and the requests they issue.

What it models
    Each child runs one or more streams (DESIGN §3.4):

    * **open loop**: arrivals at ``rate`` per second, ``poisson`` (exponential gaps) or
      ``deterministic``; each arrival starts its own request, whatever is in flight.
    * **closed loop**: ``outstanding`` users, each issuing a request at time 0 and, after
      every completion, a think time and the next request (with no think time:
      ``outstanding`` requests always in flight).

    A request has an op drawn from the stream's mix, a size from its size distribution,
    an issuing vCPU (the stream's ``vcpu``, or round robin over the child's vCPUs) and a
    completing vCPU (the child's ``irq_vcpu``, or the issuing one) and the device
    function it goes through (``vf``: the child's VF on the direct path, ``None`` for the
    physical function on the routed and native paths). It walks its child's I/O path
    (:mod:`sim.iopaths`) as one generator, and ends as one flat record.

Randomness
    Arrivals, sizes, op choices, think times and device service times each have their own
    generator, keyed by ``child.NAME/stream.J/...``: changing the I/O path of a child
    changes none of them (common random numbers).

Conservation
    Every issued request is, at the end of a run, either completed (a record in
    :attr:`Stream.done`) or still in flight (in :attr:`Stream.live`); the faults that make
    requests fail are not in this version, so ``failed`` is always empty here.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import simpy

from sim import distributions
from sim.env import SimEnv
from sim.metrics import COMPONENTS
from sim.scenario import Stream as StreamSpec

if TYPE_CHECKING:
    from sim.devices import Device
    from sim.hypervisor import VCpu
    from sim.iopaths import Path
    from sim.partitions import ChildPartition


class Request:
    """One I/O request in flight: its identity, timestamps and latency components."""

    __slots__ = ("c", "done_vcpu", "id", "op", "service", "size", "t_submit", "vcpu", "vf")

    def __init__(
        self,
        rid: int,
        op: int,
        size: int,
        t_submit: float,
        vcpu: VCpu,
        done_vcpu: VCpu,
        service: Callable[[], float],
        vf: int | None = None,
    ) -> None:
        self.id = rid
        self.op = op
        self.size = size
        self.t_submit = t_submit
        self.vcpu = vcpu
        self.done_vcpu = done_vcpu
        self.service = service
        self.vf = vf  # the device function it goes through: VF index, None for the PF
        self.c = [0.0] * len(COMPONENTS)


Record = tuple[Any, ...]
"""(id, op index, size, vcpu index, t_submit, t_complete, *components)."""


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
    ) -> None:
        self.env = env
        self.child = child
        self.index = index
        self.spec = spec
        self.path = path
        self.device_name = device.name
        key = f"child.{child.name}/stream.{index}"
        self.key = key
        self.ops = tuple(spec.op)
        weights = [spec.op[o] for o in self.ops]
        total = sum(weights)
        self._cum = list(itertools.accumulate(w / total for w in weights))
        self._op_u = (
            distributions.Distribution("time", "uniform", {"low": 0.0, "high": 1.0}).sampler(
                env.rng(f"{key}/ops")
            )
            if len(self.ops) > 1
            else None
        )
        self._sizes = spec.size.sampler(env.rng(f"{key}/sizes"))
        service = device.samplers(env, key)
        self._service = [service[o] for o in self.ops]
        if spec.vcpu is not None:
            self._vcpus: Callable[[], VCpu] = itertools.repeat(child.vcpus[spec.vcpu]).__next__
        else:
            self._vcpus = itertools.cycle(child.vcpus).__next__
        self._irq_vcpu = (
            child.vcpus[child.spec.irq_vcpu] if child.spec.irq_vcpu is not None else None
        )
        self._ids = itertools.count()
        self.done: list[Record] = []
        self.live: dict[int, Request] = {}
        if spec.rate is not None:
            mean_gap = 1e6 / spec.rate
            gap = (
                distributions.Distribution("time", "exponential", {"mean": mean_gap})
                if spec.arrival == "poisson"
                else distributions.constant(mean_gap)
            )
            self._gap = gap.sampler(env.rng(f"{key}/arrivals"))
        else:
            self._think = spec.think.sampler(env.rng(f"{key}/think"))

    @property
    def issued(self) -> int:
        """Requests issued so far."""
        return len(self.done) + len(self.live)

    def start(self) -> None:
        """Start the stream's processes."""
        env = self.env
        if self.spec.outstanding is None:
            env.process(self._open_loop())
        else:
            for _ in range(self.spec.outstanding):
                env.process(self._closed_loop())

    def _request(self) -> Request:
        if self._op_u is None:
            op = 0
        else:
            op = bisect.bisect_right(self._cum, self._op_u())
            op = min(op, len(self.ops) - 1)
        vcpu = self._vcpus()
        req = Request(
            next(self._ids),
            op,
            int(self._sizes()),
            self.env.now,
            vcpu,
            self._irq_vcpu or vcpu,
            self._service[op],
            # direct: the child's VF; routed (the parent's driver) and native: the PF
            self.child.vf if self.path.name == "direct" else None,
        )
        self.live[req.id] = req
        return req

    def _serve(self, req: Request) -> Generator[simpy.Event, Any, None]:
        yield from self.path.walk(req)
        del self.live[req.id]
        self.done.append(
            (req.id, req.op, req.size, req.vcpu.index, req.t_submit, self.env.now, *req.c)
        )

    def _open_loop(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        gap = self._gap
        while True:
            yield env.timeout(gap())
            env.process(self._serve(self._request()))

    def _closed_loop(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        think = self._think
        while True:  # each user issues at once, then thinks after every completion
            yield from self._serve(self._request())
            t = think()
            if t > 0.0:
                yield env.timeout(t)
