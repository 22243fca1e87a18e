"""Replay tests: run recorded topics through the real pipeline and assert on the results.

Use it from pytest with `pytest_plugins = ["pipeline.testing.plugin"]` in a
conftest.py; see docs/replay-tests.md.
"""

from pipeline.testing.golden import assert_matches_golden, golden_view
from pipeline.testing.harness import PipelineNamespace, ReplayResult

__all__ = ["PipelineNamespace", "ReplayResult", "assert_matches_golden", "golden_view"]
