"""Scenario files: schema, defaults, loading, overrides and cross-field validation.

A scenario keeps hardware (``host``, ``devices``), deployment (``parent``, ``children`` with
their ``io_path``) and behaviour (``streams``) apart, and writes units out (``"30ms"``,
``"4KiB"``, ``"25Gbps"``, ``"2600cycles"``). Loading is: read → safe YAML (no object
construction, no custom tags, no duplicate keys) → the ``preset`` it names under it
(:mod:`sim.presets`: a platform profile, each value with its source) → overrides
(``--set``) → schema (pydantic: types, ranges, unknown keys, defaults) → cross-field rules
(references, VF indices, op/device compatibility) → a frozen :class:`Scenario`, whose
``sources`` give the preset's source of every preset value it kept. Precedence: preset <
scenario file < ``--set``. Nothing is built before everything is valid. Every error is a
:class:`ScenarioError` whose text is one line, ``FILE[:LINE]: field.path: what is wrong``
(a preset's own values are blamed on the preset file).

All defaults are declared here, visible in ``hvsim schema``. Figures come from
``reference/parameters.md`` where one exists (its source is in the field's description);
the others are marked *assumed* and are meant to be swept, not trusted.

Internal units after loading: time µs (float), size bytes (int), bit rates bit/s, rates
per second. Costs given in cycles are converted with ``host.clock``.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
import typing
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
)

from sim import distributions, units
from sim.distributions import Distribution

MAX_FILE_BYTES = 4 * 1024 * 1024
DEFAULT_CLOCK_GHZ = 2.5


class ScenarioError(Exception):
    """Invalid scenario input; ``str()`` is the one line shown to the user."""

    def __init__(self, file: str, path: str, message: str, line: int | None = None) -> None:
        self.file, self.path, self.message, self.line = file, path, message, line
        where = f"{file}:{line}" if line else file
        shown = path if len(path) <= 200 else path[:197] + "..."  # a --set path is any text
        text = f"{where}: {shown}: {message}" if path else f"{where}: {message}"
        super().__init__(text.replace("\n", " "))


# ---------------------------------------------------------------------------------------
# Field types with units
# ---------------------------------------------------------------------------------------
def _unit(parse: Any) -> Any:
    def check(value: Any) -> Any:
        try:
            return parse(value)
        except units.UnitError as exc:
            raise ValueError(str(exc)) from None

    return check


MAX_TIME_US = 1e15
"""Longest time a scenario may give (1e9 s, 31 years): the clock counts µs in a float, which
keeps sub-µs steps up to about here."""
_LONGEST = "longer than 1e9s (31 years), the most a scenario may give"


def _time(value: Any, info: ValidationInfo) -> float:
    ctx = info.context or {}
    try:
        us = units.parse_time(value, clock_ghz=ctx.get("clock_ghz", DEFAULT_CLOCK_GHZ))
    except units.UnitError as exc:
        raise ValueError(str(exc)) from None
    if us > MAX_TIME_US:
        raise ValueError(f"{units.show(value)} is {_LONGEST}")
    return us


def _ser(exact: Any) -> Any:
    return PlainSerializer(lambda v: v if isinstance(v, str) else exact(v), return_type=str)


def _dist(kind: distributions.Kind) -> Any:
    def check(value: Any, info: ValidationInfo) -> Distribution:
        clock = (info.context or {}).get("clock_ghz", DEFAULT_CLOCK_GHZ)
        try:
            dist = distributions.parse(value, kind, clock_ghz=clock)
        except units.UnitError as exc:
            raise ValueError(str(exc)) from None
        bounded = dist.largest if math.isfinite(dist.largest) else 0.0
        if kind == "time" and max(dist.mean, bounded) > MAX_TIME_US:
            what = units.show(value) if dist.is_constant else "a value or its mean"
            raise ValueError(f"{what} is {_LONGEST}")
        return dist

    return check


def _quantity_schema(example: str) -> Any:
    return WithJsonSchema({"type": ["string", "number"], "description": f"e.g. '{example}'"})


Time = Annotated[
    float,
    BeforeValidator(_time),
    _ser(units.exact_time),
    _quantity_schema("30ms"),
]
Size = Annotated[
    int,
    BeforeValidator(_unit(units.parse_size)),
    _ser(units.exact_size),
    _quantity_schema("4KiB"),
]
Bitrate = Annotated[
    float,
    BeforeValidator(_unit(units.parse_bitrate)),
    _ser(units.exact_bitrate),
    _quantity_schema("25Gbps"),
]
Frequency = Annotated[
    float,
    BeforeValidator(_unit(units.parse_frequency)),
    _ser(units.exact_frequency),
    _quantity_schema("2.5GHz"),
]
Rate = Annotated[
    float,
    BeforeValidator(_unit(units.parse_rate)),
    _ser(units.exact_rate),
    _quantity_schema("20k/s"),
]
TimeDist = Annotated[
    Distribution,
    BeforeValidator(_dist("time")),
    PlainSerializer(lambda v: v if isinstance(v, str | dict) else v.to_spec()),
    WithJsonSchema(distributions.json_schema("time")),
]
SizeDist = Annotated[
    Distribution,
    BeforeValidator(_dist("size")),
    PlainSerializer(lambda v: v if isinstance(v, str | dict) else v.to_spec()),
    WithJsonSchema(distributions.json_schema("size")),
]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
Name = Annotated[str, Field(pattern=_NAME.pattern)]
MAX_REQUEST_BYTES = 64 * 2**20
"""Largest request a stream may issue: one I/O (Linux splits larger ones at the block
layer's max_sectors_kb, a few MiB; a TSO send is at most 64 KiB)."""
DEFAULT_REQUEST_BUDGET = 10_000_000
"""Default ``run.request_budget``: a run holds about 1.3 KB per request until it is written
(records, then the requests table), so 1e7 requests take about 13 GB, and 5-6 minutes at
~30k requests/s."""
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


def _not_yet(allowed: tuple[str, ...], planned: Mapping[str, str]) -> Any:
    """Reject values that are part of the design but not modelled in this version."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and value in planned:
            raise ValueError(
                f"'{value}' is not modelled in this version ({planned[value]}); "
                f"use one of: {', '.join(allowed)}"
            )
        return value

    return BeforeValidator(check)


def _field(*args: Any, **kwargs: Any) -> Any:
    """``pydantic.Field`` typed loosely: defaults are written as unit strings ("30ms") that
    the field's validator converts, which a static checker cannot know."""
    return Field(*args, **kwargs)


class _Model(BaseModel):
    # strict: YAML's `true` is not 1 core, 4.5 is not 4 vCPUs (values with units are parsed
    # by their own validators before the type check)
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True, strict=True)


# ---------------------------------------------------------------------------------------
# Host
# ---------------------------------------------------------------------------------------
class Costs(_Model):
    """CPU costs of hypervisor transitions, charged on the LP of the vCPU that pays them."""

    hypercall: Time = _field(
        "2600cycles",
        description="Signalling hypercall (guest → parent or parent → guest notification), "
        "an exit handled in the hypervisor. Dall et al., ATC 2017, Table 2 (quoted).",
    )
    interrupt_exit: Time = _field(
        "2600cycles",
        description="External-interrupt exit and injection when interrupts are not posted. "
        "Dall et al., ATC 2017, Table 2 (quoted).",
    )
    eoi_exit: Time = _field(
        "1550cycles",
        description="EOI exit when interrupts are not posted. Dall et al., ISCA 2016, "
        "Table II (quoted).",
    )
    vcpu_dispatch: Time = _field(
        "1600cycles",
        description="World switch when a blocked vCPU is dispatched onto an LP: one VM "
        "exit/entry round trip. SplitX, Landau et al., WIOV 2011 (read: 1,300-2,000 cycles).",
    )
    doorbell_exit: Time = _field(
        "2600cycles",
        description="io_path hypervisor: the paravirtual driver's doorbell write (one per "
        "request), an exit handled in the hypervisor's own I/O stack. Dall et al., ATC "
        "2017, Table 2 (quoted: ≈2,600 cycles for an exit handled in the hypervisor).",
    )
    device_model_exit: Time = _field(
        "6700cycles",
        description="io_path emulated: one access of the guest driver to an emulated "
        "device register, an exit to a user-space device model and back, charged on the "
        "child's vCPU (the device model's own CPU is emulated.access_cost). Dall et al., "
        "ATC 2017, Table 2 (quoted).",
    )


