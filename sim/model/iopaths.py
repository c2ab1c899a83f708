"""The I/O paths: what a request does, step by step (docs/design.md §3.2).

Each path's :meth:`walk` is one generator that a request runs from submission to
completion; steps are inlined (``yield from``) rather than spawned, and costs that meet no
contention on one vCPU are summed into one timeout. Every µs of the request's latency is
added to exactly one component (:mod:`sim.model.metrics`).

**routed** (Hyper-V synthetic device; Xen split driver)
    The child has a primary channel and sub-channels to the device (:mod:`sim.model.vmbus`),
    each served by its own parent vCPU (:mod:`sim.model.partitions`). A request travels on the
    channel of its issuing vCPU, ``i mod channels`` for child vCPU ``i``, both ways, as
    Linux storvsc picks the outgoing channel from the issuing CPU (``get_og_chn``: the
    channel that CPU is the target of, else the CPU number modulo the channels; read).
    With channels ≥ vCPUs every vCPU has a channel of its own; with ``n`` fewer, vCPUs
    ``i``, ``i + n``, … share channel ``i``: modulo rather than blocks of
    ``vcpus_per_channel`` vCPUs, as Linux does, which keeps the channels within one vCPU
    of each other in senders. (netvsc spreads sends by flow hash; over many flows that
    is as even.)

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
       into the same channel's inbound ring, with a signal (hypercall exit on
       the parent) when the ring was empty.
    5. The child's completing vCPU takes it out of the ring (``ring_wait``), takes the
       interrupt when one was signalled, and runs the VSC completion cost.

    To a routed child on this host (a stream's ``peer: {child}``, :class:`LocalPeer`),
    steps 3-5 become the parent's virtual switch: the receiver's inbound hop (VSP per
    packet and the copy into its buffer on its channel's parent vCPU, its inbound ring,
    its VSC and stack), its response time, its reply's outbound hop (steps 1-2 without
    the physical driver) and the sender's inbound hop: four channel hops a round trip.
    To a direct child (a mixed pair): this child's outbound hop with the physical driver,
    the NIC's hairpin from the PF into the peer's VF; the reply hairpins from the VF into
    the PF and takes this child's inbound hop as a received message (steps 2-4 of a
    receive): one channel hop each way, plus the hairpins.

    Simplified: the completing vCPU is the request's (``irq_vcpu`` or the issuing one),
    not the guest vCPU the channel's interrupt targets; with one channel per vCPU the two
    are the same. The device's completion interrupt reaches the parent vCPU of the
    request's channel directly, as with a multi-queue device whose queues the parent's
    driver has spread like the channels (assumed). A NIC with ``queues: single`` (no VMQ)
    interrupts parent vCPU 0 instead, for every channel: steps 4 (and a received
    message's processing) run there.

**direct** (SR-IOV VF, DDA)
    1. Guest driver cost on the child vCPU (plus the map cost in ``strict`` and
       ``deferred`` IOMMU mode); the MMIO doorbell is a mapped BAR write, no exit.
    2. Device through the child's VF; its DMA goes to the next buffer of the child's ring
       and every page of it is looked up in the host's shared IOTLB, a miss costing a
       page walk (:mod:`sim.model.iommu`).
    3. The MSI is remapped and delivered to the completing vCPU: no exit when posted,
       an external-interrupt exit and an EOI exit otherwise; a vCPU that is not running
       waits to be scheduled. Guest completion cost (plus unmap and invalidation of the
       buffer's pages in ``strict`` mode; in ``deferred`` mode the unmap is queued for
       the next batch flush).

**hypervisor** (VMware ESX style: vmxnet3 / PVSCSI into the vmkernel's own I/O stack)
    The device belongs to the hypervisor, which drives it through its physical function
    with its own backend and driver (``host.hypervisor_io``); no parent, no VMBus, no VF
    (so no VF limit) and no IOMMU translation in the child's domain. Unlike ``direct``,
    the child keeps no device state of its own and stays live-migratable.

    1. PV driver cost on the issuing vCPU (``vsc``, as a front-end driver); the request
       goes into a ring shared with the hypervisor and the driver kicks it with a doorbell
       write, an exit handled in the hypervisor (``host.costs.doorbell_exit``, counted as
       ``exits.doorbell``). The hypervisor's backend and physical driver
       (``hypervisor_io.request_cost``) then run on the same LP, in the vCPU's exit.
    2. Device, through the physical function.
    3. The hypervisor takes the device's interrupt and runs its completion
       (``hypervisor_io.completion_cost``) on the LP of the completing vCPU, then
       delivers a virtual interrupt: no exit when posted, an interrupt exit and an EOI
       exit otherwise. Guest completion cost.

    Where the hypervisor's work runs: on the LP of the child's vCPU, which it keeps
    busy, charged to that vCPU's account as ``hypervisor`` time (as ESX charges the
    vmkernel's work on a VM's behalf to the VM, esxtop's %SYS), so it competes with the
    vCPUs for LPs like any other work; the parent's CPU stays idle. In the latency it is
    ``guest_cpu`` (time on the child's vCPU; there is no component of its own), the
    doorbell exit is ``interrupt``. Simplified: one doorbell exit per request (no
    notification suppression while the backend is busy, no polling backend: set
    ``doorbell_exit`` to 0 to approximate one, whose polling CPU is then not counted);
    the completion waits for the completing vCPU to be scheduled before the hypervisor's
    completion work runs, where a real hypervisor would run it in interrupt context
    first (the same total on the request's way).

**emulated** (a legacy device model in the parent: e1000, IDE)
    1. Guest driver cost on the issuing vCPU (``guest``: the guest's native driver), then
       ``emulated.exits_per_request`` register accesses (MMIO/PIO), each an exit to the
       device model costing ``host.costs.device_model_exit`` on the child's vCPU
       (counted as ``exits.device_model``; ``interrupt`` in the latency). The completion
       handler's accesses (interrupt cause, unmask) are among them, taken here.
    2. The device model on the parent vCPU serving the child (one per child, placed
       round robin with the VMBus channels): ``access_cost`` per access, then the
       request as the VSP's (``parent.vsp.request_cost``, the payload copied out of
       guest memory at ``copy_bandwidth``: emulated DMA) and the physical driver's cost,
       all ``parent_cpu``, charged as ``vsp`` and ``driver``; waiting behind the parent
       vCPU's other work is ``parent_queue`` (there is no ring).
    3. Device, through the physical function.
    4. Completion on the same parent vCPU as on the routed path (driver ISR/DPC and VSP
       completion, shared code); the device model raises the child's interrupt with a
       hypercall (``exits.hypercall``, ``interrupt``).
    5. The virtual interrupt on the completing vCPU (posted, or interrupt + EOI exits)
       and the guest completion cost.

    Simplified: the child's vCPU takes its exits back to back and is free again before
    the device model runs, where a real vCPU stays stalled in each access until the
    device model answers (Hyper-V suspends it and gives its LP away, as here, but it
    cannot run other guest work meanwhile); the hypervisor's intercept message to the
    parent is part of ``device_model_exit``.

**native**: the same workload on bare metal, the reference for the "virtualization tax":
as direct, with no exits and no world switch; its kernel's DMA goes through the IOMMU when
``host.iommu.native`` is not ``off`` (:mod:`sim.model.iommu`: map on the issuing vCPU,
unmap and, in ``strict`` mode, an invalidation on the IOMMU's queue on the completing one).
On the routed and emulated paths the parent's physical driver maps the same way
(``host.iommu.parent``): map with its request cost, unmap after its completion, on the
parent vCPU (``driver`` CPU, ``iommu`` time).

**parent** (the parent's own streams, ``parent.streams``: its management stack, backup)
    1. The physical driver's ``request_cost`` (per segment without TSO), the parent's
       protocol stack (``parent.stack``, per segment, and its user copy: ``guest`` CPU of
       the parent, its own work) and the DMA map (``host.iommu.parent``) on the issuing
       parent vCPU: ``parent_cpu`` (``driver`` CPU); waiting behind the vCPU's other
       work is ``parent_queue``. No VSC, no VMBus ring, no VSP.
    2. Device, through the physical function.
    3. The completion interrupt on the completing parent vCPU: exits unless posted (the
       parent is a partition), the driver's ``interrupt_cost`` once per interrupt, the
       unmap. A received message: the driver's ``request_cost`` and the stack per unit
       the port delivers (and the copy to user), beside the interrupt's costs, and a
       fresh buffer mapped. A request the parent took before a crash is dropped when its
       completion comes (its stream has failed it, :mod:`sim.model.faults`).

**The guest's protocol stack** (NIC streams, ``guest.packet_cost`` and
``guest.copy_bandwidth``; off by default): per packet the stack handles, per segment sent
on direct and native without TSO, one on the other paths whose virtual NICs take whole
requests, per unit received; plus the user copy per byte. On the issuing vCPU for a send,
the completing vCPU for a receive, with the driver's cost.

A child that asks for ``direct`` and finds no free VF on its device falls back to
``routed`` (Hyper-V behaviour); :mod:`sim.model.host` decides, and the results say so.
Hypervisor and emulated children use the physical function and need no VF.

**Faults** (:mod:`sim.model.faults`)
    A routed or emulated request is in the parent's hands from the moment it goes into
    the channel's outbound ring (the device model's queue) until its completion is in the
    inbound ring (the child's interrupt is raised): it carries the parent's ``epoch``
    from then, and a parent that crashed in between (the epoch moved on) has lost it.
    When the restarted parent's vCPU next takes it up (out of the ring, or at the
    device's completion), it drops it (:class:`~sim.model.workloads.AbortError`): the ring entry
    is freed, nothing is charged, and the child learns nothing; its guest's command
    timer, or its resubmission when the parent is back, takes over. Everything else a
    fault does happens in the devices, the hypervisor or the streams.

**Interrupt moderation** (the device's ``interrupt_moderation``, :mod:`sim.model.devices`)
    After the device, a completion waits for its function's interrupt on the vector that
    targets the vCPU taking it (the channel's parent vCPU on the routed path, the device
    model's on the emulated one, the completing vCPU otherwise); that wait is
    ``interrupt``. One interrupt delivers every completion pending on its vector, and
    the costs of the interrupt itself are paid once, by the first of them to run on the
    vCPU; the others queue behind it (``parent_queue`` / ``guest_queue``). Per
    interrupt: routed and emulated, the parent's interrupt delivery (exits unless
    posted) and its driver's ISR/DPC (``driver.interrupt_cost``); direct, the interrupt
    and EOI exits unless posted; native, the interrupt (counted, no cost); hypervisor,
    the virtual interrupt it injects into the child (exits unless posted). Per
    completion, as before: the VSP's completion and the inbound ring (routed), the
    device model's hypercall and the child's virtual interrupt (emulated: its own
    device raises one per request), the hypervisor stack's ``completion_cost`` (its own
    handling of the device's interrupt is in it, not split out), the guest's
    ``complete_cost``. Without moderation (the default) every completion is an
    interrupt of its own and nothing waits.

**Segmentation without TSO** (a NIC with ``tso: false``)
    The stack that sends a request cuts it into ``ceil(size / mtu)`` segments and pays
    its per-request send cost once per segment (a draw per segment): direct and native,
    the guest driver's ``submit_cost``; routed, the VSP's ``request_cost`` and the
    physical driver's ``request_cost`` (the child's VSC hands over the whole request, as
    a synthetic NIC offers large sends to its guest whatever the physical NIC does);
    emulated, the same two in the device model (the emulated NIC offers segmentation to
    its guest); hypervisor, the hypervisor stack's ``request_cost``. Costs per byte or
    page (copies, page lists, IOMMU), exits, signals and every completion cost stay
    per request. With TSO, or a request of at most one MTU, one segment: nothing
    changes.

**The synthetic NIC's own offloads** (a routed child's ``vnic``, independent of the port)
    ``vnic.tso: false``: the guest's stack cuts a send into ``ceil(size / mtu)`` MTU
    packets. The VSC's ``submit_cost`` and ``complete_cost``, the VSP's ``request_cost``
    and ``completion_cost`` and the physical driver's ``request_cost`` are paid per packet
    (the parent receives MTU packets: the port's TSO does not help); each packet takes its
    own entry in both rings and is copied (or page-listed above ``copy_threshold``) on its
    own. The packets go in back to back as one put (one signal per busy period, as
    before); the device serves one request. ``vnic.lro: false``: the VSP's
    ``request_cost``, the inbound ring's descriptor and the guest's ``complete_cost`` per
    MTU frame of a received message; the physical driver stays per unit the port
    delivers. Both default on: nothing changes.

**Receive** (a NIC stream's ``receive`` op, open loop: messages arriving from the wire)
    The message's frames come in on the port's receive wire (:meth:`Device.arrive`; the
    wait for it is the sender's, outside the latency), which starts at the last frame's
    arrival and ends when the guest has processed the message. The NIC DMAs it into its
    function's receive queue (``device_service``: the NIC's ``latency``) and raises a
    completion interrupt on the vector of the vCPU it goes to, moderated as a send's.
    The vCPU it is steered to (receive side scaling) is the request's issuing vCPU,
    round robin over the child's vCPUs as flows spread; it is processed on the
    completing vCPU (the same unless ``irq_vcpu``).

    * direct: DMA into the VF's buffers through the IOMMU (an IOTLB lookup per page, as
      for sends); the interrupt (exits unless posted); the guest's ``complete_cost`` as
      its receive processing. In ``strict`` mode the buffer is unmapped and a fresh one
      mapped and posted (``unmap_cost + map_cost``), in ``deferred`` mode mapped (its
      unmap queued): ``iommu``.
    * native: as direct, through the PF, with no IOMMU and no exits.
    * routed: DMA into the PF's queue; the parent vCPU serving the channel of the
      steered vCPU takes the interrupt (exits unless posted, the driver's ISR/DPC once
      per interrupt), runs the physical driver's ``request_cost`` and the VSP's
      ``request_cost``, and hands the payload over by ``parent.vsp.receive``: copies it
      into the child's receive buffer at ``copy_bandwidth`` (``copy``, netvsc's host), or
      flips its pages (``flip``, Xen's grant transfer: ``flip_page_cost`` per page of
      every unit, whatever its bytes); with ``host.iommu.parent`` the driver unmaps the
      buffer and maps a fresh one; it puts a transfer-page descriptor into the channel's
      inbound ring and signals the child if the ring was empty (a hypercall); the
      child's VSC takes it out and runs ``complete_cost``. Waiting behind the parent
      vCPU's other work is ``parent_queue``. A parent crash between the NIC's DMA and
      the inbound ring loses the message (the epoch rule above). Simplified: the
      receive buffer's sections (1,728 B in Linux ``hyperv_net.h``) are not counted
      (the 16 MiB buffer never fills), and the guest's completion message that frees
      them is not sent.
    * hypervisor: DMA into the PF's queue; on the LP of the vCPU it is steered to, the
      hypervisor stack's ``completion_cost`` (its receive handling and copy to the
      guest), a virtual interrupt (exits unless posted), the guest's ``complete_cost``.
    * emulated: not modelled; a receive stream on it is refused when the scenario is
      checked.

    **Receive coalescing** (NIC ``lro``): with LRO (default) a message of ``ceil(size /
    mtu)`` frames reaches every receiving stack as one unit. Without it each frame is a
    unit, and every per-request receive cost is paid once per frame (a draw per frame):
    the guest's ``complete_cost`` (direct, native, hypervisor, and the VSC on the routed
    path: nothing coalesces later), the parent driver's and the VSP's ``request_cost``
    (routed), the hypervisor stack's ``completion_cost``. Per-byte costs (the VSP's
    copy, IOMMU lookups), per-interrupt costs, the ring entry and its signal stay per
    message.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Protocol

from sim.model.devices import Device, Interrupt, NicDevice
from sim.model.env import SimEnv, Waitable
from sim.model.hypervisor import Hypervisor, VCpu
from sim.model.iommu import NO_COSTS, DmaDomain
from sim.model.metrics import (
    GUEST_CPU,
    GUEST_QUEUE,
    INTERRUPT,
    IOMMU,
    PARENT_CPU,
    PARENT_QUEUE,
    RETRY,
    RING_WAIT,
    SCHED_WAIT,
)
from sim.model.partitions import ChildPartition, ParentPartition
from sim.model.request import AbortError, Request
from sim.model.vmbus import Channel, Ring
from sim.scenario import names
from sim.scenario.distributions import Draw
from sim.scenario.hardware import HypervisorIo, mtu_pieces

Walk = Generator[Waitable, Any, None]


class Path(Protocol):
    """What a stream needs of an I/O path."""

    name: str

    def walk(self, req: Request) -> Walk:
        """Run ``req`` from submission to completion."""
        ...


def _into_ring(
    env: SimEnv, req: Request, v: VCpu, ring: Ring, nbytes: int, hypercall: float, queue: int
) -> Generator[Waitable, Any, bool]:
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
            c[INTERRUPT] += v.smt_lost
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
        sched, queued = v.take() or (yield from v.wait())
        debt = v.take_debt()
        yield v.hold(("exit", hypercall), ("hypervisor", debt))
        c[INTERRUPT] += v.smt_lost
        v.release()
        c[SCHED_WAIT] += sched + debt
        c[queue] += queued
        c[INTERRUPT] += hypercall
    return signal


def _arrive(env: SimEnv, dev: Device, req: Request) -> Generator[Waitable, Any, None]:
    """Received message ``req`` comes in on the receive wire; its latency starts at its
    last frame (a retry's wire time, a retransmission's, is ``retry`` time)."""
    took = yield from dev.arrive(req)
    if req.attempt == 1:
        req.t_submit = env.now
    else:
        req.c[RETRY] += took


def _per_segment(cost: Draw, segments: int) -> float:
    """A per-request send cost paid once per segment the stack cuts the request into
    (``segments`` draws, summed; one draw with segmentation offload). The hot paths
    write ``cost() if n == 1 else _per_segment(cost, n)``: the same draw, no call."""
    if segments == 1:
        return cost()
    return sum(cost() for _ in range(segments))


def _stack(child: ChildPartition, dev: Device, size: int, packets: int) -> float:
    """The guest protocol stack's CPU for a NIC message of ``size`` bytes handled as
    ``packets`` packets: ``guest.packet_cost`` per packet and the copy between user and
    kernel at ``guest.copy_bandwidth`` (0 when neither is set, or on a storage device)."""
    if child.packet_cost is None or not isinstance(dev, NicDevice):
        return 0.0
    return _per_segment(child.packet_cost, packets) + child.copy_cost(size)


def _access(dma: DmaDomain | None, size: int) -> tuple[int, int, float]:
    """A DMA of ``size`` bytes through ``dma`` (:meth:`DmaDomain.access`: the buffer's
    first page, its pages and the IOTLB walks, µs), or through no IOMMU."""
    return dma.access(size) if dma is not None else (0, 0, 0.0)


def _remap(dma: DmaDomain | None, size: int) -> tuple[float, float, float]:
    """A received buffer of ``size`` bytes unmapped and a fresh one mapped in its place
    (strict, deferred), in µs: the kernel's CPU, a virtual IOMMU's exits and the
    hypervisor's physical-table updates (:meth:`DmaDomain.unmap_costs`, ``map_costs``)."""
    if dma is None or not dma.dynamic:
        return NO_COSTS
    u_own, u_trap, u_shadow = dma.unmap_costs(size)
    m_own, m_trap, m_shadow = dma.map_costs(size)
    return u_own + m_own, u_trap + m_trap, u_shadow + m_shadow


