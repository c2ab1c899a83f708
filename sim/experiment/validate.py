"""Validation of the model against queueing theory and published figures (``hvsim validate``).

Two suites: ``theory`` (``scenarios/validation/*.yaml``: closed forms of queueing theory
and of the scheduler's constants) and ``literature`` (``scenarios/validation/literature/``:
ratios that papers measured, each scenario set up like the paper's testbed where the
paper says how; see :func:`run_literature_case`).

Each theory case is a YAML file under ``scenarios/validation/``::

    case: M/M/1 response time at the device
    theory: pk                # which closed form gives the expected value
    metric: mean_us           # what is compared
    replications: 10
    scenario: {...}           # a reduced scenario, run through the real model

The expected value is computed **from the case's own scenario** (arrival rate, service
distribution's mean and variance, number of servers), so changing a parameter changes the
expectation, and a wrong model cannot pass by a lucky constant. Reduced scenarios isolate
one mechanism: ``native`` children with zero guest costs put every µs of latency in the
device; a child whose completions go to another vCPU (``irq_vcpu``) makes a three-station
tandem (submitting vCPU → device → completing vCPU).

Theories
    ``pk``      M/G/1 by Pollaczek–Khinchine: W = E[S] + λE[S²] / (2(1−ρ)) (M/M/1 and
                M/D/1 are special cases).
    ``mm1_p``   M/M/1 response-time percentile: the response time is exponential with
                rate μ−λ, so its p-quantile is −ln(1−p)/(μ−λ).
    ``mmc``     M/M/c by Erlang C: W = C(c, λ/μ)/(cμ−λ) + 1/μ.
    ``tandem``  Jackson tandem of M/M/1 stations: W = Σ 1/(μᵢ−λ).
    ``little``  Little's law at the device: the time-average number of requests in the
                device (level monitor) equals the measured throughput × the measured mean
                time in the device (tallies): two independent measurements.
    ``utilization``  device utilisation = λE[S]/c.

Pass rule
    Each replication gives one estimate; across R replications the estimate's standard
    error is s/√R. A case passes when |simulated − expected| ≤ t(0.999, R−1)·s/√R plus a
    small allowance for the finite-horizon bias of a run that starts empty (``bias``,
    default 1 % of the expected value). The 99.9 % quantile makes a correct model fail a
    given case about once in a thousand seeds, not once in twenty.
"""

from __future__ import annotations

import glob
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _st

from sim.model.host import simulate
from sim.results.tables import tabulate
from sim.scenario import names
from sim.scenario.errors import ScenarioError
from sim.scenario.hardware import Nvme
from sim.scenario.reader import compose, read_text
from sim.scenario.schema import Scenario
from sim.scenario.source import from_dict, replace

CASES_GLOB = "scenarios/validation/*.yaml"
LITERATURE_GLOB = "scenarios/validation/literature/*.yaml"
SUITES = {"theory": CASES_GLOB, "literature": LITERATURE_GLOB}
CONFIDENCE = 0.999


def _device_parts(scn: Scenario) -> tuple[float, float, float, int]:
    """(λ per µs, E[S] µs, E[S²] µs², servers) of the single stream's device."""
    child = scn.children[0]
    stream = child.streams[0]
    if stream.rate is None or child.device is None:
        raise ValueError("theory cases need an open-loop stream on a device")
    lam = stream.rate / 1e6
    dev = scn.device(child.device)
    if dev.type != "nvme":
        raise ValueError("theory cases use an NVMe device")
    op = next(iter(stream.op))
    dist = dev.read if op == "read" else dev.write
    size = stream.size.mean
    transfer = size * 8e6 * dev.channels / dev.bandwidth
    mean = dist.mean + transfer
    return lam, mean, dist.variance + mean * mean, dev.channels


def _pk(scn: Scenario, _spec: dict[str, Any]) -> float:
    lam, es, es2, c = _device_parts(scn)
    if c != 1:
        raise ValueError("pk needs a single-channel device")
    rho = lam * es
    return es + lam * es2 / (2.0 * (1.0 - rho))


def _mm1_p(scn: Scenario, spec: dict[str, Any]) -> float:
    q = float(spec.get("quantile", 0.99))
    lam, es, _, _ = _device_parts(scn)
    return -math.log(1.0 - q) / (1.0 / es - lam)