class Scheduler(_Model):
    """vCPU → LP scheduling (see :mod:`sim.hypervisor`)."""

    policy: Annotated[
        Literal["credit", "fair", "pinned"],
        _not_yet(("credit", "fair", "pinned"), {"core": "SMT core scheduling"}),
    ] = _field(
        "credit",
        description="credit: Xen credit / Hyper-V classic (weights, caps, priorities "
        "BOOST > UNDER > OVER, BOOST on wake-up). fair: round robin, no priorities. "
        "pinned: round robin on a fixed vCPU → LP map (every partition gives 'pin').",
    )
    time_slice: Time = _field(
        "30ms", gt=0, description="Xen sched/credit.c default time slice (read)."
    )
    tick: Time = _field(
        "10ms",
        gt=0,
        description="Credit accounting tick: credits debited, BOOST ends. Xen (read).",
    )
    accounting_period: Time = _field(
        "30ms", gt=0, description="Credits handed out by weight once per period. Xen (read)."
    )
    ratelimit: Time = _field(
        "1ms",
        description="A vCPU is not preempted before it has run this long. Xen "
        "sched_ratelimit_us default (read).",
    )
    boost: bool = _field(
        True,
        description="BOOST a vCPU woken by an interrupt or signal: it preempts UNDER and "
        "OVER vCPUs. Xen sched/credit.c (read).",
    )
    load_balance: bool = _field(
        True, description="Idle or lower-priority LPs steal runnable vCPUs from other LPs."
    )
    root: Literal["pinned", "floating"] = _field(
        "pinned",
        description="pinned: parent vCPU i runs on LP i only (Hyper-V root; Windows Server "
        "docs, read); floating: anywhere.",
    )
    minroot: int = _field(
        0,
        ge=0,
        description="Reserve LPs 0..N-1 for the parent alone (Hyper-V minroot); 0 = off.",
    )


class Iommu(_Model):
    """DMA remapping for directly assigned functions: the host's one IOMMU, its IOTLB shared
    by every direct child, and how guests map their DMA buffers (see :mod:`sim.iommu`)."""

    mode: Literal["static", "strict", "deferred"] = _field(
        "static",
        description="static: all guest memory mapped at VM start, no per-I/O map/unmap, "
        "IOTLB entries persist (Hyper-V; Linux Documentation/virt/hyperv/vpci.rst, read). "
        "strict: the guest maps each request's buffer before it (strict_map_cost), unmaps "
        "it and invalidates its IOTLB entries after it (strict_unmap_cost). deferred: maps "
        "per request (strict_map_cost); unmaps are queued and the child's IOTLB entries "
        "are flushed in one batch deferred_flush_interval after the first queued unmap "
        "(Linux dma-iommu flush queue).",
    )
    page_size: Size = _field(
        "4KiB",
        ge=4096,
        le=2**30,
        description="IOMMU page size: 4 KiB to 1 GiB, the page sizes of VT-d, AMD-Vi and "
        "the Arm SMMU (a request's DMA is looked up page by page).",
    )
    iotlb_entries: int = _field(
        64,
        ge=1,
        le=1_048_576,
        description="IOTLB capacity in translations (pages), LRU replacement, shared by "
        "all direct children; entries are tagged by child (domain), never shared. Assumed "
        "(vendors do not publish IOTLB sizes): sweep it.",
    )
    dma_buffers: int = _field(
        256,
        ge=1,
        le=1_048_576,
        description="DMA buffers each direct child's driver cycles through (the buffers "
        "behind its descriptor ring): request n uses buffer n mod dma_buffers, which spans "
        "ceil(size / page_size) pages. Assumed: 256, a typical descriptor ring (the Xen "
        "netif ring has 256 slots, derived).",
    )
    page_walk: Time = _field(
        "0.3us", description="IOTLB miss penalty (4-level page walk). Assumed: 0.2-0.5 us."
    )
    strict_map_cost: Time = _field(
        "1us",
        description="Guest CPU per request to map its buffer (strict and deferred). Assumed.",
    )
    strict_unmap_cost: Time = _field(
        "2us",
        description="Guest CPU per request to unmap and invalidate (strict). Assumed.",
    )
    deferred_flush_interval: Time = _field(
        "10ms",
        gt=0,
        description="deferred: queued unmaps are flushed this long after the first of a "
        "batch. Linux drivers/iommu/dma-iommu.c IOVA_DEFAULT_FQ_TIMEOUT (read); "
        "reference/parameters.md (quoted).",
    )
    deferred_flush_cost: Time = _field(
        "2us",
        description="deferred: guest CPU per batch flush (one domain-wide IOTLB "
        "invalidation, as the invalidation in strict_unmap_cost), charged once per batch on "
        "the vCPU that queued its first unmap. Assumed.",
    )


class HypervisorIo(_Model):
    """The hypervisor's own I/O stack (io_path hypervisor, VMware ESX vmkernel style): a
    backend for the paravirtual device and the physical driver, both in the hypervisor,
    run on the LP of the child's vCPU and charged to it as ``hypervisor`` time."""

    request_cost: TimeDist = _field(
        "3us",
        description="Hypervisor CPU per request: backend (reads the shared ring, maps the "
        "guest's buffers in place: no copy, no partition crossing) and physical driver. "
        "Assumed: the parent's driver.request_cost plus 1.5 us.",
    )
    completion_cost: TimeDist = _field(
        "2.5us",
        description="Hypervisor CPU per completion: the device's interrupt, the driver's "
        "handler and the backend's completion into the shared ring. Assumed: the parent's "
        "driver.interrupt_cost plus 1 us.",
    )


class Host(_Model):
    """The physical machine and its hypervisor."""

    cores: int = _field(16, ge=1, le=1024, description="Logical processors (LPs).")
    clock: Frequency = _field("2.5GHz", description="Converts cycle costs to time.")
    posted_interrupts: bool = _field(
        True,
        description="APICv/AVIC posted interrupts: delivery into a vCPU without exits. "
        "Without: an external-interrupt exit and an EOI exit per interrupt (ELI, "
        "Gordon et al., ASPLOS 2012).",
    )
    costs: Costs = _field({})
    scheduler: Scheduler = _field({})
    iommu: Iommu = _field({})
    hypervisor_io: HypervisorIo = _field({})


# ---------------------------------------------------------------------------------------
# Parent partition
# ---------------------------------------------------------------------------------------
class Vsp(_Model):
    """The parent's virtualization service provider (storvsp / netvsp, blkback / netback)."""

    request_cost: TimeDist = _field("4us", description="VSP CPU per request. Assumed.")
    completion_cost: TimeDist = _field("2us", description="VSP CPU per completion. Assumed.")
    copy_bandwidth: Bitrate = _field(
        "80Gbps",
        ge=1,
        description="memcpy rate for payloads copied through the send/receive buffers. "
        "Assumed (10 GB/s).",
    )
    page_cost: Time = _field(
        "0.1us",
        description="VSP CPU per page of a page-list transfer (Cherkasova & Gardner, ATC "
        "2005: parent CPU charged per page exchanged; value assumed).",
    )


class Driver(_Model):
    """The parent's physical device driver."""

    request_cost: TimeDist = _field("1.5us", description="Driver CPU per request. Assumed.")
    interrupt_cost: TimeDist = _field(
        "1.5us", description="Driver ISR/DPC CPU per completion. Assumed."
    )


class Vmbus(_Model):
    """VMBus channels between each routed child and the parent: per device, a primary
    channel and sub-channels, each with its own rings and parent vCPU."""

    ring_size: Size = _field(
        "512KiB",
        gt=0,
        description="Ring buffer per direction. Linux hv_netvsc: 128 × 4 KiB pages (read).",
    )
    descriptor_size: Size = _field(
        "64B", description="Ring bytes per request descriptor (header + message). Assumed."
    )
    page_entry_size: Size = _field(
        "16B",
        description="Ring bytes per page in a page list (length, offset, PFN). Linux "
        "vmbus_channel_packet_page_buffer (derived).",
    )
    copy_threshold: Size = _field(
        "6144B",
        description="Payloads up to this size are copied through the send buffer; larger "
        "ones are described by page lists. Linux hyperv_net.h send section (read).",
    )
    vcpus_per_channel: int = _field(
        4,
        ge=1,
        le=65536,
        description="Child vCPUs per channel: a routed child opens a primary channel and "
        "(vCPUs - 1) // vcpus_per_channel sub-channels to its device; child vCPU i sends on "
        "channel i mod channels. Linux storvsc storvsc_vcpus_per_sub_channel (read); "
        "netvsc's one channel per vCPU is 1; a value above the vCPUs gives the primary alone.",
    )
    max_channels: int = _field(
        64,
        ge=1,
        le=65536,
        description="Most channels (primary included) a routed child opens to one device. "
        "Linux hv_netvsc VRSS_CHANNEL_MAX (read).",
    )


