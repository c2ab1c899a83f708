"""Fault injection: what breaks, when, and what the guests do about it (docs/design.md §3.5).

A scenario's ``faults:`` list schedules faults, each ``{kind, at, duration, target,
factor}`` (:class:`~sim.scenario.Fault`); :class:`Injector` starts and ends each one at
its time. What each kind does:

``parent_crash`` (target ``parent``)
    The parent stops for ``duration``, then restarts. Its vCPUs leave the LPs (a work
    item in progress runs to its end) and do nothing until the restart
    (:meth:`Hypervisor.suspend <sim.model.hypervisor.Hypervisor.suspend>`): rings are not
    drained, completions are not taken, routed and emulated I/O stalls. A crash loses
    the parent's state: every request in the parent's hands at the crash (in an outbound
    ring, in the VSP or the driver, at the device through the physical function, waiting
    for the parent to take its completion), and every one that enters it during the
    crash, is **lost**: on restart the host offers the channels again, and what the old
    ones held is gone (the restarted parent drops it, :mod:`sim.model.iopaths`). Completions
    already in an inbound ring are guest memory and are delivered. The guest does not
    learn of the loss; its I/O policy (``children[].io_policy``) decides:

    * ``on_parent_failure: timeout`` (default): the guest's command timer gives a lost
      attempt up ``timeout`` after it was sent ("timeout") and retries it; a retry sent
      while the parent is down is lost in turn; after ``retries`` retries the request
      fails for good ("retries exhausted"). With the default 30 s and a shorter run, the
      lost requests are still in flight at the end, as they would be.
    * ``on_parent_failure: wait``: no command timer; when the parent is back the guest
      resubmits every request the crash lost (as a new attempt, not counted against
      ``retries``), so they complete after the restart.

    Requests already past the parent (completion in the inbound ring) complete.

    The parent's own streams (``parent.streams``) stop with it, as a crashed child's do:
    their requests in flight fail ("parent crashed"), none is issued until the restart,
    and a completion of the old epoch that the device still delivers is dropped.

``parent_hang`` (target ``parent``)
    The parent's vCPUs do not run for ``duration`` but keep their state: everything
    waits and resumes where it was (the stall is ``sched_wait``: the parent's vCPUs are
    off the LPs). A guest whose command timer expires meanwhile gives the attempt up and
    retries it, as after a crash (the old attempt is dropped when it next reaches the
    device, or discarded when it ends). Chosen over "a very large factor" because a
    hung partition is descheduled, not slow: its vCPUs free their LPs.

``vsp_slowdown`` (target ``parent``, ``factor``)
    For ``duration`` the parent's VSP costs (per request, per completion, copy and page
    list) and its driver's (request, interrupt) are multiplied by ``factor``; the draws
    are the same, so the run stays paired with the one without. The emulated device
    model's ``access_cost`` is not scaled (its VSP request cost is).

``vf_revoke`` (target: a direct child)
    Host servicing or live migration takes the child's VF away for ``duration``: the
    child's new requests (and retries) go routed, through a primary channel and
    sub-channels opened for it (after every other child's, so that no other child's
    channels move), and return to the VF after. Requests in flight on the VF at the
    revoke complete on it (the guest's VF driver drains its queues before it releases
    the VF, as for a PCI hot-remove). Each request's ``io_path`` says which path it took;
    the summary has a row for the child on each path; ``vf_revoke_fallbacks`` counts the
    revocations. A child without a VF (not ``direct``, or none was free) is not on one:
    nothing changes (so a scenario with revocations can be compared across paths).

``device_reset`` (target: a device)
    Every request in the device at the reset (from its descriptor fetch or queueing to
    the end of its service; :meth:`Device.halt <sim.model.devices.Device.halt>`) fails
    ("device reset") and is retried at once, as a driver requeues what a controller
    reset aborted; the device starts nothing for ``duration``, so the retries and every
    new request wait for it (``device_queue``). It hits routed (physical function) and
    direct (VF) requests alike.

``hv_driver_crash`` (target: a device)
    The hypervisor's own driver for the device (``io_path: hypervisor``, a vmkernel
    driver) fails and restarts after ``duration``: every request of a child on the
    hypervisor path to that device that is in flight fails ("driver crashed") and is
    retried at once; the retries and every new request wait in the guest's ring
    (``guest_queue``) until the restart. Children on other paths, or on the hypervisor
    path to another device, are not touched (the device keeps serving what it holds: the
    old attempts are discarded when they end).

``lp_offline`` (target: an LP index)
    The LP takes no work for ``duration``: the vCPU on it leaves at the end of its work
    item and runs elsewhere, as do those queued on it, where their affinity allows; a
    vCPU pinned to it alone (the parent's under ``root: pinned``) waits for it
    (:meth:`Hypervisor.lp_offline <sim.model.hypervisor.Hypervisor.lp_offline>`). Its offline
    time counts as idle in ``cpu.csv``.

``child_crash`` (target: a child)
    The child stops: it issues nothing more, its requests in flight fail at once
    ("child crashed", no retry) and its vCPUs stop. With a ``duration`` it boots again
    after it and issues again (open loop: from its next arrival; closed loop: its users
    start afresh). Nothing of another child changes: the only shared resources it
    frees are LPs, device time and IOTLB entries, so a child that shares none of these
    with it sees identical requests (common random numbers; tested).

What is counted
    Every request issued ends in exactly one state: ``completed``, ``failed`` (with its
    ``failure``) or ``in_flight`` at the end (:mod:`sim.model.workloads`, checked at every
    collection and again when the tables are made). Per request, ``attempts`` and the
    ``io_path`` of its last attempt; the time its failed attempts took is its ``retry``
    component. Counters: ``attempts.failed.REASON``, ``attempts.resubmitted``,
    ``requests.failed``, ``fault.KIND`` (faults started in the window) and
    ``vf_revoke_fallbacks``. :mod:`sim.results.faults` turns these into per-child
    availability, longest stall, failed and retried counts, and each fault's effect on
    each child (``faults.csv``).

Randomness
    Faults draw no random numbers, and streams draw theirs as without faults, so a run
    with faults stays paired with the same run without them. Retried attempts draw new
    service times from their own stream (only the faulted child's later draws shift).

Speed
    Without faults none of this is built: the streams serve as before, and the paths pay
    only a few attribute checks per request (the parent's epoch, a given-up attempt at
    the device).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sim.model.devices import Device
from sim.model.env import SimEnv
from sim.model.hypervisor import Hypervisor
from sim.model.iopaths import Path
from sim.model.partitions import ChildPartition, ParentPartition
from sim.model.workloads import Stream
from sim.scenario.distributions import Draw
from sim.scenario.schema import Fault


class Target(Protocol):
    """The parts of a built host (:class:`sim.model.host.Host`) that faults act on."""

    env: SimEnv
    hv: Hypervisor
    parent: ParentPartition
    devices: dict[str, Device]
    children: list[ChildPartition]
    streams: list[Stream]
    standby: dict[str, Path]  # child → its routed path while its VF is revoked
    driver_down: dict[str, float]  # device → until when the hypervisor's driver is down


class _Scaled:
    """Another sampler's draws multiplied by ``factor`` (the same draws: runs stay
    paired); it stands in for the parent's samplers during a slowdown."""

    def __init__(self, base: Draw, factor: float) -> None:  # draws nothing itself
        self._base = base
        self._factor = factor

    def __call__(self) -> float:
        return self._factor * self._base()


