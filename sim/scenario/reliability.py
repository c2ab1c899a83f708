"""Failure and repair processes of a host's components, over months (docs/design.md §3.5,
Reliability): the scenario's ``reliability:`` section, read by ``hvsim availability``.

Each component has a :class:`Process`: random failures (time to failure exponential,
Weibull or lognormal with mean ``mtbf``; repair exponential, lognormal or fixed with mean
``mttr``) and/or scheduled maintenance windows (every ``every``, lasting ``window``, from
``offset``). Times are spans with a unit: ``s``, ``min``, ``h``, ``d``, ``y`` (365 d);
stored in seconds. What each component's failure does to the request-level model (the
scripted fault kind it is simulated as, :mod:`sim.model.faults`) is :data:`COMPONENTS`.

Defaults: sources next to each value; figures no field study gives are marked *assumed*
with the reasoning, to be swept, not trusted.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BeforeValidator

from sim.scenario.fields import Model, field

SPAN_UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "y": 365 * 86400.0}
YEAR_S = SPAN_UNITS["y"]


def parse_span(value: Any) -> Any:
    """A span such as ``'90d'``, ``'4h'``, ``'10min'``, ``'30s'``, ``'2y'`` in seconds
    (``'ms'`` and ``'us'`` too, for short checks)."""
    if isinstance(value, bool):
        raise ValueError("a span is a number with a unit (s, min, h, d, y)")
    if isinstance(value, int | float):
        if value == 0:
            return 0.0
        raise ValueError(f"{value} needs a unit: s, min, h, d or y (e.g. '{value}d')")
    if isinstance(value, str):
        m = re.fullmatch(
            r"\s*([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)\s*(us|ms|s|min|h|d|y)\s*", value
        )
        if m is None:
            raise ValueError(f"'{value}' is not a span: write e.g. 90d, 4h, 10min, 30s")
        unit = {"us": 1e-6, "ms": 1e-3, **SPAN_UNITS}[m[2]]
        return float(m[1]) * unit
    return value


Span = Annotated[
    float,
    BeforeValidator(parse_span),
    pydantic.Field(ge=0.0, allow_inf_nan=False),
    pydantic.PlainSerializer(lambda v: f"{v!r}s", return_type=str, when_used="json"),
]
"""A span in seconds, written with its unit; dumped as seconds with the unit ``s``."""


class Process(Model):
    """One component's failures and repairs, and its maintenance windows."""

    failure: Literal["exponential", "weibull", "lognormal"] = field(
        "exponential", description="Distribution of the time from a repair to the next failure."
    )
    mtbf: Span | None = field(None, description="Mean time to failure (None: no random failures).")
    shape: float | None = field(
        None,
        gt=0.0,
        le=20.0,
        description="weibull: shape k (k < 1: decreasing hazard); lognormal: sigma of the "
        "log. Needed for those two.",
    )
    repair: Literal["exponential", "lognormal", "fixed"] = field(
        "lognormal", description="Distribution of the repair (restart, reboot, replacement) time."
    )
    mttr: Span = field("5min", description="Mean repair time.")
    repair_shape: float = field(
        0.5, gt=0.0, le=5.0, description="lognormal repair: sigma of the log."
    )
    every: Span | None = field(
        None, description="Scheduled maintenance: a window this often (None: none)."
    )
    window: Span = field("10min", description="How long a maintenance window lasts.")
    offset: Span = field("0s", description="When the first window starts.")

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> Process:
        if self.failure in ("weibull", "lognormal") and self.mtbf and self.shape is None:
            raise ValueError(f"a {self.failure} failure time needs a 'shape'")
        if self.mtbf is not None and self.mtbf <= 0:
            raise ValueError("mtbf must be positive")
        if self.every is not None and not 0 < self.window < self.every:
            raise ValueError("a maintenance 'window' must be shorter than 'every'")
        return self

    @property
    def active(self) -> bool:
        """Whether it fails or is maintained at all."""
        return bool(self.mtbf) or self.every is not None


# What a failure of each component is simulated as (the scripted fault kind), which
# instances it has, and which children it takes down, moves or slows (the blast radius
# is derived from these, sim.analysis.availability, and checked by simulation).
COMPONENTS: dict[str, tuple[str, str]] = {
    "parent_crash": ("parent_crash", "parent"),
    "parent_hang": ("parent_hang", "parent"),
    "parent_patch": ("parent_crash", "parent"),
    "vsp": ("parent_crash", "parent"),
    "parent_driver": ("parent_crash", "device"),
    "hv_driver": ("hv_driver_crash", "device"),
    "device": ("device_reset", "device"),
    "vf": ("vf_revoke", "direct child"),
    "lp": ("lp_offline", "lp"),
    "child": ("child_crash", "child"),
}
"""component → (fault kind it is simulated as, what one instance is)."""