def _mmc(scn: Scenario, _spec: dict[str, Any]) -> float:
    lam, es, _, c = _device_parts(scn)
    a = lam * es
    rho = a / c
    terms = sum(a**k / math.factorial(k) for k in range(c))
    last = a**c / (math.factorial(c) * (1.0 - rho))
    erlang_c = last / (terms + last)
    return erlang_c / (c / es - lam) + es


def _tandem(scn: Scenario, _spec: dict[str, Any]) -> float:
    lam, es, _, _ = _device_parts(scn)
    g = scn.children[0].guest
    means = (g.submit_cost.mean, es, g.complete_cost.mean)
    if min(means) <= 0:
        raise ValueError("tandem needs positive guest submit and complete costs")
    return sum(1.0 / (1.0 / m - lam) for m in means)


def _utilization(scn: Scenario, _spec: dict[str, Any]) -> float:
    lam, es, _, c = _device_parts(scn)
    return lam * es / c


def _wakeup_rr(scn: Scenario, spec: dict[str, Any]) -> float:
    """Round robin without priorities: a vCPU that wakes after an exponential idle time X
    (mean m) finds one of k always-runnable vCPUs in the middle of its slice T and k-1
    queued: it waits (k-1)T + T - E[X mod T], E[X mod T] = m - T e^(-T/m) / (1 - e^(-T/m))."""
    name = spec.get("partition", scn.children[0].name)
    child = next(c for c in scn.children if c.name == name)
    load = child.cpu_load
    if load is None or load.idle.name != "exponential" or not child.pin:
        raise ValueError("wakeup_rr needs a pinned child with exponential idle times")
    lp = child.pin[0]
    hogs = sum(
        c.count
        for c in scn.children
        if c is not child and c.cpu_load is not None and c.cpu_load.busy is None
        and c.pin is not None and c.pin[0] == lp
    )  # fmt: skip
    if hogs < 1:
        raise ValueError("wakeup_rr needs always-runnable vCPUs on the same LP")
    t, m = scn.host.scheduler.time_slice, load.idle.mean
    mod = m - t * math.exp(-t / m) / (1.0 - math.exp(-t / m))
    return (hogs - 1) * t + t - mod


def _share(scn: Scenario, spec: dict[str, Any]) -> float:
    """Always-runnable partitions sharing LPs get CPU in proportion to their weights."""
    name = spec.get("partition", scn.children[0].name)
    loaded = [c for c in scn.children if c.cpu_load is not None and c.cpu_load.busy is None]
    total = sum(c.weight * c.count for c in loaded)
    return next(c.weight for c in loaded if c.name == name) / total


def _cap(scn: Scenario, spec: dict[str, Any]) -> float:
    """A capped partition uses its cap (% of one LP) and no more, whatever is idle."""
    name = spec.get("partition", scn.children[0].name)
    child = next(c for c in scn.children if c.name == name)
    if not child.cap:
        raise ValueError(f"child '{name}' has no cap")
    return child.cap / 100.0


THEORIES: dict[str, Callable[[Scenario, dict[str, Any]], float]] = {
    "pk": _pk,
    "mm1_p": _mm1_p,
    "mmc": _mmc,
    "tandem": _tandem,
    "utilization": _utilization,
    "wakeup_rr": _wakeup_rr,
    "share": _share,
    "cap": _cap,
}
MEASURED = ("little", "bound")  # expectations that come from the run or from the case
METRICS = (
    "mean_us", "p50_us", "p90_us", "p99_us", "p999_us", "throughput_rps",
    "device_utilization", "mean_wakeup_us", "cpu_share", "cpu_utilization",
)  # fmt: skip
_DEFAULT_METRIC = {
    "utilization": "device_utilization",
    "wakeup_rr": "mean_wakeup_us",
    "share": "cpu_share",
    "cap": "cpu_utilization",
    "little": "L_device",
}


