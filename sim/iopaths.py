"""The I/O paths: what a request does, step by step (DESIGN §3.2).

Each path's :meth:`walk` is one generator that a request runs from submission to
completion; steps are inlined (``yield from``) rather than spawned, and costs that meet no
contention on one vCPU are summed into one timeout. Every µs of the request's latency is
added to exactly one component (:mod:`sim.metrics`).

**routed** (Hyper-V synthetic device; Xen split driver)
    1. VSC cost on the issuing child vCPU; the descriptor goes into the channel's outbound
       ring (a full ring blocks: ``ring_wait``). If the ring was empty the child signals
       the parent: a hypercall exit on the child's vCPU.
    2. The parent vCPU serving the channel takes the entry out of the ring (the wait for it
       is ``ring_wait``, or ``sched_wait`` while that vCPU is not on an LP). On a signal it
       first takes the interrupt (exits unless posted). VSP cost, payload transfer (copy
       or page list), physical driver cost: ``parent_cpu``.
    3. Device, through the physical function.
    4. Completion interrupt to the same parent vCPU (waiting behind its other work is
       ``parent_queue``): driver ISR/DPC and VSP completion cost; the completion goes
       into the inbound ring, with a signal (hypercall exit on
       the parent) when the ring was empty.
    5. The child's completing vCPU takes it out of the ring (``ring_wait``), takes the
       interrupt when one was signalled, and runs the VSC completion cost.

**direct** (SR-IOV VF, DDA)
    1. Guest driver cost on the child vCPU (plus the map cost in ``strict`` and
       ``deferred`` IOMMU mode); the MMIO doorbell is a mapped BAR write, no exit.
    2. Device through the child's VF; its DMA goes to the next buffer of the child's ring
       and every page of it is looked up in the host's shared IOTLB, a miss costing a
       page walk (:mod:`sim.iommu`).
    3. The MSI is remapped and delivered to the completing vCPU: no exit when posted,
       an external-interrupt exit and an EOI exit otherwise; a vCPU that is not running
       waits to be scheduled. Guest completion cost (plus unmap and invalidation of the
       buffer's pages in ``strict`` mode; in ``deferred`` mode the unmap is queued for
       the next batch flush).

**native**: the same workload on bare metal, the reference for the "virtualization tax":
as direct, with no IOMMU, no exits and no world switch.

A child that asks for ``direct`` and finds no free VF on its device falls back to
``routed`` (Hyper-V behaviour); :mod:`sim.model` decides, and the results say so.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Protocol

import simpy

from sim.devices import Device
from sim.env import SimEnv
from sim.hypervisor import Hypervisor, VCpu
from sim.iommu import DmaDomain
from sim.metrics import (
    GUEST_CPU,
    GUEST_QUEUE,
    INTERRUPT,
    IOMMU,
    PARENT_CPU,
    PARENT_QUEUE,
    RING_WAIT,
    SCHED_WAIT,
)
from sim.partitions import ChildPartition, ParentPartition
from sim.vmbus import Channel, Ring
from sim.workloads import Request

Walk = Generator[simpy.Event, Any, None]


class Path(Protocol):
    """What a stream needs of an I/O path."""

    name: str

    def walk(self, req: Request) -> Walk:
        """Run ``req`` from submission to completion."""
        ...


def _into_ring(
    env: SimEnv, req: Request, v: VCpu, ring: Ring, nbytes: int, hypercall: float, queue: int
) -> Generator[simpy.Event, Any, bool]:
    """Called while holding ``v``: put an entry into ``ring``, signal on empty → non-empty,
    and release ``v``. Returns whether a signal was sent. ``queue`` is the component that
    waiting for ``v`` again (after a full ring) is charged to."""
    c = req.c
    signal = ring.try_put(nbytes)
    if signal is not None:
        if signal:
            env.counters[ring.signal_counter] += 1
            env.counters["exits.hypercall"] += 1
            yield v.hold(("exit", hypercall))
            c[INTERRUPT] += hypercall
        v.release()
        return signal
    # full: the writer gives up its vCPU and blocks until space is reserved for it
    v.release()
    blocked, signal = yield from ring.put(nbytes)
    c[RING_WAIT] += blocked
    if signal:
        env.counters[ring.signal_counter] += 1
        env.counters["exits.hypercall"] += 1
        sched, queued = yield from v.acquire()
        debt = v.take_debt()
        yield v.hold(("exit", hypercall), ("hypervisor", debt))
        v.release()
        c[SCHED_WAIT] += sched + debt
        c[queue] += queued
        c[INTERRUPT] += hypercall
    return signal


class RoutedPath:
    """Child → VMBus → parent's VSP and driver → device, and back."""

    name = "routed"

    def __init__(
        self,
        env: SimEnv,
        hv: Hypervisor,
        child: ChildPartition,
        parent: ParentPartition,
        device: Device,
        channel: Channel,
        parent_vcpu: VCpu,
        hypercall: float,
    ) -> None:
        self.env = env
        self.hv = hv
        self.child = child
        self.parent = parent
        self.device = device
        self.channel = channel
        self.parent_vcpu = parent_vcpu
        self.hypercall = hypercall

    def walk(self, req: Request) -> Walk:
        env, hv, child, parent, ch = self.env, self.hv, self.child, self.parent, self.channel
        c = req.c
        # 1. VSC on the issuing vCPU, descriptor into the outbound ring
        v = req.vcpu
        sched, queued = yield from v.acquire()
        debt = v.take_debt()
        cost = child.submit_cost()
        yield v.hold(("vsc", cost), ("hypervisor", debt))
        c[SCHED_WAIT] += sched + debt
        c[GUEST_QUEUE] += queued
        c[GUEST_CPU] += cost
        out = ch.outbound
        pages = ch.pages(req.size)
        nbytes = ch.entry_bytes(req.size)
        signalled = yield from _into_ring(env, req, v, out, nbytes, self.hypercall, GUEST_QUEUE)

        # 2. the parent's VSP takes it out of the ring; VSP and physical driver
        pv = self.parent_vcpu
        sched, queued = yield from pv.acquire()
        out.take(nbytes)
        debt = pv.take_debt()
        irq = hv.interrupt(pv) if signalled else 0.0
        vsp = parent.vsp_request() + parent.transfer_cost(req.size, pages)
        drv = parent.driver_request()
        yield pv.hold(("exit", irq), ("vsp", vsp), ("driver", drv), ("hypervisor", debt))
        pv.release()
        c[SCHED_WAIT] += sched + debt
        c[RING_WAIT] += queued
        c[INTERRUPT] += irq
        c[PARENT_CPU] += vsp + drv

        # 3. the device, through the physical function
        yield from self.device.serve(req, 0.0)

        # 4. completion interrupt on the parent: driver ISR/DPC, VSP completion, inbound ring
        sched, queued = yield from pv.acquire()
        debt = pv.take_debt()
        irq = hv.interrupt(pv)
        drv = parent.driver_interrupt()
        vsp = parent.vsp_completion()
        yield pv.hold(("exit", irq), ("driver", drv), ("vsp", vsp), ("hypervisor", debt))
        c[SCHED_WAIT] += sched + debt
        c[PARENT_QUEUE] += queued
        c[INTERRUPT] += irq
        c[PARENT_CPU] += drv + vsp
        inbound = ch.inbound
        signalled = yield from _into_ring(
            env, req, pv, inbound, nbytes, self.hypercall, PARENT_QUEUE
        )

        # 5. the child's VSC takes the completion out of the inbound ring
        v = req.done_vcpu
        sched, queued = yield from v.acquire()
        inbound.take(nbytes)
        debt = v.take_debt()
        irq = hv.interrupt(v) if signalled else 0.0
        cost = child.complete_cost()
        yield v.hold(("exit", irq), ("vsc", cost), ("hypervisor", debt))
        v.release()
        c[SCHED_WAIT] += sched + debt
        c[RING_WAIT] += queued
        c[INTERRUPT] += irq
        c[GUEST_CPU] += cost


