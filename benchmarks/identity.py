"""Identity check: a refactor leaves simulation results exactly as they were.

Runs a fixed set of cases through the public API only (``sim.load`` and ``sim.run``) and
either saves their ``requests``, ``summary`` and ``cpu`` frames as a reference, or runs
them again and compares with a saved reference exactly: same columns in the same order,
same dtypes, same index, same values (``pandas.testing.assert_frame_equal`` with
``check_exact=True``; NaN equals NaN). Save a reference before a change, check after it::

    python benchmarks/identity.py save DIR     # writes DIR/<case>/{requests,summary,cpu}.parquet
    python benchmarks/identity.py check DIR    # one line per case; exit 1 if any differs
    python benchmarks/identity.py check DIR --only lit-   # cases whose name contains "lit-"

Cases
    ``baseline``, ``parent-failure``, ``overcommit`` (``scenarios/*.yaml``); ``val-<name>``
    for every theory case ``scenarios/validation/*.yaml``; ``lit-<name>/<variant>`` for
    every literature case ``scenarios/validation/literature/*.yaml`` that has a scenario
    (a known gap without one has nothing to run). A literature case whose two
    measure sides run different scenarios (a ``set`` of overrides on one side) gives two
    cases: ``base`` (no overrides) and one named after its overrides, e.g.
    ``lit-deferred-flush-recovery/host.iommu.native=deferred``.

Older references
    A reference saved before a request column was renamed (:data:`RENAMED`: the latency
    components gained their ``_us``) is read under today's names; values are compared as
    they are.

Validation files
    ``sim.load`` takes scenario files only; a validation file holds its scenario under its
    ``scenario`` key beside the validator's own keys (case, theory, expected, measure...).
    That mapping is written alone to a temporary YAML file, which goes through
    ``sim.load`` like any scenario file, with the measure side's ``set`` as overrides.

Size
    Every case runs for at most ``DURATION_US`` of simulated time (its own duration if
    shorter), with its warm-up scaled by the same factor, ``REPLICATIONS`` replications
    and the root seed ``SEED``. The cheap scheduler cases run their own duration
    (``OWN_DURATION``); the parent-failure run's crash and retransmission timers are
    scaled into the shorter run by extra overrides (``EXTRA``).

Compared frames
    ``requests``, ``summary`` and ``cpu`` as ``sim.run`` returns them, each passed
    through a Parquet round trip before comparing, so the saved and the fresh frame have
    gone through the same conversion. No column of these frames depends on wall-clock
    time (the wall time is only in the result's ``meta``), so none is dropped.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pandas.testing import assert_frame_equal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sim  # noqa: E402
from sim.model.metrics import COMPONENTS  # noqa: E402

SCENARIOS = ("baseline", "parent-failure", "overcommit")
THEORY_GLOB = "scenarios/validation/*.yaml"
LITERATURE_GLOB = "scenarios/validation/literature/*.yaml"
FRAMES = ("requests", "summary", "cpu")
KEYS = ("replication", "partition", "io_path", "vcpu", "category", "id")
"""Columns shown to say which row differs (those a frame has)."""

SEED = 42
REPLICATIONS = 2
DURATION_US = 100_000.0
"""Longest simulated time per replication, µs, except for the cases in ``OWN_DURATION``."""
OWN_DURATION = frozenset({
    # scheduler cases: a vCPU that sleeps ~100 ms between 20 µs bursts beside hogs with
    # 30 ms time slices; a few thousand events per simulated second, so they run their
    # own 10-60 s (under a second of wall time each) to see hundreds of wake-ups
    "val-sched-wakeup-boost",
    "val-sched-wakeup-rr-k1",
    "val-sched-wakeup-rr-k3",
    "lit-wakeup-boost",
    "lit-wakeup-no-boost",
})  # fmt: skip
EXTRA: dict[str, dict[str, Any]] = {
    # the crash at 400 ms for 200 ms and the 200 ms retransmission timer, scaled by 1/10
    "parent-failure": {
        "faults[0].at": "40ms",
        "faults[0].duration": "20ms",
        "children[web-routed].io_policy.timeout": "20ms",
        "children[web-direct].io_policy.timeout": "20ms",
    },
}


@dataclass
class Case:
    """One run: a scenario file and the overrides that make it a case."""

    name: str
    path: Path
    overrides: dict[str, Any] = field(default_factory=dict)


def _variants(stem: str, path: Path, spec: Mapping[str, Any]) -> list[Case]:
    """The distinct runs of a literature case: one per distinct ``set`` of its sides."""
    measure = spec.get("measure") or {}
    sets: list[dict[str, Any]] = []
    for side in ("numerator", "denominator", "reference"):
        if isinstance(measure.get(side), dict):
            overrides = dict(measure[side].get("set") or {})
            if overrides not in sets:
                sets.append(overrides)
    if len(sets) <= 1:
        return [Case(f"lit-{stem}", path, sets[0] if sets else {})]
    cases = []
    for overrides in sets:
        label = ",".join(f"{k}={v}" for k, v in overrides.items()) or "base"
        cases.append(Case(f"lit-{stem}/{label}", path, overrides))
    return cases


def cases(tmp: Path) -> list[Case]:
    """Every case, in a fixed order; validation scenarios are written under ``tmp``."""
    found = [Case(name, ROOT / "scenarios" / f"{name}.yaml") for name in SCENARIOS]
    for pattern, prefix in ((THEORY_GLOB, "val"), (LITERATURE_GLOB, "lit")):
        for file in sorted(ROOT.glob(pattern)):
            spec = yaml.safe_load(file.read_text(encoding="utf-8"))
            scenario = spec.get("scenario")
            if not isinstance(scenario, dict):
                continue  # a known gap without a scenario: nothing to run
            path = tmp / prefix / f"{file.stem}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
            if prefix == "val":
                found.append(Case(f"val-{file.stem}", path))
            else:
                found.extend(_variants(file.stem, path, spec))
    for case in found:
        base = case.name.split("/")[0]
        case.overrides = {**case.overrides, **EXTRA.get(base, {})}
    return found


def _shortened(case: Case) -> sim.Scenario:
    """The case's scenario with its run cut to the case's limit, warm-up scaled alike."""
    full = sim.load(case.path, case.overrides)
    if case.name.split("/")[0] in OWN_DURATION:
        return full
    duration = min(full.run.duration, DURATION_US)
    warmup = full.run.warmup * duration / full.run.duration
    return sim.load(
        case.path,
        {**case.overrides, "run.duration": f"{duration!r}us", "run.warmup": f"{warmup!r}us"},
    )


def _roundtrip(frame: pd.DataFrame) -> pd.DataFrame:
    buf = io.BytesIO()
    frame.to_parquet(buf)
    buf.seek(0)
    return pd.read_parquet(buf)


def run_case(case: Case) -> dict[str, pd.DataFrame]:
    """The compared frames of one case, after a Parquet round trip."""
    result = sim.run(_shortened(case), replications=REPLICATIONS, seed=SEED)
    return {name: _roundtrip(getattr(result, name)) for name in FRAMES}


def _values_equal(a: pd.Series, b: pd.Series) -> pd.Series:
    same = (a == b).fillna(False).astype(bool)
    return same | (a.isna() & b.isna())


def describe(name: str, want: pd.DataFrame, got: pd.DataFrame) -> str | None:
    """None when ``got`` equals ``want`` exactly; otherwise what differs, in one line."""
    try:
        assert_frame_equal(got, want, check_exact=True)
    except AssertionError as exc:
        first_line = (str(exc).strip().splitlines() or ["frames differ"])[0]
    else:
        return None
    cols_w, cols_g = list(want.columns), list(got.columns)
    if cols_w != cols_g:
        missing = [c for c in cols_w if c not in cols_g]
        extra = [c for c in cols_g if c not in cols_w]
        if missing or extra:
            return f"{name}: columns differ: missing {missing}, extra {extra}"
        return f"{name}: column order differs: {cols_g}, reference {cols_w}"
    dtypes = [
        f"{c} {want[c].dtype}->{got[c].dtype}" for c in cols_w if want[c].dtype != got[c].dtype
    ]
    if dtypes:
        return f"{name}: dtypes differ: {', '.join(dtypes)}"
    if len(want) != len(got):
        return f"{name}: {len(got)} rows, reference {len(want)}"
    if not want.index.equals(got.index):
        return f"{name}: index differs"
    diff = {c: ~_values_equal(want[c].reset_index(drop=True), got[c].reset_index(drop=True))
            for c in cols_w}  # fmt: skip
    bad = [c for c in cols_w if diff[c].any()]
    if not bad:
        return f"{name}: {first_line}"
    row = min(int(diff[c].to_numpy().nonzero()[0][0]) for c in bad)
    keys = ", ".join(f"{k}={_at(want, k, row)}" for k in KEYS if k in cols_w and k not in bad)
    at_row = [c for c in bad if diff[c].iloc[row]]
    shown = ", ".join(f"{c} {_at(want, c, row)!r} -> {_at(got, c, row)!r}" for c in at_row[:4])
    return f"{name}: columns {bad} differ; first at row {row} ({keys}): {shown}"


def _at(frame: pd.DataFrame, column: str, row: int) -> Any:
    """The value at a row position, as a plain Python value."""
    return frame[column].iloc[row : row + 1].tolist()[0]


def save(out: Path, selected: Sequence[Case]) -> int:
    """Run the cases and write their frames under ``out``."""
    for case, frames, wall in _each(selected):
        where = out / case.name
        where.mkdir(parents=True, exist_ok=True)
        for name, frame in frames.items():
            frame.to_parquet(where / f"{name}.parquet")
        print(f"saved      {case.name}  ({wall:.1f} s)", flush=True)
    return 0


RENAMED = {
    **{c: f"{c}_us" for c in COMPONENTS},
    **{c: f"{c}_us" for c in ("network", "peer", "one_way")},
}
"""Request columns that were renamed since a reference may have been saved: the latency
components and a peer's parts gained the ``_us`` every time column carries."""