Weight = Annotated[int, Field(ge=1, le=65535)]
Cap = Annotated[float, Field(ge=0.0, le=102400.0)]
_WEIGHT = "Credit scheduler weight (Xen default 256, read)."
_CAP = "Credit scheduler cap in % of one LP (Xen semantics: 50 = half an LP); 0 = none."
_PIN = "LP of each vCPU (hard affinity); required for every partition under policy pinned."


class Parent(_Model):
    """The parent (root) partition: owns the devices, runs the VSPs."""

    vcpus: int = _field(4, ge=1, le=1024)
    weight: Weight = _field(256, description=_WEIGHT)
    cap: Cap = _field(0.0, description=_CAP)
    pin: list[Annotated[int, Field(ge=0, le=1023)]] | None = _field(
        None, description=_PIN + " Default under root: pinned: vCPU i on LP i."
    )
    vsp: Vsp = _field({})
    driver: Driver = _field({})
    vmbus: Vmbus = _field({})


# ---------------------------------------------------------------------------------------
# Devices
# ---------------------------------------------------------------------------------------
PfWeight = Annotated[int, Field(ge=1, le=1024)]
_PF_WEIGHT = (
    "Requests the physical function (all routed traffic) starts in a row per round-robin "
    "turn; each VF starts 1. Assumed: equal shares."
)


def _check_pf_weight(pf_weight: int, arbitration: str) -> None:
    if pf_weight != 1 and arbitration != "round_robin":
        raise ValueError("pf_weight needs arbitration: round_robin")


class InterruptModeration(_Model):
    """Interrupt moderation (coalescing) of each function's completion interrupts, per
    interrupt vector: an interrupt is raised when ``frames`` completions are pending or
    ``usecs`` after the first of them, whichever comes first (see :mod:`sim.devices`)."""

    usecs: Time = _field(
        "0us",
        ge=0.0,
        description="Most time a completion waits for its interrupt, counted from the first "
        "pending completion of its vector; 0 = no timer (frames alone). Linux struct "
        "ethtool_coalesce semantics, ethtool tx-usecs / rx-usecs (include/uapi/linux/"
        "ethtool.h, read); NVMe feature 08h TIME x 100 us. Default 0 with frames 1, no "
        "moderation: NVMe's reset value (NVM Express Base Specification, Interrupt "
        "Coalescing, read); for a NIC assumed, to keep one interrupt per completion: NIC "
        "drivers usually moderate, Linux mlx5 16 us on transmit and receive "
        "(drivers/net/ethernet/mellanox/mlx5/core/en.h, read).",
    )
    frames: int = _field(
        1,
        ge=0,
        le=65536,
        description="Completions pending on a vector that raise its interrupt at once; 1 = "
        "every completion (no moderation, whatever usecs), 0 = no count limit (usecs "
        "alone). ethtool tx-frames / rx-frames (read); NVMe feature 08h THR + 1, reset "
        "value 1 (read); for a NIC the default 1 is assumed: Linux mlx5 uses 32 on "
        "transmit and receive (en.h, read).",
    )

    @pydantic.model_validator(mode="after")
    def _raises_interrupts(self) -> InterruptModeration:
        if self.frames == 0 and self.usecs == 0:
            raise ValueError("usecs 0 and frames 0 would never raise an interrupt")
        return self


_MODERATION = "Completion interrupt moderation of every function, per interrupt vector."


class Nic(_Model):
    """A NIC port: transmissions serialised at line rate, shared by its functions (the PF
    and the VFs), each with its own transmit queue, arbitrated by ``arbitration``."""

    name: Name
    type: Literal["nic"]
    line_rate: Bitrate = _field("25Gbps")
    mtu: Size = _field("1500B", description="Payload bytes per frame (segmentation).")
    frame_overhead: Size = _field(
        "78B",
        description="Wire bytes per frame beyond payload: preamble+SFD 8, Ethernet header "
        "14, FCS 4, inter-frame gap 12 (IEEE 802.3), IPv4 20 + TCP 20 headers (derived).",
    )
    latency: TimeDist = _field(
        "2us", description="Descriptor fetch, DMA and pipeline per request. Assumed."
    )
    vfs: int = _field(8, ge=0, le=4096, description="SR-IOV virtual functions.")
    tso: bool = _field(
        True,
        description="TCP segmentation offload: the sending stack hands the NIC a whole "
        "request and the NIC cuts it into MTU frames; false: the stack cuts it into "
        "ceil(size / mtu) segments in software and pays its per-request send cost per "
        "segment (see sim.iopaths). Assumed: current server NICs offload segmentation "
        "and their drivers enable it by default; the routed TSO case of Menon et al., "
        "ATC 2006 presumes it.",
    )
    lro: bool = _field(
        True,
        description="Receive coalescing (NIC LRO, Linux GRO): the frames of a received "
        "message reach the receiving stack as one unit; false: each stack on the receive "
        "path pays its per-request receive cost per frame (see sim.iopaths). Assumed: "
        "Linux enables GRO by default and current server NICs offer LRO.",
    )
    interrupt_moderation: InterruptModeration = _field({}, description=_MODERATION)
    arbitration: Literal["round_robin", "fifo"] = _field(
        "round_robin",
        description="How the free port picks among the functions' queues: round_robin "
        "(functions with waiting requests take turns, one request each) or fifo (arrival "
        "order across functions). Assumed: SR-IOV NICs arbitrate their transmit queues "
        "round robin; the arbitration across functions is vendor-specific.",
    )
    pf_weight: PfWeight = _field(1, description=_PF_WEIGHT)

    @pydantic.model_validator(mode="after")
    def _weight_needs_round_robin(self) -> Nic:
        _check_pf_weight(self.pf_weight, self.arbitration)
        return self

    @property
    def ops(self) -> tuple[str, ...]:
        return ("send", "receive")


class Nvme(_Model):
    """An NVMe drive with internal parallelism, a command-rate limit, and a submission
    queue per function (the PF and the VFs), arbitrated by ``arbitration``."""

    name: Name
    type: Literal["nvme"]
    channels: int = _field(8, ge=1, le=4096, description="Commands served in parallel.")
    read: TimeDist = _field(
        {"dist": "gamma", "mean": "80us", "cv": 0.5},
        description="Media service time of a read, before transfer. Assumed (TLC NAND).",
    )
    write: TimeDist = _field(
        {"dist": "gamma", "mean": "20us", "cv": 0.5},
        description="Service time of a write (to the drive's cache), before transfer. Assumed.",
    )
    bandwidth: Bitrate = _field(
        "3.2GB/s", description="Total transfer rate; each channel moves bandwidth/channels."
    )
    vfs: int = _field(16, ge=0, le=4096, description="SR-IOV virtual functions.")
    queue_depth: int = _field(
        1024,
        ge=2,
        le=65536,
        description="Entries of each function's I/O submission queue; a function has at most "
        "queue_depth - 1 commands in the drive (a full queue keeps one entry empty), the "
        "rest wait on the host. Linux nvme driver io_queue_depth default 1024 (read).",
    )
    max_iops: Rate | None = _field(
        "1M",
        gt=0,
        description="Commands the controller starts per second across all functions "
        "(command processing), on top of channel parallelism; null: no limit. Assumed: "
        "the order of the random 4 KiB read IOPS datacenter PCIe 4 drives quote (0.7-1.5M).",
    )
    interrupt_moderation: InterruptModeration = _field({}, description=_MODERATION)
    arbitration: Literal["round_robin", "fifo"] = _field(
        "round_robin",
        description="How a free channel picks among the functions' queues: round_robin "
        "(functions with waiting requests take turns, one command each) or fifo (arrival "
        "order across functions). Round robin is the arbitration every NVMe controller "
        "supports between submission queues (NVM Express Base Specification, Command "
        "Arbitration; read); across functions it is vendor-specific (assumed).",
    )
    pf_weight: PfWeight = _field(1, description=_PF_WEIGHT)

    @pydantic.model_validator(mode="after")
    def _weight_needs_round_robin(self) -> Nvme:
        _check_pf_weight(self.pf_weight, self.arbitration)
        return self

    @property
    def ops(self) -> tuple[str, ...]:
        return ("read", "write")