Buffer = tuple[int, int]  # a DMA buffer in its domain: its first page's key, its pages


def _hairpin_to_vf(
    dev: Device, src: DmaDomain | None, req: Request, to: AssignedPath, size: int
) -> Generator[Waitable, Any, Buffer]:
    """The NIC ``dev`` reads ``size`` bytes through the domain ``src`` (the PF's or a
    VF's) and its embedded switch writes them into ``to``'s VF's posted buffer (``to``'s
    domain). Returns that buffer, for ``to`` to unmap (:meth:`AssignedPath._take`)."""
    assert isinstance(dev, NicDevice)
    out = _access(src, size)[2]
    first, pages, into = _access(to.dma, size)
    yield from dev.hairpin(req, out, to.child.vf, into)
    return first, pages


def _unmap(
    dma: DmaDomain, first: int, pages: int, v: VCpu, cost: float
) -> Generator[Waitable, Any, float]:
    """Called while holding ``v``: unmap a domain's buffer after its DMA (``cost``
    µs of page-table updates and the range's release, charged to the domain's
    category), invalidate its IOTLB entries on the IOMMU's queue (strict) or queue the
    unmap (deferred). Returns the CPU time spent, the request's ``iommu`` time."""
    if cost:
        yield v.hold((dma.category, cost))
        cost += v.smt_lost
    if dma.queued_invalidation:
        cost += yield from dma.invalidate(v)
    dma.unmap(first, pages, v)
    return cost


