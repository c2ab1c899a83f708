"""Service-level objectives: a small grammar, read and never evaluated.

An SLO is clauses joined by ``and``: ``mean`` or any percentile (``p50``, ``p95``, ``p99``,
``p99.9`` or ``p999``, ``p99.99``: :mod:`sim.scenario.columns`) ``<=`` a time, and
``throughput >=`` a bit rate (``20Gbps``, ``3GB/s``) or a request rate (``20k/s``). A bad
one is a :class:`SloError` whose text is one line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from sim.scenario import units
from sim.scenario.columns import percentile_column

LATENCY = {"mean": "mean_us", "p50": "p50_us", "p90": "p90_us", "p99": "p99_us", "p999": "p999_us"}
"""Latency metrics an SLO may bound, and their summary columns."""


class SloError(ValueError):
    """An SLO expression that cannot be read; ``str()`` is the one line to show."""


# ---------------------------------------------------------------------------------------
# The SLO
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Clause:
    """One clause of an SLO: ``metric`` (a summary column) ``op`` ``value`` (internal
    units: µs, requests/s or bit/s)."""

    metric: str
    op: str
    value: float
    text: str

    @property
    def upper(self) -> bool:
        """A bound from above (latency): fails as the load grows."""
        return self.op == "<="

    def met(self, low: float, high: float) -> bool:
        """Whether an estimate with 95 % interval ``[low, high]`` meets the clause."""
        bound = high if self.upper else low
        if not math.isfinite(bound):
            return False
        return bound <= self.value if self.upper else bound >= self.value

    def margin(self, value: float) -> float:
        """How far ``value`` is inside the clause, as a share of the target (< 0: out)."""
        if not self.value:
            return math.inf
        return (
            (self.value - value) / self.value if self.upper else (value - self.value) / self.value
        )

    def show(self, value: float) -> str:
        """``value`` in the clause's unit."""
        if self.metric.endswith("_us"):
            return units.format_time(value)
        if self.metric == "throughput_bps":
            return units.format_bitrate(value)
        return units.format_rate(value)


_CLAUSE = re.compile(r"^\s*([A-Za-z0-9_.]+)\s*(<=|>=|=<|=>|<|>|==|=)\s*(.*?)\s*$")


def parse_slo(text: str) -> list[Clause]:
    """Read an SLO such as ``p99<=500us and throughput>=20Gbps`` (module docstring);
    :class:`SloError` with a one-line message when it cannot."""
    if not isinstance(text, str) or not text.strip():
        raise SloError("the SLO is empty; write e.g. p99<=500us")
    text = " ".join(text.split())  # one line, whatever whitespace it came with
    clauses = []
    for part in re.split(r"\s+and\s+", text, flags=re.IGNORECASE):
        m = _CLAUSE.match(part)
        if not m or not m.group(3):
            raise SloError(
                f"cannot read '{part.strip()}': write METRIC<=VALUE or throughput>=VALUE, "
                "e.g. p99<=500us, joined by 'and'"
            )
        name, op, raw = m.group(1).lower(), m.group(2), m.group(3)
        metric = LATENCY.get(name) or _percentile(name)
        if metric:
            if op != "<=":
                raise SloError(f"'{part.strip()}': a latency target is an upper bound, use <=")
            try:
                value = units.parse_time(raw)
            except units.UnitError as exc:
                raise SloError(f"'{part.strip()}': {exc}") from None
            if value <= 0:
                raise SloError(f"'{part.strip()}': the target must be positive")
            clauses.append(Clause(metric, op, value, part.strip()))
        elif name == "throughput":
            if op != ">=":
                raise SloError(f"'{part.strip()}': a throughput target is a lower bound, use >=")
            metric, value = _throughput(raw, part.strip())
            clauses.append(Clause(metric, op, value, part.strip()))
        else:
            raise SloError(
                f"'{part.strip()}': unknown metric '{m.group(1)}' "
                f"(use mean, a percentile such as p50, p95, p99, p99.9 or p99.99, or "
                "throughput)"
            )
    return clauses


def _percentile(name: str) -> str | None:
    """The summary column of a percentile named in an SLO (``p95`` → ``p95_us``), or None
    when ``name`` is not one."""
    if not name.startswith("p") or not name[1:2].isdigit():
        return None
    try:
        return percentile_column(name)
    except ValueError as exc:
        raise SloError(str(exc)) from None


def _throughput(raw: str, clause: str) -> tuple[str, float]:
    try:
        return "throughput_bps", units.parse_bitrate(raw)
    except units.UnitError:
        pass
    try:
        return "throughput_rps", units.parse_rate(raw)
    except units.UnitError:
        raise SloError(
            f"'{clause}': '{raw}' is neither a bit rate (e.g. 20Gbps, 3GB/s) nor a request "
            "rate (e.g. 20k/s)"
        ) from None
