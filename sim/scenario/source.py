"""Loading a scenario: read → safe YAML (:mod:`sim.scenario.reader`) → the ``preset`` it
names under it (:mod:`sim.scenario.presets`) → overrides (``--set``) → schema (pydantic:
types, ranges, unknown keys, defaults) → cross-field rules (:mod:`sim.scenario.checks`)
→ a frozen :class:`~sim.scenario.schema.Scenario`, whose ``sources`` give the preset's
source of every preset value it kept. Precedence: preset < scenario file < ``--set``.
Nothing is built before everything is valid. Every error is a :class:`ScenarioError`
whose text is one line, ``FILE[:LINE]: field.path: what is wrong`` (a preset's own values
are blamed on the preset file)."""

from __future__ import annotations

import copy
import difflib
import re
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import pydantic
import yaml
from pydantic import BaseModel

from sim.scenario import presets, units
from sim.scenario.checks import cross_check
from sim.scenario.errors import ScenarioError
from sim.scenario.fields import DEFAULT_CLOCK_GHZ, NAME_RE
from sim.scenario.reader import Loader, compose, fmt_path, key_shown, line_of, quote, read_text
from sim.scenario.schema import Scenario


def load(
    path: str | Path,
    overrides: Mapping[str, Any] | None = None,
    allow_outside: bool = False,
    read_traces: bool = True,
) -> Scenario:
    """Read, check and resolve a scenario file; :class:`ScenarioError` if anything is wrong.
    The trace files its streams replay are read relative to its folder and must stay in
    that folder's tree unless ``allow_outside``; ``read_traces=False`` takes them as
    written without reading them (a result's scenario, which is not run again)."""
    p = Path(path)
    text = read_text(p, what="scenario", file=str(path))
    return loads(
        text,
        file=str(path),
        overrides=overrides,
        default_name=p.stem,
        base=p.parent,
        allow_outside=allow_outside,
        read_traces=read_traces,
    )


def loads(
    text: str,
    file: str = "<string>",
    overrides: Mapping[str, Any] | None = None,
    default_name: str | None = None,
    base: str | Path | None = None,
    allow_outside: bool = False,
    read_traces: bool = True,
) -> Scenario:
    """Like :func:`load`, from the text of a scenario (trace files relative to ``base``)."""
    if not text.strip():
        raise ScenarioError(file, "", "file is empty")
    data, lines = compose(text, file)
    if not isinstance(data, dict):
        raise ScenarioError(file, "", "a scenario must be a mapping (key: value) at the top", 1)
    data.pop("sweep", None)  # a sweep section is for hvsim sweep (sim.sweep); run ignores it
    if default_name and "name" not in data:
        data["name"] = re.sub(r"[^A-Za-z0-9_.-]", "-", default_name)[:64] or "scenario"
    return from_dict(
        data,
        source=file,
        lines=lines,
        overrides=overrides,
        base=base,
        allow_outside=allow_outside,
        read_traces=read_traces,
    )


_CHECKED: dict[str, presets.Preset] = {}


def _check_preset(preset: presets.Preset) -> None:
    """Validate a preset's values against the schema on their own (under a minimal
    child), so that a bad value is reported against the preset whichever scenario uses
    it; once per preset as read."""
    if _CHECKED.get(preset.file) is preset:
        return
    probe = {"name": "probe", "children": [{"name": "probe", "cpu_load": {}}]}
    merged, _, origins = preset.merge(probe)
    lines = {loc: n for loc, n in origins.items() if n is not None}
    try:
        from_dict(merged, source=preset.file, lines=lines)
    except ScenarioError as exc:
        if not exc.path.startswith("children"):  # about the probe child: the scenario's
            raise
    _CHECKED[preset.file] = preset


def replace(scenario: Scenario, overrides: Mapping[str, Any], source: str = "--set") -> Scenario:
    """A copy of ``scenario`` with ``{field.path: value}`` overrides applied and validated
    again (the preset it names is applied under it again, so its values keep their
    sources)."""
    raw = scenario.to_dict()
    done = [apply_override(raw, path, value, source) for path, value in overrides.items()]
    base, outside, read = scenario.trace_context
    return from_dict(
        raw, source=source, overridden=done, base=base, allow_outside=outside, read_traces=read
    )