Device = Annotated[Nic | Nvme, Field(discriminator="type")]


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
                raise ValueError(f"weight of op {_quote(k)} must be a positive number, got {shown}")
            out[k] = weight
        if not out:
            raise ValueError("op mix is empty")
        return out
    shown = units.show(value)
    raise ValueError(f"op must be a name or a mapping of names to weights, got {shown}")


class Burst(_Model):
    """Bursts of a Markov-modulated Poisson process (``arrival: mmpp``): arrivals alternate
    between a high and a low Poisson rate, each held for an exponential time (two-state
    MMPP; Heffes & Lucantoni, IEEE JSAC 1986). The stream's ``rate`` stays the mean."""

    factor: float = _field(
        10.0, gt=1.0, le=1e6, description="High rate over low rate during a burst."
    )
    length: Time = _field("10ms", gt=0, le=3.6e9, description="Mean length of a burst.")
    between: Time = _field(
        "90ms", gt=0, le=3.6e9, description="Mean time from the end of a burst to the next."
    )

    def rates(self, mean: float) -> tuple[float, float]:
        """(high, low) rates whose time average is ``mean``."""
        low = mean * (self.length + self.between) / (self.factor * self.length + self.between)
        return self.factor * low, low


class Stream(_Model):
    """One workload stream of a child: open loop (rate) or closed loop (outstanding)."""

    op: Annotated[dict[str, float], BeforeValidator(_op_mix)] = _field(
        description="An op name (read, write for NVMe; send, receive for a NIC) or a mix "
        "{read: 0.7, write: 0.3}.",
        json_schema_extra={"type": ["string", "object"]},
    )
    size: SizeDist = _field("4KiB", description="Request size: a size or a distribution.")
    arrival: Literal["poisson", "deterministic", "mmpp"] = _field(
        "poisson",
        description="Open-loop arrival process (with rate): poisson, deterministic, or "
        "mmpp (bursts, see 'burst').",
    )
    burst: Burst | None = _field(
        None,
        description="With arrival: mmpp, the bursts (default: factor 10, 10 ms long, 90 ms "
        "between).",
    )
    rate: Rate | None = _field(None, gt=0, description="Open loop: requests per second.")
    outstanding: int | None = _field(
        None, ge=1, le=100_000, description="Closed loop: requests kept in flight."
    )
    think: TimeDist = _field("0us", description="Closed loop: think time between requests.")
    vcpu: int | None = _field(
        None,
        ge=0,
        le=1023,
        description="Issuing vCPU; default: round robin over the child's vCPUs.",
    )

    @pydantic.field_validator("size")
    @classmethod
    def _size_bounded(cls, size: Distribution) -> Distribution:
        # a request's DMA is looked up page by page, its segments cut one by one
        largest, limit = size.largest, MAX_REQUEST_BYTES
        if math.isfinite(largest) and largest > limit:
            got = f"up to {units.format_size(largest)}"
        elif size.mean > limit:
            got = f"a mean of {units.format_size(size.mean)}"
        else:
            return size
        raise ValueError(f"a request is at most {units.format_size(limit)} (got {got})")

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


class Guest(_Model):
    """The child's own I/O driver costs (VSC on the routed path, VF driver on direct)."""

    submit_cost: TimeDist = _field("2us", description="Guest driver CPU per request. Assumed.")
    complete_cost: TimeDist = _field(
        "2us",
        description="Guest CPU per completion (interrupt handler), and per received "
        "message (per frame without LRO). Assumed.",
    )


class CpuLoad(_Model):
    """CPU-bound work on a child's vCPUs, competing with I/O for the LPs.

    Each vCPU alternates bursts of ``busy`` µs of work (CPU time, not wall time) and
    ``idle`` wall-clock gaps. Without ``busy`` the vCPU is always runnable."""

    busy: TimeDist | None = _field(
        None, description="CPU work per burst; default: endless (always runnable)."
    )
    idle: TimeDist = _field("0us", description="Wall time between bursts.")
    vcpus: list[Annotated[int, Field(ge=0, le=1023)]] | None = _field(
        None, description="vCPUs that run the load; default: all."
    )


class Emulated(_Model):
    """The emulated device of a child on io_path emulated (an e1000 NIC, an IDE
    controller): what its driver's register accesses cost (see :mod:`sim.iopaths`)."""

    exits_per_request: int = _field(
        4,
        ge=1,
        le=1000,
        description="Register accesses (MMIO/PIO) per request, each an exit to the device "
        "model (host.costs.device_model_exit on the child's vCPU, access_cost on the "
        "parent's), all taken when the request is submitted, the completion handler's "
        "(interrupt-cause read, unmask) included. Assumed: an e1000 transmit takes a tail "
        "write, an interrupt-cause read and an unmask; an IDE DMA command several more.",
    )
    access_cost: TimeDist = _field(
        "1us",
        description="Device-model CPU per register access, on the parent vCPU serving "
        "the child (decode, emulated device state). Assumed.",
    )


class IoPolicy(_Model):
    """What the child's guest does about I/O that does not complete (see :mod:`sim.faults`):
    its command timer, its retries, and whether it waits for a failed parent."""

    timeout: Time = _field(
        "30s",
        gt=0,
        description="Command timeout: an attempt not completed this long after it was "
        "submitted fails ('timeout') and is retried. Linux sd default, "
        "/sys/block/*/device/timeout (drivers/scsi/sd.h SD_TIMEOUT = 30 s, read); Linux "
        "storvsc sets 180 s on Hyper-V's synthetic disks (storvsc_timeout, read). Used "
        "with on_parent_failure: timeout.",
    )
    retries: int = _field(
        5,
        ge=0,
        le=1000,
        description="Attempts after the first that a failed request gets (timeout, device "
        "reset) before it fails for good ('retries exhausted'). Linux sd SD_MAX_RETRIES = "
        "5 (drivers/scsi/sd.h, read).",
    )
    on_parent_failure: Literal["timeout", "wait"] = _field(
        "timeout",
        description="timeout: the command timer runs; requests a crashed parent lost "
        "time out and are retried. wait: no command timer; the guest waits, and resubmits "
        "what a crashed parent lost when the parent comes back (its channels are offered "
        "again). Assumed: Linux keeps its command timer armed.",
    )


class Child(_Model):
    """A child partition (or ``count`` identical ones, named NAME-1 … NAME-count)."""

    name: Name
    count: int = _field(1, ge=1, le=4096)
    vcpus: int = _field(2, ge=1, le=1024)
    weight: Weight = _field(256, description=_WEIGHT)
    cap: Cap = _field(0.0, description=_CAP)
    pin: list[Annotated[int, Field(ge=0, le=1023)]] | None = _field(None, description=_PIN)
    io_path: IoPath = _field(
        "routed",
        description="How its I/O reaches the device (sim.iopaths): routed (VMBus, the "
        "parent's VSP), direct (a VF; routed when none is free), hypervisor (the "
        "hypervisor's own I/O stack), emulated (a device model in the parent), native.",
    )
    device: Name | None = _field(None, description="The device its streams use.")
    vf: int | None = _field(
        None,
        ge=0,
        le=4095,
        description="VF index to assign (direct); default: the next free VF.",
    )
    irq_vcpu: int | None = _field(
        None,
        ge=0,
        le=1023,
        description="vCPU that takes completions; default: the issuing vCPU.",
    )
    guest: Guest = _field({})
    emulated: Emulated = _field({})
    io_policy: IoPolicy = _field({})
    streams: list[Stream] = _field([], description="I/O workload streams.")
    cpu_load: CpuLoad | None = _field(None, description="CPU-bound background work.")


def _count(value: Any) -> Any:
    """A count written as a number, or as text with an exponent or a multiplier (YAML reads
    ``1e9`` as text): 200000000, 2e8, '2e8', '200M', '1.5G'."""
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)\s*([kKMG]?)\s*", value)
        if m is None:
            raise ValueError(f"{units.show(value)} is not a count: write e.g. 2e8 or 200M")
        return float(m[1]) * {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}[m[2]]
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise ValueError("is too large") from None
    return value


