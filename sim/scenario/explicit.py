"""Which fields a scenario file (with its ``--set`` overrides) wrote itself, as field paths
in the report's naming (``host.cores``, ``devices[nic0].vfs``, ``children[web].vcpus``).

A resolved scenario holds every value, defaults included, so the report cannot tell a
default from the same value written in the file; the command line records this list in
``meta.json`` (``set_in_scenario``) from the scenario as loaded, and the report's parameter
table reads it (:func:`sim.report.provenance.provenance`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def _walk(model: BaseModel, prefix: str, out: list[str]) -> None:
    for name in sorted(model.model_fields_set):
        value: Any = getattr(model, name, None)
        path = f"{prefix}.{name}"
        if isinstance(value, BaseModel):
            _walk(value, path, out)
        else:
            out.append(path)


def explicit_paths(scenario: Any) -> list[str]:
    """The field paths of host, parent, devices and children the scenario set itself
    (a preset's values are not among them: ``Scenario.sources`` names those)."""
    out: list[str] = []
    _walk(scenario.host, "host", out)
    _walk(scenario.parent, "parent", out)
    for d in scenario.devices:
        _walk(d, f"devices[{d.name}]", out)
    for c in scenario.children:
        _walk(c, f"children[{c.name}]", out)
    return out