def from_dict(
    data: Any,
    source: str = "<dict>",
    lines: Mapping[tuple[Any, ...], int] | None = None,
    overridden: Sequence[tuple[Any, ...]] = (),
    overrides: Mapping[str, Any] | None = None,
    base: str | Path | None = None,
    allow_outside: bool = False,
    read_traces: bool = True,
) -> Scenario:
    """Validate plain data (as read from YAML) into a :class:`Scenario`.

    Trace files (``streams[].trace.file``) are read relative to ``base`` (and inside its
    tree unless ``allow_outside``); without ``base`` only an absolute path is read;
    ``read_traces=False`` reads none.

    The ``preset`` that ``data`` names goes under it (:mod:`sim.scenario.presets`), then
    ``overrides`` (``{field.path: value}`` from ``--set``; a ``preset`` among them is
    chosen before the preset goes in) are applied; ``data`` itself is not changed. The
    scenario's ``sources`` are recomputed from the preset. ``lines`` maps locations to the
    source's line numbers; an error inside one of the ``overridden`` locations or an
    override is blamed on ``--set``, one inside a value the preset filled in on the preset
    file, any other on ``source``."""
    lines = lines or {}
    if not isinstance(data, dict):
        raise ScenarioError(source, "", "a scenario must be a mapping (key: value)")
    overrides = dict(overrides or {})
    overridden = list(overridden)
    if "preset" in overrides:
        data = {**data, "preset": overrides.pop("preset")}
        overridden.append(("preset",))
    preset = None
    origins: dict[tuple[Any, ...], int | None] = {}
    if data.get("preset") is not None:
        by_set = ("preset",) in overridden
        name = data["preset"]
        if isinstance(name, str):
            named = bool(NAME_RE.fullmatch(name))
        else:  # 5 is shown as it is, a list or a number of 400 digits is not
            named = isinstance(name, int | float) and len(units.show(name)) < 40
        if not named:
            shown = units.show(name)
            message = f"a preset is named by 1-64 letters, digits, '_', '.' or '-' (got {shown})"
            if by_set:
                raise ScenarioError("--set", "preset", message)
            raise ScenarioError(source, "preset", message, lines.get(("preset",)))
        preset = presets.load(
            data["preset"],
            "--set" if by_set else source,
            None if by_set else lines.get(("preset",)),
        )
        _check_preset(preset)
        data, lines, origins = preset.merge(data, lines)
    elif overrides:
        data = copy.deepcopy(data)
    overridden += [apply_override(data, k, v, "--set") for k, v in overrides.items()]

    def error(loc: tuple[Any, ...], message: str) -> ScenarioError:
        if any(loc[: len(o)] == o for o in overridden):
            return ScenarioError("--set", fmt_path(loc, data), message)
        from_preset = [o for o in origins if loc[: len(o)] == o]
        if preset is not None and from_preset:
            line = origins[max(from_preset, key=len)]
            return ScenarioError(preset.file, fmt_path(loc, data), message, line)
        return ScenarioError(source, fmt_path(loc, data), message, line_of(lines, loc))

    clock = _clock_ghz(data)
    try:
        context = {
            "clock_ghz": clock,
            "base": None if base is None else Path(base),
            "file": source,
            "allow_outside": allow_outside,
            "read_traces": read_traces,
        }
        scn = Scenario.model_validate(data, context=context)
    except pydantic.ValidationError as exc:
        raise error(*_translate(exc, data, lines)) from None
    problem = cross_check(scn)
    if problem:
        raise error(*problem)
    sources = preset.sources(scn) if preset is not None else {}
    return scn if sources == scn.sources else scn.model_copy(update={"sources": sources})


def _clock_ghz(data: Mapping[str, Any]) -> float:
    host = data.get("host")
    raw = host.get("clock") if isinstance(host, Mapping) else None
    if raw is None:
        return DEFAULT_CLOCK_GHZ
    try:
        hz = units.parse_frequency(raw)
    except units.UnitError:
        return DEFAULT_CLOCK_GHZ  # the schema reports the bad clock itself
    return hz / 1e9 if hz > 0 else DEFAULT_CLOCK_GHZ


