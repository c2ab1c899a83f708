"""The plot of a fitted stream against its trace (``hvsim fit --plot``; docs/design.md §3.4):
the gaps' distribution against the fitted arrival process's, the sizes' against the fitted
distribution's, and the arrivals per window over the trace against the fitted rate."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from sim.analysis.fit import Fit
from sim.scenario import distributions
from sim.scenario.traces import TraceData
from sim.scenario.workload import Burst

POINTS = 20_000
"""Draws of the fitted processes plotted (enough for smooth curves)."""


def _ccdf(ax: object, x: np.ndarray, label: str, style: str) -> None:
    x = np.sort(x)
    y = 1.0 - np.arange(len(x)) / len(x)
    ax.step(x, y, style, where="post", label=label)  # type: ignore[attr-defined]


def figure(fit: Fit, data: TraceData, seed: int = 1) -> Figure:
    """Three panels: gaps, sizes (complementary CDFs, log scales) and arrivals over time."""
    from sim.model.workloads import mmpp_gaps

    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    ax_gap, ax_size, ax_time = fig.subplots(1, 3)
    gaps = np.diff(data.t_us)
    _ccdf(ax_gap, gaps[gaps > 0], "trace", "k-")
    mean = 1e6 / fit.rate
    if fit.arrival == "mmpp" and fit.burst is not None:
        burst = Burst.model_validate(fit.burst)
        draw = mmpp_gaps(burst, fit.rate, rng)
        model = np.array([draw() for _ in range(POINTS)])
    elif fit.arrival == "deterministic":
        model = np.full(POINTS, mean)
    else:
        model = rng.exponential(mean, POINTS)
    _ccdf(ax_gap, model, f"fitted {fit.arrival}", "r--")
    ax_gap.set(xscale="log", yscale="log", xlabel="gap (µs)", ylabel="P(gap > x)")
    ax_gap.set_title("inter-arrival gaps")
    ax_gap.legend()
    if data.size is not None and fit.size is not None:
        _ccdf(ax_size, data.size.astype(float), "trace", "k-")
        dist = distributions.parse(fit.size, "size")
        _ccdf(ax_size, dist.draw(rng, POINTS), f"fitted {dist.name}", "r--")
        ax_size.set(xscale="log", xlabel="size (B)", ylabel="P(size > x)")
        ax_size.legend()
    else:
        ax_size.text(0.5, 0.5, "no size column", ha="center", va="center")
    ax_size.set_title(f"sizes: {fit.size_test[:60]}", fontsize=8)
    t = (data.t_us - data.t_us[0]) / 1e6
    bins = min(200, max(10, len(t) // 50))
    counts, edges = np.histogram(t, bins=bins)
    width = edges[1] - edges[0]
    ax_time.plot(edges[:-1], counts / width, "k-", lw=0.8, label="trace")
    ax_time.axhline(fit.rate, color="r", ls="--", label=f"fitted rate {fit.rate:.4g}/s")
    ax_time.set(xlabel="time in trace (s)", ylabel="arrivals/s")
    ax_time.set_title("load over the trace")
    ax_time.legend()
    return fig
