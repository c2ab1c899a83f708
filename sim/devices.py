"""I/O devices: a NIC port and an NVMe drive, shared by their functions.

What it models
    **NIC** (send): a request of ``size`` bytes is cut into ``ceil(size / mtu)`` frames,
    each carrying ``frame_overhead`` wire bytes beyond its payload (preamble, headers,
    FCS, inter-frame gap). The port serialises one request at a time at ``line_rate``
    (FIFO); before that, a per-request ``latency`` (descriptor fetch, DMA, pipeline) that
    does not occupy the port, and during which IOMMU translation misses add their walks.

    **NVMe** (read, write): ``channels`` commands are served in parallel (the drive's
    internal parallelism); others wait FIFO. A command holds its channel for the media
    service time of its op (a distribution) plus the transfer of its bytes at
    ``bandwidth / channels``, plus any IOMMU translation misses of its DMA.

    Each device is shared by its physical function (used by the parent and by native
    children) and its SR-IOV virtual functions (direct children). The device arbitrates
    FIFO across functions in this version; per-function queues and weighted arbitration
    are not modelled yet.

Randomness
    Service times are drawn from the *issuing stream's* generators (keys
    ``child.NAME/stream.J/service.OP``), so the n-th request of a stream gets the same
    service time whichever path it takes: routed and direct runs are paired.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from sim.distributions import Sampler
from sim.env import SimEnv
from sim.metrics import DEVICE_QUEUE, DEVICE_SERVICE, IOMMU, Level
from sim.scenario import Nic, Nvme

if TYPE_CHECKING:
    from sim.workloads import Request


class Servers:
    """``capacity`` identical servers in front of one FIFO queue."""

    __slots__ = ("busy", "capacity", "env", "queue", "queue_level")

    def __init__(self, env: SimEnv, capacity: int) -> None:
        self.env = env
        self.capacity = capacity
        self.busy = Level(env)
        self.queue: deque[simpy.Event] = deque()
        self.queue_level = Level(env)

    def acquire(self) -> Generator[simpy.Event, Any, float]:
        """Wait for a server; returns the time waited."""
        if self.busy.value < self.capacity:
            self.busy.add(1)
            return 0.0
        ev = simpy.Event(self.env)
        t0 = self.env.now
        self.queue.append(ev)
        self.queue_level.add(1)
        yield ev
        return self.env.now - t0

    def release(self) -> None:
        """Free a server, or hand it to the oldest waiter."""
        if self.queue:
            self.queue_level.add(-1)
            self.queue.popleft().succeed()
        else:
            self.busy.add(-1)


class Device(ABC):
    """Common part of the device models."""

    kind = ""
    ops: tuple[str, ...] = ()

    def __init__(self, env: SimEnv, spec: Nic | Nvme, servers: int) -> None:
        self.env = env
        self.spec = spec
        self.name = spec.name
        self.vfs = spec.vfs
        self.servers = Servers(env, servers)
        self.vf_owner: dict[int, str] = {}
        self.completed = 0

    @abstractmethod
    def samplers(self, env: SimEnv, key: str) -> dict[str, Sampler]:
        """Service-time samplers for one stream, by op."""

    @abstractmethod
    def serve(self, req: Request, translate: float) -> Generator[simpy.Event, Any, None]:
        """Serve ``req``; ``translate`` is its IOMMU miss time (0 without IOMMU)."""

    def utilization(self) -> float:
        """Mean share of servers busy since the last reset."""
        return self.servers.busy.mean() / self.servers.capacity

    def reset(self) -> None:
        """End of warm-up."""
        self.servers.busy.reset()
        self.servers.queue_level.reset()
        self.completed = 0


class NicDevice(Device):
    """A NIC port (send path)."""

    kind = "nic"
    ops = ("send",)

    def __init__(self, env: SimEnv, spec: Nic) -> None:
        super().__init__(env, spec, 1)
        self._spec = spec
        self._us_per_byte = 8e6 / spec.line_rate

    def wire_time(self, size: int) -> float:
        """µs on the wire for a request of ``size`` payload bytes."""
        frames = max(1, math.ceil(size / self._spec.mtu))
        return (size + frames * self._spec.frame_overhead) * self._us_per_byte

    def samplers(self, env: SimEnv, key: str) -> dict[str, Sampler]:
        return {"send": self._spec.latency.sampler(env.rng(f"{key}/service.send"))}

    def serve(self, req: Request, translate: float) -> Generator[simpy.Event, Any, None]:
        c = req.c
        latency = req.service()
        yield self.env.timeout(latency + translate)
        servers = self.servers
        queued = yield from servers.acquire()
        wire = self.wire_time(req.size)
        yield self.env.timeout(wire)
        servers.release()
        self.completed += 1
        c[IOMMU] += translate
        c[DEVICE_QUEUE] += queued
        c[DEVICE_SERVICE] += latency + wire


class NvmeDevice(Device):
    """An NVMe drive."""

    kind = "nvme"
    ops = ("read", "write")

    def __init__(self, env: SimEnv, spec: Nvme) -> None:
        super().__init__(env, spec, spec.channels)
        self._spec = spec
        self._us_per_byte = 8e6 * spec.channels / spec.bandwidth

    def samplers(self, env: SimEnv, key: str) -> dict[str, Sampler]:
        return {
            "read": self._spec.read.sampler(env.rng(f"{key}/service.read")),
            "write": self._spec.write.sampler(env.rng(f"{key}/service.write")),
        }

    def serve(self, req: Request, translate: float) -> Generator[simpy.Event, Any, None]:
        c = req.c
        servers = self.servers
        queued = yield from servers.acquire()
        service = req.service() + req.size * self._us_per_byte
        yield self.env.timeout(service + translate)
        servers.release()
        self.completed += 1
        c[IOMMU] += translate
        c[DEVICE_QUEUE] += queued
        c[DEVICE_SERVICE] += service


def build(env: SimEnv, spec: Nic | Nvme) -> Device:
    """The device model for a device spec."""
    if isinstance(spec, Nic):
        return NicDevice(env, spec)
    return NvmeDevice(env, spec)