class Run(_Model):
    """Run settings."""

    duration: Time = _field("1s", description="Simulated time per replication.")
    warmup: Time = _field(
        "100ms",
        description="Requests submitted before this are not counted; counters and CPU "
        "accounts restart here.",
    )
    warmup_method: Literal["fixed", "mser5"] = _field(
        "fixed",
        description="fixed: the warm-up above. mser5: also drop the transient that MSER-5 "
        "finds in each child's latency series (White 1997), whichever is later. MSER-5 is "
        "reported either way.",
    )
    ci_warning: float = _field(
        0.1,
        gt=0,
        description="Warn when a 95 % CI half-width exceeds this fraction of its estimate.",
    )
    seed: int = _field(1, ge=0, le=2**63 - 1, description="Root seed (recorded).")
    replications: int = _field(1, ge=1, le=1000)
    trace_interval: Time | None = _field(
        None,
        ge=0,
        description="Ring and device-queue occupancy is recorded as its mean over each "
        "interval of this length (occupancy.csv); default: duration / 200; 0: off.",
    )
    request_budget: Annotated[float, BeforeValidator(_count)] = _field(
        DEFAULT_REQUEST_BUDGET,
        gt=0,
        allow_inf_nan=False,
        description="A run that would simulate more requests than this, over all its "
        "replications, is refused before it starts. Estimated: duration x rate for "
        "open-loop streams; for closed-loop ones outstanding / (think time + the guest's "
        "costs + the device's time), at most what the child's vCPUs and the device carry; "
        "CPU-load bursts, scheduler events (time slices, ticks, accounting periods) and "
        "each vCPU and stream set up count as one request each. Default 1e7: a run holds "
        "about 1.3 KB per request until it is written (13 GB), and simulates ~30k "
        "requests/s (5-6 minutes). hvsim run --budget sets it.",
    )


FaultKind = Literal[
    "parent_crash",
    "parent_hang",
    "vsp_slowdown",
    "vf_revoke",
    "device_reset",
    "lp_offline",
    "child_crash",
]
FAULT_KINDS: tuple[str, ...] = typing.get_args(FaultKind)
PARENT_FAULTS = ("parent_crash", "parent_hang", "vsp_slowdown")
"""Fault kinds whose target is the parent partition (``target: parent``, the default)."""


class Fault(_Model):
    """One scheduled fault (semantics in :mod:`sim.faults`)."""

    kind: FaultKind = _field(
        description="parent_crash: the parent stops and loses what it held, then restarts. "
        "parent_hang: the parent's vCPUs stop, nothing lost. vsp_slowdown: the parent's "
        "VSP and driver costs x factor. vf_revoke: a direct child's I/O falls back to "
        "routed (host servicing, live migration). device_reset: a device fails what it "
        "holds and accepts nothing. lp_offline: an LP takes no work. child_crash: a child "
        "stops; its requests in flight fail.",
    )
    at: Time = _field(ge=0.0, description="When it starts, from the start of the run.")
    duration: Time | None = _field(
        None,
        gt=0.0,
        description="How long it lasts; every kind but child_crash needs it (a crashed "
        "child without one stays down to the end of the run).",
    )
    target: str | int | None = _field(
        None,
        description="What it hits: 'parent' (parent_crash, parent_hang, vsp_slowdown; the "
        "default), a child (vf_revoke: a direct one; child_crash), a device "
        "(device_reset), an LP index (lp_offline).",
    )
    factor: float | None = _field(
        None,
        gt=0.0,
        allow_inf_nan=False,
        description="vsp_slowdown: what the VSP's and the parent driver's costs are "
        "multiplied by for the duration.",
    )

    @pydantic.model_validator(mode="before")
    @classmethod
    def _parent_by_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kind") in PARENT_FAULTS:
            return {**data, "target": data.get("target", "parent")}
        return data

    @pydantic.model_validator(mode="after")
    def _fields_of_kind(self) -> Fault:
        kind = self.kind
        if self.duration is None and kind != "child_crash":
            raise ValueError(f"a {kind} needs a 'duration'")
        if kind == "vsp_slowdown" and self.factor is None:
            raise ValueError("a vsp_slowdown needs a 'factor' (its costs are multiplied by it)")
        if kind != "vsp_slowdown" and self.factor is not None:
            hint = " (a hang stops the parent's vCPUs; vsp_slowdown slows them)"
            raise ValueError(
                f"'factor' is for vsp_slowdown only{hint if kind == 'parent_hang' else ''}"
            )
        target = self.target
        if kind in PARENT_FAULTS:
            if target != "parent":
                raise ValueError(f"the target of a {kind} is 'parent'")
        elif kind == "lp_offline":
            if not isinstance(target, int) or target < 0:
                raise ValueError("the target of an lp_offline is an LP index (0, 1, ...)")
        elif not isinstance(target, str) or not target:
            what = "a device" if kind == "device_reset" else "a child"
            raise ValueError(f"a {kind} needs a 'target': {what}")
        return self

    @property
    def end(self) -> float:
        """When it ends (``inf``: a child crash without duration)."""
        return self.at + self.duration if self.duration is not None else math.inf