def _handles(irq: Interrupt | None) -> bool:
    """Whether this completion runs its interrupt's handler and pays the per-interrupt
    costs: always without moderation (``None``: an interrupt of its own); under
    moderation, the first of the interrupt's completions to reach the vCPU."""
    return irq is None or irq.take()


def _parent_completion(
    hv: Hypervisor,
    parent: ParentPartition,
    pv: VCpu,
    req: Request,
    inject: float,
    irq_of: Interrupt | None,
    units: int = 1,
) -> Generator[Waitable, Any, None]:
    """The device's completion interrupt on parent vCPU ``pv`` (routed and emulated): the
    driver's ISR/DPC and the VSP's (or device model's) completion, plus ``inject`` µs of
    exits to raise the child's interrupt (emulated; routed signals through its ring
    instead). Under moderation the ISR/DPC and the interrupt's exits are paid once per
    interrupt (``irq_of``), the VSP completion and ``inject`` per completion. Returns
    still holding ``pv``: the caller hands the completion on and releases it. Waiting
    behind ``pv``'s other work is ``parent_queue``. A request a crash lost is dropped."""
    c = req.c
    sched, queued = pv.take() or (yield from pv.wait())
    if req.epoch != parent.epoch:  # the parent crashed since it took the request
        pv.release()
        raise AbortError
    debt = pv.debt  # take_debt, inline on the hot path
    pv.debt = 0.0
    if irq_of is None or irq_of.take():  # _handles, inline
        irq = hv.interrupt(pv) + inject
        drv = parent.driver_interrupt()
    else:
        irq, drv = inject, 0.0
    vsp = parent.vsp_completion() if units == 1 else _per_segment(parent.vsp_completion, units)
    yield pv.hold(("exit", irq), ("driver", drv), ("vsp", vsp), ("hypervisor", debt))
    c[PARENT_CPU] += pv.smt_lost
    c[SCHED_WAIT] += sched + debt
    c[PARENT_QUEUE] += queued
    c[INTERRUPT] += irq
    c[PARENT_CPU] += drv + vsp


