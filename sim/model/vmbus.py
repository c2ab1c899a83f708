"""VMBus channels: bounded ring buffers with empty → non-empty signalling.

What it models
    A channel joins a routed child and the parent for one device: an outbound ring
    (child → parent, requests) and an inbound ring (parent → child, completions), each of
    ``parent.vmbus.ring_size`` bytes. An entry occupies a descriptor plus, for payloads
    larger than ``copy_threshold``, one page-list entry per page (smaller payloads are
    copied through the send/receive buffers and take no ring space of their own).

    The writer signals the reader **only when the ring goes from empty to non-empty**
    (Linux ``Documentation/virt/hyperv/vmbus.rst``), in both directions. One signal per busy
    period: when the reader is behind, writers do not signal, and batching emerges.
    An entry counts as in the ring until the reader takes it out, i.e. until the reader's
    vCPU starts processing it.

    A full ring blocks the writer (back-pressure). Writers are served FIFO: space freed by
    the reader is reserved for the oldest blocked writer, so a large entry cannot starve.

Sub-channels
    A routed child opens a **primary channel and sub-channels** to its device, as Linux
    storvsc and netvsc do on Hyper-V (storvsc: hosts of Windows 8 / Server 2012 and
    later): one channel per
    ``parent.vmbus.vcpus_per_channel`` child vCPUs (default 4, Linux storvsc
    ``storvsc_vcpus_per_sub_channel``: ``(vCPUs − 1) / 4`` sub-channels besides the
    primary), at most ``parent.vmbus.max_channels`` (default 64, Linux hv_netvsc
    ``VRSS_CHANNEL_MAX``); :func:`sim.scenario.plan.channel_count`. A child with at most
    ``vcpus_per_channel`` vCPUs has the primary alone. netvsc's own rule, one channel
    per vCPU, is ``vcpus_per_channel: 1``. Every channel has its own pair of rings, its
    own empty → non-empty signalling and its own counters, and its own parent vCPU
    (placement: the deployment plan, :mod:`sim.scenario.plan`); child vCPU ``i`` sends on channel
    ``i mod channels`` (:mod:`sim.model.iopaths`). The primary is named
    ``vmbus.CHILD.DEVICE``, sub-channel ``k`` ``vmbus.CHILD.DEVICE[k]`` (the index the
    host offers it under), their rings ``NAME.out`` and ``NAME.in``.

Simplified
    The send/receive buffers themselves are not bounded (the ring fills long before them
    in every configuration of the reference figures); the ring's "pending" index is the
    entry count, not a byte offset. How many sub-channels a Hyper-V host offers is the
    host's choice (storvsc opens ``min(vCPUs − 1, offered)``); the model takes the guest's
    rule above as what the host offers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import Any

import simpy

from sim.model.env import SimEnv, Waitable
from sim.model.metrics import Level
from sim.scenario import names
from sim.scenario.hardware import Vmbus as VmbusSpec


class Ring:
    """One direction of a channel."""

    __slots__ = (
        "capacity",
        "env",
        "full_events",
        "level",
        "name",
        "pending",
        "signal_counter",
        "used",
        "waiters",
    )

    def __init__(self, env: SimEnv, name: str, capacity: int, signal_counter: str) -> None:
        self.env = env
        self.name = name
        self.signal_counter = signal_counter
        self.capacity = capacity
        self.used = 0
        self.pending = 0
        self.waiters: deque[tuple[int, simpy.Event]] = deque()
        self.level = Level(env)
        self.full_events = 0

    def try_put(self, nbytes: int) -> bool | None:
        """Put an entry if it fits now: ``True`` if the writer must signal (the ring was
        empty), ``False`` if not, ``None`` if the ring has no room (nothing changed)."""
        if self.waiters or self.used + nbytes > self.capacity:
            return None
        self.used += nbytes
        self.level.add(nbytes)
        self.pending += 1
        return self.pending == 1

    def put(self, nbytes: int) -> Generator[Waitable, Any, tuple[float, bool]]:
        """Block until the entry fits, then put it: ``(time blocked, must signal)``."""
        self.full_events += 1
        self.env.counters["ring_full"] += 1
        ev = self.env.event()
        t0 = self.env.now
        self.waiters.append((nbytes, ev))
        yield ev  # space was reserved for us by take()
        self.pending += 1
        return self.env.now - t0, self.pending == 1

    def take(self, nbytes: int) -> None:
        """The reader took an entry out; wake blocked writers whose entries now fit."""
        self.used -= nbytes
        self.pending -= 1
        self.level.add(-nbytes)
        waiters = self.waiters
        while waiters and self.used + waiters[0][0] <= self.capacity:
            n, ev = waiters.popleft()
            self.used += n
            self.level.add(n)
            ev.succeed()


class Channel:
    """The two rings between one routed child and the parent for one device: the primary
    channel (``index`` 0) or a sub-channel."""

    def __init__(self, env: SimEnv, name: str, index: int, spec: VmbusSpec) -> None:
        self.name = name
        self.index = index
        self.outbound = Ring(env, names.ring(name, True), spec.ring_size, "signals.to_parent")
        self.inbound = Ring(env, names.ring(name, False), spec.ring_size, "signals.to_child")
        self.pages = env.cached(spec.pages)
        self.entry_bytes = env.cached(spec.entry_bytes)
