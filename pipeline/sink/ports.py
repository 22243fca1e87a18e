"""The sink stage's port: what the row writer needs of a table store.

`ClickHouseSink` is the production adapter (Quix Streams' `BatchingSink` draws the
same line: the pipeline hands over batches, the sink owns retries of outages). A
call returns once the rows are durable; what it raises is the data's fault.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class RowSink(Protocol):
    @property
    def initial_backoff(self) -> float: ...

    @property
    def max_backoff(self) -> float: ...

    async def write(
        self,
        rows: Sequence[Sequence[Any]],
        stored: set[tuple[str, str]] | None = None,
        data_attempts: int | None = 3,
    ) -> None:
        """Scored-event rows (in `pipeline.postprocess.COLUMNS` order)."""
        ...

    async def write_to(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        data_attempts: int | None = 3,
    ) -> None:
        """Rows of another table (dead letters, alerts, deliveries)."""
        ...

    async def probe(self) -> None:
        """A known-good round trip: raises if the store itself is unwell."""
        ...
