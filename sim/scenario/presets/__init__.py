"""Presets: platform profiles, every value with its source.

A preset describes a platform, not a workload: the host, the parent partition and the
devices of, say, Hyper-V on Windows Server 2019, each value with the paper, document or
code it comes from, or ``assumed``. A scenario names one at its top (``preset: NAME``) and
overrides what it wants. ``hvsim presets`` lists them; ``hvsim presets NAME`` shows one.

File format (``sim/scenario/presets/NAME.yaml``)::

    name: hyperv-2019              # the file's name
    description: one line          # what `hvsim presets` lists
    calibrated_on: []              # validation figures its free parameters were fitted to
    notes: >                       # optional: what is approximated, in words
      ...
    devices:                       # the host's devices, name: type (nic | nvme | disk)
      nic0: nic
      nvme0: nvme
    set:                           # field path, as --set writes it: value and source
      host.posted_interrupts: {value: true, source: assumed, note: APICv/AVIC on the host}
      devices[nic0].line_rate: {value: 25Gbps, source: assumed}

``set`` reaches ``host.*``, ``parent.*`` and ``devices[NAME].*`` (a device the preset
declares, by name), one field per entry, never ``children`` or ``run``. Every entry has a
``source``: a reference (authors, venue and year, a document, or the code read, as the
schema's field descriptions cite them), or ``assumed`` (alone,
or after the reference of a method: "...; value assumed"); an optional ``note`` says what
the value stands for or what it approximates.

How a scenario uses a preset (:meth:`Preset.merge`, called by
:func:`sim.scenario.from_dict`):

1. Devices: the preset's devices come first, in its order. An entry of the scenario's
   ``devices`` with the same name overrides fields of that device (its ``type`` may be
   left out); an entry with the same name and another ``type`` replaces the device.
   Entries with other names are added after them.
2. Values: every preset value the scenario does not give itself is filled in. Values are
   atomic: a distribution or a list the scenario gives replaces the preset's whole.
3. ``--set`` overrides come last. Order: preset < scenario file < ``--set``.

Provenance: the resolved scenario keeps ``preset: NAME`` and ``sources``, the source of
each preset value it holds, by field path (:meth:`Preset.sources`). A value the scenario
or ``--set`` changed is not in it; one the scenario sets equal to the preset's is (both
say the same). ``sources`` is recomputed whenever a scenario is loaded, so a resolved
scenario (``scenario.resolved.yaml``) loads back as is.

Errors: a preset's own problems (its format, a path the schema does not have, a value the
schema refuses) are reported against the preset file and its line, whichever scenario
uses it; an unknown preset against the scenario's ``preset`` field, with the presets
there are.
"""

from __future__ import annotations

import copy
import difflib
import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pydantic
import yaml
from pydantic import BaseModel, TypeAdapter

from sim.scenario.errors import ScenarioError
from sim.scenario.fields import DEFAULT_CLOCK_GHZ
from sim.scenario.hardware import Disk, Host, Nic, Nvme, Parent
from sim.scenario.reader import compose, read_text
from sim.scenario.schema import Scenario

DIRECTORY = Path(__file__).resolve().parent

Loc = tuple[str | int, ...]

