"""Statistics across replications: Student-t confidence intervals and percentiles.

Replications are independent (each its own seed stream), so a metric computed once per
replication (a mean, a percentile, a throughput) is a sample of independent values, and its
confidence interval is the Student-t interval of their mean: ``m ± t(1-α/2, R-1)·s/√R``.
With one replication there is no interval (NaN).

Percentiles within a replication use linear interpolation of the empirical distribution
(NumPy's default); across replications the reported value is the mean of the
per-replication percentiles, which is what the interval is about.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as _st

CONFIDENCE = 0.95
PERCENTILES: dict[str, float] = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}


def t_interval(
    values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """``(mean, low, high)`` of the Student-t interval; NaN bounds for fewer than 2 values."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if x.size < 2:
        return m, math.nan, math.nan
    half = float(_st.t.ppf(0.5 + confidence / 2.0, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return m, m - half, m + half


def latency_stats(latencies: np.ndarray) -> dict[str, float]:
    """Mean and the standard percentiles of one replication's latencies (µs)."""
    if latencies.size == 0:
        return {"mean_us": math.nan, **{f"{k}_us": math.nan for k in PERCENTILES}}
    qs = np.percentile(latencies, list(PERCENTILES.values()))
    out = {"mean_us": float(latencies.mean())}
    out.update({f"{k}_us": float(q) for k, q in zip(PERCENTILES, qs, strict=True)})
    return out
