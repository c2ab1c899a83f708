"""Sweeps: a base scenario, a grid of overrides, replications; run anywhere, resumable.

A sweep file::

    study: load                          # results/<study>/ (default: the file's name)
    scenario: baseline.yaml              # relative to this file, or an inline mapping
    set: {run.duration: 500ms}           # overrides for every point (optional)
    grid:                                # every combination of these values is a point
      children[web-routed].streams[0].rate: [10k, 20k, 40k]
      host.cores: [8, 16]
      "parent.vcpus, host.scheduler.minroot": [2, 4]     # several paths, one value
    replications: 3                      # optional: the scenario's run.replications
    seed: 7                              # optional: the scenario's run.seed

The ``scenario`` path must stay inside the sweep file's folder tree (after ``..`` and
symbolic links are resolved), an absolute path too, unless the sweep is loaded with
``allow_outside`` (``hvsim sweep --allow-outside``): a sweep file from elsewhere cannot
make hvsim read (and quote in its errors) a file it was not given. The study is named as
a scenario is (1-64 letters, digits, ``_ . -``).

A scenario file may carry the same keys (but ``scenario``) in a ``sweep:`` section instead:
it is then the base scenario, and ``hvsim run`` ignores the section. ``run.seed`` and
``run.replications`` may be swept too (or fixed in ``set``): they then replace the
sweep's ``seed`` and ``replications`` for those points.

Every point is checked before anything runs. A point is keyed by the SHA-256 of its
resolved scenario, seed and replications: a point whose results are already in the study
directory (complete and readable) is never computed again, so a sweep that was stopped
resumes where it was, and adding values to a grid computes only the new points. All points
of a study share the root seed, so they see the same random numbers where they can
(common random numbers across points, as across paths in :mod:`sim.experiment.compare`).

Executors: ``serial``; ``processes`` (a local process pool); ``dask`` (a Dask distributed
``LocalCluster`` of N worker processes, or the scheduler at ``scheduler=ADDRESS``);
``auto`` is serial for one worker, the process pool for more, Dask with a scheduler's
address. On a pool or a Dask cluster each replication is a task, and each point's tables
and files a task after its replications. A local pool or cluster has at most as many
processes as there are replications to compute and cores (:func:`pool_size`). A
scheduler's address is checked before anything runs (:func:`check_scheduler`), and one
that does not answer within :data:`CONNECT_TIMEOUT` stops the sweep before anything is
written (:class:`ExecutorError`). A point's result depends only on its resolved
scenario and seed, so every executor gives the same numbers. A worker that sees the
study directory (serial, a local pool, a ``LocalCluster``) writes its point's three
files there itself, each through a temporary renamed into place, and returns only their
hashes; the workers of a scheduler (perhaps on other machines) return the summary rows
and the requests as Parquet bytes, which this process writes. This process checks the
hashes and writes, last, the point's ``points/<key>.json``; a file that no longer
matches its worker's hash fails the point. So the driving process of a local pool does
little more than wait: the work of a point, its files included, is spread over the
workers.

Study directory ``results/<study>/``::

    manifest.json              the result store's manifest (kind sweep; the study's files)
    study.json                 the sweep, its points, versions, timings of the last run
    summary/<key>.parquet      per point × replication × child: the point's key and index,
                               its grid values under short names, numeric in hvsim's units
                               (a Parquet dataset: read the folder)
    requests/<key>.parquet     every request of the point
    points/<key>.yaml          the resolved scenario of the point
    points/<key>.json          the point's overrides as written and their columns, seed,
                               replications, timing and the SHA-256 and size of its three
                               other files (written last: a point is complete when this
                               file and its files agree)
    failed/<key>.json          a point that raised: its error and traceback; the sweep went
                               on, and the next run tries the point again

The directory is opened through the result store (:mod:`sim.results.store`): a directory
holding anything hvsim did not write is refused (``force`` writes beside it), and every
file is written to a temporary name and renamed. A point is verified before it counts as
done and before :func:`load_study` reads it: its files must match the hashes in its
``points/<key>.json``, and each names its point inside (the ``point`` column of its
summary, the ``hvsim.point`` key-value metadata of its requests, the first line of its
scenario). A point whose files do not (flipped bytes, a file copied over from another
point, a truncated file) is computed again, and the sweep says how many
(:attr:`SweepReport.damaged`, ``study.json``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import sys
import time
import traceback
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from sim.results.store import (
    file_entry,
    hvsim_version,
    matches,
    open_directory,
    record,
    scenario_yaml,
    versions,
    write_file,
)
from sim.scenario import units
from sim.scenario.budget import work_estimate
from sim.scenario.errors import ScenarioError
from sim.scenario.fields import NAME_RE
from sim.scenario.reader import compose, read_text, resolve_inside
from sim.scenario.schema import Scenario
from sim.scenario.source import apply_override, from_dict, load

if TYPE_CHECKING:
    from sim.experiment.run import Parcel, Spool
    from sim.model.records import RunData

EXECUTORS = ("auto", "serial", "processes", "dask")
_SWEEP_KEYS = {"study", "scenario", "set", "grid", "replications", "seed"}


@dataclass
class Point:
    """One point of a sweep: its grid values, resolved scenario and key."""

    index: int
    values: dict[str, Any]
    scenario: Scenario
    seed: int
    replications: int
    key: str = ""

    def __post_init__(self) -> None:
        blob = json.dumps(
            {"scenario": self.scenario.to_dict(), "seed": self.seed, "reps": self.replications},
            sort_keys=True,
        )
        self.key = hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Sweep:
    """A validated sweep: its study name and every point."""

    study: str
    base: Scenario
    grid: dict[str, list[Any]]
    points: list[Point]
    spec: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------
# Reading and checking
# ---------------------------------------------------------------------------------------
def load_sweep(path: str | Path, allow_outside: bool = False) -> Sweep:
    """Read a sweep file (or a scenario with a ``sweep:`` section) and check every point.
    The ``scenario`` it names is read relative to the sweep file and must be inside the
    sweep file's folder tree unless ``allow_outside`` (``hvsim sweep --allow-outside``)."""
    file = str(path)
    p = Path(path)
    data, _ = compose(read_text(p, what="sweep", file=file), file)
    if not isinstance(data, dict):
        raise ScenarioError(file, "", "a sweep must be a mapping (key: value) at the top", 1)
    if "sweep" in data:  # a scenario with a sweep section
        spec = data.pop("sweep")
        if not isinstance(spec, dict):
            raise ScenarioError(file, "sweep", "must be a mapping")
        if "scenario" in spec:
            raise ScenarioError(file, "sweep.scenario", "the file itself is the scenario")
        data.setdefault("name", _name_of(p.stem))
        spec = {**spec, "scenario": data}
        if isinstance(data["name"], str):
            spec.setdefault("study", f"{data['name'][:58]}-sweep")
        where = "sweep."
    else:
        spec = data
        where = ""
    spec.setdefault("study", _name_of(p.stem))
    return make_sweep(spec, file, p.parent, where, allow_outside=allow_outside)


