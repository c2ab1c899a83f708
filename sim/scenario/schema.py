"""The scenario schema: a whole scenario file (:class:`Scenario`), its run settings and
its faults, built from the hardware (:mod:`sim.scenario.hardware`) and workload
(:mod:`sim.scenario.workload`) sections. All defaults are declared in these models,
visible in ``hvsim schema``."""

from __future__ import annotations

import math
import re
import typing
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BeforeValidator

from sim.scenario import units
from sim.scenario.columns import STANDARD_PERCENTILES, parse_percentile
from sim.scenario.fields import DEFAULT_REQUEST_BUDGET, Model, Name, Time, field
from sim.scenario.hardware import Device, Disk, Host, Nic, Nvme, Parent
from sim.scenario.reliability import Reliability
from sim.scenario.workload import Child


def _count(value: Any) -> Any:
    """A count written as a number, or as text with an exponent or a multiplier (YAML reads
    ``1e9`` as text): 200000000, 2e8, '2e8', '200M', '1.5G'."""
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)\s*([kKMG]?)\s*", value)
        if m is None:
            raise ValueError(f"{units.show(value)} is not a count: write e.g. 2e8 or 200M")
        return float(m[1]) * {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}[m[2]]
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise ValueError("is too large") from None
    return value


def requests_kept(value: str) -> int | str:
    """``run.requests`` read: ``"all"``, ``"none"`` or the sample's size (at least 1)."""
    text = value.strip()
    if text in ("all", "none"):
        return text
    m = re.fullmatch(r"sample\s+(\S+)", text)
    if m is None:
        raise ValueError(f"{units.show(value)}: write all, none or sample N (e.g. sample 10k)")
    try:
        n = _count(m[1])
    except ValueError:
        n = None
    if not isinstance(n, float) or not 1 <= n <= 1e9 or n != int(n):
        raise ValueError(f"{units.show(value)}: N must be a whole number from 1 to 1e9")
    return int(n)


class Run(Model):
    """Run settings."""

    duration: Time = field("1s", description="Simulated time per replication.")
    warmup: Time = field(
        "100ms",
        description="Requests submitted before this are not counted; counters and CPU "
        "accounts restart here.",
    )
    warmup_method: Literal["fixed", "mser5"] = field(
        "fixed",
        description="fixed: the warm-up above. mser5: also drop the transient that MSER-5 "
        "finds in each child's latency series (White 1997), whichever is later. MSER-5 is "
        "reported either way.",
    )
    ci_warning: float = field(
        0.1,
        gt=0,
        description="Warn when a 95 % CI half-width exceeds this fraction of its estimate.",
    )
    seed: int = field(1, ge=0, le=2**63 - 1, description="Root seed (recorded).")
    replications: int = field(1, ge=1, le=1000)
    percentiles: list[str] = field(
        [],
        description="Latency percentiles beside the standard p50, p90, p99 and p999 "
        "(99.9), e.g. [p95, p99.99]; column p95_us, p9999_us (docs/outputs.md).",
        max_length=32,
    )

    @pydantic.field_validator("percentiles")
    @classmethod
    def _percentiles(cls, value: list[str]) -> list[str]:
        names = [parse_percentile(v)[0] for v in value]
        return [n for n in dict.fromkeys(names) if n not in STANDARD_PERCENTILES]

    trace_interval: Time | None = field(
        None,
        ge=0,
        description="Ring and device-queue occupancy is recorded as its mean over each "
        "interval of this length (occupancy.csv); default: duration / 200; 0: off.",
    )
    requests: str = field(
        "all",
        description="What is kept of each request: all (the requests table, every row), "
        "sample N (a uniform sample of N completed requests per stream and replication in "
        "the table, e.g. sample 10000 or sample 10k), none (no table). Summaries, latency "
        "percentiles and the conservation check are exact in every mode: sample and none "
        "keep 24 bytes and a mark per completed request instead of the whole row (136 "
        "bytes, and the table's ~400). Not with faults (their tables need every request) "
        "nor warmup_method: mser5.",
    )

    @pydantic.field_validator("requests")
    @classmethod
    def _requests(cls, value: str) -> str:
        kept = requests_kept(value)
        return value.strip() if isinstance(kept, str) else f"sample {kept}"

    request_budget: Annotated[float, BeforeValidator(_count)] = field(
        DEFAULT_REQUEST_BUDGET,
        gt=0,
        allow_inf_nan=False,
        description="A run that would simulate more requests than this, over all its "
        "replications, is refused before it starts. Estimated: duration x rate for "
        "open-loop streams; for closed-loop ones outstanding / (think time + the guest's "
        "costs + the device's time), at most what the child's vCPUs and the device carry; "
        "CPU-load bursts, scheduler events (time slices, ticks, accounting periods), MMPP "
        "state switches, occupancy samples and each vCPU and stream set up count as one "
        "request each, and the draws of a grossly slow sampler (measured once) as the "
        "requests that could be simulated in their time. Default 1e7: a run holds "
        "about 1 KB per request until it is written (10 GB; some 40 bytes under requests: "
        "none or sample N), and simulates ~30k requests/s (5-6 minutes). hvsim run "
        "--budget sets it.",
    )