WEIBULL_SHAPE = 0.7
"""Time between failures: Weibull with decreasing hazard, shape 0.7-0.8 per node
(Schroeder & Gibson, DSN 2006, LANL systems, read)."""


class Reliability(Model):
    """Failure and repair processes per component (module docstring). Defaults: sources in
    each description."""

    parent_crash: Process = field(
        {"failure": "weibull", "mtbf": "400d", "shape": WEIBULL_SHAPE, "mttr": "5min"},
        description="Parent kernel crashes not caused by a driver (then the parent reboots: "
        "parent_crash). Shape: Schroeder & Gibson, DSN 2006 (Weibull 0.7-0.8, read). Mean: "
        "assumed, so that drivers cause 70 % of the parent's crashes (Microsoft's crash "
        "reports: ~70 % of Windows crashes involve drivers, quoted in Swift et al., SOSP "
        "2003, 85 % for XP); 400 d with two drivers at 340 d gives a parent crash every "
        "~120 d. Repair: lognormal (Schroeder & Gibson 2006, read), mean 5 min assumed (a "
        "server reboot: firmware, hypervisor, parent).",
    )
    parent_hang: Process = field(
        {"mtbf": "365d", "repair": "exponential", "mttr": "2min"},
        description="Parent hangs (descheduled until a watchdog or an operator restarts it: "
        "parent_hang). Assumed: one a year, 2 min to detect and recover.",
    )
    parent_patch: Process = field(
        {"every": "30d", "window": "10min", "offset": "12d"},
        description="Planned parent reboots for updates (parent_crash for the window): "
        "monthly (Microsoft's monthly security update release, read); 10 min assumed "
        "(install and reboot).",
    )
    vsp: Process = field(
        {"failure": "weibull", "mtbf": "730d", "shape": WEIBULL_SHAPE, "mttr": "5min"},
        description="VSP faults (storvsp, netvsp run in the parent's kernel: a fault "
        "bugchecks the parent, parent_crash). Assumed: every 2 years, shape and repair as "
        "parent_crash.",
    )
    parent_driver: Process = field(
        {"failure": "weibull", "mtbf": "340d", "shape": WEIBULL_SHAPE, "mttr": "5min"},
        description="Per device: the parent's physical driver faults and bugchecks the parent "
        "(parent_crash). Mean assumed from the 70 % driver share (see parent_crash).",
    )
    hv_driver: Process = field(
        {"failure": "weibull", "mtbf": "340d", "shape": WEIBULL_SHAPE, "mttr": "5min"},
        description="Per device with io_path hypervisor children: the hypervisor's own "
        "driver for it faults (hv_driver_crash) and every child on that device's "
        "hypervisor path stalls until it restarts. Assumed: the parent driver's rate (the "
        "same vendor's driver code), a reboot's repair.",
    )
    device: Process = field(
        {"mtbf": "33y", "repair": "lognormal", "mttr": "4h"},
        description="Per device: a hardware failure until the part is replaced (device_reset "
        "for the repair time). 3 %/year: disk replacement rates of 2-4 % (Schroeder & "
        "Gibson, FAST 2007; Pinheiro et al., FAST 2007: 1.7-8.6 %, read); servers' "
        "hardware repairs ~8 %/year, mostly disks (Vishwanath & Nagappan, SoCC 2010, "
        "read). Repair 4 h assumed (on-site replacement).",
    )
    vf: Process = field(
        {"every": "30d", "window": "10min", "offset": "11d"},
        description="Per direct child: VF revoked for host servicing or live migration "
        "(vf_revoke: routed meanwhile). Assumed: monthly, the day before the patch "
        "window, 10 min.",
    )
    lp: Process = field(
        {"mtbf": "50y", "repair": "lognormal", "mttr": "4h"},
        description="Per LP: taken offline after machine-check errors until serviced "
        "(lp_offline). Assumed: 2 %/year per LP, 4 h.",
    )
    child: Process = field(
        {"failure": "weibull", "mtbf": "120d", "shape": WEIBULL_SHAPE, "mttr": "3min"},
        description="Per child: guest OS crash and reboot (child_crash for the repair). "
        "Shape: Schroeder & Gibson 2006; mean and repair assumed.",
    )

    def processes(self) -> dict[str, Process]:
        """component → its process, in :data:`COMPONENTS` order."""
        return {name: getattr(self, name) for name in COMPONENTS}
