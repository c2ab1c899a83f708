"""Rules across fields of a scenario (references, VF indices, pins, op/device
compatibility, faults against the run, the size of the host), checked after the schema;
each gives the first violation as (location, message)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sim.scenario import units
from sim.scenario.budget import check_budget
from sim.scenario.hardware import Device, Parent, Scheduler
from sim.scenario.names import RESERVED
from sim.scenario.reader import quote
from sim.scenario.schema import Scenario
from sim.scenario.workload import Child, Stream


def _check_pins(
    loc: tuple[Any, ...], pin: list[int] | None, vcpus: int, lps: range
) -> tuple[tuple[Any, ...], str] | None:
    if pin is None:
        return None
    if len(pin) != vcpus:
        return (*loc, "pin"), f"needs one LP per vCPU ({vcpus}), got {len(pin)}"
    for k, lp in enumerate(pin):
        if lp not in lps:
            where = f"LPs {lps.start}..{lps.stop - 1}" if len(lps) else "no LPs"
            return (*loc, "pin", k), f"LP {lp} is not available here ({where})"
    return None


def _check_placement(scn: Scenario) -> tuple[tuple[Any, ...], str] | None:
    """Pins, root placement and minroot against the host's LPs."""
    sch, cores = scn.host.scheduler, scn.host.cores
    n = sch.minroot
    if n and n >= cores:
        return ("host", "scheduler", "minroot"), f"must leave LPs for children (< {cores})"
    root_lps = range(n) if n else range(cores)
    if n and scn.parent.vcpus > n:
        return ("parent", "vcpus"), f"minroot {n} gives the parent at most {n} vCPUs"
    pinned_root = sch.root == "pinned" or sch.policy == "pinned"
    if scn.parent.pin is None and pinned_root and scn.parent.vcpus > len(root_lps):
        return ("parent", "vcpus"), (
            f"root: pinned puts vCPU i on LP i: at most {len(root_lps)} vCPUs (or give parent.pin)"
        )
    problem = _check_pins(("parent",), scn.parent.pin, scn.parent.vcpus, root_lps)
    if problem:
        return problem
    if sch.policy != "credit":  # these are credit-scheduler notions: not silently ignored
        defaults = Scheduler()
        for key in ("boost", "ratelimit", "tick", "accounting_period"):
            if getattr(sch, key) != getattr(defaults, key):
                return ("host", "scheduler", key), f"{key} needs policy: credit"
        parts: list[tuple[tuple[Any, ...], Parent | Child]] = [(("parent",), scn.parent)]
        parts += [(("children", i), c) for i, c in enumerate(scn.children)]
        for loc, part in parts:
            for key, default in (("weight", 256), ("cap", 0.0)):
                if getattr(part, key) != default:
                    return (*loc, key), f"{key} needs host.scheduler.policy: credit"
    child_lps = range(n, cores)
    for i, c in enumerate(scn.children):
        if sch.policy == "pinned" and c.pin is None:
            return ("children", i, "pin"), "policy pinned needs 'pin' (an LP per vCPU)"
        problem = _check_pins(("children", i), c.pin, c.vcpus, child_lps)
        if problem:
            return problem
    return None


def _check_streams(
    loc: tuple[Any, ...],
    streams: list[Stream],
    dev_of: Callable[[Stream], Device],
    io_path: str,
    vcpus: int,
) -> tuple[tuple[Any, ...], str] | None:
    """The streams at ``loc`` (a child's, or the parent's own) against their device."""
    for j, s in enumerate(streams):
        dev = dev_of(s)
        for op in s.op:
            if op not in dev.ops:
                traced = s.trace is not None and "op" not in s.model_fields_set
                where = f" (in trace {quote(s.trace.file)})" if s.trace and traced else ""
                return (
                    (*loc, "streams", j, "trace" if traced else "op"),
                    f"{quote(op)}{where} "
                    f"is not an operation of {dev.type} device '{dev.name}' "
                    f"(use {', '.join(dev.ops)})",
                )
        if "receive" in s.op and s.closed:
            return (
                (*loc, "streams", j, "op"),
                "'receive' needs an open-loop stream (rate: messages arriving from the "
                "wire), not outstanding",
            )
        if "receive" in s.op and io_path == "emulated":
            return (
                (*loc, "streams", j, "op"),
                "'receive' is not modelled on the emulated path in this version",
            )
        if s.vcpu is not None and s.vcpu >= vcpus:
            return (*loc, "streams", j, "vcpu"), f"vCPU {s.vcpu} does not exist ({vcpus} vCPUs)"
    return None