FaultKind = Literal[
    "parent_crash",
    "parent_hang",
    "vsp_slowdown",
    "vf_revoke",
    "device_reset",
    "lp_offline",
    "child_crash",
    "hv_driver_crash",
]
FAULT_KINDS: tuple[str, ...] = typing.get_args(FaultKind)
PARENT_FAULTS = ("parent_crash", "parent_hang", "vsp_slowdown")
"""Fault kinds whose target is the parent partition (``target: parent``, the default)."""


class Fault(Model):
    """One scheduled fault (semantics in :mod:`sim.model.faults`)."""

    kind: FaultKind = field(
        description="parent_crash: the parent stops and loses what it held, then restarts. "
        "parent_hang: the parent's vCPUs stop, nothing lost. vsp_slowdown: the parent's "
        "VSP and driver costs x factor. vf_revoke: a direct child's I/O falls back to "
        "routed (host servicing, live migration). device_reset: a device fails what it "
        "holds and accepts nothing. lp_offline: an LP takes no work. child_crash: a child "
        "stops; its requests in flight fail. hv_driver_crash: the hypervisor's own driver for a "
        "device fails and restarts (io_path hypervisor: its requests are retried after).",
    )
    at: Time = field(ge=0.0, description="When it starts, from the start of the run.")
    duration: Time | None = field(
        None,
        gt=0.0,
        description="How long it lasts; every kind but child_crash needs it (a crashed "
        "child without one stays down to the end of the run).",
    )
    target: str | int | None = field(
        None,
        description="What it hits: 'parent' (parent_crash, parent_hang, vsp_slowdown; the "
        "default), a child (vf_revoke: a direct one; child_crash), a device "
        "(device_reset, hv_driver_crash), an LP index (lp_offline).",
    )
    factor: float | None = field(
        None,
        gt=0.0,
        le=1e6,
        allow_inf_nan=False,
        description="vsp_slowdown: what the VSP's and the parent driver's costs are "
        "multiplied by for the duration.",
    )

    @pydantic.model_validator(mode="before")
    @classmethod
    def _parent_by_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kind") in PARENT_FAULTS:
            return {**data, "target": data.get("target", "parent")}
        return data

    @pydantic.model_validator(mode="after")
    def _fields_of_kind(self) -> Fault:
        kind = self.kind
        if self.duration is None and kind != "child_crash":
            raise ValueError(f"a {kind} needs a 'duration'")
        if kind == "vsp_slowdown" and self.factor is None:
            raise ValueError("a vsp_slowdown needs a 'factor' (its costs are multiplied by it)")
        if kind != "vsp_slowdown" and self.factor is not None:
            hint = " (a hang stops the parent's vCPUs; vsp_slowdown slows them)"
            raise ValueError(
                f"'factor' is for vsp_slowdown only{hint if kind == 'parent_hang' else ''}"
            )
        target = self.target
        if kind in PARENT_FAULTS:
            if target != "parent":
                raise ValueError(f"the target of a {kind} is 'parent'")
        elif kind == "lp_offline":
            if not isinstance(target, int) or target < 0:
                raise ValueError("the target of an lp_offline is an LP index (0, 1, ...)")
        elif not isinstance(target, str) or not target:
            what = "a device" if kind in ("device_reset", "hv_driver_crash") else "a child"
            raise ValueError(f"a {kind} needs a 'target': {what}")
        return self

    @property
    def end(self) -> float:
        """When it ends (``inf``: a child crash without duration)."""
        return self.at + self.duration if self.duration is not None else math.inf


