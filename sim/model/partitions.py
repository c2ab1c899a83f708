"""Parent and child partitions: their vCPUs and the per-request costs of their drivers.

What it models
    The **parent** (root) partition owns the physical devices and runs the VSPs: per
    routed request, the VSP's request cost plus the transfer of the payload (copied
    through the send buffer at ``copy_bandwidth`` when it is small, described by a page
    list at ``page_cost`` per page when it is large), then the physical driver's request
    cost; per completion, the driver's interrupt cost and the VSP's completion cost.

    Each VMBus channel, primary or sub-channel (:mod:`sim.model.vmbus`), is served by one parent
    vCPU, which takes its requests out of the outbound ring, runs the VSP and the driver,
    takes the device's completion interrupts and fills the inbound ring. Channels are
    placed round robin over the parent's vCPUs across all channels of all routed children,
    in the order the children appear and, within a child, primary first: the k-th channel
    opened goes to parent vCPU ``k mod vcpus``. A child's channels thus land on distinct
    parent vCPUs while there are enough, and two children share a parent vCPU only when
    every parent vCPU already serves as many channels. Assumed: the host's choice of the
    root vCPU that serves a channel is not documented; this spreads the load evenly when
    the channels carry alike.

    The parent may carry work of its own (``parent.cpu_load``: its management stack, a
    backup, a driver domain's applications), CPU-bound background load on its vCPUs that
    the VSP and driver work items take the vCPU from at once (docs/design.md §3.1, "The
    parent's own work").

    A **child** partition has its vCPUs and its guest driver's costs (the VSC on the
    routed path, the VF driver on the direct path, the native driver on bare metal), and
    optionally CPU-bound background load on some vCPUs (``cpu_load``).

    Placement: parent vCPU i runs on LP i under ``root: pinned`` (or on ``parent.pin``);
    with ``minroot: N`` the parent keeps LPs 0..N-1 and children run on the others; a
    child's ``pin`` fixes each vCPU's LP.

    Costs may be distributions; each has its own generator (``parent.vsp/request_cost``,
    ``child.NAME/guest/submit_cost``, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sim.model.env import SimEnv
from sim.model.hypervisor import Background, Hypervisor, VCpu
from sim.scenario import names
from sim.scenario.distributions import Draw
from sim.scenario.hardware import Host as HostSpec
from sim.scenario.hardware import Parent as ParentSpec
from sim.scenario.workload import Child as ChildSpec
from sim.scenario.workload import CpuLoad


def _affinity(pin: list[int] | None, i: int, allowed: range | None) -> Sequence[int] | None:
    if pin is not None:
        return [pin[i]]
    return allowed


def _background(env: SimEnv, vcpus: list[VCpu], load: CpuLoad | None, scope: str) -> None:
    """Give the vCPUs ``load`` selects their background load (``cpu_load``)."""
    if load is None:
        return
    for i in load.vcpus if load.vcpus is not None else range(len(vcpus)):
        key = names.rng_key(scope, f"cpu_load.vcpu[{i}]")
        busy = load.busy.sampler(env.rng(key, "busy")) if load.busy else None
        vcpus[i].bg = Background(busy, load.idle.sampler(env.rng(key, "idle")))


class ParentPartition:
    """The root partition."""

    name = "parent"

    def __init__(self, env: SimEnv, hv: Hypervisor, spec: ParentSpec, host: HostSpec) -> None:
        self.spec = spec
        sch = host.scheduler
        self.domain = hv.domain(self.name, spec.weight, spec.cap)
        pinned = sch.root == "pinned" or sch.policy == "pinned"
        pin = spec.pin if spec.pin is not None else (list(range(spec.vcpus)) if pinned else None)
        allowed = range(sch.minroot) if sch.minroot else None
        dispatch = host.costs.vcpu_dispatch
        self.vcpus = [
            hv.vcpu(self.domain, i, dispatch, _affinity(pin, i, allowed)) for i in range(spec.vcpus)
        ]
        for v in self.vcpus:
            v.halt_cost = host.costs.halt_exit
        _background(env, self.vcpus, spec.cpu_load, "parent")
        vsp, drv = spec.vsp, spec.driver
        self.vsp_request: Draw = vsp.request_cost.sampler(env.rng("parent.vsp", "request_cost"))
        self.vsp_completion: Draw = vsp.completion_cost.sampler(
            env.rng("parent.vsp", "completion_cost")
        )
        self.driver_request: Draw = drv.request_cost.sampler(
            env.rng("parent.driver", "request_cost")
        )
        self.driver_interrupt: Draw = drv.interrupt_cost.sampler(
            env.rng("parent.driver", "interrupt_cost")
        )
        # VSP CPU to move a payload: copy it, or walk its page list (the spec's physics;
        # a VSP slowdown scales it for a while, sim.model.faults)
        self.transfer_cost: Callable[[int, int], float] = env.cached(vsp.transfer_cost)
        # VSP CPU to flip a received payload's pages to a child (parent.vsp.receive: flip)
        self.flip_cost: Callable[[int, int], float] = vsp.receive_cost
        self.flips = vsp.receive == "flip"
        # changes when the parent crashes and when it restarts (sim.model.faults): a request
        # that entered the parent under another epoch was lost with its state
        self.epoch = 0

    def receive_cost(self, size: int, units: int) -> float:
        """VSP CPU to hand a received payload of ``size`` bytes (``units`` frames, or one
        coalesced unit) to a routed child: a copy into its receive buffer, or a page flip
        per page of every unit (``parent.vsp.receive``)."""
        if self.flips:
            return self.flip_cost(size, units)
        return self.transfer_cost(size, 0)


class ChildPartition:
    """One child partition instance."""

    def __init__(
        self, env: SimEnv, hv: Hypervisor, name: str, spec: ChildSpec, host: HostSpec
    ) -> None:
        self.name = name
        self.spec = spec
        self.domain = hv.domain(name, spec.weight, spec.cap)
        minroot = host.scheduler.minroot
        allowed = range(minroot, host.cores) if minroot else None
        # bare metal has no world switch
        dispatch = 0.0 if spec.io_path == "native" else host.costs.vcpu_dispatch
        self.vcpus = [
            hv.vcpu(self.domain, i, dispatch, _affinity(spec.pin, i, allowed))
            for i in range(spec.vcpus)
        ]
        if spec.io_path != "native":
            for v in self.vcpus:
                v.halt_cost = host.costs.halt_exit
        _background(env, self.vcpus, spec.cpu_load, names.child_scope(name))
        timer = spec.timer
        self.timer_handler: Draw | None = (
            timer.handler_cost.sampler(env.rng(names.child_scope(name), "timer", "handler_cost"))
            if timer.mode != "off"
            else None
        )
        self.submit_cost: Draw = spec.guest.submit_cost.sampler(
            env.rng(names.child_scope(name), "guest", "submit_cost")
        )
        self.complete_cost: Draw = spec.guest.complete_cost.sampler(
            env.rng(names.child_scope(name), "guest", "complete_cost")
        )
        # CPU and memory virtualization beyond native, per request (host.cpu_virtualization)
        cpu = host.cpu_virtualization
        g = spec.guest
        bare = spec.io_path == "native"
        self.virt_cost = (
            0.0
            if bare
            else cpu.per_request(
                g.syscalls_per_request,
                g.privileged_ops_per_request,
                g.page_table_updates_per_request,
            )
        )
        self.virt_category = "exit" if cpu.mode == "hardware" else "hypervisor"
        self._warmup = 0.0 if bare else cpu.translation_warmup
        self._translated: set[int] = set()  # vCPUs whose translation cache is warm
        # the guest's protocol stack on NIC streams (0 and no copy: not modelled)
        self.stack = g.has_stack
        self.packet_cost: Draw | None = (
            g.packet_cost.sampler(env.rng(names.child_scope(name), "guest", "packet_cost"))
            if self.stack
            else None
        )
        self.copy_cost = g.copy_cost
        self.requested_path: str = spec.io_path
        self.io_path: str = spec.io_path
        self.vf: int | None = None
        self.scope = names.child_scope(name)  # of its streams' random draws

    def virt_charge(self, vcpu: VCpu) -> float:
        """CPU virtualization's cost of one request completing on ``vcpu``: the per-request
        cost, plus the translation-cache warm-up on the vCPU's first request."""
        if self._warmup and vcpu.index not in self._translated:
            self._translated.add(vcpu.index)
            return self.virt_cost + self._warmup
        return self.virt_cost