def _current_names(frame: pd.DataFrame) -> pd.DataFrame:
    """A reference frame with its columns under today's names (values untouched)."""
    old = {k: v for k, v in RENAMED.items() if k in frame.columns and v not in frame.columns}
    return frame.rename(columns=old) if old else frame


def check(ref: Path, selected: Sequence[Case]) -> int:
    """Run the cases and compare with the reference under ``ref``; 1 if any differs."""
    differing = 0
    for case, frames, wall in _each(selected):
        where = ref / case.name
        problems = []
        for name, frame in frames.items():
            file = where / f"{name}.parquet"
            if not file.is_file():
                problems.append(f"{name}: not in the reference ({file})")
                continue
            problem = describe(name, _current_names(pd.read_parquet(file)), frame)
            if problem:
                problems.append(problem)
        if problems:
            differing += 1
            print(f"DIFFERENT  {case.name}: {' | '.join(problems)}", flush=True)
        else:
            print(f"identical  {case.name}  ({wall:.1f} s)", flush=True)
    verdict = f"{differing} of {len(selected)} cases differ" if differing else "all identical"
    print(f"\n{verdict}")
    return 1 if differing else 0


def _each(selected: Sequence[Case]) -> Iterator[tuple[Case, dict[str, pd.DataFrame], float]]:
    for case in selected:
        t0 = time.perf_counter()
        frames = run_case(case)
        yield case, frames, time.perf_counter() - t0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run ``save`` or ``check``; the exit status."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("command", choices=("save", "check"))
    ap.add_argument("dir", type=Path, help="reference directory")
    ap.add_argument("--only", default="", help="only cases whose name contains this")
    args = ap.parse_args(argv)
    if args.command == "check" and not args.dir.is_dir():
        ap.error(f"no reference directory {args.dir}")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hvsim-identity-") as tmp:
        selected = [c for c in cases(Path(tmp)) if args.only in c.name]
        if not selected:
            ap.error(f"no case name contains {args.only!r}")
        status = save(args.dir, selected) if args.command == "save" else check(args.dir, selected)
    print(f"{len(selected)} cases in {time.perf_counter() - t0:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