def _measure(scn: Scenario, spec: dict[str, Any], metric: str, rep: int) -> tuple[float, float]:
    """(simulated, expectation measured in the run or NaN) of one replication."""
    data = simulate(scn, rep, scn.run.seed)
    res = tabulate(scn, [data], scn.run.seed, data.wall_s)
    name = spec.get("partition", scn.children[0].name)
    window = scn.run.duration - scn.run.warmup
    cpu = res.cpu[res.cpu["category"] != "idle"]
    if metric == "mean_wakeup_us":
        vcpu = spec.get("vcpu", names.vcpu(name, 0))
        row = res.sched[res.sched["vcpu"] == vcpu]
        if row.empty:
            raise ScenarioError("validation", "vcpu", f"no vCPU named '{vcpu}'")
        return float(row["mean_wakeup_us"].iloc[0]), math.nan
    if metric == "cpu_share":
        loaded = [c.name for c in scn.children if c.cpu_load is not None]
        shares = cpu[cpu["partition"].isin(loaded)].groupby("partition")["busy_us"].sum()
        return float(shares.get(name, 0.0) / shares.sum()), math.nan
    if metric == "cpu_utilization":
        child = next(c for c in scn.children if c.name == name)
        used = float(cpu[cpu["partition"] == name]["busy_us"].sum())
        return used / (window * child.vcpus), math.nan
    dev = scn.children[0].device or ""
    if metric == "device_utilization":
        row = res.resources[res.resources["resource"] == dev].iloc[0]
        return float(row["utilization"]), math.nan
    if metric == "L_device":
        req = res.requests[res.requests["in_window"]]
        row = res.resources[res.resources["resource"] == dev].iloc[0]
        spec_dev = scn.device(dev)
        channels = spec_dev.channels if isinstance(spec_dev, Nvme) else 1
        in_device = float(row["utilization"]) * channels + float(row["mean_level"])
        lam = len(req) / window
        w = float((req["device_queue_us"] + req["device_service_us"] + req["iommu_us"]).mean())
        return in_device, lam * w
    row = res.summary[res.summary["partition"] == name]
    return float(row[metric].iloc[0]), math.nan


_KEYS = {
    "case", "theory", "metric", "replications", "bias", "abs_tolerance", "quantile",
    "partition", "vcpu", "max", "min", "scenario",
}  # fmt: skip


def run_case(spec: dict[str, Any], file: str, replications: int | None = None) -> dict[str, Any]:
    """Run one validation case; a row of the validation table."""
    unknown = set(spec) - _KEYS
    if unknown:
        raise ScenarioError(file, sorted(unknown)[0], "unknown key in a validation case")
    theory = spec.get("theory")
    known = [*THEORIES, *MEASURED]
    if theory not in known:
        raise ScenarioError(file, "theory", f"must be one of {', '.join(known)}")
    metric = spec.get("metric", _DEFAULT_METRIC.get(str(theory), "mean_us"))
    if metric not in METRICS and not (theory == "little" and metric == "L_device"):
        raise ScenarioError(file, "metric", f"must be one of {', '.join(METRICS)}")
    if theory == "bound" and "max" not in spec and "min" not in spec:
        raise ScenarioError(file, "max", "a bound case needs 'max' or 'min'")
    scn = from_dict(spec.get("scenario"), source=file)
    names = [c.name for c in scn.children]
    if spec.get("partition", names[0]) not in names:
        raise ScenarioError(file, "partition", f"no child named '{spec.get('partition')}'")
    expected = math.nan
    if theory in THEORIES:
        try:  # the case's theory must apply to its scenario before anything runs
            expected = THEORIES[theory](scn, spec)
        except (ValueError, ZeroDivisionError, StopIteration) as exc:
            raise ScenarioError(file, "theory", f"{theory} does not apply: {exc}") from None
    reps = int(replications or spec.get("replications", 10))
    sims, exps = zip(*(_measure(scn, spec, metric, r) for r in range(reps)), strict=True)
    x = np.asarray(sims)
    simulated = float(x.mean())
    se = float(x.std(ddof=1) / math.sqrt(reps)) if reps > 1 else math.inf
    half = float(_st.t.ppf(0.5 + CONFIDENCE / 2, reps - 1)) * se if reps > 1 else math.inf
    if theory == "little":
        expected = float(np.mean(exps))
    if theory == "bound":
        hi, lo = float(spec.get("max", math.inf)), float(spec.get("min", -math.inf))
        ok = simulated + half <= hi and simulated - half >= lo
        expected = hi if math.isfinite(hi) else lo
        shown = f"<= {hi:.4g}" if math.isfinite(hi) else f">= {lo:.4g}"
        tol = half
    else:
        tol = half + float(spec.get("bias", 0.01)) * abs(expected)
        tol += float(spec.get("abs_tolerance", 0.0))
        ok = abs(simulated - expected) <= tol
        shown = f"{expected:.4g}"
    return {
        "case": spec.get("case", Path(file).stem),
        "theory": theory,
        "metric": metric,
        "expected": expected,
        "simulated": simulated,
        "ci": 1.96 * se if reps > 1 else math.nan,
        "tolerance": tol,
        "replications": reps,
        "pass": bool(ok),
        "expected_text": shown,
        "file": file,
    }