_TOP = ("name", "description", "calibrated_on", "notes", "devices", "set")
_REQUIRED = ("name", "description", "calibrated_on", "set")
_ENTRY = ("value", "source", "note")
_ROOTS: dict[str, type[BaseModel]] = {"host": Host, "parent": Parent}
_DEVICE_TYPES: dict[str, type[BaseModel]] = {"nic": Nic, "nvme": Nvme, "disk": Disk}
_PATH = re.compile(r"^(?:(host|parent)|devices\[([^\]\s]+)\])((?:\.[A-Za-z_][A-Za-z0-9_]*)+)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Entry:
    """One value a preset sets: ``path`` as ``--set`` writes it; ``device`` the device's
    name for ``devices[NAME].…`` (``keys`` then start inside it), else ``None`` (``keys``
    start at ``host`` or ``parent``)."""

    path: str
    device: str | None
    keys: tuple[str, ...]
    value: Any
    source: str
    note: str
    line: int | None


@dataclass(frozen=True)
class Device:
    """A device the preset's host has."""

    name: str
    type: str
    line: int | None


@dataclass(frozen=True)
class Preset:
    """A loaded, checked preset (see the module docstring for the format)."""

    name: str
    description: str
    calibrated_on: tuple[str, ...]
    notes: str
    devices: tuple[Device, ...]
    entries: tuple[Entry, ...]
    file: str

    def merge(
        self, data: Mapping[str, Any], lines: Mapping[Loc, int] | None = None
    ) -> tuple[dict[str, Any], dict[Loc, int], dict[Loc, int | None]]:
        """The scenario ``data`` with the preset under it: ``(merged data, the scenario's
        line numbers moved to the merged locations, the locations the preset filled in →
        their line in the preset file)``. ``data`` is not changed."""
        out = copy.deepcopy(dict(data))
        new_lines = dict(lines or {})
        origins: dict[Loc, int | None] = {}
        where: dict[str, int] = {}  # preset device → its index in the merged list
        given = out.get("devices")
        if self.devices and (given is None or isinstance(given, list)):
            given = given or []
            merged: list[Any] = []
            moved: dict[int, int] = {}
            for dev in self.devices:
                idx = next(
                    (
                        i
                        for i, d in enumerate(given)
                        if i not in moved and isinstance(d, dict) and d.get("name") == dev.name
                    ),
                    None,
                )
                j = len(merged)
                if idx is None:
                    merged.append({"name": dev.name, "type": dev.type})
                    origins[("devices", j)] = dev.line
                    where[dev.name] = j
                    continue
                moved[idx] = j
                entry = given[idx]
                if entry.get("type", dev.type) != dev.type:
                    merged.append(entry)  # another kind of device: the scenario's replaces it
                    continue
                if "type" not in entry:
                    origins[("devices", j, "type")] = dev.line
                merged.append({"name": dev.name, "type": dev.type, **entry})
                where[dev.name] = j
            for i, d in enumerate(given):
                if i not in moved:
                    moved[i] = len(merged)
                    merged.append(d)
            out["devices"] = merged
            new_lines = {_moved(loc, moved): n for loc, n in new_lines.items()}
        for e in self.entries:
            if e.device is None:
                node: Any = out
                loc: Loc = ()
            elif e.device in where:
                node = out["devices"][where[e.device]]
                loc = ("devices", where[e.device])
            else:
                continue
            for key in e.keys[:-1]:
                if key not in node:
                    node[key] = {}
                node = node[key]
                loc = (*loc, key)
                if not isinstance(node, dict):
                    break  # the scenario gave something else here: its own value or error
            else:
                if e.keys[-1] not in node:
                    node[e.keys[-1]] = copy.deepcopy(e.value)
                    origins[(*loc, e.keys[-1])] = e.line
        return out, new_lines, origins

    def sources(self, scenario: Scenario) -> dict[str, str]:
        """Field path → source, for every preset value ``scenario`` holds as the preset
        set it (compared after unit conversion, with the scenario's clock)."""
        context = {"clock_ghz": scenario.host.clock / 1e9 or DEFAULT_CLOCK_GHZ}
        types = {d.name: d.type for d in self.devices}
        out: dict[str, str] = {}
        for e in self.entries:
            owner: Any = scenario
            if e.device is not None:
                owner = next((d for d in scenario.devices if d.name == e.device), None)
                if owner is None or owner.type != types[e.device]:
                    continue
            for key in e.keys[:-1]:
                owner = getattr(owner, key, None)
            name = e.keys[-1]
            if not isinstance(owner, BaseModel) or name not in type(owner).model_fields:
                continue
            adapter = _adapter(type(owner), name)
            try:
                wanted = adapter.dump_python(
                    adapter.validate_python(e.value, context=context), mode="json"
                )
            except (ValueError, pydantic.ValidationError):
                continue
            if adapter.dump_python(getattr(owner, name), mode="json") == wanted:
                out[e.path] = e.source
        return out

    def rows(self) -> list[tuple[str, str, str, str]]:
        """``(field path, value, source, note)`` per value, in the file's order."""
        return [(e.path, value_text(e.value), e.source, e.note) for e in self.entries]


@dataclass(frozen=True)
class DiffRow:
    """One field two presets set differently (:func:`diff`): each side's value and source;
    a side that does not set the field shows the schema's default, source ``schema
    default`` (the field's description in ``hvsim schema`` cites its source)."""

    path: str
    a_value: str
    a_source: str
    b_value: str
    b_source: str


DEFAULT_SOURCE = "schema default"


def diff(a: Preset, b: Preset) -> tuple[list[tuple[str, str, str]], list[DiffRow]]:
    """How platform ``b`` differs from ``a``: ``(devices, rows)``. ``devices`` holds
    ``(device, type in a or '-', type in b or '-')`` for each device the two do not have
    alike; ``rows`` every field path either sets (in ``a``'s order, then ``b``'s) whose
    value or source differs, values compared as written after unit conversion."""
    types_a = {d.name: d.type for d in a.devices}
    types_b = {d.name: d.type for d in b.devices}
    devices = [
        (n, types_a.get(n, "-"), types_b.get(n, "-"))
        for n in [*types_a, *(n for n in types_b if n not in types_a)]
        if types_a.get(n) != types_b.get(n)
    ]
    by_a = {e.path: e for e in a.entries}
    by_b = {e.path: e for e in b.entries}
    rows: list[DiffRow] = []
    for path in [*by_a, *(p for p in by_b if p not in by_a)]:
        sides = []
        for entry, preset in ((by_a.get(path), a), (by_b.get(path), b)):
            if entry is not None:
                sides.append((entry.value, entry.source))
            else:
                sides.append((_default(preset, path), DEFAULT_SOURCE))
        (va, sa), (vb, sb) = sides
        if _normal(a, path, va) == _normal(b, path, vb) and sa == sb:
            continue
        rows.append(DiffRow(path, _shown(va), sa, _shown(vb), sb))
    return devices, rows


_ABSENT = object()


def _field_of(preset: Preset, path: str) -> tuple[type[BaseModel], str] | None:
    """The model and field name a preset path ends at; None when ``preset`` has no such
    device (or of another type)."""
    m = _PATH.match(path)
    if m is None:  # pragma: no cover - entries are checked when read
        return None
    root, device, rest = m.group(1), m.group(2), m.group(3)
    keys = rest[1:].split(".")
    if device is not None:
        kind = next((d.type for d in preset.devices if d.name == device), None)
        if kind is None:
            return None
        model: type[BaseModel] = _DEVICE_TYPES[kind]
    else:
        model = _ROOTS[root]
    for k in keys[:-1]:
        model = model.model_fields[k].annotation  # type: ignore[assignment]
    return model, keys[-1]


def _default(preset: Preset, path: str) -> Any:
    found = _field_of(preset, path)
    if found is None:
        return _ABSENT
    model, name = found
    return model.model_fields[name].default


def _normal(preset: Preset, path: str, value: Any) -> Any:
    """``value`` as the schema stores it (units converted), for comparison."""
    found = _field_of(preset, path)
    if found is None or value is _ABSENT:
        return ("absent",)
    adapter = _adapter(*found)
    try:
        return adapter.dump_python(
            adapter.validate_python(value, context={"clock_ghz": DEFAULT_CLOCK_GHZ}), mode="json"
        )
    except (ValueError, pydantic.ValidationError):  # pragma: no cover - checked when read
        return ("raw", value_text(value))


def _shown(value: Any) -> str:
    return "(no such device)" if value is _ABSENT else value_text(value)


def value_text(value: Any) -> str:
    """A value as a scenario file would write it (``true``, ``25Gbps``, ``{dist: …}``)."""
    if isinstance(value, str):
        return value
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1000)
    return str(text).strip().removesuffix("...").strip()


