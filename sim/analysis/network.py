"""The queueing network of a scenario's paths (:mod:`sim.analysis.analytic` solves it):
each request class's legs through the stations it visits, with the scenario's costs and
visit counts, where its time goes in the latency components, and the IOTLB's miss ratio
from its stack distance."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.analysis.queueing import (
    Moments,
    Station,
    bernoulli,
    const,
    dist_moments,
    each_size,
    of_size,
    segmented,
)
from sim.model.metrics import (
    COMPONENTS,
    DEVICE_QUEUE,
    DEVICE_SERVICE,
    GUEST_CPU,
    GUEST_QUEUE,
    INTERRUPT,
    IOMMU,
    PARENT_CPU,
    PARENT_QUEUE,
    RING_WAIT,
    SCHED_WAIT,
)
from sim.scenario import names
from sim.scenario.hardware import Disk, Nic, Nvme, interrupt_vcpu
from sim.scenario.plan import Placement
from sim.scenario.schema import Scenario
from sim.scenario.workload import Stream


# ---------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------
@dataclass
class Leg:
    """One stage of a request class: a visit to a station (or a pure delay), and where
    its time goes in the latency components."""

    stage: str
    station: Station | None
    wait_to: int | None  # component its queueing wait is charged to
    service: dict[int, float]  # component → mean µs
    setup: bool = False  # the station's world-switch share is charged as sched_wait
    approx: float = 0.0  # µs of the service that rests on an approximation (IOMMU walks)
    delay: float = 0.0  # µs of the service spent off the station (a pure delay)

    def demand(self) -> float:
        """Mean µs the visit holds its station: its service there and, when it pays
        them, its share P₀·d of the world switches."""
        st = self.station
        if st is None:
            return 0.0
        at = sum(self.service.values()) - self.delay
        return at + (st.p_idle * st.setup if self.setup else 0.0)


@dataclass
class Klass:
    """Requests of one stream issued on one vCPU of one child."""

    child: str
    path: str
    stream: int
    rate: float  # per µs
    legs: list[Leg]
    closed: Stream | None = None
    # per station: its wait per µs of this class's service there, where a closed-loop
    # solution (:func:`sim.analysis.mva.schweitzer`) replaces the open network's wait
    stretch: dict[str, float] | None = None

    def wait(self, leg: Leg) -> float:
        """Mean queueing wait of one visit of ``leg`` (0 for a pure delay)."""
        st = leg.station
        if st is None or leg.wait_to is None:
            return 0.0
        if self.stretch is not None and st.name in self.stretch:
            return self.stretch[st.name] * leg.demand()
        return st.wait

    def latency(self) -> tuple[float, np.ndarray, float]:
        """Mean latency, its components, and the part resting on the approximations."""
        comps = np.zeros(len(COMPONENTS))
        approx = 0.0
        for leg in self.legs:
            for k, v in leg.service.items():
                comps[k] += v
            st = leg.station
            if st is None:
                continue
            if leg.wait_to is not None:
                wait = self.wait(leg)
                comps[leg.wait_to] += wait
                approx += wait
            if leg.setup and st.setup:
                share = st.p_idle * st.setup
                comps[SCHED_WAIT] += share
                approx += share
        approx += sum(leg.approx for leg in self.legs)
        return float(comps.sum()), comps, approx


class Network:
    """The stations and request classes of a scenario at given rates and signal
    probabilities."""

    def __init__(
        self,
        scn: Scenario,
        placed: list[Placement],
        rates: dict[tuple[str, int], float],
        signal_out: dict[str, float],
        signal_in: dict[str, float],
        sizes: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]],
        bound: bool = False,
    ) -> None:
        self.scn = scn
        self.sizes = sizes
        self.stations: dict[str, Station] = {}
        self.classes: list[Klass] = []
        self.channels: dict[str, tuple[float, str, list[tuple[float, str]]]] = {}
        h = scn.host
        self.irq = 0.0 if h.posted_interrupts else h.costs.interrupt_exit + h.costs.eoi_exit
        self.dispatch = 0.0 if bound else h.costs.vcpu_dispatch
        self.bound = bound
        self.lp_work = 0.0
        self.lp_bound = 0.0
        self.seg = Moments(1.0, 0.0)  # segments per request of the stream being built
        # of the stream being built: the guest stack's CPU per request, the parent
        # driver's map and unmap (with its strict invalidation)
        self.stack = Moments(0.0, 0.0)
        self.parent_map = Moments(0.0, 0.0)
        self.parent_unmap = Moments(0.0, 0.0)
        self._iommu = iotlb_miss(scn, placed, rates, sizes)
        for p in placed:
            if p.path == "none":
                continue
            for j, s in p.streams():
                rate = rates.get((p.name, j), 0.0)
                if rate > 0:
                    self._stream(p, j, s, rate, signal_out, signal_in)

    # -- stations ---------------------------------------------------------------------
    def _vcpu(self, name: str, resource: str, native: bool = False) -> Station:
        st = self.stations.get(name)
        if st is None:
            setup = 0.0 if native else self.dispatch
            st = self.stations[name] = Station(name, resource, "vcpu", 1, setup)
        return st

    def _virt(self, p: Placement) -> float:
        """CPU virtualization's cost per request of ``p``'s child (0 on bare metal), paid
        with its completion (sim.model.partitions)."""
        if p.path in ("native", "parent"):  # the parent's own work: no guest beneath it
            return 0.0
        g = p.spec.guest
        return self.scn.host.cpu_virtualization.per_request(
            g.syscalls_per_request, g.privileged_ops_per_request, g.page_table_updates_per_request
        )

    def _device(self, device: str, name: str | None = None) -> Station:
        """The station of ``device`` (``name``: one member port of a teamed NIC)."""
        name = name or device
        st = self.stations.get(name)
        if st is None:
            dev = self.scn.device(device)
            if isinstance(dev, Nic):
                st = Station(name, f"device {device}", "port", 1)
            elif isinstance(dev, Disk):  # spindles as servers of one queue (no striping)
                st = Station(name, f"device {name}", "spindles", dev.spindles)
            else:
                st = Station(name, f"device {name}", "channels", dev.channels)
            self.stations[name] = st
        return st

    def _visit(self, st: Station, rate: float, service: Moments, mandatory: float) -> None:
        st.add(rate, service, mandatory)
        if st.kind == "vcpu":
            self.lp_work += rate * service.mean
            self.lp_bound += rate * mandatory

    # -- a stream's request classes ------------------------------------------------------
    def _stream(
        self,
        p: Placement,
        j: int,
        s: Stream,
        rate: float,
        signal_out: dict[str, float],
        signal_in: dict[str, float],
    ) -> None:
        scn, spec = self.scn, p.spec
        dev = scn.device(p.device or "")
        sizes, probs = self.sizes[(p.name, j)]
        ops = {op: w / sum(s.op.values()) for op, w in s.op.items()}
        native = p.path == "native"
        vcpus = [s.vcpu] if s.vcpu is not None else list(range(spec.vcpus))
        share = rate / len(vcpus)
        g = spec.guest
        # the device: its service and what precedes it, per request of this stream
        miss = self._iommu.get(p.name, 0.0) if p.path == "direct" else 0.0
        walk = scn.host.iommu.page_walk
        pages = each_size(scn.host.iommu.pages)
        translate = of_size(sizes, probs, lambda x: miss * walk * pages(x))
        if isinstance(dev, Nic):
            wire = of_size(sizes, probs, each_size(dev.wire_time))
            delay = dist_moments(dev.latency)
            dev_service, dev_delay = wire, delay.mean
        elif isinstance(dev, Disk):  # positioning in arrival order: no reordering
            mean, var = dev.positioning_moments()
            transfer_time = each_size(dev.transfer_time)
            transfer = of_size(sizes, probs, lambda x: transfer_time(x) + miss * walk * pages(x))
            dev_service, dev_delay = Moments(mean, var) + transfer, 0.0
        else:
            assert isinstance(dev, Nvme)
            media_mean = sum(w * dev.media(op).mean for op, w in ops.items())
            media_second = sum(
                w * dev.media(op).variance + w * dev.media(op).mean ** 2 for op, w in ops.items()
            )
            media = Moments(media_mean, media_second - media_mean**2)
            transfer_time = each_size(dev.transfer_time)
            transfer = of_size(sizes, probs, lambda x: transfer_time(x) + miss * walk * pages(x))
            dev_service, dev_delay = media + transfer, 0.0
        # the sending stack's per-request costs are per segment on a NIC without TSO
        if isinstance(dev, Nic) and not dev.tso:
            seg = of_size(sizes, probs, each_size(dev.frames))
        else:
            seg = Moments(1.0, 0.0)
        self.seg = seg
        # the guest stack on a NIC: per packet (per segment where the stack segments:
        # direct, native, routed without virtual TSO; otherwise the virtual NICs take
        # whole requests) and the user copy
        if isinstance(dev, Nic) and g.has_stack:
            vnic = p.spec.vnic
            if p.path in ("direct", "native", "parent"):
                packets = seg
            elif p.path == "routed" and vnic is not None and not vnic.tso:
                packets = of_size(sizes, probs, each_size(dev.frames))  # virtual TSO off
            else:
                packets = Moments(1.0, 0.0)
            copy = of_size(sizes, probs, each_size(g.copy_cost))
            self.stack = segmented(g.packet_cost, packets) + copy
        else:
            self.stack = Moments(0.0, 0.0)
        # the parent driver's DMA mapping (host.iommu.parent): map before, unmap after
        io, pmode = scn.host.iommu, scn.host.iommu.parent
        self.parent_map = of_size(sizes, probs, each_size(lambda x: io.host_map_cost(pmode, x)))
        self.parent_unmap = of_size(
            sizes, probs, each_size(lambda x: io.host_unmap_cost(pmode, x))
        ) + const(io.host_invalidation(pmode))
        # a teamed NIC: hash, the member port of the stream's flow; round robin, every
        # member takes every n-th request, so one member stands for all at rate / n
        member, visits = dev.name, rate
        team = dev.team if isinstance(dev, Nic) else None
        if team is not None and team.policy == "hash":
            k = team.port_of(f"{p.name}/{j}")
            member = dev.name if k == 0 else f"{dev.name}.port[{k}]"
        elif team is not None:
            visits = rate / team.ports
        device = self._device(dev.name, member)
        dev_mean_no_iommu = dev_service.mean - (0.0 if isinstance(dev, Nic) else translate.mean)
        self._visit(device, visits, dev_service, dev_service.mean)
        dev_leg = Leg(
            "device",
            device,
            DEVICE_QUEUE,
            {DEVICE_SERVICE: dev_mean_no_iommu + dev_delay, IOMMU: translate.mean},
            approx=translate.mean,
            delay=dev_delay + (translate.mean if isinstance(dev, Nic) else 0.0),
        )

        # a domain's DMA mapping per request: a native host's (host.iommu.native), the
        # hypervisor's drivers' (host.iommu.hypervisor), a direct child's behind its
        # virtual IOMMU (host.iommu.mode, each request of it an exit: trap)
        def host_dma(mode: str, trap: float | None = None) -> tuple[float, float]:
            mapped = of_size(sizes, probs, each_size(lambda x: sum(io.map_costs(mode, x, trap))))
            unmapped = of_size(
                sizes, probs, each_size(lambda x: sum(io.unmap_costs(mode, x, trap)))
            )
            return mapped.mean, unmapped.mean + io.host_invalidation(mode)

        native_map, native_unmap = host_dma(io.native)

        for i in vcpus:
            done = spec.irq_vcpu if spec.irq_vcpu is not None else i
            owner = "parent vCPUs" if p.path == "parent" else f"vCPUs of {p.name}"
            v_sub = self._vcpu(names.vcpu(p.name, i), owner, native)
            v_done = self._vcpu(names.vcpu(p.name, done), owner, native)
            legs: list[Leg] = []
            virt = self._virt(p)
            if p.path == "parent":
                legs = self._parent(v_sub, v_done, share, dev_leg)
            elif p.path in ("direct", "native"):
                if p.path == "direct":  # the guest's, behind its virtual IOMMU
                    mode = p.spec.iommu_mode(io.mode)
                    map_cost, unmap = host_dma(mode, scn.host.costs.device_model_exit)
                else:  # the host kernel's DMA API (host.iommu.native)
                    map_cost, unmap = native_map, native_unmap
                irq = self.irq if p.path == "direct" else 0.0
                sub = segmented(g.submit_cost, seg) + self.stack + const(map_cost)
                com = dist_moments(g.complete_cost) + const(irq + unmap + virt)
                self._visit(v_sub, share, sub, sub.mean)
                self._visit(v_done, share, com, com.mean)
                legs = [
                    Leg(
                        "child vCPU: driver",
                        v_sub,
                        GUEST_QUEUE,
                        {GUEST_CPU: sub.mean - map_cost, IOMMU: map_cost},
                        True,
                    ),
                    dev_leg,
                    Leg(
                        "interrupt + child vCPU: completion",
                        v_done,
                        GUEST_QUEUE,
                        {INTERRUPT: irq, GUEST_CPU: g.complete_cost.mean + virt, IOMMU: unmap},
                        True,
                    ),
                ]
            elif p.path == "hypervisor":
                hio, kick = scn.host.hypervisor_io, scn.host.costs.doorbell_exit
                hv_map, hv_unmap = host_dma(scn.host.iommu.hypervisor)
                stack = segmented(hio.request_cost, seg)
                sub = dist_moments(g.submit_cost) + stack + self.stack + const(kick + hv_map)
                com = (
                    dist_moments(hio.completion_cost)
                    + dist_moments(g.complete_cost)
                    + const(self.irq + virt + hv_unmap)
                )
                self._visit(v_sub, share, sub, sub.mean)
                self._visit(v_done, share, com, com.mean)
                legs = [
                    Leg(
                        "child vCPU: PV driver, doorbell, hypervisor stack",
                        v_sub,
                        GUEST_QUEUE,
                        {
                            GUEST_CPU: g.submit_cost.mean + stack.mean + self.stack.mean,
                            INTERRUPT: kick,
                            IOMMU: hv_map,
                        },
                        True,
                    ),
                    dev_leg,
                    Leg(
                        "child vCPU: hypervisor completion, interrupt, driver",
                        v_done,
                        GUEST_QUEUE,
                        {
                            GUEST_CPU: hio.completion_cost.mean + g.complete_cost.mean + virt,
                            INTERRUPT: self.irq,
                            IOMMU: hv_unmap,
                        },
                        True,
                    ),
                ]
            elif p.path == "routed":
                legs = self._routed(
                    p, i, done, v_sub, v_done, share, sizes, probs, dev_leg, signal_out, signal_in
                )
            elif p.path == "emulated":
                legs = self._emulated(p, v_sub, v_done, share, sizes, probs, dev_leg)
            self.classes.append(Klass(p.name, p.path, j, share, legs, s if s.closed else None))

    def _parent(self, v_sub: Station, v_done: Station, share: float, dev_leg: Leg) -> list[Leg]:
        """The parent's own stream: its physical driver (per segment) and DMA map on the
        issuing parent vCPU, the device, the interrupt, ISR/DPC and unmap on the
        completing one; the same stations as the routed channels they share."""
        drv = self.scn.parent.driver
        request = segmented(drv.request_cost, self.seg) + self.stack  # parent.stack
        sub = request + self.parent_map
        cpl = const(self.irq) + dist_moments(drv.interrupt_cost) + self.parent_unmap
        self._visit(v_sub, share, sub, sub.mean)
        self._visit(v_done, share, cpl, cpl.mean)
        return [
            Leg(
                "parent vCPU: driver",
                v_sub,
                PARENT_QUEUE,
                {PARENT_CPU: request.mean, IOMMU: self.parent_map.mean},
                True,
            ),
            dev_leg,
            Leg(
                "interrupt + parent vCPU: ISR/DPC, unmap",
                v_done,
                PARENT_QUEUE,
                {
                    INTERRUPT: self.irq,
                    PARENT_CPU: drv.interrupt_cost.mean,
                    IOMMU: self.parent_unmap.mean,
                },
                True,
            ),
        ]

    def _routed(
        self,
        p: Placement,
        i: int,
        done: int,
        v_sub: Station,
        v_done: Station,
        share: float,
        sizes: np.ndarray,
        probs: np.ndarray,
        dev_leg: Leg,
        signal_out: dict[str, float],
        signal_in: dict[str, float],
    ) -> list[Leg]:
        scn, g = self.scn, p.spec.guest
        par = scn.parent
        n = len(p.parent_vcpus)
        ch = f"{p.name}{'' if p.on is None else '.' + p.on}.channel[{i % n}]"
        pv = self._vcpu(names.vcpu("parent", p.parent_vcpus[i % n]), "parent vCPUs")
        dev = scn.device(p.device or "")
        k = interrupt_vcpu(dev)  # a single-queue NIC: every interrupt on one vCPU
        cpv = self._vcpu(names.vcpu("parent", k), "parent vCPUs") if k is not None else pv
        po = 0.0 if self.bound else signal_out.get(ch, 1.0)
        pi = 0.0 if self.bound else signal_in.get(ch, 1.0)
        hc, irq = scn.host.costs.hypercall, self.irq
        vm = par.vmbus
        vnic = p.spec.vnic
        if vnic is not None and not vnic.tso and isinstance(dev, Nic):
            # no virtual TSO: MTU packets, each through the VSC, the VSP and the driver
            nic = dev

            def packets_transfer(x: float) -> float:
                return sum(par.vsp.transfer_cost(q, vm.pages(q)) for q in nic.pieces(int(x)))

            vseg = of_size(sizes, probs, each_size(dev.frames))
            seg = vseg  # max(port's segments, packets): the packets either way
            transfer = of_size(sizes, probs, each_size(packets_transfer))
        else:
            vseg, seg = Moments(1.0, 0.0), self.seg
            transfer = of_size(
                sizes, probs, each_size(lambda x: par.vsp.transfer_cost(x, vm.pages(x)))
            )
        submit = segmented(g.submit_cost, vseg)
        complete = segmented(g.complete_cost, vseg)
        vsp_done = segmented(par.vsp.completion_cost, vseg)
        sub = submit + self.stack + bernoulli(po, hc)
        pmap, punmap = self.parent_map, self.parent_unmap
        req = (
            bernoulli(po, irq)
            + segmented(par.vsp.request_cost, seg)
            + transfer
            + segmented(par.driver.request_cost, seg)
            + pmap
        )
        cpl = const(irq) + dist_moments(par.driver.interrupt_cost) + vsp_done + punmap
        cpl = cpl + bernoulli(pi, hc)
        virt = self._virt(p)
        com = bernoulli(pi, irq) + complete + const(virt)
        self._visit(v_sub, share, sub, submit.mean + self.stack.mean)
        self._visit(pv, share, req, req.mean - po * irq)
        self._visit(cpv, share, cpl, cpl.mean - pi * hc)
        self._visit(v_done, share, com, complete.mean + virt)
        # the entries of this channel that wait in its rings, for the signal probabilities
        waiting = self.channels.setdefault(ch, (0.0, pv.name, []))
        self.channels[ch] = (waiting[0] + share, pv.name, [*waiting[2], (share, v_done.name)])
        vsp_req = req.mean - po * irq - pmap.mean
        return [
            Leg(
                "child vCPU: VSC, signal",
                v_sub,
                GUEST_QUEUE,
                {GUEST_CPU: submit.mean + self.stack.mean, INTERRUPT: po * hc},
                True,
            ),
            Leg(
                "ring → parent vCPU: VSP, driver",
                pv,
                RING_WAIT,
                {INTERRUPT: po * irq, PARENT_CPU: vsp_req, IOMMU: pmap.mean},
                True,
            ),
            dev_leg,
            Leg(
                "parent vCPU: completion, unmap, signal",
                cpv,
                PARENT_QUEUE,
                {
                    INTERRUPT: irq + pi * hc,
                    PARENT_CPU: par.driver.interrupt_cost.mean + vsp_done.mean,
                    IOMMU: punmap.mean,
                },
                True,
            ),
            Leg(
                "ring → child vCPU: interrupt, VSC",
                v_done,
                RING_WAIT,
                {INTERRUPT: pi * irq, GUEST_CPU: complete.mean + virt},
                True,
            ),
        ]

    def _emulated(
        self,
        p: Placement,
        v_sub: Station,
        v_done: Station,
        share: float,
        sizes: np.ndarray,
        probs: np.ndarray,
        dev_leg: Leg,
    ) -> list[Leg]:
        scn, spec, g = self.scn, p.spec, p.spec.guest
        par, em = scn.parent, spec.emulated
        pv = self._vcpu(names.vcpu("parent", p.parent_vcpus[0]), "parent vCPUs")
        exits = em.exits_per_request * scn.host.costs.device_model_exit
        hc, irq = scn.host.costs.hypercall, self.irq
        copy = of_size(sizes, probs, each_size(lambda x: par.vsp.transfer_cost(x, 0)))
        sub = dist_moments(g.submit_cost) + self.stack + const(exits)
        model = dist_moments(em.access_cost, em.exits_per_request)
        model = model + segmented(par.vsp.request_cost, self.seg) + copy
        pmap, punmap = self.parent_map, self.parent_unmap
        req = model + segmented(par.driver.request_cost, self.seg) + pmap
        cpl = (
            const(irq + hc)
            + dist_moments(par.driver.interrupt_cost)
            + dist_moments(par.vsp.completion_cost)
            + punmap
        )
        virt = self._virt(p)
        com = const(irq + virt) + dist_moments(g.complete_cost)
        for st, m in ((v_sub, sub), (pv, req), (pv, cpl), (v_done, com)):
            self._visit(st, share, m, m.mean)
        return [
            Leg(
                "child vCPU: driver, register exits",
                v_sub,
                GUEST_QUEUE,
                {GUEST_CPU: g.submit_cost.mean + self.stack.mean, INTERRUPT: exits},
                True,
            ),
            Leg(
                "parent vCPU: device model, driver",
                pv,
                PARENT_QUEUE,
                {PARENT_CPU: req.mean - pmap.mean, IOMMU: pmap.mean},
                True,
            ),
            dev_leg,
            Leg(
                "parent vCPU: completion, unmap, interrupt injection",
                pv,
                PARENT_QUEUE,
                {
                    INTERRUPT: irq + hc,
                    PARENT_CPU: par.driver.interrupt_cost.mean + par.vsp.completion_cost.mean,
                    IOMMU: punmap.mean,
                },
                True,
            ),
            Leg(
                "interrupt + child vCPU: completion",
                v_done,
                GUEST_QUEUE,
                {INTERRUPT: irq, GUEST_CPU: g.complete_cost.mean + virt},
                True,
            ),
        ]

    def solve(self) -> None:
        for st in self.stations.values():
            st.solve()

    def signals(self) -> tuple[dict[str, float], dict[str, float]]:
        """Probability that each channel's outbound (inbound) ring is empty when an entry
        goes in: 1 − the entries waiting in it (Little), at least 0."""
        out, inb = {}, {}
        for ch, (lam, pv, done) in self.channels.items():
            w = self.stations[pv].wait
            out[ch] = max(0.0, 1.0 - lam * w) if math.isfinite(w) else 0.0
            waiting = sum(rate * self.stations[v].wait for rate, v in done)
            inb[ch] = max(0.0, 1.0 - waiting) if math.isfinite(waiting) else 0.0
        return out, inb


def iotlb_miss(
    scn: Scenario,
    placed: list[Placement],
    rates: dict[tuple[str, int], float],
    size_table: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]],
) -> dict[str, float]:
    """Share of a direct child's page lookups that miss the IOTLB (module docstring)."""
    io = scn.host.iommu
    # one domain per direct child, shared by its VFs on several devices (sim.model.host)
    routes = [p for p in placed if p.path == "direct"]
    direct = list({p.name: p for p in routes}.values())
    lam: dict[str, float] = {}
    pages: dict[str, float] = {}
    for p in direct:
        total, pg = 0.0, 0.0
        for q in routes:
            if q.name != p.name:
                continue
            for j, _ in q.streams():
                r = rates.get((p.name, j), 0.0)
                sizes, probs = size_table[(p.name, j)]
                total += r
                pg += r * float(np.dot(probs, each_size(io.pages)(sizes)))
        lam[p.name] = total
        pages[p.name] = pg / total if total > 0 else 1.0
    out = {}
    page = np.array([pages[p.name] for p in direct])
    rate = np.array([lam[p.name] for p in direct])
    ring = io.dma_buffers * page
    for i, p in enumerate(direct):
        me = lam[p.name]
        if me <= 0:
            continue
        mode = p.spec.iommu_mode(io.mode)
        if mode == "strict":
            out[p.name] = 1.0
            continue
        cycle = io.dma_buffers / me  # µs between two uses of a buffer
        # its own ring, then what each other direct child touches meanwhile, added in order
        others = np.minimum(ring, rate * cycle * page)
        seq = np.concatenate([[ring[i]], others[:i], others[i + 1 :]])
        distinct = float(np.cumsum(seq)[-1])
        if distinct > io.iotlb_entries:
            out[p.name] = 1.0
        elif mode == "deferred":  # the first pass after each flush
            out[p.name] = min(1.0, io.dma_buffers / (me * io.deferred_flush_interval))
        else:
            out[p.name] = 0.0
    return out
