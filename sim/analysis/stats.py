"""Statistics across replications: Student-t confidence intervals and percentiles.

Replications are independent (each its own seed stream), so a metric computed once per
replication (a mean, a percentile, a throughput) is a sample of independent values, and its
confidence interval is the Student-t interval of their mean: ``m ± t(1-α/2, R-1)·s/√R``.
With one replication there is no interval (NaN).

Percentiles within a replication use linear interpolation of the empirical distribution
(NumPy's default); across replications the reported value is the mean of the
per-replication percentiles, which is what the interval is about.

Paired comparisons (:func:`paired`) take replication ``r`` of two configurations that
shared their random numbers and build the interval of the per-replication differences
and ratios (common random numbers; Law, *Simulation Modeling and Analysis*, ch. 10-11).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import stdtrit

from sim.scenario.columns import STANDARD_PERCENTILES

CONFIDENCE = 0.95
PERCENTILES: dict[str, float] = dict(STANDARD_PERCENTILES)
"""The percentiles every summary has (``run.percentiles`` adds others:
:func:`sim.scenario.columns.percentiles`)."""


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
    # the t quantile straight from scipy.special (what scipy.stats.t.ppf computes, to the
    # bit): importing scipy.stats would add half a second to every process's start
    half = float(stdtrit(x.size - 1, 0.5 + confidence / 2.0) * x.std(ddof=1) / math.sqrt(x.size))
    return m, m - half, m + half


def latency_stats(
    latencies: np.ndarray, percentiles: dict[str, float] | None = None
) -> dict[str, float]:
    """Mean and percentiles (default the standard ones; name → percentile, e.g. from
    :func:`sim.scenario.columns.percentiles`) of one replication's latencies (µs)."""
    which = PERCENTILES if percentiles is None else percentiles
    if latencies.size == 0:
        return {"mean_us": math.nan, **{f"{k}_us": math.nan for k in which}}
    qs = np.percentile(latencies, list(which.values()))
    out = {"mean_us": float(latencies.mean())}
    out.update({f"{k}_us": float(q) for k, q in zip(which, qs, strict=True)})
    return out


def paired(
    base: Sequence[float] | np.ndarray,
    other: Sequence[float] | np.ndarray,
    confidence: float = CONFIDENCE,
) -> dict[str, float]:
    """Paired comparison of two configurations over the same replications.

    Replication ``r`` of both ran with the same random numbers (common random numbers), so
    the per-replication differences ``other_r - base_r`` and ratios ``other_r / base_r``
    are the samples; their Student-t intervals are much narrower than those of the two
    means taken apart whenever the two runs are positively correlated, which CRN makes
    them.
    """
    b = np.asarray(base, dtype=float)
    o = np.asarray(other, dtype=float)
    if b.shape != o.shape:
        raise ValueError("paired samples must have the same length")
    ok = np.isfinite(b) & np.isfinite(o)
    diff, dlo, dhi = t_interval(o[ok] - b[ok], confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = o[ok] / b[ok]
    ratio, rlo, rhi = t_interval(ratios[np.isfinite(ratios)], confidence)
    return {
        "diff": diff,
        "diff_ci_low": dlo,
        "diff_ci_high": dhi,
        "ratio": ratio,
        "ratio_ci_low": rlo,
        "ratio_ci_high": rhi,
    }


MSER_BATCH = 5


def mser5(series: Sequence[float] | np.ndarray) -> tuple[int, bool]:
    """MSER-5 truncation point of an output series (White, 1997; White, Cobb & Spratt, WSC
    2000): batch means of 5 consecutive observations y_1..y_n; the truncation d (in batches)
    minimises MSER(d) = Σ_{i>d} (y_i − ȳ_d)² / (n − d)² over d < n/2.

    Returns ``(observations to drop, found)``; ``found`` is False when the minimum is at the
    edge of the first half (or the series has fewer than 10 batches): the run did not reach
    a steady state that MSER can see, and the caller should say so.
    """
    x = np.asarray(series, dtype=float)
    n = x.size // MSER_BATCH
    if n < 10:
        return 0, False
    y = x[: n * MSER_BATCH].reshape(n, MSER_BATCH).mean(axis=1)
    # suffix sums give every tail's mean and squared deviations at once
    s1 = np.cumsum(y[::-1])[::-1]
    s2 = np.cumsum((y * y)[::-1])[::-1]
    m = np.arange(n, 0, -1, dtype=float)  # tail lengths n - d
    sse = s2 - s1 * s1 / m
    mser = sse / (m * m)
    half = n // 2
    d = int(np.argmin(mser[: half + 1]))
    # a minimum at the edge of the searched half means the transient may go on
    return d * MSER_BATCH, d < half - 1
