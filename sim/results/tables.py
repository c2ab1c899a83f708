"""Records → tidy tables: :func:`tabulate` turns the records of ``R`` replications
(:class:`sim.model.records.RunData`) into the frames of a :class:`~sim.results.result.Result`:

``requests``   one row per request issued (``state``: completed, failed, or still in
               flight at the end; ``failure``, ``attempts``), with its timestamps and
               latency components; ``in_window`` marks the requests submitted after the
               warm-up and completed before the end, the ones every statistic is
               computed on. Completed + failed + in flight = issued, for every stream of
               every replication, or the run raises (``ConservationError``).
``replications``  the same per replication: the samples behind every interval.
``summary``    one row per child (and per path, where a child fell back), with
               throughput, latency mean and percentiles, mean latency components, and,
               with R > 1, Student-t confidence bounds ``<metric>_ci_low/high``; beside
               them the analytic estimate (:mod:`sim.analysis.analytic`): ``analytic_mean_us``,
               ``analytic_wait_us`` (its part that rests on approximations),
               ``analytic_utilization`` (the busiest station on the child's path) and
               ``analytic_holds`` (whether the approximation should hold there).
``cpu``        busy time per partition, vCPU and category over the measurement window,
               plus the host's idle time, so that the rows add up to LPs × window.
``counters``   exits by reason, interrupts, signals, ring-full events, preemptions,
               boosts, steals, cap parks, fallbacks; ``resources``: device and ring
               utilisation and occupancy.
``occupancy``  per replication and interval of ``run.trace_interval``: the mean bytes in
               every VMBus ring and the mean queue length and busy
               share of every device, over the whole run (warm-up included, marked).
``sched``      per vCPU: wake-ups, mean and largest wake-up delay (work arrived for a
               blocked vCPU → it runs), dispatches, preemptions, boosts.
``faults``     with faults scheduled (:mod:`sim.model.faults`), per fault and child: what the
               fault did to the child (:func:`fault_frame`); the summary then (and
               whenever a request failed or was retried) also has ``availability``,
               ``longest_stall_us``, ``failed`` and ``retried`` (:func:`with_fault_columns`).

Throughput (``throughput_rps``, ``throughput_bps``) is completions per second in the
measurement window: every request completed after the warm-up and by the end, whenever it
was submitted, so that under overload it reads what the server delivers, not what is left
after the backlog. Beside it, ``offered_rps`` is the requests submitted in the window per
second (whatever became of them) and ``completion_share`` = completions / submissions in the
window (below 1 under overload, about 1 otherwise). Latency statistics keep their own
sample: the requests *submitted* after the warm-up and completed by the end (``in_window``),
so a request that waited out the warm-up does not bias them; ``requests`` counts that
sample.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.analytic import Estimate, beside, estimate
from sim.analysis.stats import PERCENTILES, latency_stats, mser5, paired, t_interval
from sim.model.metrics import COMPONENT_COLUMNS
from sim.model.records import (
    CpuRecord,
    ResourceRecord,
    RunData,
    SchedRecord,
    StreamData,
    TraceRecord,
)
from sim.model.request import REQUEST_FIELDS, ConservationError
from sim.results.diagnose import warnings
from sim.results.faults import fault_frame, fault_notes, with_fault_columns
from sim.results.result import Result
from sim.results.store import versions
from sim.scenario.columns import is_percentile_column, percentiles
from sim.scenario.schema import Scenario

LATENCY_METRICS = ("mean_us", *(f"{k}_us" for k in PERCENTILES))
CI_METRICS = ("throughput_rps", "throughput_bps", *LATENCY_METRICS)
COUNTS = ("requests", "failed", "retried")
"""Columns the summary sums over replications (the others are means)."""
KEYS = ["partition", "requested_path", "io_path"]
_TEXT = ("partition", "requested_path", "io_path", "device", "op", "state", "failure")
"""The request table's string columns."""
_STATES = ("completed", "failed", "in_flight")


@functools.cache
def _str_dtype() -> Any:
    """What pandas makes of strings: its ``str`` dtype (pandas 3), or ``object``; asked
    on first use (making one loads pyarrow, which a command that fails early never needs)."""
    return pd.Series(["-"]).dtype