def _check_parent_streams(
    scn: Scenario, devices: dict[str, int]
) -> tuple[tuple[Any, ...], str] | None:
    """The parent's own streams (``parent.streams``, ``parent.device``)."""
    p = scn.parent
    if p.device is None:
        if p.streams:
            return ("parent", "device"), "the parent's streams need a 'device'"
        return None
    if p.device not in devices:
        known = ", ".join(devices)
        return ("parent", "device"), f"no device named '{p.device}' (devices: {known})"
    if not p.streams:
        return ("parent", "device"), "'device' is for the parent's own 'streams': give some"
    if scn.in_hypervisor(p.device):
        return ("parent", "streams"), (
            "with host.io_stack: hypervisor the parent has no data path (the hypervisor "
            "owns the devices): it cannot be a stream's end point (unless the device's "
            "owner is parent)"
        )
    dev = scn.devices[devices[p.device]]
    for j, s in enumerate(p.streams):
        if s.device is not None and s.device != p.device:
            return (
                ("parent", "streams", j, "device"),
                "the parent's own streams use parent.device: a stream on another device "
                "of the parent is not built",
            )
        if s.peer is not None:
            return (
                ("parent", "streams", j, "peer"),
                "a peer is for children's streams (not built for the parent's own)",
            )
    return _check_streams(("parent",), p.streams, lambda s: dev, "parent", p.vcpus)


