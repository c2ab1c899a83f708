"""Plots and reports of results.

:mod:`sim.report.plots` has the plot functions (tidy frames in, matplotlib figures out),
for notebooks and scripts; :mod:`sim.report.html` writes the self-contained
``report.html`` of a run, a comparison or a sweep (``hvsim report DIR``).
"""

from typing import Any

__all__ = ["cpu_breakdown", "latency_breakdown", "latency_cdf", "metric_vs_load", "occupancy"]


def __getattr__(name: str) -> Any:
    """The plot functions, imported on first use: the text tables of the command line
    (:mod:`sim.report.text`) live in this package too and need no matplotlib."""
    if name in __all__:
        from sim.report import plots

        return getattr(plots, name)
    raise AttributeError(f"module 'sim.report' has no attribute '{name}'")
