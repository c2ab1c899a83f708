"""Results as plain-text tables, for the terminal: a run's summary, a comparison of paths,
a study, a capacity search, a preset; and figures as PNG bytes for files that hold them.
The command (:mod:`sim.cli`) prints them; the HTML report (:mod:`sim.report.html`) is the
richer view of the same results."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

from sim.scenario import units


def text_table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """The lines of a plain-text table: a header, dashes under it, the rows; every column
    as wide as its widest cell (nothing cut), cells left-aligned as written."""
    text = tabulate([[str(x) for x in r] for r in rows], headers=list(head),
                    tablefmt="simple", disable_numparse=True, stralign="left")  # fmt: skip
    return [line.rstrip() for line in text.splitlines()]


def format_preset(preset: Any) -> str:
    """A preset as text: what it is, its devices, every value with its source and note."""
    import textwrap

    calibrated = ", ".join(preset.calibrated_on) or "nothing yet (no validation figure fitted)"
    devices = ", ".join(f"{d.name} ({d.type})" for d in preset.devices) or "none"
    head = ["parameter", "value", "source", "note"]
    rows = [list(r) for r in preset.rows()]
    lines = [
        f"{preset.name}: {preset.description}",
        f"file: {preset.file}",
        f"calibrated on: {calibrated}",
        f"devices: {devices}",
        "",
        *text_table(head, rows),
    ]
    if preset.notes:
        notes = f"notes: {preset.notes}"
        lines += ["", *textwrap.wrap(notes, 92, subsequent_indent="  ", break_on_hyphens=False)]
    return "\n".join(line.rstrip() for line in lines)


def format_preset_diff(a: Any, b: Any) -> str:
    """How preset ``b`` differs from ``a``, value by value with each side's source."""
    from sim.scenario.presets import diff

    devices, rows = diff(a, b)
    lines = [f"{a.name} → {b.name}: {len(rows)} values differ", ""]
    if devices:
        lines.append("devices: " + ", ".join(f"{n} {ta} → {tb}" for n, ta, tb in devices))
        lines.append("")
    if not rows:
        lines.append("the two presets set the same values from the same sources")
        return "\n".join(lines)
    head = ["parameter", a.name, "source", b.name, "source"]
    table = [[r.path, r.a_value, r.a_source, r.b_value, r.b_source] for r in rows]
    lines += text_table(head, table)
    lines += ["", "schema default: the preset leaves the field; hvsim schema cites its source."]
    return "\n".join(line.rstrip() for line in lines)


def png(fig: Any) -> bytes:
    """A matplotlib figure as PNG bytes."""

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def format_capacity(cap: Any) -> str:
    """The result as a plain-text table."""
    vary = cap.vary
    m = cap.meta
    head = (
        f"{m['scenario']}: SLO {' and '.join(m['slo'])}, "
        + (
            "load factor on every open-loop rate"
            if vary == "load"
            else f"number of {', '.join(m['children'])} children"
        )
        + f"; {m['replications']} replications per point, seed {m['seed']}, "
        f"{m['points']} points in {m['wall_s']:.1f} s"
    )
    cols = [
        "path",
        "capacity",
        "bracket",
        "offered",
        "at capacity (binding clause)",
        "binding resource",
        "analytic saturation",
    ]
    rows = []
    for _, r in cap.table.iterrows():
        cap_x = r["capacity"]

        def fmt(x: float) -> str:
            if not math.isfinite(x):
                return "—"
            return f"{x:.3g}×" if vary == "load" else f"{int(x)}"

        if math.isfinite(cap_x):
            clause = next(c for c in cap.slo if c.text == r["binding_clause"])
            half = (r["ci_high"] - r["ci_low"]) / 2
            at = (
                f"{clause.metric.removesuffix('_us')} {clause.show(r['value'])} "
                f"±{clause.show(half).replace(' ', '')} ({r['binding_child']})"
            )
            rows.append(
                [
                    r["path"],
                    fmt(cap_x),
                    f"{fmt(cap_x)} – {fmt(r['capacity_high'])}",
                    units.format_rate(r["offered_rps"]),
                    at,
                    f"{r['binding_resource']} ({r['binding_detail']})",
                    f"{fmt(r['analytic_saturation'])} ({r['analytic_bottleneck']})",
                ]
            )
        else:
            rows.append(
                [
                    r["path"],
                    "—",
                    f"below {fmt(r['capacity_high'])}",
                    "—",
                    r["note"],
                    "—",
                    f"{fmt(r['analytic_saturation'])} ({r['analytic_bottleneck']})",
                ]
            )
    lines = [head, "", *text_table(cols, rows)]
    notes = [f"  {r['path']}: {r['note']}" for _, r in cap.table.iterrows() if r["note"]]
    if notes:
        lines += ["", "notes:", *notes]
    warned = capacity_warnings(cap)
    if warned:
        lines += ["", "warnings of the points simulated:", *(f"  {w}" for w in warned)]
    lines.append(
        "\nThe capacity is the largest load simulated whose 95 % bounds meet the SLO; the "
        "bracket ends at the smallest that did not\n(or at the analytic saturation). "
        "± is the half-width of the 95 % interval at the capacity."
    )
    return "\n".join(line.rstrip() for line in lines)


