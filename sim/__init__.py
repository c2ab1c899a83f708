"""hvsim: a discrete-event simulator of a virtualized server.

Public API (DESIGN §1)::

    import sim
    scn = sim.load("scenarios/baseline.yaml")
    res = sim.run(scn, replications=5)      # res.requests, res.summary, res.cpu: DataFrames
    table = sim.validate()                  # model against queueing theory

``sim.compare``, ``sim.sweep`` and ``sim.capacity`` belong to the design but are not part
of this version; using them raises an ``AttributeError`` that says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Result", "Scenario", "ScenarioError", "__version__", "load", "run", "validate"]

if TYPE_CHECKING:
    from sim.experiment import Result
    from sim.scenario import Scenario, ScenarioError

_PLANNED = {
    "compare": "paired path comparison",
    "sweep": "parameter sweeps",
    "capacity": "SLO-driven capacity search",
}


def load(path: Any, overrides: Any = None) -> Scenario:
    """Load and validate a scenario file (``overrides``: ``{field.path: value}``)."""
    from sim.scenario import load as _load

    return _load(path, overrides)


def run(scenario: Any, replications: int | None = None, seed: int | None = None) -> Result:
    """Run a scenario (a :class:`Scenario` or a path) and return its :class:`Result`."""
    from sim.experiment import run as _run

    scn = scenario if not isinstance(scenario, str) and hasattr(scenario, "run") else load(scenario)
    return _run(scn, replications=replications, seed=seed)


def validate(cases: Any = None, replications: int | None = None) -> Any:
    """Run the validation cases; returns a DataFrame (case, expected, simulated, ci, pass)."""
    from sim.validate import validate as _validate

    return _validate(cases, replications=replications)


def __getattr__(name: str) -> Any:
    if name in _PLANNED:
        raise AttributeError(f"sim.{name} ({_PLANNED[name]}) is not available in this version")
    if name in ("Result",):
        from sim.experiment import Result

        return Result
    if name in ("Scenario", "ScenarioError"):
        from sim import scenario

        return getattr(scenario, name)
    raise AttributeError(f"module 'sim' has no attribute '{name}'")
