"""One colour per thing across every figure (docs/design.md §4, the report): per I/O path,
per latency component, per CPU category, per fault kind. Colour-blind-safe (Okabe & Ito,
2008, *Color Universal Design*; where a table needs more than their eight, Paul Tol's
"muted" scheme, SRON/EPS/TN/09-002, 2021); a figure never picks a colour by its position
in a list, so a category keeps its colour whichever others a figure shows. Every
component (:data:`sim.model.metrics.COMPONENTS`), CPU category
(:data:`sim.model.metrics.CATEGORIES`), path and fault kind has its own colour here, and
within a table no two share one (tested)."""

from __future__ import annotations

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
             "#000000")  # fmt: skip
"""For lines with no fixed colour (devices, rings): by position, as a last resort."""

PATH_COLORS = {
    "routed": "#D55E00",
    "direct": "#0072B2",
    "native": "#009E73",
    "hypervisor": "#CC79A7",
    "emulated": "#E69F00",
}

COMPONENT_COLORS = {
    "guest_cpu": "#0072B2",
    "sched_wait": "#E69F00",
    "guest_queue": "#56B4E9",
    "ring_wait": "#D55E00",
    "parent_cpu": "#CC79A7",
    "parent_queue": "#F0E442",
    "iommu": "#009E73",
    "device_queue": "#888888",
    "device_service": "#C8C8C8",
    "interrupt": "#000000",
    "retry": "#882255",
}
"""Latency components; the device's own time in greys, so that what the virtualization
layers add stands out."""

CATEGORY_COLORS = {
    "guest": "#0072B2",
    "vsc": "#56B4E9",
    "vsp": "#CC79A7",
    "driver": "#E69F00",
    "exit": "#D55E00",
    "hypervisor": "#009E73",
    "smt": "#332288",
    "timer": "#DDCC77",
    "timer_exit": "#882255",
    "halt": "#44AA99",
    "housekeeping": "#999933",
    "idle": "#BBBBBB",
}
"""CPU categories (:data:`sim.model.metrics.CATEGORIES` and the host's idle time); the
per-VM and per-vCPU work (timer, its exits, halts, housekeeping) and the SMT sibling
slowdown from Tol's muted scheme."""

FAULT_COLORS = {
    "parent_crash": "#D55E00",
    "parent_hang": "#E69F00",
    "vsp_slowdown": "#F0E442",
    "vf_revoke": "#56B4E9",
    "device_reset": "#CC79A7",
    "lp_offline": "#999999",
    "child_crash": "#000000",
    "hv_driver_crash": "#882255",
}

FALLBACK = "#777777"
"""A component, category or fault added to the model before it has a colour here."""


def color(kind: str, name: str) -> str:
    """The colour of ``name`` among ``kind`` (path, component, category, fault)."""
    table = {"path": PATH_COLORS, "component": COMPONENT_COLORS, "category": CATEGORY_COLORS,
             "fault": FAULT_COLORS}[kind]  # fmt: skip
    return table.get(name, FALLBACK)