class Scenario(_Model):
    """A whole scenario file."""

    name: Name
    description: str = ""
    preset: Name | None = _field(
        None,
        description="A platform profile under the scenario's own values (hvsim presets "
        "lists them): preset values < the scenario's < --set. See sim/presets.",
    )
    host: Host = _field({})
    parent: Parent = _field({})
    devices: list[Device] = _field([])
    children: list[Child] = _field(min_length=1)
    run: Run = _field({})
    faults: list[Fault] = _field(
        [], description="Faults scheduled in the run (see sim.faults); none by default."
    )
    sources: dict[str, str] = _field(
        {},
        description="Written by hvsim: the source of each preset value the scenario holds "
        "(field path → source). Recomputed from the preset whenever a scenario is loaded; "
        "what a file gives here is not read.",
    )

    def device(self, name: str) -> Nic | Nvme:
        """The device called ``name``."""
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(name)

    def instances(self) -> Iterator[tuple[str, Child]]:
        """Each child partition as (instance name, spec), ``count`` expanded."""
        for c in self.children:
            if c.count == 1:
                yield c.name, c
            else:
                for i in range(1, c.count + 1):
                    yield f"{c.name}-{i}", c

    def to_dict(self) -> dict[str, Any]:
        """The resolved scenario as plain data with unit strings (loads back as is)."""
        return self.model_dump(mode="json")

    def replace(self, overrides: Mapping[str, Any], source: str = "--set") -> Scenario:
        """A copy with ``{field.path: value}`` overrides applied and validated again."""
        raw = self.to_dict()
        done = [apply_override(raw, path, value, source) for path, value in overrides.items()]
        return from_dict(raw, source=source, overridden=done)


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists a scenario file may have (scenarios need ~8)."""
MAX_ALIASED = 100_000
"""Most values aliases (``*name``) may repeat: a few aliases nested in each other can
stand for billions of values, which anything that walks the data would go through."""
MAX_INT_BITS = 14_000
"""Largest integer a scenario file may write (about 4,200 digits: below Python's limit on
converting integers to text, so every value can be shown in a message)."""


class _Loader(yaml.SafeLoader):
    """Safe loader that refuses duplicate keys and remembers where each value is."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            value = super().construct_yaml_int(node)
        except ValueError:  # more digits than int() converts
            value = None
        if value is None or abs(value).bit_length() > MAX_INT_BITS:
            raise yaml.constructor.ConstructorError(
                None, None, "integer with too many digits", node.start_mark
            )
        return int(value)


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def compose(text: str, file: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """Parse YAML safely: plain data, no duplicate keys; also the line of every value."""
    loader = None
    try:
        loader = _Loader(text)  # checks every character: a NUL or control byte fails here
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise ScenarioError(file, "", f"YAML: nested more than {MAX_DEPTH} levels") from None
        if node is None:
            raise ScenarioError(file, "", "file is empty")
        lines: dict[tuple[Any, ...], int] = {}
        duplicates: list[tuple[tuple[Any, ...], int]] = []
        _index(node, (), lines, duplicates, set())
        deep = max(lines, key=len)
        if len(deep) > MAX_DEPTH:
            raise ScenarioError(
                file, "", f"YAML: nested more than {MAX_DEPTH} levels", lines[deep[: MAX_DEPTH + 1]]
            )
        nodes: dict[int, tuple[int, int]] = {}
        expanded = _expanded(node, nodes, 0)  # and no deeper than MAX_DEPTH through aliases
        if expanded is None:
            raise ScenarioError(file, "", f"YAML: nested more than {MAX_DEPTH} levels")
        if expanded - len(nodes) > MAX_ALIASED:
            raise ScenarioError(
                file, "", f"YAML: aliases repeat more than {MAX_ALIASED} values (*name)"
            )
        data = loader.construct_document(node)
        if duplicates:
            dup_loc, dup_line = duplicates[0]
            raise ScenarioError(file, _fmt_path(dup_loc, data), "duplicate key", dup_line)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = f"YAML: {exc.problem or 'invalid YAML'}"
        if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in problem:
            tag = problem.split("tag", 1)[1].strip().strip("'")
            tag = tag.replace("tag:yaml.org,2002:", "!!")
            problem = f"YAML tag '{tag}' is not allowed (scenario files are plain data)"
        raise ScenarioError(file, "", problem, line) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else None
        char = exc.character  # the code point, for text
        what = f"character U+{char:04X}" if isinstance(char, int) else "this character"
        raise ScenarioError(file, "", f"YAML: {what} is not allowed in a text file", line) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(file, "", f"YAML: {exc}".splitlines()[0]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, lines


def _index(
    node: yaml.Node,
    path: tuple[Any, ...],
    lines: dict[tuple[Any, ...], int],
    duplicates: list[tuple[tuple[Any, ...], int]],
    seen: set[int],
) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if id(node) in seen or len(path) > MAX_DEPTH:  # an alias: already indexed, never walked twice
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: set[Any] = set()
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else id(k)
            if key in keys:
                duplicates.append(((*path, key), k.start_mark.line + 1))
            keys.add(key)
            lines[(*path, key)] = k.start_mark.line + 1
            _index(v, (*path, key), lines, duplicates, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _index(v, (*path, i), lines, duplicates, seen)


def _expanded(node: yaml.Node, seen: dict[int, tuple[int, int]], depth: int) -> int | None:
    """How many values ``node`` stands for with every alias expanded; None if that nests
    deeper than :data:`MAX_DEPTH`. ``seen``: (values, height) of each node, walked once."""
    if depth > MAX_DEPTH:
        return None
    if id(node) not in seen:
        inner: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            inner = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            inner = list(node.value)
        size, height = 1, 0
        for n in inner:
            got = _expanded(n, seen, depth + 1)
            if got is None:
                return None
            size, height = size + got, max(height, 1 + seen[id(n)][1])
        seen[id(node)] = (size, height)
    size, height = seen[id(node)]
    return size if depth + height <= MAX_DEPTH else None


def load(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Scenario:
    """Read, check and resolve a scenario file; :class:`ScenarioError` if anything is wrong."""
    p = Path(path)
    file = str(path)
    try:
        if p.is_dir():
            raise ScenarioError(file, "", "is a directory, not a scenario file")
        if p.stat().st_size > MAX_FILE_BYTES:
            raise ScenarioError(file, "", f"file larger than {MAX_FILE_BYTES // 2**20} MiB")
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(file, "", "no such file") from None
    except UnicodeDecodeError:
        raise ScenarioError(file, "", "not a UTF-8 text file") from None
    except OSError as exc:
        raise ScenarioError(file, "", exc.strerror or "cannot read file") from None
    return loads(text, file=file, overrides=overrides, default_name=p.stem)


def loads(
    text: str,
    file: str = "<string>",
    overrides: Mapping[str, Any] | None = None,
    default_name: str | None = None,
) -> Scenario:
    """Like :func:`load`, from the text of a scenario."""
    if not text.strip():
        raise ScenarioError(file, "", "file is empty")
    data, lines = compose(text, file)
    if not isinstance(data, dict):
        raise ScenarioError(file, "", "a scenario must be a mapping (key: value) at the top", 1)
    data.pop("sweep", None)  # a sweep section is for hvsim sweep (sim.sweep); run ignores it
    if default_name and "name" not in data:
        data["name"] = re.sub(r"[^A-Za-z0-9_.-]", "-", default_name)[:64] or "scenario"
    return from_dict(data, source=file, lines=lines, overrides=overrides)


def from_dict(
    data: Any,
    source: str = "<dict>",
    lines: Mapping[tuple[Any, ...], int] | None = None,
    overridden: Sequence[tuple[Any, ...]] = (),
    overrides: Mapping[str, Any] | None = None,
) -> Scenario:
    """Validate plain data (as read from YAML) into a :class:`Scenario`.

    The ``preset`` that ``data`` names goes under it (:mod:`sim.presets`), then
    ``overrides`` (``{field.path: value}`` from ``--set``; a ``preset`` among them is
    chosen before the preset goes in) are applied; ``data`` itself is not changed. The
    scenario's ``sources`` are recomputed from the preset. ``lines`` maps locations to the
    source's line numbers; an error inside one of the ``overridden`` locations or an
    override is blamed on ``--set``, one inside a value the preset filled in on the preset
    file, any other on ``source``."""
    lines = lines or {}
    if not isinstance(data, dict):
        raise ScenarioError(source, "", "a scenario must be a mapping (key: value)")
    overrides = dict(overrides or {})
    overridden = list(overridden)
    if "preset" in overrides:
        data = {**data, "preset": overrides.pop("preset")}
        overridden.append(("preset",))
    preset = None
    origins: dict[tuple[Any, ...], int | None] = {}
    if data.get("preset") is not None:
        from sim import presets

        by_set = ("preset",) in overridden
        name = data["preset"]
        if isinstance(name, str):
            named = bool(_NAME.fullmatch(name))
        else:  # 5 is shown as it is, a list or a number of 400 digits is not
            named = isinstance(name, int | float) and len(units.show(name)) < 40
        if not named:
            shown = units.show(name)
            message = f"a preset is named by 1-64 letters, digits, '_', '.' or '-' (got {shown})"
            if by_set:
                raise ScenarioError("--set", "preset", message)
            raise ScenarioError(source, "preset", message, lines.get(("preset",)))
        preset = presets.load(
            data["preset"],
            "--set" if by_set else source,
            None if by_set else lines.get(("preset",)),
        )
        data, lines, origins = preset.merge(data, lines)
    elif overrides:
        data = copy.deepcopy(data)
    overridden += [apply_override(data, k, v, "--set") for k, v in overrides.items()]

    def error(loc: tuple[Any, ...], message: str) -> ScenarioError:
        if any(loc[: len(o)] == o for o in overridden):
            return ScenarioError("--set", _fmt_path(loc, data), message)
        from_preset = [o for o in origins if loc[: len(o)] == o]
        if preset is not None and from_preset:
            line = origins[max(from_preset, key=len)]
            return ScenarioError(preset.file, _fmt_path(loc, data), message, line)
        return ScenarioError(source, _fmt_path(loc, data), message, _line(lines, loc))

    clock = _clock_ghz(data)
    try:
        scn = Scenario.model_validate(data, context={"clock_ghz": clock})
    except pydantic.ValidationError as exc:
        raise error(*_translate(exc, data, lines)) from None
    problem = _cross_check(scn)
    if problem:
        raise error(*problem)
    sources = preset.sources(scn) if preset is not None else {}
    return scn if sources == scn.sources else scn.model_copy(update={"sources": sources})


def _clock_ghz(data: Mapping[str, Any]) -> float:
    host = data.get("host")
    raw = host.get("clock") if isinstance(host, Mapping) else None
    if raw is None:
        return DEFAULT_CLOCK_GHZ
    try:
        hz = units.parse_frequency(raw)
    except units.UnitError:
        return DEFAULT_CLOCK_GHZ  # the schema reports the bad clock itself
    return hz / 1e9 if hz > 0 else DEFAULT_CLOCK_GHZ


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


def _cross_check(scn: Scenario) -> tuple[tuple[Any, ...], str] | None:
    """Rules across fields; the first violation as (location, message)."""
    if scn.run.warmup >= scn.run.duration:
        return ("run", "warmup"), "warm-up must be shorter than the duration"
    interval = scn.run.trace_interval
    if interval is not None and interval > 0 and scn.run.duration / interval > 100_000:
        return ("run", "trace_interval"), (
            f"{scn.run.duration / interval:.3g} samples per replication; at most 100000"
        )
    if scn.host.clock <= 0:
        return ("host", "clock"), "clock must be positive"
    problem = _check_size(scn)
    if problem:
        return problem
    names: dict[str, int] = {}
    for i, d in enumerate(scn.devices):
        if d.name in names:
            return ("devices", i, "name"), f"device name '{d.name}' used twice"
        names[d.name] = i
        problem = _check_device(i, d)
        if problem:
            return problem
    problem = _check_placement(scn)
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
        if not c.streams and c.cpu_load is None:
            return ("children", i, "streams"), "a child needs I/O 'streams' or a 'cpu_load'"
        if c.device is None:
            if c.streams:
                return ("children", i, "device"), "a child with streams needs a 'device'"
            if c.io_path == "direct" or c.vf is not None:
                return ("children", i, "device"), "io_path: direct needs a 'device'"
            continue
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
        for j, s in enumerate(c.streams):
            for op in s.op:
                if op not in dev.ops:
                    return (
                        ("children", i, "streams", j, "op"),
                        f"{_quote(op)} is not an operation of {dev.type} device '{dev.name}' "
                        f"(use {', '.join(dev.ops)})",
                    )
            if "receive" in s.op and s.closed:
                return (
                    ("children", i, "streams", j, "op"),
                    "'receive' needs an open-loop stream (rate: messages arriving from the "
                    "wire), not outstanding",
                )
            if "receive" in s.op and c.io_path == "emulated":
                return (
                    ("children", i, "streams", j, "op"),
                    "'receive' is not modelled on the emulated path in this version",
                )
            if s.vcpu is not None and s.vcpu >= c.vcpus:
                return (
                    "children",
                    i,
                    "streams",
                    j,
                    "vcpu",
                ), f"vCPU {s.vcpu} does not exist ({c.vcpus} vCPUs)"
    # names after count expansion (web ×3 → web-1 … web-3) must be unique too
    seen: set[str] = set()
    for i, c in enumerate(scn.children):
        for inst in [c.name] if c.count == 1 else [f"{c.name}-{k}" for k in range(1, c.count + 1)]:
            if inst in seen:
                return ("children", i, "name"), f"child name '{inst}' used twice"
            seen.add(inst)
    return _check_faults(scn) or _check_budget(scn)


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
        elif f.kind == "device_reset":
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
MAX_TRACE_VALUES = 10_000_000
MIN_MTU = 68  # the smallest IPv4 MTU (RFC 791), Linux ETH_MIN_MTU


def _check_size(scn: Scenario) -> tuple[tuple[Any, ...], str] | None:
    """How many partitions, vCPUs and streams the host holds (each is built and tracked)."""
    partitions, vcpus, streams = 0, scn.parent.vcpus, 0
    for i, c in enumerate(scn.children):
        partitions += c.count
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


def _check_device(i: int, d: Nic | Nvme) -> tuple[tuple[Any, ...], str] | None:
    """Rates a device model divides by, and the frame size it cuts requests into."""
    if isinstance(d, Nic):
        if d.line_rate < 1:
            return ("devices", i, "line_rate"), "must be at least 1bps"
        if d.mtu < MIN_MTU:
            return ("devices", i, "mtu"), f"must be at least {MIN_MTU}B, the smallest IPv4 MTU"
    elif d.bandwidth < 1:
        return ("devices", i, "bandwidth"), "must be at least 1bps"
    return None


def _device_time(s: Stream, d: Nic | Nvme, size: float) -> tuple[float, float]:
    """(µs one request of ``s`` of ``size`` bytes spends in ``d`` unqueued, requests/s
    ``d`` carries at most), for the stream's op mix."""
    if isinstance(d, Nic):
        wire = (size + math.ceil(size / d.mtu) * d.frame_overhead) * 8e6 / d.line_rate
        return d.latency.mean + wire, 1e6 / wire if wire > 0 else math.inf
    top = max(s.op.values())
    share = {op: w / top for op, w in s.op.items()}  # weights of 1e308 would add up to inf
    media = sum(w * (d.read if op == "read" else d.write).mean for op, w in share.items())
    service = media / sum(share.values()) + size * 8e6 * d.channels / d.bandwidth
    carried = d.channels * 1e6 / service if service > 0 else math.inf
    return service, carried if d.max_iops is None else min(carried, d.max_iops)


def _channels(scn: Scenario) -> int:
    """VMBus channels the routed children open (direct ones past the VFs fall back)."""
    vmbus = scn.parent.vmbus
    free = {d.name: d.vfs for d in scn.devices}
    total = 0
    for c in scn.children:
        if c.device is None or c.io_path not in ("routed", "direct"):
            continue
        routed = c.count
        if c.io_path == "direct":
            taken = min(c.count, free[c.device])
            free[c.device] -= taken
            routed -= taken
        per_child = 1 + (c.vcpus - 1) // vmbus.vcpus_per_channel
        total += routed * max(1, min(vmbus.max_channels, per_child))
    return total


def work_estimate(scn: Scenario) -> tuple[dict[str, float], tuple[tuple[Any, ...], str] | None]:
    """What one replication of ``scn`` simulates, about: ``({kind: count}, problem)``.

    Requests: an open-loop stream issues duration × rate; a closed-loop one at most
    outstanding / (think time + the guest's costs + the device's time) per µs (Little's
    law with the least time a request keeps its slot: queueing, the parent, the IOMMU and
    interrupts only add), at most what the child's vCPUs (the guest's costs) and the
    device carry. CPU-load bursts: duration / (busy + idle) per loaded vCPU. Scheduler
    events: time slices, credit ticks and accounting periods, and one per vCPU and per
    stream set up. ``problem`` names a loop that would not let simulated time advance."""
    run, host = scn.run, scn.host
    duration = run.duration
    requests = bursts = 0.0
    closed: dict[str, float] = {}
    carried: dict[str, float] = {}
    vcpus, streams = scn.parent.vcpus, 0
    for i, c in enumerate(scn.children):
        vcpus += c.count * c.vcpus
        streams += c.count * len(c.streams)
        guest_cpu = c.guest.submit_cost.mean + c.guest.complete_cost.mean
        for j, s in enumerate(c.streams):
            if c.device is None:
                continue
            dev = scn.device(c.device)
            largest = s.size.largest if math.isfinite(s.size.largest) else s.size.mean
            if _device_time(s, dev, largest)[0] > MAX_TIME_US:
                return {}, (
                    ("children", i, "streams", j, "size"),
                    f"one request would keep device '{dev.name}' busy {_LONGEST}",
                )
            if s.rate is not None:
                requests += c.count * s.rate * duration / 1e6
                continue
            if s.outstanding is None:
                continue
            in_device, most = _device_time(s, dev, s.size.mean)
            cycle = s.think.mean + guest_cpu + in_device
            if cycle <= 0:
                return {}, (
                    ("children", i, "streams", j),
                    "a closed-loop request here takes no time (no think time, guest cost or "
                    "device time): simulated time would not advance",
                )
            per_s = min(s.outstanding * 1e6 / cycle, most)
            if guest_cpu > 0:
                per_s = min(per_s, c.vcpus * 1e6 / guest_cpu)
            closed[dev.name] = closed.get(dev.name, 0.0) + c.count * per_s
            carried[dev.name] = max(carried.get(dev.name, 0.0), most)
        load = c.cpu_load
        if load is not None and load.busy is not None:
            cycle = load.busy.mean + load.idle.mean
            if cycle <= 0:
                return {}, (
                    ("children", i, "cpu_load"),
                    "busy and idle are both 0: simulated time would not advance",
                )
            loaded = len(set(load.vcpus)) if load.vcpus else c.vcpus
            bursts += c.count * loaded * duration / cycle
    requests += sum(min(x, carried[d]) for d, x in closed.items()) * duration / 1e6
    sch = host.scheduler
    events = vcpus + streams + min(host.cores, vcpus) * duration / sch.time_slice
    if sch.policy == "credit":
        events += host.cores * duration / sch.tick + vcpus * duration / sch.accounting_period
    parts = {"requests": requests, "CPU-load bursts": bursts, "scheduler events": events}
    return parts, None


def _sci(x: float) -> str:
    """3.2e10, 1e7: a count as a message shows it."""
    if not math.isfinite(x):
        return "1e308"
    if x < 1e4:
        return f"{x:.0f}"
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa.removesuffix('.0')}e{int(exponent)}"


def budget_problem(scn: Scenario, runs: int = 1, what: str = "run") -> str | None:
    """The message if ``runs`` runs of ``scn`` (its replications each) would simulate more
    than ``run.request_budget`` (see :func:`work_estimate`), else None."""
    parts, problem = work_estimate(scn)
    return problem[1] if problem else _over_budget(scn, parts, runs, what)


def _over_budget(scn: Scenario, parts: Mapping[str, float], runs: int, what: str) -> str | None:
    per_replication = sum(parts.values())
    total = per_replication * scn.run.replications * runs
    budget = scn.run.request_budget
    if total <= budget:
        return None
    named = " and ".join(k for k, v in parts.items() if not v < 0.1 * per_replication)
    about = "about" if math.isfinite(total) else "more than"
    return (
        f"this {what} would simulate {about} {_sci(total)} {named} (budget {_sci(budget)}; "
        "raise it with --budget or run.request_budget)"
    )


def _check_budget(scn: Scenario) -> tuple[tuple[Any, ...], str] | None:
    """The run's estimated work against its budget, and the size of its occupancy trace."""
    parts, problem = work_estimate(scn)
    if problem:
        return problem
    message = _over_budget(scn, parts, 1, "run")
    if message:
        return ("run", "duration"), message
    run = scn.run
    interval = run.duration / 200 if run.trace_interval is None else run.trace_interval
    if interval > 0:
        levels = 2 * len(scn.devices) + 2 * _channels(scn)
        values = math.floor(run.duration / interval) * levels * run.replications
        if values > MAX_TRACE_VALUES:
            return ("run", "trace_interval"), (
                f"the occupancy trace would hold about {_sci(values)} values (intervals × "
                f"rings and device queues × replications); at most {_sci(MAX_TRACE_VALUES)}: "
                "give a longer trace_interval, or 0 for none"
            )
    return None


# ---------------------------------------------------------------------------------------
# Error translation
# ---------------------------------------------------------------------------------------
def _line(lines: Mapping[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _fmt_path(loc: tuple[Any, ...], data: Any) -> str:
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and part < len(node) else None
            name = item.get("name") if isinstance(item, dict) else None
            valid = isinstance(name, str) and _NAME.fullmatch(name)  # not a line of junk
            out += f"[{name}]" if valid else f"[{part}]"
            node = item
        else:
            out += f".{_key(part)}" if out else _key(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


def _quote(text: str) -> str:
    """'text' as a message quotes what the user wrote (cut short, escaped if not plain)."""
    return f"'{text}'" if text.isprintable() and len(text) <= 40 else units.show(text)


def _key(key: Any) -> str:
    """A mapping key as a message shows it: as written if it is a plain word, else quoted
    and cut short (a key may be any text: control characters, a line of 1 MB)."""
    if isinstance(key, str) and re.fullmatch(r"[A-Za-z0-9_.<-]{1,64}", key):
        return key
    return units.show(key)


def _raw_loc(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """Drop pydantic's union tags from an error location, keeping only real keys."""
    out: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part not in node:
            if node.get("type") == part:
                continue  # discriminator tag
            out.append(part)
            node = None
            continue
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(out)


def _model_at(loc: tuple[Any, ...], data: Any) -> type[BaseModel] | None:
    """The schema class that owns the last key of ``loc`` (for 'did you mean')."""
    model: Any = Scenario
    node = data
    for part in loc[:-1]:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(part)
        if field is None:
            return None
        node = node.get(part) if isinstance(node, dict) else None
        model = _unwrap(field.annotation, node)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model
    return None


def _unwrap(annotation: Any, node: Any) -> Any:
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap(args[0], node)
    if origin is list:
        item = node[0] if isinstance(node, list) and node else None
        return _unwrap(args[0], item)
    if args:  # a union: pick the member whose 'type' tag matches
        for a in args:
            if isinstance(a, type) and issubclass(a, BaseModel):
                tag = a.model_fields.get("type")
                if tag is None or (
                    isinstance(node, dict) and node.get("type") in typing.get_args(tag.annotation)
                ):
                    return a
        return None
    return annotation


def _translate(
    exc: pydantic.ValidationError, data: Any, lines: Mapping[tuple[Any, ...], int]
) -> tuple[tuple[Any, ...], str]:
    """The first error in the file, as (location, message in plain words)."""
    errors = exc.errors(include_url=False)

    def key(e: Any) -> int:
        return _line(lines, _raw_loc(tuple(e["loc"]), data)) or 0

    err = min(errors, key=key)  # the first problem in the file
    loc = _raw_loc(tuple(err["loc"]), data)
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        model = _model_at(loc, data)
        name = _key(loc[-1])
        msg = f"unknown key '{name}'" if name == loc[-1] else f"unknown key {name}"
        if model is not None:
            allowed = list(model.model_fields)
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            msg += f"; did you mean '{close[0]}'?" if close else f" (allowed: {', '.join(allowed)})"
    elif kind == "missing":
        msg = "required key is missing"
    elif kind == "string_pattern_mismatch":
        msg = "a name is 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
    elif kind == "too_short":
        n = (err.get("ctx") or {}).get("min_length", 1)
        msg = f"needs at least {n} item{'s' if n != 1 else ''}"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        msg = "'type' must be one of: nic, nvme"
        loc = (*loc, "type")
    elif kind == "literal_error":
        msg = msg.replace("Input should be", "must be")
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    elif msg.startswith("Input should be"):
        msg = "must be" + msg[len("Input should be") :]
    if (
        kind not in ("missing", "extra_forbidden")
        and "input" in err
        and not isinstance(err["input"], dict | list)
    ):
        shown = units.show(err["input"], 41)
        if len(shown) <= 40 and shown not in msg:
            msg += f" (got {shown})"
    return loc, msg


# ---------------------------------------------------------------------------------------
# Overrides: field.path=value
# ---------------------------------------------------------------------------------------
_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[([^\]]+)\]")


def parse_assignment(text: str) -> tuple[str, Any]:
    """Split ``field.path=value``; the value is read as a YAML scalar or flow collection."""
    if "=" not in text:
        raise ScenarioError("--set", "", f"{_quote(text)} is not of the form field.path=value")
    path, _, value = text.partition("=")
    try:  # the loader of scenario files: the same tags, integers and depth are refused
        parsed = yaml.load(value, Loader=_Loader) if value.strip() else ""
    except (yaml.YAMLError, RecursionError):
        shown = units.show(value)
        raise ScenarioError("--set", path.strip(), f"cannot read value {shown}") from None
    return path.strip(), parsed


def apply_override(
    data: dict[str, Any], path: str, value: Any, source: str
) -> tuple[str | int, ...]:
    """Set ``path`` (e.g. ``children[web].streams[0].rate``) in raw scenario data; returns
    the location it resolved to (list items by index)."""
    tokens: list[str | int] = []
    pos = 0
    for m in _TOKEN.finditer(path):
        if m.start() != pos:
            break
        pos = m.end()
        if m.group(1) is not None:
            tokens.append(m.group(1))
        else:
            sel = m.group(2).strip()
            # ASCII digits only: int() refuses '²', which isdigit() accepts
            number = sel.isascii() and sel.isdigit()
            tokens.append((int(sel) if len(sel) < 4000 else -1) if number else f"name={sel}")
    if pos != len(path) or not tokens or not isinstance(tokens[0], str) or -1 in tokens:
        raise ScenarioError(source, path, "not a field path such as children[web].vcpus")
    node: Any = data
    loc: list[str | int] = []
    for i, tok in enumerate(tokens):
        last = i == len(tokens) - 1
        if isinstance(tok, str) and not tok.startswith("name="):
            if not isinstance(node, dict):
                raise ScenarioError(source, path, f"'{tok}' is not inside a mapping")
            loc.append(tok)
            if last:
                node[tok] = value
            else:
                nxt = tokens[i + 1]
                is_key = isinstance(nxt, str) and not nxt.startswith("name=")
                node = node.setdefault(tok, {} if is_key else [])
            continue
        if not isinstance(node, list):
            raise ScenarioError(source, path, "an index [..] must follow a list")
        if isinstance(tok, int):
            if tok >= len(node):
                raise ScenarioError(
                    source, path, f"index {units.show(tok)} is past the end ({len(node)} items)"
                )
            idx = tok
        else:
            name = tok[5:]
            found = [k for k, v in enumerate(node) if isinstance(v, dict) and v.get("name") == name]
            if not found:
                raise ScenarioError(source, path, f"no item named {_quote(name)}")
            idx = found[0]
        loc.append(idx)
        if last:
            node[idx] = value
        else:
            node = node[idx]
    return tuple(loc)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of scenario files."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hvsim scenario"
    return schema
