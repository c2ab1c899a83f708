"""The simulated host, assembled from a scenario, and one replication of it.

:class:`Host` builds the component tree (hypervisor and LPs, parent, devices, children,
channels, paths, streams) from a validated :class:`~sim.scenario.Scenario`, inside one
:class:`~sim.model.env.SimEnv`. :func:`simulate` runs one replication and returns plain records
(:class:`RunData`): no pandas here; :mod:`sim.results.tables` makes the tables.

Where each child's I/O runs (its path, its VF or its fallback to ``routed``, its channels
and the parent vCPUs serving them) is the deployment plan's decision
(:mod:`sim.scenario.plan`); the host builds what the plan says. A fallback's results carry
``requested_path=direct, io_path=routed, fallback=True``.

Warm-up: at ``run.warmup`` every counter, CPU account and level monitor is reset; requests
submitted before it are recorded but flagged out of the measurement window.

Faults (:mod:`sim.model.faults`): with a ``faults:`` list the host builds an
:class:`~sim.model.faults.Injector`, gives each direct child that a ``vf_revoke`` targets the
standby routed path the plan opens for it, and makes every stream serve attempts that can fail
and be retried (:meth:`~sim.model.workloads.Stream.tolerate`). A child's command timer is armed
even without faults where its ``io_policy.timeout`` can expire within the run. Every
collection checks that completed, failed and in-flight requests add up to those issued.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

from sim.model import devices
from sim.model.env import SimEnv
from sim.model.faults import Injector
from sim.model.hypervisor import Hypervisor
from sim.model.iommu import DmaDomain, Iommu
from sim.model.iopaths import (
    AssignedPath,
    EmulatedPath,
    HypervisorPath,
    LocalPeer,
    ParentPath,
    Path,
    RoutedPath,
)
from sim.model.metrics import Level
from sim.model.partitions import ChildPartition, ParentEndpoint, ParentPartition
from sim.model.periodic import Housekeeper, Ticker, phase, tick_exit_cost
from sim.model.records import (
    CpuRecord,
    ResourceRecord,
    RunData,
    SchedRecord,
    StreamData,
    TraceRecord,
    rows_array,
)
from sim.model.request import ConservationError
from sim.model.vmbus import Channel
from sim.model.workloads import Stream
from sim.scenario import distributions
from sim.scenario.plan import Placement, PlannedChannel, plan
from sim.scenario.schema import Scenario


class Host:
    """Every component of one simulated host."""

    def __init__(self, env: SimEnv) -> None:
        scn = env.scenario
        self.env = env
        h = scn.host
        self.hv = Hypervisor(env, h)
        self.parent = ParentPartition(env, self.hv, scn.parent, h)
        self.devices = {d.name: devices.build(env, d) for d in scn.devices}
        self.iommu = Iommu(env, h.iommu)  # one IOMMU, its IOTLB shared by every domain
        # the parent's physical drivers map their DMA in one domain (host.iommu.parent)
        self.parent_dma = self.iommu.host_domain("parent", h.iommu.parent, "driver")
        # the hypervisor's own drivers (host.iommu.hypervisor): one domain, as the parent's
        self.hv_dma = self.iommu.host_domain("hypervisor", h.iommu.hypervisor, "hypervisor")
        self.children: list[ChildPartition] = []
        self.channels: list[Channel] = []
        self.streams: list[Stream] = []
        self.trace: list[TraceRecord] = []
        self.standby: dict[str, Path] = {}  # child → its routed path while its VF is revoked
        self.driver_down: dict[str, float] = {}  # device → hypervisor driver down until

        self._home: dict[str, Path] = {}  # child → its shared path (routed, ...)
        self.plan = plan(scn)
        for placed in self.plan.routes():
            if placed.vf is not None:
                self.devices[str(placed.device)].vf_owner[placed.vf] = placed.name
        self.fallbacks = self.plan.fallbacks  # a fact of the configuration: not reset
        for placed in self.plan.children:
            child = ChildPartition(env, self.hv, placed.name, placed.spec, h)
            self.children.append(child)
            if placed.spec.device is None:
                continue
            child.io_path, child.vf = placed.path, placed.vf
            dma: DmaDomain | None = None  # a direct child's one domain, shared by its VFs
            for route in (placed, *placed.others):
                dma = self._route(child, route, dma)
        self._peers()

        own = self.plan.parent
        if own is not None:  # the parent's own streams, through its physical driver
            dev = self.devices[str(own.device)]
            self.parent_end = ParentEndpoint(env, self.parent, own.spec)
            home = ParentPath(env, self.hv, self.parent, dev, self.parent_dma, self.parent_end)
            for j, sspec in enumerate(scn.parent.streams):
                self.streams.append(Stream(env, self.parent_end, j, sspec, dev, home))

        self.periodic: list[Ticker | Housekeeper] = self._periodic()
        self.injector = Injector(self) if scn.faults else None
        for placed, child in zip(self.plan.children, self.children, strict=True):
            if placed.standby:  # opened after every other child's channels
                dev = self.devices[str(placed.device)]
                self.standby[child.name] = self._routed(child, dev, placed.standby)
        for s in self.streams:
            policy = s.child.spec.io_policy
            timer = policy.on_parent_failure == "timeout" and policy.timeout < scn.run.duration
            if scn.faults or timer:
                s.tolerate(policy.timeout if timer else None, policy.retries)

    def _route(
        self, child: ChildPartition, placed: Placement, dma: DmaDomain | None
    ) -> DmaDomain | None:
        """The path of ``child`` to one of its devices (its own, or another its streams
        name: ``placed.others``) and the streams on it; returns the direct child's DMA
        domain (one per child, made at its first VF)."""
        env, h = self.env, self.env.scenario.host
        dev = self.devices[str(placed.device)]
        own = placed.on is None
        # one path object per child and device on these paths: its streams share it
        shared: Path | None = None
        if placed.path == "routed":
            shared = self._routed(child, dev, placed.channels)
        elif placed.path == "hypervisor":
            shared = HypervisorPath(
                env,
                self.hv,
                child,
                dev,
                h.costs.doorbell_exit,
                h.hypervisor_io,
                self.driver_down,
                own,
                self.hv_dma,
            )
        elif placed.path == "emulated":
            # the device model is served by a parent vCPU, placed as a channel is
            shared = EmulatedPath(
                env,
                self.hv,
                child,
                self.parent,
                dev,
                self.parent.vcpus[placed.parent_vcpus[0]],
                h.costs.device_model_exit,
                h.costs.hypercall,
                self.parent_dma,
            )
        if shared is not None and own:
            self._home[child.name] = shared
        # a direct child's streams share its translation domain (one ring of buffers)
        native = placed.path == "native"
        if placed.path == "direct":
            if dma is None:
                mode = child.spec.iommu_mode(h.iommu.mode)
                dma = self.iommu.domain(placed.name, mode, h.costs.device_model_exit)
            if own:  # the path a peer's messages to it take (_peers)
                self._home[child.name] = AssignedPath(env, self.hv, child, dev, "direct", True, dma)
        elif native and dma is None:  # the host kernel's DMA API on bare metal
            dma = self.iommu.host_domain(placed.name, h.iommu.native, "guest")
        for j, sspec in placed.streams():
            path: Path
            if shared is not None:
                path = shared
            else:
                path = AssignedPath(env, self.hv, child, dev, placed.path, not native, dma)
            vf = None if own else placed.vf  # the child's own VF: child.vf (revocable)
            stream = Stream(env, child, j, sspec, dev, path, vf)
            if not own:  # another device's path may differ (no VF left on it: routed)
                stream.io_path = placed.path
            self.streams.append(stream)
        return dma

    def _peers(self) -> None:
        """Each stream whose peer is a child on this host gets it (a routed, a direct or a
        mixed pair: sim.model.iopaths.LocalPeer); checked in sim.scenario.checks, but a
        child planned onto another path than its own (hypervisor) is refused here."""
        env = self.env
        by_name = {c.name: c for c in self.children}
        for s in self.streams:
            peer = s.spec.peer
            if peer is None or peer.child is None:
                continue
            other = by_name[peer.child]
            mine, theirs = s.path, self._home.get(other.name)
            if (
                not isinstance(mine, RoutedPath | AssignedPath)
                or not isinstance(theirs, RoutedPath | AssignedPath)
                or not {mine.name, theirs.name} <= {"routed", "direct"}
            ):
                raise ValueError(
                    f"{s.child.name} and its peer {other.name} are not both routed or "
                    "direct: a VM-to-VM pair with another path is not built"
                )
            response = peer.response if peer.response is not None else distributions.constant(0.0)
            sizes = peer.reply_size if peer.reply_size is not None else distributions.constant(1.0)
            key = s.key
            s.set_peer(
                LocalPeer(
                    theirs,
                    itertools.cycle(other.vcpus).__next__,
                    response.sampler(env.rng(key, "peer.response")),
                    sizes.sampler(env.rng(key, "peer.reply_size")),
                )
            )

    def _routed(
        self, child: ChildPartition, dev: devices.Device, planned: Sequence[PlannedChannel]
    ) -> RoutedPath:
        """A routed path for ``child`` to ``dev`` over its ``planned`` channels (a primary
        and sub-channels), each served by the parent vCPU the plan gives it."""
        env, scn = self.env, self.env.scenario
        chans = [Channel(env, c.name, c.index, scn.parent.vmbus) for c in planned]
        self.channels.extend(chans)
        return RoutedPath(
            env,
            self.hv,
            child,
            self.parent,
            dev,
            chans,
            [self.parent.vcpus[c.parent_vcpu] for c in planned],
            scn.host.costs.hypercall,
            self.parent_dma,
        )

    def _periodic(self) -> list[Ticker | Housekeeper]:
        """Timer ticks of every child vCPU and per-VM housekeeping (sim.model.periodic)."""
        env, h = self.env, self.env.scenario.host
        out: list[Ticker | Housekeeper] = []
        k = 0
        irq_cost = self.hv.irq_cost
        for child in self.children:
            timer = child.spec.timer
            if child.timer_handler is None:
                continue
            exit_cost = tick_exit_cost(child.io_path == "native", irq_cost, h.costs.timer_arm_exit)
            for v in child.vcpus:
                period = 1e6 / timer.hz
                out.append(
                    Ticker(
                        env,
                        v,
                        timer.hz,
                        timer.mode == "tickless",
                        exit_cost,
                        child.timer_handler,
                        phase(k, period),
                        not self.hv.posted and child.io_path != "native",
                    )
                )
                k += 1
        hk = h.housekeeping
        if hk.cost.mean > 0:
            cost = hk.cost.sampler(env.rng("parent.housekeeping", "cost"))
            pv = self.parent.vcpus
            for i, (placed, child) in enumerate(
                zip(self.plan.children, self.children, strict=True)
            ):
                if child.io_path == "native":
                    continue
                chans = placed.channels
                v = pv[chans[0].parent_vcpu] if chans else pv[i % len(pv)]
                out.append(Housekeeper(env, v, hk.interval, cost, phase(i, hk.interval)))
        return out

    def start(self) -> None:
        """Start the scheduler, every stream and background load, and the warm-up timer."""
        self.hv.start()
        for s in self.streams:
            s.start()
        for v in self.hv.vcpus:
            if v.bg is not None:
                self.hv.burst_start(v)
        for p in self.periodic:
            p.start()
        if self.injector is not None:
            self.injector.start()
        run = self.env.scenario.run
        if run.warmup > 0:
            self.env.after(run.warmup, lambda _ev: self.reset())
        interval = run.duration / 200 if run.trace_interval is None else run.trace_interval
        if interval > 0:
            self._trace_start(interval)

    def _trace_start(self, interval: float) -> None:
        """Record the mean bytes in every ring and every device's queue and busy servers
        over each ``interval``: one event per interval, nothing on the hot path."""
        env = self.env
        levels: list[tuple[str, str, str, Level, float]] = []
        for d in self.devices.values():
            for k, s in enumerate(d.members()):  # a teamed NIC's other members by name
                name = d.name if k == 0 else s.name
                levels.append((name, d.kind, "queue", s.queue_level, 1.0))
                levels.append((name, d.kind, "busy", s.busy, 1.0 / s.capacity))
        for ch in self.channels:
            for ring in (ch.outbound, ch.inbound):
                levels.append((ring.name, "ring", "bytes", ring.level, 1.0))
        last = [0.0] * len(levels)
        end = env.scenario.run.duration

        def sample(_ev: object) -> None:
            now = env.now
            for i, (name, kind, quantity, level, scale) in enumerate(levels):
                area = level.area()
                value = (area - last[i]) / interval * scale
                self.trace.append(TraceRecord(now, name, kind, quantity, value))
                last[i] = area
            if now + interval <= end + 1e-9:
                env.after(interval, sample)

        env.after(interval, sample)

    def reset(self) -> None:
        """End of warm-up: forget counters, CPU accounts and level histories."""
        self.env.counters.clear()
        self.hv.reset()
        for d in self.devices.values():
            d.reset()
        for ch in self.channels:
            ch.outbound.level.reset()
            ch.inbound.level.reset()

    def collect(self, replication: int, wall_s: float) -> RunData:
        """The records of the run so far."""
        env, scn = self.env, self.env.scenario
        self.hv.flush(closing=True)
        streams = []
        for s in self.streams:
            in_flight = rows_array([r.record(float("nan")) for r in s.live.values()])
            issued = s.issued
            log = s.done
            log.close()
            if len(log) + len(s.failed) + len(in_flight) != issued:
                raise ConservationError(
                    f"{s.key}: {len(log)} completed + {len(s.failed)} failed + "
                    f"{len(in_flight)} in flight != {issued} issued"
                )
            lean: dict[str, Any] = {}
            if log.keep != "all":  # sample N / none: columns, marks, sums, the sample
                lean = {"lean": log.columns(), "seen": log.seen, **log.summary()}
            attempts, paths = dict(s.attempts), dict(s.paths)
            if s.tolerant:  # the attempt now in flight of each live request
                for r in s.live.values():
                    if r.attempt > 1:
                        attempts[r.id] = r.attempt
                    if r.path is not s.home:
                        paths[r.id] = r.path.name
            streams.append(
                StreamData(
                    s.child.name,
                    s.index,
                    s.child.requested_path,
                    s.io_path or s.child.io_path,
                    s.device_name,
                    s.ops,
                    log.whole() if log.keep == "all" else rows_array([]),
                    in_flight,
                    s.spec.rate,
                    failed=rows_array(s.failed),
                    failures=s.failures,
                    attempts=attempts,
                    paths=paths,
                    issued=issued,
                    trips=s.trips,  # empty under sample / none: the times are in the sums
                    **lean,
                )
            )
        cpu = [
            CpuRecord(v.partition, v.name, cat, us)
            for v in self.hv.vcpus
            for cat, us in sorted(v.busy_us.items())
            if us > 0
        ]
        sched = [
            SchedRecord(
                v.partition,
                v.name,
                v.wakeups,
                v.wake_total,
                v.wake_max,
                v.dispatches,
                v.preemptions,
                v.boosts,
            )
            for v in self.hv.vcpus
        ]
        resources: list[ResourceRecord] = []
        for d in self.devices.values():
            q = d.servers.queue_level
            resources.append(ResourceRecord(d.name, d.kind, d.utilization(), q.mean(), q.max))
            for port in d.members()[1:]:  # a teamed NIC's other member ports
                q = port.queue_level
                busy = port.busy.mean() / port.capacity
                resources.append(ResourceRecord(port.name, d.kind, busy, q.mean(), q.max))
        for ch in self.channels:
            for ring in (ch.outbound, ch.inbound):
                lvl = ring.level
                resources.append(
                    ResourceRecord(
                        ring.name, "ring", lvl.mean() / ring.capacity, lvl.mean(), lvl.max
                    )
                )
        return RunData(
            replication=replication,
            seed=env.seed,
            warmup_us=scn.run.warmup,
            duration_us=scn.run.duration,
            cores=scn.host.cores,
            streams=streams,
            cpu=cpu,
            counters={
                **env.counters,
                **({"vf_fallbacks": self.fallbacks} if self.fallbacks else {}),
                **(
                    {"vf_revoke_fallbacks": self.injector.revocations}
                    if self.injector is not None and self.injector.revocations
                    else {}
                ),
            },
            resources=resources,
            sched=sched,
            lp_busy_us=[lp.busy_us for lp in self.hv.lps],
            trace=self.trace,
            wall_s=wall_s,
        )


PROGRESS_STEPS = 50
"""With a progress callback, a replication runs in this many equal slices of simulated
time, reporting after each (the results are the same: the slice ends are stop events of
the highest priority, which move no other event)."""


def simulate(
    scenario: Scenario,
    replication: int = 0,
    seed: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> RunData:
    """Run one replication of ``scenario`` and return its records; ``progress`` (if given)
    is called with the simulated µs done since its last call."""
    env = SimEnv(scenario, scenario.run.seed if seed is None else seed, replication)
    host = Host(env)
    host.start()
    t0 = time.perf_counter()
    end = scenario.run.duration
    if progress is None:
        env.run(until=end)
    else:
        done = 0.0
        for k in range(1, PROGRESS_STEPS + 1):
            until = end if k == PROGRESS_STEPS else end * k / PROGRESS_STEPS
            if until > env.now:
                env.run(until=until)
            progress(until - done)
            done = until
    return host.collect(replication, time.perf_counter() - t0)