def _name_of(stem: str) -> str:
    """A file's stem as a name (1-64 letters, digits, '_', '.', '-'), for a default."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", stem).lstrip("_.-")[:64] or "sweep"


MAX_POINTS = 10_000
"""Points one sweep may have: each is checked and resolved before anything runs."""


def make_sweep(
    spec: Mapping[str, Any],
    file: str = "<sweep>",
    base_dir: Path | None = None,
    where: str = "",
    allow_outside: bool = False,
) -> Sweep:
    """Check a sweep given as data (``scenario`` may be a path or a mapping). With
    ``base_dir`` (the folder of the sweep file ``file``), a ``scenario`` path is read
    relative to it and must stay in its tree unless ``allow_outside``; without, the
    sweep is the caller's own data and its path is read as given."""
    unknown = sorted(set(spec) - _SWEEP_KEYS)
    if unknown:
        raise ScenarioError(file, f"{where}{unknown[0]}", f"unknown key (allowed: "
                            f"{', '.join(sorted(_SWEEP_KEYS))})")  # fmt: skip
    study = spec.get("study")
    if not isinstance(study, str) or not NAME_RE.fullmatch(study):
        shown = f" (got {units.show(study)})" if isinstance(study, str) else ""
        raise ScenarioError(file, f"{where}study", "a study is named by 1-64 letters, digits, "
                            f"'_', '.' or '-', starting with a letter or digit{shown}")  # fmt: skip
    raw = spec.get("scenario")
    if isinstance(raw, str):
        if base_dir is None:
            base = load(raw)
        else:
            path = resolve_inside(raw, base_dir, file, f"{where}scenario", allow_outside)
            base = load(path)
    elif isinstance(raw, dict):
        base = from_dict(dict(raw), source=file)
    else:
        raise ScenarioError(file, f"{where}scenario", "a scenario file path or mapping is needed")
    fixed = spec.get("set") or {}
    grid = spec.get("grid")
    if not isinstance(fixed, dict):
        raise ScenarioError(file, f"{where}set", "must be a mapping of field paths to values")
    if not isinstance(grid, dict) or not grid:
        raise ScenarioError(file, f"{where}grid", "must map field paths to lists of values")
    for k, v in grid.items():
        if not isinstance(v, list) or not v:
            raise ScenarioError(file, f"{where}grid.{k}", "must be a non-empty list of values")
    reps = spec.get("replications", base.run.replications)
    seed = spec.get("seed", base.run.seed)
    for name, v, hi in (("replications", reps, 1000), ("seed", seed, 2**63 - 1)):
        if isinstance(v, bool) or not isinstance(v, int) or not (name == "seed" or v >= 1):
            raise ScenarioError(file, f"{where}{name}", "must be a whole number")
        if not 0 <= v <= hi:
            raise ScenarioError(file, f"{where}{name}", f"must be between 0 and {hi}")
    paths = list(grid)
    count = math.prod(len(v) for v in grid.values())
    if count > MAX_POINTS:
        raise ScenarioError(file, f"{where}grid", f"{count:,} points; at most {MAX_POINTS:,} "
                            "in one sweep (split it into several studies)")  # fmt: skip
    points = []
    for i, combo in enumerate(itertools.product(*(grid[k] for k in paths))):
        values = dict(zip(paths, combo, strict=True))
        raw_scn = base.to_dict()
        try:
            for k, v in {**fixed, **values}.items():
                for path in (part.strip() for part in k.split(",")):
                    apply_override(raw_scn, path, v, file)
            # trace files: read from the folder of the scenario they were written in
            folder, outside, _ = base.trace_context
            scn = from_dict(raw_scn, source=file, base=folder, allow_outside=outside)
            overridden = {p.strip() for k in {**fixed, **values} for p in k.split(",")}
        except ScenarioError as exc:
            label = ", ".join(f"{k}={v}" for k, v in values.items())
            raise ScenarioError(file, f"{where}grid[{label}]", f"{exc.path}: {exc.message}"
                                if exc.path else exc.message) from None  # fmt: skip
        # run.seed / run.replications set by the grid or `set` win over the sweep's own
        point_seed = scn.run.seed if "run.seed" in overridden else int(seed)
        point_reps = scn.run.replications if "run.replications" in overridden else int(reps)
        points.append(Point(i, values, scn, point_seed, point_reps))
    keys = [p.key for p in points]
    if len(set(keys)) != len(keys):
        raise ScenarioError(file, f"{where}grid", "two points resolve to the same scenario")
    clean = {"study": study, "scenario": base.to_dict(), "set": fixed, "grid": grid,
             "replications": int(reps), "seed": int(seed)}  # fmt: skip
    return Sweep(study, base, {k: list(v) for k, v in grid.items()}, points, clean)


