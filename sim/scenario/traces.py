"""Arrival traces: reading and checking the files a stream replays (docs/design.md §3.4).

A trace is a table of requests, one a row, in time order:

==============  =========================================================================
``timestamp``   when the request arrived (required); unit in the header
                (``timestamp[s]``, ``[ms]``, ``[us]``, ``[ns]``) or ``trace.time_unit``
``op``          its operation (``read``, ``write``, ``send``, ``receive``); optional
``size``        its size; unit in the header (``size[B]``, ``[KiB]``, ``[sectors]``:
                512 B) or ``trace.size_unit``, default bytes; optional
==============  =========================================================================

Column names are matched without case. A ``device`` column may name one device (a
per-device export); a trace naming several is refused, since a stream replays on its
child's one device: split it into one trace per device. Any other column (an LBA, a
process) is not read.
A CSV file may have ``#`` comment lines before its header. A Parquet file (its first four
bytes ``PAR1``) has the same columns. Files are read by the bounded reader
(:func:`sim.scenario.reader.read_bytes`, at most :data:`MAX_TRACE_BYTES`) and checked
here: a missing column, a timestamp that is not a number, negative or earlier than the one
before, an empty op, a size that is not a positive number, an empty or over-long trace, a
binary file that is not Parquet, each give one line naming the file (and its line). The
model receives the checked trace as arrays (:class:`TraceData`): ``sim.model`` reads no
file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.scenario.errors import ScenarioError
from sim.scenario.reader import read_bytes

MAX_TRACE_BYTES = 256 * 1024 * 1024
"""Largest trace file read (a CSV row is ~20-40 bytes: some 7 million requests)."""
MAX_TRACE_ROWS = 5_000_000
"""Most requests a trace may hold (its arrays take ~20 bytes a request)."""

TIME_UNITS: dict[str, float] = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}
"""Units of a trace's timestamps, in µs."""
SIZE_UNITS: dict[str, float] = {
    "B": 1,
    "sectors": 512,
    "kB": 1000,
    "KiB": 1024,
    "MB": 1000**2,
    "MiB": 1024**2,
}
"""Units of a trace's sizes, in bytes (``sectors``: 512 B, as blktrace counts them)."""

_COLUMN = re.compile(r"\s*([A-Za-z_]+)\s*(?:[\[(]\s*([A-Za-z]+)\s*[\])])?\s*")
_TIME_NAMES = ("timestamp", "time", "t")


class TraceError(ValueError):
    """A trace file is not a valid trace (the message says where and why)."""


@dataclass(frozen=True, eq=False)
class TraceData:
    """A checked trace: arrival times (µs, non-decreasing, as written less nothing), and
    per request the index of its op in :attr:`ops` and its size (bytes), when the trace has
    those columns."""

    t_us: np.ndarray
    ops: tuple[str, ...]
    op: np.ndarray | None
    size: np.ndarray | None
    sha256: str

    def __len__(self) -> int:
        return len(self.t_us)

    @property
    def span(self) -> float:
        """µs from the first arrival to the last."""
        return float(self.t_us[-1] - self.t_us[0]) if len(self) else 0.0

    @property
    def rate(self) -> float:
        """Mean arrivals per second ((n - 1) gaps over the span); 0 for one arrival."""
        return (len(self) - 1) * 1e6 / self.span if self.span > 0 else 0.0

    def op_mix(self) -> dict[str, float]:
        """Share of each op (trace order of first appearance)."""
        if self.op is None:
            return {}
        counts = np.bincount(self.op, minlength=len(self.ops))
        return {o: float(c) / len(self) for o, c in zip(self.ops, counts, strict=True)}


def _unit(name: str, written: str | None, given: str | None, table: dict[str, float]) -> float:
    if written is not None and given is not None and written != given:
        raise TraceError(
            f"the header gives {name} in {written}, the scenario in {given}: give it once"
        )
    unit = written or given
    if unit is None:
        return math.nan
    if unit not in table:
        raise TraceError(f"unknown {name} unit '{unit}' (use {', '.join(table)})")
    return float(table[unit])


