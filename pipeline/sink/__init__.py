"""Sink stage: scored events into ClickHouse."""
