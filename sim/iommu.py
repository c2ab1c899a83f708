"""DMA remapping for directly assigned device functions.

What it models
    A direct child's DMA goes through the IOMMU: each page a request's buffer spans is
    looked up in the IOTLB, and a miss costs a page walk (``page_walk``, assumed 0.2-0.5 µs
    for a 4-level walk) during the device's DMA. Misses per request are drawn as
    Binomial(pages, ``iotlb_miss_ratio``) from the issuing stream's own generator.

    Mapping modes:

    ``static``  Hyper-V pins and maps all guest memory when the VM starts (Linux
                ``Documentation/virt/hyperv/vpci.rst``): no per-request CPU cost.
    ``strict``  a guest with a virtual IOMMU maps its buffers before each request and
                unmaps and invalidates after it: ``strict_map_cost`` on the submitting vCPU,
                ``strict_unmap_cost`` on the completing one (both assumed; sweep them).

Simplified
    The IOTLB is a miss ratio, not a cache of entries with an access pattern; ``deferred``
    invalidation and interrupt remapping costs are not modelled in this version.
"""

from __future__ import annotations

import math

import numpy as np

from sim.scenario import Iommu as IommuSpec


class Iommu:
    """IOTLB translation and per-request mapping costs of one direct child's stream."""

    __slots__ = ("_miss", "_page", "_rng", "_walk", "map_cost", "unmap_cost")

    def __init__(self, spec: IommuSpec, rng: np.random.Generator) -> None:
        self._rng = rng
        self._page = spec.page_size
        self._miss = spec.iotlb_miss_ratio
        self._walk = spec.page_walk
        strict = spec.mode == "strict"
        self.map_cost = spec.strict_map_cost if strict else 0.0
        self.unmap_cost = spec.strict_unmap_cost if strict else 0.0

    def translate(self, size: int) -> float:
        """Time the device's DMA of ``size`` bytes spends in IOTLB misses."""
        if self._miss <= 0.0 or self._walk <= 0.0:
            return 0.0
        pages = max(1, math.ceil(size / self._page))
        return int(self._rng.binomial(pages, self._miss)) * self._walk