class _Strings:
    """A string column gathered stream by stream as codes into its distinct values, and
    made once at the end: a column of ``n`` equal strings costs an array of codes, not
    ``n`` Python strings for pandas to convert one by one."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.codes: list[np.ndarray] = []

    def _code(self, value: str) -> int:
        return self.values.setdefault(value, len(self.values))

    def same(self, value: str, n: int) -> None:
        """``n`` rows of ``value``."""
        self.codes.append(np.full(n, self._code(value), dtype=np.int32))

    def of(self, names: Sequence[str], index: np.ndarray) -> None:
        """Rows of ``names[i]`` for each ``i`` of ``index``."""
        codes = np.array([self._code(v) for v in names], dtype=np.int32)
        self.codes.append(codes[index])

    def each(self, values: Sequence[str]) -> None:
        """One row per value."""
        self.codes.append(np.array([self._code(v) for v in values], dtype=np.int32))

    def rows(self) -> np.ndarray:
        """Every row's code."""
        if len(self.codes) != 1:
            self.codes = [np.concatenate(self.codes) if self.codes else np.zeros(0, np.int32)]
        return self.codes[0]

    def names(self) -> list[str]:
        """The distinct values, each at its code."""
        return list(self.values)

    def column(self) -> Any:
        codes = self.rows()
        values = self.names()
        dtype = _str_dtype()
        if not isinstance(dtype, pd.StringDtype):
            return np.array(values, dtype=object)[codes]
        import pyarrow as pa  # what pandas' str dtype is made of: loaded as pandas loads it

        decoded = pa.DictionaryArray.from_arrays(
            pa.array(codes), pa.array(values, type=pa.large_string())
        ).dictionary_decode()
        return pd.array(decoded, dtype=dtype)


PEER_COLUMNS = ("network_us", "peer_us", "one_way_us")
"""Request columns of streams with a remote peer (sim.model.devices.RemotePeer), beside
the components: ``network_us`` (switch and wire time after the child's own transmission,
both ways), ``peer_us`` (its response time) and ``one_way_us`` (submission to the
request's last byte at the peer). The latency is the round trip: the components plus
``network_us`` and ``peer_us``. Present only where a stream has a peer; the summary has
their means under the same names."""
COMPARE_METRICS = ("throughput_rps", "mean_us", "p50_us", "p90_us", "p99_us", "p999_us")
"""The metrics a comparison pairs across paths."""


def tabulate(scenario: Scenario, runs: Sequence[RunData], seed: int, wall_s: float) -> Result:
    """Turn replications' records into a :class:`Result`."""
    if scenario.run.requests == "all":
        requests, rows = _requests(runs, sample=False)
        warm = warmup_frame(requests, scenario, rows)
        mark_window(requests, warm, scenario.run.duration, rows)
        reps = [r.replication for r in runs]
        per_rep = replication_frame(requests, reps, warm, scenario, rows)
        simulated = len(requests)
    else:  # sample N / none: the statistics from the columns, the table from the sample
        warm, per_rep = lean_frames(runs, scenario)
        requests, rows = _requests(runs, sample=True)
        mark_window(requests, warm, scenario.run.duration, rows)
        simulated = sum(s.issued for r in runs for s in r.streams)
    lean_timeouts = _timeouts(runs) if scenario.run.requests != "all" else {}
    retried = not lean_timeouts and bool(
        (requests["attempts"].to_numpy() > 1).any() or rows.failed.any()
    )
    if (scenario.faults or retried) and len(per_rep):  # availability, stalls (sim.model.faults)
        per_rep = with_fault_columns(per_rep, requests, scenario)
    order = [name for name, _ in scenario.instances()]
    cpu = cpu_frame(runs)
    resources = _resources_frame(runs)
    counters = _counters_frame(runs)
    summary = summary_frame(per_rep, order)
    if len(summary):  # the analytic estimate beside the simulated mean (sim.analysis.analytic)
        try:
            est: Estimate | None = estimate(scenario)
        except ArithmeticError:  # no estimate (e.g. a station saturated by open loops)
            est = None
        summary = summary.join(beside(summary, est))
    notes = warnings(scenario, summary, warm, cpu, resources, counters)
    if scenario.faults or retried:
        for part, note in fault_notes(summary).items():
            notes.setdefault(part, []).append(note)
    for part, n in lean_timeouts.items():  # no fault columns without every request
        notes.setdefault(part, []).append(
            f"{n} requests timed out (command timer): failed and retried requests, "
            "availability and stalls need run.requests: all"
        )
    if len(summary):
        summary["warnings"] = ["; ".join(notes.get(p, [])) for p in summary["partition"]]
    meta = {
        "scenario": scenario.name,
        "seed": seed,
        "replications": len(runs),
        "replication_seeds": [
            {"replication": r.replication, "root_seed": r.seed, "spawn_key_prefix": [r.replication]}
            for r in runs
        ],
        "duration_us": scenario.run.duration,
        "warmup_us": scenario.run.warmup,
        "warmup_method": scenario.run.warmup_method,
        "warnings": [f"{p}: {w}" for p, ws in notes.items() for w in ws],
        "wall_s": round(wall_s, 3),
        "wall_s_per_replication": [round(r.wall_s, 3) for r in runs],
        "requests_simulated": simulated,
        "versions": versions(),
    }
    if scenario.run.requests != "all":
        meta["requests_kept"] = scenario.run.requests
    return Result(
        scenario=scenario,
        requests=requests,
        summary=summary,
        replications=per_rep,
        cpu=cpu,
        counters=counters,
        resources=resources,
        sched=sched_frame(runs),
        occupancy=occupancy_frame(runs),
        faults=fault_frame(requests, scenario, len(runs)) if scenario.faults else pd.DataFrame(),
        meta=meta,
    )