def _columns(names: list[str]) -> dict[str, tuple[int, str | None]]:
    """Column name → (index, unit written in the header)."""
    found: dict[str, tuple[int, str | None]] = {}
    for i, raw in enumerate(names):
        m = _COLUMN.fullmatch(raw)
        if m is None:
            continue
        name = m[1].lower()
        name = "timestamp" if name in _TIME_NAMES else name
        if name in ("timestamp", "op", "size", "device"):
            if name in found:
                raise TraceError(f"column '{name}' appears twice")
            found[name] = (i, m[2])
    if "timestamp" not in found:
        shown = ", ".join(n.strip() for n in names[:8]) or "none"
        raise TraceError(f"no 'timestamp' column (columns: {shown})")
    return found


def _time_scale(
    cols: dict[str, tuple[int, str | None]], given: str | None, written_in: str
) -> float:
    """µs per unit of the timestamps: the unit written in the column's name (in
    ``written_in``: a CSV's header, a Parquet column's name) or ``trace.time_unit``."""
    scale = _unit("timestamp", cols["timestamp"][1], given, TIME_UNITS)
    if math.isnan(scale):
        raise TraceError(
            f"the unit of 'timestamp' is not given: write it in {written_in} (timestamp[s]) "
            "or as trace.time_unit"
        )
    return scale


def _one_device(values: set[str]) -> None:
    """A ``device`` column may name one device only (see the module docstring)."""
    if len(values) > 1:
        shown = ", ".join(sorted(v[:20] for v in values)[:4]) + (", ..." if len(values) > 4 else "")
        raise TraceError(
            f"column 'device' names {len(values)} devices ({shown}): "
            "a stream replays on its child's one device; split the trace into one per device"
        )


def _finish(
    t: np.ndarray,
    ops: list[str] | None,
    sizes: np.ndarray | None,
    lines: np.ndarray | None,
    digest: str,
) -> TraceData:
    n = len(t)
    if n == 0:
        raise TraceError("no requests (an empty trace)")
    where = lambda i: f"line {int(lines[i])}" if lines is not None else f"row {i + 1}"  # noqa: E731
    bad = np.flatnonzero(~np.isfinite(t))
    if len(bad):
        raise TraceError(f"{where(bad[0])}: timestamp is not a finite number")
    neg = np.flatnonzero(t < 0)
    if len(neg):
        raise TraceError(f"{where(neg[0])}: negative timestamp")
    back = np.flatnonzero(np.diff(t) < 0)
    if len(back):
        raise TraceError(
            f"{where(back[0] + 1)}: timestamp earlier than the one before "
            "(a trace is in time order; sort it first)"
        )
    op_idx = None
    names: tuple[str, ...] = ()
    if ops is not None:
        table: dict[str, int] = {}
        idx = np.empty(n, dtype=np.int32)
        for i, o in enumerate(ops):
            if not o:
                raise TraceError(f"{where(i)}: empty op")
            k = table.get(o)
            if k is None:
                if not re.fullmatch(r"[a-z_]{1,32}", o):
                    raise TraceError(f"{where(i)}: op {o[:40]!r} is not an op name")
                k = table[o] = len(table)
            idx[i] = k
        op_idx, names = idx, tuple(table)
    size_b = None
    if sizes is not None:
        ok = np.isfinite(sizes) & (sizes >= 0.5) & (sizes < 2**53)
        badsize = np.flatnonzero(~ok)
        if len(badsize):
            raise TraceError(f"{where(badsize[0])}: size is not a positive number")
        size_b = np.maximum(np.rint(sizes), 1).astype(np.int64)
    return TraceData(t, names, op_idx, size_b, digest)