def cross_check(scn: Scenario) -> tuple[tuple[Any, ...], str] | None:
    """Rules across fields; the first violation as (location, message)."""
    if scn.run.warmup >= scn.run.duration:
        return ("run", "warmup"), "warm-up must be shorter than the duration"
    interval = scn.run.trace_interval
    if interval is not None and interval > 0 and scn.run.duration / interval > 100_000:
        return ("run", "trace_interval"), (
            f"{scn.run.duration / interval:.3g} samples per replication; at most 100000"
        )
    problem = _check_size(scn)
    if problem:
        return problem
    names: dict[str, int] = {}
    for i, d in enumerate(scn.devices):
        if d.name in names:
            return ("devices", i, "name"), f"device name '{d.name}' used twice"
        names[d.name] = i
        if d.owner == "parent" and scn.host.io_stack != "hypervisor":
            return ("devices", i, "owner"), (
                "owner: parent leaves a device to the parent where host.io_stack is "
                "hypervisor; with io_stack parent every device is the parent's already"
            )
    problem = _check_placement(scn)
    if problem:
        return problem
    load = scn.parent.cpu_load
    for k, v in enumerate(load.vcpus or [] if load is not None else []):
        if v >= scn.parent.vcpus:
            return (
                ("parent", "cpu_load", "vcpus", k),
                f"vCPU {v} does not exist ({scn.parent.vcpus} vCPUs)",
            )
    problem = _check_parent_streams(scn, names)
    if problem:
        return problem
    used_vfs: dict[tuple[str, int], str] = {}
    for i, c in enumerate(scn.children):
        if c.cpu_load is not None:
            for k, v in enumerate(c.cpu_load.vcpus or []):
                if v >= c.vcpus:
                    return (
                        ("children", i, "cpu_load", "vcpus", k),
                        f"vCPU {v} does not exist ({c.vcpus} vCPUs)",
                    )
        if not c.streams and c.cpu_load is None and c.timer.mode == "off" and not _answers(scn, c):
            return ("children", i, "streams"), "a child needs I/O 'streams' or a 'cpu_load'"
        if c.iommu is not None and c.io_path != "direct":
            return ("children", i, "iommu"), (
                f"'iommu' is the mode of a direct child's translation domain, not of an "
                f"io_path {c.io_path} child (host.iommu.native and host.iommu.parent set "
                "the host kernels' domains)"
            )
        if c.device is None:
            if c.streams:
                return ("children", i, "device"), "a child with streams needs a 'device'"
            if c.io_path == "direct" or c.vf is not None:
                return ("children", i, "device"), "io_path: direct needs a 'device'"
            if c.vnic is not None:
                return ("children", i, "vnic"), "'vnic' needs a NIC 'device'"
            continue
        if c.io_path == "emulated" and scn.in_hypervisor(c.device):
            return ("children", i, "io_path"), (
                "io_path emulated runs its device model in a parent; with host.io_stack: "
                "hypervisor the parent has no data path (a device model in the hypervisor "
                "is not built)"
            )
        if c.device not in names:
            known = ", ".join(names)
            return ("children", i, "device"), f"no device named '{c.device}' (devices: {known})"
        dev = scn.devices[names[c.device]]
        if c.vf is not None:
            if c.io_path != "direct":
                return ("children", i, "vf"), "a VF is assigned only with io_path: direct"
            if c.count > 1:
                return ("children", i, "vf"), "a fixed VF index needs count: 1"
            if c.vf >= dev.vfs:
                return (
                    ("children", i, "vf"),
                    f"VF {c.vf} does not exist: device '{dev.name}' has {dev.vfs} VFs "
                    f"(0..{dev.vfs - 1})"
                    if dev.vfs
                    else f"device '{dev.name}' has no VFs",
                )
            if (dev.name, c.vf) in used_vfs:
                other = used_vfs[(dev.name, c.vf)]
                return (
                    "children",
                    i,
                    "vf",
                ), f"VF {c.vf} of '{dev.name}' already assigned to '{other}'"
            used_vfs[(dev.name, c.vf)] = c.name
        if c.irq_vcpu is not None and c.irq_vcpu >= c.vcpus:
            return (
                "children",
                i,
                "irq_vcpu",
            ), f"vCPU {c.irq_vcpu} does not exist ({c.vcpus} vCPUs)"
        if c.vnic is not None and (c.io_path != "routed" or dev.type != "nic"):
            return ("children", i, "vnic"), (
                "'vnic' is the synthetic NIC of a routed child: it needs io_path: routed "
                f"and a NIC device, not {c.io_path} on {dev.type} device '{dev.name}'"
            )
        for j, s in enumerate(c.streams):
            if s.device is not None and s.device not in names:
                known = ", ".join(names)
                return (
                    ("children", i, "streams", j, "device"),
                    f"no device named '{s.device}' (devices: {known})",
                )
            if s.device is not None and s.device != c.device and c.io_path == "emulated":
                return ("children", i, "streams", j, "device"), (
                    "an emulated child on several devices (a device model per device) is "
                    "not built: its streams use the child's 'device'"
                )
            if s.device is not None and s.device != c.device and s.peer is not None:
                return ("children", i, "streams", j, "peer"), (
                    "a peer on another device than the child's own is not built: the "
                    "request-response pair uses the child's 'device'"
                )

        def device_of(s: Stream, c: Child = c) -> Device:
            return scn.devices[names[str(c.device_of(s))]]

        problem = _check_streams(("children", i), c.streams, device_of, c.io_path, c.vcpus)
        if problem:
            return problem
        for j, s in enumerate(c.streams):
            wrong = _peer_problem(scn, c, s)
            if wrong is not None:
                return ("children", i, "streams", j, "peer", "child"), wrong
    # names after count expansion (web ×3 → web-1 … web-3) must be unique too, and apart
    # from the devices' and the scheme's own scopes: they name components (sim.scenario.names)
    seen: set[str] = set()
    for i, c in enumerate(scn.children):
        for inst in [c.name] if c.count == 1 else [f"{c.name}-{k}" for k in range(1, c.count + 1)]:
            if inst in seen:
                return ("children", i, "name"), f"child name '{inst}' used twice"
            if inst in names:
                return ("children", i, "name"), f"'{inst}' is also a device's name"
            if inst in RESERVED:
                return ("children", i, "name"), f"'{inst}' is reserved for {RESERVED[inst]}"
            seen.add(inst)
    for i, d in enumerate(scn.devices):
        if d.name in RESERVED:
            return ("devices", i, "name"), f"'{d.name}' is reserved for {RESERVED[d.name]}"
    return _check_faults(scn) or _check_requests(scn) or check_budget(scn)


def _check_requests(scn: Scenario) -> tuple[tuple[Any, ...], str] | None:
    """``run.requests: sample N | none`` sums the components over the requests submitted
    after a warm-up known before the run, and the fault tables need every request
    (sim.model.records): refused where those are needed."""
    run = scn.run
    if run.requests == "all":
        return None
    loc = ("run", "requests")
    if run.warmup_method != "fixed":
        return loc, f"{run.requests} needs warmup_method: fixed (mser5 needs every request)"
    if scn.faults:
        return loc, f"{run.requests} is not available with faults (their tables need every request)"
    return None