def occupancy_frame(runs: Sequence[RunData]) -> pd.DataFrame:
    """Tidy trace of ring and device-queue occupancy: one row per replication, interval
    end (``time_us``), resource and quantity (``bytes``: bytes in a ring;
    ``queue``: requests waiting for a device; ``busy``: share of its servers busy)."""
    cols = list(TraceRecord._fields)
    frames = [
        pd.DataFrame(r.trace, columns=cols).assign(replication=r.replication)
        for r in runs
        if r.trace
    ]
    if not frames:
        return pd.DataFrame(columns=["replication", *cols, "in_window"])
    df = pd.concat(frames, ignore_index=True)[["replication", *cols]]
    df["in_window"] = df["time_us"] > runs[0].warmup_us  # intervals ending after warm-up
    return df


def warmup_frame(requests: pd.DataFrame, scenario: Scenario, rows: _Rows) -> pd.DataFrame:
    """Per replication and child: the MSER-5 truncation point of its latency series (in
    submission order, from time 0) and the warm-up used (fixed, or the later of the two
    under ``warmup_method: mser5``). ``rows``: the table's keys (:func:`_requests`)."""
    fixed = scenario.run.warmup
    auto = scenario.run.warmup_method == "mser5"
    out = []
    # the completed requests' columns as arrays (no copy of the whole frame)
    done = np.flatnonzero(rows.completed)
    t_sub = requests["t_submit_us"].to_numpy()[done]
    latency = requests["latency_us"].to_numpy()[done]
    rep, part = rows.replication[done], rows.codes("partition")[done]
    for rows_of in _groups(rep, part):
        # in submission order: the ordering pandas' sort_values gives (quicksort)
        t_all = t_sub[rows_of]
        order = t_all.argsort(kind="quicksort")
        d, found = mser5(latency[rows_of][order])
        t = t_all[order]
        cut = float(t[d]) if d < len(t) else float(scenario.run.duration)
        used = max(fixed, cut) if auto else fixed
        first = rows_of[0]
        out.append((int(rep[first]), rows.name("partition", part[first]), used, cut, found))
    cols = ["replication", "partition", "warmup_us", "mser_warmup_us", "mser_found"]
    return pd.DataFrame(out, columns=cols)


def _cuts(warm: pd.DataFrame) -> dict[tuple[int, str], tuple[float, float]]:
    """(replication, child) → the warm-up used and MSER-5's, from :func:`warmup_frame`."""
    return {
        (int(r), p): (float(w), float(m))
        for r, p, w, m in zip(warm["replication"], warm["partition"], warm["warmup_us"],
                              warm["mser_warmup_us"], strict=True)
    }  # fmt: skip


def mark_window(requests: pd.DataFrame, warm: pd.DataFrame, end: float, rows: _Rows) -> None:
    """Set ``in_window``: completed, submitted after its warm-up, completed by ``end``
    (no warm-up known for its replication and child: from 0)."""
    cuts = _cuts(warm)
    rep, part = rows.replication, rows.codes("partition")
    cut = np.zeros(len(requests))
    for rows_of in _groups(rep, part):
        first = rows_of[0]
        known = cuts.get((int(rep[first]), rows.name("partition", part[first])))
        if known:
            cut[rows_of] = known[0]
    requests["in_window"] = (
        rows.completed
        & (requests["t_submit_us"].to_numpy() >= cut)
        & (requests["t_complete_us"].to_numpy() <= end)
    )


def requests_frame(runs: Sequence[RunData], sample: bool = False) -> pd.DataFrame:
    """One row per request of every replication: ``state`` is ``completed``, ``failed``
    (``failure`` says why; ``t_complete_us`` is when it failed) or ``in_flight`` at the
    end; ``attempts`` is 1 unless faults made the request retried (:mod:`sim.model.faults`),
    and ``io_path`` is the path its last attempt took. Raises
    :class:`~sim.model.workloads.ConservationError` unless every stream's requests are exactly
    its ids 0..issued-1, each once. ``sample``: the rows of the requests kept under
    ``run.requests: sample N`` (completed ones, in id order; none under ``none``)."""
    return _requests(runs, sample)[0]