# ---------------------------------------------------------------------------------------
# Running one point (in any process)
# ---------------------------------------------------------------------------------------
def _where(p: Point) -> dict[str, Any]:
    """Where a point's trace files are read from (run_point's base, allow_outside): nothing
    for a point that replays none."""
    folder, outside, _ = p.scenario.trace_context
    return {"base": folder, "allow_outside": outside} if folder is not None or outside else {}


def run_point(
    scenario: dict[str, Any],
    seed: int,
    replications: int,
    base: str | None = None,
    allow_outside: bool = False,
    out: str | None = None,
    point: str | None = None,
    point_index: int = 0,
    values: Mapping[str, Any] | None = None,
    parcels: Sequence[Parcel] | None = None,
    runs: Sequence[RunData] | None = None,
) -> dict[str, Any]:
    """Simulate one point from plain data (trace files are read relative to ``base``, the
    folder of the scenario that names them). With ``out`` (a study directory this process
    can see: serial, a local pool or ``LocalCluster``), it writes the point's three files
    there itself (:func:`write_point_files`; ``point``: its key, ``point_index`` its
    index, ``values`` its grid values as written) and returns their hashes and sizes
    (``files``) and its grid columns (``columns``); without (a scheduler's workers,
    perhaps on other machines), it returns its summary table (``replications``, a frame
    of a few rows) and its requests as Parquet bytes (``requests_parquet``), which the
    driving process writes. The requests never cross a process boundary as a frame.
    ``runs`` (or ``parcels``): the point's replications in replication order, already
    simulated by other tasks (:func:`run_replication`; ``parcels``: by a local pool's
    workers, left in its spool, :class:`sim.experiment.run.Spool`); only the tables and
    files are made here, the same as from simulating them here."""
    from sim.experiment.run import Spool, run
    from sim.results.tables import tabulate

    t0 = time.perf_counter()
    scn = from_dict(scenario, source="point", base=base, allow_outside=allow_outside)
    if parcels is not None:
        runs = [Spool.receive(parcel) for parcel in parcels]
    if runs is None:
        res = run(scn, replications=replications, seed=seed)
        simulated = 0.0
    else:
        simulated = sum(r.wall_s for r in runs)
        res = tabulate(scn, list(runs), seed, simulated)
    payload: dict[str, Any] = {
        "requests": len(res.requests),
        "versions": res.meta["versions"],
        "warnings": res.meta["warnings"],
    }
    if out is not None and point is not None:
        payload["columns"], payload["files"] = write_point_files(
            Path(out), point, point_index, values or {}, scn, res.replications, res.requests
        )
    else:
        import io

        buf = io.BytesIO()
        res.requests.to_parquet(buf, index=False)
        payload["replications"] = res.replications
        payload["requests_parquet"] = buf.getvalue()
    payload["wall_s"] = simulated + time.perf_counter() - t0
    return payload


def run_replication(
    scenario: dict[str, Any],
    seed: int,
    replication: int,
    base: str | None = None,
    allow_outside: bool = False,
) -> RunData:
    """Simulate replication ``replication`` of a point from plain data (as
    :func:`run_point` takes it): its records, for the point's :func:`run_point` (``runs``)."""
    from sim.model.host import simulate

    scn = from_dict(scenario, source="point", base=base, allow_outside=allow_outside)
    return simulate(scn, replication, seed)


