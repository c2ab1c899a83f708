"""The one error every bad input becomes: :class:`ScenarioError`, whose text is the one line
shown to the user, ``FILE[:LINE]: field.path: what is wrong``."""

from __future__ import annotations


class ScenarioError(Exception):
    """Invalid scenario input; ``str()`` is the one line shown to the user."""

    def __init__(self, file: str, path: str, message: str, line: int | None = None) -> None:
        self.file, self.path, self.message, self.line = file, path, message, line
        where = f"{file}:{line}" if line else file
        shown = path if len(path) <= 200 else path[:197] + "..."  # a --set path is any text
        text = f"{where}: {shown}: {message}" if path else f"{where}: {message}"
        super().__init__(text.replace("\n", " "))
