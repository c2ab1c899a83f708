"""DMA remapping: the IOTLB, the direct children's mapping modes and the host kernels' DMA
API (docs/design.md §3.3, The IOMMU).

What it models
    The host has one IOMMU (:class:`Iommu`) and one IOTLB (:class:`Iotlb`) of
    ``iotlb_entries`` translations with LRU replacement, shared by every directly
    assigned function: all direct children compete for its entries. Each direct child is
    a translation domain (:class:`DmaDomain`); entries are tagged by domain, as VT-d tags
    them by domain id, so two children never share an entry.

    **DMA buffers.** A direct child's driver cycles through a ring of ``dma_buffers`` DMA
    buffers (the buffers behind its descriptor ring; assumed 256): its n-th request, over
    all its streams, uses buffer ``n mod dma_buffers``, which spans
    ``ceil(size / page_size)`` pages (at least one). Each buffer starts on a page boundary
    of its own I/O-virtual range (no page is shared by two buffers, none is split by a
    misaligned start), and keeps that range from one use to the next.

    **Translation.** When a request reaches the device, every page of its buffer is looked
    up in the IOTLB: a hit is free, a miss costs ``page_walk`` (a 4-level walk, assumed
    0.2-0.5 µs) and fills the entry, evicting the least recently used one when the IOTLB
    is full. The walks delay the device's DMA (:mod:`sim.model.devices`: during a NIC's
    per-request latency, within an NVMe command's service) and are charged to the
    request's ``iommu`` latency component. The cost is O(pages) per request.

    The access pattern is cyclic, which LRU serves all or nothing: when the working set
    of all direct children (their buffers × pages) fits in the IOTLB, every lookup hits
    after the first pass over the ring; when it does not, each entry is evicted shortly
    before its reuse and nearly every lookup misses. With the defaults (64 entries, 256
    buffers of 4 KiB pages) one direct child already misses on every page in ``static`` mode; fewer
    buffers, larger pages (``page_size: 2MiB``) or more entries bring the hits back.

Mapping modes (``host.iommu.mode``, or a direct child's own ``iommu``)
    ``static``    Hyper-V pins and maps all guest memory when the VM starts (Linux
                  ``Documentation/virt/hyperv/vpci.rst``): no per-request CPU cost, and
                  IOTLB entries persist until evicted.
    ``strict``    the guest maps every DMA through a virtual IOMMU the hypervisor
                  emulates: before the request, its DMA API's range allocation and a
                  page-table update per page (the spec's ``host_map_cost``), then the
                  invalidation caching mode requires after a map, an exit of
                  ``trap`` µs (``host.costs.device_model_exit``), and the hypervisor's
                  update of the physical table per page; after completion the guest's
                  unmap (``host_unmap_cost``), another exit, the hypervisor's update per
                  page and the IOTLB invalidation on the IOMMU's one queue
                  (:meth:`DmaDomain.invalidate`): the next use of that buffer misses on
                  every page. (The spec's ``map_costs`` and ``unmap_costs`` split each
                  into the guest's CPU, the exit and the hypervisor's.)
    ``deferred``  Linux's flush queue (``drivers/iommu/dma-iommu.c``) in the guest: the
                  map as in strict; the unmap's guest part only, its invalidation
                  queued. The first unmap queued after a flush arms a timer;
                  ``deferred_flush_interval`` (10 ms, Linux ``IOVA_DEFAULT_FQ_TIMEOUT``)
                  later the child's whole domain is flushed from the IOTLB at once (a
                  domain-selective invalidation, as Linux's ``flush_iotlb_all``): an
                  exit, the hypervisor clearing the batch's pages from the physical
                  table and ``deferred_flush_cost``, once per batch on the vCPU that
                  armed the timer (it waits for that vCPU like any work item). Until the
                  flush, entries stay valid and the next use of a buffer can hit.

    The guest's part is CPU time in the category ``guest``, the exits ``exit``, the
    hypervisor's ``hypervisor``, all on the guest's vCPU and part of the request's
    ``iommu`` component; the flush is CPU time only, on no request's path (requests
    queued behind it on that vCPU see it as ``guest_queue``).

Host kernels' domains (``host.iommu.native``, ``host.iommu.parent``, ``host.iommu.hypervisor``)
    A native child's kernel, the parent's physical driver and the hypervisor's own drivers
    map their own DMA through the same IOMMU when their mode is not ``off``
    (:meth:`Iommu.host_domain`): a domain each (the parent's and the hypervisor's shared by
    all their traffic) with the same ring of buffers and IOTLB.
    ``passthrough`` translates nothing (an identity domain); ``static`` looks pages up
    and costs no CPU; ``strict`` and ``deferred`` cost per request the spec's
    ``host_map_cost`` (IOVA allocation + a page-table update per page) and
    ``host_unmap_cost`` (an update per page + the range's release), with no exits and no
    second table; ``strict`` then invalidates on the IOMMU's one invalidation queue,
    spinning until done (:meth:`DmaDomain.invalidate`: concurrent invalidations of every
    domain, a direct child's too, serialise across cores, the wait is CPU time),
    ``deferred`` queues the unmap for the batch flush. The CPU is the
    domain's ``category``: ``guest`` on a native host, ``driver`` on the parent,
    ``hypervisor`` for the hypervisor's drivers.

Counters
    ``iotlb_hits`` and ``iotlb_misses`` (page lookups: their sum is the pages looked up,
    hits / sum the hit ratio), ``iotlb_invalidations`` (strict: one page-range
    invalidation per request), ``iotlb_flushes`` (deferred: one domain flush per batch),
    ``exits.viommu`` (a direct child's requests of its virtual IOMMU: two per request in
    strict mode; one per request and one per batch in deferred). Like every counter,
    they restart at the end of the warm-up; the IOTLB's contents do not.

Simplified
    The lookup happens when the request reaches the device, all its pages at once;
    translations of descriptors, completion entries and interrupt remapping are not
    modelled, nor paging-structure caches (every miss is a full walk) or ATS. A virtual
    IOMMU's emulation runs on the guest's own vCPU (not on a side core), and the
    hypervisor's update of the physical table costs what the guest's does, per page
    (pinning the guest's pages, as an emulation that does not pin all memory must, is
    not modelled). In ``deferred`` mode a buffer keeps its
    I/O-virtual address (Linux's dma-iommu allocates a new IOVA per mapping and frees the
    old one only at the flush, so there a reuse before the flush would miss too), and
    the flush Linux also makes when a per-CPU flush queue (256 entries) fills is not
    modelled: flushes come only from the timer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Final

from sim.model.env import SimEnv, Waitable
from sim.scenario.hardware import Iommu as IommuSpec

if TYPE_CHECKING:
    from sim.model.hypervisor import VCpu

# A key is (domain's first buffer + buffer) << _PAGE_BITS | page within the buffer: one
# int per I/O-virtual page, unique across domains and buffers (a buffer of 2**32 pages
# would be 16 TiB at 4 KiB pages).
_PAGE_BITS: Final = 32

# nothing to map or unmap, in µs (a domain that keeps its mappings, or no domain)
NO_COSTS = (0.0, 0.0, 0.0)


class Iotlb:
    """An LRU cache of ``capacity`` translations, keyed by page (any hashable key; the
    model's keys are ints that encode the domain, the buffer and the page)."""

    __slots__ = ("capacity", "entries")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"IOTLB capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        # least recently used first; the values are unused
        self.entries: OrderedDict[Any, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def lookup(self, key: Any) -> bool:
        """Translate one page: True on a hit (it becomes the most recently used), False on
        a miss (the translation is filled in, evicting the least recently used one)."""
        entries = self.entries
        if key in entries:
            entries.move_to_end(key)
            return True
        entries[key] = None
        if len(entries) > self.capacity:
            entries.popitem(last=False)
        return False

    def touch_range(self, first: int, pages: int) -> int:
        """Look up the pages ``first .. first + pages - 1`` in order; returns the misses."""
        entries = self.entries
        move = entries.move_to_end
        evict = entries.popitem
        capacity = self.capacity
        misses = 0
        for key in range(first, first + pages):
            if key in entries:
                move(key)
            else:
                misses += 1
                entries[key] = None
                if len(entries) > capacity:
                    evict(last=False)
        return misses

    def invalidate_range(self, first: int, pages: int) -> int:
        """Drop the pages ``first .. first + pages - 1``; returns how many were cached."""
        pop = self.entries.pop
        dropped = 0
        for key in range(first, first + pages):
            if pop(key, False) is None:  # cached entries hold None
                dropped += 1
        return dropped

    def invalidate_keys(self, low: int, high: int) -> int:
        """Drop every entry with ``low <= key < high`` (a domain flush); returns how many."""
        entries = self.entries
        stale = [k for k in entries if low <= k < high]
        for k in stale:
            del entries[k]
        return len(stale)


class Iommu:
    """The host's IOMMU: one IOTLB, shared by every translation domain, and one
    invalidation queue, shared by every host kernel's strict unmaps."""

    def __init__(self, env: SimEnv, spec: IommuSpec) -> None:
        self.env = env
        self.spec = spec
        self.iotlb = Iotlb(spec.iotlb_entries)
        self.domains: list[DmaDomain] = []
        # one invalidation at a time, as VT-d's queued invalidation waits for each: the
        # time the queue is free again (a FIFO single server, in closed form)
        self.queue_free_at = 0.0

    def domain(self, name: str, mode: str, trap: float) -> DmaDomain:
        """A new translation domain for the direct child ``name`` in ``mode`` (its
        ``iommu``, else ``host.iommu.mode``), whose guest's requests of its virtual IOMMU
        each cost an exit of ``trap`` µs."""
        d = DmaDomain(self, len(self.domains), name, mode, virtual=True, trap=trap)
        self.domains.append(d)
        return d

    def host_domain(self, name: str, mode: str, category: str) -> DmaDomain | None:
        """A translation domain for a host kernel's own driver (a native child, the
        parent's physical driver) in ``mode``, its CPU charged as ``category``; ``None``
        when its IOMMU is off."""
        if mode == "off":
            return None
        d = DmaDomain(self, len(self.domains), name, mode, category)
        self.domains.append(d)
        return d


class DmaDomain:
    """One translation domain: a direct child's (its guest's DMA API on a virtual IOMMU)
    or a host kernel's (a native child's, the parent's, the hypervisor's): its ring of
    DMA buffers, its IOTLB entries, its map/unmap costs and, in ``deferred`` mode, its
    flush queue."""

    __slots__ = (
        "_buffers",
        "_counters",
        "_env",
        "_first_buffer",
        "_flush_cost",
        "_interval",
        "_invalidation",
        "_iommu",
        "_iotlb",
        "_next",
        "_pages",
        "_spec",
        "_translates",
        "_walk",
        "armed",
        "category",
        "dynamic",
        "index",
        "invalidation_category",
        "mode",
        "name",
        "pending",
        "pending_pages",
        "trap",
        "virtual",
    )

    def __init__(
        self,
        iommu: Iommu,
        index: int,
        name: str,
        mode: str,
        category: str = "guest",
        virtual: bool = False,
        trap: float = 0.0,
    ) -> None:
        spec = iommu.spec
        self._env = iommu.env
        self._counters = iommu.env.counters
        self._iotlb = iommu.iotlb
        self._iommu = iommu
        self.index = index
        self.name = name
        # a direct child's domain (virtual: its guest's virtual IOMMU, emulated by the
        # hypervisor) or a host kernel's (no emulation)
        self.virtual = virtual
        self.mode = mode
        self.category = category
        self._translates = self.mode != "passthrough"
        # whether each DMA maps and unmaps its buffer (strict, deferred): static and
        # passthrough domains keep their mappings, at no CPU
        self.dynamic = self.mode in ("strict", "deferred")
        self._pages = spec.pages
        self._walk = spec.page_walk
        self._buffers = spec.dma_buffers
        self._first_buffer = index * spec.dma_buffers
        self._next = 0
        self._spec = spec
        # a virtual IOMMU's exit per request the guest makes of it (strict, deferred)
        self.trap = trap if self.virtual and self.mode in ("strict", "deferred") else 0.0
        self._invalidation = spec.host_invalidation(self.mode)
        # the physical IOMMU's invalidations and flushes: the hypervisor's for a guest's
        # virtual IOMMU, the host kernel's own otherwise
        self.invalidation_category = "hypervisor" if self.virtual else category
        self._interval = spec.deferred_flush_interval
        self._flush_cost = spec.deferred_flush_cost
        self.pending = 0  # deferred: unmaps queued since the last flush
        self.pending_pages = 0  # deferred: their pages
        self.armed = False  # deferred: the flush timer is running

    def map_time(self, size: int) -> float:
        """The domain's kernel's CPU to map a buffer of ``size`` bytes before its DMA
        (strict, deferred): the range's allocation and a page-table update per page."""
        return self._spec.host_map_cost(self.mode, size)

    def unmap_time(self, size: int) -> float:
        """The domain's kernel's CPU to unmap a buffer of ``size`` bytes after its DMA
        (strict, deferred), without the IOTLB invalidation (:meth:`invalidate`) or the
        flush (deferred)."""
        return self._spec.host_unmap_cost(self.mode, size)

    def map_costs(self, size: int) -> tuple[float, float, float]:
        """A buffer of ``size`` bytes mapped before its DMA, in µs: the kernel's CPU, a
        virtual IOMMU's exit and the hypervisor's physical-table update (the spec's
        ``map_costs``; the last two 0 in a host kernel's domain). Counts the exit
        (``exits.viommu``): call it once per mapping made."""
        if not self.dynamic:
            return NO_COSTS
        costs = self._spec.map_costs(self.mode, size, self.trap if self.virtual else None)
        if costs[1]:
            self._counters["exits.viommu"] += 1
        return costs

    def unmap_costs(self, size: int) -> tuple[float, float, float]:
        """A buffer of ``size`` bytes unmapped after its DMA, in µs, without the IOTLB
        invalidation (:meth:`invalidate`): as :meth:`map_costs` (the spec's
        ``unmap_costs``), counting the exit; call it once per unmapping made."""
        if not self.dynamic:
            return NO_COSTS
        costs = self._spec.unmap_costs(self.mode, size, self.trap if self.virtual else None)
        if costs[1]:
            self._counters["exits.viommu"] += 1
        return costs

    @property
    def queued_invalidation(self) -> bool:
        """Whether each unmap waits for an invalidation on the IOMMU's shared queue
        (strict)."""
        return self._invalidation > 0.0

    def invalidate(self, v: VCpu) -> Generator[Waitable, Any, float]:
        """Called while holding ``v``: a strict domain's IOTLB invalidation, submitted to
        the IOMMU's one queue and waited for by spinning (Linux ``qi_submit_sync``): the
        queue serves invalidations one at a time in the order they come, so this one
        starts when those ahead of it are done; the wait and the invalidation are both CPU
        time of ``v`` (one work item), the host kernel's or, behind a virtual IOMMU, the
        hypervisor's. Returns it."""
        iommu = self._iommu
        now = self._env.now
        wait = max(0.0, iommu.queue_free_at - now)
        iommu.queue_free_at = now + wait + self._invalidation
        took = wait + self._invalidation
        yield v.hold((self.invalidation_category, took))
        return took + v.smt_lost

    def access(self, size: int) -> tuple[int, int, float]:
        """DMA of ``size`` bytes into the next buffer of the ring: looks up its pages and
        returns ``(first page key, pages, time spent in page walks)``; a passthrough
        domain translates nothing."""
        if not self._translates:
            return 0, 0, 0.0
        b = self._next
        self._next = b + 1 if b + 1 < self._buffers else 0
        pages = self._pages(size)
        first = (self._first_buffer + b) << _PAGE_BITS
        misses = self._iotlb.touch_range(first, pages)
        c = self._counters
        c["iotlb_hits"] += pages - misses
        c["iotlb_misses"] += misses
        return first, pages, misses * self._walk

    def unmap(self, first: int, pages: int, vcpu: VCpu) -> None:
        """After completion, on ``vcpu``: strict invalidates the buffer's pages now;
        deferred queues the unmap and arms the flush timer; static does nothing."""
        mode = self.mode
        if mode == "strict":
            if not pages:
                return
            self._iotlb.invalidate_range(first, pages)
            self._counters["iotlb_invalidations"] += 1
        elif mode == "deferred":
            self.pending += 1
            self.pending_pages += pages
            if not self.armed:
                self.armed = True
                self._env.after(self._interval, lambda _ev: self._fire(vcpu))

    def flush(self) -> int:
        """Flush the domain's IOTLB entries and the queue; returns the entries dropped."""
        self.pending = self.pending_pages = 0
        self.armed = False
        self._counters["iotlb_flushes"] += 1
        low = self._first_buffer << _PAGE_BITS
        return self._iotlb.invalidate_keys(low, (self._first_buffer + self._buffers) << _PAGE_BITS)

    def _fire(self, vcpu: VCpu) -> None:
        shadow = self.virtual and (self.trap > 0.0 or self._spec.unmap_page_cost > 0.0)
        if self._flush_cost > 0.0 or shadow:  # CPU to spend: on the vCPU
            self._env.process(self._flush_on(vcpu))
        else:
            self.flush()

    def _flush_on(self, v: VCpu) -> Generator[Waitable, Any, None]:
        # unmaps queued while the flush waits for its vCPU join this batch
        yield from v.acquire()
        debt = v.take_debt()
        # behind a virtual IOMMU: the guest's flush request exits, and the hypervisor
        # clears the batch's pages from the physical page table before the flush
        shadow = self._spec.unmap_page_cost * self.pending_pages if self.virtual else 0.0
        if self.trap:
            self._counters["exits.viommu"] += 1
        self.flush()
        yield v.hold(
            ("exit", self.trap),
            (self.invalidation_category, self._flush_cost + shadow),
            ("hypervisor", debt),
        )
        v.release()
