"""Saved queries (`schemas/queries/*.sql`) and running SQL with typed parameters.

A saved query is a .sql file whose leading comment describes it:

    -- What the query shows (first line).
    -- param brand String = ''     help text
    SELECT ... WHERE ({brand:String} = '' OR brand = {brand:String})

Parameters use ClickHouse's own `{name:Type}` placeholders and are bound by the
server (never pasted into the SQL), so a value cannot change the query.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pipeline.resources import schemas_dir

_PARAM = re.compile(r"^--\s*param\s+(\w+)\s+(\w+(?:\([^)]*\))?)\s*=\s*(\S+)\s*(.*)$")
_PLACEHOLDER = re.compile(r"\{(\w+):([^}]+)\}")


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: str
    help: str

    def convert(self, text: str) -> Any:
        """A command-line string as the Python value clickhouse-connect binds."""
        value = text[1:-1] if len(text) >= 2 and text[0] == text[-1] == "'" else text
        if re.match(r"U?Int\d+$", self.type):
            return int(value)
        if re.match(r"Float\d+$", self.type):
            return float(value)
        return value


@dataclass(frozen=True)
class SavedQuery:
    name: str
    description: str
    params: tuple[Param, ...]
    sql: str
    path: Path

    def bind(self, given: dict[str, str]) -> dict[str, Any]:
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ValueError(
                f"{self.name} has no parameter {', '.join(unknown)}; it takes "
                + ", ".join(f"{p.name} ({p.type})" for p in self.params)
            )
        return {name: p.convert(given.get(name, p.default)) for name, p in known.items()}


def queries_dir() -> Path:
    return schemas_dir() / "queries"


def load_query(path: Path) -> SavedQuery:
    lines = path.read_text().splitlines()
    header = _leading_comments(lines)
    if not header:
        raise ValueError(f"{path}: a saved query starts with a comment describing it")
    params = []
    for line in header[1:]:
        match = _PARAM.match(line)
        if match:
            params.append(Param(*match.groups()))
    sql = "\n".join(lines[len(header) :]).strip()
    declared = {p.name: p.type for p in params}
    for name, typ in _PLACEHOLDER.findall(sql):
        if declared.get(name) != typ:
            raise ValueError(f"{path}: placeholder {{{name}:{typ}}} has no matching param line")
    return SavedQuery(path.stem, header[0].lstrip("- ").strip(), tuple(params), sql, path)


def _leading_comments(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        if not line.startswith("--"):
            break
        out.append(line)
    return out


def saved_queries() -> dict[str, SavedQuery]:
    return {p.stem: load_query(p) for p in sorted(queries_dir().glob("*.sql"))}


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(self.columns)
        writer.writerows([[_plain(v) for v in row] for row in self.rows])
        return out.getvalue()

    def to_json(self) -> str:
        return json.dumps(self.as_dicts(), default=_plain, ensure_ascii=False, indent=1) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def run_query(client: Any, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
    result = client.query(sql, parameters=parameters or {})
    return QueryResult(list(result.column_names), [tuple(r) for r in result.result_rows])


def parse_params(items: Sequence[str]) -> dict[str, str]:
    """`NAME=VALUE` strings (`moodpipe sql -p`) -> a dict; ValueError names a bad one."""
    given = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--param {item!r}: expected NAME=VALUE")
        given[name.strip()] = value
    return given


def prepare_query(query: str, given: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """SQL and bound parameters for a saved query's name or for ad-hoc SQL. Ad-hoc values
    are strings unless their {name:Type} placeholder says otherwise."""
    saved = saved_queries()
    if query in saved:
        return saved[query].sql, saved[query].bind(given)
    types = dict(_PLACEHOLDER.findall(query))
    return query, {k: Param(k, types.get(k, "String"), v, "").convert(v) for k, v in given.items()}
