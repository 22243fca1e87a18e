"""YAML settings files whose errors name the line: the alert rules and the playbook.

PyYAML's node marks give each setting's line, so a validation error from pydantic
can say `rules.yaml:line 12: angry_customer.min_anger: ...` instead of a path alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError


class SettingsFileError(ValueError):
    """A file that cannot be used; the message names file, line and setting."""


class StrictSettings(BaseModel):
    """A section of a settings file: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _one_or_many(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


# A name or a list of names (`tier: free` or `tier: [free, standard]`).
Names = Annotated[tuple[str, ...], BeforeValidator(_one_or_many)]


def read_settings_file(path: Path, what: str, error: type[SettingsFileError]) -> str:
    """The file's text, or `error` naming the file when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read the {what}: {exc}") from exc


def read_yaml(text: str, name: str, error: type[SettingsFileError]) -> tuple[Any, yaml.Node | None]:
    """The document and its node tree (for line numbers); `error` on invalid YAML."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}" if mark else "?"
        raise error(f"{name}:{line}: not valid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{name}: not valid YAML: {exc}") from exc
    return data, root


def describe(
    exc: ValidationError,
    root: yaml.Node | None,
    name: str,
    prefix: tuple[int | str, ...],
    what: str = "alert rules",
) -> str:
    """Every error of `exc` as `name:line N: setting.path: message`."""
    problems = []
    for error in exc.errors():
        loc = prefix + _without_type_tags(error["loc"])
        line = line_of(root, loc)
        where = ".".join(str(p) for p in loc) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        problems.append(f"{name}:line {line}: {where}: {message}")
    return f"invalid {what}:\n  " + "\n  ".join(problems)


def _without_type_tags(loc: Sequence[int | str]) -> tuple[int | str, ...]:
    # pydantic adds the parsing step to a loc inside unions/annotated types
    # (e.g. 'function-before[...]'); the file has no such level.
    return tuple(p for p in loc if not (isinstance(p, str) and "[" in p))


def line_of(node: yaml.Node | None, loc: Sequence[int | str]) -> int:
    """1-based line of the deepest YAML node on the path `loc`."""
    if node is None:
        return 1
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    line = key.start_mark.line + 1
                    node = value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
