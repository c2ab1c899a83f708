"""The deployment plan: where every child's I/O runs, decided once from the scenario.

:func:`plan` is a pure function of a checked :class:`~sim.scenario.schema.Scenario`. The
model builds the host from it (:mod:`sim.model.host`), the analytic estimate reads it
(:mod:`sim.analysis.analytic`), the work budget counts its channels
(:mod:`sim.scenario.budget`) and the report prints it. Its rules (docs/design.md §3.2):

* **VFs**: children that name a ``vf`` get it; the other ``direct`` children take the
  lowest free VF of their device in scenario order (``count`` expanded); a ``direct``
  child that finds none left **falls back** to ``routed`` (Hyper-V behaviour), and the
  plan says why.
* **A hypervisor-owned I/O stack** (``host.io_stack: hypervisor``, VMware ESX): there is
  no parent data path, so ``routed`` children, and ``direct`` ones without a free VF, run
  on ``hypervisor`` instead (with the reason); children that name no path were given
  ``hypervisor`` when the scenario was read. A device whose ``owner`` is ``parent`` (ESX
  2.x's service console) keeps the parent's routed path for the children on it.
* **Channels**: a routed child opens a primary VMBus channel and
  ``(vCPUs - 1) // vcpus_per_channel`` sub-channels to its device, at most
  ``max_channels`` in all (:func:`channel_count`; Linux storvsc, hv_netvsc).
* **Several devices per child**: a stream may name its own ``device``
  (``streams[i].device``, default the child's). The child's placement is on its own
  device; each other device it uses gets a placement of its own (:attr:`Placement.others`,
  same name and path asked for), planned right after the child's: a VF of that device
  (direct), its own channels (routed, ``vmbus.CHILD.DEVICE``), its own device model's
  parent vCPU (emulated). :meth:`Plan.routes` lists them all; :meth:`Placement.streams`
  gives each the streams it carries. A child with one device plans exactly as before.
* **The parent's own streams** (``parent.streams``): :attr:`Plan.parent`, a placement
  named ``parent`` on path ``parent`` through the device's physical function, on the
  parent's own vCPUs; not among :attr:`Plan.children`.
* **The platform's guest stack** (``host.guest_stack``): a child that prices no protocol
  stack of its own (``guest.packet_cost`` 0, no ``copy_bandwidth``) is placed with the
  platform's two values in its ``guest`` (:func:`platform_stack`), so the model and the
  estimate charge it as if the child had written them; a child that sets either keeps
  its own.
* **Parent vCPUs**: channels, and an emulated child's device model, are served by the
  parent's vCPUs in round robin, in the order children are listed. The routed channels a
  direct child uses while its VF is revoked (a ``vf_revoke`` fault) are opened after
  every other child's, so that no other child's placement changes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace

from sim.scenario import names
from sim.scenario.hardware import Stack
from sim.scenario.schema import Scenario
from sim.scenario.workload import Child, Guest, Stream


def channel_count(vcpus: int, vcpus_per_channel: int, max_channels: int) -> int:
    """Channels a routed child with ``vcpus`` vCPUs opens to a device: the primary plus
    ``(vcpus - 1) // vcpus_per_channel`` sub-channels (Linux storvsc), at most
    ``max_channels`` in all."""
    return max(1, min(max_channels, 1 + (vcpus - 1) // vcpus_per_channel))


@dataclass(frozen=True)
class PlannedChannel:
    """One VMBus channel: its name (``vmbus.CHILD.DEVICE``, sub-channel ``k`` with
    ``[k]``), its index among the child's channels (0: the primary) and the parent vCPU
    that serves it."""

    name: str
    index: int
    parent_vcpu: int


@dataclass(frozen=True)
class Placement:
    """Where one child instance's I/O runs."""

    name: str
    spec: Child
    path: str
    """The path it runs on: ``routed``, ``direct``, ``hypervisor``, ``emulated``,
    ``native``, ``parent`` (the parent's own streams, :attr:`Plan.parent`), or ``none``
    for a child without a device (CPU load only)."""
    vf: int | None = None
    fallback: str = ""
    """Why a child does not run on the path it asked for ("" when it does): a ``direct``
    child without a free VF runs routed, or on the hypervisor path under
    ``host.io_stack: hypervisor``, where a ``routed`` one does too."""
    channels: tuple[PlannedChannel, ...] = ()
    model_vcpu: int | None = None
    """The parent vCPU that serves an emulated child's device model."""
    standby: tuple[PlannedChannel, ...] = ()
    """A direct child's routed channels while its VF is revoked (``vf_revoke`` faults)."""
    on: str | None = None
    """The device of a placement on another device than the child's own (one of
    :attr:`others`); None: the child's ``device``."""
    others: tuple[Placement, ...] = ()
    """The child's placements on the other devices its streams name, in the order
    :attr:`~sim.scenario.workload.Child.devices_used` lists them."""

    @property
    def requested_path(self) -> str:
        """The path the scenario asks for."""
        return "parent" if self.path == "parent" else self.spec.io_path

    @property
    def device(self) -> str | None:
        """The device its I/O goes to."""
        return self.on if self.on is not None else self.spec.device

    def streams(self) -> list[tuple[int, Stream]]:
        """The child's streams this placement carries (those on its device), with their
        index among the child's streams."""
        dev = self.device
        return [(j, s) for j, s in enumerate(self.spec.streams) if self.spec.device_of(s) == dev]

    @property
    def function(self) -> str:
        """The device function it uses (:func:`sim.scenario.names.function`): a VF, or the
        PF (the parent's, the hypervisor's or bare metal's driver); ``""`` without a
        device."""
        if self.device is None:
            return ""
        return names.function(self.device, self.vf)

    @property
    def parent_vcpus(self) -> list[int]:
        """The parent vCPUs serving it: one per channel (routed), its device model's
        (emulated), none otherwise."""
        if self.model_vcpu is not None:
            return [self.model_vcpu]
        return [c.parent_vcpu for c in self.channels]


