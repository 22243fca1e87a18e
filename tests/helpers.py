"""Shared test helpers (the harness itself lives in pipeline.testing)."""

from pipeline.testing.harness import PipelineNamespace as Namespace
from pipeline.testing.harness import wait_until
from pipeline.testing.plugin import free_port

__all__ = ["Namespace", "free_port", "wait_until"]