def load_case(file: str) -> dict[str, Any]:
    """Read a case file safely."""
    spec, _ = compose(read_text(file, what="validation case"), file)
    if not isinstance(spec, dict):
        raise ScenarioError(file, "", "a validation case must be a mapping")
    if not isinstance(spec.get("scenario"), dict) and not spec.get("known_gap"):
        raise ScenarioError(file, "scenario", "a validation case needs a 'scenario' mapping")
    return spec


def validate(
    cases: Sequence[str] | None = None,
    replications: int | None = None,
    suite: str = "all",
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Run validation cases: the files given, or every case of ``suite`` (``theory``,
    ``literature`` or ``all``). A case with a ``measure`` (or under ``literature/``) is a
    literature case. Every file is read and checked before anything runs; ``progress``
    (if given) is called with (cases done, cases in all) after each."""
    if suite not in (*SUITES, "all"):
        raise ScenarioError("--suite", "", f"must be one of {', '.join([*SUITES, 'all'])}")
    if cases:
        files = list(cases)
    else:
        globs = list(SUITES.values()) if suite == "all" else [SUITES[suite]]
        files = [f for g in globs for f in sorted(glob.glob(g))]
    if not files:
        raise ScenarioError(CASES_GLOB, "", "no validation cases found")
    specs = [(f, load_case(f)) for f in files]
    rows = []
    for f, spec in specs:
        literature = "measure" in spec or Path(f).parent.name == "literature"
        run = run_literature_case if literature else run_case
        rows.append(run(spec, f, replications))
        if progress is not None:
            progress(len(rows), len(specs))
    table = pd.DataFrame(rows)
    table["known_gap"] = table["known_gap"].fillna("") if "known_gap" in table else ""
    return table


def passed(table: pd.DataFrame) -> bool:
    """Every case that is not a known gap passes."""
    return bool(table.loc[~table["known_gap"].astype(bool), "pass"].all())


def format_table(table: pd.DataFrame) -> str:
    """The validation table as text; known gaps listed with their reasons."""
    w = max([4, *(len(str(c)) for c in table["case"])])  # whole names, never cut
    lines = [
        f"{'case':{w}} {'expected':>12} {'simulated':>10} {'±ci95':>8} {'tol':>8}  pass",
        "-" * (w + 48),
    ]
    gaps = []
    for _, r in table.iterrows():
        gap = str(r.get("known_gap", "") or "")
        verdict = "yes" if r["pass"] else ("GAP" if gap else "NO")
        lines.append(
            f"{r['case']!s:{w}} {r['expected_text']:>12} {r['simulated']:10.4g} "
            f"{r['ci']:8.3g} {r['tolerance']:8.3g}  {verdict}"
        )
        if gap:
            gaps.append(f"  {r['case']}: {gap}")
    ran = table[~table["known_gap"].astype(bool)] if "known_gap" in table else table
    lines.append(f"\n{int(ran['pass'].sum())} of {len(ran)} cases pass")
    if gaps:
        lines.append(
            f"{len(gaps)} known gap(s), shown as GAP and not counted: the model does not "
            "reproduce them yet, for these reasons:"
        )
        lines.extend(gaps)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Literature cases
# ---------------------------------------------------------------------------------------
_LIT_KEYS = {
    "case", "source", "expected", "measure", "replications", "scenario", "known_gap",
    "calibration", "note",
}  # fmt: skip
_SIDE_KEYS = {"metric", "partition", "set", "threshold_us", "vcpu"}
LIT_METRICS = (
    *METRICS, "exit_cpu_share", "share_above", "throughput_bps", "host_cpu", "total_throughput_bps"
)  # fmt: skip


def _lit_value(scn: Scenario, side: dict[str, Any], rep: int) -> float:
    """One replication's value of a measure side (a metric of a partition in a run)."""
    data = simulate(scn, rep, scn.run.seed)
    res = tabulate(scn, [data], scn.run.seed, data.wall_s)
    name = side.get("partition", scn.children[0].name)
    metric = side.get("metric", "mean_us")
    window = scn.run.duration - scn.run.warmup
    if metric == "host_cpu":  # LPs' worth of CPU every partition used, all categories
        cpu = res.cpu[res.cpu["category"] != "idle"]
        return float(cpu["busy_us"].sum()) / window
    if metric == "total_throughput_bps":  # every child's
        return float(res.summary["throughput_bps"].sum())
    if metric == "exit_cpu_share":  # LPs' worth of CPU the partition spent in exits
        cpu = res.cpu[(res.cpu["partition"] == name) & (res.cpu["category"] == "exit")]
        return float(cpu["busy_us"].sum()) / window
    if metric == "share_above":
        req = res.requests[res.requests["in_window"] & (res.requests["partition"] == name)]
        return float((req["latency_us"] > float(side["threshold_us"])).mean())
    if metric == "device_utilization":
        child = next(c for c in scn.children if c.name == name)
        row = res.resources[res.resources["resource"] == child.device]
        return float(row["utilization"].iloc[0])
    if metric == "mean_wakeup_us":
        row = res.sched[res.sched["vcpu"] == side.get("vcpu", names.vcpu(name, 0))]
        return float(row["mean_wakeup_us"].iloc[0])
    row = res.summary[res.summary["partition"] == name]
    if row.empty:
        raise ScenarioError("validation", "measure", f"no results for partition '{name}'")
    return float(row[metric].iloc[0])


def _side(spec: Any, file: str, where: str) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise ScenarioError(file, where, "must be a mapping (metric, partition, set)")
    unknown = set(spec) - _SIDE_KEYS
    if unknown:
        raise ScenarioError(file, f"{where}.{sorted(unknown)[0]}", "unknown key")
    if spec.get("metric", "mean_us") not in LIT_METRICS:
        raise ScenarioError(file, f"{where}.metric", f"must be one of {', '.join(LIT_METRICS)}")
    if spec.get("metric") == "share_above" and "threshold_us" not in spec:
        raise ScenarioError(file, f"{where}.threshold_us", "share_above needs a threshold")
    return spec


def run_literature_case(
    spec: dict[str, Any], file: str, replications: int | None = None
) -> dict[str, Any]:
    """Run one literature case: a ratio (or a value) the model should reproduce.

    ::

        case: "ELI: removing interrupt exits on the direct path, speed-up"
        source: "Gordon et al., ASPLOS 2012 (abstract)"
        expected: {min: 1.3, max: 1.6}
        measure:
          numerator: {metric: throughput_rps, partition: c}
          denominator: {metric: throughput_rps, partition: c,
                        set: {host.posted_interrupts: false}}
        scenario: {...}
        known_gap: "..."      # optional: the model does not reproduce it yet, and why

    With ``measure.difference_per: N`` the value is (numerator − denominator) / N instead
    of their ratio: an increment per unit (host CPU per added VM, ...).
    A measure may also name a ``reference`` side: the value is then
    (numerator − reference) / (denominator − reference), the share of the gap between
    the reference and the denominator that the numerator closes (e.g. the share of the
    throughput a strict IOMMU loses that deferred flushing recovers).

    Both sides run the case's scenario with their own overrides (``set``) and the same
    seed, replication by replication, so the ratio is paired (common random numbers).
    The estimate is the mean of the per-replication ratios with its Student-t interval
    at 99.9 %; the case passes when that interval meets the expected range and is narrow
    enough to tell (half-width at most half the range's width), or, for a one-sided
    bound, when the whole interval is on the bound's side. A known gap is shown failing
    with its reason, and run when it has a scenario; it never counts as a pass."""
    unknown = set(spec) - _LIT_KEYS
    if unknown:
        raise ScenarioError(file, sorted(unknown)[0], "unknown key in a literature case")
    exp = spec.get("expected")
    if not isinstance(exp, dict) or not ({"min", "max"} & set(exp)):
        raise ScenarioError(file, "expected", "needs 'min' and/or 'max'")
    lo, hi = float(exp.get("min", -math.inf)), float(exp.get("max", math.inf))
    if math.isfinite(lo) and math.isfinite(hi):
        shown, middle = f"{lo:.3g}–{hi:.3g}", (lo + hi) / 2
    else:
        shown = f">= {lo:.3g}" if math.isfinite(lo) else f"<= {hi:.3g}"
        middle = lo if math.isfinite(lo) else hi
    row: dict[str, Any] = {
        "case": spec.get("case", Path(file).stem),
        "theory": "literature",
        "metric": "—",
        "expected": middle,
        "simulated": math.nan,
        "ci": math.nan,
        "tolerance": math.nan,
        "replications": 0,
        "pass": False,
        "expected_text": shown,
        "file": file,
        "source": str(spec.get("source", "")),
        "known_gap": " ".join(str(spec.get("known_gap", "") or "").split()),
        "calibration": bool(spec.get("calibration", False)),
    }
    measure = spec.get("measure")
    if measure is None and row["known_gap"]:
        return row  # nothing the model can run yet
    if not isinstance(measure, dict) or "numerator" not in measure:
        raise ScenarioError(file, "measure", "needs a 'numerator' (and optional 'denominator')")
    num = _side(measure["numerator"], file, "measure.numerator")
    den = None
    if "denominator" in measure:
        den = _side(measure["denominator"], file, "measure.denominator")
    ref = None
    if "reference" in measure:
        if den is None:
            raise ScenarioError(file, "measure.reference", "needs a 'denominator'")
        ref = _side(measure["reference"], file, "measure.reference")
    base = from_dict(spec.get("scenario"), source=file)
    num_scn = replace(base, num["set"], source=file) if num.get("set") else base
    den_scn = replace(base, den["set"], source=file) if den and den.get("set") else base
    unknown = set(measure) - {"numerator", "denominator", "reference", "difference_per"}
    if unknown:
        raise ScenarioError(file, f"measure.{sorted(unknown)[0]}", "unknown key")
    per = measure.get("difference_per")
    if per is not None and (
        den is None
        or ref is not None
        or isinstance(per, bool)
        or not isinstance(per, int | float)
        or per <= 0
    ):
        raise ScenarioError(
            file,
            "measure.difference_per",
            "needs a denominator, no reference, and a positive number",
        )
    ref_scn = replace(base, ref["set"], source=file) if ref and ref.get("set") else base
    reps = int(replications or spec.get("replications", 5))
    values = []
    for r in range(reps):
        v = _lit_value(num_scn, num, r)
        if den is not None:
            d = _lit_value(den_scn, den, r)
            if ref is not None:
                z = _lit_value(ref_scn, ref, r)
                v, d = v - z, d - z
            # an increment per unit (per added VM, ...), or a ratio
            v = (v - d) / float(per) if per is not None else v / d if d else math.nan
        values.append(v)
    x = np.asarray(values, dtype=float)
    est = float(np.nanmean(x))
    se = float(np.nanstd(x, ddof=1) / math.sqrt(reps)) if reps > 1 else math.inf
    half = float(_st.t.ppf(0.5 + CONFIDENCE / 2, reps - 1)) * se if reps > 1 else math.inf
    if math.isfinite(hi - lo):  # a range: the interval meets it and is narrow enough to tell
        ok = est + half >= lo and est - half <= hi and half <= (hi - lo) / 2
    else:  # a bound: the whole interval is on its side
        ok = est - half >= lo and est + half <= hi
    return {
        **row,
        "metric": num.get("metric", "mean_us")
        + (
            ""
            if den is None
            else " share of gap"
            if ref is not None
            else " ratio"
            if per is None
            else " difference"
        ),
        "simulated": est,
        "ci": 1.96 * se if reps > 1 else math.nan,
        "tolerance": half,
        "replications": reps,
        "pass": bool(ok) and not row["known_gap"],
    }
