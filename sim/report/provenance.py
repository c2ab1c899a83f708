"""Where every number of a scenario came from, and the scenario in plain words.

:func:`provenance` walks a resolved :class:`~sim.scenario.Scenario` and returns one row per
parameter of the host, the parent, the devices and the children: its field path, its
value (the exact unit string the resolved scenario holds), who set it and its source:
``preset NAME`` with the preset's source where the scenario's preset set the value and the
scenario kept it (``Scenario.sources``, see :mod:`sim.scenario.presets`), else ``scenario`` or
``default`` with the source the schema declares for the field (a paper, a document, the
code read, or *assumed*). The workload itself (streams, run settings) is described by
:func:`describe` instead: it is what the user asked, not a cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import pandas as pd
from pydantic import BaseModel, TypeAdapter

from sim.scenario import units
from sim.scenario.distributions import Distribution
from sim.scenario.fields import DEFAULT_CLOCK_GHZ
from sim.scenario.plan import Placement, plan
from sim.scenario.schema import Scenario
from sim.scenario.workload import Child

_SKIP = {"name", "type", "description", "streams", "cpu_load", "count", "pin", "device", "vf"}


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if value is None:
        return "—"
    return str(value)


def _default(model: BaseModel, name: str, clock_ghz: float) -> Any:
    """The field's default as the scenario would hold it (JSON form), or a sentinel."""
    info = type(model).model_fields[name]
    if info.is_required():
        return _NO_DEFAULT
    kind: Any = Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
    adapter: TypeAdapter[Any] = TypeAdapter(kind)
    try:
        value = adapter.validate_python(info.default, context={"clock_ghz": clock_ghz})
    except ValueError:
        return _NO_DEFAULT
    return adapter.dump_python(value, mode="json")


_NO_DEFAULT = object()


def _source(description: str | None) -> str:
    text = (description or "").strip()
    return text or "a setting of the scenario (hardware or deployment)"


def _walk(
    model: BaseModel,
    prefix: str,
    clock_ghz: float,
    rows: list[dict[str, Any]],
    preset: tuple[str, Mapping[str, str]] = ("", {}),
    explicit: frozenset[str] | None = None,
) -> None:
    dumped = model.model_dump(mode="json")
    for name, info in type(model).model_fields.items():
        if name in _SKIP:
            continue
        value = getattr(model, name)
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(value, BaseModel):
            _walk(value, path, clock_ghz, rows, preset, explicit)
            continue
        shown = dumped[name]
        label, sources = preset
        if path in sources:
            set_by, source = label, sources[path]
        else:
            default = _default(model, name, clock_ghz)
            if explicit is not None:  # what the file set, as recorded when it was loaded
                set_by = "scenario" if path in explicit else "default"
            else:
                set_by = "default" if default == shown else "scenario"
            source = _source(info.description)
        rows.append(
            {
                "parameter": path,
                "value": _text(shown),
                "set_by": set_by,
                "source": source,
                "assumed": "assumed" in source.lower(),
            }
        )