def _moved(loc: Loc, moved: Mapping[int, int]) -> Loc:
    if len(loc) >= 2 and loc[0] == "devices" and isinstance(loc[1], int) and loc[1] in moved:
        return ("devices", moved[loc[1]], *loc[2:])
    return loc


@functools.cache
def _adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    info = model.model_fields[name]
    kind: Any = Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
    return TypeAdapter(kind)


# ---------------------------------------------------------------------------------------
# Finding and reading presets
# ---------------------------------------------------------------------------------------
def names() -> list[str]:
    """The names of the presets there are, sorted."""
    return sorted(p.stem for p in DIRECTORY.glob("*.yaml") if _NAME.match(p.stem))


def load(name: str, file: str = "<preset>", line: int | None = None) -> Preset:
    """The preset called ``name``, read and checked. An unknown name is a
    :class:`ScenarioError` on field ``preset`` of ``file`` (at ``line``), listing the
    presets; a problem in the preset itself, one against the preset file."""
    known = names()
    if not isinstance(name, str) or name not in known:
        shown = f"'{name}'" if isinstance(name, str) else repr(name)
        close = difflib.get_close_matches(name, known, n=1) if isinstance(name, str) else []
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ScenarioError(
            file, "preset", f"no preset named {shown}{hint} (presets: {', '.join(known)})", line
        )
    path = DIRECTORY / f"{name}.yaml"
    try:
        info = path.stat()
    except OSError:  # a dangling link, say: read_text says why
        read_text(path, what="preset", file=_display(path))
        raise
    return _read(path, info.st_mtime_ns, info.st_size)