def _check_faults(scn: Scenario) -> tuple[tuple[Any, ...], str] | None:
    """Each fault within the run, its target existing and of the right kind, and no two
    faults of one kind on one target at once."""
    children = dict(scn.instances())
    devices = {d.name for d in scn.devices}
    for i, f in enumerate(scn.faults):
        loc: tuple[Any, ...] = ("faults", i)
        if f.at >= scn.run.duration:
            return (*loc, "at"), (
                f"starts at {units.format_time(f.at)}, not before the end of the run "
                f"({units.format_time(scn.run.duration)})"
            )
        target = f.target
        if f.kind == "lp_offline":
            assert isinstance(target, int)
            if target >= scn.host.cores:
                return (*loc, "target"), (
                    f"LP {target} does not exist (LPs 0..{scn.host.cores - 1})"
                )
        elif f.kind in ("device_reset", "hv_driver_crash"):
            if target not in devices:
                known = ", ".join(sorted(devices)) or "none"
                return (*loc, "target"), f"no device named '{target}' (devices: {known})"
        elif f.kind in ("vf_revoke", "child_crash"):
            spec = children.get(str(target))
            if spec is None:
                known = ", ".join(children)
                return (*loc, "target"), f"no child named '{target}' (children: {known})"
            if f.kind == "vf_revoke" and spec.device is None:
                return (*loc, "target"), f"'{target}' does no I/O: it has no VF to revoke"
            if f.kind == "vf_revoke" and len(spec.devices_used) > 1:
                return (*loc, "target"), (
                    f"'{target}' uses several devices: revoking a VF of a child with "
                    "several is not built"
                )
            if f.kind == "vf_revoke" and scn.in_hypervisor(spec.device):
                return (*loc, "kind"), (
                    "a revoked VF falls back to a parent's routed path; with host.io_stack: "
                    "hypervisor there is none (a fallback into the hypervisor's stack is "
                    "not built)"
                )
        for j, g in enumerate(scn.faults[:i]):
            if g.kind == f.kind and g.target == f.target and g.at < f.end and f.at < g.end:
                return loc, f"overlaps faults[{j}], a {g.kind} of the same target"
    return None


# ---------------------------------------------------------------------------------------
# Limits: what one scenario may ask the simulator for
# ---------------------------------------------------------------------------------------
MAX_CHILD_PARTITIONS = 4096
MAX_VCPUS = 65536
MAX_STREAMS = 16384  # each holds its samplers: ~32 KB


def _check_size(scn: Scenario) -> tuple[tuple[Any, ...], str] | None:
    """How many partitions, vCPUs and streams the host holds (each is built and tracked)."""
    partitions, vcpus, streams = 0, scn.parent.vcpus, 0
    limit = scn.host.child_limit
    for i, c in enumerate(scn.children):
        partitions += c.count
        if limit is not None and partitions > limit:
            return ("children", i, "count"), (
                f"{partitions} child partitions in all (count included); "
                f"{scn.host.child_limit_source} allows at most {limit}"
            )
        vcpus += c.count * c.vcpus
        streams += c.count * len(c.streams)
        if partitions > MAX_CHILD_PARTITIONS:
            return ("children", i, "count"), (
                f"{partitions} child partitions in all (count included); "
                f"at most {MAX_CHILD_PARTITIONS}"
            )
        if vcpus > MAX_VCPUS:
            return ("children", i, "vcpus"), (
                f"{vcpus} vCPUs in all (the parent's and the children's, count included); "
                f"at most {MAX_VCPUS}"
            )
        if streams > MAX_STREAMS:
            return ("children", i, "streams"), (
                f"{streams} streams in all (count included); at most {MAX_STREAMS}"
            )
    return None


def _peer_problem(scn: Scenario, c: Child, s: Stream) -> str | None:
    """What is wrong with stream ``s`` of child ``c`` having a peer child, if anything."""
    if s.peer is None or s.peer.child is None:
        return None
    target = s.peer.child
    instances = dict(scn.instances())
    mine = {name for name, spec in instances.items() if spec is c}
    if target in mine:
        return f"the peer '{target}' is the child itself: a peer is another child"
    peer = instances.get(target)
    if peer is None:
        known = ", ".join(instances)
        return f"no child named '{target}' (children: {known})"
    if not {c.io_path, peer.io_path} <= {"routed", "direct"}:
        return (
            f"a VM-to-VM pair of {c.io_path} '{c.name}' and {peer.io_path} '{target}' is not "
            "built: only routed and direct children are (through the parent's virtual "
            "switch, the NIC's embedded switch, or both)"
        )
    if peer.device != c.device:
        return (
            f"the peer '{target}' is on device '{peer.device}', not '{c.device}': a pair "
            "meets in the virtual switch or the embedded switch of one port"
        )
    return None


def _answers(scn: Scenario, c: Child) -> bool:
    """Whether child ``c`` (one of its instances) is the peer of some stream."""
    peers = {s.peer.child for o in scn.children for s in o.streams if s.peer is not None}
    return any(name in peers for name, spec in scn.instances() if spec is c)