def write_point_files(
    out: Path,
    key: str,
    index: int,
    values: Mapping[str, Any],
    scenario: Scenario,
    replications: pd.DataFrame,
    requests: pd.DataFrame | bytes,
) -> tuple[dict[str, str], dict[str, Any]]:
    """Write the point ``key``'s summary, requests and scenario (:data:`POINT_FILES`)
    into the study directory ``out``, each through a temporary renamed into place and
    each naming its point inside: the summary is ``replications`` with the point's key,
    index and grid ``values`` (their short-named columns, numeric in hvsim's units where
    the field is). Returns the grid columns (key → column) and the files' manifest
    entries (relative path → hash and size). Where the point ran, or in the driving
    process for a scheduler's workers (``requests`` then its Parquet bytes)."""
    frame = replications.copy()
    frame.insert(0, "point", key)
    frame.insert(1, "point_index", index)
    columns = grid_columns(list(values), list(frame.columns))
    for i, (grid_key, short) in enumerate(columns.items()):
        frame.insert(2 + i, short, grid_value(scenario, grid_key))
    rels = [p.format(key=key) for p in POINT_FILES]
    summary, _, yaml_file = (out / r for r in rels)
    write_file(summary, lambda t: frame.to_parquet(t, index=False), clean=False, directory=out)
    _write_requests(out, key, index, requests)
    text = f"# hvsim point {key}\n" + scenario_yaml(scenario)
    write_file(yaml_file, text.encode("utf-8"), clean=False, directory=out)
    return columns, {r: file_entry(out / r) for r in rels}


def _requests_table(key: str, index: int, requests: pd.DataFrame | bytes) -> Any:
    """A point's requests as an Arrow table that names the point: its key and index in
    the first two columns of every row (``point``, ``point_index``) and in the metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(requests, bytes):
        table = pq.read_table(pa.BufferReader(requests))
    else:
        table = pa.Table.from_pandas(requests, preserve_index=False)
    n = table.num_rows
    table = table.add_column(0, "point", pa.array([key] * n, pa.string()))
    table = table.add_column(1, "point_index", pa.array([index] * n, pa.int64()))
    return table.replace_schema_metadata(
        {**(table.schema.metadata or {}), POINT_META: key.encode()}
    )


def _write_requests(out: Path, key: str, index: int, requests: pd.DataFrame | bytes) -> None:
    """Write ``requests/<key>.parquet`` (through a temporary renamed into place)."""
    import pyarrow.parquet as pq

    table = _requests_table(key, index, requests)
    path = out / POINT_FILES[1].format(key=key)
    write_file(path, lambda t: pq.write_table(table, t), clean=False, directory=out)


# ---------------------------------------------------------------------------------------
# The study directory
# ---------------------------------------------------------------------------------------
_KEY = re.compile(r"[0-9a-f]{16}")
POINT_META = b"hvsim.point"
"""The key-value metadata of a point's requests Parquet that names its point."""
POINT_FILES = ("summary/{key}.parquet", "requests/{key}.parquet", "points/{key}.yaml")
"""A point's files besides ``points/<key>.json``, which lists their hashes."""


def verify_point(out: str | Path, key: str) -> str:
    """Whether the point ``key`` is done in ``out``: ``""`` if its files are complete,
    match their hashes and are its own; ``"missing"`` if it never finished; otherwise
    what is wrong with them (the point is damaged)."""
    out = Path(out)
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        return "not a point key"
    meta = out / "points" / f"{key}.json"
    if not meta.is_file():
        return "missing"
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"points/{key}.json is unreadable"
    if not isinstance(info, dict) or info.get("status") != "ok" or info.get("key") != key:
        return f"points/{key}.json is not this point's"
    files = info.get("files")
    if not isinstance(files, dict):
        return f"points/{key}.json lists no hashes"
    for pattern in POINT_FILES:
        rel = pattern.format(key=key)
        entry = files.get(rel)
        if not isinstance(entry, dict) or not matches(out / rel, entry):
            return f"{rel} does not match its hash"
    try:
        import pyarrow.parquet as pq

        points = pd.read_parquet(out / "summary" / f"{key}.parquet", columns=["point"])["point"]
        if not len(points) or not (points == key).all():
            return f"summary/{key}.parquet is another point's"
        schema = pq.read_schema(out / "requests" / f"{key}.parquet")
        if (schema.metadata or {}).get(POINT_META) != key.encode():
            return f"requests/{key}.parquet is another point's"
        with open(out / "points" / f"{key}.yaml", encoding="utf-8") as f:
            if f.readline().strip() != f"# hvsim point {key}":
                return f"points/{key}.yaml is another point's"
    except Exception:  # a file that matches its hash but does not read: not ours either
        return "unreadable"
    return ""


def is_done(out: Path, point: Point) -> bool:
    """Whether the point's results are in ``out``, complete, verified and its own."""
    return verify_point(out, point.key) == ""


def _segments(path: str) -> list[str]:
    return re.findall(r"[^.\[\]]+(?:\[[^\]]*\])?", path)


def short_names(keys: Sequence[str], taken: Sequence[str] = ()) -> dict[str, str]:
    """A short column name for each grid key: the last part of its (first) field path,
    more parts where two keys would share one (``rate``, ``streams[0].rate``), prefixed
    ``grid.`` where it would take a column of the tables (``grid.replications``)."""
    firsts = {k: _segments(k.split(",")[0].strip()) for k in keys}
    out: dict[str, str] = {}
    for k, parts in firsts.items():
        for n in range(1, len(parts) + 1):
            name = ".".join(parts[-n:])
            others = [".".join(p[-n:]) for o, p in firsts.items() if o != k]
            if name not in others:
                break
        out[k] = f"grid.{name}" if name in taken or name in keys else name
    return {v: k for k, v in out.items()}


def grid_columns(keys: Sequence[str], taken: Sequence[str] = ()) -> dict[str, str]:
    """Per grid key, in the grid's order, its column in a study's tables
    (:func:`short_names`)."""
    names = {key: short for short, key in short_names(keys, taken).items()}
    return {key: names[key] for key in keys}


