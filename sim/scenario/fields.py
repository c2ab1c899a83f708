"""Field types of the scenario schema: values with units, distributions, names, their
physical bounds, and the base model every section derives from.

Internal units after loading: time µs (float), size bytes (int), bit rates bit/s, rates
per second. Costs given in cycles are converted with ``host.clock`` (passed to the
validators as context).

Bounds: every quantity has physical limits, each written once as a :class:`Bound` (the
limits as a scenario writes them and the reason) beside the field or type it limits. A
value beyond one is refused with the reason, and ``hvsim schema`` shows it under
``bounds``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import core_schema

from sim.scenario import distributions, units
from sim.scenario.distributions import Distribution

MAX_FILE_BYTES = 4 * 1024 * 1024
DEFAULT_CLOCK_GHZ = 2.5


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
LONGEST = "longer than 1e9s (31 years), the most a scenario may give"


def _time(value: Any, info: ValidationInfo) -> float:
    ctx = info.context or {}
    try:
        us = units.parse_time(value, clock_ghz=ctx.get("clock_ghz", DEFAULT_CLOCK_GHZ))
    except units.UnitError as exc:
        raise ValueError(str(exc)) from None
    if us > MAX_TIME_US:
        raise ValueError(f"{units.show(value)} is {LONGEST}")
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
            raise ValueError(f"{what} is {LONGEST}")
        return dist

    return check


@dataclass(frozen=True)
class Bound:
    """Physical limits of a quantity, as a scenario writes them (``"68B"``, ``"1.6Tbps"``;
    None: no limit on that side) and why. As metadata of a field type
    (``Annotated[Size, Bound(...)]``) it refuses a value outside them with ``why``, and
    adds them to the JSON Schema under ``bounds``. A distribution is held by its mean,
    its largest value when it has one, and its smallest when it is constant or empirical
    (a continuous distribution may draw below its lower limit: sizes are rounded up to
    1 B, times are non-negative)."""

    parse: Callable[[Any], float]
    low: str | None
    high: str | None
    why: str

    @functools.cached_property
    def limits(self) -> tuple[float | None, float | None]:
        """(low, high) in internal units."""
        low = None if self.low is None else self.parse(self.low)
        return low, None if self.high is None else self.parse(self.high)

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            return f"{self.low} to {self.high}: {self.why}"
        limit = f"at least {self.low}" if self.high is None else f"at most {self.high}"
        return f"{limit}: {self.why}"

    def check(self, value: Any) -> Any:
        if value is None:
            return value
        if isinstance(value, Distribution):
            top = value.largest if math.isfinite(value.largest) else value.mean
            bottom = value.mean
            if value.name == "empirical":
                bottom = float(min(value.params["values"]))
            what = "" if value.is_constant else "a value or the mean "
        else:
            top = bottom = float(value)
            what = ""
        low, high = self.limits
        if high is not None and top > high:
            raise ValueError(f"{what}must be at most {self.high}: {self.why}")
        if low is not None and bottom < low:
            raise ValueError(f"{what}must be at least {self.low}: {self.why}")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> Any:
        return {**handler(schema), "bounds": str(self)}


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
    Bound(
        units.parse_rate,
        None,
        "1G/s",
        "no device or I/O stack completes more than ~1e9 requests/s (the fastest NICs "
        "handle a few hundred million packets/s)",
    ),
]
"""Requests per second (a stream's rate, a drive's command rate)."""
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
COST = Bound(
    units.parse_time,
    None,
    "1s",
    "a CPU cost or device latency of one step of one request; 1 s is 2.5e9 cycles at the "
    "default clock, and exits, drivers and stacks take microseconds",
)
Cost = Annotated[Time, COST]
"""A CPU cost (or a device's latency) per request, per page or per exit."""
CostDist = Annotated[TimeDist, COST]
"""A CPU cost per request as a time or a distribution of times."""
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
Name = Annotated[str, Field(pattern=NAME_RE.pattern)]
MEMORY_RATE = Bound(
    units.parse_bitrate,
    "1bps",
    "1TB/s",
    "above any PCIe link a drive attaches by (PCIe 7.0 x16: 256 GB/s each way) and any "
    "server's memory bandwidth; a model divides by it",
)
"""Limits of the rates data moves at inside the host (a drive's transfer, a memory copy)."""

REQUEST_SIZE = Bound(
    units.parse_size,
    "1 B",
    "64 MiB",
    "a request moves at least one byte; one I/O is at most 64 MiB (Linux splits larger "
    "ones at the block layer's max_sectors_kb, a few MiB; a TSO send is at most 64 KiB)",
)
DEFAULT_REQUEST_BUDGET = 10_000_000
"""Default ``run.request_budget``: a run holds about 1 KB per request until it is written
(its rows in columns, then the requests table), so 1e7 requests take about 10 GB, and 5-6
minutes at ~30k requests/s; under ``run.requests: none`` or ``sample N``, some 40 bytes a
request (docs/design.md §4)."""
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Weight = Annotated[int, Field(ge=1, le=65535)]
Cap = Annotated[float, Field(ge=0.0, le=102400.0)]
WEIGHT_HELP = "Credit scheduler weight (Xen default 256, read)."
CAP_HELP = "Credit scheduler cap in % of one LP (Xen semantics: 50 = half an LP); 0 = none."
PIN_HELP = "LP of each vCPU (hard affinity); required for every partition under policy pinned."


def not_yet(allowed: tuple[str, ...], planned: Mapping[str, str]) -> Any:
    """Reject values that are part of the design but not modelled in this version."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and value in planned:
            raise ValueError(
                f"'{value}' is not modelled in this version ({planned[value]}); "
                f"use one of: {', '.join(allowed)}"
            )
        return value

    return BeforeValidator(check)


def field(*args: Any, **kwargs: Any) -> Any:
    """``pydantic.Field`` typed loosely: defaults are written as unit strings ("30ms") that
    the field's validator converts, which a static checker cannot know."""
    return Field(*args, **kwargs)


class Model(BaseModel):
    # strict: YAML's `true` is not 1 core, 4.5 is not 4 vCPUs (values with units are parsed
    # by their own validators before the type check)
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True, strict=True)