class LocalPeer:
    """A child on the same host that a stream's sends go to (the peer of
    :meth:`RoutedPath._to_child` or :meth:`AssignedPath._to_vf`): its path, the vCPUs its
    replies come from in turn, its response time and its reply sizes."""

    def __init__(
        self,
        path: RoutedPath | AssignedPath,
        vcpus: Callable[[], VCpu],
        response: Callable[[], float],
        reply_size: Callable[[], float],
    ) -> None:
        self.path = path
        self.vcpu = vcpus
        self.response = response
        self.reply_size = reply_size


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
        channels: list[Channel],
        parent_vcpus: list[VCpu],
        hypercall: float,
        dma: DmaDomain | None = None,
    ) -> None:
        if not channels or len(channels) != len(parent_vcpus):
            raise ValueError("a routed path needs one parent vCPU per channel, and a channel")
        self.env = env
        self.hv = hv
        self.child = child
        self.parent = parent
        self.device = device
        self.channels = list(channels)
        self.parent_vcpus = list(parent_vcpus)
        self.hypercall = hypercall
        # a single-queue NIC interrupts parent vCPU 0 for every channel (no VMQ)
        k = device.irq_vcpu
        self.irq_vcpu: VCpu | None = parent.vcpus[k] if k is not None else None
        self.dma = dma  # the parent driver's translation domain (host.iommu.parent)
        n = len(self.channels)
        # by issuing child vCPU: its channel and the parent vCPU that serves it
        self._lanes = [
            (self.channels[i % n], self.parent_vcpus[i % n]) for i in range(len(child.vcpus))
        ]
        # the synthetic NIC's own offloads (checks: only on a NIC); 0: offered
        vnic = child.spec.vnic
        mtu = getattr(device.spec, "mtu", 0)
        self._vtso_mtu = mtu if vnic is not None and not vnic.tso else 0
        self._vlro_mtu = mtu if vnic is not None and not vnic.lro else 0
        # whether the guest's stack costs anything (_stack is 0 otherwise)
        self._stacked = child.packet_cost is not None and isinstance(device, NicDevice)

    def channel_of(self, vcpu: VCpu) -> Channel:
        """The channel a request issued on child ``vcpu`` travels on."""
        return self._lanes[vcpu.index][0]

    def _vunits(self, size: int) -> int:
        """Packets the VSP hands the guest for a received ``size`` bytes: one per MTU
        without virtual receive coalescing, else one."""
        return len(mtu_pieces(size, self._vlro_mtu)) if self._vlro_mtu else 1

    def _vsc_takes(
        self,
        req: Request,
        v: VCpu,
        inbound: Ring,
        nbytes: int,
        signalled: bool,
        units: int,
        received: int | None,
    ) -> Walk:
        """The child's VSC takes an entry of ``nbytes`` out of the channel's inbound ring on
        its vCPU ``v``: the interrupt if the parent signalled, its ``complete_cost`` per
        packet (``units``), the guest's stack for a received payload of ``received`` bytes
        (None: a send's completion), the world switch it owes and its CPU virtualization
        cost."""
        hv, child, c = self.hv, self.child, req.c
        sched, queued = v.take() or (yield from v.wait())
        inbound.take(nbytes)
        debt = v.debt  # take_debt, inline on the hot path
        v.debt = 0.0
        irq = hv.interrupt(v) if signalled else 0.0
        cost = child.complete_cost() if units == 1 else _per_segment(child.complete_cost, units)
        if received is not None:
            cost += _stack(child, self.device, received, units)
        virt = child.virt_charge(v)
        yield v.hold(
            ("exit", irq), ("vsc", cost), ("hypervisor", debt), (child.virt_category, virt)
        )
        c[GUEST_CPU] += v.smt_lost
        v.release()
        c[SCHED_WAIT] += sched + debt
        c[RING_WAIT] += queued
        c[INTERRUPT] += irq
        c[GUEST_CPU] += cost
        if virt:
            c[GUEST_CPU] += virt

    def _out(
        self, req: Request, v: VCpu, size: int, local: bool
    ) -> Generator[Waitable, Any, tuple[Channel, VCpu, int, int]]:
        """A send of ``size`` bytes from child vCPU ``v`` up to the parent (this child's
        outbound channel hop): the VSC, the outbound ring of its channel, the parent's VSP
        (and physical driver unless ``local``: to a child on this host). Returns the
        channel, its parent vCPU, the guest's packets and the ring entry's bytes."""
        env, hv, child, parent = self.env, self.hv, self.child, self.parent
        c = req.c
        # 1. VSC on the issuing vCPU, descriptor into the outbound ring of its channel
        ch, pv = self._lanes[v.index]
        if self._vtso_mtu:  # no virtual TSO: one packet per MTU, each its own entry
            pieces = mtu_pieces(size, self._vtso_mtu)
            vsegs = len(pieces)
            page_list = [ch.pages(p) for p in pieces]
            transfer = sum(map(parent.transfer_cost, pieces, page_list))
            nbytes = min(sum(map(ch.entry_bytes, pieces)), ch.outbound.capacity)
        else:
            vsegs = 1
            pages = ch.pages(size)
            transfer = parent.transfer_cost(size, pages)
            nbytes = ch.entry_bytes(size)
        sched, queued = v.take() or (yield from v.wait())
        debt = v.debt  # take_debt, inline on the hot path
        v.debt = 0.0
        cost = child.submit_cost() if vsegs == 1 else _per_segment(child.submit_cost, vsegs)
        if self._stacked:  # x + 0.0 is x: skipping a stack that costs nothing changes nothing
            cost += _stack(child, self.device, size, vsegs)
        yield v.hold(("vsc", cost), ("hypervisor", debt))
        c[GUEST_CPU] += v.smt_lost
        c[SCHED_WAIT] += sched + debt
        c[GUEST_QUEUE] += queued
        c[GUEST_CPU] += cost
        out = ch.outbound
        req.epoch = parent.epoch
        signalled = yield from _into_ring(env, req, v, out, nbytes, self.hypercall, GUEST_QUEUE)

        # 2. the channel's parent vCPU takes it out of the ring; VSP and physical driver
        sched, queued = pv.take() or (yield from pv.wait())
        out.take(nbytes)
        if req.epoch != parent.epoch:  # in the ring when the parent crashed: lost
            pv.release()
            raise AbortError
        debt = pv.debt  # take_debt, inline on the hot path
        pv.debt = 0.0
        irq = hv.interrupt(pv) if signalled else 0.0
        # the VSP and the physical driver per packet: the guest's packets without virtual
        # TSO, the port's segments without physical TSO (the VSP segments in software); to
        # a child on this host, the virtual switch alone (no driver, no DMA)
        if local:
            segments = vsegs
            vsp = _per_segment(parent.vsp_request, segments) + transfer
            drv = dmap = 0.0
        else:
            segments = max(self.device.segments(size), vsegs)
            if segments == 1:
                vsp = parent.vsp_request() + transfer
                drv = parent.driver_request()
            else:
                vsp = _per_segment(parent.vsp_request, segments) + transfer
                drv = _per_segment(parent.driver_request, segments)
            dma = self.dma
            dmap = dma.map_time(req.size) if dma is not None else 0.0
        yield pv.hold(("exit", irq), ("vsp", vsp), ("driver", drv + dmap), ("hypervisor", debt))
        c[PARENT_CPU] += pv.smt_lost
        pv.release()
        c[SCHED_WAIT] += sched + debt
        c[RING_WAIT] += queued
        c[INTERRUPT] += irq
        c[PARENT_CPU] += vsp + drv
        c[IOMMU] += dmap
        return ch, pv, vsegs, nbytes

    def _in(self, req: Request, v: VCpu, size: int) -> Walk:
        """A message of ``size`` bytes from a child on this host, out of the parent's
        virtual switch into this child (its inbound channel hop): the VSP of the channel
        of ``v`` per packet it hands the guest and the copy into the child's receive
        buffer, the inbound ring, and the VSC and stack on ``v``."""
        env, parent = self.env, self.parent
        c = req.c
        ch, pv = self._lanes[v.index]
        sched, queued = pv.take() or (yield from pv.wait())
        if req.epoch != parent.epoch:  # the parent crashed since it took the request
            pv.release()
            raise AbortError
        debt = pv.take_debt()
        units = self._vunits(size)
        vsp = _per_segment(parent.vsp_request, units) + parent.receive_cost(size, units)
        yield pv.hold(("vsp", vsp), ("hypervisor", debt))
        c[PARENT_CPU] += pv.smt_lost
        c[SCHED_WAIT] += sched + debt
        c[PARENT_QUEUE] += queued
        c[PARENT_CPU] += vsp
        inbound = ch.inbound
        nbytes = min(units * ch.entry_bytes(0), inbound.capacity)
        signalled = yield from _into_ring(
            env, req, pv, inbound, nbytes, self.hypercall, PARENT_QUEUE
        )
        req.epoch = -1
        yield from self._vsc_takes(req, v, inbound, nbytes, signalled, units, size)

    def _to_child(self, req: Request, peer: LocalPeer) -> Walk:
        """Request-response with a routed child on this host (docs/design.md §3.4,
        Peers): four channel hops through the parent's virtual switch, two each way."""
        env = self.env
        if isinstance(peer.path, AssignedPath):  # a direct peer: a mixed pair
            yield from self._to_direct(req, peer)
            return
        yield from self._out(req, req.vcpu, req.size, True)  # 1. this child's outbound
        other = peer.path
        assert isinstance(other, RoutedPath)
        pv_ = peer.vcpu()
        yield from other._in(req, pv_, req.size)  # 2. the peer's inbound
        one_way = env.now - req.t_submit
        response = peer.response()
        yield env.timeout(response)
        reply = max(1, int(peer.reply_size()))
        yield from other._out(req, pv_, reply, True)  # 3. the peer's outbound
        yield from self._in(req, req.done_vcpu, reply)  # 4. this child's inbound
        req.trip = (0.0, response, one_way)

    def _to_direct(self, req: Request, peer: LocalPeer) -> Walk:
        """Request-response with a direct child on this host, a mixed pair
        (docs/design.md §3.4, Peers): this child's outbound channel hop to the parent's
        physical driver, the NIC's hairpin from the PF into the peer's VF; the reply
        hairpins from the peer's VF into the PF and takes this child's inbound hop as a
        received message does."""
        env = self.env
        other = peer.path
        assert isinstance(other, AssignedPath)
        yield from self._out(req, req.vcpu, req.size, False)  # 1. to the parent's driver
        buf = yield from self._hairpin_out(req, other, req.size)  # 2. PF → the peer's VF
        v = peer.vcpu()
        req.vf = other.child.vf  # its interrupt is the receiving VF's
        yield from other._take(req, v, req.size, buf)
        one_way = env.now - req.t_submit
        response = peer.response()
        yield env.timeout(response)
        reply = max(1, int(peer.reply_size()))
        yield from other._submit(req, v, reply)  # 3. the peer's reply, VF → PF
        yield from other._hairpin_to_parent(req, self, reply)  # 4. this child's inbound
        req.trip = (0.0, response, one_way)

    def _hairpin_out(
        self, req: Request, to: AssignedPath, size: int
    ) -> Generator[Waitable, Any, Buffer]:
        """The NIC reads ``size`` bytes through the PF (the parent's domain) and its
        embedded switch writes them into ``to``'s VF's posted buffer (``to``'s domain),
        which it returns."""
        buf = yield from _hairpin_to_vf(self.device, self.dma, req, to, size)
        req.epoch = -1  # out of the parent's hands
        return buf

    def walk(self, req: Request) -> Walk:
        if req.receive:
            yield from self._receive(req)
            return
        if isinstance(req.peer, LocalPeer):
            yield from self._to_child(req, req.peer)
            return
        env, hv, parent = self.env, self.hv, self.parent
        c = req.c
        ch, pv, vsegs, nbytes = yield from self._out(req, req.vcpu, req.size, False)
        dma = self.dma

        # 3. the device, through the physical function (and the parent's domain)
        dev = self.device
        first, pages, translate = _access(dma, req.size)
        yield from dev.serve(req, translate)

        # 4. completion interrupt on the parent: driver ISR/DPC, VSP completion, the
        #    driver's unmap, inbound ring
        pv = self.irq_vcpu or pv
        irq_of = (yield from dev.await_interrupt(req, pv)) if dev.moderated else None
        yield from _parent_completion(hv, parent, pv, req, 0.0, irq_of, vsegs)
        if dma is not None and dma.dynamic:
            c[IOMMU] += yield from _unmap(dma, first, pages, pv, dma.unmap_time(req.size))
        inbound = ch.inbound
        signalled = yield from _into_ring(
            env, req, pv, inbound, nbytes, self.hypercall, PARENT_QUEUE
        )
        req.epoch = -1  # back in the child's hands: no parent crash loses it now

        # 5. the child's VSC takes the completion out of the inbound ring
        yield from self._vsc_takes(req, req.done_vcpu, inbound, nbytes, signalled, vsegs, None)

    def _receive(self, req: Request) -> Walk:
        env, parent, dev = self.env, self.parent, self.device
        # 1. the wire, then the NIC's DMA into the PF's receive queue: the message is in
        #    the parent's hands from here
        yield from _arrive(env, dev, req)
        req.epoch = parent.epoch
        dma = self.dma
        first, pages, translate = _access(dma, req.size)
        yield from dev.deliver(req, translate)
        yield from self._from_port(req, req.vcpu, req.done_vcpu, req.size, first, pages)

    def _from_port(
        self, req: Request, lane: VCpu, v: VCpu, size: int, first: int, pages: int
    ) -> Walk:
        """Steps 2-4 of a receive: a message of ``size`` bytes in the PF's receive buffer
        (its DMA mapped at ``first``, ``pages`` in the parent's domain) goes to this child
        through the channel of its vCPU ``lane`` (the one it is steered to) and is taken
        by its VSC on ``v``."""
        env, hv, parent, dev, dma = self.env, self.hv, self.parent, self.device, self.dma
        c = req.c
        ch, pv = self._lanes[lane.index]  # the channel of the vCPU it is steered to
        pv = self.irq_vcpu or pv  # a single-queue NIC: parent vCPU 0 takes every message

        # 2. the parent's vCPU of that channel: ISR/DPC (per interrupt), physical driver
        #    and VSP per unit, the payload copied (or its pages flipped) into the child's
        #    receive buffer; the driver unmaps the buffer and maps a fresh one
        irq_of = (yield from dev.await_interrupt(req, pv)) if dev.moderated else None
        sched, queued = pv.take() or (yield from pv.wait())
        if req.epoch != parent.epoch:  # the parent crashed since the NIC delivered it
            pv.release()
            raise AbortError
        debt = pv.take_debt()
        if _handles(irq_of):
            irq = hv.interrupt(pv)
            isr = parent.driver_interrupt()
        else:
            irq, isr = 0.0, 0.0
        # the physical driver per unit the port delivers; the VSP per packet it hands the
        # guest: one per frame when either the port or the synthetic NIC does not coalesce;
        # a copy of the payload or a flip of the pages of the units the port delivered
        phys = dev.receive_units(size)
        vunits = self._vunits(size)
        units = max(phys, vunits)
        drv = isr + _per_segment(parent.driver_request, phys)
        vsp = _per_segment(parent.vsp_request, units) + parent.receive_cost(size, phys)
        remap = (dma.unmap_time(size) + dma.map_time(size)) if dma is not None else 0.0
        yield pv.hold(("exit", irq), ("driver", drv + remap), ("vsp", vsp), ("hypervisor", debt))
        c[PARENT_CPU] += pv.smt_lost
        if dma is not None and dma.dynamic:
            remap += yield from _unmap(dma, first, pages, pv, 0.0)
        c[SCHED_WAIT] += sched + debt
        c[PARENT_QUEUE] += queued
        c[INTERRUPT] += irq
        c[PARENT_CPU] += drv + vsp
        c[IOMMU] += remap

        # 3. a transfer-page descriptor (one per packet without virtual coalescing) into
        #    the channel's inbound ring, a signal if empty
        inbound = ch.inbound
        nbytes = min(vunits * ch.entry_bytes(0), inbound.capacity)
        signalled = yield from _into_ring(
            env, req, pv, inbound, nbytes, self.hypercall, PARENT_QUEUE
        )
        req.epoch = -1

        # 4. the child's VSC takes it out of the ring and hands it to its stack
        yield from self._vsc_takes(req, v, inbound, nbytes, signalled, units, size)


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
        # whether the guest's stack costs anything (_stack is 0 otherwise)
        self._stacked = child.packet_cost is not None and isinstance(device, NicDevice)

    def _submit(self, req: Request, v: VCpu, size: int) -> Walk:
        """Step 1 of a send of ``size`` bytes from vCPU ``v``: the guest driver (and
        stack), the buffer mapped (strict, deferred); MMIO doorbell without exit."""
        child, dma = self.child, self.dma
        c = req.c
        own, trap, shadow = dma.map_costs(size) if dma is not None else NO_COSTS
        # 1. guest driver (and stack) on the issuing vCPU; MMIO doorbell without exit
        sched, queued = v.take() or (yield from v.wait())
        debt = v.debt  # take_debt, inline on the hot path
        v.debt = 0.0
        segments = self.device.segments(size)
        cost = child.submit_cost() if segments == 1 else _per_segment(child.submit_cost, segments)
        if self._stacked:  # x + 0.0 is x: skipping a stack that costs nothing changes nothing
            cost += _stack(child, self.device, size, segments)
        yield v.hold(("guest", cost + own), ("exit", trap), ("hypervisor", debt + shadow))
        c[GUEST_CPU] += v.smt_lost
        v.release()
        c[SCHED_WAIT] += sched + debt
        c[GUEST_QUEUE] += queued
        c[GUEST_CPU] += cost
        c[IOMMU] += own + trap + shadow

    def _to_vf(self, req: Request, peer: LocalPeer) -> Walk:
        """Request-response with a direct child on this host (docs/design.md §3.4,
        Peers): each message hairpins in the NIC's embedded switch from the sender's VF
        to the receiver's, no wire and no parent; the receiver takes it as a received
        message (interrupt, receive processing, its buffer remapped)."""
        env = self.env
        other = peer.path
        if isinstance(other, RoutedPath):  # a routed peer: a mixed pair
            yield from self._to_routed(req, peer)
            return
        mine, theirs = self.child.vf, other.child.vf
        yield from self._submit(req, req.vcpu, req.size)
        buf = yield from self._hairpin(req, other, req.size)
        v = peer.vcpu()
        req.vf = theirs  # its interrupt is the receiving VF's
        yield from other._take(req, v, req.size, buf)
        one_way = env.now - req.t_submit
        response = peer.response()
        yield env.timeout(response)
        reply = max(1, int(peer.reply_size()))
        yield from other._submit(req, v, reply)
        buf = yield from other._hairpin(req, self, reply)
        req.vf = mine
        yield from self._take(req, req.done_vcpu, reply, buf)
        req.trip = (0.0, response, one_way)

    def _to_routed(self, req: Request, peer: LocalPeer) -> Walk:
        """Request-response with a routed child on this host, a mixed pair
        (docs/design.md §3.4, Peers): the hairpin from this child's VF into the PF, the
        peer's inbound channel hop as a received message's; its reply takes its outbound
        hop to the parent's driver and hairpins from the PF into this child's VF."""
        env = self.env
        other = peer.path
        assert isinstance(other, RoutedPath)
        mine = self.child.vf
        yield from self._submit(req, req.vcpu, req.size)
        v = peer.vcpu()
        yield from self._hairpin_to_parent(req, other, req.size, v)
        one_way = env.now - req.t_submit
        response = peer.response()
        yield env.timeout(response)
        reply = max(1, int(peer.reply_size()))
        yield from other._out(req, v, reply, False)  # its reply, to the parent's driver
        buf = yield from other._hairpin_out(req, self, reply)
        req.vf = mine
        yield from self._take(req, req.done_vcpu, reply, buf)
        req.trip = (0.0, response, one_way)

    def _hairpin_to_parent(
        self, req: Request, to: RoutedPath, size: int, v: VCpu | None = None
    ) -> Walk:
        """The NIC reads ``size`` bytes through this child's VF and its embedded switch
        writes them into the PF's posted buffer (the parent's domain); the parent hands
        them to the routed child of ``to`` as a received message, steered to the channel
        of its vCPU ``v`` (default: the request's own vCPU, its VSC on the completing
        one)."""
        dev = self.device
        assert isinstance(dev, NicDevice)
        out = _access(self.dma, size)[2]
        dma = to.dma
        first, pages, into = _access(dma, size)
        req.vf = None  # the PF's receive queue and interrupt
        req.epoch = to.parent.epoch
        yield from dev.hairpin(req, out, None, into)
        lane, done = (v, v) if v is not None else (req.vcpu, req.done_vcpu)
        yield from to._from_port(req, lane, done, size, first, pages)

    def _hairpin(
        self, req: Request, to: AssignedPath, size: int
    ) -> Generator[Waitable, Any, Buffer]:
        """The NIC reads ``size`` bytes through this child's VF (its IOMMU domain) and its
        embedded switch writes them into ``to``'s VF's posted buffer (``to``'s domain),
        which it returns."""
        return (yield from _hairpin_to_vf(self.device, self.dma, req, to, size))

    def _take(self, req: Request, v: VCpu, size: int, buf: Buffer) -> Walk:
        """A message of ``size`` bytes delivered into this child's VF's buffer ``buf``:
        the interrupt to ``v``, the guest's receive processing per unit, its buffer
        unmapped (strict: invalidated; deferred: queued) and a fresh one mapped: step 2
        of a receive."""
        child, dma, dev = self.child, self.dma, self.device
        c = req.c
        irq_of = (yield from dev.await_interrupt(req, v)) if dev.moderated else None
        sched, queued = v.take() or (yield from v.wait())
        debt = v.take_debt()
        irq = self._interrupt(irq_of, v)
        remap, trap, shadow = _remap(dma, size)
        units = dev.receive_units(size)
        cost = _per_segment(child.complete_cost, units) + _stack(child, dev, size, units)
        virt = child.virt_charge(v)
        yield v.hold(
            ("exit", irq),
            ("guest", cost + remap),
            ("exit", trap),
            ("hypervisor", debt + shadow),
            (child.virt_category, virt),
        )
        remap += trap + shadow
        c[GUEST_CPU] += v.smt_lost
        if virt:
            c[GUEST_CPU] += virt
        if dma is not None and dma.dynamic:
            remap += yield from _unmap(dma, *buf, v, 0.0)
        v.release()
        c[SCHED_WAIT] += sched + debt
        c[GUEST_QUEUE] += queued
        c[INTERRUPT] += irq
        c[GUEST_CPU] += cost
        c[IOMMU] += remap

    def walk(self, req: Request) -> Walk:
        if req.receive:
            yield from self._receive(req)
            return
        if isinstance(req.peer, LocalPeer):
            yield from self._to_vf(req, req.peer)
            return
        child, dma = self.child, self.dma
        c = req.c
        yield from self._submit(req, req.vcpu, req.size)

        # 2. device through the function, DMA through the IOMMU
        first, pages, translate = _access(dma, req.size)
        dev = self.device
        yield from dev.serve(req, translate)

        # 3. interrupt delivery to the completing vCPU, guest completion
        v = req.done_vcpu
        irq_of = (yield from dev.await_interrupt(req, v)) if dev.moderated else None
        sched, queued = v.take() or (yield from v.wait())
        debt = v.debt  # take_debt, inline on the hot path
        v.debt = 0.0
        irq = self._interrupt(irq_of, v)
        unmap, trap, shadow = dma.unmap_costs(req.size) if dma is not None else NO_COSTS
        cost = child.complete_cost()
        virt = child.virt_charge(v)
        yield v.hold(
            ("exit", irq),
            ("guest", cost + unmap),
            ("exit", trap),
            ("hypervisor", debt + shadow),
            (child.virt_category, virt),
        )
        unmap += trap + shadow
        c[GUEST_CPU] += v.smt_lost
        if virt:
            c[GUEST_CPU] += virt
        if dma is not None and dma.dynamic:
            unmap += yield from _unmap(dma, first, pages, v, 0.0)
        v.release()
        c[SCHED_WAIT] += sched + debt
        c[GUEST_QUEUE] += queued
        c[INTERRUPT] += irq
        c[GUEST_CPU] += cost
        c[IOMMU] += unmap

    def _interrupt(self, irq_of: Interrupt | None, v: VCpu) -> float:
        """The exit time of delivering the completion interrupt to ``v`` (0 when posted,
        on bare metal, or when another completion of a moderated interrupt ran it)."""
        if not _handles(irq_of):
            return 0.0
        if self.virtualized:
            return self.hv.interrupt(v)
        self.env.counters["interrupts"] += 1
        return 0.0

    def _receive(self, req: Request) -> Walk:
        env, child, dma, dev = self.env, self.child, self.dma, self.device
        c = req.c
        # 1. the wire, then the NIC's DMA into the function's next posted buffer, through
        #    the IOMMU on the direct path
        yield from _arrive(env, dev, req)
        first, pages, translate = _access(dma, req.size)
        yield from dev.deliver(req, translate)

        # 2. interrupt to the vCPU the message is steered to; the guest's receive
        #    processing per unit; the buffer is unmapped (strict) and a fresh one mapped
        #    and posted in its place (strict, deferred)
        v = req.done_vcpu
        irq_of = (yield from dev.await_interrupt(req, v)) if dev.moderated else None
        sched, queued = v.take() or (yield from v.wait())
        debt = v.take_debt()
        irq = self._interrupt(irq_of, v)
        remap, trap, shadow = _remap(dma, req.size)
        units = dev.receive_units(req.size)
        cost = _per_segment(child.complete_cost, units) + _stack(child, dev, req.size, units)
        virt = child.virt_charge(v)
        yield v.hold(
            ("exit", irq),
            ("guest", cost + remap),
            ("exit", trap),
            ("hypervisor", debt + shadow),
            (child.virt_category, virt),
        )
        remap += trap + shadow
        c[GUEST_CPU] += v.smt_lost
        if virt:
            c[GUEST_CPU] += virt
        if dma is not None and dma.dynamic:
            remap += yield from _unmap(dma, first, pages, v, 0.0)
        v.release()
        c[SCHED_WAIT] += sched + debt
        c[GUEST_QUEUE] += queued
        c[INTERRUPT] += irq
        c[GUEST_CPU] += cost
        c[IOMMU] += remap


