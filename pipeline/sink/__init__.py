"""Sink stage: rows into ClickHouse in large batches, then the scored topic; dead letters."""
