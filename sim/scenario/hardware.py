"""The hardware and the platform of a scenario: host (LPs, clock, exit costs, scheduler,
IOMMU, CPU virtualization, the hypervisor's own I/O stack), the parent partition (VSP,
driver, VMBus) and the devices (NIC, NVMe, rotating disk).

Defaults come from published figures where one exists (the source is in each field's
description); the others are marked *assumed* and are meant to be swept, not trusted.
"""

from __future__ import annotations

import hashlib
import math
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BeforeValidator, Field

from sim.scenario import units
from sim.scenario.fields import (
    CAP_HELP,
    MEMORY_RATE,
    PIN_HELP,
    WEIGHT_HELP,
    Bitrate,
    Bound,
    Cap,
    Cost,
    CostDist,
    Frequency,
    Model,
    Name,
    Rate,
    Size,
    Time,
    TimeDist,
    Weight,
    field,
)
from sim.scenario.workload import CpuLoad, Stream

RING_ENTRY = Bound(
    units.parse_size,
    None,
    "64KiB",
    "a VMBus ring entry's header and page entries are tens of bytes (Linux "
    "vmbus_channel_packet_page_buffer)",
)


# ---------------------------------------------------------------------------------------
# Host
# ---------------------------------------------------------------------------------------
EDITIONS: dict[str, int | None] = {
    "windows-server-2008-standard": 1,
    "windows-server-2008-enterprise": 4,
    "windows-server-2008-datacenter": None,
}
"""Named editions and the child partitions each licenses (None: no limit); Windows Server
2008 virtual-instance rights (Microsoft licensing brief, January 2008, read)."""


class Costs(Model):
    """CPU costs of hypervisor transitions, charged on the LP of the vCPU that pays them."""

    hypercall: Cost = field(
        "2600cycles",
        description="Signalling hypercall (guest → parent or parent → guest notification), "
        "an exit handled in the hypervisor. Dall et al., ATC 2017, Table 2 (quoted).",
    )
    interrupt_exit: Cost = field(
        "2600cycles",
        description="External-interrupt exit and injection when interrupts are not posted. "
        "Dall et al., ATC 2017, Table 2 (quoted).",
    )
    eoi_exit: Cost = field(
        "1550cycles",
        description="EOI exit when interrupts are not posted. Dall et al., ISCA 2016, "
        "Table II (quoted).",
    )
    vcpu_dispatch: Cost = field(
        "1600cycles",
        description="World switch when a blocked vCPU is dispatched onto an LP: one VM "
        "exit/entry round trip. SplitX, Landau et al., WIOV 2011 (read: 1,300-2,000 cycles).",
    )
    doorbell_exit: Cost = field(
        "2600cycles",
        description="io_path hypervisor: the paravirtual driver's doorbell write (one per "
        "request), an exit handled in the hypervisor's own I/O stack. Dall et al., ATC "
        "2017, Table 2 (quoted: ≈2,600 cycles for an exit handled in the hypervisor).",
    )
    device_model_exit: Cost = field(
        "6700cycles",
        description="io_path emulated: one access of the guest driver to an emulated "
        "device register, an exit to a user-space device model and back, charged on the "
        "child's vCPU (the device model's own CPU is emulated.access_cost). Dall et al., "
        "ATC 2017, Table 2 (quoted).",
    )
    timer_arm_exit: Cost = field(
        "2600cycles",
        description="A guest re-arming its LAPIC timer (a write of the TSC-deadline MSR), "
        "one per tick of a child with a timer (child.timer): an exit handled in the "
        "hypervisor. Assumed: the cost Dall et al., ATC 2017, Table 2 give for an exit "
        "handled in the hypervisor (quoted: hypercall ≈2,600 cycles).",
    )
    halt_exit: Cost = field(
        "0cycles",
        description="A vCPU going idle (HLT or the idle hypercall) beyond the world switch "
        "of its next dispatch (vcpu_dispatch): the hypervisor's block path, charged as "
        "'halt' each time a vCPU of a partition blocks. Default 0: not modelled apart, the "
        "exit/entry round trip of vcpu_dispatch stands for it (results as before).",
    )


class Housekeeping(Model):
    """Per-VM work of the virtualization stack that does not depend on I/O (the VM's
    worker process in the parent: Hyper-V vmwp.exe, Xen's qemu-dm or xenstored watches,
    KVM's QEMU main loop): every ``interval``, ``cost`` µs on the parent vCPU that serves
    the child, charged as ``housekeeping`` (see :mod:`sim.model.periodic`)."""

    interval: Time = field("10ms", gt=0.0, description="Time between two rounds per VM.")
    cost: CostDist = field(
        "0us",
        description="Parent CPU per round per VM. Default 0: none modelled (results as "
        "before). Assumed where set: no per-operation measurement published.",
    )