class ParentPath:
    """The parent's own stream (``parent.streams``): its physical driver on the physical
    function, on the parent's vCPUs; no VMBus hop, no VSP (module docstring)."""

    name = "parent"

    def __init__(
        self,
        env: SimEnv,
        hv: Hypervisor,
        parent: ParentPartition,
        dev: Device,
        dma: DmaDomain | None,
        end: ChildPartition,
    ) -> None:
        self.env = env
        self.hv = hv
        self.parent = parent
        self.device = dev
        self.dma = dma
        self.end = end  # the parent as its streams' end point: its protocol stack

    def walk(self, req: Request) -> Walk:
        if req.receive:
            yield from self._receive(req)
            return
        parent, dma, dev = self.parent, self.dma, self.device
        c = req.c
        # 1. the physical driver on the issuing parent vCPU (per segment), its DMA map
        v = req.vcpu
        sched, queued = v.take() or (yield from v.wait())
        req.epoch = parent.epoch
        debt = v.take_debt()
        segments = dev.segments(req.size)
        drv = _per_segment(parent.driver_request, segments)
        stack = _stack(self.end, dev, req.size, segments)
        dmap = dma.map_time(req.size) if dma is not None else 0.0
        yield v.hold(("guest", stack), ("driver", drv + dmap), ("hypervisor", debt))
        c[PARENT_CPU] += v.smt_lost
        v.release()
        c[SCHED_WAIT] += sched + debt
        c[PARENT_QUEUE] += queued
        c[PARENT_CPU] += drv + stack
        c[IOMMU] += dmap

        # 2. the device, through the physical function (and the parent's domain)
        first, pages, translate = _access(dma, req.size)
        yield from dev.serve(req, translate)

        # 3. the completion interrupt on the completing parent vCPU: exits unless posted,
        #    the driver's ISR/DPC (per interrupt), its unmap
        yield from self._complete(req, first, pages, 0, 0.0)

    def _complete(
        self, req: Request, first: int, pages: int, units: int, remap: float
    ) -> Generator[Waitable, Any, None]:
        """The interrupt and the driver's completion work on the completing parent vCPU;
        ``units`` per-unit driver request costs beside it (receive), ``remap`` µs of DMA
        map work. A request the parent's crash lost is dropped."""
        hv, parent, dma, dev = self.hv, self.parent, self.dma, self.device
        c = req.c
        v = req.done_vcpu
        irq_of = (yield from dev.await_interrupt(req, v)) if dev.moderated else None
        sched, queued = v.take() or (yield from v.wait())
        if req.epoch != parent.epoch:  # the parent crashed since it took the request
            v.release()
            raise AbortError
        debt = v.take_debt()
        if _handles(irq_of):
            irq = hv.interrupt(v)
            isr = parent.driver_interrupt()
        else:
            irq, isr = 0.0, 0.0
        drv = isr + (_per_segment(parent.driver_request, units) if units else 0.0)
        stack = _stack(self.end, dev, req.size, units) if units else 0.0
        unmap = dma.unmap_time(req.size) if dma is not None else 0.0
        yield v.hold(
            ("exit", irq), ("guest", stack), ("driver", drv + unmap + remap), ("hypervisor", debt)
        )
        c[PARENT_CPU] += v.smt_lost
        if dma is not None and dma.dynamic:
            unmap += yield from _unmap(dma, first, pages, v, 0.0)
        v.release()
        c[SCHED_WAIT] += sched + debt
        c[PARENT_QUEUE] += queued
        c[INTERRUPT] += irq
        c[PARENT_CPU] += drv + stack
        c[IOMMU] += unmap + remap

    def _receive(self, req: Request) -> Walk:
        parent, dma, dev = self.parent, self.dma, self.device
        # 1. the wire, then the NIC's DMA into the PF's receive queue
        yield from _arrive(self.env, dev, req)
        req.epoch = parent.epoch
        first, pages, translate = _access(dma, req.size)
        yield from dev.deliver(req, translate)
        # 2. the interrupt, the ISR/DPC and the driver's receive per unit the port
        #    delivers, on the parent vCPU the message is steered to; a fresh buffer mapped
        remap = dma.map_time(req.size) if dma is not None else 0.0
        yield from self._complete(req, first, pages, dev.receive_units(req.size), remap)


