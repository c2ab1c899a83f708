"""Validation of the model against queueing theory (``hvsim validate``).

Each case is a YAML file under ``scenarios/validation/``::

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

from sim.experiment import tabulate
from sim.model import simulate
from sim.scenario import Nvme, Scenario, ScenarioError, compose, from_dict

CASES_GLOB = "scenarios/validation/*.yaml"
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
        vcpu = spec.get("vcpu", f"{name}.vcpu[0]")
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
        w = float((req["device_queue"] + req["device_service"] + req["iommu"]).mean())
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
    try:
        text = Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(file, "", "no such file") from None
    spec, _ = compose(text, file)
    if not isinstance(spec, dict) or not isinstance(spec.get("scenario"), dict):
        raise ScenarioError(file, "scenario", "a validation case needs a 'scenario' mapping")
    return spec


def validate(cases: Sequence[str] | None = None, replications: int | None = None) -> pd.DataFrame:
    """Run the validation cases (default: every file under ``scenarios/validation``)."""
    files = list(cases) if cases else sorted(glob.glob(CASES_GLOB))
    if not files:
        raise ScenarioError(CASES_GLOB, "", "no validation cases found")
    rows = [run_case(load_case(f), f, replications) for f in files]
    return pd.DataFrame(rows)


def format_table(table: pd.DataFrame) -> str:
    """The validation table as text."""
    lines = [
        f"{'case':66} {'expected':>10} {'simulated':>10} {'±ci95':>8} {'tol':>8}  pass",
        "-" * 114,
    ]
    for _, r in table.iterrows():
        lines.append(
            f"{str(r['case'])[:66]:66} {r['expected_text']:>10} {r['simulated']:10.4g} "
            f"{r['ci']:8.3g} {r['tolerance']:8.3g}  {'yes' if r['pass'] else 'NO'}"
        )
    n_pass = int(table["pass"].sum())
    lines.append(f"\n{n_pass} of {len(table)} cases pass")
    return "\n".join(lines)