class CpuVirtualization(Model):
    """How the hypervisor virtualizes the guest's CPU and memory, and what each guest
    kernel operation that needs it costs beyond native (see :mod:`sim.model.partitions`).
    Each virtualized child pays, per request, ``guest.syscalls_per_request`` × ``syscall``
    + ``guest.privileged_ops_per_request`` × ``privileged_op`` +
    ``guest.page_table_updates_per_request`` × ``page_table_update`` on its completing
    vCPU, as ``exit`` time (mode hardware: the operations that exit) or ``hypervisor``
    time (binary_translation: the translated code's callouts into the monitor;
    paravirtual: hypercalls); a bare-metal child pays nothing. The defaults describe
    hardware with nested paging (EPT/NPT) and APIC virtualization, where none of these
    operations leaves the guest: every cost 0."""

    mode: Literal["hardware", "binary_translation", "paravirtual"] = field(
        "hardware",
        description="hardware: VT-x/AMD-V, guest code runs directly and sensitive "
        "operations exit. binary_translation: the monitor translates guest kernel code "
        "(VMware's software VMM; Adams & Agesen, ASPLOS 2006): no exits, sensitive "
        "operations become callouts, and each vCPU translates the kernel's I/O path once "
        "(translation_warmup). paravirtual: a modified guest kernel calls the hypervisor "
        "instead (Xen PV; Barham et al., SOSP 2003): page-table updates are hypercalls.",
    )
    paging: Literal["nested", "shadow", "direct"] = field(
        "nested",
        description="nested: EPT/NPT, guest page-table writes stay in the guest "
        "(Bhargava et al., ASPLOS 2008). shadow: the monitor keeps shadow page tables and "
        "traces the guest's page-table writes (page_table_update each); "
        "binary_translation needs it. direct: paravirtual only, the guest's page tables "
        "are the hardware's and each update is a hypercall the hypervisor validates "
        "(page_table_update each).",
    )
    syscall: Cost = field(
        "0cycles",
        description="Extra CPU per guest system call. 0 under hardware virtualization "
        "(system calls do not exit; Adams & Agesen, ASPLOS 2006); set for binary_translation.",
    )
    privileged_op: Cost = field(
        "0cycles",
        description="Extra CPU per privileged operation of the guest kernel's I/O path "
        "(interrupt-priority (CR8/TPR) writes around the driver's critical section, control "
        "register accesses): an exit round trip and its handling on hardware without TPR "
        "shadowing or APIC virtualization, a translated callout under binary_translation. "
        "0 by default: with APICv such accesses do not exit (assumed).",
    )
    page_table_update: Cost = field(
        "0cycles",
        description="Extra CPU per guest page-table write under shadow paging (a traced "
        "write: a fault or exit and the shadow's update). Must be 0 with nested paging.",
    )
    translation_warmup: Cost = field(
        "0cycles",
        description="binary_translation: CPU one vCPU spends translating the guest "
        "kernel's I/O path into the translation cache, paid once, with that vCPU's first "
        "request. Must be 0 under hardware.",
    )

    def per_request(self, syscalls: int, privileged_ops: int, page_table_updates: int) -> float:
        """CPU a virtualized child's request costs beyond native, for its guest's counts
        of operations per request."""
        return (
            syscalls * self.syscall
            + privileged_ops * self.privileged_op
            + page_table_updates * self.page_table_update
        )

    @pydantic.model_validator(mode="after")
    def _costs_of_mode(self) -> CpuVirtualization:
        if self.mode == "binary_translation" and self.paging != "shadow":
            raise ValueError("binary_translation keeps shadow page tables: paging shadow")
        if (self.mode == "paravirtual") != (self.paging == "direct"):
            raise ValueError("paging direct goes with mode paravirtual, and only with it")
        if self.paging == "nested" and self.page_table_update:
            raise ValueError(
                "page_table_update needs paging shadow (nested paging leaves the guest's "
                "page-table writes in the guest)"
            )
        if self.mode == "hardware" and self.translation_warmup:
            raise ValueError("translation_warmup is for mode binary_translation")
        return self


class Scheduler(Model):
    """vCPU → LP scheduling (see :mod:`sim.model.hypervisor`)."""

    policy: Literal["credit", "core", "fair", "pinned"] = field(
        "credit",
        description="credit: Xen credit / Hyper-V classic (weights, caps, priorities "
        "BOOST > UNDER > OVER, BOOST on wake-up). core: credit, and the SMT siblings of a "
        "core (host.threads_per_core) run vCPUs of one partition at a time, an LP idling "
        "rather than share its core (Hyper-V's core scheduler; Windows Server docs, "
        '"Hyper-V scheduler types", read). fair: round robin, no priorities. '
        "pinned: round robin on a fixed vCPU → LP map (every partition gives 'pin').",
    )
    time_slice: Time = field(
        "30ms", gt=0, description="Xen sched/credit.c default time slice (read)."
    )
    tick: Time = field(
        "10ms",
        gt=0,
        description="Credit accounting tick: credits debited, BOOST ends. Xen (read).",
    )
    accounting_period: Time = field(
        "30ms", gt=0, description="Credits handed out by weight once per period. Xen (read)."
    )
    ratelimit: Time = field(
        "1ms",
        description="A vCPU is not preempted before it has run this long. Xen "
        "sched_ratelimit_us default (read).",
    )
    boost: bool = field(
        True,
        description="BOOST a vCPU woken by an interrupt or signal: it preempts UNDER and "
        "OVER vCPUs. Xen sched/credit.c (read).",
    )
    load_balance: bool = field(
        True, description="Idle or lower-priority LPs steal runnable vCPUs from other LPs."
    )
    root: Literal["pinned", "floating"] = field(
        "pinned",
        description="pinned: parent vCPU i runs on LP i only (Hyper-V root; Windows Server "
        "docs, read); floating: anywhere.",
    )
    minroot: int = field(
        0,
        ge=0,
        le=1023,
        description="Reserve LPs 0..N-1 for the parent alone (Hyper-V minroot); 0 = off.",
    )


def _off(value: object) -> object:
    """YAML reads an unquoted ``off`` as false: take it as the mode ``off``."""
    return "off" if value is False else value


HostDmaMode = Annotated[
    Literal["off", "passthrough", "static", "strict", "deferred"], BeforeValidator(_off)
]
"""How a host kernel (bare metal, the parent) maps the DMA of its own drivers."""


