"""The children of a scenario and what they do: paths, devices, guests' costs, I/O
streams (open or closed loop, op mix, sizes, arrivals) and CPU load."""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BeforeValidator, Field

from sim.scenario import units
from sim.scenario.fields import (
    CAP_HELP,
    PIN_HELP,
    REQUEST_SIZE,
    WEIGHT_HELP,
    Bitrate,
    Cap,
    CostDist,
    Model,
    Name,
    Rate,
    SizeDist,
    Time,
    TimeDist,
    Weight,
    field,
)
from sim.scenario.hardware import MEMORY_RATE
from sim.scenario.reader import quote

# ---------------------------------------------------------------------------------------
# Children and workloads
# ---------------------------------------------------------------------------------------
IoPath = Literal["routed", "direct", "native", "hypervisor", "emulated"]
IO_PATHS: tuple[str, ...] = typing.get_args(IoPath)


def _op_mix(value: Any) -> Any:
    if isinstance(value, str):
        return {value: 1.0}
    if isinstance(value, Mapping):
        out: dict[str, float] = {}
        for k, w in value.items():
            if not isinstance(k, str):
                raise ValueError(f"op names must be strings, got {units.show(k)}")
            try:
                weight = float(w) if isinstance(w, int | float) and not isinstance(w, bool) else 0.0
            except OverflowError:  # an integer beyond any float
                weight = math.inf
            if not (math.isfinite(weight) and weight > 0):
                shown = units.show(w)
                raise ValueError(f"weight of op {quote(k)} must be a positive number, got {shown}")
            out[k] = weight
        if not out:
            raise ValueError("op mix is empty")
        return out
    shown = units.show(value)
    raise ValueError(f"op must be a name or a mapping of names to weights, got {shown}")


class Burst(Model):
    """Bursts of a Markov-modulated Poisson process (``arrival: mmpp``): arrivals alternate
    between a high and a low Poisson rate, each held for an exponential time (two-state
    MMPP; Heffes & Lucantoni, IEEE JSAC 1986). The stream's ``rate`` stays the mean."""

    factor: float = field(
        10.0, gt=1.0, le=1e6, description="High rate over low rate during a burst."
    )
    length: Time = field("10ms", gt=0, le=3.6e9, description="Mean length of a burst.")
    between: Time = field(
        "90ms", gt=0, le=3.6e9, description="Mean time from the end of a burst to the next."
    )

    def rates(self, mean: float) -> tuple[float, float]:
        """(high, low) rates whose time average is ``mean``."""
        low = mean * (self.length + self.between) / (self.factor * self.length + self.between)
        return self.factor * low, low


class Stream(Model):
    """One workload stream of a child: open loop (rate) or closed loop (outstanding)."""

    op: Annotated[dict[str, float], BeforeValidator(_op_mix)] = field(
        description="An op name (read, write for NVMe; send, receive for a NIC) or a mix "
        "{read: 0.7, write: 0.3}.",
        json_schema_extra={"type": ["string", "object"]},
    )
    size: Annotated[SizeDist, REQUEST_SIZE] = field(
        "4KiB",
        description="Request size: a size or a distribution. A continuous distribution "
        "(exponential, gamma, lognormal, uniform, scipy) may draw below 1 B: its draws are "
        "rounded to whole bytes, at least 1 B.",
    )
    arrival: Literal["poisson", "deterministic", "mmpp"] = field(
        "poisson",
        description="Open-loop arrival process (with rate): poisson, deterministic, or "
        "mmpp (bursts, see 'burst').",
    )
    burst: Burst | None = field(
        None,
        description="With arrival: mmpp, the bursts (default: factor 10, 10 ms long, 90 ms "
        "between).",
    )
    rate: Rate | None = field(None, gt=0, description="Open loop: requests per second.")
    outstanding: int | None = field(
        None, ge=1, le=100_000, description="Closed loop: requests kept in flight."
    )
    think: TimeDist = field("0us", description="Closed loop: think time between requests.")
    vcpu: int | None = field(
        None,
        ge=0,
        le=1023,
        description="Issuing vCPU; default: round robin over the child's vCPUs.",
    )

    @pydantic.model_validator(mode="after")
    def _one_loop(self) -> Stream:
        if (self.rate is None) == (self.outstanding is None):
            raise ValueError("give either 'rate' (open loop) or 'outstanding' (closed loop)")
        if self.burst is not None and self.arrival != "mmpp":
            raise ValueError("'burst' goes with arrival: mmpp")
        if self.arrival == "mmpp" and self.rate is None:
            raise ValueError("arrival: mmpp is open loop: it needs a 'rate'")
        return self

    @property
    def closed(self) -> bool:
        return self.outstanding is not None


