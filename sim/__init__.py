"""hvsim: a discrete-event simulator of a virtualized server.

Public API (docs/design.md §1)::

    import sim
    scn = sim.load("scenarios/baseline.yaml")
    scn2 = sim.load(scn, {"run.duration": "200ms"})   # a copy with overrides
    res = sim.run(scn, replications=5)      # res.requests, res.summary, res.cpu: DataFrames
    table = sim.validate()                  # model against queueing theory

    sim.compare(scn, paths=["routed", "direct"])   # paired comparison table
    frame = sim.sweep("scenarios/load-sweep.yaml", workers=2)   # tidy frame of a study
    frame = sim.load_study("results/load")          # a finished study, back
    table = sim.capacity(scn, "p99<=500us", paths=["routed", "direct"])  # per path
    est = sim.analytic(scn)                 # queueing-network estimate: .children, .stations
    av = sim.availability(scn, slo="p99<=1ms")  # per design: .table, .blast, .states
    f = sim.fit("scenarios/traces/db-blk.csv")  # a stream fitted to a trace: f.yaml()

The package is layered along the flow *scenario → model → analysis → results →
experiment → report* (docs/design.md §2): :mod:`sim.scenario`, :mod:`sim.model`,
:mod:`sim.analysis`, :mod:`sim.results`, :mod:`sim.experiment`, :mod:`sim.report`,
:mod:`sim.cli`. Each function here imports its room on first use, so ``import sim`` is
light.
"""

from __future__ import annotations

import importlib.metadata
from typing import TYPE_CHECKING, Any

try:
    __version__ = importlib.metadata.version("hvsim")
except importlib.metadata.PackageNotFoundError:  # run from a source tree
    __version__ = "unknown"

__all__ = [
    "Result",
    "Scenario",
    "ScenarioError",
    "__version__",
    "analytic",
    "availability",
    "capacity",
    "compare",
    "fit",
    "load",
    "load_study",
    "run",
    "sweep",
    "validate",
]

if TYPE_CHECKING:
    from sim.results.result import Result
    from sim.scenario import Scenario, ScenarioError


def load(scenario: Any, overrides: Any = None) -> Scenario:
    """Load and validate a scenario file, or copy a :class:`Scenario`, with ``overrides``
    (``{field.path: value}``) applied and everything checked again."""
    from sim.scenario import Scenario, replace
    from sim.scenario import load as _load

    if isinstance(scenario, Scenario):
        return replace(scenario, overrides or {}, source="overrides")
    return _load(scenario, overrides)


def _scenario(scenario: Any) -> Scenario:
    """A :class:`Scenario` as given, or loaded from a path."""
    from sim.scenario import Scenario

    return scenario if isinstance(scenario, Scenario) else load(scenario)


def availability(scenario: Any, **kwargs: Any) -> Any:
    """Availability, SLO-violation minutes a year and p99 per state per design, from the
    scenario's failure and repair processes (the two-level estimate of
    :func:`sim.experiment.availability.estimate`, whose keywords it takes: ``paths``,
    ``slo``, ``years``, ``runs``, ``replications``, ``seed``)."""
    from sim.experiment.availability import estimate

    return estimate(_scenario(scenario), **kwargs)


def run(
    scenario: Any, replications: int | None = None, seed: int | None = None, workers: int = 1
) -> Result:
    """Run a scenario (a :class:`Scenario` or a path) and return its :class:`Result`; its
    replications in up to ``workers`` processes (the same result for any number)."""
    from sim.experiment.run import run as _run

    return _run(_scenario(scenario), replications=replications, seed=seed, workers=workers)


def compare(
    scenario: Any,
    paths: Any = ("routed", "direct"),
    replications: int | None = None,
    seed: int | None = None,
    workers: int = 1,
) -> Any:
    """Run a scenario with every I/O child on each path, paired (common random numbers);
    returns the comparison table (a DataFrame: per child, metric and path, the value with
    its CI and the paired difference and ratio to the first path with theirs). For the
    full results per path, use :func:`sim.experiment.compare.compare`."""
    from sim.experiment.compare import compare as _compare

    return _compare(
        _scenario(scenario), paths, replications=replications, seed=seed, workers=workers
    ).table


def sweep(
    spec: Any,
    workers: int = 1,
    scheduler: str | None = None,
    out: Any = None,
    executor: str = "auto",
    allow_outside: bool = False,
) -> Any:
    """Run a sweep (a sweep file path or a sweep mapping) and return its tidy frame: one
    row per point × replication × child, with the grid values as columns. Finished points
    already in the study directory are not computed again. A sweep file's ``scenario``
    must be inside the sweep file's folder tree unless ``allow_outside``."""
    from sim.experiment.study import load_study, load_sweep, make_sweep, run_sweep

    sw = make_sweep(spec) if isinstance(spec, dict) else load_sweep(spec, allow_outside)
    report = run_sweep(sw, out, workers=workers, scheduler=scheduler, executor=executor)
    return load_study(report.out, report.verified)


def load_study(out: Any) -> Any:
    """The tidy frame of a finished (or partly finished) study directory."""
    from sim.experiment.study import load_study as _load_study

    return _load_study(out)


def capacity(scenario: Any, slo: str, **kwargs: Any) -> Any:
    """The largest load (or number of children) meeting ``slo`` per path, as a frame (one
    row per path); the whole search (points, plot, ``save``) is
    :func:`sim.experiment.capacity.search`."""
    from sim.experiment.capacity import search

    return search(_scenario(scenario), slo, **kwargs).table


def analytic(scenario: Any) -> Any:
    """The analytic estimate of a scenario (:func:`sim.analysis.analytic.estimate`): each
    path as an open queueing network of the scenario's own costs, giving every child's
    mean latency in the simulation's components (``.children``), every station's
    utilisation (``.stations``) and the stages of every path (``.stages``), at once."""
    from sim.analysis.analytic import estimate

    return estimate(_scenario(scenario))


def fit(trace: Any, time_unit: str | None = None, size_unit: str | None = None) -> Any:
    """Fit a stream to a trace (a CSV or Parquet file's path, or a
    :class:`~sim.scenario.traces.TraceData`): rate, op mix, size distribution with its
    goodness of fit, MMPP bursts when Poisson is rejected (:mod:`sim.analysis.fit`).
    ``.yaml()`` is the stream section to paste into a scenario, ``.stream()`` the same as
    data; :func:`sim.report.fitplot.figure` plots the fit against the data."""
    from sim.analysis.fit import fit as _fit
    from sim.scenario.traces import TraceData, read_trace

    data = trace if isinstance(trace, TraceData) else read_trace(trace, time_unit, size_unit)
    return _fit(data)


def validate(cases: Any = None, replications: int | None = None) -> Any:
    """Run the validation cases; returns a DataFrame (case, expected, simulated, ci, pass)."""
    from sim.experiment.validate import validate as _validate

    return _validate(cases, replications=replications)


def __dir__() -> list[str]:
    return sorted(__all__)


def __getattr__(name: str) -> Any:
    if name == "Result":
        from sim.results.result import Result

        return Result
    if name in ("Scenario", "ScenarioError"):
        from sim import scenario

        return getattr(scenario, name)
    raise AttributeError(f"module 'sim' has no attribute '{name}'")