def parse_csv(text: str, time_unit: str | None, size_unit: str | None, digest: str) -> TraceData:
    """A CSV trace (see the module docstring)."""
    lines = text.splitlines()
    head = 0
    while head < len(lines) and (not lines[head].strip() or lines[head].lstrip().startswith("#")):
        head += 1
    if head == len(lines):
        raise TraceError("no header and no requests (an empty trace)")
    header = next(csv.reader([lines[head]]))
    cols = _columns(header)
    t_i = cols["timestamp"][0]
    t_scale = _time_scale(cols, time_unit, "the header")
    s_col = cols.get("size")
    s_scale = _unit("size", s_col[1], size_unit, SIZE_UNITS) if s_col else math.nan
    s_scale = 1.0 if math.isnan(s_scale) else s_scale
    rows = len(lines) - head - 1
    if rows > MAX_TRACE_ROWS:
        raise TraceError(f"more than {MAX_TRACE_ROWS:,} requests, the most a trace may hold")
    width = len(header)
    t = np.empty(rows)
    sizes = np.empty(rows) if s_col else None
    ops: list[str] | None = [] if "op" in cols else None
    line_no = np.empty(rows, dtype=np.int64)
    n = 0
    o_i = cols["op"][0] if "op" in cols else -1
    d_i = cols["device"][0] if "device" in cols else -1
    devices: set[str] = set()
    for k, row in enumerate(csv.reader(lines[head + 1 :]), start=head + 2):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if row[0].lstrip().startswith("#"):
            continue
        if len(row) != width:
            raise TraceError(f"line {k}: {len(row)} fields, the header has {width}")
        try:
            t[n] = float(row[t_i]) * t_scale
        except ValueError:
            raise TraceError(f"line {k}: timestamp {row[t_i][:40]!r} is not a number") from None
        if sizes is not None and s_col is not None:
            try:
                sizes[n] = float(row[s_col[0]]) * s_scale
            except ValueError:
                shown = row[s_col[0]][:40]
                raise TraceError(f"line {k}: size {shown!r} is not a number") from None
        if ops is not None:
            ops.append(row[o_i].strip().lower())
        if d_i >= 0:
            devices.add(row[d_i].strip())
        line_no[n] = k
        n += 1
    _one_device(devices)
    return _finish(t[:n], ops, None if sizes is None else sizes[:n], line_no[:n], digest)


