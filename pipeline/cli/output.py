"""Where commands write: results on stdout, progress and errors on stderr."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.table import Table

# Piped output (CI logs, `| tee`) gets a readable width instead of rich's 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=150)
# Progress bars and spinners: never mixed into what a command prints as its result.
progress_console = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=150)


def print_result(result: Any, columns: tuple[str, ...] | None = None) -> None:
    shown = list(columns or result.columns)
    table = Table(*shown)
    for row in result.as_dicts():
        table.add_row(*("" if row[c] is None else str(row[c]) for c in shown))
    console.print(table)
    console.print(f"{len(result.rows)} row(s)")