class Iommu(Model):
    """DMA remapping for directly assigned functions: the host's one IOMMU, its IOTLB shared
    by every direct child, and how guests map their DMA buffers (see :mod:`sim.model.iommu`)."""

    mode: Literal["static", "strict", "deferred"] = field(
        "static",
        description="Direct children's DMA mapping. static: all guest memory mapped at VM "
        "start, no per-I/O map/unmap, IOTLB entries persist (Hyper-V; Linux "
        "Documentation/virt/hyperv/vpci.rst, read). strict and deferred: the guest's "
        "kernel maps each DMA through a virtual IOMMU the hypervisor emulates, with the "
        "host DMA API's per-mapping and per-page costs (iova_alloc_cost, map_page_cost, "
        "unmap_page_cost, iova_free_cost); each request it makes of the virtual IOMMU (an "
        "invalidation after every map, in caching mode; after every unmap in strict mode; "
        "a flush per batch in deferred mode) is an exit to the emulating device model "
        "(host.costs.device_model_exit), after which the hypervisor updates the physical "
        "page table per page (map_page_cost, unmap_page_cost) and, in strict mode, "
        "invalidates on the IOMMU's one invalidation queue (invalidation_cost); deferred "
        "flushes a batch deferred_flush_interval after its first unmap "
        "(deferred_flush_cost).",
    )
    page_size: Size = field(
        "4KiB",
        ge=4096,
        le=2**30,
        description="IOMMU page size: 4 KiB to 1 GiB, the page sizes of VT-d, AMD-Vi and "
        "the Arm SMMU (a request's DMA is looked up page by page).",
    )
    iotlb_entries: int = field(
        64,
        ge=1,
        le=1_048_576,
        description="IOTLB capacity in translations (pages), LRU replacement, shared by "
        "all direct children; entries are tagged by child (domain), never shared. Assumed "
        "(vendors do not publish IOTLB sizes): sweep it.",
    )
    dma_buffers: int = field(
        256,
        ge=1,
        le=1_048_576,
        description="DMA buffers each direct child's driver cycles through (the buffers "
        "behind its descriptor ring): request n uses buffer n mod dma_buffers, which spans "
        "ceil(size / page_size) pages. Assumed: 256, a typical descriptor ring (the Xen "
        "netif ring has 256 slots, derived).",
    )
    page_walk: Cost = field(
        "0.3us", description="IOTLB miss penalty (4-level page walk). Assumed: 0.2-0.5 us."
    )
    deferred_flush_interval: Time = field(
        "10ms",
        gt=0,
        description="deferred: queued unmaps are flushed this long after the first of a "
        "batch. Linux drivers/iommu/dma-iommu.c IOVA_DEFAULT_FQ_TIMEOUT (read).",
    )
    deferred_flush_cost: Cost = field(
        "2us",
        description="deferred: CPU per batch flush (one domain-wide IOTLB invalidation), "
        "charged once per batch on the vCPU that queued its first unmap: the host "
        "kernel's, or the hypervisor's behind a direct child's virtual IOMMU. Assumed.",
    )
    native: HostDmaMode = field(
        "off",
        description="The host kernel's DMA API for native children (bare metal with its "
        "IOMMU on): off (no IOMMU), passthrough (identity domain, iommu=pt: no "
        "translation, no CPU), static (buffers mapped once and kept: IOTLB lookups, no "
        "CPU per I/O), strict (map per request, unmap and invalidate on the invalidation "
        "queue per request), deferred (map per request, unmap without invalidation, one "
        "domain flush per batch). Costs: iova_alloc_cost, map_page_cost, unmap_page_cost, "
        "iova_free_cost, invalidation_cost, deferred_flush_cost.",
    )
    parent: HostDmaMode = field(
        "off",
        description="The parent's physical driver's DMA (routed and emulated children) "
        "through the IOMMU, with the same modes and costs as native; charged to the "
        "parent vCPU as driver time.",
    )
    hypervisor: HostDmaMode = field(
        "off",
        description="The hypervisor's own device drivers' DMA (host.io_stack: hypervisor, "
        "children on the hypervisor path: VMware ESX's vmkernel drivers) through the "
        "IOMMU, with the same modes and costs as native; one domain for all their "
        "traffic, charged to the child's LP as hypervisor time.",
    )
    iova_alloc_cost: Cost = field(
        "3986cycles",
        description="DMA API (native, parent, hypervisor, and a direct child's guest), "
        "strict and deferred: CPU per mapping to allocate its I/O-virtual range. Malka, "
        "Amit, Tsafrir, FAST 2015, Table 1 (Linux 3.x rbtree allocator under netperf; "
        "quoted). Kernels with per-CPU IOVA caches allocate in a few hundred cycles: "
        "lower it for them.",
    )
    map_page_cost: Cost = field(
        "588cycles",
        description="DMA API, strict and deferred: CPU per page mapped (page-table "
        "update; behind a virtual IOMMU, the hypervisor's update of the physical table "
        "too). Malka, Amit, Tsafrir, FAST 2015, Table 1 (quoted).",
    )
    unmap_page_cost: Cost = field(
        "438cycles",
        description="DMA API, strict and deferred: CPU per page unmapped (page-table "
        "update; behind a virtual IOMMU, the hypervisor's update of the physical table "
        "too). Malka, Amit, Tsafrir, FAST 2015, Table 1 (quoted).",
    )
    iova_free_cost: Cost = field(
        "408cycles",
        description="DMA API, strict and deferred: CPU per unmapping to find and free "
        "its I/O-virtual range (249 + 159 cycles). Malka, Amit, Tsafrir, FAST 2015, "
        "Table 1 (quoted).",
    )
    invalidation_cost: Cost = field(
        "2127cycles",
        description="DMA API, strict: CPU per unmapping for its IOTLB invalidation (the "
        "hypervisor's behind a direct child's virtual IOMMU), submitted to the IOMMU's "
        "one invalidation queue and waited for (so concurrent invalidations serialise "
        "across cores). Malka, Amit, Tsafrir, FAST 2015, Table 1 "
        "(quoted).",
    )

    # -- physics (the model's sim.model.iommu and the analytic estimate both read these) --
    def pages(self, size: float) -> int:
        """IOMMU pages a DMA of ``size`` bytes touches (at least one)."""
        return int(-(-size // self.page_size)) or 1

    def host_map_cost(self, mode: str, size: float) -> float:
        """A host kernel's CPU (``native``, ``parent``, ``hypervisor`` domains) to map a
        buffer of ``size`` bytes in ``mode``: allocate its range and write a page-table
        entry per page (strict, deferred)."""
        if mode not in ("strict", "deferred"):
            return 0.0
        return self.iova_alloc_cost + self.map_page_cost * self.pages(size)

    def host_unmap_cost(self, mode: str, size: float) -> float:
        """A host kernel's CPU to unmap a buffer of ``size`` bytes in ``mode``, without
        the invalidation (:meth:`host_invalidation`): clear its page-table entries and
        release its range (strict, deferred: deferred waits only for the IOTLB flush)."""
        if mode not in ("strict", "deferred"):
            return 0.0
        return self.iova_free_cost + self.unmap_page_cost * self.pages(size)

    def host_invalidation(self, mode: str) -> float:
        """A host kernel's CPU per unmap for its IOTLB invalidation (strict), not counting
        the wait for the IOMMU's invalidation queue."""
        return self.invalidation_cost if mode == "strict" else 0.0

    def map_costs(
        self, mode: str, size: float, trap: float | None = None
    ) -> tuple[float, float, float]:
        """Mapping a buffer of ``size`` bytes in ``mode``, in µs: the domain's kernel's CPU
        (:meth:`host_map_cost`) and, behind a direct child's virtual IOMMU (``trap``: the
        exit of each request the guest makes of it; ``None`` for a host kernel's
        domain), in strict and deferred mode the exit of the invalidation the guest makes
        after every map (caching mode) and the hypervisor's update of the physical page
        table, per page."""
        own = self.host_map_cost(mode, size)
        if trap is None or mode not in ("strict", "deferred"):
            return own, 0.0, 0.0
        return own, trap, self.map_page_cost * self.pages(size)

    def unmap_costs(
        self, mode: str, size: float, trap: float | None = None
    ) -> tuple[float, float, float]:
        """Unmapping a buffer of ``size`` bytes in ``mode``, in µs, without the IOTLB
        invalidation (:meth:`host_invalidation`): the kernel's CPU
        (:meth:`host_unmap_cost`) and, behind a virtual IOMMU in strict mode, the exit
        of the guest's invalidation request and the hypervisor's update of the physical
        table per page (deferred: at the batch's flush)."""
        own = self.host_unmap_cost(mode, size)
        if trap is None or mode != "strict":
            return own, 0.0, 0.0
        return own, trap, self.unmap_page_cost * self.pages(size)


class HypervisorIo(Model):
    """The hypervisor's own I/O stack (io_path hypervisor, VMware ESX vmkernel style): a
    backend for the paravirtual device and the physical driver, both in the hypervisor,
    run on the LP of the child's vCPU and charged to it as ``hypervisor`` time."""

    request_cost: CostDist = field(
        "3us",
        description="Hypervisor CPU per request: backend (reads the shared ring, maps the "
        "guest's buffers in place: no copy, no partition crossing) and physical driver. "
        "Assumed: the parent's driver.request_cost plus 1.5 us.",
    )
    completion_cost: CostDist = field(
        "2.5us",
        description="Hypervisor CPU per completion: the device's interrupt, the driver's "
        "handler and the backend's completion into the shared ring. Assumed: the parent's "
        "driver.interrupt_cost plus 1 us.",
    )


class Stack(Model):
    """A protocol stack above the driver (TCP/IP, the socket layer and the copy between
    user and kernel), priced as a guest's own (``children[].guest.packet_cost`` and
    ``copy_bandwidth``): per packet it handles (per segment sent without TSO, per unit
    received) and per byte copied, on the vCPU that sends or receives. Used as the
    platform's guest stack (``host.guest_stack``, for every child that prices none of its
    own: :func:`sim.scenario.plan.plan`; a preset of an era states its guests' stack
    there, since presets set no children) and as the parent's own (``parent.stack``,
    for its NIC streams)."""

    packet_cost: CostDist = field(
        "0us",
        description="CPU per packet the stack handles (TCP/IP and socket layers). 0 "
        "(default): none. Era figures are in the docs (docs/design.md, stack costs).",
    )
    copy_bandwidth: Annotated[Bitrate, MEMORY_RATE] | None = field(
        None,
        description="Rate of the stack's per-byte work (the copy between the user's "
        "buffer and the kernel's). None (default): none.",
    )

    @property
    def has_stack(self) -> bool:
        """Whether it prices anything (a per-packet cost or a per-byte rate)."""
        return self.packet_cost.mean > 0.0 or self.copy_bandwidth is not None


class Host(Model):
    """The physical machine and its hypervisor."""

    cores: int = field(16, ge=1, le=1024, description="Logical processors (LPs).")
    threads_per_core: int = field(
        1,
        ge=1,
        le=8,
        description="SMT threads per physical core: LPs i and j are siblings when "
        "i // threads_per_core == j // threads_per_core (cores must be a multiple). "
        "Matters to scheduler policy core and smt_slowdown. 1: no SMT.",
    )
    smt_slowdown: float = field(
        1.0,
        ge=1,
        le=4,
        allow_inf_nan=False,
        description="How many times slower a vCPU's work runs while a sibling LP of its "
        "core runs a vCPU: CPU-bound work (cpu_load) and the work items of the I/O paths "
        "(guest, parent and hypervisor costs); the lost time is charged as 'smt' and, for "
        "a request, counted in the CPU component of the side that ran it. 1: siblings do "
        "not slow each other. Needs threads_per_core > 1.",
    )
    clock: Annotated[
        Frequency,
        Bound(
            units.parse_frequency,
            "0.1GHz",
            "10GHz",
            "server processors run at 1-5 GHz; cycle costs are converted with it",
        ),
    ] = field("2.5GHz", description="Converts cycle costs to time.")
    posted_interrupts: bool = field(
        True,
        description="APICv/AVIC posted interrupts: delivery into a vCPU without exits. "
        "Without: an external-interrupt exit and an EOI exit per interrupt (ELI, "
        "Gordon et al., ASPLOS 2012).",
    )
    io_stack: Literal["parent", "hypervisor"] = field(
        "parent",
        description="Where the platform's paravirtual I/O stack lives. parent: a parent "
        "partition owns the devices and serves routed children (Hyper-V, Xen dom0, KVM's "
        "host). hypervisor: the hypervisor's own drivers own them (VMware ESX's vmkernel; "
        "its service console has no data-path role): children that do not choose a path "
        "take io_path hypervisor, and routed children, and direct ones without a free VF, "
        "fall back to it instead of a parent (the result says so).",
    )
    costs: Costs = field({})
    cpu_virtualization: CpuVirtualization = field({})

    scheduler: Scheduler = field({})
    iommu: Iommu = field({})
    hypervisor_io: HypervisorIo = field({})
    guest_stack: Stack = field(
        {},
        description="The guest OS's protocol stack on this platform, for children that "
        "price none of their own (guest.packet_cost 0, no guest.copy_bandwidth). Default: "
        "none, so such children pay only their driver's costs.",
    )
    housekeeping: Housekeeping = field({})
    max_children: int | None = field(
        None,
        ge=1,
        le=4096,
        description="A licence or edition limit: at most this many child partitions "
        "(count included) run on the host; the loader refuses more and capacity --vary "
        "children never answers more. None: no limit beyond the edition's.",
    )
    edition: (
        Literal[
            "windows-server-2008-standard",
            "windows-server-2008-enterprise",
            "windows-server-2008-datacenter",
        ]
        | None
    ) = field(
        None,
        description="A named edition whose child limit applies like max_children (the "
        "smaller of the two binds): "
        + "; ".join(f"{k}: {v if v else 'no limit'}" for k, v in EDITIONS.items())
        + ". Windows Server 2008 virtual-instance rights: Standard 1, Enterprise 4, "
        "Datacenter unlimited (Microsoft licensing brief, January 2008, read).",
    )

    @pydantic.model_validator(mode="after")
    def _whole_cores(self) -> Host:
        if self.smt_slowdown != 1.0 and self.threads_per_core == 1:
            raise ValueError("smt_slowdown needs SMT siblings: threads_per_core > 1")
        if self.cores % self.threads_per_core:
            raise ValueError(
                f"cores ({self.cores} LPs) must be a multiple of threads_per_core "
                f"({self.threads_per_core})"
            )
        return self

    @property
    def child_limit(self) -> int | None:
        """The most child partitions the host may run (max_children and the edition's
        limit, the smaller), or None without a limit."""
        limits = [n for n in (self.max_children, EDITIONS.get(self.edition or "")) if n]
        return min(limits) if limits else None

    @property
    def child_limit_source(self) -> str:
        """What sets :attr:`child_limit` (a field path), '' without one."""
        limit = self.child_limit
        if limit is None:
            return ""
        if self.max_children == limit:
            return f"host.max_children = {limit}"
        return f"host.edition {self.edition} ({limit} children)"


# ---------------------------------------------------------------------------------------
# Parent partition
# ---------------------------------------------------------------------------------------
class Vsp(Model):
    """The parent's virtualization service provider (storvsp / netvsp, blkback / netback)."""

    request_cost: CostDist = field("4us", description="VSP CPU per request. Assumed.")
    completion_cost: CostDist = field("2us", description="VSP CPU per completion. Assumed.")
    copy_bandwidth: Annotated[Bitrate, MEMORY_RATE] = field(
        "80Gbps",
        description="memcpy rate for payloads copied through the send/receive buffers. "
        "Assumed (10 GB/s).",
    )
    page_cost: Cost = field(
        "0.1us",
        description="VSP CPU per page of a page-list transfer (Cherkasova & Gardner, ATC "
        "2005: parent CPU charged per page exchanged; value assumed).",
    )

    receive: Literal["copy", "flip"] = field(
        "copy",
        description="How the parent hands a received payload to a routed child: copy "
        "(into the child's receive buffer at copy_bandwidth; netvsc, Xen netback "
        "rx-copy) or flip (Xen's grant transfer: the page the NIC filled is exchanged "
        "for one the child posted, flip_page_cost per page, whatever the bytes in it).",
    )
    flip_page_cost: Cost = field(
        "4000cycles",
        description="receive: flip: parent CPU per page exchanged (the grant-transfer "
        "hypercall's page-table updates in both domains and the TLB flush it forces). "
        "Assumed: two page-table updates and a TLB flush at ~1,000-2,000 cycles each "
        "(Menon, Cox, Zwaenepoel, ATC 2006 and Santos et al., ATC 2008 found flipping "
        "costlier than copying a 1,500 B packet, which costs a few hundred cycles).",
    )

    def receive_cost(self, size: float, units: int) -> float:
        """VSP CPU to hand a received payload of ``size`` bytes, reaching it as ``units``
        frames or one coalesced unit, to the child: a copy of its bytes, or a flip of
        every page its units occupy (each unit starts on a page of its own)."""
        if self.receive == "copy":
            return size * (8e6 / self.copy_bandwidth)
        per_unit = math.ceil(size / units / VMBUS_PAGE) or 1
        return units * per_unit * self.flip_page_cost

    def transfer_cost(self, size: float, pages: int) -> float:
        """VSP CPU to move a payload of ``size`` bytes: walk its page list (``pages`` > 0,
        :meth:`Vmbus.pages`) or copy it through the send/receive buffer."""
        return pages * self.page_cost if pages else size * (8e6 / self.copy_bandwidth)


class Driver(Model):
    """The parent's physical device driver."""

    request_cost: CostDist = field("1.5us", description="Driver CPU per request. Assumed.")
    interrupt_cost: CostDist = field(
        "1.5us", description="Driver ISR/DPC CPU per completion. Assumed."
    )


VMBUS_PAGE = 4096
"""VMBus page lists describe memory in 4 KiB pages (Hyper-V's page size; Linux
hyperv.h HV_HYP_PAGE_SIZE, read)."""


class Vmbus(Model):
    """VMBus channels between each routed child and the parent: per device, a primary
    channel and sub-channels, each with its own rings and parent vCPU."""

    ring_size: Annotated[
        Size,
        Bound(
            units.parse_size,
            None,
            "1GiB",
            "a ring is guest memory shared with the parent; Linux's Hyper-V drivers "
            "allocate hundreds of KiB (hv_netvsc 512 KiB)",
        ),
    ] = field(
        "512KiB",
        gt=0,
        description="Ring buffer per direction. Linux hv_netvsc: 128 × 4 KiB pages (read).",
    )
    descriptor_size: Annotated[Size, RING_ENTRY] = field(
        "64B", description="Ring bytes per request descriptor (header + message). Assumed."
    )
    page_entry_size: Annotated[Size, RING_ENTRY] = field(
        "16B",
        description="Ring bytes per page in a page list (length, offset, PFN). Linux "
        "vmbus_channel_packet_page_buffer (derived).",
    )
    copy_threshold: Annotated[
        Size,
        Bound(
            units.parse_size,
            None,
            "64 MiB",
            "a request is at most 64 MiB: a larger threshold copies every payload",
        ),
    ] = field(
        "6144B",
        description="Payloads up to this size are copied through the send buffer; larger "
        "ones are described by page lists. Linux hyperv_net.h send section (read).",
    )
    vcpus_per_channel: int = field(
        4,
        ge=1,
        le=65536,
        description="Child vCPUs per channel: a routed child opens a primary channel and "
        "(vCPUs - 1) // vcpus_per_channel sub-channels to its device; child vCPU i sends on "
        "channel i mod channels. Linux storvsc storvsc_vcpus_per_sub_channel (read); "
        "netvsc's one channel per vCPU is 1; a value above the vCPUs gives the primary alone.",
    )
    max_channels: int = field(
        64,
        ge=1,
        le=65536,
        description="Most channels (primary included) a routed child opens to one device. "
        "Linux hv_netvsc VRSS_CHANNEL_MAX (read).",
    )

    def pages(self, size: float) -> int:
        """VMBus pages a payload spans when it is described by a page list (larger than
        ``copy_threshold``); 0 when it is copied through the send/receive buffer."""
        if size <= self.copy_threshold:
            return 0
        return math.ceil(size / VMBUS_PAGE)

    def entry_bytes(self, size: float) -> int:
        """Ring bytes the entry for a payload of ``size`` bytes occupies: a descriptor and
        one page-list entry per page (at most the whole ring)."""
        return min(self.descriptor_size + self.pages(size) * self.page_entry_size, self.ring_size)


class Parent(Model):
    """The parent (root) partition: owns the devices, runs the VSPs."""

    vcpus: int = field(4, ge=1, le=1024)
    weight: Weight = field(256, description=WEIGHT_HELP)
    cap: Cap = field(0.0, description=CAP_HELP)
    pin: list[Annotated[int, Field(ge=0, le=1023)]] | None = field(
        None, description=PIN_HELP + " Default under root: pinned: vCPU i on LP i."
    )
    vsp: Vsp = field({})
    driver: Driver = field({})
    vmbus: Vmbus = field({})
    cpu_load: CpuLoad | None = field(
        None,
        description="The parent's own CPU-bound work (management stack, backup, a driver "
        "domain's applications) on its vCPUs, competing with the VSPs and drivers: "
        "constant (no busy), periodic (fixed busy and idle) or bursty (busy/idle drawn "
        "from distributions).",
    )
    device: Name | None = field(
        None,
        description="The device the parent's own streams use, through its physical "
        "driver (the physical function).",
    )
    stack: Stack = field(
        {},
        description="The parent's own protocol stack above its driver, for its NIC "
        "streams (default: not modelled).",
    )
    streams: list[Stream] = field(
        [],
        description="Streams whose end point is the parent itself (its management stack, "
        "backup traffic, a driver domain's own applications): through its physical driver "
        "(parent.driver's request and interrupt costs, host.iommu.parent), with the "
        "interrupt exits of a partition; no VMBus hop, no VSP. They compete with the "
        "routed children for the parent's vCPUs and with every child for the device.",
    )


# ---------------------------------------------------------------------------------------
# Devices
# ---------------------------------------------------------------------------------------
PfWeight = Annotated[int, Field(ge=1, le=1024)]
_PF_WEIGHT_HELP = (
    "Requests the physical function (all routed traffic) starts in a row per round-robin "
    "turn; each VF starts 1. Assumed: equal shares."
)


def _check_pf_weight(pf_weight: int, arbitration: str) -> None:
    if pf_weight != 1 and arbitration != "round_robin":
        raise ValueError("pf_weight needs arbitration: round_robin")


class InterruptModeration(Model):
    """Interrupt moderation (coalescing) of each function's completion interrupts, per
    interrupt vector: an interrupt is raised when ``frames`` completions are pending or
    ``usecs`` after the first of them, whichever comes first (see :mod:`sim.model.devices`)."""

    usecs: Time = field(
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
    frames: int = field(
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


def interrupt_vcpu(device: Any) -> int | None:
    """The parent vCPU that takes every completion and received message of a device's
    routed traffic: vCPU 0 for a single-queue NIC (``queues: single``, no VMQ), None
    where each channel's own vCPU takes them (the model, the estimate and the warnings
    read this one rule)."""
    return 0 if getattr(device, "queues", "multi") == "single" else None


def mtu_pieces(size: int, mtu: int) -> list[int]:
    """The MTU-sized packets a stack without (virtual) segmentation offload cuts a payload
    of ``size`` bytes into: full MTUs and the rest, at least one (the model's sends and
    receives without virtual TSO or LRO, and the analytic estimate's)."""
    full, rest = divmod(size, mtu)
    return [mtu] * full + ([rest] if rest or not full else [])


DeviceOwner = Literal["stack", "parent"]
_OWNER = (
    "Who drives the device. stack (default): the platform's I/O stack, host.io_stack. "
    "parent: the parent partition, where host.io_stack is hypervisor (VMware ESX 2.x, "
    "whose service console still owned some devices): children on it take io_path "
    "routed through the parent, and the parent may have its own streams on it. Needs "
    "host.io_stack: hypervisor."
)


class Team(Model):
    """A team (bond) of identical member ports behind one NIC device, each at the
    device's ``line_rate`` with its own transmit and receive wire (Linux bonding,
    Windows NIC teaming in the parent or a bare-metal host)."""

    ports: int = field(2, ge=2, le=8, description="Member ports.")
    policy: Literal["hash", "round_robin"] = field(
        "hash",
        description="Which member carries a request: hash (the flow's hash picks a member, "
        "so each stream sticks to one port, as Linux bonding's layer3+4 transmit hash "
        "and a switch's LACP hash do; flows may collide on a member) or round_robin "
        "(members in turn, request by request, each direction: Linux balance-rr).",
    )

    def port_of(self, flow: str) -> int:
        """The member a flow (a stream: ``PARTITION/J``) sticks to under ``hash``: a
        BLAKE2b digest of its name modulo the members (assumed: a fixed, well-mixed hash
        of the flow's identity, as the layer3+4 hash of its addresses and ports is)."""
        digest = hashlib.blake2b(flow.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little") % self.ports


class Nic(Model):
    """A NIC port: transmissions serialised at line rate, shared by its functions (the PF
    and the VFs), each with its own transmit queue, arbitrated by ``arbitration``."""

    name: Name
    type: Literal["nic"]
    owner: DeviceOwner = field("stack", description=_OWNER)
    line_rate: Annotated[
        Bitrate,
        Bound(
            units.parse_bitrate,
            "1bps",
            "1.6Tbps",
            "1.6 Tb/s is the fastest Ethernet rate IEEE 802.3 specifies (the P802.3dj project)",
        ),
    ] = field("25Gbps")
    mtu: Annotated[
        Size,
        Bound(
            units.parse_size,
            "68B",
            "65535B",
            "68 B is the smallest IPv4 MTU (RFC 791, Linux ETH_MIN_MTU), 65,535 B the "
            "largest IPv4 datagram (its total length is 16 bits)",
        ),
    ] = field("1500B", description="Payload bytes per frame (segmentation).")
    frame_overhead: Annotated[
        Size,
        Bound(
            units.parse_size,
            None,
            "1KiB",
            "the headers of every encapsulation in use (VLAN tags, IPv6, TCP options, "
            "VXLAN, IPsec) add up to a few hundred bytes",
        ),
    ] = field(
        "78B",
        description="Wire bytes per frame beyond payload: preamble+SFD 8, Ethernet header "
        "14, FCS 4, inter-frame gap 12 (IEEE 802.3), IPv4 20 + TCP 20 headers (derived).",
    )
    latency: CostDist = field(
        "2us", description="Descriptor fetch, DMA and pipeline per request. Assumed."
    )
    vfs: int = field(8, ge=0, le=4096, description="SR-IOV virtual functions.")
    tso: bool = field(
        True,
        description="TCP segmentation offload: the sending stack hands the NIC a whole "
        "request and the NIC cuts it into MTU frames; false: the stack cuts it into "
        "ceil(size / mtu) segments in software and pays its per-request send cost per "
        "segment (see sim.model.iopaths). Assumed: current server NICs offload segmentation "
        "and their drivers enable it by default; the routed TSO case of Menon et al., "
        "ATC 2006 presumes it.",
    )
    lro: bool = field(
        True,
        description="Receive coalescing (NIC LRO, Linux GRO): the frames of a received "
        "message reach the receiving stack as one unit; false: each stack on the receive "
        "path pays its per-request receive cost per frame (see sim.model.iopaths). Assumed: "
        "Linux enables GRO by default and current server NICs offer LRO.",
    )
    interrupt_moderation: InterruptModeration = field({}, description=_MODERATION)
    queues: Literal["multi", "single"] = field(
        "multi",
        description="The physical function's queues. multi (VMQ, multi-queue): a queue "
        "per routed channel, whose completions and received messages interrupt the parent "
        "vCPU serving that channel (Santos et al., ATC 2008, multi-queue NICs). single: one "
        "queue, so every completion and received message of routed traffic interrupts "
        "parent vCPU 0, which runs the driver and VSP work for every channel (Hyper-V "
        "without VMQ: the root's processor 0; assumed). Routed traffic only.",
    )
    arbitration: Literal["round_robin", "fifo"] = field(
        "round_robin",
        description="How the free port picks among the functions' queues: round_robin "
        "(functions with waiting requests take turns, one request each) or fifo (arrival "
        "order across functions). Assumed: SR-IOV NICs arbitrate their transmit queues "
        "round robin; the arbitration across functions is vendor-specific.",
    )
    pf_weight: PfWeight = field(1, description=_PF_WEIGHT_HELP)
    team: Team | None = field(
        None,
        description="A team of member ports (each at line_rate, each with its own PF and "
        "vfs VFs and their interrupt vectors) behind this device: the host's own stack "
        "uses it (routed through the parent's team, native, hypervisor), a direct child "
        "bonds a VF of each member in its guest. Default: one port.",
    )

    @property
    def ports(self) -> int:
        """Member ports: the team's, else one."""
        return self.team.ports if self.team is not None else 1

    @pydantic.model_validator(mode="after")
    def _weight_needs_round_robin(self) -> Nic:
        _check_pf_weight(self.pf_weight, self.arbitration)
        return self

    @property
    def ops(self) -> tuple[str, ...]:
        return ("send", "receive")

    def frames(self, size: float) -> int:
        """Frames (or software segments) a payload of ``size`` bytes is cut into: one per
        MTU, at least one."""
        return max(1, math.ceil(size / self.mtu))

    def pieces(self, size: int) -> list[int]:
        """The sizes of the packets a stack without (virtual) segmentation offload cuts a
        payload of ``size`` bytes into (:func:`mtu_pieces` at this port's MTU)."""
        return mtu_pieces(size, self.mtu)

    def wire_time(self, size: float) -> float:
        """µs a payload of ``size`` bytes takes on the wire: its frames at line rate, each
        with ``frame_overhead`` bytes beyond its share of the payload."""
        return (size + self.frames(size) * self.frame_overhead) * (8e6 / self.line_rate)


class Nvme(Model):
    """An NVMe drive with internal parallelism, a command-rate limit, and a submission
    queue per function (the PF and the VFs), arbitrated by ``arbitration``."""

    name: Name
    type: Literal["nvme"]
    owner: DeviceOwner = field("stack", description=_OWNER)
    channels: int = field(8, ge=1, le=4096, description="Commands served in parallel.")
    read: TimeDist = field(
        {"dist": "gamma", "mean": "80us", "cv": 0.5},
        description="Media service time of a read, before transfer. Assumed (TLC NAND).",
    )
    write: TimeDist = field(
        {"dist": "gamma", "mean": "20us", "cv": 0.5},
        description="Service time of a write (to the drive's cache), before transfer. Assumed.",
    )
    bandwidth: Annotated[Bitrate, MEMORY_RATE] = field(
        "3.2GB/s", description="Total transfer rate; each channel moves bandwidth/channels."
    )
    vfs: int = field(16, ge=0, le=4096, description="SR-IOV virtual functions.")
    queue_depth: int = field(
        1024,
        ge=2,
        le=65536,
        description="Entries of each function's I/O submission queue; a function has at most "
        "queue_depth - 1 commands in the drive (a full queue keeps one entry empty), the "
        "rest wait on the host. Linux nvme driver io_queue_depth default 1024 (read).",
    )
    max_iops: Rate | None = field(
        "1M",
        gt=0,
        description="Commands the controller starts per second across all functions "
        "(command processing), on top of channel parallelism; null: no limit. Assumed: "
        "the order of the random 4 KiB read IOPS datacenter PCIe 4 drives quote (0.7-1.5M).",
    )
    interrupt_moderation: InterruptModeration = field({}, description=_MODERATION)
    arbitration: Literal["round_robin", "fifo"] = field(
        "round_robin",
        description="How a free channel picks among the functions' queues: round_robin "
        "(functions with waiting requests take turns, one command each) or fifo (arrival "
        "order across functions). Round robin is the arbitration every NVMe controller "
        "supports between submission queues (NVM Express Base Specification, Command "
        "Arbitration; read); across functions it is vendor-specific (assumed).",
    )
    pf_weight: PfWeight = field(1, description=_PF_WEIGHT_HELP)

    @pydantic.model_validator(mode="after")
    def _weight_needs_round_robin(self) -> Nvme:
        _check_pf_weight(self.pf_weight, self.arbitration)
        return self

    @property
    def ops(self) -> tuple[str, ...]:
        return ("read", "write")

    def media(self, op: str) -> TimeDist:
        """The media time of one command of ``op`` (read or write), without transfer."""
        return self.read if op == "read" else self.write

    def transfer_time(self, size: float) -> float:
        """µs one command of ``size`` bytes spends transferring on its channel: the
        drive's bandwidth is shared by its ``channels``."""
        return size * (8e6 * self.channels / self.bandwidth)


DISK_STRIPES = 2**20
"""Stripe units a disk array's capacity is cut into (round robin over its spindles): a unit
is a millionth of the capacity, 64-512 KiB for the 70-500 GB drives of 2006-2010, the
order of the stripe units RAID controllers use (assumed)."""


class Disk(Model):
    """A rotating disk, or a RAID-0 array of ``spindles`` identical ones: each spindle
    serves one command at a time (seek, rotation, transfer) and reorders the commands in
    its queue (see :mod:`sim.model.devices`). Ruemmler & Wilkes, "An Introduction to Disk
    Drive Modeling", IEEE Computer 1994 (method)."""

    name: Name
    type: Literal["disk"]
    owner: DeviceOwner = field("stack", description=_OWNER)
    spindles: int = field(
        1,
        ge=1,
        le=256,
        description="Drives striped together (RAID-0): a request goes to the spindle of "
        "its stripe unit; mirrored or parity writes are not modelled.",
    )
    rpm: float = field(
        15000.0,
        ge=3600,
        le=20000,
        allow_inf_nan=False,
        description="Rotation speed: a command waits a uniform share of one revolution "
        "(60 s / rpm) for its sector. Assumed: a 15,000 rpm SAS drive.",
    )
    track_to_track: Time = field(
        "0.2ms",
        ge=0,
        description="Seek time of the shortest non-zero seek. Assumed: 15,000 rpm drives "
        "of 2006-2010 quote 0.2-0.5 ms.",
    )
    full_stroke: Time = field(
        "7ms",
        gt=0,
        description="Seek time across the whole disk. A seek over a fraction d of the disk "
        "takes track_to_track + (full_stroke - track_to_track) * sqrt(d): the square-root "
        "curve of short seeks (Ruemmler & Wilkes 1994, method) used over the whole range. "
        "Assumed: with 0.2 ms gives a 3.8 ms mean random seek, the order 15,000 rpm "
        "drives quote.",
    )
    transfer_rate: Annotated[Bitrate, MEMORY_RATE] = field(
        "120MB/s", description="Media transfer rate. Assumed: a 15,000 rpm drive of 2008."
    )
    queue_depth: int = field(
        32,
        ge=1,
        le=256,
        description="Commands each spindle holds and may reorder (SCSI tagged or SATA "
        "native command queueing); the rest wait on the host in arrival order. Assumed: "
        "32, SATA NCQ's limit.",
    )
    scheduling: Literal["sstf", "fifo"] = field(
        "sstf",
        description="How a spindle picks its next command among those it holds: sstf "
        "(shortest seek first, ties in arrival order; the drive's reordering) or fifo "
        "(arrival order, no reordering).",
    )
    span: float = field(
        1.0,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="Share of the capacity the I/O falls in (a data set's extent): each "
        "request's position is uniform in it, drawn from the issuing stream.",
    )
    vfs: int = field(0, ge=0, le=0, description="A disk has no SR-IOV virtual functions.")
    interrupt_moderation: InterruptModeration = field({}, description=_MODERATION)

    @pydantic.model_validator(mode="after")
    def _curve(self) -> Disk:
        if self.full_stroke < self.track_to_track:
            raise ValueError("full_stroke must be at least track_to_track")
        return self

    @property
    def ops(self) -> tuple[str, ...]:
        return ("read", "write")

    @property
    def revolution(self) -> float:
        """µs per revolution."""
        return 60e6 / self.rpm

    def seek_time(self, distance: float) -> float:
        """µs to seek over ``distance`` (a fraction of the disk, 0..1)."""
        if distance <= 0:
            return 0.0
        return self.track_to_track + (self.full_stroke - self.track_to_track) * math.sqrt(distance)

    def transfer_time(self, size: float) -> float:
        """µs to transfer ``size`` bytes to or from the media."""
        return size * (8e6 / self.transfer_rate)

    def positioning_moments(self) -> tuple[float, float]:
        """Mean and variance (µs, µs²) of seek + rotation of a command in arrival order
        (fifo), positions independent and uniform over ``span``: with d = span * |X - Y|,
        E[sqrt(|X - Y|)] = 8/15 and E[|X - Y|] = 1/3; rotation uniform over a revolution."""
        a, b = self.track_to_track, self.full_stroke - self.track_to_track
        r = math.sqrt(self.span)
        mean_seek = a + b * r * 8 / 15
        second_seek = a * a + 2 * a * b * r * 8 / 15 + b * b * self.span / 3
        rev = self.revolution
        return mean_seek + rev / 2, second_seek - mean_seek**2 + rev * rev / 12


Device = Annotated[Nic | Nvme | Disk, Field(discriminator="type")]