class _Rows:
    """The request table's keys row for row as integers: its replications, the codes its
    string columns were built from (:class:`_Strings`) and each row's state as an index
    into ``("completed", "failed", "in_flight")``. Grouping and selecting rows by
    replication, child and path reads these, not the strings."""

    def __init__(self, replication: np.ndarray, text: dict[str, _Strings], state: np.ndarray):
        self.replication = replication
        self.text = text
        self.completed = state == 0
        self.failed = state == 1

    def codes(self, column: str) -> np.ndarray:
        """Each row's code in ``column`` (a string column)."""
        return self.text[column].rows()

    def name(self, column: str, code: int) -> str:
        """The value of ``column`` a code stands for."""
        return self.text[column].names()[code]


def _groups(*columns: np.ndarray) -> list[np.ndarray]:
    """The rows of each distinct combination of ``columns`` (non-negative integers, one per
    row), ascending, the combinations in order of first appearance: what pandas'
    ``groupby(sort=False).indices`` gives, without hashing strings."""
    if not len(columns[0]):
        return []
    code = np.zeros(len(columns[0]), dtype=np.int64)
    for c in columns:
        code = code * (int(c.max()) + 1) + c
    order = np.argsort(code, kind="stable")  # each group's rows stay ascending
    groups = np.split(order, np.flatnonzero(np.diff(code[order])) + 1)
    groups.sort(key=lambda g: int(g[0]))
    return groups


def _requests(runs: Sequence[RunData], sample: bool) -> tuple[pd.DataFrame, _Rows]:
    """:func:`requests_frame` and its rows' keys as integers (:class:`_Rows`)."""
    cols = list(REQUEST_FIELDS)
    # the table is built once from whole columns: per stream, its records, its labels
    # repeated over its rows and what each row adds (op and state names, fault outcomes,
    # peer times); string columns as codes into their distinct values; each column
    # gathered from the streams' arrays in one copy
    pieces: list[np.ndarray] = []
    kept: list[tuple[StreamData, int, list[np.ndarray]]] = []
    for run_ in runs:
        for s in run_.streams:
            if sample:
                _check_marks(s, f"replication {run_.replication}, {s.partition} stream {s.stream}")
                rows = s.sample if s.sample is not None else np.empty((0, len(cols) + 3))
                if not len(rows):
                    continue
                parts = [rows]
            else:
                parts = [s.done, s.failed, s.in_flight]
            pieces += parts
            kept.append((s, run_.replication, parts))
    if not kept:  # no I/O streams at all (CPU-only scenarios): typed empty table
        text = {c: _Strings() for c in _TEXT}
        rows_ = _Rows(np.zeros(0, dtype=np.int64), text, np.zeros(0, dtype=np.int8))
        df = pd.DataFrame({c: pd.Series(dtype=float) for c in cols}).assign(
            replication=0,
            partition="",
            stream=0,
            requested_path="",
            io_path="",
            device="",
            state="",
            failure="",
            attempts=0,
        )
        for col in ("id", "size_bytes", "vcpu"):
            df[col] = df[col].astype("int64")
        df["latency_us"] = df["t_complete_us"] - df["t_submit_us"]
        df["in_window"] = df["state"] == "completed"
        return df[_order(df)], rows_
    data: dict[str, Any] = {}
    for j, c in enumerate(cols):
        column = np.concatenate([a[:, j] for a in pieces])
        data[c] = column.astype(np.int64) if c in ("id", "size_bytes", "vcpu") else column
    ids, ops = data["id"], data["op"]
    lengths = [sum(len(a) for a in parts) for _, _, parts in kept]
    starts = np.cumsum([0, *lengths])
    text = {c: _Strings() for c in _TEXT}
    attempts: list[np.ndarray] = []
    states: list[np.ndarray] = []
    peer_times: list[np.ndarray | None] = []
    for (s, rep, parts), at, n in zip(kept, starts, lengths, strict=False):
        mine = slice(int(at), int(at) + n)
        if not sample:
            _check_conserved(
                ids[mine], s.issued, f"replication {rep}, {s.partition} stream {s.stream}"
            )
        for c, v in (("partition", s.partition), ("requested_path", s.requested_path),
                     ("device", s.device)):  # fmt: skip
            text[c].same(v, n)
        text["op"].of(s.ops, ops[mine].astype(np.intp))
        state = np.repeat(np.arange(len(parts), dtype=np.int8), [len(a) for a in parts])
        states.append(state)
        text["state"].of(_STATES, state)
        by_id = s.failures or s.attempts or s.paths or (s.trips is not None and not sample)
        of_id = ids[mine].tolist() if by_id else []
        # faults (sim.model.faults): the exceptions, by id
        if s.failures:
            text["failure"].each([s.failures.get(i, "") for i in of_id])
        else:
            text["failure"].same("", n)
        if s.paths:
            text["io_path"].each([s.paths.get(i, s.io_path) for i in of_id])
        else:
            text["io_path"].same(s.io_path, n)
        attempts.append(
            np.array([s.attempts.get(i, 1) for i in of_id], dtype=np.int64)
            if s.attempts
            else np.ones(n, dtype=np.int64)
        )
        if s.trips is not None and sample:  # the sample's trip times follow its row
            peer_times.append(parts[0][:, len(cols) : len(cols) + len(PEER_COLUMNS)])
        elif s.trips is not None:  # request-response with a remote peer
            nan = (np.nan,) * len(PEER_COLUMNS)
            trips = s.trips
            peer_times.append(np.array([trips.get(i, nan) for i in of_id], dtype=float))
        else:
            peer_times.append(None)
    data["replication"] = np.repeat(np.array([r for _, r, _ in kept], dtype=np.int64), lengths)
    data["stream"] = np.repeat(np.array([s.stream for s, _, _ in kept], dtype=np.int64), lengths)
    data.update({c: t.column() for c, t in text.items()})
    data["attempts"] = np.concatenate(attempts)
    if any(t is not None for t in peer_times):  # NaN for the streams without a peer
        times = np.concatenate([
            t if t is not None else np.full((n, len(PEER_COLUMNS)), np.nan)
            for t, n in zip(peer_times, lengths, strict=True)
        ])  # fmt: skip
        data.update({c: np.ascontiguousarray(times[:, k]) for k, c in enumerate(PEER_COLUMNS)})
    data["latency_us"] = data["t_complete_us"] - data["t_submit_us"]
    rows_ = _Rows(data["replication"], text, np.concatenate(states))
    warm = runs[0].warmup_us
    end = runs[0].duration_us
    data["in_window"] = (
        rows_.completed & (data["t_submit_us"] >= warm) & (data["t_complete_us"] <= end)
    )
    df = pd.DataFrame(data, copy=False)
    return df[_order(df)], rows_