class HypervisorPath:
    """The guest's paravirtual driver → the hypervisor's own I/O stack → device (VMware
    ESX style): no parent on the way, the stack's CPU on the child's own LP."""

    name = "hypervisor"

    def __init__(
        self,
        env: SimEnv,
        hv: Hypervisor,
        child: ChildPartition,
        device: Device,
        doorbell: float,
        stack: HypervisorIo,
        driver_down: dict[str, float] | None = None,
        own: bool = True,
        dma: DmaDomain | None = None,
    ) -> None:
        self.env = env
        self.hv = hv
        self.child = child
        self.device = device
        self.doorbell = doorbell
        self.dma = dma  # the hypervisor's drivers' translation domain (host.iommu.hypervisor)
        # device → until when the hypervisor's driver for it is down (hv_driver_crash)
        self.driver_down = driver_down if driver_down is not None else {}
        key = names.rng_key(names.child_scope(child.name), "hypervisor_io")
        if not own:  # another device of the child's (streams[i].device): streams of its own
            key = names.rng_key(key, device.name)
        self.request_cost: Draw = stack.request_cost.sampler(env.rng(key, "request_cost"))
        self.completion_cost: Draw = stack.completion_cost.sampler(env.rng(key, "completion_cost"))

    def walk(self, req: Request) -> Walk:
        if self.driver_down:  # the driver restarts: what the guest posts waits in its ring
            until = self.driver_down.get(self.device.name, 0.0)
            if until > self.env.now:
                req.c[GUEST_QUEUE] += until - self.env.now
                yield self.env.timeout(until - self.env.now)
        if req.receive:
            yield from self._receive(req)
            return
        env, child, dma = self.env, self.child, self.dma
        c = req.c
        # 1. PV driver posts to the shared ring and kicks: a doorbell exit into the
        #    hypervisor, whose backend and physical driver (with its DMA map) then run on
        #    the same LP
        v = req.vcpu
        sched, queued = v.take() or (yield from v.wait())
        debt = v.take_debt()
        cost = child.submit_cost() + _stack(child, self.device, req.size, 1)
        kick = self.doorbell
        stack = _per_segment(self.request_cost, self.device.segments(req.size))
        dmap = dma.map_time(req.size) if dma is not None else 0.0
        env.counters["exits.doorbell"] += 1
        yield v.hold(("vsc", cost), ("exit", kick), ("hypervisor", stack + dmap + debt))
        c[GUEST_CPU] += v.smt_lost
        v.release()
        c[SCHED_WAIT] += sched + debt
        c[GUEST_QUEUE] += queued
        c[GUEST_CPU] += cost + stack
        c[INTERRUPT] += kick
        c[IOMMU] += dmap

        # 2. the device, through the physical function: the hypervisor's DMA (translated
        #    in its domain where host.iommu.hypervisor is on)
        dev = self.device
        first, pages, translate = _access(dma, req.size)
        yield from dev.serve(req, translate)

        # 3. the hypervisor takes the device's interrupt and completes on the completing
        #    vCPU's LP (unmapping the buffer), then delivers a virtual interrupt (posted,
        #    or interrupt + EOI exits)
        yield from self._complete(req, first, pages, 1, 0.0)

    def _complete(
        self, req: Request, first: int, pages: int, units: int, remap: float
    ) -> Generator[Waitable, Any, None]:
        """The hypervisor's completion on the completing vCPU's LP: its stack per unit,
        the DMA unmap of the buffer and ``remap`` µs of map work (a fresh receive
        buffer), the virtual interrupt, the guest's PV driver (and stack, on receive)."""
        hv, child, dma, dev = self.hv, self.child, self.dma, self.device
        c = req.c
        v = req.done_vcpu
        irq_of = (yield from dev.await_interrupt(req, v)) if dev.moderated else None
        sched, queued = v.take() or (yield from v.wait())
        debt = v.take_debt()
        # (the draws in the order the walk has always made them)
        receive = req.receive
        stack = _per_segment(self.completion_cost, units) if receive else self.completion_cost()
        irq = hv.interrupt(v) if _handles(irq_of) else 0.0
        if receive:
            cost = _per_segment(child.complete_cost, units) + _stack(child, dev, req.size, units)
        else:
            cost = child.complete_cost()
        virt = child.virt_charge(v)
        unmap = dma.unmap_time(req.size) if dma is not None else 0.0
        yield v.hold(
            ("hypervisor", stack + unmap + remap + debt),
            ("exit", irq),
            ("vsc", cost),
            (child.virt_category, virt),
        )
        c[GUEST_CPU] += v.smt_lost
        if dma is not None and dma.dynamic:
            unmap += yield from _unmap(dma, first, pages, v, 0.0)
        if virt:
            c[GUEST_CPU] += virt
        v.release()
        c[SCHED_WAIT] += sched + debt
        c[GUEST_QUEUE] += queued
        c[GUEST_CPU] += stack + cost
        c[INTERRUPT] += irq
        c[IOMMU] += unmap + remap

    def _receive(self, req: Request) -> Walk:
        dma, dev = self.dma, self.device
        # 1. the wire, then the NIC's DMA into the physical function's receive queue
        #    (translated in the hypervisor's domain where it is on)
        yield from _arrive(self.env, dev, req)
        first, pages, translate = _access(dma, req.size)
        yield from dev.deliver(req, translate)

        # 2. the hypervisor's stack takes it on the LP of the vCPU it is steered to,
        #    unmaps the buffer and maps a fresh one, copies it to the guest's ring and
        #    injects a virtual interrupt; the guest's PV driver and stack, per unit
        remap = dma.map_time(req.size) if dma is not None else 0.0
        yield from self._complete(req, first, pages, dev.receive_units(req.size), remap)