@dataclass(frozen=True)
class GridColumn:
    """One swept parameter as a study frame holds it: the grid ``key`` as the sweep wrote
    it, its ``column`` (the short name, numeric in hvsim's units where the field is), and
    ``written``, each column value → the value as the sweep wrote it (``120000.0`` →
    ``'120k'``), for labels."""

    key: str
    column: str
    written: Mapping[Any, str]

    def show(self, value: Any) -> str:
        """The value as the sweep wrote it (as it is, where the study does not say)."""
        return str(self.written.get(value, value))


def study_grid(frame: pd.DataFrame) -> list[GridColumn]:
    """The swept parameters of a frame from :func:`load_study`, in the grid's order."""
    return [GridColumn(**g) for g in frame.attrs.get("grid", [])]


def grid_value(scenario: Scenario, key: str) -> Any:
    """The value a grid key set in a resolved scenario, in hvsim's internal units (a rate
    in requests/s, a time in µs, a size in bytes): numeric where the field is, so that a
    study's grid column sorts and plots as numbers (``'120k' < '20k'`` as text)."""
    path = key.split(",")[0].strip()
    loc = apply_override(scenario.to_dict(), path, None, "grid")
    node: Any = scenario
    for part in loc:
        node = node[part] if isinstance(part, int) else getattr(node, str(part))
    return node if isinstance(node, int | float | str | bool) else str(node)


def _store(out: Path, point: Point, payload: dict[str, Any]) -> None:
    """Record a computed point: check the files its worker wrote against the hashes it
    gave (or write them here, for a scheduler's workers), then, last, write its
    ``points/<key>.json``. ``ValueError`` if a worker's file no longer matches."""
    if "files" in payload:  # written by the worker: checked before the point counts
        columns, entries = payload["columns"], payload["files"]
        for rel, entry in entries.items():
            if not matches(out / rel, entry):
                raise ValueError(f"{rel} does not match the hash its worker gave")
    else:  # a remote worker's summary and requests bytes: written here
        columns, entries = write_point_files(
            out, point.key, point.index, point.values, point.scenario,
            payload["replications"], payload["requests_parquet"],
        )  # fmt: skip
    meta = {
        "status": "ok",
        "key": point.key,
        "index": point.index,
        "values": point.values,
        "columns": columns,
        "seed": point.seed,
        "replications": point.replications,
        "requests": payload["requests"],
        "wall_s": round(payload["wall_s"], 3),
        "versions": payload["versions"],
        "warnings": payload["warnings"],
        "files": entries,
    }
    text = json.dumps(meta, indent=2, default=str)
    write_file(out / "points" / f"{point.key}.json", text.encode("utf-8"), clean=False,
               directory=out)  # fmt: skip
    (out / "failed" / f"{point.key}.json").unlink(missing_ok=True)


def _store_failure(out: Path, point: Point, error: BaseException) -> None:
    info = {
        "key": point.key,
        "index": point.index,
        "values": point.values,
        "error": f"{type(error).__name__}: {error}",
        "traceback": "".join(traceback.format_exception(error)),
    }
    text = json.dumps(info, indent=2, default=str)
    write_file(out / "failed" / f"{point.key}.json", text.encode("utf-8"), clean=False,
               directory=out)  # fmt: skip


# ---------------------------------------------------------------------------------------
# Executors
# ---------------------------------------------------------------------------------------
Outcome = tuple[Point, dict[str, Any] | None, BaseException | None]


