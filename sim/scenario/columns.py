"""Column names of the result tables, from one scheme (docs/outputs.md, Column names).

A quantity's unit is the suffix of its name (``_us``, ``_rps``, ``_bps``, ``_bytes``);
shares and counts have none. A latency percentile is ``p`` and its digits without the
dot, the first two being the integer part: ``p50``, ``p95``, ``p999`` (99.9),
``p9999`` (99.99); its column is that name with ``_us``. The names live here, at the
bottom of the layers, so that the scenario (``run.percentiles``), the tables, SLOs and the
report read them from one place.
"""

from __future__ import annotations

import re

STANDARD_PERCENTILES: dict[str, float] = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}
"""The percentiles every summary has."""

_DOTTED = re.compile(r"p([0-9]{1,2})\.([0-9]{1,6})")
_PLAIN = re.compile(r"p([0-9]{1,8})")


def parse_percentile(name: str) -> tuple[str, float]:
    """``(canonical name, percentile)`` of ``p95``, ``p99.9``, ``p999``, ``p99.99``...;
    :class:`ValueError` (one line) for anything else or a percentile outside (0, 100)."""
    text = str(name).strip().lower()
    m = _DOTTED.fullmatch(text)
    if m:
        whole, frac = m[1], m[2].rstrip("0")
    else:
        m = _PLAIN.fullmatch(text)
        if not m:
            raise ValueError(f"'{name}' is not a percentile: write e.g. p95, p99.9 or p999")
        digits = m[1]
        whole, frac = digits[:2], digits[2:]
        if frac.endswith("0"):  # p100, p500: not a percentile in this scheme
            raise ValueError(f"'{name}' is not a percentile: write e.g. p10, p95 or p99.9")
    value = float(f"{int(whole)}.{frac or 0}")
    if not 0 < value < 100:
        raise ValueError(f"'{name}': a percentile lies strictly between p0 and p100")
    canonical = f"p{int(whole):02d}{frac}" if int(whole) >= 10 else f"p{int(whole)}{frac}"
    if int(whole) < 10 and frac:
        raise ValueError(f"'{name}': write a percentile below 10 without decimals (e.g. p5)")
    return canonical, value


def percentile_column(name: str) -> str:
    """The summary column of a percentile: ``p95`` → ``p95_us``, ``p99.99`` → ``p9999_us``."""
    return f"{parse_percentile(name)[0]}_us"


def percentiles(extra: list[str] | tuple[str, ...] = ()) -> dict[str, float]:
    """The standard percentiles and ``extra`` ones (``run.percentiles``), by canonical
    name, in increasing order."""
    out = dict(STANDARD_PERCENTILES)
    for name in extra:
        canonical, value = parse_percentile(name)
        out[canonical] = value
    return dict(sorted(out.items(), key=lambda kv: kv[1]))


def is_percentile_column(column: str) -> bool:
    """Whether ``column`` is a latency percentile's (``p95_us``)."""
    return re.fullmatch(r"p[0-9]+_us", column) is not None
