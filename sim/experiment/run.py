"""Running a scenario: ``R`` replications (replication ``r`` draws every stream from the
root seed with ``r`` in its spawn key, so replications are independent and the whole is
reproducible), then their tables (:func:`sim.results.tables.tabulate`)."""

from __future__ import annotations

import time
from collections.abc import Callable

from sim.model.host import simulate
from sim.results.result import Result
from sim.results.tables import tabulate
from sim.scenario.schema import Scenario


def run(
    scenario: Scenario,
    replications: int | None = None,
    seed: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> Result:
    """Simulate ``scenario`` ``replications`` times (default: the scenario's) → :class:`Result`;
    ``progress`` (if given) is called with the simulated µs done as the replications go
    (``replications × run.duration`` in all), results unchanged."""
    reps = scenario.run.replications if replications is None else replications
    if reps < 1:
        raise ValueError("replications must be at least 1")
    root = scenario.run.seed if seed is None else seed
    t0 = time.perf_counter()
    runs = [simulate(scenario, r, root, progress) for r in range(reps)]
    wall = time.perf_counter() - t0
    return tabulate(scenario, runs, root, wall)
