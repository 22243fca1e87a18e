"""Expanding the ClickHouse plugin's macros and Grafana's variables, as they do.

Used by the tests (every panel's SQL must run on ClickHouse) and by `moodpipe report`.
Expansions follow the grafana-clickhouse-datasource plugin's Go code (v4):
$__timeFilter(c) -> c >= toDateTime(from) AND c <= toDateTime(to), in seconds;
$__timeFilter_ms(c) the same in milliseconds for DateTime64 columns;
$__timeInterval(c) -> toStartOfInterval(toDateTime(c), INTERVAL n second);
$__fromTime / $__toTime, $__interval_s.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

_MACRO = re.compile(r"\$__(timeFilter_ms|timeFilter|timeInterval_ms|timeInterval)\(([^)]*)\)")


def expand_macros(sql: str, start: datetime, end: datetime, interval_s: int) -> str:
    f, t = int(start.timestamp()), int(end.timestamp())
    f_ms, t_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)

    def one(match: re.Match[str]) -> str:
        name, column = match.group(1), match.group(2).strip()
        if name == "timeFilter":
            return f"{column} >= toDateTime({f}) AND {column} <= toDateTime({t})"
        if name == "timeFilter_ms":
            return (
                f"{column} >= fromUnixTimestamp64Milli({f_ms}) "
                f"AND {column} <= fromUnixTimestamp64Milli({t_ms})"
            )
        if name == "timeInterval":
            return f"toStartOfInterval(toDateTime({column}), INTERVAL {interval_s} second)"
        return (
            f"toStartOfInterval(toDateTime64({column}, 3), "
            f"INTERVAL {interval_s * 1000} millisecond)"
        )

    sql = _MACRO.sub(one, sql)
    return (
        sql.replace("$__fromTime", f"toDateTime({f})")
        .replace("$__toTime", f"toDateTime({t})")
        .replace("$__interval_s", str(interval_s))
    )


def interpolate(sql: str, variables: dict[str, Sequence[str]]) -> str:
    """Grafana's ${name:singlequote} ('a','b') and ${name} / $name (a,b) formats."""

    def quoted(values: Sequence[str]) -> str:
        return ",".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)

    for name, values in variables.items():
        sql = sql.replace(f"${{{name}:singlequote}}", quoted(values))
        sql = sql.replace(f"${{{name}}}", ",".join(values))
        sql = re.sub(rf"\${name}\b", ",".join(values), sql)
    return sql