def _args(p: Point, out: Path | None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """run_point's arguments for ``p``; with ``out`` its worker writes its files there."""
    where: dict[str, Any] = _where(p)
    if out is not None:
        where.update(out=str(out), point=p.key, point_index=p.index, values=p.values)
    return (p.scenario.to_dict(), p.seed, p.replications), where


def largest_first(points: Sequence[Point]) -> list[Point]:
    """``points`` in the order workers should take them: the most work first (the budget's
    estimate of what a replication simulates, times the replications; ties in index
    order), so that the last to finish is a small point, not a large one that started
    last (longest processing time first). The points and their results do not depend on
    the order."""

    def work(p: Point) -> float:
        return sum(work_estimate(p.scenario)[0].values()) * p.replications

    return sorted(points, key=lambda p: (-work(p), p.index))


def _serial(points: Sequence[Point], out: Path | None = None) -> Iterator[Outcome]:
    for p in points:
        args, kwargs = _args(p, out)
        try:
            yield p, run_point(*args, **kwargs), None
        except Exception as exc:
            yield p, None, exc


def _warm() -> None:
    """Import the simulator in a new worker process before its first point arrives."""
    import sim.experiment.run  # noqa: F401


def _processes(points: Sequence[Point], workers: int, out: Path | None = None) -> Iterator[Outcome]:
    """The points on a process pool, each replication a task of its own (its records left
    in a spool: :class:`sim.experiment.run.Spool`) and each point's tables and files a
    last task once all its replications are in (:func:`run_point` with ``parcels``): every
    worker has work to the end, however few the points, and the last wave is replications,
    not whole points. Tasks go in as workers free up, a point's last task before any
    replication not started, so that few points' records wait in the spool at a time.
    A replication that fails fails its point (once): its other replications are dropped."""
    from sim.experiment.run import Spool

    queue = [(p, r) for p in points for r in range(p.replications)][::-1]  # popped from the end
    with Spool() as spool, ProcessPoolExecutor(max_workers=workers, initializer=_warm) as pool:
        try:
            yield from _tasks(pool, spool, queue, workers, out)
        except BaseException:  # interrupted: what has not started never will
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _tasks(
    pool: ProcessPoolExecutor,
    spool: Spool,
    queue: list[tuple[Point, int]],
    workers: int,
    out: Path | None,
) -> Iterator[Outcome]:
    """:func:`_processes`' scheduling: ``queue`` holds the replications to simulate, the
    next at its end."""
    ready: list[Point] = []  # points whose replications are all in
    got: dict[str, dict[int, Parcel]] = {}
    failed: set[str] = set()
    running: dict[Future[Any], tuple[Point, int | None]] = {}
    while queue or ready or running:
        while len(running) < 2 * workers and (ready or queue):  # one waiting for each
            if ready:
                p = ready.pop(0)
                mine = got.pop(p.key)
                parcels = [mine[r] for r in range(p.replications)]
                args, kwargs = _args(p, out)
                future = pool.submit(run_point, *args, **{**kwargs, "parcels": parcels})
                running[future] = (p, None)
            else:
                p, rep = queue.pop()
                if p.key not in failed:
                    running[spool.submit(pool, p.scenario, rep, p.seed)] = (p, rep)
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in sorted(done, key=lambda f: running[f][0].index):
            p, r = running.pop(future)
            try:
                result: Any = future.result()
            except Exception as exc:
                if p.key not in failed:
                    yield p, None, exc
                if r is not None:  # its point's other replications are of no use
                    failed.add(p.key)
                    for parcel in got.pop(p.key, {}).values():
                        spool.discard(parcel)
                continue
            if r is None:  # the point's tables and files
                yield p, result, None
            elif p.key in failed:
                spool.discard(result)
            else:
                got.setdefault(p.key, {})[r] = result
                if len(got[p.key]) == p.replications:
                    ready.append(p)


class ExecutorError(RuntimeError):
    """The executor could not start (a scheduler that does not answer, Dask missing); the
    message is one line."""


CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a Dask scheduler to answer."""

SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
"""Schemes of the Dask scheduler addresses taken (without one: tcp, as Dask does)."""

_ADDRESS = re.compile(
    r"(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)"
    r":(?P<port>[0-9]{1,5})"
)


def check_scheduler(address: str) -> str:
    """``address`` if it has the form of a Dask scheduler's (``tcp://HOST:PORT``, or
    another of :data:`SCHEMES`), else ``ValueError``. Nothing is contacted."""
    m = _ADDRESS.fullmatch(address) if isinstance(address, str) else None
    if m is None or not 1 <= int(m["port"]) <= 65535 or (m["scheme"] or "tcp") not in SCHEMES:
        raise ValueError(
            f"{units.show(address)} is not a Dask scheduler address: give SCHEME://HOST:PORT "
            f"(e.g. tcp://10.0.0.5:8786; SCHEME one of {', '.join(SCHEMES)})"
        )
    return address


def pool_size(workers: int, tasks: int) -> int:
    """Processes a local pool or ``LocalCluster`` gets for ``tasks`` tasks (the
    replications to simulate): no more than the ``workers`` asked, the tasks, or the cores
    this process may run on (:func:`sim.experiment.run.cores`)."""
    from sim.experiment import run

    return max(1, min(workers, tasks, run.cores()))


def _dask_client(workers: int, scheduler: str | None) -> tuple[Any, Any]:
    """A Dask client (and the ``LocalCluster`` it started, without ``scheduler``)."""
    import logging

    try:
        import dask
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ExecutorError(
            "the dask executor needs Dask: pip install 'dask[distributed]'"
        ) from None
    # the cluster's own chatter (worker start-up, nanny shutdown) is not the user's concern
    for name in ("distributed", "distributed.nanny", "distributed.scheduler"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if scheduler:
        try:
            return Client(scheduler, timeout=CONNECT_TIMEOUT), None
        except OSError:  # refused or unreachable: Dask retries until the timeout
            raise ExecutorError(
                f"no Dask scheduler answered at {scheduler} within "
                f"{CONNECT_TIMEOUT:g} s (is it running, and reachable from here?)"
            ) from None
        except Exception as exc:  # e.g. a scheme whose transport is not installed
            raise ExecutorError(f"cannot connect to {scheduler}: {_first_line(exc)}") from None
    try:
        _warm_server()
        with dask.config.set({"distributed.worker.multiprocessing-method": _start_method()}):
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
    except Exception as exc:
        raise ExecutorError(f"could not start a Dask LocalCluster: {_first_line(exc)}") from None
    return Client(cluster), cluster


WARM_MODULES = ("distributed", "sim.experiment.run")
"""What the fork server of a local Dask cluster imports once, before it forks workers."""


def _start_method() -> str:
    """How a local Dask cluster starts its workers: ``forkserver`` where the platform has
    it (forked from a server that has imported :data:`WARM_MODULES`), else ``spawn``
    (Dask's default: each worker imports Dask and the simulator itself)."""
    import multiprocessing

    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _warm_server() -> None:
    """Start this process's fork server, if it is not running yet, importing
    :data:`WARM_MODULES`: the workers of a local Dask cluster are then forked warm (no
    worker imports Dask or the simulator, and a worker exits without tearing its modules
    down). The server is single-threaded, so forking from it is safe (forking this
    process, whose Dask event loop runs in threads, is not), and it stays up for the next
    cluster until this process exits. It imports in the background while this process
    goes on (verifying points, importing Dask, starting the scheduler): Dask is not
    imported here first. Nothing without a fork server or without Dask."""
    import importlib.util
    import multiprocessing
    import multiprocessing.forkserver

    if _start_method() != "forkserver" or importlib.util.find_spec("distributed") is None:
        return
    # a server already running keeps its modules (Dask names its own the first time it
    # starts workers; that no longer changes a running server)
    multiprocessing.get_context("forkserver").set_forkserver_preload(list(WARM_MODULES))
    multiprocessing.forkserver.ensure_running()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _dask(points: Sequence[Point], client: Any, out: Path | None = None) -> Iterator[Outcome]:
    """The points on a Dask cluster as on a process pool (:func:`_processes`): each
    replication a task (:func:`run_replication`), each point's tables and files a task
    that depends on them (:func:`run_point` with ``runs``). Dask hands a replication's
    records to the worker of its point's task (worker to worker: nothing goes through
    this process) and drops them once that task is done. Tasks are submitted point after
    point, a point's last task just after its replications: Dask runs what was submitted
    first first, so a point's tables come before the next points' replications, and few
    points' records wait at a time. A replication that fails fails its point (Dask
    gives the point's task its error)."""
    from dask.distributed import as_completed as dask_completed

    futures = {_submit_point(client, p, out): p for p in points}
    for fut in dask_completed(futures):
        p = futures[fut]
        try:
            yield p, fut.result(), None
        except Exception as exc:
            yield p, None, exc


def _submit_point(client: Any, p: Point, out: Path | None) -> Any:
    """The future of ``p``'s last task on a Dask cluster, its replications submitted
    before it (their futures are not kept here: Dask keeps their records as long as the
    point's task needs them, and no longer)."""
    args, kwargs = _args(p, out)
    scenario, seed, _ = args
    where = _where(p)
    runs = []
    for r in range(p.replications):
        key = f"replication-{p.key}-{r}"
        runs.append(client.submit(run_replication, scenario, seed, r, **where, key=key, pure=False))
    return client.submit(run_point, *args, **kwargs, runs=runs, key=f"point-{p.key}",
                         pure=False)  # fmt: skip


def _choose(executor: str, workers: int, scheduler: str | None) -> str:
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number of at least 1 (got {workers!r})")
    if scheduler is not None:
        check_scheduler(scheduler)
        if executor not in ("auto", "dask"):
            raise ValueError(f"a scheduler goes with the dask executor, not {executor}")
        return "dask"
    if executor != "auto":
        return executor
    return "serial" if workers <= 1 else "processes"


# ---------------------------------------------------------------------------------------
# Running a sweep
# ---------------------------------------------------------------------------------------
@dataclass
class SweepReport:
    """What one invocation of a sweep did (``damaged``: points whose stored files did
    not verify, computed again; they are among ``computed`` or ``failed``)."""

    out: Path
    computed: list[str]
    skipped: list[str]
    failed: list[str]
    executor: str
    wall_s: float
    workers: int | None = None
    """Processes that computed the points (None: none, or a scheduler's own workers)."""
    damaged: list[str] = field(default_factory=list)

    @property
    def verified(self) -> list[str]:
        """The points whose files this invocation checked against their hashes: those it
        computed (as each was stored) and those already done (before it began)."""
        return [*self.computed, *self.skipped]


def run_sweep(
    sweep: Sweep,
    out: str | Path | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    executor: str = "auto",
    progress: bool | None = None,
    command: str | None = None,
    force: bool = False,
) -> SweepReport:
    """Run every point of ``sweep`` not already in ``out`` (default ``results/<study>``);
    ``command`` (the command line that asked for it) is recorded in ``study.json``.
    ``out`` is opened through the result store: :class:`sim.results.store.OutError` if
    it cannot be used or holds files hvsim did not write (``force`` writes beside them)."""
    out = Path(out) if out is not None else Path("results") / sweep.study
    kind = _choose(executor, workers, scheduler)
    if kind == "dask" and not scheduler:
        _warm_server()  # imports in the background while the points are verified
    states = {p.key: verify_point(out, p.key) for p in sweep.points}
    todo = [p for p in sweep.points if states[p.key]]
    skipped = [p.key for p in sweep.points if not states[p.key]]
    damaged = [p.key for p in todo if states[p.key] != "missing"]
    used = None  # processes computing the points here (none with a scheduler's own workers)
    if todo and not (kind == "dask" and scheduler):  # local processes take a replication each
        tasks = sum(p.replications for p in todo)
        used = 1 if kind == "serial" else pool_size(workers, tasks)
    # a scheduler that does not answer stops the sweep before anything is written
    client, cluster = (
        _dask_client(used or 1, scheduler) if kind == "dask" and todo else (None, None)
    )

    def close() -> None:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    try:
        where = open_directory(out, "sweep", force)
    except BaseException:
        close()
        raise
    t0 = time.perf_counter()
    _write_study(where, sweep, kind, workers, scheduler, None, command)
    from tqdm import tqdm

    bar = tqdm(
        total=len(sweep.points),
        initial=len(skipped),
        desc=sweep.study,
        unit="point",
        disable=(not sys.stderr.isatty()) if progress is None else not progress,
    )
    computed: list[str] = []
    failed: list[str] = []
    outcomes: Iterator[Outcome]
    if not todo:
        outcomes = iter(())
    elif kind == "serial":
        outcomes = _serial(todo, where)
    elif kind == "processes":
        outcomes = _processes(largest_first(todo), used or 1, where)
    else:  # a scheduler's workers may not see this directory: they return the bytes
        outcomes = _dask(largest_first(todo), client, None if scheduler else where)
    try:
        for point, payload, error in outcomes:
            if payload is not None:
                try:
                    _store(where, point, payload)
                except ValueError as exc:  # its worker's file changed before it was recorded
                    payload, error = None, exc
            if payload is not None:
                computed.append(point.key)
            else:
                assert error is not None
                _store_failure(where, point, error)
                failed.append(point.key)
            bar.set_postfix(failed=len(failed))
            bar.update(1)
    finally:
        bar.close()
        close()
    report = SweepReport(
        out, computed, skipped, failed, kind, time.perf_counter() - t0, used, damaged
    )
    _write_study(where, sweep, kind, workers, scheduler, report, command)
    return report


def _write_study(
    out: Path,
    sweep: Sweep,
    kind: str,
    workers: int,
    scheduler: str | None,
    report: SweepReport | None,
    command: str | None = None,
) -> None:
    import platform

    info: dict[str, Any] = {
        "kind": "sweep",
        "study": sweep.study,
        "sweep": sweep.spec,
        "points": [{"key": p.key, "index": p.index, "values": p.values} for p in sweep.points],
        "seed": sweep.spec.get("seed"),
        "replications": sweep.spec.get("replications"),
        "executor": kind,
        "workers": workers,
        "scheduler": scheduler,
        "hvsim": hvsim_version(),
        "python": platform.python_version(),
        "versions": versions(),
        "command": command,
    }
    if report is not None:
        info["last_run"] = {
            "computed": report.computed,
            "skipped": report.skipped,
            "failed": report.failed,
            "damaged": report.damaged,
            "wall_s": round(report.wall_s, 3),
            "workers": report.workers,
        }
    text = json.dumps(info, indent=2, default=str)
    write_file(out / "study.json", text.encode("utf-8"), directory=out)
    record(out, ["study.json"])


def _point_warnings(info: Mapping[str, Any]) -> dict[str, str]:
    """Per child, the warnings its point's run raised (saturation, warm-up, wide
    intervals: :func:`sim.results.diagnose.warnings`), from its ``points/<key>.json``,
    joined by ``"; "`` as in a run's summary."""
    notes: dict[str, list[str]] = {}
    for line in info.get("warnings") or []:
        part, _, text = str(line).partition(": ")
        notes.setdefault(part, []).append(text)
    return {part: "; ".join(texts) for part, texts in notes.items()}


def load_study(out: str | Path, verified: Collection[str] = ()) -> pd.DataFrame:
    """The tidy frame of a study: one row per point × replication × child, in point order,
    with ``point`` (its key), ``point_index``, a column per swept parameter under its
    short name (:func:`short_names`; numeric in hvsim's units where the field is), the
    summary metrics and ``warnings``, the warnings of the point's run for that child (only
    finished points whose files verify: :func:`verify_point`). :func:`study_grid` names
    the swept parameters' columns and their values as the sweep wrote them. ``verified``:
    points whose files the caller has just verified (:attr:`SweepReport.verified`), not
    read and hashed again (the whole of a large study's request tables otherwise)."""
    out = Path(out)
    info_file = out / "study.json"
    if not info_file.is_file():
        raise FileNotFoundError(f"{out} is not an hvsim study directory (no study.json)")
    info = json.loads(info_file.read_text(encoding="utf-8"))
    trusted = set(verified)
    frames = []
    keys = list(info.get("sweep", {}).get("grid", {}))
    columns: dict[str, str] = {}
    written: dict[str, dict[Any, str]] = {k: {} for k in keys}
    for entry in info["points"]:
        key = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(key, str) or (key not in trusted and verify_point(out, key)):
            continue
        frame = pd.read_parquet(out / "summary" / f"{key}.parquet")
        frame["point_index"] = entry["index"]  # this sweep's numbering, not the old one
        meta = json.loads((out / "points" / f"{key}.json").read_text(encoding="utf-8"))
        frame["warnings"] = frame["partition"].map(_point_warnings(meta)).fillna("")
        # points stored before grid columns had short names keep the key as their column
        where = meta.get("columns") or {k: k for k in keys}
        for k in keys:
            if where.get(k) in frame.columns and len(frame):
                columns.setdefault(k, where[k])
                written[k][frame[where[k]].iloc[0]] = str(meta["values"].get(k))
        frames.append(frame)
    if not frames:
        return pd.DataFrame()
    study = pd.concat(frames, ignore_index=True)
    study.attrs["grid"] = [
        {"key": k, "column": columns[k], "written": written[k]} for k in keys if k in columns
    ]
    return study