class Scenario(Model):
    """A whole scenario file."""

    name: Name
    description: str = ""
    preset: Name | None = field(
        None,
        description="A platform profile under the scenario's own values (hvsim presets "
        "lists them): preset values < the scenario's < --set. See sim/scenario/presets.",
    )
    host: Host = field({})
    parent: Parent = field({})
    devices: list[Device] = field([])
    children: list[Child] = field(min_length=1)
    run: Run = field({})
    faults: list[Fault] = field(
        [], description="Faults scheduled in the run (see sim.model.faults); none by default."
    )
    reliability: Reliability = field(
        {},
        description="Failure and repair processes per component over months, for hvsim "
        "availability (sim.scenario.reliability); a run does not read them.",
    )
    sources: dict[str, str] = field(
        {},
        description="Written by hvsim: the source of each preset value the scenario holds "
        "(field path → source). Recomputed from the preset whenever a scenario is loaded; "
        "what a file gives here is not read.",
    )

    @pydantic.model_validator(mode="before")
    @classmethod
    def _platform_path_by_default(cls, data: Any) -> Any:
        """Children that do not choose an io_path take the platform's own: hypervisor
        where the hypervisor owns the devices (host.io_stack) and the child's device is
        not left to the parent (its ``owner``), else the field's default."""
        if not isinstance(data, dict):
            return data
        host, children = data.get("host"), data.get("children")
        stack = host.get("io_stack") if isinstance(host, dict) else None
        if stack != "hypervisor" or not isinstance(children, list):
            return data
        devices = data.get("devices")
        parents = {  # devices the parent still drives: their children default to routed
            d.get("name")
            for d in (devices if isinstance(devices, list) else [])
            if isinstance(d, dict) and d.get("owner") == "parent"
        }
        filled = [
            {**c, "io_path": "hypervisor"}
            if isinstance(c, dict) and "io_path" not in c and c.get("device") not in parents
            else c
            for c in children
        ]
        return {**data, "children": filled}

    @property
    def trace_context(self) -> tuple[str | None, bool, bool]:
        """Where its trace files were read: (folder, allow_outside, read at all), so that a
        copy with overrides reads them again the same way."""
        for s in [*(s for c in self.children for s in c.streams), *self.parent.streams]:
            if s.trace is not None:
                return s.trace.origin
        return (None, False, True)

    def device(self, name: str) -> Nic | Nvme | Disk:
        """The device called ``name``."""
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(name)

    def in_hypervisor(self, device: str | None) -> bool:
        """Whether the hypervisor's own I/O stack drives ``device`` (``host.io_stack:
        hypervisor`` and the device not left to the parent by its ``owner``)."""
        if self.host.io_stack != "hypervisor":
            return False
        return not any(d.name == device and d.owner == "parent" for d in self.devices)

    def instances(self) -> Iterator[tuple[str, Child]]:
        """Each child partition as (instance name, spec), ``count`` expanded."""
        for c in self.children:
            if c.count == 1:
                yield c.name, c
            else:
                for i in range(1, c.count + 1):
                    yield f"{c.name}-{i}", c

    def to_dict(self) -> dict[str, Any]:
        """The resolved scenario as plain data with unit strings (loads back as is)."""
        return self.model_dump(mode="json")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of scenario files."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hvsim scenario"
    return schema