def _raw_loc(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """Drop pydantic's union tags from an error location, keeping only real keys."""
    out: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part not in node:
            if node.get("type") == part:
                continue  # discriminator tag
            out.append(part)
            node = None
            continue
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(out)


def _model_at(loc: tuple[Any, ...], data: Any) -> type[BaseModel] | None:
    """The schema class that owns the last key of ``loc`` (for 'did you mean')."""
    model: Any = Scenario
    node = data
    for part in loc[:-1]:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(part)
        if field is None:
            return None
        node = node.get(part) if isinstance(node, dict) else None
        model = _unwrap(field.annotation, node)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model
    return None


def _unwrap(annotation: Any, node: Any) -> Any:
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap(args[0], node)
    if origin is list:
        item = node[0] if isinstance(node, list) and node else None
        return _unwrap(args[0], item)
    if args:  # a union: pick the member whose 'type' tag matches
        for a in args:
            if isinstance(a, type) and issubclass(a, BaseModel):
                tag = a.model_fields.get("type")
                if tag is None or (
                    isinstance(node, dict) and node.get("type") in typing.get_args(tag.annotation)
                ):
                    return a
        return None
    return annotation


def _translate(
    exc: pydantic.ValidationError, data: Any, lines: Mapping[tuple[Any, ...], int]
) -> tuple[tuple[Any, ...], str]:
    """The first error in the file, as (location, message in plain words)."""
    errors = exc.errors(include_url=False)

    def key(e: Any) -> int:
        return line_of(lines, _raw_loc(tuple(e["loc"]), data)) or 0

    err = min(errors, key=key)  # the first problem in the file
    loc = _raw_loc(tuple(err["loc"]), data)
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        model = _model_at(loc, data)
        name = key_shown(loc[-1])
        msg = f"unknown key '{name}'" if name == loc[-1] else f"unknown key {name}"
        if model is not None:
            allowed = list(model.model_fields)
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            msg += f"; did you mean '{close[0]}'?" if close else f" (allowed: {', '.join(allowed)})"
    elif kind == "missing":
        msg = "required key is missing"
    elif kind == "string_pattern_mismatch":
        msg = "a name is 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
    elif kind == "too_short":
        n = (err.get("ctx") or {}).get("min_length", 1)
        msg = f"needs at least {n} item{'s' if n != 1 else ''}"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        msg = "'type' must be one of: nic, nvme"
        loc = (*loc, "type")
    elif kind == "literal_error":
        msg = msg.replace("Input should be", "must be")
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    elif msg.startswith("Input should be"):
        msg = "must be" + msg[len("Input should be") :]
    if (
        kind not in ("missing", "extra_forbidden")
        and "input" in err
        and not isinstance(err["input"], dict | list)
    ):
        shown = units.show(err["input"], 41)
        if len(shown) <= 40 and shown not in msg:
            msg += f" (got {shown})"
    return loc, msg


# ---------------------------------------------------------------------------------------
# Overrides: field.path=value
# ---------------------------------------------------------------------------------------
_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[([^\]]+)\]")


def parse_assignment(text: str) -> tuple[str, Any]:
    """Split ``field.path=value``; the value is read as a YAML scalar or flow collection."""
    if "=" not in text:
        raise ScenarioError("--set", "", f"{quote(text)} is not of the form field.path=value")
    path, _, value = text.partition("=")
    try:  # the loader of scenario files: the same tags, integers and depth are refused
        parsed = yaml.load(value, Loader=Loader) if value.strip() else ""
    except (yaml.YAMLError, RecursionError):
        shown = units.show(value)
        raise ScenarioError("--set", path.strip(), f"cannot read value {shown}") from None
    return path.strip(), parsed


def apply_override(
    data: dict[str, Any], path: str, value: Any, source: str
) -> tuple[str | int, ...]:
    """Set ``path`` (e.g. ``children[web].streams[0].rate``) in raw scenario data; returns
    the location it resolved to (list items by index)."""
    tokens: list[str | int] = []
    pos = 0
    for m in _TOKEN.finditer(path):
        if m.start() != pos:
            break
        pos = m.end()
        if m.group(1) is not None:
            tokens.append(m.group(1))
        else:
            sel = m.group(2).strip()
            # ASCII digits only: int() refuses '²', which isdigit() accepts
            number = sel.isascii() and sel.isdigit()
            tokens.append((int(sel) if len(sel) < 4000 else -1) if number else f"name={sel}")
    if pos != len(path) or not tokens or not isinstance(tokens[0], str) or -1 in tokens:
        raise ScenarioError(source, path, "not a field path such as children[web].vcpus")
    node: Any = data
    loc: list[str | int] = []
    for i, tok in enumerate(tokens):
        last = i == len(tokens) - 1
        if isinstance(tok, str) and not tok.startswith("name="):
            if not isinstance(node, dict):
                raise ScenarioError(source, path, f"'{tok}' is not inside a mapping")
            loc.append(tok)
            if last:
                node[tok] = value
            else:
                nxt = tokens[i + 1]
                is_key = isinstance(nxt, str) and not nxt.startswith("name=")
                node = node.setdefault(tok, {} if is_key else [])
            continue
        if not isinstance(node, list):
            raise ScenarioError(source, path, "an index [..] must follow a list")
        if isinstance(tok, int):
            if tok >= len(node):
                raise ScenarioError(
                    source, path, f"index {units.show(tok)} is past the end ({len(node)} items)"
                )
            idx = tok
        else:
            name = tok[5:]
            found = [k for k, v in enumerate(node) if isinstance(v, dict) and v.get("name") == name]
            if not found:
                raise ScenarioError(source, path, f"no item named {quote(name)}")
            idx = found[0]
        loc.append(idx)
        if last:
            node[idx] = value
        else:
            node = node[idx]
    return tuple(loc)