class Guest(Model):
    """The child's own I/O driver costs (VSC on the routed path, VF driver on direct)."""

    submit_cost: CostDist = field("2us", description="Guest driver CPU per request. Assumed.")
    complete_cost: CostDist = field(
        "2us",
        description="Guest CPU per completion (interrupt handler), and per received "
        "message (per frame without LRO). Assumed.",
    )
    syscalls_per_request: int = field(
        1,
        ge=0,
        le=1000,
        description="Guest system calls per request (the application's send/receive or "
        "read/write), each costing host.cpu_virtualization.syscall. Assumed: one.",
    )
    privileged_ops_per_request: int = field(
        2,
        ge=0,
        le=1000,
        description="Privileged operations of the guest kernel per request, each costing "
        "host.cpu_virtualization.privileged_op. Assumed: an interrupt-priority raise and "
        "lower around the driver's ring update.",
    )
    page_table_updates_per_request: int = field(
        1,
        ge=0,
        le=1000,
        description="Guest page-table writes per request, each costing "
        "host.cpu_virtualization.page_table_update (shadow paging). Assumed: one (the "
        "request's buffer mapped or a page fault filled).",
    )

    packet_cost: CostDist = field(
        "0us",
        description="NIC streams: the protocol stack's CPU per packet it handles (TCP/IP "
        "and socket layer, beside the driver's per-request costs): per segment sent "
        "(one with TSO, and on the routed, hypervisor and emulated paths, whose virtual "
        "NICs take whole requests) and per unit received (one with LRO). 0 (default): "
        "not modelled. Era figures are in the docs (docs/design.md, stack costs).",
    )
    copy_bandwidth: Annotated[Bitrate, MEMORY_RATE] | None = field(
        None,
        description="NIC streams: rate at which the stack copies the payload between the "
        "user's buffer and its own (copy from user on send, to user on receive), on the "
        "issuing vCPU for sends and the completing one for receives. None (default): no "
        "copy modelled.",
    )

    def copy_cost(self, size: float) -> float:
        """CPU to copy ``size`` bytes between user and kernel (0 without a rate)."""
        return size * (8e6 / self.copy_bandwidth) if self.copy_bandwidth else 0.0


class VirtualNic(Model):
    """Offloads the routed child's synthetic NIC (netvsc; Xen netfront) offers its guest,
    independent of the physical port's ``tso`` and ``lro`` (see :mod:`sim.model.iopaths`)."""

    tso: bool = field(
        True,
        description="Virtual TSO/GSO: true (default, as before): the guest hands the "
        "synthetic NIC whole requests; false: its stack cuts each send into ceil(size / "
        "mtu) segments (the device's MTU), each a packet of its own through the guest "
        "driver, the channel's rings and the VSP. Linux netvsc offers TSO to its guest "
        "(NETIF_F_TSO, read); Xen netfront since Menon et al., USENIX ATC 2006.",
    )
    lro: bool = field(
        True,
        description="Virtual receive coalescing (RSC/GRO on the synthetic NIC): true "
        "(default, as before): the VSP hands a received message to the guest as one "
        "packet; false: one packet per MTU frame, each through the VSP, the inbound ring "
        "and the guest's receive processing. Hyper-V vRSC, netvsc NDIS_OFFLOAD "
        "rsc_ip4 (read).",
    )


class CpuLoad(Model):
    """CPU-bound work on a child's vCPUs, competing with I/O for the LPs.

    Each vCPU alternates bursts of ``busy`` µs of work (CPU time, not wall time) and
    ``idle`` wall-clock gaps. Without ``busy`` the vCPU is always runnable."""

    busy: TimeDist | None = field(
        None, description="CPU work per burst; default: endless (always runnable)."
    )
    idle: TimeDist = field("0us", description="Wall time between bursts.")
    vcpus: list[Annotated[int, Field(ge=0, le=1023)]] | None = field(
        None, description="vCPUs that run the load; default: all."
    )