class AssignedPath:
    """The child's own driver on a device function: ``direct`` (a VF through the IOMMU)
    or ``native`` (bare metal: no IOMMU, no exits)."""

    def __init__(
        self,
        env: SimEnv,
        hv: Hypervisor,
        child: ChildPartition,
        device: Device,
        name: str,
        virtualized: bool,
        dma: DmaDomain | None,
    ) -> None:
        self.env = env
        self.hv = hv
        self.child = child
        self.device = device
        self.name = name
        self.virtualized = virtualized
        self.dma = dma

    def walk(self, req: Request) -> Walk:
        env, child, dma = self.env, self.child, self.dma
        c = req.c
        map_cost = dma.map_cost if dma is not None else 0.0
        # 1. guest driver on the issuing vCPU; MMIO doorbell without exit
        v = req.vcpu
        sched, queued = yield from v.acquire()
        debt = v.take_debt()
        cost = child.submit_cost()
        yield v.hold(("guest", cost + map_cost), ("hypervisor", debt))
        v.release()
        c[SCHED_WAIT] += sched + debt
        c[GUEST_QUEUE] += queued
        c[GUEST_CPU] += cost
        c[IOMMU] += map_cost

        # 2. device through the function, DMA through the IOMMU
        if dma is not None:
            first, pages, translate = dma.access(req.size)
        else:
            first, pages, translate = 0, 0, 0.0
        yield from self.device.serve(req, translate)

        # 3. interrupt delivery to the completing vCPU, guest completion
        v = req.done_vcpu
        sched, queued = yield from v.acquire()
        debt = v.take_debt()
        if self.virtualized:
            irq = self.hv.interrupt(v)
        else:
            env.counters["interrupts"] += 1
            irq = 0.0
        unmap = dma.unmap_cost if dma is not None else 0.0
        cost = child.complete_cost()
        yield v.hold(("exit", irq), ("guest", cost + unmap), ("hypervisor", debt))
        if dma is not None:
            dma.unmap(first, pages, v)
        v.release()
        c[SCHED_WAIT] += sched + debt
        c[GUEST_QUEUE] += queued
        c[INTERRUPT] += irq
        c[GUEST_CPU] += cost
        c[IOMMU] += unmap