def provenance(scenario: Scenario, explicit: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per cost or setting of host, parent, devices and children: ``parameter``
    (field path), ``value``, ``set_by`` (``preset NAME``, ``scenario`` or ``default``),
    ``source`` (the preset's for a preset value, else the schema's) and ``assumed`` (True
    where the source says the value is assumed). ``explicit``: the paths the scenario file
    set (:func:`sim.scenario.explicit.explicit_paths`, recorded in ``meta.json``); without
    it a value equal to its default counts as the default's."""
    clock = scenario.host.clock / 1e9 if scenario.host.clock else DEFAULT_CLOCK_GHZ
    rows: list[dict[str, Any]] = []
    preset = (f"preset {scenario.preset}", scenario.sources)
    given = frozenset(explicit) if explicit is not None else None
    _walk(scenario.host, "host", clock, rows, preset, given)
    _walk(scenario.parent, "parent", clock, rows, preset, given)
    for d in scenario.devices:
        _walk(d, f"devices[{d.name}]", clock, rows, preset, given)
    for c in scenario.children:
        _walk(c, f"children[{c.name}]", clock, rows, ("", {}), given)
    return pd.DataFrame(rows, columns=["parameter", "value", "set_by", "source", "assumed"])


# ---------------------------------------------------------------------------------------
# The scenario in plain words
# ---------------------------------------------------------------------------------------
def _dist(d: Distribution, fmt: Any) -> str:
    spec = d.to_spec()
    if isinstance(spec, str):
        return spec
    return f"an {spec.get('dist', 'arbitrary')} distribution (mean {fmt(d.mean)})"


def _stream(s: Any) -> str:
    total = sum(s.op.values())  # a trace's mix is its counts
    ops = " / ".join(f"{op} {w / total:.0%}" if len(s.op) > 1 else op for op, w in s.op.items())
    size = _dist(s.size, units.format_size)
    size = size if size[0].isdigit() else f"sizes from {size}"
    if s.closed:
        think = f", think time {_dist(s.think, units.format_time)}" if s.think.mean else ""
        return f"closed loop, {s.outstanding} outstanding {ops} of {size}{think}"
    shaped = " following a rate profile" if s.profile is not None else ""
    if s.trace is not None:
        t = s.trace
        how = [f"x{t.scale:g}" if t.scale != 1 else "", "looped" if t.loop else "",
               "random offset per replication" if t.offset == "random" else ""]  # fmt: skip
        how_text = ", ".join(h for h in how if h)
        return (
            f"open loop, replaying trace {t.file}{f' ({how_text})' if how_text else ''}: "
            f"{ops} of {size}{shaped}"
        )
    rate = units.format_rate(s.rate)
    return f"open loop, {rate} {ops} of {size} ({s.arrival} arrivals){shaped}"


def _child(c: Child) -> str:
    many = f"{c.count} × " if c.count > 1 else ""
    parts = [f"{many}{c.vcpus} vCPU{'s' if c.vcpus > 1 else ''}"]
    if c.device is not None:
        parts.append(f"{c.io_path} I/O to {c.device}")
        parts.extend(_stream(s) for s in c.streams)
    if c.cpu_load is not None:
        if c.cpu_load.busy is None:
            parts.append("CPU-bound work that never sleeps")
        else:
            parts.append(
                f"CPU bursts of {_dist(c.cpu_load.busy, units.format_time)} "
                f"every {_dist(c.cpu_load.idle, units.format_time)} idle"
            )
    if c.weight != 256 or c.cap:
        parts.append(f"weight {c.weight}" + (f", cap {c.cap:g} %" if c.cap else ""))
    return "; ".join(parts)


def _preset(name: str) -> str:
    from sim.scenario import presets
    from sim.scenario.errors import ScenarioError

    try:
        return presets.load(name).description
    except ScenarioError:  # not installed here: the resolved values still say everything
        return "a preset not available here"


def describe(
    scenario: Scenario, replications: int | None = None, seed: int | None = None
) -> list[tuple[str, str]]:
    """The scenario as (subject, plain sentence) pairs: its preset if any, host, parent,
    devices, children, run (``replications`` and ``seed``: as run, where the command line
    changed them)."""
    h, p, r = scenario.host, scenario.parent, scenario.run
    reps = r.replications if replications is None else replications
    sch = h.scheduler
    sched = {
        "credit": f"credit scheduler ({units.format_time(sch.time_slice)} slice, "
        f"BOOST {'on' if sch.boost else 'off'})",
        "fair": f"round-robin scheduler ({units.format_time(sch.time_slice)} slice)",
        "pinned": "every vCPU pinned to its LP",
    }[sch.policy]
    rows = [(f"preset {scenario.preset}", _preset(scenario.preset))] if scenario.preset else []
    rows += [
        (
            "host",
            f"{h.cores} logical processors at {h.clock / 1e9:g} GHz; {sched}; "
            f"{'posted interrupts' if h.posted_interrupts else 'interrupts delivered by exits'}"
            f"; IOMMU in {h.iommu.mode} mode",
        ),
        (
            "parent",
            f"{p.vcpus} vCPUs"
            + (" pinned to their LPs" if sch.root == "pinned" else "")
            + (f", {sch.minroot} LPs reserved (minroot)" if sch.minroot else ""),
        ),
    ]
    for d in scenario.devices:
        if d.type == "nic":
            text = f"NIC, {units.format_bitrate(d.line_rate)}, MTU {units.exact_size(d.mtu)}"
        elif d.type == "disk":
            text = (
                f"disk, {d.spindles} spindle{'s' if d.spindles > 1 else ''} (RAID-0) at "
                f"{d.rpm:g} rpm, {d.scheduling}, queue depth {d.queue_depth}"
            )
        else:
            text = f"NVMe drive, {d.channels} channels, {units.format_bitrate(d.bandwidth)}"
        rows.append((d.name, f"{text}, {d.vfs} VFs"))
    for c in scenario.children:
        rows.append((c.name, _child(c)))
    rows += deployment(scenario)
    rows.append(
        (
            "run",
            f"{units.format_time(r.duration)} simulated per replication, the first "
            f"{units.format_time(r.warmup)} discarded as warm-up; {reps} "
            f"replication{'s' if reps > 1 else ''}, seed {r.seed if seed is None else seed}",
        )
    )
    return rows


MAX_PLACEMENTS = 24
"""Children whose placement the scenario description lists one by one."""


def _placement(p: Placement) -> str:
    """Where one child's I/O runs, in words (on each device its streams use)."""
    if p.path == "none":
        return "no I/O"
    return "; and ".join(_on_device(q) for q in (p, *p.others))


def _on_device(p: Placement) -> str:
    """Where one child's I/O to one device runs, in words."""
    if p.path == "direct":
        return f"direct, VF {p.vf} of {p.device}"
    text = f"{p.path} to {p.device}"
    if p.channels:
        vcpus = ", ".join(str(v) for v in p.parent_vcpus)
        many = len(p.channels) > 1
        text += (
            f" over {len(p.channels)} VMBus channel{'s' if many else ''} served by parent "
            f"vCPU{'s' if many else ''} {vcpus}"
        )
    elif p.model_vcpu is not None:
        text += f", its device model on parent vCPU {p.model_vcpu}"
    if p.fallback:
        text += f" (asked for {p.requested_path}: {p.fallback})"
    if p.standby:
        text += f"; routed over {len(p.standby)} standby channel(s) while its VF is revoked"
    return text


def deployment(scenario: Scenario) -> list[tuple[str, str]]:
    """The deployment plan (:mod:`sim.scenario.plan`) as (child, where its I/O runs)
    pairs; past :data:`MAX_PLACEMENTS` children, a count of the rest."""
    placed = plan(scenario).children
    rows = [(f"{p.name}: I/O", _placement(p)) for p in placed[:MAX_PLACEMENTS]]
    if len(placed) > MAX_PLACEMENTS:
        rest = placed[MAX_PLACEMENTS:]
        fallbacks = sum(1 for p in rest if p.fallback)
        rows.append(
            (
                f"{len(rest)} more children",
                f"as listed above by kind; {fallbacks} of them fell back to another path",
            )
        )
    return rows