def _display(path: Path) -> str:
    """The preset file as messages name it: relative to the working directory if inside."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _line(lines: Mapping[Loc, int], loc: Loc) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


@functools.lru_cache(maxsize=64)
def _read(path: Path, mtime_ns: int, size: int) -> Preset:
    """Read and check a preset file (cached while the file is unchanged)."""
    file = _display(path)
    text = read_text(path, what="preset", file=file)
    if not text.strip():
        raise ScenarioError(file, "", "file is empty")
    data, lines = compose(text, file)

    def fail(loc: Loc, message: str) -> ScenarioError:
        shown = ".".join(str(k) for k in loc)
        return ScenarioError(file, shown, message, _line(lines, loc) or 1)

    if not isinstance(data, dict):
        raise fail((), "a preset must be a mapping (key: value) at the top")
    for key in data:
        if key not in _TOP:
            raise fail((key,), f"unknown key '{key}' (allowed: {', '.join(_TOP)})")
    for key in _REQUIRED:
        if key not in data:
            raise fail((), f"'{key}' is missing (a preset has: {', '.join(_REQUIRED)})")
    if data["name"] != path.stem:
        raise fail(("name",), f"must be the file's name '{path.stem}'")
    description = data["description"]
    if not isinstance(description, str) or not description.strip() or "\n" in description.strip():
        raise fail(("description",), "must be one line of text")
    calibrated = data["calibrated_on"]
    if not isinstance(calibrated, list) or not all(
        isinstance(c, str) and c.strip() for c in calibrated
    ):
        raise fail(("calibrated_on",), "must be a list of validation figures ([] for none)")
    notes = data.get("notes", "")
    if not isinstance(notes, str):
        raise fail(("notes",), "must be text")
    raw_devices = data.get("devices") or {}
    if not isinstance(raw_devices, dict):
        raise fail(("devices",), "must map device names to types (nic0: nic)")
    devices: list[Device] = []
    for dev_name, kind in raw_devices.items():
        if not isinstance(dev_name, str) or not _NAME.match(dev_name):
            raise fail(
                ("devices", str(dev_name)), "a device name is 1-64 letters, digits, '_', '.' or '-'"
            )
        if kind not in _DEVICE_TYPES:
            raise fail(("devices", dev_name), f"type must be one of: {', '.join(_DEVICE_TYPES)}")
        devices.append(Device(dev_name, kind, _line(lines, ("devices", dev_name))))
    types = {d.name: d.type for d in devices}
    raw_set = data["set"]
    if not isinstance(raw_set, dict) or not raw_set:
        raise fail(("set",), "must map field paths to {value: ..., source: ...}")
    entries = [_entry(key, spec, types, lines, fail) for key, spec in raw_set.items()]
    preset = Preset(
        name=path.stem,
        description=description.strip(),
        calibrated_on=tuple(calibrated),
        notes=notes.strip(),
        devices=tuple(devices),
        entries=tuple(entries),
        file=file,
    )
    return preset


def _entry(
    key: Any, spec: Any, types: Mapping[str, str], lines: Mapping[Loc, int], fail: Any
) -> Entry:
    loc: Loc = ("set", str(key))
    m = _PATH.match(key) if isinstance(key, str) else None
    if m is None:
        raise fail(
            loc,
            "not a preset field path: host.…, parent.… or devices[NAME].… "
            "(children and run belong to scenarios)",
        )
    root, device, rest = m.group(1), m.group(2), m.group(3)
    keys = tuple(rest[1:].split("."))
    if device is not None:
        if device not in types:
            known = ", ".join(types) or "none"
            raise fail(loc, f"device '{device}' is not in the preset's devices ({known})")
        model: Any = _DEVICE_TYPES[types[device]]
        if keys[0] in ("name", "type"):
            raise fail(loc, f"a device's {keys[0]} is given under 'devices'")
    else:
        model = _ROOTS[root]
        keys = (root, *keys)
    walked = keys if device is not None else keys[1:]
    for i, k in enumerate(walked):
        fields = model.model_fields
        if k not in fields:
            close = difflib.get_close_matches(k, list(fields), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f" (fields: {', '.join(fields)})"
            raise fail(loc, f"no field '{k}' here{hint}")
        kind = fields[k].annotation
        is_model = isinstance(kind, type) and issubclass(kind, BaseModel)
        if i < len(walked) - 1:
            if not is_model:
                raise fail(loc, f"'{k}' has no fields")
            model = kind
        elif is_model:
            raise fail(loc, f"set one field of '{k}' at a time, each with its source")
    if not isinstance(spec, dict):
        raise fail(loc, "must be {value: ..., source: ...}")
    for k in spec:
        if k not in _ENTRY:
            raise fail((*loc, k), f"unknown key '{k}' (allowed: {', '.join(_ENTRY)})")
    if "value" not in spec:
        raise fail(loc, "'value' is missing")
    source = spec.get("source")
    if not isinstance(source, str) or not source.strip():
        raise fail(loc, "needs a 'source': a reference, or 'assumed'")
    note = spec.get("note", "")
    if not isinstance(note, str):
        raise fail((*loc, "note"), "must be text")
    return Entry(
        path=key,
        device=device,
        keys=keys,
        value=spec["value"],
        source=source.strip(),
        note=note.strip(),
        line=_line(lines, loc),
    )