@dataclass(frozen=True)
class Plan:
    """Every child instance's :class:`Placement`, in scenario order."""

    children: tuple[Placement, ...]
    parent: Placement | None = None
    """The parent as the end point of its own streams (``parent.streams``), on path
    ``parent`` through its physical function; None without them."""
    _by_name: dict[str, Placement] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({p.name: p for p in self.children})

    def __getitem__(self, name: str) -> Placement:
        return self._by_name[name]

    @property
    def fallbacks(self) -> int:
        """How many direct children found no VF and run routed."""
        return sum(1 for p in self.children if p.fallback)

    def routes(self) -> list[Placement]:
        """Every placement of every child: its own, then those on its other devices."""
        return [q for p in self.children for q in (p, *p.others)]

    def channels(self) -> list[PlannedChannel]:
        """Every channel in the order it is opened: each child's (on each of its devices),
        then the standbys."""
        own = [c for p in self.routes() for c in p.channels]
        return own + [c for p in self.children for c in p.standby]


def plan(scn: Scenario) -> Plan:
    """The deployment plan of ``scn`` (module docstring)."""
    instances = list(scn.instances())
    owned: dict[str, dict[int, str]] = defaultdict(dict)
    for name, spec in instances:  # fixed VF indices first
        if spec.vf is not None and spec.device is not None:
            owned[spec.device][spec.vf] = name
    vcpus = scn.parent.vcpus
    served = [0]  # channels and device models placed so far: the next one's parent vCPU

    def next_vcpu() -> int:
        served[0] += 1
        return (served[0] - 1) % vcpus

    def open_channels(name: str, spec: Child, dev: str) -> tuple[PlannedChannel, ...]:
        vm = scn.parent.vmbus
        n = channel_count(spec.vcpus, vm.vcpus_per_channel, vm.max_channels)
        return tuple(PlannedChannel(names.channel(name, dev, k), k, next_vcpu()) for k in range(n))

    def place(name: str, spec: Child, dev: str, own: bool) -> Placement:
        # fallbacks stay in the hypervisor, unless the parent still drives the device
        in_hypervisor = scn.in_hypervisor(dev)
        path, vf, why = spec.io_path, spec.vf if own else None, ""
        if path == "routed" and in_hypervisor:
            path, why = "hypervisor", "the parent has no data path (host.io_stack: hypervisor)"
        if path == "direct" and vf is None:
            free = [k for k in range(scn.device(dev).vfs) if k not in owned[dev]]
            if free:
                vf = free[0]
                owned[dev][vf] = name
            else:
                total = scn.device(dev).vfs
                path = "hypervisor" if in_hypervisor else "routed"
                why = f"all {total} VFs of {dev} are taken" if total else f"{dev} has no VFs"
        channels = open_channels(name, spec, dev) if path == "routed" else ()
        model = next_vcpu() if path == "emulated" else None
        return Placement(name, spec, path, vf, why, channels, model, on=None if own else dev)

    placed: list[Placement] = []
    for name, spec in instances:
        spec = platform_stack(scn, spec)
        if spec.device is None:
            placed.append(Placement(name, spec, "none"))
            continue
        p = place(name, spec, spec.device, True)
        others = tuple(place(name, spec, d, False) for d in spec.devices_used[1:])
        placed.append(replace(p, others=others) if others else p)
    revoked = {str(f.target) for f in scn.faults if f.kind == "vf_revoke"}
    out = []
    for p in placed:  # after every other child's channels
        if p.name in revoked and p.vf is not None:
            p = replace(p, standby=open_channels(p.name, p.spec, str(p.device)))
        out.append(p)
    own = Placement("parent", parent_spec(scn), "parent") if scn.parent.streams else None
    return Plan(tuple(out), own)


def platform_stack(scn: Scenario, spec: Child) -> Child:
    """``spec`` with the platform's guest protocol stack (``host.guest_stack``) when it
    prices none of its own (``guest.packet_cost`` 0 and no ``copy_bandwidth``); itself
    otherwise, or when the platform has none either."""
    own, platform = spec.guest, scn.host.guest_stack
    if own.has_stack or not platform.has_stack:
        return spec
    return spec.model_copy(update={"guest": _priced(own, platform)})


def _priced(guest: Guest, stack: Stack) -> Guest:
    """``guest`` with the protocol stack ``stack`` (its per-packet cost and copy rate)."""
    return guest.model_copy(
        update={"packet_cost": stack.packet_cost, "copy_bandwidth": stack.copy_bandwidth}
    )


def parent_spec(scn: Scenario) -> Child:
    """The parent seen as the end point of its own streams: a partition with the parent's
    vCPUs, its device and its streams (its costs are the physical driver's, not these
    guest defaults: :mod:`sim.model.iopaths`, ``ParentPath``; of its guest block only the
    protocol stack's, ``parent.stack``, is used)."""
    p = scn.parent
    guest = _priced(Guest(), p.stack)
    return Child(name="parent", vcpus=p.vcpus, device=p.device, streams=p.streams, guest=guest)