class EmulatedPath:
    """The guest's native driver on an emulated device: every register access exits to
    the device model in the parent, which then drives the device as the routed path's VSP
    does."""

    name = "emulated"

    def __init__(
        self,
        env: SimEnv,
        hv: Hypervisor,
        child: ChildPartition,
        parent: ParentPartition,
        device: Device,
        parent_vcpu: VCpu,
        device_model_exit: float,
        hypercall: float,
        dma: DmaDomain | None = None,
    ) -> None:
        self.env = env
        self.hv = hv
        self.child = child
        self.parent = parent
        self.device = device
        self.parent_vcpu = parent_vcpu
        self.dma = dma  # the parent driver's translation domain (host.iommu.parent)
        spec = child.spec.emulated
        self.exits = spec.exits_per_request
        self.exit_cost = self.exits * device_model_exit
        self.access_cost: Draw = spec.access_cost.sampler(
            env.rng(names.child_scope(child.name), "emulated", "access_cost")
        )
        self.hypercall = hypercall

    def walk(self, req: Request) -> Walk:
        env, hv, child, parent = self.env, self.hv, self.child, self.parent
        c = req.c
        # 1. guest driver; its register accesses exit to the device model one by one
        v = req.vcpu
        sched, queued = v.take() or (yield from v.wait())
        debt = v.take_debt()
        cost = child.submit_cost() + _stack(child, self.device, req.size, 1)
        exits = self.exit_cost
        env.counters["exits.device_model"] += self.exits
        yield v.hold(("guest", cost), ("exit", exits), ("hypervisor", debt))
        c[GUEST_CPU] += v.smt_lost
        v.release()
        c[SCHED_WAIT] += sched + debt
        c[GUEST_QUEUE] += queued
        c[GUEST_CPU] += cost
        c[INTERRUPT] += exits

        # 2. the device model on its parent vCPU: the accesses, the request (as the VSP's,
        #    the payload copied out of guest memory), the physical driver
        pv = self.parent_vcpu
        req.epoch = parent.epoch
        sched, queued = pv.take() or (yield from pv.wait())
        if req.epoch != parent.epoch:  # the parent crashed since: lost
            pv.release()
            raise AbortError
        debt = pv.take_debt()
        access = self.access_cost
        model = sum(access() for _ in range(self.exits))
        segments = self.device.segments(req.size)
        model += _per_segment(parent.vsp_request, segments) + parent.transfer_cost(req.size, 0)
        drv = _per_segment(parent.driver_request, segments)
        dma = self.dma
        dmap = dma.map_time(req.size) if dma is not None else 0.0
        yield pv.hold(("vsp", model), ("driver", drv + dmap), ("hypervisor", debt))
        c[PARENT_CPU] += pv.smt_lost
        pv.release()
        c[SCHED_WAIT] += sched + debt
        c[PARENT_QUEUE] += queued
        c[PARENT_CPU] += model + drv
        c[IOMMU] += dmap

        # 3. the device, through the physical function (and the parent's domain)
        dev = self.device
        first, pages, translate = _access(dma, req.size)
        yield from dev.serve(req, translate)

        # 4. completion on the parent; the device model raises the child's interrupt
        #    (a hypercall)
        irq_of = (yield from dev.await_interrupt(req, pv)) if dev.moderated else None
        env.counters["exits.hypercall"] += 1
        yield from _parent_completion(hv, parent, pv, req, self.hypercall, irq_of)
        if dma is not None and dma.dynamic:
            c[IOMMU] += yield from _unmap(dma, first, pages, pv, dma.unmap_time(req.size))
        pv.release()
        req.epoch = -1  # the child's interrupt is raised: no parent crash loses it now

        # 5. the virtual interrupt on the completing vCPU (posted, or interrupt + EOI
        #    exits), guest completion
        v = req.done_vcpu
        sched, queued = v.take() or (yield from v.wait())
        debt = v.take_debt()
        irq = hv.interrupt(v)
        cost = child.complete_cost()
        virt = child.virt_charge(v)
        yield v.hold(
            ("exit", irq), ("guest", cost), ("hypervisor", debt), (child.virt_category, virt)
        )
        c[GUEST_CPU] += v.smt_lost
        if virt:
            c[GUEST_CPU] += virt
        v.release()
        c[SCHED_WAIT] += sched + debt
        c[GUEST_QUEUE] += queued
        c[INTERRUPT] += irq
        c[GUEST_CPU] += cost