def parse_parquet(
    data: bytes, time_unit: str | None, size_unit: str | None, digest: str
) -> TraceData:
    """A Parquet trace (same columns as a CSV one)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise TraceError(f"not a readable Parquet file ({str(exc).splitlines()[0][:80]})") from None
    if table.num_rows > MAX_TRACE_ROWS:
        raise TraceError(f"more than {MAX_TRACE_ROWS:,} requests, the most a trace may hold")
    cols = _columns(list(table.column_names))
    t_i = cols["timestamp"][0]
    t_scale = _time_scale(cols, time_unit, "the column name")

    def numbers(i: int, what: str) -> np.ndarray:
        col = table.column(i)
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
            raise TraceError(f"column '{what}' is {col.type}, not numbers")
        if col.null_count:
            raise TraceError(f"column '{what}' has {col.null_count} empty values")
        return np.asarray(col.to_numpy(), dtype=float)

    t = numbers(t_i, "timestamp") * t_scale
    sizes = None
    if "size" in cols:
        s_i, s_unit = cols["size"]
        s_scale = _unit("size", s_unit, size_unit, SIZE_UNITS)
        sizes = numbers(s_i, "size") * (1.0 if math.isnan(s_scale) else s_scale)
    ops = None
    if "op" in cols:
        col = table.column(cols["op"][0])
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            raise TraceError(f"column 'op' is {col.type}, not text")
        ops = [("" if v is None else str(v)).strip().lower() for v in col.to_pylist()]
    if "device" in cols:
        _one_device({str(v).strip() for v in table.column(cols["device"][0]).to_pylist()})
    return _finish(t, ops, sizes, None, digest)


def parse(data: bytes, time_unit: str | None = None, size_unit: str | None = None) -> TraceData:
    """A trace from the bytes of a CSV or Parquet file; :class:`TraceError` if invalid."""
    digest = hashlib.sha256(data).hexdigest()
    if data[:4] == b"PAR1":
        return parse_parquet(data, time_unit, size_unit, digest)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TraceError(
            f"a binary file, neither a CSV trace (byte {exc.start:,} is not UTF-8) nor Parquet"
        ) from None
    if "\x00" in text:
        raise TraceError("a binary file (it holds NUL bytes), neither a CSV trace nor Parquet")
    return parse_csv(text, time_unit, size_unit, digest)


def read_trace(
    path: str | Path,
    time_unit: str | None = None,
    size_unit: str | None = None,
    file: str | None = None,
) -> TraceData:
    """Read and check the trace at ``path`` (``file``: its name in messages);
    :class:`ScenarioError` naming the file if it cannot be read or is not a trace."""
    shown = str(path) if file is None else file
    data = read_bytes(path, MAX_TRACE_BYTES, what="trace", file=shown)
    try:
        return parse(data, time_unit, size_unit)
    except TraceError as exc:
        raise ScenarioError(shown, "", str(exc)) from None


# ---------------------------------------------------------------------------------------
# Converters: formats a planner has, to a trace (``hvsim convert``)
# ---------------------------------------------------------------------------------------
_BLKPARSE = re.compile(
    r"\s*\d+,\d+\s+\d+\s+\d+\s+(\d+\.\d+)\s+\d+\s+([A-Z]{1,2})\s+([A-Z]+)\s+\d+\s+\+\s+(\d+)"
)


def from_blkparse(text: str, action: str = "Q") -> TraceData:
    """A trace from ``blkparse`` default text output (``blkparse -i DEV``): one request
    per event of ``action`` (Q: queued by the file system, as the guest issues it; D:
    issued to the driver), its op from the RWBS field (R: read, W: write; discards,
    flushes without data and other events skipped), its size the sector count x 512 B
    (blkparse(1): ``dev cpu seq time pid action RWBS sector + sectors [process]``). Lines
    that are not events (the per-CPU summary blkparse prints at the end) are skipped."""
    t: list[float] = []
    ops: list[str] = []
    sizes: list[float] = []
    for line in text.splitlines():
        m = _BLKPARSE.match(line)
        if m is None or m[2] != action:
            continue
        rwbs, sectors = m[3], int(m[4])
        if "D" in rwbs or sectors == 0:
            continue
        op = "read" if "R" in rwbs else "write" if "W" in rwbs else ""
        if not op:
            continue
        t.append(float(m[1]) * 1e6)
        ops.append(op)
        sizes.append(sectors * 512.0)
        if len(t) > MAX_TRACE_ROWS:
            raise TraceError(f"more than {MAX_TRACE_ROWS:,} requests, the most a trace may hold")
    if not t:
        raise TraceError(f"no '{action}' read or write event (is this blkparse text output?)")
    order = np.argsort(np.asarray(t), kind="stable")  # events of several CPUs interleave
    digest = hashlib.sha256(text.encode()).hexdigest()
    return _finish(
        np.asarray(t)[order],
        [ops[i] for i in order],
        np.asarray(sizes)[order],
        None,
        digest,
    )


_TYPEPERF = {
    "reads": re.compile(r"disk reads/sec$", re.I),
    "writes": re.compile(r"disk writes/sec$", re.I),
    "read_size": re.compile(r"avg\. disk bytes/read$", re.I),
    "write_size": re.compile(r"avg\. disk bytes/write$", re.I),
}


def from_typeperf(text: str, seed: int = 1) -> TraceData:
    """A trace synthesised from a Windows performance-counter CSV (``typeperf -f CSV``,
    or a perfmon log relogged to CSV) with the ``PhysicalDisk`` (or ``LogicalDisk``)
    counters ``Disk Reads/sec``, ``Disk Writes/sec``, ``Avg. Disk Bytes/Read`` and
    ``Avg. Disk Bytes/Write`` of one disk: in each sample interval, reads and writes arrive
    as Poisson processes at the interval's rates, each of the interval's mean size (the
    counters give no more: the synthesised stream is only as bursty as the sampling shows).
    The first column is the sample time (``MM/DD/YYYY HH:MM:SS.mmm``); the first sample
    starts the trace. ``seed`` fixes the synthesised arrivals."""
    import datetime

    rows = list(csv.reader(text.splitlines()))
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if len(rows) < 3:
        raise TraceError("a typeperf CSV has a header and two samples at least")
    header = rows[0]
    cols: dict[str, int] = {}
    for name, pattern in _TYPEPERF.items():
        found = [i for i, h in enumerate(header) if pattern.search(h.strip())]
        if len(found) > 1:
            raise TraceError(
                f"counter '{pattern.pattern[:-1]}' appears for several disks: keep one"
            )
        if not found:
            raise TraceError(f"no '{pattern.pattern[:-1]}' counter column")
        cols[name] = found[0]
    times: list[float] = []
    values: list[list[float]] = []
    for k, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise TraceError(f"line {k}: {len(row)} fields, the header has {len(header)}")
        try:
            when = datetime.datetime.strptime(row[0].strip(), "%m/%d/%Y %H:%M:%S.%f")
        except ValueError:
            raise TraceError(
                f"line {k}: sample time {row[0][:40]!r} is not MM/DD/YYYY HH:MM:SS.mmm"
            ) from None
        vals = []
        for name in ("reads", "writes", "read_size", "write_size"):
            cell = row[cols[name]].strip()
            try:
                v = float(cell) if cell else 0.0  # typeperf leaves a counter it missed blank
            except ValueError:
                raise TraceError(f"line {k}: {name} {cell[:40]!r} is not a number") from None
            if not (math.isfinite(v) and v >= 0):
                raise TraceError(f"line {k}: {name} {cell[:40]!r} is not a non-negative number")
            vals.append(v)
        times.append(when.timestamp() * 1e6)
        values.append(vals)
    t0 = times[0]
    rng = np.random.default_rng(seed)
    out_t: list[np.ndarray] = []
    out_op: list[np.ndarray] = []
    out_size: list[np.ndarray] = []
    total = 0
    # a sample's rates are the averages over the interval that ends at it
    for (a, b), (rd, wr, rs, ws) in zip(itertools.pairwise(times), values[1:], strict=True):
        if b <= a:
            raise TraceError("sample times do not increase")
        for op, r, s in ((0, rd, rs), (1, wr, ws)):
            k = int(rng.poisson(r * (b - a) / 1e6))
            if k == 0:
                continue
            if s < 1:
                raise TraceError(f"an interval with {r:g} {('reads', 'writes')[op]}/s has no size")
            total += k
            if total > MAX_TRACE_ROWS:
                raise TraceError(
                    f"more than {MAX_TRACE_ROWS:,} requests, the most a trace may hold"
                )
            out_t.append(np.sort(rng.uniform(a - t0, b - t0, k)))
            out_op.append(np.full(k, op, dtype=np.int32))
            out_size.append(np.full(k, float(s)))
    if not out_t:
        raise TraceError("the counters show no reads or writes")
    t = np.concatenate(out_t)
    order = np.argsort(t, kind="stable")
    names = ["read", "write"]
    op_all = np.concatenate(out_op)[order]
    digest = hashlib.sha256(text.encode()).hexdigest()
    return _finish(
        t[order], [names[i] for i in op_all], np.concatenate(out_size)[order], None, digest
    )


def to_csv(data: TraceData) -> str:
    """The trace as CSV text (``timestamp[us]``, and ``op``, ``size[B]`` when it has them),
    timestamps from its first request."""
    buf = io.StringIO()
    cols = ["timestamp[us]"]
    if data.op is not None:
        cols.append("op")
    if data.size is not None:
        cols.append("size[B]")
    buf.write(",".join(cols) + "\n")
    t = data.t_us - data.t_us[0]
    for i in range(len(data)):
        row = [f"{t[i]:.3f}"]
        if data.op is not None:
            row.append(data.ops[data.op[i]])
        if data.size is not None:
            row.append(str(int(data.size[i])))
        buf.write(",".join(row) + "\n")
    return buf.getvalue()


CONVERTERS = {"blkparse": "blkparse text output", "typeperf": "typeperf/perfmon disk counters CSV"}
"""Formats ``hvsim convert`` reads."""


def convert(path: str | Path, kind: str, seed: int = 1) -> TraceData:
    """Read the file at ``path`` (bounded) in format ``kind`` (:data:`CONVERTERS`) as a
    trace; :class:`ScenarioError` naming the file."""
    text = read_bytes(path, MAX_TRACE_BYTES, what=kind, file=str(path))
    try:
        decoded = text.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            str(path), "", f"not a text file (byte {exc.start:,} is not UTF-8)"
        ) from None
    try:
        if kind == "blkparse":
            return from_blkparse(decoded)
        if kind == "typeperf":
            return from_typeperf(decoded, seed)
    except TraceError as exc:
        raise ScenarioError(str(path), "", str(exc)) from None
    raise ScenarioError(str(path), "", f"unknown format '{kind}' (use {', '.join(CONVERTERS)})")