def _order(df: pd.DataFrame) -> list[str]:
    """The request table's columns in their order; the trip times only where a stream has
    a remote peer (existing tables keep their columns)."""
    order = [
        "replication", "partition", "stream", "requested_path", "io_path", "device", "id",
        "op", "size_bytes", "vcpu", "t_submit_us", "t_complete_us", "latency_us", "state",
        "failure", "attempts", "in_window", *COMPONENT_COLUMNS,
    ]  # fmt: skip
    return order + [c for c in PEER_COLUMNS if c in df.columns]


def _check_conserved(ids: np.ndarray, issued: int, where: str) -> None:
    """Every id 0..issued-1 once among a stream's completed, failed and in-flight
    requests (:class:`ConservationError` otherwise): O(requests), vectorised."""
    n = len(ids)
    if n == issued and (n == 0 or np.array_equal(np.bincount(ids.astype(np.int64), minlength=n),
                                                 np.ones(n, dtype=np.int64))):  # fmt: skip
        return
    raise ConservationError(
        f"{where}: {n} requests recorded for {issued} issued, or an id missing or twice"
    )


def _check_marks(s: StreamData, where: str) -> None:
    """Under ``run.requests: sample N | none``: every id 0..issued-1 once among a stream's
    completed (their marks), failed and in-flight requests (:class:`ConservationError`
    otherwise), as exact as :func:`_check_conserved`."""
    marks = np.zeros(max(s.issued, 0), dtype=np.int64)
    seen = s.seen if s.seen is not None else np.zeros(0, dtype=np.uint8)
    n = min(len(seen), len(marks))
    marks[:n] += seen[:n]
    others = np.concatenate([s.failed[:, 0], s.in_flight[:, 0]]).astype(np.int64)
    stray = seen[n:].any() or (len(others) and (others.min() < 0 or others.max() >= s.issued))
    if not stray:
        np.add.at(marks, others, 1)
        if (marks == 1).all():
            return
    raise ConservationError(
        f"{where}: {s.completed + len(others)} requests recorded for {s.issued} issued, "
        "or an id missing or twice"
    )


