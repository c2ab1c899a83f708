"""The scenario reference, generated from the schema (:func:`sim.scenario.schema.json_schema`):
every section of a scenario file, every field with its type, default, limits and
description, as Markdown. ``docs/scenario-reference.md`` is this module's output; after a
change to the schema, regenerate it with one command (a test checks it is up to date)::

    python -m sim.report.reference docs/scenario-reference.md     # or: make docs

design §1 (scenario files) explains the format; this file lists the fields.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HEADER = """# Scenario reference

Generated from the scenario schema by `python -m sim.report.reference
docs/scenario-reference.md` (`make docs`); do not edit by hand. `hvsim schema` prints the
same schema as JSON Schema. Times, sizes, rates and frequencies are written with their unit
(`"30ms"`, `"4KiB"`, `"25Gbps"`, `"20k/s"`, `"2600cycles"`); any cost, size or think
time may also be a distribution, `{dist: NAME, ...}`
([design §1](design.md#scenario-files)). A preset (`preset: NAME`) fills host, parent and
devices first; the file's values win, and `--set FIELD.PATH=VALUE` wins over both.
"""


def _ref(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _type(schema: dict[str, Any]) -> str:
    """A short, readable type: ``integer``, ``list of Child``, ``routed | direct``..."""
    name = _ref(schema)
    if name:
        return f"[{name}](#{name.lower()})"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            kinds = [_type(s) for s in schema[key] if s.get("type") != "null"]
            nullable = any(s.get("type") == "null" for s in schema[key])
            text = " or ".join(dict.fromkeys(kinds))
            return f"{text} (or null)" if nullable else text
    kind = schema.get("type")
    if kind == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if kind == "object":
        extra = schema.get("additionalProperties")
        return f"map to {_type(extra)}" if isinstance(extra, dict) else "mapping"
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        if sorted(kinds) == ["number", "string"]:
            return "quantity with unit"
        return " or ".join(kinds)
    return str(kind) if kind else "any"


def _limits(schema: dict[str, Any]) -> str:
    parts = []
    for key, sign in (
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
        ("minItems", "items ≥"),
        ("maxItems", "items ≤"),
    ):
        if key in schema:
            parts.append(f"{sign} {schema[key]:g}" if isinstance(schema[key], float)
                         else f"{sign} {schema[key]}")  # fmt: skip
    return ", ".join(parts)


def _default(schema: dict[str, Any], required: bool) -> str:
    if required:
        return "*required*"
    if "default" not in schema:
        return ""
    value = schema["default"]
    if value is None:
        return "none"
    if value in ([], {}):
        return "empty"
    if value == "":
        return '`""`'
    if isinstance(value, dict | list):
        return "see type"
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _section(title: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"## {title}", ""]
    if schema.get("description"):
        lines += [" ".join(schema["description"].split()), ""]
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    lines += ["| field | type | default | limits | description |", "|---|---|---|---|---|"]
    for name, prop in props.items():
        lines.append(
            f"| `{name}` | {_cell(_type(prop))} | {_cell(_default(prop, name in required))} "
            f"| {_cell(_limits(prop))} | {_cell(prop.get('description', ''))} |"
        )
    return [*lines, ""]


def render(schema: dict[str, Any] | None = None) -> str:
    """The reference as Markdown: the top level, then every section alphabetically."""
    if schema is None:
        from sim.scenario.schema import json_schema

        schema = json_schema()
    defs: dict[str, Any] = schema.get("$defs", {})
    lines = [HEADER, "Sections: [scenario file](#scenario-file), "
             + ", ".join(f"[{n}](#{n.lower()})" for n in sorted(defs)) + ".", ""]  # fmt: skip
    lines += _section("Scenario file", schema)
    for name in sorted(defs):
        lines += _section(name, defs[name])
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sim.report.reference [FILE]``: write the reference (stdout without FILE)."""
    args = list(sys.argv[1:] if argv is None else argv)
    text = render()
    if not args:
        sys.stdout.write(text)
        return 0
    target = Path(args[0])
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