def capacity_warnings(cap: Any) -> list[str]:
    """Every warning of the points a capacity search simulated, one line per path, point
    and child (``routed, factor 2.31, web: saturated: ...``)."""
    pts = cap.points
    if pts is None or not len(pts) or "warnings" not in pts.columns:
        return []
    axis = "load_factor" if "load_factor" in pts.columns else cap.axis
    out = []
    for _, r in pts.iterrows():
        text = r["warnings"]
        if not isinstance(text, str) or not text:
            continue
        where = f"factor {r[axis]:.3g}" if cap.vary == "load" else f"{int(r[axis])} children"
        out.append(f"{r['path']}, {where}, {r['partition']}: {text}")
    return out


def format_study(frame: Any) -> str:
    """Per point and child: mean and p99 over replications (swept values as the sweep
    wrote them, under their short names)."""
    from sim.experiment.study import study_grid

    if frame.empty:
        return "(no finished points)"
    grid = study_grid(frame)
    cols = [*(c.column for c in grid), "partition", "io_path"]
    agg = frame.groupby(cols, sort=False)[["throughput_rps", "mean_us", "p99_us"]].mean()
    head = [*(c.column for c in grid), "child", "path", "throughput", "mean", "p99"]
    rows = [
        [
            *(c.show(v) for c, v in zip(grid, key, strict=False)),
            *(str(v) for v in key[len(grid) :]),
            units.format_rate(r.throughput_rps),
            _time_or_dash(r.mean_us),
            _time_or_dash(r.p99_us),
        ]
        for key, r in agg.iterrows()
    ]
    lines = text_table(head, rows)
    notes = _study_warnings(frame, cols)
    for i, key in enumerate(notes):
        lines[2 + list(agg.index).index(key)] += f"  [{i + 1}]"
    if notes:
        lines.append("\nwarnings:")
        lines += [f"  [{i + 1}] {text}" for i, text in enumerate(notes.values())]
    return "\n".join(line.rstrip() for line in lines)


def _time_or_dash(us: float) -> str:
    """A time, or ``—`` where there is none (no request in the latency sample)."""
    return units.format_time(us) if us == us else "—"


def _study_warnings(frame: Any, cols: list[str]) -> dict[Any, str]:
    """Per row of the study table (point and child) with warnings: their text."""
    if "warnings" not in frame.columns:
        return {}
    out = {}
    for key, g in frame.groupby(cols, sort=False):
        texts = sorted({str(w) for w in g["warnings"] if isinstance(w, str) and w})
        if texts:
            out[key] = "; ".join(texts)
    return out


def ci_cell(row: Any, col: str, fmt: Any) -> str:
    lo, hi = row.get(f"{col}_ci_low"), row.get(f"{col}_ci_high")
    text = fmt(row[col])
    if lo is not None and hi is not None and lo == lo and hi == hi:
        text += f" ±{fmt((hi - lo) / 2).replace(' ', '')}"
    return text


