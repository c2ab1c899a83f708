"""The sentences a report opens with: two or three plain sentences that answer its
question, with absolute and relative differences and the half-widths of their 95 %
intervals, rounded to three significant figures (docs/design.md §4, the report). The
tables and figures follow them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from sim.analysis.stats import paired, t_interval
from sim.experiment.study import GridColumn
from sim.scenario import units

MAX_NAMED = 4
"""Most children a sentence names; beyond that it gives the range."""


def _t(us: float) -> str:
    return "—" if not math.isfinite(us) else units.format_time(abs(us))


def _pm(lo: float, hi: float, fmt: Any = _t) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return ""
    return f" (±{fmt((hi - lo) / 2)})"


def _pct(ratio: float) -> str:
    return "" if not math.isfinite(ratio) else f"{(ratio - 1) * 100:+.0f} %"


def _more(diff: float) -> str:
    return "more" if diff >= 0 else "less"


def _join(parts: Sequence[str]) -> str:
    parts = list(parts)
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _paired(reps: pd.DataFrame, base: str, other: str, metric: str) -> dict[str, float] | None:
    a = reps[reps["partition"] == base].sort_values("replication")[metric].to_numpy()
    b = reps[reps["partition"] == other].sort_values("replication")[metric].to_numpy()
    if len(a) == 0 or len(a) != len(b):
        return None
    return paired(a, b)


def _throughput_sentence(summary: pd.DataFrame, label: str = "") -> str:
    if "completion_share" not in summary.columns or summary.empty:
        return ""
    short = summary[summary["completion_share"] < 0.95]
    if short.empty:
        return f"Every child{label} completed its offered load (throughput = offered rate)."
    names = [
        f"{r['partition']} {r['completion_share']:.0%}" for _, r in short.head(MAX_NAMED).iterrows()
    ]
    return (
        f"Overloaded{label}: only part of the offered load completed ({_join(names)}); its "
        "latency is a lower bound (see the warnings)."
    )


def run_answer(summary: pd.DataFrame, reps: pd.DataFrame, twins: dict[str, list[str]]) -> list[str]:
    """A run: each pair of children with the same workload on different paths, their
    paired difference in mean and p99; else the range of latencies; then throughput."""
    out: list[str] = []
    if summary.empty:
        return out
    paths = dict(zip(summary["partition"], summary["io_path"], strict=False))
    seen: set[str] = set()
    for name, others in twins.items():
        if name in seen or name not in paths:
            continue
        for other in others:
            if other not in paths or len(out) >= 2:
                continue
            seen |= {name, other}
            mean = _paired(reps, name, other, "mean_us")
            p99 = _paired(reps, name, other, "p99_us")
            if mean is None or p99 is None:
                continue
            base, slow = (name, other) if mean["diff"] >= 0 else (other, name)
            if base != name:
                mean = _paired(reps, base, slow, "mean_us")
                p99 = _paired(reps, base, slow, "p99_us")
                assert mean is not None
                assert p99 is not None
            spread = _pm(mean["diff_ci_low"], mean["diff_ci_high"])
            out.append(
                f"{slow} ({paths[slow]}) takes {_t(mean['diff'])}{spread} "
                f"{_more(mean['diff'])} mean latency than {base} ({paths[base]}), the same "
                f"workload ({_pct(mean['ratio'])}), and {_t(p99['diff'])}"
                f"{_pm(p99['diff_ci_low'], p99['diff_ci_high'])} {_more(p99['diff'])} at the "
                f"p99 ({_pct(p99['ratio'])})."
            )
    if not out:
        fine = summary[summary["mean_us"].notna()]
        if len(fine):
            by_mean = fine.sort_values("mean_us", kind="stable")
            by_p99 = fine.sort_values("p99_us", kind="stable")
            lo, hi = by_mean.iloc[0], by_mean.iloc[-1]
            p_lo, p_hi = by_p99.iloc[0], by_p99.iloc[-1]
            if len(fine) == 1:
                out.append(
                    f"{lo['partition']} ({lo['io_path']}) sees a mean latency of "
                    f"{_t(lo['mean_us'])} and a p99 of {_t(lo['p99_us'])}."
                )
            else:
                out.append(
                    f"Mean latency ranges from {_t(lo['mean_us'])} ({lo['partition']}, "
                    f"{lo['io_path']}) to {_t(hi['mean_us'])} ({hi['partition']}, "
                    f"{hi['io_path']}); p99 from {_t(p_lo['p99_us'])} to "
                    f"{_t(p_hi['p99_us'])}."
                )
    sentence = _throughput_sentence(summary)
    return [*out, sentence] if sentence else out


def comparison_answer(table: pd.DataFrame, paths: Sequence[str], warnings: list[str]) -> list[str]:
    """A comparison: per path after the first, each child's paired difference in mean and
    p99 latency to the first path (the range beyond :data:`MAX_NAMED` children)."""
    base = paths[0]
    out = []
    for path in paths[1:]:
        mine = table[table["path"] == path]
        parts = []
        rows = {
            (r["partition"], r["metric"]): r for _, r in mine.iterrows()
        }  # fmt: skip
        children = list(dict.fromkeys(mine["partition"]))
        for child in children[:MAX_NAMED]:
            m, p = rows.get((child, "mean_us")), rows.get((child, "p99_us"))
            if m is None or p is None:
                continue
            d, lo, hi = (
                float(m[f"{k}_to_{base}"]) for k in ("diff", "diff_ci_low", "diff_ci_high")
            )
            d99, lo99, hi99 = (
                float(p[f"{k}_to_{base}"]) for k in ("diff", "diff_ci_low", "diff_ci_high")
            )
            parts.append(
                f"{child}'s mean {_t(d)}{_pm(lo, hi)} {_more(d)} "
                f"({_pct(float(m[f'ratio_to_{base}']))}) and its p99 {_t(d99)}{_pm(lo99, hi99)} "
                f"{_more(d99)} ({_pct(float(p[f'ratio_to_{base}']))})"
            )
        if not parts:
            continue
        rest = ""
        if len(children) > MAX_NAMED:
            diffs = mine[mine["metric"] == "mean_us"][f"diff_to_{base}"].astype(float)
            rest = (
                f"; over all {len(children)} children the mean changes by "
                f"{diffs.min():+.3g} to {diffs.max():+.3g} µs"
            )
        out.append(f"On {path} rather than {base}: {'; '.join(parts)}{rest}.")
    if warnings:
        out.append(f"{len(warnings)} warning(s) below qualify this (saturation or wide intervals).")
    else:
        out.append("No child is saturated and every interval is narrow.")
    return out


def sweep_answer(frame: pd.DataFrame, grid: Sequence[GridColumn]) -> list[str]:
    """A sweep: how p99 and throughput move from the first to the last value of the first
    swept parameter (others at their first value), per child; then which points warn."""
    out: list[str] = []
    if frame.empty or not grid:
        return out
    c = grid[0]
    col, label = c.column, c.column
    sub = frame
    for other in grid[1:]:
        sub = sub[sub[other.column] == sub[other.column].iloc[0]]
    first, last = sub["point_index"].min(), sub["point_index"].max()
    parts = []
    groups = list(sub.groupby(["partition", "io_path"], sort=False))
    for (child, path), g in groups[:MAX_NAMED]:
        a, b = g[g["point_index"] == first], g[g["point_index"] == last]
        if a.empty or b.empty:
            continue
        p99a, p99b = t_interval(a["p99_us"].to_numpy())[0], t_interval(b["p99_us"].to_numpy())[0]
        ta = t_interval(a["throughput_rps"].to_numpy())[0]
        tb = t_interval(b["throughput_rps"].to_numpy())[0]
        tail = ""
        if not math.isfinite(p99b):  # no latency sample at the end: the last point with one
            known = g[g["p99_us"].notna()]
            if len(known):
                at = known["point_index"].max()
                shown = t_interval(known.loc[known["point_index"] == at, "p99_us"].to_numpy())[0]
                value = c.show(known.loc[known["point_index"] == at, col].iloc[0])
                tail = f" (no latency sample at the end; {_t(shown)} at {value})"
        parts.append(
            f"{child} ({path}) p99 {_t(p99a)} → {_t(p99b)}{tail}, throughput "
            f"{units.format_rate(ta)} → {units.format_rate(tb)}"
        )
    if parts:
        va, vb = (
            c.show(sub.loc[sub["point_index"] == first, col].iloc[0]),
            c.show(sub.loc[sub["point_index"] == last, col].iloc[0]),
        )
        out.append(f"As {label} goes from {va} to {vb}: {'; '.join(parts)}.")
    if "warnings" in frame.columns:
        warned = frame[frame["warnings"].astype(str) != ""]
        saturated = warned[warned["warnings"].astype(str).str.contains("saturated")]
        n = frame["point_index"].nunique()
        if len(saturated):
            where = sorted(
                {
                    f"{p} at {label}={c.show(v)}"
                    for p, v in zip(saturated["partition"], saturated[col], strict=True)
                }
            )
            out.append(
                f"{saturated['point_index'].nunique()} of {n} points are saturated "
                f"({_join(where[:MAX_NAMED])}{', …' if len(where) > MAX_NAMED else ''}): their "
                "latency is a lower bound and their throughput what the host delivers."
            )
        elif len(warned):
            out.append(f"{warned['point_index'].nunique()} of {n} points carry warnings (below).")
        else:
            out.append(f"None of the {n} points carries a warning.")
    return out


def capacity_answer(cap: Any) -> list[str]:
    """A capacity search: per path its capacity, bracket and binding resource."""
    parts = []
    for _, r in cap.table.iterrows():
        c, hi = float(r["capacity"]), float(r["capacity_high"])

        def x(v: float) -> str:
            return f"{v:.3g}× the offered load" if cap.vary == "load" else f"{int(v)} children"

        if not math.isfinite(c):
            parts.append(f"on {r['path']} no load simulated met it")
            continue
        bound = f", bound by {r['binding_resource']}" if r.get("binding_resource") else ""
        upper = f" (below {x(hi)})" if math.isfinite(hi) else ""
        parts.append(f"{r['path']} carries {x(c)}{upper}{bound}")
    if not parts:
        return []
    slo = " and ".join(c.text for c in cap.slo)
    return [f"Under {slo}: {'; '.join(parts)}."]