class ParentEndpoint(ChildPartition):
    """The parent as the end point of its own streams (``parent.streams``): a stream's
    view of it, on the parent's own vCPUs and domain. It has no guest driver, no VSC and
    no CPU-virtualization charge of its own (its path, :class:`~sim.model.iopaths.ParentPath`,
    charges the parent's physical driver); its streams draw under the ``parent`` scope."""

    def __init__(self, env: SimEnv, parent: ParentPartition, spec: ChildSpec) -> None:
        # shares the parent's state; its spec is the plan's (sim.scenario.plan.parent_spec)
        self.name = parent.name
        self.spec = spec
        self.domain = parent.domain
        self.vcpus = parent.vcpus
        self.timer_handler = None
        self.submit_cost = parent.driver_request
        self.complete_cost = parent.driver_interrupt
        self.virt_cost = 0.0
        self.virt_category = "exit"
        self._warmup = 0.0
        self._translated = set()
        # its protocol stack on NIC streams (parent.stack; 0 and no copy: not modelled)
        g = spec.guest
        self.stack = g.has_stack
        self.packet_cost = (
            g.packet_cost.sampler(env.rng("parent.stack", "packet_cost")) if self.stack else None
        )
        self.copy_cost = g.copy_cost
        self.requested_path = self.io_path = "parent"
        self.vf = None
        self.scope = "parent"
