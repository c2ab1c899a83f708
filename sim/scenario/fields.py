"""Field types of the scenario schema: values with units, distributions, names, and the
base model every section derives from.

Internal units after loading: time µs (float), size bytes (int), bit rates bit/s, rates
per second. Costs given in cycles are converted with ``host.clock`` (passed to the
validators as context).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
)

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
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
Name = Annotated[str, Field(pattern=NAME_RE.pattern)]
MAX_REQUEST_BYTES = 64 * 2**20
"""Largest request a stream may issue: one I/O (Linux splits larger ones at the block
layer's max_sectors_kb, a few MiB; a TSO send is at most 64 KiB)."""
DEFAULT_REQUEST_BUDGET = 10_000_000
"""Default ``run.request_budget``: a run holds about 1.3 KB per request until it is written
(records, then the requests table), so 1e7 requests take about 13 GB, and 5-6 minutes at
~30k requests/s."""
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