def lean_frames(runs: Sequence[RunData], scenario: Scenario) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Under ``run.requests: sample N | none``: the warm-up frame (:func:`warmup_frame`) and
    the per-replication frame (:func:`replication_frame`) from each stream's columns
    (:class:`~sim.model.records.RequestLog`), row for row and value for value the same as
    from the whole table, but for the mean components (and trip times), summed as the run
    went: equal to within rounding (their sums are added in another order)."""
    fixed, end = scenario.run.warmup, scenario.run.duration
    wanted = percentiles(scenario.run.percentiles)
    peers = any(s.trips is not None for r in runs for s in r.streams)
    nc = len(COMPONENT_COLUMNS)
    keys: dict[tuple[str, str, str], None] = {}  # in the order the table's rows have them
    for run_ in runs:
        for s in run_.streams:
            if s.issued:
                keys.setdefault((s.partition, s.requested_path, s.io_path))
    warm_rows, rows = [], []
    cuts: dict[tuple[int, str], tuple[float, float]] = {}
    for run_ in runs:
        by_part: dict[str, list[StreamData]] = {}
        for s in run_.streams:
            by_part.setdefault(s.partition, []).append(s)
        for part, streams in by_part.items():  # MSER-5 on the series in submission order
            lean = np.concatenate([_lean(s) for s in streams])
            if not len(lean):
                continue
            t = lean[:, 0]
            order = t.argsort(kind="quicksort")  # as the table's sort_values does
            d, found = mser5((lean[:, 1] - lean[:, 0])[order])
            cut = float(t[order][d]) if d < len(t) else float(end)
            warm_rows.append((run_.replication, part, fixed, cut, found))
            cuts[(run_.replication, part)] = (fixed, cut)
    cols = ["replication", "partition", "warmup_us", "mser_warmup_us", "mser_found"]
    warm = pd.DataFrame(warm_rows, columns=cols)
    for part, requested, io_path in keys:
        for run_ in runs:
            r = run_.replication
            mine = [s for s in run_.streams if s.partition == part and s.io_path == io_path]
            lean = np.concatenate([_lean(s) for s in mine] or [_lean(None)])
            known = cuts.get((r, part))
            cut = known[0] if known else fixed
            window_s = (end - cut) / 1e6
            t_sub, t_done = lean[:, 0], lean[:, 1]
            inw = (t_sub >= cut) & (t_done <= end)
            m: dict[str, Any] = {
                "replication": r, "partition": part, "requested_path": requested,
                "io_path": io_path, "requests": int(inw.sum()),
            }  # fmt: skip
            done = (t_done >= cut) & (t_done <= end)
            others = np.concatenate(
                [a for s in mine for a in (s.failed, s.in_flight)]
                or [np.empty((0, len(REQUEST_FIELDS)))]
            )
            t_all = np.concatenate([t_sub, others[:, REQUEST_FIELDS.index("t_submit_us")]])
            submitted = int(((t_all >= cut) & (t_all <= end)).sum())
            completed = int(done.sum())
            m.update(
                throughput_rps=completed / window_s,
                throughput_bps=float(lean[done, 2].sum()) * 8.0 / window_s,
                offered_rps=submitted / window_s,
                completion_share=completed / submitted if submitted else float("nan"),
            )
            m.update(latency_stats((t_done - t_sub)[inw], wanted))
            sums = np.zeros(nc + 3)
            for st in mine:  # a stream without a peer sums no trip times
                if st.sums is not None:
                    sums[: len(st.sums)] += st.sums
            summed = sum(s.summed for s in mine)
            for k, col in enumerate(COMPONENT_COLUMNS):
                m[col] = float(sums[k] / summed) if summed else float("nan")
            if peers:  # request-response: the round trip and its parts
                m["round_trip_us"] = m["mean_us"]
                timed = sum((s.timed for s in mine if s.timed is not None), np.zeros(3))
                for k, col in enumerate(PEER_COLUMNS):
                    n = timed[k]
                    m[col] = float(sums[nc + k] / n) if n else float("nan")
            if known:
                m["warmup_us"], m["mser_warmup_us"] = known
            rows.append(m)
    return warm, pd.DataFrame(rows)


def _timeouts(runs: Sequence[RunData]) -> dict[str, int]:
    """Per child, the requests that failed or were retried (a command timer expired,
    without faults) over the replications."""
    out: dict[str, int] = {}
    for run_ in runs:
        for s in run_.streams:
            n = len(s.failed) + len(s.attempts)
            if n:
                out[s.partition] = out.get(s.partition, 0) + n
    return out


def _lean(s: StreamData | None) -> np.ndarray:
    return s.lean if s is not None and s.lean is not None else np.empty((0, 3))


def replication_frame(
    requests: pd.DataFrame,
    replications: Sequence[int],
    warm: pd.DataFrame,
    scenario: Scenario,
    rows: _Rows,
) -> pd.DataFrame:
    """Per replication, child and path: requests, throughput, latency statistics and mean
    components over the measurement window (the samples every interval is built from).

    The columns it reads are taken out of the frame once, as arrays, and each
    (child, path, replication) selects its rows by their indices, in order (the rows a
    mask would select), found from the table's keys as integers (``rows``)."""
    cuts = _cuts(warm)
    end = scenario.run.duration
    wanted = percentiles(scenario.run.percentiles)
    peers = "one_way_us" in requests.columns  # request-response: the round trip and its parts
    means = [*COMPONENT_COLUMNS, *(PEER_COLUMNS if peers else ())]
    col = {c: requests[c].to_numpy() for c in ["latency_us", *means]}
    part, asked, path = (rows.codes(c) for c in KEYS)
    # each (child, path)'s rows, ascending: what a mask of the columns would select
    rows_of = {(part[g[0]], path[g[0]]): g for g in _groups(part, path)}
    rep = rows.replication
    inw = requests["in_window"].to_numpy(dtype=bool)
    t_done = requests["t_complete_us"].to_numpy()
    t_sub = requests["t_submit_us"].to_numpy()
    completed = rows.completed
    size = requests["size_bytes"].to_numpy()
    out = []
    for first in (g[0] for g in _groups(part, asked, path)):  # in the table's order
        key = {
            c: rows.name(c, code[first]) for c, code in zip(KEYS, (part, asked, path), strict=True)
        }
        mine = rows_of[(part[first], path[first])]
        of_rep = rep[mine]
        for r in replications:
            every = mine[of_rep == r]
            x = every[inw[every]]
            known = cuts.get((r, key["partition"]))
            cut = known[0] if known else scenario.run.warmup
            window_s = (end - cut) / 1e6
            m: dict[str, Any] = {"replication": r, **key}
            m["requests"] = len(x)
            m.update(_rates(t_done[every], t_sub[every], completed[every], size[every],
                            cut, end, window_s))  # fmt: skip
            m.update(latency_stats(col["latency_us"][x], wanted))
            for c in COMPONENT_COLUMNS:
                m[c] = _mean(col[c][x])
            if peers:
                m["round_trip_us"] = m["mean_us"]
                for c in PEER_COLUMNS:
                    m[c] = _mean(col[c][x])
            if known:
                m["warmup_us"], m["mser_warmup_us"] = known
            out.append(m)
    return pd.DataFrame(out)