def _scaled(sampler: Draw, factor: float) -> Draw:
    return _Scaled(sampler, factor)


class Injector:
    """Starts and ends the scenario's faults on a built host."""

    def __init__(self, host: Target) -> None:
        self.host = host
        self.env = host.env
        self.faults = list(self.env.scenario.faults)
        self.revocations = 0  # a fact of the run: not reset at warm-up

    def start(self) -> None:
        """Schedule every fault (at its ``at``, in scenario order at equal times)."""
        for fault in self.faults:
            self.env.after(fault.at, self._starter(fault))

    def _starter(self, fault: Fault) -> Callable[[object], None]:
        return lambda _ev: self._begin(fault)

    def _later(self, delay: float, action: Callable[[], None]) -> None:
        self.env.after(delay, lambda _ev: action())

    def _streams(self, child: str) -> list[Stream]:
        return [s for s in self.host.streams if s.child.name == child]

    def _begin(self, f: Fault) -> None:
        self.env.counters[f"fault.{f.kind}"] += 1
        begin = {
            "parent_crash": self._parent_crash,
            "parent_hang": self._parent_hang,
            "vsp_slowdown": self._vsp_slowdown,
            "vf_revoke": self._vf_revoke,
            "device_reset": self._device_reset,
            "lp_offline": self._lp_offline,
            "child_crash": self._child_crash,
            "hv_driver_crash": self._hv_driver_crash,
        }[f.kind]
        end = begin(f)
        if f.duration is not None and end is not None:
            self._later(f.duration, end)

    # -- the parent ------------------------------------------------------------------------
    def _parent_crash(self, f: Fault) -> Callable[[], None]:
        parent, hv = self.host.parent, self.host.hv
        parent.epoch += 1  # what the parent holds now, or takes during the crash, is lost
        own = self._streams(parent.name)  # the parent's own streams stop with it
        for s in own:
            s.halt("parent crashed")
        hv.suspend(parent.domain)

        def restart() -> None:
            parent.epoch += 1
            hv.resume(parent.domain)
            for s in own:
                s.restart()
            # guests that wait resubmit what the crash lost, on the channels offered again
            for s in self.host.streams:
                if s.child.spec.io_policy.on_parent_failure != "wait":
                    continue
                for req in list(s.live.values()):
                    epoch = getattr(req, "epoch", -1)
                    if epoch >= 0 and epoch != parent.epoch:
                        s.resubmit(req)

        return restart

    def _parent_hang(self, f: Fault) -> Callable[[], None]:
        hv, domain = self.host.hv, self.host.parent.domain
        hv.suspend(domain)
        return lambda: hv.resume(domain)

    def _vsp_slowdown(self, f: Fault) -> Callable[[], None]:
        parent = self.host.parent
        factor = f.factor if f.factor is not None else 1.0
        saved = (
            parent.vsp_request,
            parent.vsp_completion,
            parent.driver_request,
            parent.driver_interrupt,
            parent.transfer_cost,
            parent.flip_cost,
        )
        parent.vsp_request = _scaled(saved[0], factor)
        parent.vsp_completion = _scaled(saved[1], factor)
        parent.driver_request = _scaled(saved[2], factor)
        parent.driver_interrupt = _scaled(saved[3], factor)
        transfer = saved[4]
        parent.transfer_cost = lambda size, pages: transfer(size, pages) * factor
        flip = saved[5]
        parent.flip_cost = lambda size, units: flip(size, units) * factor

        def restore() -> None:
            (
                parent.vsp_request,
                parent.vsp_completion,
                parent.driver_request,
                parent.driver_interrupt,
                parent.transfer_cost,
                parent.flip_cost,
            ) = saved

        return restore

    # -- children, devices, LPs ------------------------------------------------------------
    def _vf_revoke(self, f: Fault) -> Callable[[], None] | None:
        fallback = self.host.standby.get(str(f.target))
        if fallback is None:  # it has no VF: routed already
            return None
        streams = self._streams(str(f.target))
        for s in streams:
            s.path = fallback
        self.revocations += 1

        def give_back() -> None:
            for s in streams:
                s.path = s.home

        return give_back

    def _device_reset(self, f: Fault) -> None:
        dev = self.host.devices[str(f.target)]
        assert f.duration is not None
        for s in self.host.streams:
            if s.device_name != dev.name:
                continue
            for req in list(s.live.values()):
                if getattr(req, "at", None) is dev:
                    s.abort(req, "device reset")
        dev.halt(self.env.now + f.duration)  # it reopens by itself

    def _hv_driver_crash(self, f: Fault) -> None:
        name = str(f.target)
        assert f.duration is not None
        self.host.driver_down[name] = self.env.now + f.duration  # it restarts by itself
        for s in self.host.streams:
            if s.device_name != name or getattr(s.path, "name", "") != "hypervisor":
                continue
            for req in list(s.live.values()):
                s.abort(req, "driver crashed")  # retried at once: it waits for the restart

    def _lp_offline(self, f: Fault) -> Callable[[], None]:
        hv, index = self.host.hv, int(f.target or 0)
        hv.lp_offline(index)
        return lambda: hv.lp_online(index)

    def _child_crash(self, f: Fault) -> Callable[[], None]:
        name = str(f.target)
        streams = self._streams(name)
        child = next(c for c in self.host.children if c.name == name)
        for s in streams:
            s.halt("child crashed")
        self.host.hv.suspend(child.domain)

        def boot() -> None:
            self.host.hv.resume(child.domain)
            for s in streams:
                s.restart()

        return boot
