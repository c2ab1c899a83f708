"""I/O devices: a NIC port, an NVMe drive and a rotating disk, shared by their PCIe functions.

What it models
    **NIC** (send): a request of ``size`` bytes is cut into ``ceil(size / mtu)`` frames,
    each carrying ``frame_overhead`` wire bytes beyond its payload (preamble, headers,
    FCS, inter-frame gap). The port's transmitter serialises one request at a time at
    ``line_rate``; before that, a per-request ``latency`` (descriptor fetch, DMA, pipeline)
    that does not occupy the port, and during which IOMMU translation misses add their
    walks. The frames of one request go out back to back: a send is fetched and
    transmitted as one descriptor chain (as a TSO send is), so the unit of arbitration
    is the request.

    **NIC** (receive): full duplex. A received message of ``size`` bytes comes in as
    ``ceil(size / mtu)`` frames on the port's receive wire, a server of its own at
    ``line_rate`` (frames with ``frame_overhead``, as sent), in arrival order whatever
    its function (:meth:`NicDevice.arrive`): sends and receives share no wire time.
    Waiting for the receive wire is the sender's side (upstream queueing), not part of
    the message's latency, which starts at its last frame. The NIC then steers it to its
    function's receive queue and DMAs it into the next posted buffer (``latency``, plus
    the IOMMU misses of that DMA; :meth:`NicDevice.deliver`) and signals its completion
    like a send's, on the same vector (a queue pair's one MSI-X vector, as Linux mlx5 and
    ixgbe give each channel) and under the same moderation. Simplified: receive buffers
    are always posted (no drops, no receive-queue limit), and the receive wire is never
    halted by a reset (the DMA is: a message in it is given up).

    **Remote peer** (:class:`RemotePeer`, request-response): a send whose stream has a
    peer on another host leaves the port, crosses the switch and the peer's port, waits
    the peer's response time, and its reply comes back over the peer's port and the
    switch onto this port's receive wire, behind the frames arriving there; the send
    completes once the reply is in (docs/design.md §3.4, Peers).

    **Hairpin** (:meth:`NicDevice.hairpin`): a message between two VFs of one port goes
    through its embedded switch: fetched from one function's memory and written into the
    other's posted buffer (``latency`` each), no wire.

    **NVMe** (read, write): ``channels`` commands are served in parallel (the drive's
    internal parallelism). A command holds its channel for the media service time of its
    op (a distribution) plus the transfer of its bytes at ``bandwidth / channels``, plus
    any IOMMU translation misses of its DMA. The controller starts at most ``max_iops``
    commands per second across all its functions (command processing): two starts are at
    least ``1 / max_iops`` apart, whatever the channels allow; ``null`` lifts the limit.

    **Disk** (read, write; Ruemmler & Wilkes, IEEE Computer 1994, method): a rotating
    disk or a RAID-0 array of ``spindles``. A request's place ``u`` (uniform in [0, 1),
    from its stream) fixes its position ``u × span`` and its spindle (the capacity is cut
    into ``DISK_STRIPES`` units dealt round robin); its rotational wait is a uniform share
    of a revolution (its stream's second generator). A spindle serves one command at a
    time: seek from its head's position (``Disk.seek_time``), rotation, transfer at
    ``transfer_rate``. It holds up to ``queue_depth`` commands, the rest wait on the host
    in arrival order, and when it frees it starts the held command with the shortest seek
    (``sstf``) or the oldest (``fifo``). Functions and arbitration do not apply (a disk
    has the PF alone); the device's levels count spindles as servers.

Functions, queues and arbitration (SR-IOV)
    A device has a **physical function** (PF) and ``vfs`` **virtual functions**. The PF
    carries everything the parent's physical driver sends, that is the traffic of every
    routed child together, and that of native children (bare metal: the device's owner);
    VF ``k`` carries the traffic of the direct child it is assigned to
    (``Request.vf``; ``None`` is the PF). Each function has its own queue of requests
    waiting for a server (the NIC's transmitter, an NVMe channel). When a server frees,
    or a request arrives to an idle device, the device's ``arbitration`` picks the next:

    ``round_robin`` (default)
        the functions with waiting requests take turns, one request each (the PF
        ``pf_weight`` in a row; every VF one). A function whose turn ended goes behind
        every function that has requests waiting at the next pick, those that just
        became backlogged included (a pointer moving on, as in a hardware arbiter): a
        request with none of its own function's ahead of it waits for a server to free
        and at most one turn of each other backlogged function, whatever their queue
        lengths. This is NVMe's round-robin command arbitration, which every controller
        supports between its submission queues (NVM Express Base Specification,
        "Command Arbitration"), applied across the functions' queues; NICs arbitrate
        their transmit queues likewise. Arbitration across functions is vendor-specific
        in both, so that it is round robin is an assumption. Routed children share the
        PF's queue, hence one share of the device between them (``pf_weight`` shares).
    ``fifo``
        one queue in arrival order across functions: a backlogged function delays every
        other in proportion to its own queue length (the behaviour of a device with one
        shared queue).

    With one function in use the two are identical (same order, same waits).

    **NVMe queue depth**: a function has at most ``queue_depth - 1`` commands in the
    device (waiting for a channel or in service): its I/O submission queue has
    ``queue_depth`` entries, and a full NVMe queue keeps one entry empty, so the Linux
    driver gives a queue of ``q_depth`` entries ``q_depth - 1`` request tags. Further
    requests wait on the host, in the function's backlog, in arrival order, and enter the
    device as its commands complete (counted in ``device.NAME.queue_full``). One I/O
    queue per function: a VF exposes few, and the host's per-CPU queues of one function
    add entries, not shares, under round robin across functions.

    **NIC queues per function**: one transmit queue per function. Several queues of one
    function would not change the port's work (one transmitter serialises them) and,
    under round robin over queues, would only give the function one share per
    backlogged queue: that is what ``pf_weight`` expresses for the PF, the function
    where the parent's many channels meet.

What is measured
    ``servers.busy`` (servers in use) and ``servers.queue_level`` (requests in the device
    waiting for a server, all functions) are time-weighted levels; ``servers.backlog`` is
    the requests waiting on the host for a queue entry (NVMe ``queue_depth``). A request's
    ``device_queue`` component is its whole wait, backlog and queue; ``device_service``
    its service. Per function (:meth:`Device.function_stats`): requests completed, mean
    wait, largest number in the device. Counters: ``device.NAME.queue_full`` (requests
    that found their function's queue full) and ``device.NAME.iops_limited`` (requests
    that found a channel free but had to wait for ``max_iops``).

Completion interrupts and their moderation
    A request's completion is signalled by an interrupt of its function. A function has
    one interrupt vector per vCPU its completions go to (per-queue MSI-X vectors: Linux
    gives each CPU its own NVMe queue and each NIC queue pair its own vector): the parent
    vCPU of a routed request's channel or of an emulated child's device model, the
    completing vCPU of a direct, native or hypervisor request. With one completing vCPU,
    that is the function's one interrupt.

    ``interrupt_moderation: {usecs, frames}`` (coalescing) holds a vector's interrupt
    back until ``frames`` completions are pending or ``usecs`` µs have passed since the
    first of them, whichever comes first: the condition of Linux's ``struct
    ethtool_coalesce`` (include/uapi/linux/ethtool.h, read: ``(usecs > 0 &&
    time_since_first_completion >= usecs) || (max_frames > 0 && completed_frames >=
    max_frames)``; ``usecs 0, frames 1`` disables coalescing, both 0 is invalid), as
    ``ethtool -C tx-usecs / tx-frames`` set it on a NIC. NVMe's Interrupt Coalescing
    feature (08h) is the same per vector with ``frames = THR + 1`` and ``usecs = TIME ×
    100 µs`` (there TIME 0 disables it: write ``frames: 1``). The default, ``usecs: 0us,
    frames: 1``, raises one interrupt per completion and costs no event.

    One interrupt delivers every completion pending on its vector. The paths
    (:mod:`sim.model.iopaths`) pay the per-interrupt costs (the parent driver's ISR/DPC,
    interrupt and EOI exits when interrupts are not posted, the interrupt counters) once,
    in the first of its completions to reach the target vCPU (:meth:`Interrupt.take`); the
    others pay their per-completion costs only, behind it on the same vCPU. The time a
    completion waits for its vector's interrupt is its ``interrupt`` component (the
    interrupt's delivery, which the moderation delays). Counters per function:
    ``device.NAME.FN.completions`` and ``device.NAME.FN.interrupts`` (``FN`` is ``pf`` or
    ``vfK``); their ratio is the completions each interrupt delivered.

    Simplified: the moderation is static (no adaptive moderation such as Linux's DIM);
    a vector's timer starts at its first pending completion (EQE-based, not restarted by
    later completions).

Segmentation offload (NIC ``tso``)
    With ``tso: true`` (default) the sending stack hands the NIC a whole request and the
    NIC cuts it into frames (the wire time above). With ``tso: false`` the stack cuts it
    into ``ceil(size / mtu)`` segments in software (:meth:`Device.segments`), and the
    paths pay the sending stack's per-request CPU cost once per segment (which costs:
    :mod:`sim.model.iopaths`). The wire time is the same either way; the completion stays one
    per request (the segments of a request complete together). Simplified: with TSO
    a request larger than 64 KiB (Linux ``GSO_MAX_SIZE``) is still handed over as one
    send, where a stack would make several TSO sends of it.

Receive coalescing (NIC ``lro``)
    With ``lro: true`` (default; NIC LRO, or Linux GRO in the receiving stack) the frames
    of a received message reach the receiving stacks as one unit; with ``lro: false``
    each frame is a unit of its own (:meth:`Device.receive_units`), and the paths pay
    the receiving stacks' per-request costs once per frame (which costs:
    :mod:`sim.model.iopaths`). The wire time and the DMA are the same either way.

Reset (a ``device_reset`` fault, :mod:`sim.model.faults`)
    :meth:`Device.halt`: every request waiting in the device (in a function's queue, or
    on the host for a queue entry) fails at once (:class:`~sim.model.workloads.AbortError`); a
    command in service runs out its service time on its server and is then dropped, not
    completed; no request starts until the reset is over, and those that arrive
    meanwhile wait (``device_queue``). The fault marks every attempt that was in the
    device (``Request.at``) given up, and its guest retries it. A NIC request is in the
    device from its descriptor fetch (``latency``) on. Simplified: a reset clears no
    pending interrupt (a completion already signalled is delivered).

Randomness
    Service times are drawn from the *issuing stream's* generators (keys
    ``child.NAME/stream.J/service.OP``), so the n-th request of a stream gets the same
    service time whichever path it takes: routed and direct runs are paired. Arbitration
    is deterministic (no random tie-breaking).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy

from sim.model.env import SimEnv, Waitable
from sim.model.hypervisor import VCpu
from sim.model.metrics import DEVICE_QUEUE, DEVICE_SERVICE, INTERRUPT, IOMMU
from sim.model.queues import Function, Interrupt, Servers, Vector
from sim.model.request import AbortError, Request
from sim.scenario import names
from sim.scenario.distributions import BLOCK
from sim.scenario.hardware import DISK_STRIPES, Disk, Nic, Nvme, interrupt_vcpu
from sim.scenario.workload import RemotePeer as RemotePeerSpec


class Device(ABC):
    """Common part of the device models."""

    kind = ""
    ops: tuple[str, ...] = ()
    irq_vcpu: int | None = None
    """The parent vCPU that takes all the PF's routed traffic, where one does (a
    single-queue NIC: :func:`sim.scenario.hardware.interrupt_vcpu`)."""

    def __init__(self, env: SimEnv, spec: Nic | Nvme | Disk, servers: Servers) -> None:
        self.env = env
        self.spec = spec
        self.name = spec.name
        self.vfs = spec.vfs
        self.servers = servers
        self.vf_owner: dict[int, str] = {}
        self.completed = 0
        mod = spec.interrupt_moderation
        # frames 1: every completion raises its interrupt at once, whatever usecs
        self.moderated = mod.frames != 1
        self._usecs = mod.usecs
        self._frames = mod.frames

    @abstractmethod
    def samplers(self, env: SimEnv, key: str) -> dict[str, Callable[[], float]]:
        """Service-time samplers for one stream, by op (a disk's: :class:`DiskDraw`)."""

    @abstractmethod
    def serve(self, req: Request, translate: float) -> Generator[Waitable, Any, None]:
        """Serve ``req`` through its function (``req.vf``; ``None``: the PF);
        ``translate`` is its IOMMU miss time (0 without IOMMU)."""

    def segments(self, size: int) -> int:
        """Segments the sending stack cuts a request of ``size`` bytes into before it
        reaches the device: 1 unless a NIC without TSO (module docstring)."""
        return 1

    def receive_units(self, size: int) -> int:
        """Units a received message of ``size`` bytes reaches the receiving stacks as:
        1 unless a NIC without LRO (module docstring)."""
        return 1

    def arrive(self, req: Request) -> Generator[Waitable, Any, float]:
        """The frames of received message ``req`` come in on the receive wire (NIC);
        returns the µs from its first frame's turn to its last frame's arrival."""
        raise TypeError(f"device '{self.name}' receives nothing")

    def deliver(self, req: Request, translate: float) -> Generator[Waitable, Any, None]:
        """DMA of received message ``req`` into its function's receive queue (NIC)."""
        raise TypeError(f"device '{self.name}' receives nothing")

    def _completed(self, fn: Function) -> None:
        """Count a completion of ``fn``, and its interrupt when it raises one at once."""
        self.completed += 1
        counters = self.env.counters
        counters[fn.completions_key] += 1
        if not self.moderated:
            counters[fn.interrupts_key] += 1

    def await_interrupt(self, req: Request, target: VCpu) -> Generator[Waitable, Any, Interrupt]:
        """Under moderation (``moderated``): ``req`` has completed; wait for the interrupt
        of its function's vector that targets ``target`` and return it (the caller runs
        its handler if :meth:`Interrupt.take` says so). The wait is ``req``'s
        ``interrupt`` component."""
        env = self.env
        fn = self.interrupting(req)
        vec = fn.vectors.get(target)
        if vec is None:
            vec = fn.vectors[target] = Vector()
        irq = vec.irq
        vec.pending += 1
        if vec.pending == self._frames:  # frames 0: the timer alone
            self._raise(fn, vec)
            return irq
        if vec.pending == 1 and self._usecs > 0:
            gen = vec.gen
            env.after(self._usecs, lambda _ev: self._raise(fn, vec) if vec.gen == gen else None)
        ev = env.event()
        vec.waiting.append(ev)
        t0 = env.now
        yield ev
        req.c[INTERRUPT] += env.now - t0
        return irq

    def interrupting(self, req: Request) -> Function:
        """The function whose vectors raise ``req``'s completion interrupt: its own."""
        return self.servers.function(req.vf)

    def _raise(self, fn: Function, vec: Vector) -> None:
        """``vec`` raises its interrupt: every completion pending on it is delivered."""
        self.env.counters[fn.interrupts_key] += 1
        vec.gen += 1
        vec.irq = Interrupt()
        vec.pending = 0
        waiting, vec.waiting = vec.waiting, []
        for ev in waiting:
            ev.succeed()

    def utilization(self) -> float:
        """Mean share of servers busy since the last reset."""
        return self.servers.busy.mean() / self.servers.capacity

    def function_stats(self) -> list[tuple[str, int, float, int]]:
        """Per function used since the start, PF first then VFs by index:
        ``(name, requests completed, mean wait µs, most requests in the device)``
        since the last reset."""
        fs = self.servers.functions
        order = sorted(fs, key=lambda vf: -1 if vf is None else vf)
        return [
            (
                fs[k].name,
                fs[k].completed,
                fs[k].waited / fs[k].completed if fs[k].completed else 0.0,
                fs[k].max_in_device,
            )
            for k in order
        ]

    def members(self) -> list[Servers]:
        """Its servers, per member port of a teamed NIC (the device's own first)."""
        return [self.servers]

    def halt(self, until: float) -> None:
        """A reset until ``until`` (module docstring)."""
        self.servers.halt(until)

    def reset(self) -> None:
        """End of warm-up."""
        self.servers.reset()
        self.completed = 0


class NicDevice(Device):
    """A NIC port: a transmitter shared by the functions' queues, and a receive wire."""

    kind = "nic"
    ops: tuple[str, ...] = ("send", "receive")

    def __init__(self, env: SimEnv, spec: Nic) -> None:
        servers = Servers(
            env, 1, name=spec.name, arbitration=spec.arbitration, pf_weight=spec.pf_weight
        )
        super().__init__(env, spec, servers)
        self._spec = spec
        self.irq_vcpu = interrupt_vcpu(spec)
        self.wire_time = spec.wire_time  # µs on the wire for a payload (the spec's physics)
        self._software_segmentation = not spec.tso
        self._per_frame_receive = not spec.lro
        # full duplex: the receive direction's own wire, frames in arrival order
        self.rx = Servers(env, 1, name=f"{spec.name}.rx", arbitration="fifo")
        # a team (spec.team): member k > 0 has wires of its own, ``NAME.port[k]``
        members = [f"{spec.name}.port[{k}]" for k in range(1, spec.ports)]
        self.ports = [servers] + [
            Servers(env, 1, name=m, arbitration=spec.arbitration, pf_weight=spec.pf_weight)
            for m in members
        ]
        self.rx_ports = [self.rx] + [
            Servers(env, 1, name=f"{m}.rx", arbitration="fifo") for m in members
        ]
        self._round_robin = spec.team is not None and spec.team.policy == "round_robin"
        self._turn = [0, 0]  # round robin: the next member to transmit, to receive

    def member(self, req: Request, receive: bool = False) -> Servers:
        """The member port's wire (transmit, or ``receive``) that carries ``req``: the
        only one; the next in turn (round_robin, which it keeps in ``req.flow``); its
        flow's (hash: ``req.flow``)."""
        ports = self.rx_ports if receive else self.ports
        if len(ports) == 1:
            return ports[0]
        if self._round_robin:
            k = self._turn[receive]
            self._turn[receive] = (k + 1) % len(ports)
            req.flow = k
            return ports[k]
        return ports[req.flow]

    def interrupting(self, req: Request) -> Function:
        """The function whose vectors raise ``req``'s completion interrupt: on a team,
        its function on the member port that carried it (each member port its own PF and
        VFs, each function its own vectors)."""
        ports = self.ports
        return (ports[0] if len(ports) == 1 else ports[req.flow]).function(req.vf)

    def members(self) -> list[Servers]:
        """Every member port's transmit wire, the first (the device's own) first."""
        return self.ports

    def segments(self, size: int) -> int:
        return self._spec.frames(size) if self._software_segmentation else 1

    def receive_units(self, size: int) -> int:
        return self._spec.frames(size) if self._per_frame_receive else 1

    def samplers(self, env: SimEnv, key: str) -> dict[str, Callable[[], float]]:
        return {
            "send": self._spec.latency.sampler(env.rng(key, "service.send")),
            "receive": self._spec.latency.sampler(env.rng(key, "service.receive")),
        }

    def arrive(self, req: Request) -> Generator[Waitable, Any, float]:
        env = self.env
        rx = self.rx if len(self.rx_ports) == 1 else self.member(req, True)
        fn = rx.function(req.vf)
        t0 = env.now
        yield from rx.acquire(fn)
        yield env.timeout(self.wire_time(req.size))
        rx.release(fn)
        return env.now - t0

    def deliver(self, req: Request, translate: float) -> Generator[Waitable, Any, None]:
        if req.dead:  # given up on its way here (sim.model.faults)
            raise AbortError
        latency = req.service()
        req.at = self
        yield self.env.timeout(latency + translate)
        req.at = None
        if req.dead:  # a reset while it was written
            raise AbortError
        self._completed(self.servers.function(req.vf))
        c = req.c
        c[IOMMU] += translate
        c[DEVICE_SERVICE] += latency

    def hairpin(
        self, req: Request, out: float, vf: int | None, into: float
    ) -> Generator[Waitable, Any, None]:
        """A frame from one function to another of this port through its embedded
        switch (VF to VF on one host): the transmit side fetches and reads it (``latency``,
        plus ``out`` of IOMMU misses), the receive side writes it into function ``vf``'s
        posted buffer (``latency`` again, plus ``into``). No wire: neither direction of
        the port is taken, and the embedded switch is taken as never the bottleneck."""
        if req.dead:
            raise AbortError
        fetch, write = req.service(), req.service()
        req.at = self
        yield self.env.timeout(fetch + out + write + into)
        req.at = None
        if req.dead:
            raise AbortError
        self._completed(self.servers.function(vf))
        c = req.c
        c[IOMMU] += out + into
        c[DEVICE_SERVICE] += fetch + write

    def receive_utilization(self) -> float:
        """Share of time the receive wire was busy since the last reset."""
        return self.rx.busy.mean()

    def reset(self) -> None:
        super().reset()
        for s in (*self.ports[1:], *self.rx_ports):
            s.reset()

    def halt(self, until: float) -> None:
        for s in self.ports:
            s.halt(until)

    def serve(self, req: Request, translate: float) -> Generator[Waitable, Any, None]:
        if req.dead:  # given up on its way here (sim.model.faults)
            raise AbortError
        c = req.c
        latency = req.service()
        req.at = self
        yield self.env.timeout(latency + translate)
        if req.dead:  # a reset while its descriptor was fetched
            raise AbortError
        servers = self.servers if len(self.ports) == 1 else self.member(req)
        fn = servers.function(req.vf)
        queued = yield from servers.acquire(fn)
        wire = self.wire_time(req.size)
        yield self.env.timeout(wire)
        servers.release(fn)
        req.at = None
        if req.dead:  # a reset while it was sent
            raise AbortError
        if req.peer is not None:  # request-response: out to the peer, completed by its reply
            yield from req.peer.visit(req, self)
        self._completed(fn)
        c[IOMMU] += translate
        c[DEVICE_QUEUE] += queued
        c[DEVICE_SERVICE] += latency + wire


class RemotePeer:
    """A peer on another host (docs/design.md, peers): a request sent on the child's
    port crosses the switch (``switch_latency``) and the peer's own port (store and
    forward, at the child's port's rate, the peer's port taken as uncontended) to the
    peer, which answers after its response time; the reply crosses the peer's port, the
    switch, and the child's receive wire, behind the frames arriving there. One-way is
    submission to the request's last byte at the peer; ``network`` the switch and wire
    time after the child's own transmission, ``peer`` the response time."""

    def __init__(self, env: SimEnv, spec: RemotePeerSpec, nic: Device, key: str) -> None:
        if not isinstance(nic, NicDevice):  # the schema allows peers on send streams only
            raise TypeError(f"a remote peer needs a NIC, not device '{nic.name}'")
        self.switch = spec.switch_latency
        self.response = spec.response.sampler(env.rng(key, "peer.response"))
        self.reply_size = spec.reply_size.sampler(env.rng(key, "peer.reply_size"))

    def visit(self, req: Request, nic: NicDevice) -> Generator[Waitable, Any, None]:
        env = nic.env
        t0 = env.now
        wire_out = self.switch + nic.wire_time(req.size)
        yield env.timeout(wire_out)
        one_way = env.now - req.t_submit
        response = self.response()
        reply = max(1, int(self.reply_size()))
        yield env.timeout(response + nic.wire_time(reply) + self.switch)
        rx = nic.rx if len(nic.rx_ports) == 1 else nic.member(req, True)  # a team's member
        fn = rx.function(req.vf)
        yield from rx.acquire(fn)
        yield env.timeout(nic.wire_time(reply))
        rx.release(fn)
        if req.dead:  # given up while away (sim.model.faults)
            raise AbortError
        req.trip = (env.now - t0 - response, response, one_way)


class NvmeDevice(Device):
    """An NVMe drive."""

    kind = "nvme"
    ops: tuple[str, ...] = ("read", "write")

    def __init__(self, env: SimEnv, spec: Nvme) -> None:
        servers = Servers(
            env,
            spec.channels,
            name=spec.name,
            arbitration=spec.arbitration,
            pf_weight=spec.pf_weight,
            depth=spec.queue_depth - 1,
            start_gap=1e6 / spec.max_iops if spec.max_iops is not None else 0.0,
        )
        super().__init__(env, spec, servers)
        self._spec = spec
        self._transfer_time = env.cached(spec.transfer_time)

    def samplers(self, env: SimEnv, key: str) -> dict[str, Callable[[], float]]:
        return {op: self._spec.media(op).sampler(env.rng(key, f"service.{op}")) for op in self.ops}

    def serve(self, req: Request, translate: float) -> Generator[Waitable, Any, None]:
        if req.dead:  # given up on its way here (sim.model.faults)
            raise AbortError
        c = req.c
        servers = self.servers
        fn = servers.function(req.vf)
        req.at = self
        queued = servers.take(fn)
        if queued is None:
            queued = yield from servers.wait(fn)
        service = req.service() + self._transfer_time(req.size)
        yield self.env.timeout(service + translate)
        servers.release(fn)
        req.at = None
        if req.dead:  # a reset while it was served
            raise AbortError
        self._completed(fn)
        c[IOMMU] += translate
        c[DEVICE_QUEUE] += queued
        c[DEVICE_SERVICE] += service


class DiskDraw:
    """One stream's draws for one op on a disk: the request's place (``draw()``, uniform
    in [0, 1)) and its rotational wait (:meth:`rotation`, a uniform share of a revolution),
    each from its own generator."""

    __slots__ = ("_block", "_i", "_rng", "_rot", "_rot_block", "_rot_i")

    def __init__(self, place: np.random.Generator, rotation: np.random.Generator) -> None:
        self._rng, self._rot = place, rotation
        self._block: list[float] = []
        self._rot_block: list[float] = []
        self._i = self._rot_i = 0

    def __call__(self) -> float:
        if self._i >= len(self._block):
            self._block, self._i = self._rng.random(BLOCK).tolist(), 0
        self._i += 1
        return self._block[self._i - 1]

    def rotation(self) -> float:
        if self._rot_i >= len(self._rot_block):
            self._rot_block, self._rot_i = self._rot.random(BLOCK).tolist(), 0
        self._rot_i += 1
        return self._rot_block[self._rot_i - 1]


class _Spindle:
    """One drive of a disk: where its head is, whether it serves a command, the commands
    it holds waiting (position, arrival number, event), and those waiting on the host."""

    __slots__ = ("backlog", "busy", "head", "held", "waiting")

    def __init__(self) -> None:
        self.head = 0.0
        self.busy = False
        self.held = 0  # commands in the drive: waiting or in service
        self.waiting: list[tuple[float, int, simpy.Event]] = []
        self.backlog: deque[simpy.Event] = deque()


class DiskDevice(Device):
    """A rotating disk or a RAID-0 array of them (module docstring)."""

    kind = "disk"
    ops: tuple[str, ...] = ("read", "write")

    def __init__(self, env: SimEnv, spec: Disk) -> None:
        # the servers keep the functions, their counts and the levels; the spindles serve
        servers = Servers(env, spec.spindles, name=spec.name, arbitration="fifo")
        super().__init__(env, spec, servers)
        self._spec = spec
        self.spindles = [_Spindle() for _ in range(spec.spindles)]
        self._sstf = spec.scheduling == "sstf"
        self._depth = spec.queue_depth
        self._revolution = spec.revolution
        self._seek = spec.seek_time
        self._transfer = spec.transfer_time
        self._seq = 0
        self._closed_until = -math.inf  # a reset: nothing starts before
        self._full_key = names.metric(spec.name, "queue_full")

    def samplers(self, env: SimEnv, key: str) -> dict[str, Callable[[], float]]:
        return {
            op: DiskDraw(env.rng(key, f"service.{op}"), env.rng(key, f"service.{op}.rotation"))
            for op in self.ops
        }

    def serve(self, req: Request, translate: float) -> Generator[Waitable, Any, None]:
        if req.dead:  # given up on its way here (sim.model.faults)
            raise AbortError
        env, spec, servers = self.env, self._spec, self.servers
        draw = req.service
        assert isinstance(draw, DiskDraw)
        place = draw()
        rotation = draw.rotation() * self._revolution
        position = place * spec.span
        sp = self.spindles[int(place * DISK_STRIPES) % len(self.spindles)]
        fn = servers.function(req.vf)
        req.at = self
        t0 = env.now
        if sp.held >= self._depth:  # on the host until the drive takes it
            ev = env.event()
            sp.backlog.append(ev)
            servers.backlog.add(1)
            env.counters[self._full_key] += 1
            yield ev
        else:
            sp.held += 1
        fn.in_device += 1
        fn.max_in_device = max(fn.max_in_device, fn.in_device)
        if sp.busy or env.now < self._closed_until:
            ev = env.event()
            self._seq += 1
            sp.waiting.append((position, self._seq, ev))
            servers.queue_level.add(1)
            try:
                yield ev
            except AbortError:
                fn.in_device -= 1
                raise
        else:
            sp.busy = True
            servers.busy.add(1)
        queued = env.now - t0
        seek = self._seek(abs(position - sp.head))
        service = seek + rotation + self._transfer(req.size)
        yield env.timeout(service + translate)
        sp.head = position
        fn.in_device -= 1
        fn.completed += 1
        fn.waited += queued
        self._next(sp)
        req.at = None
        if req.dead:  # a reset while it was served
            raise AbortError
        self._completed(fn)
        c = req.c
        c[IOMMU] += translate
        c[DEVICE_QUEUE] += queued
        c[DEVICE_SERVICE] += service

    def _next(self, sp: _Spindle) -> None:
        """The spindle finished a command: the host hands it one more, and it starts the
        command its scheduling picks, or goes idle."""
        servers = self.servers
        sp.held -= 1
        if sp.backlog:
            servers.backlog.add(-1)
            sp.held += 1
            sp.backlog.popleft().succeed()
        if sp.waiting and self.env.now >= self._closed_until:
            self._start(sp)
        else:
            sp.busy = False
            servers.busy.add(-1)

    def _start(self, sp: _Spindle) -> None:
        """Start the waiting command the scheduling picks (the spindle is taken)."""
        waiting = sp.waiting
        if self._sstf:
            head = sp.head
            i = min(range(len(waiting)), key=lambda k: (abs(waiting[k][0] - head), waiting[k][1]))
        else:
            i = min(range(len(waiting)), key=lambda k: waiting[k][1])
        _pos, _seq, ev = waiting.pop(i)
        self.servers.queue_level.add(-1)
        ev.succeed()

    def halt(self, until: float) -> None:
        """A reset: every command waiting in a spindle or on the host fails; commands in
        service run out and are dropped; nothing starts before ``until``."""
        servers = self.servers
        dropped: list[simpy.Event] = []
        for sp in self.spindles:
            dropped += [ev for _p, _s, ev in sp.waiting]
            sp.held -= len(sp.waiting)
            servers.queue_level.add(-len(sp.waiting))
            sp.waiting.clear()
            servers.backlog.add(-len(sp.backlog))
            dropped += sp.backlog
            sp.backlog.clear()
        self._closed_until = max(self._closed_until, until)
        for ev in dropped:
            ev.fail(AbortError())
        self.env.after(until - self.env.now, lambda _ev: self._reopen())

    def _reopen(self) -> None:
        if self.env.now < self._closed_until:
            return
        for sp in self.spindles:
            if not sp.busy and sp.waiting:
                sp.busy = True
                self.servers.busy.add(1)
                self._start(sp)


def build(env: SimEnv, spec: Nic | Nvme | Disk) -> Device:
    """The device model for a device spec."""
    if isinstance(spec, Nic):
        return NicDevice(env, spec)
    if isinstance(spec, Disk):
        return DiskDevice(env, spec)
    return NvmeDevice(env, spec)