def _mean(x: np.ndarray) -> float:
    """The mean of ``x`` skipping NaN, as pandas' ``Series.mean`` computes it (NaN set to 0,
    summed, divided by the count of the others); NaN for no value."""
    if not len(x):
        return float("nan")
    nan = np.isnan(x)
    if not nan.any():
        return float(x.sum() / len(x))
    count = len(x) - int(nan.sum())
    return float(np.where(nan, 0.0, x).sum() / count) if count else float("nan")


def _rates(
    t_done: np.ndarray,
    t_sub: np.ndarray,
    completed: np.ndarray,
    size: np.ndarray,
    cut: float,
    end: float,
    window_s: float,
) -> dict[str, float]:
    """Throughput as completions in the window ``[cut, end]`` (whenever submitted), the
    offered rate (submissions in the window, whatever became of them) and their ratio, of
    the requests whose completion times, submission times, completed flags and sizes are
    given."""
    done = completed & (t_done >= cut) & (t_done <= end)
    submitted = int(((t_sub >= cut) & (t_sub <= end)).sum())
    n_done = int(done.sum())
    return {
        "throughput_rps": n_done / window_s,
        "throughput_bps": float(size[done].sum()) * 8.0 / window_s,
        "offered_rps": submitted / window_s,
        "completion_share": n_done / submitted if submitted else float("nan"),
    }


