"""Our own tests use the same fixtures users get for their replay tests."""

from __future__ import annotations

import pytest

from pipeline.local.runtime import LocalRuntime
from pipeline.testing import PipelineNamespace

pytest_plugins = ["pipeline.testing.plugin"]


@pytest.fixture
def runtime(moodpipe_runtime: LocalRuntime) -> LocalRuntime:
    return moodpipe_runtime


@pytest.fixture
def namespace(moodpipe_namespace: PipelineNamespace) -> PipelineNamespace:
    return moodpipe_namespace


def spawn_worker(ns: PipelineNamespace, name: str = "worker"):
    return ns.start_worker(name)