def analytic_cell(row: Any) -> str:
    """The analytic mean beside the simulated one (sim.analysis.analytic); '~' where the estimate
    is beyond its approximation (a station more than 60 % busy, LP contention, ...)."""
    value = row["analytic_mean_us"]
    if value != value or value == float("inf"):
        return "—"
    return ("" if bool(row["analytic_holds"]) else "~") + units.format_time(value)


def format_summary(summary: Any, name: str, meta: dict[str, Any]) -> str:
    """The summary as a plain-text table (one line per child and path)."""
    from sim.model.metrics import COMPONENTS

    reps = meta.get("replications", 1)
    head = (
        f"{name}: {reps} replication{'s' if reps != 1 else ''}, seed {meta.get('seed')}, "
        f"{meta.get('requests_simulated', 0):,} requests simulated in {meta.get('wall_s', 0):.1f} s"
    )
    analytic = "analytic_mean_us" in summary.columns
    cols = ["child", "path", "throughput", "mean", *(["analytic"] if analytic else []), "p99",
            "largest components (mean)"]  # fmt: skip
    rows = []
    for _, r in summary.iterrows():
        path = r["io_path"] + (f" (fallback from {r['requested_path']})" if r["fallback"] else "")
        comps = sorted(((r[f"{c}_us"], c) for c in COMPONENTS), reverse=True)[:3]
        rows.append(
            [
                r["partition"],
                path,
                ci_cell(r, "throughput_rps", units.format_rate),
                ci_cell(r, "mean_us", units.format_time),
                *([analytic_cell(r)] if analytic else []),
                ci_cell(r, "p99_us", units.format_time),
                ", ".join(f"{c} {units.format_time(v)}" for v, c in comps if v > 0),
            ]
        )
    lines = [head, "", *text_table(cols, rows)]
    if reps > 1:
        lines.append(
            f"\n± is the half-width of the 95 % confidence interval over {reps} replications."
        )
    if analytic:
        lines.append(
            "analytic: the queueing-network estimate of the mean (sim.analysis.analytic); "
            "~ where it is beyond its approximation."
        )
    if "warnings" in summary.columns:
        notes = [(r["partition"], r["warnings"]) for _, r in summary.iterrows() if r["warnings"]]
        if notes:
            lines.append("\nwarnings:")
            lines += [f"  {part}: {text}" for part, text in notes]
    return "\n".join(line.rstrip() for line in lines)


def format_comparison(table: Any, paths: list[str], meta: dict[str, Any]) -> str:
    """The comparison as text: per child, mean and p99 on every path, and each path's
    paired ratio to the base with its 95 % interval."""
    base = paths[0]
    head = (
        f"{meta.get('scenario')}: paths {', '.join(paths)} (base {base}), "
        f"{meta.get('replications')} paired replications, seed {meta.get('seed')}, "
        f"{meta.get('wall_s', 0):.1f} s"
    )
    cols = ["child", "metric", *paths, *(f"{p}/{base}" for p in paths[1:])]
    rows = []
    for (child, metric), g in table[table["metric"].isin(["mean_us", "p99_us"])].groupby(
        ["partition", "metric"], sort=False
    ):
        by = g.set_index("path")
        row = [child, metric.removesuffix("_us")]
        row += [units.format_time(by.loc[p, "value"]) for p in paths]
        for p in paths[1:]:
            r = by.loc[p]
            lo, hi = r[f"ratio_ci_low_to_{base}"], r[f"ratio_ci_high_to_{base}"]
            ci = f" [{lo:.2f}, {hi:.2f}]" if lo == lo and hi == hi else ""
            row.append(f"{r[f'ratio_to_{base}']:.2f}{ci}")
        rows.append(row)
    lines = [head, "", *text_table(cols, rows)]
    lines.append(
        f"\nratios are paired (common random numbers): per-replication {paths[1]}/{base}, "
        "with their 95 % interval."
    )
    return "\n".join(line.rstrip() for line in lines)