class GuestTimer(Model):
    """The guest kernel's timer tick on each vCPU (see :mod:`sim.model.periodic`).

    Each tick is a work item on the vCPU: the timer's delivery (an exit unless interrupts
    are posted, and its EOI), the guest re-arming its LAPIC timer (an exit,
    ``host.costs.timer_arm_exit``) and the guest's tick handler (``handler_cost``). A tick
    that finds its vCPU blocked wakes it (a wake-up and a world switch) and leaves it to
    halt again (``host.costs.halt_exit``)."""

    mode: Literal["off", "periodic", "tickless"] = field(
        "off",
        description="off: no tick modelled (ticks are folded into the other costs, as "
        "before). periodic: every vCPU ticks at hz, idle or not (Linux without NO_HZ, "
        "Windows' HAL timer). tickless: a vCPU ticks at hz only while it has work; an idle "
        "one takes none (Linux CONFIG_NO_HZ_IDLE, Documentation/timers/no_hz.rst, read).",
    )
    hz: int = field(
        250,
        ge=1,
        le=10_000,
        description="Ticks per second per vCPU. Linux CONFIG_HZ 100/250/1000 (2.6.0-2.6.13 "
        "1000, later 250 by default); Windows 64-100 (VMware KB 1005802, 'Determining and "
        "changing the rate of timer interrupts a guest operating system requests', read).",
    )
    handler_cost: CostDist = field(
        "1us",
        description="Guest CPU of one tick's handler (timekeeping, scheduler tick, "
        "expired timers). Assumed: a few thousand cycles.",
    )


class Emulated(Model):
    """The emulated device of a child on io_path emulated (an e1000 NIC, an IDE
    controller): what its driver's register accesses cost (see :mod:`sim.model.iopaths`)."""

    exits_per_request: int = field(
        4,
        ge=1,
        le=1000,
        description="Register accesses (MMIO/PIO) per request, each an exit to the device "
        "model (host.costs.device_model_exit on the child's vCPU, access_cost on the "
        "parent's), all taken when the request is submitted, the completion handler's "
        "(interrupt-cause read, unmask) included. Assumed: an e1000 transmit takes a tail "
        "write, an interrupt-cause read and an unmask; an IDE DMA command several more.",
    )
    access_cost: CostDist = field(
        "1us",
        description="Device-model CPU per register access, on the parent vCPU serving "
        "the child (decode, emulated device state). Assumed.",
    )


class IoPolicy(Model):
    """What the child's guest does about I/O that does not complete (see :mod:`sim.model.faults`):
    its command timer, its retries, and whether it waits for a failed parent."""

    timeout: Time = field(
        "30s",
        gt=0,
        description="Command timeout: an attempt not completed this long after it was "
        "submitted fails ('timeout') and is retried. Linux sd default, "
        "/sys/block/*/device/timeout (drivers/scsi/sd.h SD_TIMEOUT = 30 s, read); Linux "
        "storvsc sets 180 s on Hyper-V's synthetic disks (storvsc_timeout, read). Used "
        "with on_parent_failure: timeout.",
    )
    retries: int = field(
        5,
        ge=0,
        le=1000,
        description="Attempts after the first that a failed request gets (timeout, device "
        "reset) before it fails for good ('retries exhausted'). Linux sd SD_MAX_RETRIES = "
        "5 (drivers/scsi/sd.h, read).",
    )
    on_parent_failure: Literal["timeout", "wait"] = field(
        "timeout",
        description="timeout: the command timer runs; requests a crashed parent lost "
        "time out and are retried. wait: no command timer; the guest waits, and resubmits "
        "what a crashed parent lost when the parent comes back (its channels are offered "
        "again). Assumed: Linux keeps its command timer armed.",
    )


class Child(Model):
    """A child partition (or ``count`` identical ones, named NAME-1 … NAME-count)."""

    name: Name
    count: int = field(1, ge=1, le=4096)
    vcpus: int = field(2, ge=1, le=1024)
    weight: Weight = field(256, description=WEIGHT_HELP)
    cap: Cap = field(0.0, description=CAP_HELP)
    pin: list[Annotated[int, Field(ge=0, le=1023)]] | None = field(None, description=PIN_HELP)
    io_path: IoPath = field(
        "routed",
        description="How its I/O reaches the device (sim.model.iopaths): routed (VMBus, the "
        "parent's VSP), direct (a VF; routed when none is free), hypervisor (the "
        "hypervisor's own I/O stack), emulated (a device model in the parent), native.",
    )
    device: Name | None = field(None, description="The device its streams use.")
    vf: int | None = field(
        None,
        ge=0,
        le=4095,
        description="VF index to assign (direct); default: the next free VF.",
    )
    irq_vcpu: int | None = field(
        None,
        ge=0,
        le=1023,
        description="vCPU that takes completions; default: the issuing vCPU.",
    )
    guest: Guest = field({})
    vnic: VirtualNic | None = field(
        None,
        description="Routed children on a NIC: the synthetic NIC's own offloads (tso, "
        "lro); default: both on.",
    )
    emulated: Emulated = field({})
    io_policy: IoPolicy = field({})
    streams: list[Stream] = field([], description="I/O workload streams.")
    cpu_load: CpuLoad | None = field(None, description="CPU-bound background work.")
    timer: GuestTimer = field({}, description="The guest's timer tick (default off).")