def summary_frame(per_rep: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Per child and path: means over replications with Student-t CIs (R > 1)."""
    rows = []
    if per_rep.empty:
        return pd.DataFrame()
    n_reps = per_rep["replication"].nunique()
    for key, frame in per_rep.groupby(KEYS, sort=False):
        row: dict[str, Any] = dict(zip(KEYS, key, strict=True))
        row["fallback"] = row["requested_path"] != row["io_path"]
        row["replications"] = n_reps
        counts = [c for c in COUNTS if c in frame.columns]
        for col in counts:
            row[col] = int(frame[col].sum())
        for col in frame.columns.drop([*KEYS, "replication", *counts]):
            if frame[col].dtype == object:
                continue
            mean, lo, hi = t_interval(frame[col].to_numpy())
            row[col] = mean
            if (col in CI_METRICS or is_percentile_column(col)) and n_reps > 1:
                row[f"{col}_ci_low"] = lo
                row[f"{col}_ci_high"] = hi
        rows.append(row)
    rank = {name: i for i, name in enumerate(order)}
    out = pd.DataFrame(rows)
    out = out.sort_values("partition", key=lambda s: s.map(rank), kind="stable")
    return out.reset_index(drop=True)


def cpu_frame(runs: Sequence[RunData]) -> pd.DataFrame:
    """Busy µs per partition, vCPU and category over the window (mean over replications),
    plus the host's idle time; ``utilization`` is busy / window for a vCPU row and
    busy / (LPs × window) for the idle row."""
    if not runs:
        return pd.DataFrame(columns=[*CpuRecord._fields, "utilization"])
    window = runs[0].duration_us - runs[0].warmup_us
    rows = []
    for run_ in runs:
        busy = 0.0
        for part, vcpu, cat, us in run_.cpu:
            rows.append((run_.replication, part, vcpu, cat, us))
            busy += us
        idle = max(run_.cores * window - busy, 0.0)
        rows.append((run_.replication, "host", "all", "idle", idle))
    df = pd.DataFrame(rows, columns=["replication", *CpuRecord._fields])
    n = len(runs)
    out = (
        df.groupby(["partition", "vcpu", "category"], sort=False)["busy_us"].sum() / n
    ).reset_index()
    cores = runs[0].cores
    out["utilization"] = np.where(
        out["category"] == "idle", out["busy_us"] / (cores * window), out["busy_us"] / window
    )
    return out


def sched_frame(runs: Sequence[RunData]) -> pd.DataFrame:
    """Per vCPU: wake-ups and their delay, dispatches, preemptions, boosts (mean over
    replications; the maximum wake-up delay is the largest of all)."""
    cols = list(SchedRecord._fields)
    df = pd.DataFrame([row for r in runs for row in r.sched], columns=cols)
    n = max(len(runs), 1)
    g = df.groupby(["partition", "vcpu"], sort=False)
    out = g[["wakeups", "wake_total_us", "dispatches", "preemptions", "boosts"]].sum() / n
    out["max_wakeup_us"] = g["max_wakeup_us"].max()
    out["mean_wakeup_us"] = out["wake_total_us"] / out["wakeups"].where(out["wakeups"] > 0)
    out = out.reset_index()
    return out[["partition", "vcpu", "wakeups", "mean_wakeup_us", "max_wakeup_us",
                "dispatches", "preemptions", "boosts"]]  # fmt: skip


def _counters_frame(runs: Sequence[RunData]) -> pd.DataFrame:
    rows = [(r.replication, k, v) for r in runs for k, v in sorted(r.counters.items())]
    df = pd.DataFrame(rows, columns=["replication", "counter", "count"])
    window_s = (runs[0].duration_us - runs[0].warmup_us) / 1e6 if runs else 1.0
    out = (df.groupby("counter")["count"].sum() / max(len(runs), 1)).reset_index()
    out["per_second"] = out["count"] / window_s
    return out


def _resources_frame(runs: Sequence[RunData]) -> pd.DataFrame:
    rows = [(r.replication, *res) for r in runs for res in r.resources]
    cols = ["replication", *ResourceRecord._fields]
    df = pd.DataFrame(rows, columns=cols)
    return (
        df.groupby(["resource", "kind"], sort=False)
        .agg(
            utilization=("utilization", "mean"),
            mean_level=("mean_level", "mean"),
            max_level=("max_level", "max"),
        )
        .reset_index()
    )


def _own_path(reps: pd.DataFrame) -> pd.DataFrame:
    """One row per child and replication: where a child ran on two paths in one run (its
    VF revoked for a while, :mod:`sim.model.faults`), the row of the path it asked for."""
    two = reps.duplicated(["partition", "replication"], keep=False)
    return reps[~two | (reps["io_path"] == reps["requested_path"])] if two.any() else reps


def comparison_frame(results: dict[str, Result], base: str) -> pd.DataFrame:
    """Tidy table: per child, metric and path, the value with its CI, and the paired
    difference and ratio to ``base`` with theirs."""
    rows = []
    ref = _own_path(results[base].replications).set_index(["partition", "replication"])
    for path, res in results.items():
        reps = _own_path(res.replications).set_index(["partition", "replication"])
        for partition in res.replications["partition"].unique():
            mine = reps.loc[partition].sort_index()
            theirs = ref.loc[partition].sort_index()
            for metric in COMPARE_METRICS:
                value, lo, hi = t_interval(mine[metric].to_numpy())
                p = paired(theirs[metric].to_numpy(), mine[metric].to_numpy())
                rows.append(
                    {
                        "partition": partition,
                        "metric": metric,
                        "path": path,
                        "io_path": str(mine["io_path"].iloc[0]),
                        "value": value,
                        "ci_low": lo,
                        "ci_high": hi,
                        **{f"{k}_to_{base}": v for k, v in p.items()},
                    }
                )
    return pd.DataFrame(rows)
