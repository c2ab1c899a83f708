"""Availability by design in text and in the report (``hvsim availability``; docs/design.md
§3.5, Reliability): the per-path table, the blast radius and the states measured."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from sim.experiment.availability import Availability, load_availability
from sim.report.text import text_table


def _pct(a: float, hw: float) -> str:
    return f"{100 * a:.4f} % ± {100 * hw:.4f}" if math.isfinite(hw) else f"{100 * a:.4f} %"


def _min(v: float, hw: float) -> str:
    return f"{v:,.1f} ± {hw:,.1f}" if math.isfinite(hw) else f"{v:,.1f}"


def _us(v: Any) -> str:
    v = float(v)
    if math.isnan(v):
        return "—"
    if math.isinf(v):
        return "lost"
    return f"{v / 1000:.3g} ms" if v >= 1000 else f"{v:.3g} µs"


def design_rows(av: Availability) -> tuple[list[str], list[list[str]]]:
    """The per-design table: path, child, availability, down and SLO-violation minutes a
    year, outages a year, worst outage, p99 normal and in the worst state."""
    cols = ["path", "child", "availability (95 %)", "down min/year", "SLO-violation min/year",
            "outages/year", "worst outage", "p99 normal", "p99 worst state"]  # fmt: skip
    rows = []
    for _, r in av.table.iterrows():
        rows.append([
            str(r["path"]), str(r["child"]),
            _pct(r["availability"], r["availability_hw"]),
            _min(r["down_min_per_year"], r["down_min_per_year_hw"]),
            _min(r["slo_violation_min_per_year"], r["slo_violation_min_per_year_hw"]),
            f"{r['outages_per_year']:.2f}", f"{r['worst_outage_s'] / 60:.1f} min",
            _us(r["p99_normal_us"]), _us(r["p99_worst_state_us"]),
        ])  # fmt: skip
    return cols, rows


def blast_rows(av: Availability, path: str) -> tuple[list[str], list[list[str]]]:
    """What each failure does to each child on ``path``."""
    b = av.blast[av.blast["path"] == path].drop(columns=["path"])
    cols = list(b.columns)
    rows = [[str(v) if str(v) not in ("", "nan") else "·" for v in r] for r in b.to_numpy()]
    return cols, rows


def format_availability(av: Availability) -> str:
    """The result as plain-text tables: by design, then the blast radius per path."""
    m = av.meta
    head = (
        f"{m['scenario']}: availability by design over {m['runs']} × {m['years']:g} years "
        f"of failures and repairs; {m['replications']} replications per state, seed "
        f"{m['seed']}" + (f"; states judged by {m['slo']}" if m.get("slo") else "")
    )
    parts = [head, "", "\n".join(text_table(*design_rows(av)))]
    for path in dict.fromkeys(av.blast["path"]):
        parts += ["", f"blast radius, {path} (down: its I/O stops; routed: it runs routed)"]
        parts.append("\n".join(text_table(*blast_rows(av, path))))
    return "\n".join(parts)


def section(directory: Path) -> dict[str, Any]:
    """What the report of an availability directory shows, as plain data for
    :mod:`sim.report.html`: ``availability`` (the result), ``title``, ``question``,
    ``headline`` and ``extra`` (``(title, columns, rows)`` tables), ``note``."""
    av = load_availability(directory)
    cols, rows = design_rows(av)
    extra = [(f"Blast radius: {p}", *blast_rows(av, p)) for p in dict.fromkeys(av.blast["path"])]
    st = av.states
    if len(st):
        touched = st[st["touched"].fillna("") != ""]
        extra.append((
            "States measured (request level): children touched",
            ["path", "state", "child", "touched", "outage", "transient", "p99 in state"],
            [[str(r["path"]), str(r["state"]), str(r["child"]), str(r["touched"]),
              _us(r["down_us"]), _us(r["extra_us"]), _us(r["p99_us"])]
             for _, r in touched.iterrows()],
        ))  # fmt: skip
    return {
        "availability": av,
        "title": f"{av.scenario.name}: availability by design",
        "question": "Whose failure takes down whom, and what availability and SLO-violation "
        "minutes a year each design gives under the failure and repair processes.",
        "headline": (cols, rows),
        "note": _sources_note(av),
        "extra": extra,
    }


def _sources_note(av: Availability) -> str:
    return (
        "Failure and repair defaults and their sources: hvsim schema, Reliability "
        "(sim/scenario/reliability.py). Intervals: 95 % across level-1 runs, with the "
        "transients' level-2 uncertainty."
    )


def frame(av: Availability) -> pd.DataFrame:
    """The per-design table as a frame with readable columns (notebooks)."""
    cols, rows = design_rows(av)
    return pd.DataFrame(rows, columns=cols)
