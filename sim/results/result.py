"""What a run or a comparison produced, as tidy frames, and reading it back.

:class:`Result` holds the frames of one run (:mod:`sim.results.tables` says what each
holds); :class:`Comparison` the same scenario run on several paths, paired. Both write
their directory through the one result store (:mod:`sim.results.store`: a manifest of
every file, a user's files never replaced or removed, nothing half-written) and are read
back by :func:`load_result` and :func:`load_comparison`, which read only files inside the
directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sim.results.store import inside, write_result, write_scenario_and_meta
from sim.scenario.schema import Scenario
from sim.scenario.source import load


@dataclass
class Result:
    """Everything one ``run`` produced, as tidy frames."""

    scenario: Scenario
    requests: pd.DataFrame
    summary: pd.DataFrame
    cpu: pd.DataFrame
    counters: pd.DataFrame
    resources: pd.DataFrame
    sched: pd.DataFrame = field(default_factory=pd.DataFrame)
    replications: pd.DataFrame = field(default_factory=pd.DataFrame)
    occupancy: pd.DataFrame = field(default_factory=pd.DataFrame)
    faults: pd.DataFrame = field(default_factory=pd.DataFrame)
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, out: str | Path, force: bool = False) -> Path:
        """Write the result directory through the store (:mod:`sim.results.store`);
        ``force`` writes beside files hvsim did not write. Returns its path."""
        write_result(out, "run", self.write, force=force)
        return Path(out)

    def write(self, where: Path) -> None:
        """Write every file of the result into the existing directory ``where``."""
        self.summary.to_csv(where / "summary.csv", index=False)
        self.replications.to_csv(where / "replications.csv", index=False)
        self.cpu.to_csv(where / "cpu.csv", index=False)
        self.counters.to_csv(where / "counters.csv", index=False)
        self.resources.to_csv(where / "resources.csv", index=False)
        self.sched.to_csv(where / "sched.csv", index=False)
        self.occupancy.to_csv(where / "occupancy.csv", index=False)
        if len(self.faults):
            self.faults.to_csv(where / "faults.csv", index=False)
        self.requests.to_parquet(where / "requests.parquet", index=False)
        write_scenario_and_meta(where, self.scenario, self.meta, "run")


RESULT_TABLES = (
    "summary", "replications", "cpu", "counters", "resources", "sched", "occupancy", "faults",
)  # fmt: skip


def load_result(where: str | Path) -> Result:
    """Read back a result directory written by :meth:`Result.save`."""

    where = Path(where)
    if not (where / "meta.json").is_file() or not (where / "summary.csv").is_file():
        raise FileNotFoundError(f"{where} is not an hvsim result directory (no summary.csv)")
    frames: dict[str, pd.DataFrame] = {}
    for name in RESULT_TABLES:
        f = where / f"{name}.csv"
        try:
            frames[name] = pd.read_csv(f) if f.is_file() else pd.DataFrame()
        except pd.errors.EmptyDataError:
            frames[name] = pd.DataFrame()
    if "warnings" in frames["summary"]:
        w = frames["summary"]["warnings"]  # all empty reads back as a float column
        frames["summary"]["warnings"] = w.astype(object).where(w.notna(), "")
    requests = pd.read_parquet(where / "requests.parquet")
    meta = json.loads((where / "meta.json").read_text(encoding="utf-8"))
    return Result(
        scenario=load(where / "scenario.resolved.yaml", read_traces=False),
        requests=requests,
        meta=meta,
        **frames,
    )


def load_comparison(where: str | Path) -> Comparison:
    """Read back a comparison directory written by :meth:`Comparison.save`."""
    where = Path(where)
    if not (where / "comparison.csv").is_file():
        raise FileNotFoundError(f"{where} is not an hvsim comparison (no comparison.csv)")
    meta = json.loads((where / "meta.json").read_text(encoding="utf-8"))
    paths = meta.get("paths")
    if not isinstance(paths, list) or not paths:
        raise ValueError(f"{where}/meta.json: no list of paths")
    for p in paths:
        if not isinstance(p, str) or "/" in p or not inside(where, p):
            raise ValueError(
                f"{where}/meta.json names {p!r}, which is not a directory inside {where}"
            )
    results = {p: load_result(where / p) for p in paths}
    first = results[meta["paths"][0]]
    return Comparison(
        first.scenario, list(meta["paths"]), results, pd.read_csv(where / "comparison.csv"), meta
    )


@dataclass
class Comparison:
    """The same scenario run with every I/O child on each of several paths, paired."""

    scenario: Scenario
    paths: list[str]
    results: dict[str, Result]
    table: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, out: str | Path, force: bool = False) -> Path:
        """Write ``comparison.csv``, ``meta.json``, the scenario and one full result per
        path, through the store (:mod:`sim.results.store`); returns its path."""

        def write(tmp: Path) -> None:
            self.table.to_csv(tmp / "comparison.csv", index=False)
            for path, res in self.results.items():
                (tmp / path).mkdir()
                res.write(tmp / path)
            write_scenario_and_meta(tmp, self.scenario, self.meta, "compare")

        write_result(out, "compare", write, force=force)
        return Path(out)
